"""Which language a visitor gets: the page's (from the catalog) and the operator's message's.

``Accept-Language`` is a stranger's input read on every refused request, so reading it is bounded
and cached: only the first :data:`ACCEPT_LANGUAGE_PREFIX` characters and
:data:`ACCEPT_LANGUAGE_ENTRIES` entries are looked at, and the choice for each distinct header
(with the same translations) is kept in a small LRU cache, so a browser's header costs one
dictionary look-up and a hostile one no more than a browser's first visit.

Hand-written rather than Werkzeug's ``parse_accept_header``, which reads the whole header and
builds objects per entry; this is a small part of the hot path that the tests time nowhere but
``benchmarks/``.
"""

from __future__ import annotations

import functools
import re
from typing import NamedTuple

from .accept import quality as weight
from .texts import DEFAULT_LANGUAGE, LANGUAGES

#: How much of an ``Accept-Language`` header is read, and how many of its entries.
ACCEPT_LANGUAGE_PREFIX = 256
ACCEPT_LANGUAGE_ENTRIES = 16
_RANGE = re.compile(r"\*|[a-z]{1,8}(?:-[a-z0-9]{1,8})*")
# Chinese is told apart by script: regions that write Simplified or Traditional.
_SIMPLIFIED_REGIONS = frozenset({"cn", "sg", "my"})
_TRADITIONAL_REGIONS = frozenset({"tw", "hk", "mo"})


class Choice(NamedTuple):
    """What one visitor gets: the catalog's language for the page, and the tag of the
    operator's translation to show (``None``: the main message)."""

    page: str
    message: str | None


def choose(header: str | None, translations: tuple[str, ...] = ()) -> Choice:
    """The best catalog language and translation for an ``Accept-Language`` header.

    In the visitor's order of preference (quality, then position), each range takes the first
    tag that it names exactly, that it is a prefix of (``pt`` takes ``pt-BR``), or that a
    prefix of it names (``de-AT`` takes ``de``). ``*`` takes English for the page. Nothing
    matched: English, and the main message.

    :param translations: the tags of the operator's translations, as stored.
    """
    if not header:
        return _NO_PREFERENCE if not translations else _choose("", translations)
    return _choose(
        header if len(header) <= ACCEPT_LANGUAGE_PREFIX else header[:ACCEPT_LANGUAGE_PREFIX], translations
    )


_NO_PREFERENCE = Choice(DEFAULT_LANGUAGE, None)
_CATALOG = {tag.lower(): tag for tag in LANGUAGES}


@functools.lru_cache(maxsize=512)  # thread-safe; keys are at most ACCEPT_LANGUAGE_PREFIX long
def _choose(header: str, translations: tuple[str, ...]) -> Choice:
    ranges = preferences(header)
    page = next((found for found in (_lookup(r, _CATALOG) for r in ranges) if found), DEFAULT_LANGUAGE)
    available = {canonical(tag.lower()): tag for tag in translations}
    message = next((found for found in (_lookup(r, available) for r in ranges if r != "*") if found), None)
    return Choice(page, message)


def preferences(header: str) -> list[str]:
    """The language ranges of a header, most wanted first, canonical and lower-case.

    Ranges with quality 0 (or an unreadable one) and malformed ranges are left out.
    """
    weighted = []
    for position, entry in enumerate(
        header.lower().split(",", ACCEPT_LANGUAGE_ENTRIES)[:ACCEPT_LANGUAGE_ENTRIES]
    ):
        language_range, _, parameters = entry.partition(";")
        language_range = language_range.strip()
        quality = weight(parameters) if parameters else 1.0
        if quality > 0 and _RANGE.fullmatch(language_range):
            weighted.append((-quality, position, canonical(language_range)))
    return [language_range for _, _, language_range in sorted(weighted)]


def canonical(tag: str) -> str:
    """A lower-case tag with Chinese named by script: ``zh-cn`` is ``zh-hans``, ``zh-tw`` ``zh-hant``."""
    if not tag.startswith("zh-"):
        return tag
    parts = tag.split("-")
    if "hans" in parts or _SIMPLIFIED_REGIONS.intersection(parts):
        return "zh-hans"
    if "hant" in parts or _TRADITIONAL_REGIONS.intersection(parts):
        return "zh-hant"
    return tag


def _lookup(language_range: str, available: dict[str, str]) -> str | None:
    """The tag (as given) that ``language_range`` takes from ``available`` (canonical -> tag)."""
    if language_range == "*":
        return next(iter(available.values()), None)
    found = available.get(language_range)
    if found is not None:
        return found
    for candidate, tag in available.items():
        if candidate.startswith(language_range + "-"):
            return tag
    while "-" in language_range:
        language_range = language_range.rsplit("-", 1)[0]
        found = available.get(language_range)
        if found is not None:
            return found
    return None
