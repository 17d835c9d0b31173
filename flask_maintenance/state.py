"""The immutable maintenance state: parsed tolerantly (failing closed) and serialised as JSON."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from .times import MAX_DURATION, format_instant, parse_instant, seconds_until, utcnow

if TYPE_CHECKING:
    from .plan import Feature, Schedule

MODES = ("full", "readonly", "banner")
#: Modes in which requests (and, by default, commands) are refused.
BLOCKING_MODES = ("full", "readonly")
# Anything longer is not a message an operator typed; cut it so pages and headers stay small.
MAX_MESSAGE_LENGTH = 2000
# A lock file this large is damaged: read no more than this much of it.
MAX_STATE_BYTES = 64 * 1024
DEFAULT_BANNER = "Maintenance in progress"
NO_FEATURES: Mapping[str, Any] = MappingProxyType({})
MAX_RETRY = int(MAX_DURATION.total_seconds())


@dataclass(frozen=True)
class State:
    """One reading of the maintenance switch.

    ``retry`` is the configured ``Retry-After`` when the state did not set one. ``user`` and
    ``host`` say who switched maintenance on; ``token_hash`` is the SHA-256 of the bypass secret
    (the secret itself is never stored) and ``window`` changes with every ``on`` so that bypass
    cookies from an earlier window stop working. ``scheduled`` is the planned window, if any,
    and ``features`` the features switched off on their own (see :mod:`flask_maintenance.plan`).
    """

    active: bool
    mode: str = "full"
    retry: int | None = None
    message: str | None = None
    started_at: datetime | None = None
    ends_at: datetime | None = None
    user: str | None = None
    host: str | None = None
    window: str | None = None
    token_hash: str | None = None
    scheduled: Schedule | None = None
    features: Mapping[str, Feature] = field(default_factory=lambda: NO_FEATURES)
    # Derived once here, because every request tests them.
    #: True when some requests are refused (modes ``full`` and ``readonly``).
    blocking: bool = field(init=False, repr=False, compare=False)
    #: Nothing to do for any request: off, nothing planned, no feature switched off.
    idle: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "blocking", self.active and self.mode in BLOCKING_MODES)
        idle = not self.active and self.scheduled is None and not self.features
        object.__setattr__(self, "idle", idle)

    @property
    def banner(self) -> str | None:
        """What a banner says now: the message while on, the announcement of a planned window
        before it starts, else ``None``."""
        if self.active:
            return self.message or DEFAULT_BANNER
        if self.scheduled is not None:
            window = self.scheduled
            text = f"Scheduled maintenance at {window.starts_at:%Y-%m-%d %H:%M} UTC"
            if window.ends_at is not None:
                text += f" until {window.ends_at:%Y-%m-%d %H:%M} UTC"
            return f"{text}: {window.message}" if window.message else text
        return None

    def retry_after(self, now: datetime | None = None) -> int:
        """Seconds for ``Retry-After``: the time left until ``ends_at`` (at least 1), else ``retry``."""
        if self.ends_at is not None:
            return max(1, seconds_until(self.ends_at, now or utcnow()))
        return max(0, self.retry or 0)

    def to_dict(self) -> dict[str, Any]:
        """The operator's view (``status --json``): everything but the secret's hash and window.

        The public status endpoint shows less: see ``responses.public_status``.
        """
        return {
            "active": self.active,
            "mode": self.mode if self.active else None,
            "retry": self.retry,
            "message": self.message,
            "started_at": _instant(self.started_at),
            "ends_at": _instant(self.ends_at),
            "user": self.user,
            "host": self.host,
            "scheduled": None if self.scheduled is None else self.scheduled.to_dict(),
            "features": sorted(self.features),
        }

    def to_json(self) -> bytes:
        """The lock file's content (only meaningful for an active state)."""
        record = {
            "mode": self.mode,
            "retry": self.retry,
            "message": self.message,
            "started_at": _instant(self.started_at),
            "ends_at": _instant(self.ends_at),
            "user": self.user,
            "host": self.host,
            "window": self.window,
            "token_hash": self.token_hash,
        }
        data = {key: value for key, value in record.items() if value is not None}
        return (json.dumps(data, indent=2, sort_keys=True) + "\n").encode()

    @classmethod
    def parse(cls, raw: bytes | None, default_retry: int) -> tuple[State, str | None]:
        """Read a lock file's content; ``None`` means there is no lock file.

        Never raises. Content that cannot be understood still means ON (fail closed): an empty
        file is full maintenance with the defaults, and damaged content or fields of the wrong
        type fall back to those defaults. The second item says what was wrong, for one warning.
        """
        if raw is None:
            return OFF, None
        default = cls(active=True, retry=default_retry)
        if not raw.strip():
            return default, None
        try:
            data = json.loads(raw[:MAX_STATE_BYTES].decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            return default, "the lock file is not valid JSON; using full maintenance"
        if not isinstance(data, dict):
            return default, "the lock file is not a JSON object; using full maintenance"
        problems: list[str] = []
        state = replace(
            default,
            mode=_field(data, "mode", _mode, "full", problems),
            retry=_field(data, "retry", _retry, default_retry, problems),
            message=_field(data, "message", parse_message, None, problems),
            started_at=_field(data, "started_at", _when, None, problems),
            ends_at=_field(data, "ends_at", _when, None, problems),
            user=_field(data, "user", _text, None, problems),
            host=_field(data, "host", _text, None, problems),
            window=_field(data, "window", _text, None, problems),
            token_hash=_field(data, "token_hash", _text, None, problems),
        )
        warning = None
        if problems:
            warning = f"the lock file has invalid {', '.join(problems)}; using defaults for them"
        return state, warning


OFF = State(active=False)


def _instant(moment: datetime | None) -> str | None:
    return None if moment is None else format_instant(moment)


def _field(
    data: dict[str, Any], key: str, convert: Any, default: Any, problems: list[str]
) -> Any:
    value = data.get(key)
    if value is None:
        return default
    try:
        return convert(value)
    except (TypeError, ValueError):
        problems.append(key)
        return default


def _mode(value: object) -> str:
    if value not in MODES:
        raise ValueError(value)
    return str(value)


def _retry(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_RETRY:
        raise ValueError(value)
    return value


def _when(value: object) -> datetime:
    return parse_instant(_text(value))


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(value)
    return encodable(value)


def encodable(text: str) -> str:
    """``text`` with lone surrogates as ``?``.

    A message typed with a non-UTF-8 byte on the command line carries one (``"caf\\udce9"``),
    and no page or header can encode it.
    """
    return text.encode("utf-8", "replace").decode("utf-8")


def parse_message(value: object) -> str:
    """A stored message: text, encodable, cut to the maximum length.

    :raises TypeError: when it is not text.
    """
    return _text(value)[:MAX_MESSAGE_LENGTH]
