"""Every change to the maintenance state: validated once, then written atomically.

Each method checks its input with :mod:`flask_maintenance.rules` (the command line reuses the
same checks as its parameter types), then changes the lock and the plan in one
:meth:`Backend.update <flask_maintenance.backends.Backend.update>`, which holds the backend's
write lock (``flock`` for files, ``WATCH``/``MULTI`` for Redis): two operators changing the plan
at the same instant never lose each other's change. A change that changes nothing writes
nothing, and a plan that cannot be parsed is never overwritten.

Each change that changed something is then told (:mod:`flask_maintenance.notify`): an entry in
the history and a notification to the webhooks, after the write and outside its lock, so that
neither makes a write slower or less atomic, and neither can fail it.
"""

from __future__ import annotations

import os
import sys
from types import MappingProxyType

from . import rules, times
from .backends.base import MAX_DOCUMENT_BYTES, Damaged
from .errors import ConfigurationError, MaintenanceError
from .history import Entry, host_name, who_am_i
from .model import NO_FEATURES, NO_MESSAGES, OFF, Feature, Plan, Schedule, State, resolve

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from datetime import datetime
    from typing import Any

    from .backends import Backend, Raw
    from .backends.base import Change
    from .notify import Announcer

    #: The stored (lock, plan) before and after one update.
    Pairs = tuple[tuple[Raw, Raw], tuple[Raw, Raw]]


