"""What a task queue's worker asks before taking work: may it run now, and on which queues?

Celery (:mod:`flask_maintenance.celery`) and RQ (:mod:`flask_maintenance.rq`) share it, so
both follow the same rules as the app's commands: the modes of ``MAINTENANCE_CLI_BLOCK_MODES``
stop work (``banner`` never does), ``FLASK_MAINTENANCE_FORCE=1`` lets everything run, and a
feature switched off stops the work marked with it.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable
from typing import TYPE_CHECKING

from .errors import BackendError
from .guard import UNKNOWN, Guard, skip_during_maintenance
from .model import State

if TYPE_CHECKING:
    from .gate import Gate
    from .workers import Worker

logger = logging.getLogger("flask_maintenance")

#: The shortest pause between two checks of a worker: a check interval of 0 (read on every
#: request) must not turn a worker's timer into a busy loop.
MIN_PERIOD = 0.1


class WorkGate:
    """Decides whether background work may run now.

    :param guard: reads the state (an app's cached reading, or a backend) and applies the
        block modes.
    :param exempt: names (tasks, queues) whose work runs whatever the state.
    :param interval: how often a worker looks again, in seconds.
    :param worker: the app's record of this process (its heartbeat, and its work in flight for
        ``flask maintenance on --wait``); ``None`` for a worker without an app.
    """

    def __init__(
        self, guard: Guard, exempt: Collection[str], interval: float, worker: Worker | None = None
    ) -> None:
        self.guard = guard
        self.exempt = frozenset(exempt)
        self.period = max(interval, MIN_PERIOD)
        self.worker = worker
        self._warned = False

    def blocking(self, names: Iterable[str] = (), features: Collection[str] = ()) -> State | None:
        """The state that stops this work now, or ``None`` when it may run.

        :param names: the work's names (a task's name, its queue); one that is exempt runs.
        :param features: the work's feature names.
        """
        if not self.exempt.isdisjoint(names):
            return None
        try:
            state = self.guard.blocking_state(features)
        except BackendError as error:
            # Only a guard that reads a backend directly raises (an app's cached reading keeps
            # the last known state): work that may write during a migration is the worse mistake.
            if not self._warned:
                logger.warning("the maintenance state cannot be read (%s): background work waits", error)
                self._warned = True
            return UNKNOWN
        self._warned = False
        return state


def for_gate(gate: Gate, exempt: Collection[str]) -> WorkGate:
    """The gate of an app's workers: its cached state, read once per ``MAINTENANCE_CHECK_INTERVAL``."""
    block_modes = gate.settings.cli_block_modes

    def read() -> tuple[State, Collection[str]]:
        return gate.cache.get(), block_modes

    return WorkGate(Guard(read), exempt, gate.settings.check_interval, gate.worker)


def from_environment(exempt: Collection[str], interval: float) -> WorkGate:
    """The gate of a worker without an app: ``MAINTENANCE_BACKEND`` or ``MAINTENANCE_LOCK_FILE``.

    :raises ConfigurationError: when neither is set, or the value is wrong.
    """
    return WorkGate(skip_during_maintenance(), exempt, interval)
