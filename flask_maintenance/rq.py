"""RQ during maintenance: a worker that takes no job while maintenance blocks background work.

Needs the ``rq`` extra::

    rq worker -w flask_maintenance.rq.MaintenanceWorker high default

The worker finds the app as the ``flask`` command does (``FLASK_APP``, else ``app.py`` or
``wsgi.py`` in the current folder) and follows its config; with ``MAINTENANCE_BACKEND`` or
``MAINTENANCE_LOCK_FILE`` in the environment and no ``FLASK_APP`` it reads that state directly.
"""

from __future__ import annotations

import math
import os
import time
from typing import TYPE_CHECKING, Any, NoReturn

import click

try:
    from rq import Queue, Worker
    from rq.job import Job
except ImportError:  # pragma: no cover - the message is the point
    raise ImportError('the RQ worker needs RQ: pip install "flask-maintenance-mode[rq]"') from None

from . import workgate
from .config import KEYS
from .errors import ConfigurationError
from .guard import BACKEND_ENV, LOCK_FILE_ENV, describe

if TYPE_CHECKING:
    from flask import Flask

#: Read from the environment when the worker has no app.
EXEMPT_ENV = "MAINTENANCE_RQ_EXEMPT_QUEUES"
INTERVAL_ENV = "MAINTENANCE_CHECK_INTERVAL"


class MaintenanceWorker(Worker):
    """An ``rq.Worker`` that does not dequeue while maintenance blocks background work.

    While on in one of ``MAINTENANCE_CLI_BLOCK_MODES`` it takes jobs only from the queues named
    in ``MAINTENANCE_RQ_EXEMPT_QUEUES`` (waiting, with its heartbeat, when there are none); the
    job it is running finishes. It looks again every check interval and works on all its queues
    when maintenance is off. Its blocking wait for a job is cut to the check interval, so a job
    sent during maintenance is never taken by a wait that began before it.

    :param app: the Flask app whose state and config decide; by default it is found like the
        ``flask`` command finds it. Every other argument is ``rq.Worker``'s.
    :raises ConfigurationError: when neither an app nor the environment says where the state
        is (under ``rq worker``: one line on stderr, and exit status 1).
    """

    def __init__(self, *args: Any, app: Flask | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.maintenance_gate = _gate(app)
        self._paused = False

    def bootstrap(self, *args: Any, **kwargs: Any) -> None:
        super().bootstrap(*args, **kwargs)
        # Its heartbeat: `flask maintenance on --wait` waits for the job it runs to finish.
        if self.maintenance_gate.worker is not None:
            self.maintenance_gate.worker.start(kind="tasks")

    def execute_job(self, job: Job, queue: Queue) -> None:
        worker = self.maintenance_gate.worker
        if worker is None:
            super().execute_job(job, queue)
            return
        with worker.in_flight():
            super().execute_job(job, queue)

    def dequeue_job_and_maintain_ttl(
        self, timeout: int | None, max_idle_time: int | None = None
    ) -> tuple[Job, Queue] | None:
        gate = self.maintenance_gate
        idle_until = None if max_idle_time is None else time.monotonic() + max_idle_time
        while True:
            queues = self._open_queues()
            left = math.inf if idle_until is None else idle_until - time.monotonic()
            if left <= 0:
                return None
            if not queues:
                if timeout is None:  # burst: nothing may be done now
                    return None
                self.heartbeat()
                time.sleep(min(gate.period, left))
                continue
            # Whole seconds: Redis before 6 takes no fractional BLPOP timeout.
            step = max(1, math.ceil(min(gate.period, left)))
            # RQ waits for a job (BLPOP) up to max_idle_time, then returns None: one check
            # interval at a time, so that a switch is seen between two waits.
            wait = None if timeout is None else min(timeout, step)
            every = self._ordered_queues
            if len(queues) == len(every):
                result = super().dequeue_job_and_maintain_ttl(wait, None if timeout is None else step)
            else:
                self._ordered_queues = queues  # RQ dequeues from these (the exempt queues)
                try:
                    result = super().dequeue_job_and_maintain_ttl(wait, None if timeout is None else step)
                finally:
                    self._ordered_queues = every
            if result is not None or timeout is None:
                return result

    def _open_queues(self) -> list[Queue]:
        """The queues to take jobs from now: all of them, or the exempt ones while blocked."""
        gate = self.maintenance_gate
        state = gate.blocking()
        if state is None:
            if self._paused:
                self._paused = False
                self.log.info("maintenance is over: worker %s takes jobs again", self.name)
            return list(self._ordered_queues)
        kept = [queue for queue in self._ordered_queues if queue.name in gate.exempt]
        if not self._paused:
            self._paused = True
            names = ", ".join(queue.name for queue in kept)
            self.log.info(
                "%s: worker %s takes no jobs%s",
                describe(state),
                self.name,
                f" except from {names}" if names else "",
            )
        return kept


def _gate(app: Flask | None) -> workgate.WorkGate:
    """The app's gate, or one over the backend the environment names."""
    if app is None:
        app = _find_app()
    if app is None:
        exempt = _parse(EXEMPT_ENV, os.environ.get(EXEMPT_ENV, ""))
        interval = _parse(INTERVAL_ENV, os.environ.get(INTERVAL_ENV, "1"))
        try:
            return workgate.from_environment(exempt, interval)
        except ConfigurationError as error:
            _fail(str(error))
    extension = app.extensions.get("maintenance")
    if extension is None:
        _fail("the app has no Maintenance extension: call Maintenance(app)")
    gate = extension._gate(app)
    return workgate.for_gate(gate, gate.settings.rq_exempt_queues)


def _find_app() -> Flask | None:
    """``FLASK_APP``; else ``None`` when the environment names the state; else ``app.py``/``wsgi.py``."""
    from flask.cli import NoAppException, ScriptInfo

    import_path = os.environ.get("FLASK_APP") or None
    if import_path is None and (os.environ.get(BACKEND_ENV) or os.environ.get(LOCK_FILE_ENV)):
        return None
    try:
        return ScriptInfo(app_import_path=import_path).load_app()
    except Exception as error:  # whatever the broken app raises, the operator gets one line
        if import_path is None and isinstance(error, NoAppException):
            _fail(f"no app found: set FLASK_APP, or {LOCK_FILE_ENV} or {BACKEND_ENV} for the worker")
        message = " ".join(str(error).split()) or type(error).__name__
        _fail(f"cannot load the app {import_path!r}: {message}")


def _fail(message: str) -> NoReturn:
    if click.get_current_context(silent=True) is not None:
        # Under `rq worker`, which logs whatever the worker's constructor raises with its
        # traceback: one line instead, and Click's exit status for an error.
        click.echo(f"Error: {message}", err=True)
        raise SystemExit(1)
    raise ConfigurationError(message) from None


def _parse(name: str, value: str) -> Any:
    """A value from the environment, checked as the config key of the same name is."""
    key = next(key for key in KEYS if key.name == name)
    try:
        return key.parse(value, name)
    except ConfigurationError as error:
        _fail(str(error))
