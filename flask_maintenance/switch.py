"""The operator's switch without Flask: ``on``, ``off`` and ``status`` against a backend.

``flask maintenance on|off|status`` (:mod:`flask_maintenance.cli`) and the ``flask-maintenance``
console script (:mod:`flask_maintenance.console`) both run these, so they print the same lines
and fail with the same errors; the writes themselves are :class:`~flask_maintenance.writes.Writer`'s.
Nothing here imports Flask or Click: the console script must start fast on a drowning machine.

Errors are raised, never printed: :class:`ConfigurationError` is bad input (exit status 2),
any other :class:`MaintenanceError` a backend that failed (exit status 1).
"""

from __future__ import annotations

from . import times
from .errors import ConfigurationError
from .model import LONG_OUTAGE, Plan, State, resolve
from .times import format_instant

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from datetime import datetime, timedelta
    from typing import Any

    from .backends import Backend

    Say = Callable[[str], None]


def read_state(backend: Backend, default_retry: int) -> State:
    """The state readers act on now, read from ``backend`` (the lock, the plan and the clock)."""
    lock = State.parse(backend.read(), default_retry)[0]
    plan = Plan.parse(backend.sibling("plan").read())[0]
    return resolve(lock, plan, times.utcnow(), default_retry)


def stored(backend: Backend, default_retry: int) -> tuple[State, Plan]:
    """The lock and the plan as stored now, read without a word (the change will report)."""
    lock, _ = State.parse(backend.read(), default_retry)
    plan, _ = Plan.parse(backend.sibling("plan").read())
    return lock, plan


def end_of(
    until: datetime | None, duration: timedelta | None, start: datetime | None = None
) -> datetime | None:
    """The expected end from ``--until`` or ``--for`` (counted from ``start``, else now).

    :raises ConfigurationError: when both are given.
    """
    if until is not None and duration is not None:
        raise ConfigurationError("use either --until or --for, not both")
    if duration is not None:
        return (start or times.utcnow().replace(microsecond=0)) + duration
    return until


def switch_on(before: State, after: State, describe_backend: str, say: Say) -> None:
    """Report an ``on`` of the whole site: what changed when it was already on, then the state."""
    if before.active:
        changes = _changes(before, after)
        say(
            f"Maintenance was already ON: {'changed ' + ', '.join(changes) if changes else 'nothing changed'}"
        )
    describe(after, describe_backend, say)


def switch_off(changed: bool, after: State, describe_backend: str, say: Say) -> None:
    """Report an ``off`` of the whole site."""
    if not changed:
        say("Maintenance was already OFF; nothing changed")
    describe(after, describe_backend, say)


def status_json(state: State, describe_backend: str, extra: Mapping[str, Any] | None = None) -> str:
    """``status --json``: the state, the ``Retry-After`` being sent, the backend, and ``extra``
    (what only the app can tell, such as its workers)."""
    import json  # only this report needs it: `on` and `off` print lines

    sent = {
        "retry_after": state.retry_after() if state.blocking else None,
        "overdue": state.overdue(),
        "long_outage": state.long_outage(),
    }
    return json.dumps({**state.to_dict(), **sent, "backend": describe_backend, **(extra or {})}, indent=2)


def describe(state: State, describe_backend: str, say: Say) -> None:
    """The state as the operator reads it, a line at a time."""
    if not state.active:
        say("Maintenance is OFF")
        _describe_plan(state, say)
        say(f"  backend:      {describe_backend}")
        return
    say(f"Maintenance is ON (mode {state.mode})")
    if state.started_at is not None:
        say(f"  since:        {format_instant(state.started_at)}")
    if state.user or state.host:
        say(f"  by:           {state.user or '?'}@{state.host or '?'}")
    say(f"  retry after:  {state.retry_after()} s")
    if state.ends_at is not None:
        now = times.utcnow().replace(microsecond=0)
        if state.overdue(now):
            when = f"OVERDUE by {now - state.ends_at}"
        else:
            when = f"in {state.ends_at - now}"
        say(f"  expected end: {format_instant(state.ends_at)} ({when})")
    say(f"  message:      {state.message or '(default)'}")
    for tag, text in sorted(state.messages.items()):
        say(f"  message [{tag}]: {text}")
    if state.long_outage():
        say(
            f"  warning:      full maintenance for more than {LONG_OUTAGE.total_seconds() // 3600:.0f} hours: "
            "search engines may start dropping the site's pages (readonly or banner mode keeps it crawlable)"
        )
    _describe_plan(state, say)
    say(f"  backend:      {describe_backend}")


def _describe_plan(state: State, say: Say) -> None:
    window = state.scheduled
    if window is not None:
        end = f" until {format_instant(window.ends_at)}" if window.ends_at else ""
        auto = ", ends by itself" if window.auto_off else ""
        say(f"  scheduled:    {format_instant(window.starts_at)}{end} (mode {window.mode}{auto})")
    for name, feature in sorted(state.features.items()):
        since = f" since {format_instant(feature.started_at)}" if feature.started_at else ""
        say(f"  feature off:  {name}{since}{': ' + feature.message if feature.message else ''}")


def _changes(before: State, after: State) -> list[str]:
    """What an ``on`` while on changed, for the operator."""
    changes = [
        f"{name} {shown(old)} -> {shown(new)}"
        for name, old, new, shown in (
            ("mode", before.mode, after.mode, str),
            (
                "retry",
                before.retry,
                after.retry,
                lambda v: "(counting down / default)" if v is None else f"{v} s",
            ),
            ("message", before.message, after.message, lambda v: repr(v) if v else "(default)"),
            ("expected end", before.ends_at, after.ends_at, lambda v: format_instant(v) if v else "(none)"),
            (
                "translations",
                before.messages,
                after.messages,
                lambda v: ", ".join(f"{tag}={text!r}" for tag, text in sorted(v.items())) or "(none)",
            ),
        )
        if old != new
    ]
    if before.window != after.window:
        changes.append("new bypass link (the earlier link and cookies no longer work)")
    return changes
