"""The immutable values (``values.py``): a copy or a pickled value comes back equal, as a
frozen dataclass did, whatever its constructor looks like."""

from __future__ import annotations

import copy
import pickle
import weakref
from collections.abc import Callable
from datetime import datetime, timezone
from types import MappingProxyType

import pytest

from flask_maintenance.backends.base import Damaged
from flask_maintenance.history import Entry
from flask_maintenance.model import Feature, Plan, Schedule, State, resolve
from flask_maintenance.texts import texts

Copier = Callable[[object], object]

COPIERS: dict[str, Copier] = {
    "copy": copy.copy,
    "deepcopy": copy.deepcopy,
    "pickle": lambda value: pickle.loads(pickle.dumps(value)),
}
START = datetime(2026, 12, 24, 22, tzinfo=timezone.utc)


@pytest.fixture(params=sorted(COPIERS))
def copier(request: pytest.FixtureRequest) -> Copier:
    return COPIERS[request.param]


def test_a_languages_texts_copy_whole(copier: Copier) -> None:
    # Texts' constructor takes every text by keyword.
    words = texts("de")
    copied = copier(words)
    assert copied == words and copied is not words
    assert copied.duration(7200) == words.duration(7200)  # type: ignore[attr-defined]


def test_a_state_with_its_plan_and_translations_copies_whole(copier: Copier) -> None:
    # Its mappings are read-only views (MappingProxyType), which pickle cannot take as they are.
    search = Feature("search", "Reindexing", START)
    window = Schedule(START, mode="readonly", message="Upgrade", auto_off=True)
    state = resolve(
        State(active=True, mode="banner", message="Soon", messages=MappingProxyType({"de": "Bald"})),
        Plan(window).with_feature(search),
        START,
    )
    copied = copier(state)
    assert copied == state and isinstance(copied, State)
    assert (copied.languages, copied.blocking, copied.idle) == (("de",), False, False)
    assert copied.scheduled == window and copied.features["search"] == search
    assert isinstance(copied.features, MappingProxyType) and isinstance(copied.messages, MappingProxyType)
    for value in (
        Plan(window).with_feature(search),
        Entry(START, "on", "ops@web1", "cli"),
        Damaged("a FIFO"),
    ):
        assert copier(value) == value


def test_the_public_values_take_positional_patterns_and_weak_references() -> None:
    # What their dataclasses gave: `case Feature(name, message)` and weakref.ref(state).
    match Feature("search", "Reindexing"):
        case Feature(name, message):
            assert (name, message) == ("search", "Reindexing")
        case _:
            pytest.fail("no positional pattern")
    match State(active=True, mode="readonly"):
        case State(True, mode):
            assert mode == "readonly"
        case _:
            pytest.fail("no positional pattern")
    values = (State(active=True), Schedule(START), Feature("search"), Plan())
    assert [weakref.ref(value)() for value in values] == list(values)
