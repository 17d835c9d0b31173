"""The maintenance state and the plan beside it: immutable values, parsed tolerantly, failing closed.

Two documents live in the backend. The lock (the lock file, or the Redis key) is the main switch:
it exists, maintenance is on. The plan (``<lock file>.plan``, or ``<key>:plan``) holds a scheduled
window and the features switched off on their own. Readers combine both with the time of day in
:func:`resolve`, which is how a window starts, and with ``auto_off`` ends, with nobody acting.

Parsing never raises. A document that exists but cannot be understood (damaged JSON, a FIFO, too
large, the wrong Redis type) means full maintenance with the defaults: a switch nobody can read is
treated as on, never as off.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from types import MappingProxyType

from . import rules, times
from .backends.base import Damaged
from .rules import BLOCKING_MODES, FEATURE_NAME, MAX_MESSAGE_LENGTH, MAX_SECONDS, MODES, encodable
from .times import format_instant, parse_instant, seconds_until
from .values import Value, assign

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from .backends.base import Raw

#: Where ``Maintenance.feature`` records its names on a view, command or function.
FEATURES_ATTRIBUTE = "__maintenance_features__"
NO_FEATURES: Mapping[str, Feature] = MappingProxyType({})
NO_MESSAGES: Mapping[str, str] = MappingProxyType({})
#: How long full maintenance may last before ``status`` and the log warn about search engines.
LONG_OUTAGE = timedelta(hours=24)


class Feature(Value):
    """A feature switched off on its own: its views, commands and guarded functions refuse."""

    __slots__ = _fields = __match_args__ = ("name", "message", "started_at")
    name: str
    message: str | None
    started_at: datetime | None

    def __init__(self, name: str, message: str | None = None, started_at: datetime | None = None) -> None:
        assign(self, "name", name)
        assign(self, "message", message)
        assign(self, "started_at", started_at)


class Schedule(Value):
    """A planned window: announced before ``starts_at``, in ``mode`` from then on.

    It ends by itself at ``ends_at`` only with ``auto_off``; otherwise someone runs ``off``.
    """

    __slots__ = _fields = __match_args__ = ("starts_at", "ends_at", "mode", "message", "auto_off")
    starts_at: datetime
    ends_at: datetime | None
    mode: str
    message: str | None
    auto_off: bool

    def __init__(
        self,
        starts_at: datetime,
        ends_at: datetime | None = None,
        mode: str = "full",
        message: str | None = None,
        auto_off: bool = False,
    ) -> None:
        assign(self, "starts_at", starts_at)
        assign(self, "ends_at", ends_at)
        assign(self, "mode", mode)
        assign(self, "message", message)
        assign(self, "auto_off", auto_off)

    def to_dict(self) -> dict[str, Any]:
        return {
            "starts_at": format_instant(self.starts_at),
            "ends_at": _instant(self.ends_at),
            "mode": self.mode,
            "message": self.message,
            "auto_off": self.auto_off,
        }


class State(Value):
    """One reading of the maintenance switch, as every reader acts on it.

    ``mode`` is ``None`` while off. ``retry`` is the ``Retry-After`` the operator gave (``None``
    when they gave none: then it counts down to ``ends_at``, and is ``default_retry``, the
    configured ``MAINTENANCE_RETRY_AFTER``, without an end or once the end has passed).
    ``user`` and ``host`` say who switched maintenance on; ``token_hash`` is the
    SHA-256 of the bypass secret (the secret itself is never stored) and ``window`` changes with
    every new window, so that bypass cookies from an earlier one stop working. ``scheduled`` is
    the planned window, if any, and ``features`` the features switched off on their own.
    ``messages`` holds the operator's translations of ``message`` by language tag (``de``).
    """

    _fields = __match_args__ = (
        "active",
        "mode",
        "retry",
        "message",
        "started_at",
        "ends_at",
        "user",
        "host",
        "window",
        "token_hash",
        "scheduled",
        "features",
        "messages",
        "default_retry",
    )
    _unshown = ("default_retry",)
    __slots__ = (*_fields, "blocking", "idle", "languages")
    active: bool
    mode: str | None
    retry: int | None
    message: str | None
    started_at: datetime | None
    ends_at: datetime | None
    user: str | None
    host: str | None
    window: str | None
    token_hash: str | None
    scheduled: Schedule | None
    features: Mapping[str, Feature]
    messages: Mapping[str, str]
    default_retry: int
    # Derived once here, because every request tests them.
    #: True when some requests are refused (modes ``full`` and ``readonly``).
    blocking: bool
    #: Nothing to do for any request: off, nothing planned, no feature switched off.
    idle: bool
    #: The tags of ``messages``, sorted: what a visitor's ``Accept-Language`` chooses from.
    languages: tuple[str, ...]

    def __init__(
        self,
        active: bool,
        mode: str | None = None,
        retry: int | None = None,
        message: str | None = None,
        started_at: datetime | None = None,
        ends_at: datetime | None = None,
        user: str | None = None,
        host: str | None = None,
        window: str | None = None,
        token_hash: str | None = None,
        scheduled: Schedule | None = None,
        features: Mapping[str, Feature] = NO_FEATURES,
        messages: Mapping[str, str] = NO_MESSAGES,
        default_retry: int = 60,
    ) -> None:
        mode = (mode or "full") if active else None
        assign(self, "active", active)
        assign(self, "mode", mode)
        assign(self, "retry", retry)
        assign(self, "message", message)
        assign(self, "started_at", started_at)
        assign(self, "ends_at", ends_at)
        assign(self, "user", user)
        assign(self, "host", host)
        assign(self, "window", window)
        assign(self, "token_hash", token_hash)
        assign(self, "scheduled", scheduled)
        assign(self, "features", features)
        assign(self, "messages", messages)
        assign(self, "default_retry", default_retry)
        assign(self, "blocking", mode in BLOCKING_MODES)
        assign(self, "idle", not active and scheduled is None and not features)
        assign(self, "languages", tuple(sorted(messages)))

    @property
    def banner(self) -> str | None:
        """What a banner says now, in English: the message while on, the announcement of a
        planned window before it starts, else ``None`` (templates get it in the visitor's
        language as ``maintenance_banner``)."""
        from .texts import banner  # only pages and banners need the catalog

        return banner(self)

    def long_outage(self, now: datetime | None = None) -> bool:
        """Whether full maintenance has lasted more than 24 hours: search engines then start to
        drop the site's pages (a 503 is meant to be short)."""
        return (
            self.mode == "full"
            and self.started_at is not None
            and (now or times.utcnow()) - self.started_at > LONG_OUTAGE
        )

    def overdue(self, now: datetime | None = None) -> bool:
        """Whether the expected end has passed while maintenance is still on."""
        return self.active and self.ends_at is not None and (now or times.utcnow()) >= self.ends_at

    def retry_after(self, now: datetime | None = None) -> int:
        """Seconds for ``Retry-After``: ``retry`` when the operator gave one, else the time left
        until ``ends_at``, else (no end, or it has passed) ``default_retry``.

        Never 0 or 1 for an overdue window: clients and crawlers would retry every second.
        """
        if self.retry is not None:
            return max(0, self.retry)
        if self.ends_at is not None:
            now = now or times.utcnow()
            if now < self.ends_at:
                return max(1, seconds_until(self.ends_at, now))
        return self.default_retry

    def to_dict(self) -> dict[str, Any]:
        """The operator's view (``status --json``): the attributes, key for key, as JSON values.

        Only the bypass secret's hash and the window id are left out. The public status
        endpoint shows less: no ``user`` or ``host``, and the ``Retry-After`` being sent
        instead of ``retry``.
        """
        return {
            "active": self.active,
            **self._window_fields(),
            "scheduled": None if self.scheduled is None else self.scheduled.to_dict(),
            "features": sorted(self.features),
        }

    def to_json(self) -> bytes:
        """The lock's content (only meaningful for an active state)."""
        record = {**self._window_fields(), "window": self.window, "token_hash": self.token_hash}
        # Only what is set: a lock without translations is what earlier versions wrote.
        data = {key: value for key, value in record.items() if value is not None and value != {}}
        return _document(data)

    def _window_fields(self) -> dict[str, Any]:
        """What the lock says about the window, as JSON values (both documents share them)."""
        return {
            "mode": self.mode,
            "retry": self.retry,
            "message": self.message,
            "started_at": _instant(self.started_at),
            "ends_at": _instant(self.ends_at),
            "user": self.user,
            "host": self.host,
            "messages": dict(sorted(self.messages.items())),
        }

    @classmethod
    def parse(cls, raw: Raw, default_retry: int) -> tuple[State, str | None]:
        """Read the lock's content; ``None`` means there is no lock (off).

        Never raises. Anything else means ON (fail closed): an empty document is full
        maintenance with the defaults, a damaged one too, and fields of the wrong type fall back
        to their defaults. The second item says what was wrong, for one warning.
        """
        if raw is None:
            return OFF, None
        default = cls(active=True, default_retry=default_retry)
        if isinstance(raw, Damaged):
            return default, f"the maintenance lock is unreadable ({raw.reason}); using full maintenance"
        if not raw.strip():
            return default, None
        data = _json_object(raw)
        if not isinstance(data, dict):
            return default, f"the maintenance lock is {data}; using full maintenance"
        problems: list[str] = []
        state = default.replace(
            mode=_field(data, "mode", _mode, "full", problems),
            retry=_field(data, "retry", _retry, None, problems),
            message=_field(data, "message", _message, None, problems),
            started_at=_field(data, "started_at", _when, None, problems),
            ends_at=_field(data, "ends_at", _when, None, problems),
            user=_field(data, "user", _text, None, problems),
            host=_field(data, "host", _text, None, problems),
            window=_field(data, "window", _text, None, problems),
            token_hash=_field(data, "token_hash", _text, None, problems),
            messages=_field(data, "messages", _messages, NO_MESSAGES, problems),
        )
        warning = None
        if problems:
            warning = f"the maintenance lock has invalid {', '.join(problems)}; using defaults for them"
        return state, warning


