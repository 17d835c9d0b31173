"""Celery during maintenance: workers stop consuming, tasks run anyway are retried, beat skips.

Installed by :meth:`Maintenance.init_celery <flask_maintenance.Maintenance.init_celery>`; needs the
``celery`` extra. Three places, each in the process that does the work:

- the worker's main process: a consumer bootstep that looks at the state every check interval
  and cancels the consumers of every queue that is not exempt (added back when off), so that
  nothing new is taken and nothing polls;
- every task execution (the worker's pool processes, eager runs): a task that runs while work
  is blocked (it was taken before the worker noticed, or it was due from a countdown) is sent
  back with a countdown of ``Retry-After`` instead of running;
- beat: a periodic task that falls due while work is blocked is not sent (it is skipped, as a
  cron line is), with one INFO line per window.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any
from weakref import WeakKeyDictionary

try:
    from celery import Celery, Task, bootsteps, signals
    from celery.exceptions import Retry
except ImportError:  # pragma: no cover - the message is the point
    raise ImportError(
        'the Celery integration needs Celery: pip install "flask-maintenance-mode[celery]"'
    ) from None

from .errors import MaintenanceActive
from .guard import describe
from .model import State, features_of
from .workgate import WorkGate

logger = logging.getLogger("flask_maintenance")

#: The attribute ``Maintenance.exempt`` sets on a task, its function or a command.
EXEMPT_ATTRIBUTE = "__maintenance_exempt__"
# Celery's own housekeeping (chord_unlock, backend_cleanup, …) is never maintenance's business.
_BUILTIN_PREFIX = "celery."

_gates: WeakKeyDictionary[Celery, WorkGate] = WeakKeyDictionary()


def install(celery_app: Celery, gate: WorkGate) -> None:
    """Make ``celery_app``'s workers, tasks and beat follow ``gate`` (idempotent per app)."""
    first = celery_app not in _gates
    _gates[celery_app] = gate
    if not first:
        return
    # Celery's documented way to wrap a method of every task, including tasks defined later:
    # an annotation whose key starts with "@" wraps the attribute (Task.add_around).
    annotations = celery_app.conf.task_annotations
    if annotations is None:
        annotations = []
    elif not isinstance(annotations, list | tuple):  # one dict, a class, or an import path
        annotations = [annotations]
    celery_app.conf.task_annotations = [*annotations, {"*": {"@__call__": _retry_while_blocked}}]
    celery_app.__dict__.pop("annotations", None)  # computed already when a task was bound
    if celery_app.finalized:  # tasks bound before this call took the annotations without ours
        for task in celery_app.tasks.values():
            type(task).add_around("__call__", _retry_while_blocked)
    celery_app.steps["consumer"].add(PauseConsumers)
    signals.beat_init.connect(_skip_due_tasks, weak=False)
    signals.worker_process_init.connect(_start_pool_process, weak=False)


def _blocking(task: Task, queue: str | None, gate: WorkGate) -> State | None:
    """The state that stops ``task`` now (``None``: it may run)."""
    name = task.name or ""
    if name.startswith(_BUILTIN_PREFIX) or _marked(task):
        return None
    return gate.blocking((name, queue or ""), features_of(task) | features_of(task.run))


def _marked(task: Task) -> bool:
    """``@m.exempt`` above the task decorator marks the task, below it marks the function."""
    return bool(getattr(task, EXEMPT_ATTRIBUTE, False) or getattr(task.run, EXEMPT_ATTRIBUTE, False))


# -- tasks -------------------------------------------------------------------------------------


