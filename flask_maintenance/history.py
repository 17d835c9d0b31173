"""The history of transitions: what changed, when, by whom and from where.

Every change :class:`~flask_maintenance.writes.Writer` makes, and every window that starts or
ends by itself, is one :class:`Entry`. The backend keeps them as lines of JSON beside the state
(``<lock file>.history``, rotated at 1 MiB; for Redis the capped stream ``<key>:history``), and
``flask maintenance history`` reads them back. Whoever can write beside the lock can write
there too, so reading is tolerant: a line that is not an entry is skipped and counted, never
trusted.
"""

from __future__ import annotations

import json
import os

from .backends.base import MAX_ENTRY_BYTES
from .rules import MAX_MESSAGE_LENGTH, MODES, encodable
from .times import format_instant, parse_instant
from .values import Value, assign

TYPE_CHECKING = False
if TYPE_CHECKING:
    from datetime import datetime
    from typing import Any

#: What an entry can record.
EVENTS = ("on", "update", "off", "schedule", "cancel", "start", "end", "feature-off", "feature-on")
#: Where a change came from: the ``flask`` command, Python code, or the plan itself.
ORIGINS = ("cli", "python", "schedule")
#: Who made the changes of a window that starts or ends by itself.
SCHEDULE = "schedule"
# Bounds for what a stored line may hold (a hand-made line longer than these is not an entry).
_MAX_NAME = 256


class Entry(Value):
    """One transition.

    ``mode``, ``message`` and ``until`` describe the window after it (for ``schedule`` and
    ``cancel``, the planned window, which ``starts_at`` dates); ``feature`` names the feature of
    ``feature-off`` and ``feature-on``. ``who`` is ``user@host``, or ``"schedule"``.
    """

    __slots__ = _fields = __match_args__ = (
        "at",
        "event",
        "who",
        "origin",
        "mode",
        "message",
        "until",
        "starts_at",
        "feature",
    )
    at: datetime
    event: str
    who: str
    origin: str
    mode: str | None
    message: str | None
    until: datetime | None
    starts_at: datetime | None
    feature: str | None

    def __init__(
        self,
        at: datetime,
        event: str,
        who: str,
        origin: str,
        mode: str | None = None,
        message: str | None = None,
        until: datetime | None = None,
        starts_at: datetime | None = None,
        feature: str | None = None,
    ) -> None:
        assign(self, "at", at)
        assign(self, "event", event)
        assign(self, "who", who)
        assign(self, "origin", origin)
        assign(self, "mode", mode)
        assign(self, "message", message)
        assign(self, "until", until)
        assign(self, "starts_at", starts_at)
        assign(self, "feature", feature)

    def to_dict(self) -> dict[str, Any]:
        """The entry as JSON values (``history --json``, and the stored line)."""
        return {
            "at": format_instant(self.at),
            "event": self.event,
            "who": self.who,
            "origin": self.origin,
            "mode": self.mode,
            "message": self.message,
            "until": _instant(self.until),
            "starts_at": _instant(self.starts_at),
            "feature": self.feature,
        }

    def to_line(self) -> bytes:
        """The stored form: one line of JSON, without the keys that are empty."""
        data = {key: value for key, value in self.to_dict().items() if value is not None}
        return json.dumps(data, ensure_ascii=False, sort_keys=True).encode() + b"\n"

    def describe(self) -> str:
        """One human sentence (``history``, and the ``text`` of a webhook)."""
        until = f" until {_human(self.until)}" if self.until else ""
        message = f": {self.message}" if self.message else ""
        if self.event in ("on", "update", "start"):
            verb = {
                "on": "Maintenance ON",
                "update": "Maintenance changed",
                "start": "Scheduled maintenance started",
            }
            return f"{verb[self.event]} (mode {self.mode}){until}{message}"
        if self.event == "off":
            return "Maintenance OFF"
        if self.event == "end":
            return "Scheduled maintenance ended"
        start = _human(self.starts_at) if self.starts_at else "?"
        if self.event == "schedule":
            return f"Maintenance scheduled from {start}{until} (mode {self.mode}){message}"
        if self.event == "cancel":
            return f"Scheduled maintenance from {start} cancelled"
        if self.event == "feature-off":
            return f"Feature {self.feature} OFF{message}"
        return f"Feature {self.feature} ON again"

    @classmethod
    def parse(cls, line: bytes) -> Entry | None:
        """Read a stored line; ``None`` when it is not a valid entry. Never raises."""
        if len(line) > MAX_ENTRY_BYTES:
            return None
        try:
            data = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            return None
        if not isinstance(data, dict):
            return None
        try:
            mode = data.get("mode")
            if mode is not None and mode not in MODES:
                return None
            event = _name(data.get("event"))
            if event not in EVENTS:
                return None
            return cls(
                at=parse_instant(_name(data.get("at"))),
                event=event,
                who=_name(data.get("who")),
                origin=_name(data.get("origin")),
                mode=mode,
                message=_optional(data.get("message"), MAX_MESSAGE_LENGTH),
                until=_optional_instant(data.get("until")),
                starts_at=_optional_instant(data.get("starts_at")),
                feature=_optional(data.get("feature"), _MAX_NAME),
            )
        except (TypeError, ValueError):  # ConfigurationError of a bad instant is a ValueError
            return None


def who_am_i(user: str | None) -> str:
    """``user@host`` for the process making a change."""
    # encodable: a user name from a non-UTF-8 environment carries lone surrogates.
    return encodable(f"{user or '?'}@{host_name()}")


def host_name() -> str:
    """This host's name, as :func:`socket.gethostname` gives it on POSIX (both read the
    kernel's node name), without importing :mod:`socket` into the switch."""
    return os.uname().nodename


def _instant(moment: datetime | None) -> str | None:
    return None if moment is None else format_instant(moment)


def _human(moment: datetime | None) -> str:
    return "" if moment is None else f"{moment:%Y-%m-%d %H:%M} UTC"


def _name(value: object) -> str:
    if not isinstance(value, str) or not value or len(value) > _MAX_NAME:
        raise TypeError(value)
    return encodable(value)


def _optional(value: object, limit: int) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(value)
    return encodable(value)[:limit]


def _optional_instant(value: object) -> datetime | None:
    return None if value is None else parse_instant(_name(value))
