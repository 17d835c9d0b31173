"""What an operator, the config and the Python API may set: each limit once, with its check.

Every check takes the value and the ``label`` to name in its error (a config key, a command-line
option or an argument), and raises :class:`ConfigurationError` with one line that says what is
accepted. The writes, the config and the command line all call these, so no limit is written twice.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import datetime

from . import times
from .errors import ConfigurationError
from .times import MAX_DURATION, format_instant, parse_duration, parse_instant

TYPE_CHECKING = False
if TYPE_CHECKING:
    from datetime import timedelta
    from typing import Any

MODES = ("full", "readonly", "banner")
#: Modes in which requests (and, by default, commands) are refused.
BLOCKING_MODES = ("full", "readonly")
#: How much each mode refuses: ``run`` and ``window`` only ever switch to a stronger mode.
STRENGTH = {"banner": 1, "readonly": 2, "full": 3}
#: Longest message, in characters: pages and headers stay small.
MAX_MESSAGE_LENGTH = 2000
#: Longest Retry-After, bypass cookie lifetime or window: a year.
MAX_SECONDS = int(MAX_DURATION.total_seconds())
# Patterns are strings, compiled by re's cache on first use: the console scripts seldom need them.
#: Feature names: what a blueprint may be called, plus dashes.
FEATURE_NAME = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}"
#: Language tags of translations: a language, then maybe a script and a region (``zh-Hans-CN``).
LANGUAGE_TAG = r"([A-Za-z]{2,3})(?:-([A-Za-z]{4}))?(?:-([A-Za-z]{2}|[0-9]{3}))?"
#: Most translations of one message: the lock stays small.
MAX_TRANSLATIONS = 20


def mode(value: object, label: str = "mode") -> str:
    """One of :data:`MODES`, spelled exactly."""
    if not isinstance(value, str) or value not in MODES:
        raise ConfigurationError(f"{label} must be one of {', '.join(MODES)}, not {value!r}")
    return value


def seconds(value: object, label: str = "seconds") -> int:
    """A whole number of seconds from 0 to a year: an int, digits, or units such as 90s, 5m, 1h."""
    if isinstance(value, str):
        text = value.strip()
        if text.isascii() and text.isdecimal() and len(text) <= 12:
            value = int(text)
        elif text and not text.isdecimal():
            try:
                value = int(parse_duration(text).total_seconds())
            except ConfigurationError:
                pass  # reported below with the accepted forms
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_SECONDS:
        raise ConfigurationError(
            f"{label} must be a whole number of seconds from 0 to {MAX_SECONDS} "
            f"(or 90s, 5m, 1h), not {value!r}"
        )
    return value


def message(value: object, label: str = "message") -> str | None:
    """Text of at most :data:`MAX_MESSAGE_LENGTH` characters; empty or blank means no message."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ConfigurationError(f"{label} must be text, not {type(value).__name__}")
    if not value.strip():
        return None
    if len(value) > MAX_MESSAGE_LENGTH:
        raise ConfigurationError(
            f"{label} is too long ({len(value)} characters; at most {MAX_MESSAGE_LENGTH})"
        )
    return encodable(value)


def language_tag(value: object, label: str = "language") -> str:
    """A :data:`LANGUAGE_TAG` in its usual case: ``de``, ``pt-BR``, ``zh-Hans``."""
    match = re.fullmatch(LANGUAGE_TAG, value) if isinstance(value, str) else None
    if match is None:
        raise ConfigurationError(f"{label}: {value!r} is not a language tag such as de, pt-BR or zh-Hans")
    language, script, region = match.groups()
    return "-".join(
        part for part in (language.lower(), script and script.title(), region and region.upper()) if part
    )


def translation(value: object, label: str = "translation") -> tuple[str, str]:
    """``LANG=TEXT`` (``de=Wartung bis 3 Uhr``): the tag and a non-empty :func:`message`."""
    if not isinstance(value, str) or "=" not in value:
        raise ConfigurationError(f"{label} must be LANG=TEXT, such as de='Wartung bis 3 Uhr', not {value!r}")
    tag, _, text = value.partition("=")
    return _translation(tag.strip(), text, label)


def _translation(tag: object, text: object, label: str) -> tuple[str, str]:
    tag = language_tag(tag, label)
    checked = message(text, f"{label} {tag}")
    if checked is None:
        raise ConfigurationError(f"{label} {tag} is empty")
    return tag, checked


def translations(value: object, label: str = "translations") -> dict[str, str]:
    """A message per language: a mapping of tags to texts, or ``LANG=TEXT`` items or pairs.

    Each tag at most once (``de`` and ``DE`` are the same), at most :data:`MAX_TRANSLATIONS`.
    """
    if isinstance(value, Mapping):
        items: list[Any] = list(value.items())
    elif isinstance(value, Iterable) and not isinstance(value, str | bytes):
        items = list(value)
    else:
        raise ConfigurationError(f"{label} must map language tags to texts, not {value!r}")
    checked: dict[str, str] = {}
    for item in items:
        if isinstance(item, str):
            tag, text = translation(item, label)
        elif isinstance(item, tuple) and len(item) == 2:
            tag, text = _translation(*item, label)
        else:
            raise ConfigurationError(f"{label} must map language tags to texts, not {item!r}")
        if tag in checked:
            raise ConfigurationError(f"{label}: {tag} is given twice")
        checked[tag] = text
    if len(checked) > MAX_TRANSLATIONS:
        raise ConfigurationError(f"{label}: at most {MAX_TRANSLATIONS} languages, not {len(checked)}")
    return checked


def encodable(text: str) -> str:
    """``text`` with lone surrogates as ``?``.

    A message typed with a non-UTF-8 byte on the command line carries one (``"caf\\udce9"``),
    and no page or header can encode it.
    """
    return text.encode("utf-8", "replace").decode("utf-8")


def feature_name(value: object, label: str = "feature") -> str:
    """A name a blueprint could have: letters, digits, ``_``, ``.`` and ``-``, at most 100."""
    if not isinstance(value, str) or not re.fullmatch(FEATURE_NAME, value):
        raise ConfigurationError(
            f"{label} must be a feature name (letters, digits, '_', '.', '-'), not {value!r}"
        )
    return value


def instant(value: object, label: str = "time") -> datetime:
    """An ISO 8601 text with a zone, or a timezone-aware datetime; returned in UTC, to the second."""
    if isinstance(value, str):
        try:
            moment = parse_instant(value)
        except ConfigurationError as error:
            raise ConfigurationError(f"{label}: {error}") from None
    elif isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ConfigurationError(f"{label} must be timezone-aware, not {value.isoformat()}")
        moment = value
    else:
        raise ConfigurationError(f"{label} must be a time such as 2026-11-21T22:00:00Z, not {value!r}")
    return moment.replace(microsecond=0)


def future_instant(value: object, label: str = "time", now: datetime | None = None) -> datetime:
    """An :func:`instant` after ``now`` and at most a year ahead."""
    moment = instant(value, label)
    now = now or times.utcnow()
    if moment <= now:
        raise ConfigurationError(f"{label} {format_instant(moment)} is in the past")
    if moment > now + MAX_DURATION:
        raise ConfigurationError(f"{label} {format_instant(moment)} is more than 366 days away")
    return moment


def duration(value: object, label: str = "duration") -> timedelta:
    """A length such as ``90``, ``30m``, ``2h`` or ``1h30m``: more than zero, at most a year."""
    try:
        return parse_duration(value if isinstance(value, str) else repr(value))
    except ConfigurationError as error:
        raise ConfigurationError(f"{label}: {error}") from None