OFF = State(active=False)


class Plan(Value):
    """The second document: at most one schedule, and the features switched off.

    ``damage`` says why a stored plan could not be understood; readers then fail closed (full
    maintenance) and writers refuse to overwrite it, so nobody's plan is lost by accident.
    """

    __slots__ = _fields = __match_args__ = ("schedule", "features", "damage")
    schedule: Schedule | None
    features: Mapping[str, Feature]
    damage: str | None

    def __init__(
        self,
        schedule: Schedule | None = None,
        features: Mapping[str, Feature] = NO_FEATURES,
        damage: str | None = None,
    ) -> None:
        assign(self, "schedule", schedule)
        assign(self, "features", features)
        assign(self, "damage", damage)

    def to_json(self) -> bytes | None:
        """The stored form; ``None`` for an empty plan, which is stored as no document at all."""
        if self.schedule is None and not self.features:
            return None
        data: dict[str, Any] = {}
        if self.schedule is not None:
            data["schedule"] = self.schedule.to_dict()
        if self.features:
            data["features"] = {
                name: {"message": feature.message, "started_at": _instant(feature.started_at)}
                for name, feature in sorted(self.features.items())
            }
        return _document(data)

    def with_feature(self, feature: Feature) -> Plan:
        return self.replace(features=MappingProxyType({**self.features, feature.name: feature}))

    def without_feature(self, name: str) -> Plan:
        return self.replace(features=MappingProxyType({k: v for k, v in self.features.items() if k != name}))

    @classmethod
    def parse(cls, raw: Raw) -> tuple[Plan, str | None]:
        """Read the plan; ``None`` (no document) is the empty plan. Never raises.

        A plan that cannot be understood, in whole or in part, comes back with ``damage`` set.
        """
        if raw is None or (not isinstance(raw, Damaged) and not raw.strip()):
            return EMPTY_PLAN, None
        if isinstance(raw, Damaged):
            return _damaged(f"is unreadable ({raw.reason})")
        data = _json_object(raw)
        if not isinstance(data, dict):
            return _damaged(f"is {data}")
        try:
            schedule = _schedule(data.get("schedule"))
            raw_features = data.get("features") or {}
            if not isinstance(raw_features, dict):
                raise TypeError("features")
            features = {name: _feature(name, entry) for name, entry in raw_features.items()}
        except (TypeError, ValueError) as error:
            return _damaged(f"has an invalid entry ({_entry(error)})")
        return cls(schedule=schedule, features=MappingProxyType(features)), None


