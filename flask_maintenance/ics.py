"""The maintenance windows as an iCalendar feed (RFC 5545), for calendars and status pages.

Served at ``<status path>/calendar.ics``: the planned window, and the current one when it has a
start. Written by hand because the format is small and its rules few (CRLF line ends, lines folded
at 75 octets, ``\\``, ``;``, ``,`` and line breaks escaped in text, times in UTC); the tests read
the feed back with an independent parser.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import datetime, timezone

from .model import State

#: A calendar's lines are at most this many octets, continuation lines' leading space included.
LINE_OCTETS = 75
PRODID = "-//flask-maintenance//maintenance windows//EN"
_SUMMARIES = {"full": "Maintenance", "readonly": "Maintenance (read-only)", "banner": "Maintenance notice"}


def calendar(state: State, now: datetime) -> bytes:
    """The feed for ``state``, stamped ``now``."""
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        f"PRODID:{PRODID}",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        "X-WR-CALNAME:Maintenance",
    ]
    for start, end, mode, message in _windows(state):
        # Stable across polls and edits of the window's end or message: named by its start.
        uid = hashlib.sha256(f"maintenance {_utc(start)}".encode()).hexdigest()[:32]
        lines += [
            "BEGIN:VEVENT",
            f"UID:{uid}@flask-maintenance",
            f"DTSTAMP:{_utc(now)}",
            f"DTSTART:{_utc(start)}",
        ]
        if end is not None and end > start:
            lines.append(f"DTEND:{_utc(end)}")
        lines.append(f"SUMMARY:{_text(_SUMMARIES.get(mode, 'Maintenance'))}")
        if message:
            lines.append(f"DESCRIPTION:{_text(message)}")
        lines += ["STATUS:CONFIRMED", "TRANSP:OPAQUE", "END:VEVENT"]
    lines.append("END:VCALENDAR")
    return b"".join(fold(line) for line in lines)


def _windows(state: State) -> Iterator[tuple[datetime, datetime | None, str, str | None]]:
    """(start, end, mode, message) of the current window (when it has a start) and the planned one."""
    planned = state.scheduled
    if (
        state.active
        and state.started_at is not None
        and (planned is None or planned.starts_at != state.started_at)
    ):
        yield state.started_at, state.ends_at, state.mode or "full", state.message
    if planned is not None:
        yield planned.starts_at, planned.ends_at, planned.mode, planned.message


def fold(line: str) -> bytes:
    """One content line, folded at :data:`LINE_OCTETS` octets (never inside a UTF-8 character),
    with CRLF after each part."""
    data = line.encode("utf-8")
    parts: list[bytes] = []
    limit = LINE_OCTETS
    while len(data) > limit:
        cut = limit
        while cut > 0 and data[cut] & 0xC0 == 0x80:  # a continuation byte: cut before its character
            cut -= 1
        parts.append(data[:cut])
        data = data[cut:]
        limit = LINE_OCTETS - 1  # the continuation's leading space counts
    parts.append(data)
    return b"\r\n ".join(parts) + b"\r\n"


def _text(value: str) -> str:
    """A TEXT value: backslash, semicolon, comma and line breaks escaped; other controls dropped."""
    value = value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")
    value = value.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\\n")
    return "".join(char for char in value if char == "\t" or (char >= " " and char != "\x7f"))


def _utc(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