class Writer:
    """Writes one app's state to its backend.

    :param backend: where the lock (and, beside it, the plan) lives.
    :param default_retry: ``MAINTENANCE_RETRY_AFTER``, to read a lock that sets none.
    :param announcer: tells of every change (history, webhooks); ``None`` tells nobody.
    """

    def __init__(
        self,
        backend: Backend,
        default_retry: int,
        announcer: Announcer | None = None,
        origin: str | None = None,
    ) -> None:
        """:param origin: what the history names as the origin of changes; by default ``cli``
        under a Click command, else ``python``."""
        self.backend = backend
        self.default_retry = default_retry
        self.announcer = announcer
        self.origin = origin

    def enable(
        self,
        mode: str | None = None,
        retry: int | str | None = None,
        message: str | None = None,
        ends_at: datetime | str | None = None,
        token_hash: str | None = None,
        translations: Mapping[str, str] | Iterable[Any] | None = None,
    ) -> tuple[State | None, State]:
        """Switch on, or change what is named while on; return the lock before and after.

        Off (or with a damaged lock), this starts a new window in ``mode`` (default ``full``).
        On, only the arguments given change: ``None`` keeps the current value, and an empty
        ``message`` removes it. A ``token_hash`` (a new bypass secret) starts a new window, so
        that earlier bypass links and cookies stop working; otherwise the window is kept.
        ``translations`` (see :func:`rules.translations <flask_maintenance.rules.translations>`)
        replace the message's translations; a new ``message`` without them drops the old ones,
        which translated the old message.

        :raises ConfigurationError: for a bad argument (nothing is written).
        """
        now = self._now()
        mode = None if mode is None else rules.mode(mode)
        retry = None if retry is None else rules.seconds(retry, "retry")
        new_message = None if message is None else rules.message(message)
        end = None if ends_at is None else rules.future_instant(ends_at, "ends_at", now)
        messages: Mapping[str, str] | None = None
        if translations is not None:
            messages = MappingProxyType(rules.translations(translations))
        if messages is None and message is not None:
            messages = NO_MESSAGES
        before: State | None = None
        after = OFF

        def change(lock: Raw, plan: Raw) -> tuple[Raw, Raw]:
            nonlocal before, after
            current, problem = State.parse(lock, self.default_retry)
            if lock is None:
                # A planned window that has started is on too: `on` takes it over as it is.
                current = resolve(OFF, Plan.parse(plan)[0], now, self.default_retry).replace(scheduled=None)
                problem = None if current.active else "off"
            if not current.active or isinstance(lock, Damaged) or problem is not None:
                before = None
                after = State(
                    active=True,
                    mode=mode or "full",
                    retry=retry,
                    message=new_message,
                    started_at=now,
                    ends_at=end,
                    user=_user(),
                    host=host_name(),
                    window=_window_id(),
                    token_hash=token_hash,
                    messages=messages or NO_MESSAGES,
                    default_retry=self.default_retry,
                )
            else:
                before = current
                after = current.replace(
                    features=NO_FEATURES,
                    mode=mode or current.mode,
                    retry=current.retry if retry is None else retry,
                    message=current.message if message is None else new_message,
                    ends_at=current.ends_at if end is None else end,
                    token_hash=current.token_hash if token_hash is None else token_hash,
                    window=current.window if token_hash is None else _window_id(),
                    messages=current.messages if messages is None else messages,
                )
                if after == current:
                    return lock, plan  # nothing named changes anything: write nothing
            data = after.to_json()
            if len(data) > MAX_DOCUMENT_BYTES:
                raise ConfigurationError(
                    f"the lock would be larger than {MAX_DOCUMENT_BYTES // 1024} KiB: shorten the translations"
                )
            return data, plan

        pairs = self._update(change)
        self._tell(
            pairs,
            "on" if before is None else "update",
            mode=after.mode,
            message=after.message,
            until=after.ends_at,
        )
        return before, after

    def disable(self) -> bool:
        """Switch off; a scheduled window that has started ends too. Return whether it was on."""
        now = self._now()
        was_on = False

        def change(lock: Raw, raw_plan: Raw) -> tuple[Raw, Raw]:
            nonlocal was_on
            plan = self._plan(raw_plan)
            started = plan.schedule is not None and plan.schedule.starts_at <= now
            was_on = lock is not None or started
            return None, _stored(plan.replace(schedule=None) if started else plan)

        self._tell(self._update(change), "off")
        return was_on

    def schedule(
        self,
        starts_at: datetime | str,
        ends_at: datetime | str | None = None,
        *,
        mode: str = "full",
        message: str | None = None,
        auto_off: bool = False,
    ) -> tuple[Schedule, Schedule | None]:
        """Plan a window; return it and the one it replaced, if any.

        :raises ConfigurationError: for a start in the past or more than a year away, an end
            before the start, or ``auto_off`` without an end.
        """
        now = self._now()
        start = rules.future_instant(starts_at, "start", now)
        end = None if ends_at is None else rules.future_instant(ends_at, "end", now)
        if end is not None and end <= start:
            raise ConfigurationError("the end must come after the start")
        if auto_off and end is None:
            raise ConfigurationError("auto_off needs an end time")
        window = Schedule(start, end, rules.mode(mode), rules.message(message), auto_off)
        replaced: Schedule | None = None

        def change(lock: Raw, raw_plan: Raw) -> tuple[Raw, Raw]:
            nonlocal replaced
            plan = self._plan(raw_plan)
            replaced = plan.schedule
            return lock, _stored(plan.replace(schedule=window))

        self._tell(self._update(change), "schedule", **_window(window))
        return window, replaced

    def cancel(self) -> Schedule | None:
        """Drop the scheduled window; return it (``None``: there was none, nothing written)."""
        cancelled: Schedule | None = None

        def change(lock: Raw, raw_plan: Raw) -> tuple[Raw, Raw]:
            nonlocal cancelled
            plan = self._plan(raw_plan)
            cancelled = plan.schedule
            return lock, _stored(plan.replace(schedule=None))

        pairs = self._update(change)
        if cancelled is not None:
            self._tell(pairs, "cancel", **_window(cancelled))
        return cancelled

    def switch_feature_off(self, name: str, message: str | None = None) -> bool:
        """Switch one feature off; return whether it was on. Already off, only its message changes."""
        name = rules.feature_name(name)
        message = rules.message(message)
        now = self._now()
        was_on = False

        def change(lock: Raw, raw_plan: Raw) -> tuple[Raw, Raw]:
            nonlocal was_on
            plan = self._plan(raw_plan)
            current = plan.features.get(name)
            was_on = current is None
            started_at = now if current is None else current.started_at
            return lock, _stored(plan.with_feature(Feature(name, message, started_at)))

        self._tell(self._update(change), "feature-off", feature=name, message=message)
        return was_on

    def switch_feature_on(self, name: str) -> bool:
        """Switch one feature back on; return whether it was off."""
        name = rules.feature_name(name)
        was_off = False

        def change(lock: Raw, raw_plan: Raw) -> tuple[Raw, Raw]:
            nonlocal was_off
            plan = self._plan(raw_plan)
            was_off = name in plan.features
            return lock, _stored(plan.without_feature(name))

        self._tell(self._update(change), "feature-on", feature=name)
        return was_off

    def restore_lock(self, previous: Raw) -> None:
        """Put back a lock read earlier, whatever is there now (``Maintenance.enabled``)."""
        self._tell_lock(self._update(lambda lock, plan: (previous, plan)))

    def revoke_secret(self, token_hash: str, before: State) -> None:
        """Take a bypass secret back from the lock, if it still holds it: the one ``window``
        made for its block, when the window outlives the block (only the block had it). The
        secret and window there were ``before`` come back, so earlier bypass links work again.
        """

        def change(lock: Raw, plan: Raw) -> tuple[Raw, Raw]:
            current, problem = State.parse(lock, self.default_retry)
            if problem is not None or not current.active or current.token_hash != token_hash:
                return lock, plan
            if before.active and before.window is not None:
                return current.replace(token_hash=before.token_hash, window=before.window).to_json(), plan
            return current.replace(token_hash=None).to_json(), plan

        # Not told: the mode, message and end are as they were; only who may pass changed.
        self._update(change)

    def replace_lock(self, expected: Raw, new: Raw) -> bool:
        """Write ``new`` as the lock only if it still holds ``expected`` (what this process wrote).

        How ``run`` and ``window`` give back the state they found without undoing a change
        somebody else made meanwhile. Return whether it was written.
        """
        replaced = False

        def change(lock: Raw, plan: Raw) -> tuple[Raw, Raw]:
            nonlocal replaced
            replaced = lock == expected
            return (new if replaced else lock), plan

        self._tell_lock(self._update(change))
        return replaced

    def _update(self, change: Change) -> Pairs | None:
        """Run ``change`` in the backend's update; what was stored before and after it, or
        ``None`` when it wrote nothing."""
        seen: list[Pairs] = []

        def recording(lock: Raw, plan: Raw) -> tuple[Raw, Raw]:
            new = change(lock, plan)
            seen[:] = [((lock, plan), new)]  # Redis may run it again: the last run is the one
            return new

        self.backend.update(recording)
        return seen[0] if seen and seen[0][0] != seen[0][1] else None

    def _tell(self, pairs: Pairs | None, event: str, **fields: Any) -> None:
        """Tell the announcer of a change that wrote something."""
        if pairs is None or self.announcer is None:
            return
        (lock, plan) = pairs[1]
        state = resolve(
            State.parse(lock, self.default_retry)[0], Plan.parse(plan)[0], self._now(), self.default_retry
        )
        origin = self.origin or _origin()
        entry = Entry(at=self._now(), event=event, who=who_am_i(_user()), origin=origin, **fields)
        try:
            self.announcer.announce(self.backend, entry, state)
        except Exception:  # the change is written: telling of it must never look like it failed
            import logging  # only this failure logs: the switch starts without it

            logging.getLogger("flask_maintenance").warning(
                "the maintenance change was made but not recorded or announced", exc_info=True
            )

    def _tell_lock(self, pairs: Pairs | None) -> None:
        """Tell of a lock put back as it was (``enabled``, ``window``, ``run``)."""
        if pairs is None:
            return
        before, after = (
            State.parse(pairs[0][0], self.default_retry)[0],
            State.parse(pairs[1][0], self.default_retry)[0],
        )
        if not after.active:
            self._tell(pairs, "off")
        else:
            event = "update" if before.active else "on"
            self._tell(pairs, event, mode=after.mode, message=after.message, until=after.ends_at)

    def _plan(self, raw: Raw) -> Plan:
        plan, _ = Plan.parse(raw)
        if plan.damage is not None:
            raise MaintenanceError(
                f"{plan.damage} ({self.backend.sibling('plan').describe()}): nothing was changed. "
                "Look at it, then remove it to start a new plan"
            )
        return plan

    def _now(self) -> datetime:
        return times.utcnow().replace(microsecond=0)