EMPTY_PLAN = Plan()


def _damaged(problem: str) -> tuple[Plan, str]:
    damage = f"the maintenance plan {problem}"
    return Plan(damage=damage), f"{damage}; using full maintenance until it is fixed or removed"


def resolve(lock: State, plan: Plan, now: datetime, default_retry: int = 60) -> State:
    """The state readers act on at ``now``: the main switch, else the schedule, plus features.

    :param default_retry: the configured ``MAINTENANCE_RETRY_AFTER``, for a started window (the
        lock is off then, so it has no ``default_retry`` of its own).
    """
    if plan.damage is not None:
        # Fail closed, but keep the lock's window so that admins' bypass cookies still work.
        return lock.replace(mode="full") if lock.active else State(active=True, default_retry=default_retry)
    schedule = plan.schedule
    if lock is OFF and schedule is None and not plan.features:
        return lock
    state = lock
    if schedule is not None:
        over = schedule.ends_at is not None and now >= schedule.ends_at
        if over and schedule.auto_off:
            schedule = None  # a finished window is forgotten by every reader
        elif not lock.active and schedule.starts_at <= now:
            state = State(
                active=True,
                mode=schedule.mode,
                message=schedule.message,
                started_at=schedule.starts_at,
                ends_at=schedule.ends_at,
                default_retry=default_retry,
            )
    return state.replace(scheduled=schedule, features=plan.features)


