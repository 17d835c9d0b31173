"""What is planned beside the main switch: a scheduled window and per-feature kill switches.

The plan is a second document in the same backend as the lock (``<lock file>.plan``, or
``<key>:plan`` in Redis), so the lock file keeps its one-line contract: it exists, maintenance is
on. Readers combine both with the time of day in :func:`resolve`, which is how a window starts,
and with ``auto_off`` ends, with nobody running a command.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from types import MappingProxyType
from typing import Any

from .state import MODES, OFF, State, parse_message
from .times import format_instant, parse_instant

#: Where ``Maintenance.feature`` records its names on a view, command or function.
FEATURES_ATTRIBUTE = "__maintenance_features__"
#: Feature names: what a blueprint may be called, plus dashes.
FEATURE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}$")


@dataclass(frozen=True)
class Feature:
    """A feature switched off on its own: its views, commands and guarded functions refuse."""

    name: str
    message: str | None = None
    started_at: datetime | None = None


@dataclass(frozen=True)
class Schedule:
    """A planned window: announced before ``starts_at``, in ``mode`` from then on.

    It ends by itself at ``ends_at`` only with ``auto_off``; otherwise someone runs ``off``.
    """

    starts_at: datetime
    ends_at: datetime | None = None
    mode: str = "full"
    message: str | None = None
    auto_off: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "starts_at": format_instant(self.starts_at),
            "ends_at": None if self.ends_at is None else format_instant(self.ends_at),
            "mode": self.mode,
            "message": self.message,
            "auto_off": self.auto_off,
        }


@dataclass(frozen=True)
class Plan:
    """The second document: at most one schedule, and the features switched off."""

    schedule: Schedule | None = None
    features: Mapping[str, Feature] = field(default_factory=lambda: MappingProxyType({}))

    def to_json(self) -> bytes:
        data: dict[str, Any] = {}
        if self.schedule is not None:
            data["schedule"] = self.schedule.to_dict()
        if self.features:
            data["features"] = {
                name: {
                    "message": feature.message,
                    "started_at": None if feature.started_at is None else format_instant(feature.started_at),
                }
                for name, feature in sorted(self.features.items())
            }
        return (json.dumps(data, indent=2, sort_keys=True) + "\n").encode()

    def with_feature(self, feature: Feature) -> Plan:
        return replace(self, features=MappingProxyType({**self.features, feature.name: feature}))

    def without_feature(self, name: str) -> Plan:
        return replace(
            self, features=MappingProxyType({k: v for k, v in self.features.items() if k != name})
        )

    @property
    def empty(self) -> bool:
        return self.schedule is None and not self.features

    @classmethod
    def parse(cls, raw: bytes | None) -> tuple[Plan, str | None]:
        """Read the plan; ``None`` (no document) is the empty plan. Never raises.

        Damaged entries are dropped with a warning; the main switch is what fails closed.
        """
        if raw is None or not raw.strip():
            return EMPTY_PLAN, None
        try:
            data = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            return EMPTY_PLAN, "the maintenance plan is not valid JSON; ignoring it"
        if not isinstance(data, dict):
            return EMPTY_PLAN, "the maintenance plan is not a JSON object; ignoring it"
        problems: list[str] = []
        schedule = _schedule(data.get("schedule"), problems)
        features: dict[str, Feature] = {}
        raw_features = data.get("features") or {}
        if not isinstance(raw_features, dict):
            problems.append("features")
            raw_features = {}
        for name, entry in raw_features.items():
            try:
                features[name] = _feature(name, entry)
            except (TypeError, ValueError):
                problems.append(f"feature {name!r}")
        warning = f"the maintenance plan has invalid {', '.join(problems)}; ignoring them" if problems else None
        return cls(schedule=schedule, features=MappingProxyType(features)), warning


EMPTY_PLAN = Plan()


def check_feature_name(name: str) -> str:
    """:raises ValueError: for a name that could not be a blueprint or feature name."""
    if not isinstance(name, str) or not FEATURE_NAME.match(name):
        raise ValueError(f"invalid feature name {name!r}: use letters, digits, '_', '.', '-'")
    return name


def resolve(lock: State, plan: Plan, now: datetime, default_retry: int | None = None) -> State:
    """The state readers act on at ``now``: the main switch, else the schedule, plus features.

    :param default_retry: ``Retry-After`` of a started window without an end (the lock is off
        then, so it has no ``retry`` of its own); the configured ``MAINTENANCE_RETRY_AFTER``.
    """
    schedule = plan.schedule
    state = lock
    if not lock.active and schedule is not None and schedule.starts_at <= now:
        over = schedule.ends_at is not None and now >= schedule.ends_at
        if not (over and schedule.auto_off):
            state = State(
                active=True,
                mode=schedule.mode,
                retry=default_retry,
                message=schedule.message,
                started_at=schedule.starts_at,
                ends_at=schedule.ends_at,
            )
    elif lock is OFF and schedule is None and not plan.features:
        return lock
    if schedule is not None and schedule.ends_at is not None and schedule.auto_off and now >= schedule.ends_at:
        schedule = None  # a finished window is forgotten by every reader
    return replace(state, scheduled=schedule, features=plan.features)


def _schedule(value: object, problems: list[str]) -> Schedule | None:
    if value is None:
        return None
    try:
        if not isinstance(value, dict):
            raise TypeError(value)
        ends_at = value.get("ends_at")
        mode = value.get("mode", "full")
        if mode not in MODES:
            raise ValueError(mode)
        message = value.get("message")
        return Schedule(
            starts_at=parse_instant(_text(value.get("starts_at"))),
            ends_at=None if ends_at is None else parse_instant(_text(ends_at)),
            mode=mode,
            message=None if message is None else parse_message(message),
            auto_off=value.get("auto_off") is True,
        )
    except (TypeError, ValueError):
        problems.append("schedule")
        return None


def _feature(name: object, entry: object) -> Feature:
    check_feature_name(name)  # type: ignore[arg-type]
    if entry is None:
        entry = {}
    if not isinstance(entry, dict):
        raise TypeError(entry)
    message = entry.get("message")
    started_at = entry.get("started_at")
    return Feature(
        name=str(name),
        message=None if message is None else parse_message(message),
        started_at=None if started_at is None else parse_instant(_text(started_at)),
    )


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(value)
    return value


def features_of(target: object) -> frozenset[str]:
    """The feature names ``Maintenance.feature`` gave to a view, command or function."""
    return frozenset(getattr(target, FEATURES_ATTRIBUTE, ()))
