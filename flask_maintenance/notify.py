"""Telling of each transition: an entry in the history, and a notification to every webhook.

A change made by :class:`~flask_maintenance.writes.Writer` is told by the process that made it,
right after the write (the history is appended at once; the webhooks are posted in the
background). A scheduled window that starts or ends by itself has no such process: every process
whose cache sees it happen calls :meth:`Announcer.observe`, and the backend's
:meth:`~flask_maintenance.backends.Backend.claim` lets only the first of the fleet tell it.

Failure policy: nothing here fails a switch or a request. A history that cannot be written, a
claim that cannot be made, a webhook that does not answer: each is logged as a warning.
"""

from __future__ import annotations

import time

from . import times
from .errors import MaintenanceError
from .history import SCHEDULE, Entry
from .times import format_instant

TYPE_CHECKING = False
if TYPE_CHECKING:
    import threading
    from collections.abc import Sequence
    from typing import Any

    from .backends import Backend
    from .model import State
    from .webhooks import Webhooks


class Announcer:
    """Records and posts the transitions of one app.

    :param webhooks: ``MAINTENANCE_WEBHOOKS``.
    """

    def __init__(self, webhooks: Sequence[str]) -> None:
        #: ``None`` without webhooks: a web worker then never imports the HTTP client.
        self.webhooks: Webhooks | None = None
        if webhooks:
            from .webhooks import Webhooks

            self.webhooks = Webhooks(webhooks)
        self._observers: list[threading.Thread] = []

    def announce(self, backend: Backend, entry: Entry, state: State) -> None:
        """Tell of a change this process made: ``state`` is the state after it."""
        try:
            backend.append_history(entry.to_line())
        except (MaintenanceError, OSError) as error:
            _warn("the maintenance history was not written: %s", error)
        if self.webhooks is not None:
            self.webhooks.post(notification(entry, state))

    def observe(self, backend: Backend, previous: State, current: State) -> None:
        """Called when a cache sees the state change: tell of a window that started or ended
        by itself, once for the fleet (the claim and the telling run in a background thread:
        the caller may be a request)."""
        entry = by_itself(previous, current)
        if entry is None:
            return
        claim = f"{entry.event} {format_instant(entry.starts_at or entry.at)}"
        # Not a daemon: a `flask` command that saw it must not exit between the claim and the
        # history (its wait is bounded by the backend's own timeouts).
        import threading  # only an app's cache observes: the switch starts without it

        thread = threading.Thread(target=self._announce_once, args=(backend, claim, entry, current))
        self._observers = [*(t for t in self._observers if t.is_alive()), thread]
        thread.start()

    def wait(self, timeout: float) -> bool:
        """Wait for every announcement under way (tests; a process about to exit)."""
        deadline = time.monotonic() + timeout
        for thread in list(self._observers):
            thread.join(max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                return False
        remaining = max(0.0, deadline - time.monotonic())
        return self.webhooks is None or self.webhooks.wait(remaining)

    def _announce_once(self, backend: Backend, claim: str, entry: Entry, state: State) -> None:
        try:
            first = backend.claim(claim)
        except (MaintenanceError, OSError) as error:
            _warn("a scheduled window's %s was not announced: %s", entry.event, error)
            return
        if first:
            self.announce(backend, entry, state)


def _warn(message: str, *args: object) -> None:
    """Log a warning: :mod:`logging` is imported only then, since the switch, which writes
    through the announcer, must start fast."""
    import logging

    logging.getLogger("flask_maintenance").warning(message, *args)


def notification(entry: Entry, state: State) -> dict[str, Any]:
    """What a webhook receives: the ``event``, the public ``status`` document, and a ``text``
    for chat services' incoming webhooks (Slack, Mattermost)."""
    # Imported here: the Flask-free switch writes through the announcer, and needs the page
    # module only when a webhook is configured.
    from .responses import public_status

    return {
        "event": entry.event,
        "text": f"{entry.describe()} (by {entry.who}, from {entry.origin})",
        "status": public_status(state, entry.at),
        "history": entry.to_dict(),
    }


def by_itself(previous: State, current: State) -> Entry | None:
    """The entry for a scheduled window that started or ended with no one acting, if it did."""
    now = times.utcnow().replace(microsecond=0)
    if _scheduled(current) and not _scheduled(previous):
        return Entry(
            at=now,
            event="start",
            who=SCHEDULE,
            origin=SCHEDULE,
            mode=current.mode,
            message=current.message,
            until=current.ends_at,
            starts_at=current.started_at,
        )
    window = previous.scheduled
    if (
        _scheduled(previous)
        and not current.active
        and window is not None
        and window.auto_off
        and window.ends_at is not None
        and now >= window.ends_at
    ):
        return Entry(at=now, event="end", who=SCHEDULE, origin=SCHEDULE, starts_at=window.starts_at)
    return None


def _scheduled(state: State) -> bool:
    """Whether the state is a planned window that has started (no lock: no window id of its own)."""
    window = state.scheduled
    return (
        state.active and state.window is None and window is not None and state.started_at == window.starts_at
    )