def features_of(target: object) -> frozenset[str]:
    """The feature names ``Maintenance.feature`` gave to a view, command or function."""
    return frozenset(getattr(target, FEATURES_ATTRIBUTE, ()))


# -- tolerant field readers ------------------------------------------------------------------


def _document(data: dict[str, Any]) -> bytes:
    """A document as stored: indented, sorted JSON ending with a newline."""
    import json  # here and below: an empty lock (the usual one) is read without it

    return (json.dumps(data, indent=2, sort_keys=True) + "\n").encode()


def _json_object(raw: bytes) -> dict[str, Any] | str:
    """The parsed object, or a few words saying what the content is instead."""
    import json

    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return "not valid JSON"
    return data if isinstance(data, dict) else "not a JSON object"


def _instant(moment: datetime | None) -> str | None:
    return None if moment is None else format_instant(moment)


def _field(data: dict[str, Any], key: str, convert: Any, default: Any, problems: list[str]) -> Any:
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
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_SECONDS:
        raise ValueError(value)
    return value


def _when(value: object) -> datetime:
    return parse_instant(_text(value))


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(value)
    return encodable(value)


def _message(value: object) -> str:
    """A stored message: text, encodable, cut to the maximum length (a hand edit may exceed it)."""
    return _text(value)[:MAX_MESSAGE_LENGTH]


def _messages(value: object) -> Mapping[str, str]:
    """Stored translations: each tag valid and written as ``on`` writes it, each text a message."""
    if not isinstance(value, dict):
        raise TypeError(value)
    checked = {}
    for tag, text in value.items():
        if rules.language_tag(tag) != tag:
            raise ValueError(tag)
        checked[tag] = _message(text)
    return MappingProxyType(checked)


def _schedule(value: object) -> Schedule | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise TypeError("schedule")
    try:
        ends_at = value.get("ends_at")
        message = value.get("message")
        return Schedule(
            starts_at=_when(value.get("starts_at")),
            ends_at=None if ends_at is None else _when(ends_at),
            mode=_mode(value.get("mode", "full")),
            message=None if message is None else _message(message),
            auto_off=value.get("auto_off") is True,
        )
    except (TypeError, ValueError):
        raise ValueError("schedule") from None


def _feature(name: str, entry: object) -> Feature:
    if not re.fullmatch(FEATURE_NAME, name):
        raise ValueError(f"feature {name!r}")
    if entry is None:
        entry = {}
    if not isinstance(entry, dict):
        raise TypeError(f"feature {name!r}")
    try:
        message = entry.get("message")
        started_at = entry.get("started_at")
        return Feature(
            name=name,
            message=None if message is None else _message(message),
            started_at=None if started_at is None else _when(started_at),
        )
    except (TypeError, ValueError):
        raise ValueError(f"feature {name!r}") from None


def _entry(error: Exception) -> str:
    return str(error.args[0]) if error.args else type(error).__name__
