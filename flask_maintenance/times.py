"""Parsing of the durations and instants operators type: ``30m``, ``2026-11-21T22:00:00Z``."""

from __future__ import annotations

import math
import re
from datetime import datetime, timedelta, timezone

from .errors import ConfigurationError

# ASCII digits only, at most 12: int() refuses over 4300 digits with a ValueError of its own,
# and "٣m" is not something an operator meant. The patterns here are strings, compiled by re's
# cache on first use: the console scripts mostly read documents that have no times at all.
_DURATION = r"([0-9]{1,12})\s*([smhdw])"
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
# Far enough for any real window, small enough that datetime arithmetic never overflows.
MAX_DURATION = timedelta(days=366)


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC.

    Every module calls it as ``times.utcnow()``, so that tests can move the time of day for the
    whole package in this one place.
    """
    return datetime.now(timezone.utc)


def parse_duration(text: str) -> timedelta:
    """Parse ``90``, ``90s``, ``30m``, ``2h``, ``1d`` or a sum such as ``1h30m``.

    :raises ConfigurationError: on anything else, on zero, or past a year.
    """
    compact = text.strip().lower().replace(" ", "")
    if compact.isdigit():
        compact += "s"
    if not compact or re.sub(_DURATION, "", compact):
        raise ConfigurationError(
            f"invalid duration {text!r}: use a number of seconds or units like 30m, 2h, 1h30m"
        )
    seconds = sum(int(n) * _UNIT_SECONDS[unit] for n, unit in re.findall(_DURATION, compact))
    if seconds <= 0:
        raise ConfigurationError(f"invalid duration {text!r}: it must be longer than zero")
    if seconds > MAX_DURATION.total_seconds():
        raise ConfigurationError(f"invalid duration {text!r}: it must be at most 366 days")
    return timedelta(seconds=seconds)


def parse_instant(text: str) -> datetime:
    """Parse an ISO 8601 instant that names its zone (``Z`` or an offset); return it in UTC.

    The same forms on every Python (3.10's ``fromisoformat`` knows far fewer than 3.11's):
    ``2026-11-21T22:00:00Z``, a space for the ``T``, seconds optional, fractions of any length,
    offsets as ``+01:00``, ``+0100`` or ``+01``, and the basic form ``20261121T220000Z``.

    :raises ConfigurationError: when the text is not ISO 8601 or has no zone.
    """
    match = re.fullmatch(INSTANT, text.strip())
    if match is None:
        raise ConfigurationError(f"invalid time {text!r}: use ISO 8601 such as 2026-11-21T22:00:00Z")
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    if zone is None:
        raise ConfigurationError(f"time {text!r} has no timezone: end it with Z or an offset such as +01:00")
    try:
        offset = timedelta(0)
        if zone not in ("Z", "z"):
            hours, minutes = int(zone[1:3]), int(zone[-2:]) if len(zone) > 3 else 0
            if hours > 23 or minutes > 59:
                raise ValueError(zone)
            offset = timedelta(hours=hours, minutes=minutes) * (-1 if zone[0] == "-" else 1)
        parsed = datetime(
            int(year),
            int(month),
            int(day),
            int(hour),
            int(minute),
            int(second or 0),
            int((fraction or "0")[:6].ljust(6, "0")),
            tzinfo=timezone(offset),
        )
    except ValueError:
        raise ConfigurationError(
            f"invalid time {text!r}: use ISO 8601 such as 2026-11-21T22:00:00Z"
        ) from None
    try:
        return parsed.astimezone(timezone.utc)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+14:00 is before year 1 in UTC
        raise ConfigurationError(f"time {text!r} is out of range") from None


# Extended (2026-11-21T22:00:00.5+01:00) or basic (20261121T220000Z) ISO 8601, ASCII digits only.
# The edge Worker (edge_worker.js) reads instants with this same pattern.
INSTANT = (
    r"([0-9]{4})-?([0-9]{2})-?([0-9]{2})[Tt ]"
    r"([0-9]{2}):?([0-9]{2})(?::?([0-9]{2})(?:[.,]([0-9]{1,9}))?)?"
    r"\s*([Zz]|[+-][0-9]{2}(?::?[0-9]{2})?)?"
)


def format_instant(moment: datetime) -> str:
    """ISO 8601 in UTC with a ``Z``, to the second: the form the state file and JSON use."""
    # Not strftime: its %Y drops the leading zeros of years before 1000 on glibc.
    utc = moment.astimezone(timezone.utc).replace(microsecond=0, tzinfo=None)
    return utc.isoformat(timespec="seconds") + "Z"


def seconds_until(moment: datetime, now: datetime) -> int:
    """Whole seconds from ``now`` to ``moment``, rounded up; negative when it has passed."""
    return math.ceil((moment - now).total_seconds())