def _stored(plan: Plan) -> bytes | None:
    data = plan.to_json()
    if data is not None and len(data) > MAX_DOCUMENT_BYTES:
        raise ConfigurationError(
            f"the plan would be larger than {MAX_DOCUMENT_BYTES // 1024} KiB "
            f"({len(plan.features)} features switched off): switch some back on first"
        )
    return data


def _window(window: Schedule) -> dict[str, Any]:
    """What the history says of a planned window."""
    return {
        "mode": window.mode,
        "message": window.message,
        "until": window.ends_at,
        "starts_at": window.starts_at,
    }


def _origin() -> str:
    """``cli`` under a Click command (the `flask` command, or a test's CLI runner), else ``python``.

    Click is looked up, not imported: without it loaded there is no command, and the
    ``flask-maintenance`` switch, which must start fast, does not load it.
    """
    click = sys.modules.get("click")
    return "cli" if click is not None and click.get_current_context(silent=True) is not None else "python"


def _window_id() -> str:
    """A new window's id: 16 random hex digits (what :func:`secrets.token_hex` gives, without
    importing :mod:`secrets` and :mod:`hashlib` into the switch)."""
    return os.urandom(8).hex()


def _user() -> str | None:
    import getpass  # only a write needs it (and termios with it): not the web workers' imports

    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for this uid, e.g. in some containers
        return None