def _retry_while_blocked(call: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a task class's ``__call__``: while work is blocked, retry instead of running."""

    def gated(task: Task, *args: Any, **kwargs: Any) -> Any:
        request = task.request
        gate = _gates.get(task.app)
        # A task called as a plain function runs in its caller, which is gated as the caller.
        if gate is None or request.called_directly:
            return call(task, *args, **kwargs)
        queue = (request.delivery_info or {}).get("routing_key")
        # Counted before the state is read, so that `on --wait` never misses a task that an
        # earlier state let run (see flask_maintenance.workers).
        work = gate.worker.begin() if gate.worker is not None else None
        try:
            state = _blocking(task, queue, gate)
            if state is None:
                return call(task, *args, **kwargs)
        finally:
            if work is not None:
                work.end()
        if request.is_eager:
            # An eager retry runs again at once (and fails again): nothing can wait for the end.
            raise MaintenanceActive(state)
        countdown = state.retry_after()
        # Sent again as it came (same id, same retries count: a long window must not use up the
        # task's own max_retries), only later.
        task.signature_from_request(countdown=countdown).apply_async()
        logger.info("task %s[%s] retried in %d s: %s", task.name, request.id, countdown, describe(state))
        raise Retry(exc=MaintenanceActive(state), when=countdown)

    return gated


# -- the worker's processes ---------------------------------------------------------------------


def _publish_heartbeat(gate: WorkGate) -> None:
    """Publish this process's heartbeat: ``on --wait`` then waits for it to switch, and for the
    tasks it runs that began before the switch (``flask maintenance status`` lists it)."""
    if gate.worker is not None:
        gate.worker.start(kind="tasks")


def _start_pool_process(**kwargs: Any) -> None:
    """On ``worker_process_init``, in each pool process that runs tasks (a forked child starts
    with no heartbeat of its own)."""
    for gate in list(_gates.values()):
        gate.blocking()  # read the state now: the heartbeat names it before the first task
        _publish_heartbeat(gate)


# -- the worker's consumer ----------------------------------------------------------------------


class PauseConsumers(bootsteps.StartStopStep):  # type: ignore[misc]  # Celery is untyped
    """A consumer bootstep: stop consuming while work is blocked, consume again when it is not.

    It starts after the task consumer and before the event loop, so a worker started during
    maintenance never takes a task. Queues named in ``MAINTENANCE_CELERY_EXEMPT`` are kept.
    """

    requires = ("celery.worker.consumer.tasks:Tasks",)

    def __init__(self, consumer: Any, **kwargs: Any) -> None:
        super().__init__(consumer, **kwargs)
        self.timer: Any = None
        #: The queues this step cancelled, to add back (kept across reconnections, when Celery
        #: builds the task consumer again from the queues still selected).
        self.paused: list[str] = []

    def start(self, consumer: Any) -> None:
        gate = _gates.get(consumer.app)
        if gate is None:
            return
        _publish_heartbeat(gate)
        self.check(consumer, gate)
        self.timer = consumer.timer.call_repeatedly(gate.period, self.check, (consumer, gate))

    def stop(self, consumer: Any) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def check(self, consumer: Any, gate: WorkGate) -> None:
        """Pause or resume, once per check interval."""
        if consumer.task_consumer is None:  # reconnecting: start() runs again once it is back
            return
        state = gate.blocking()
        if state is not None:
            names = [queue.name for queue in consumer.task_consumer.queues]
            stopping = [name for name in names if name not in gate.exempt and name not in self.paused]
            if stopping:
                for name in stopping:
                    consumer.cancel_task_queue(name)
                self.paused.extend(stopping)
                kept = [name for name in names if name in gate.exempt]
                logger.info(
                    "%s: this worker stopped taking tasks from %s%s",
                    describe(state),
                    ", ".join(stopping),
                    f" (still from {', '.join(kept)})" if kept else "",
                )
        elif self.paused:
            for name in self.paused:
                consumer.add_task_queue(name)
            logger.info("maintenance is over: this worker takes tasks from %s again", ", ".join(self.paused))
            self.paused = []


# -- beat ----------------------------------------------------------------------------------------


def _skip_due_tasks(sender: Any, **kwargs: Any) -> None:
    """On ``beat_init``: wrap this beat's scheduler so that it skips what falls due while blocked."""
    gate = _gates.get(sender.app)
    if gate is None:
        return
    scheduler = sender.scheduler
    apply_entry = scheduler.apply_entry
    logged: list[object] = [None]  # the window the INFO line was written for

    def gated_apply_entry(entry: Any, producer: Any = None) -> Any:
        state = _entry_state(scheduler.app, entry, gate)
        if state is None:
            return apply_entry(entry, producer=producer)
        window = (state.window, state.started_at, state.mode)
        if logged[0] != window:
            logged[0] = window
            logger.info("%s: beat skips periodic tasks until it is off", describe(state))
        logger.debug("skipped periodic task %s (%s)", entry.name, entry.task)
        return None

    scheduler.apply_entry = gated_apply_entry


def _entry_state(celery_app: Celery, entry: Any, gate: WorkGate) -> State | None:
    """The state that stops a periodic task now, by its task's name, marks and queue."""
    options = dict(entry.options or {})
    queue = options.get("queue")
    if queue is None:
        routed = celery_app.amqp.router.route(options, entry.task, entry.args, entry.kwargs)
        queue = routed.get("queue")
    queue_name = getattr(queue, "name", queue)
    task = celery_app.tasks.get(entry.task)
    if task is not None:
        return _blocking(task, queue_name, gate)
    if entry.task.startswith(_BUILTIN_PREFIX):
        return None
    return gate.blocking((entry.task, queue_name or ""))
