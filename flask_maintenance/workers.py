"""Each process that enforces the state says so: its heartbeat, and its unsafe work in flight.

A process that enforces the maintenance state keeps one :class:`Worker` per app. It counts the
work that may write while it runs, and a thread publishes a :class:`Heartbeat` at the check
interval beside the state (:meth:`Backend.heartbeats
<flask_maintenance.backends.Backend.heartbeats>`): host, pid, the state it enforces and that
state's version, the time, and how much of its work in flight *started before it saw the current
state*. ``flask maintenance on --wait`` reads every live heartbeat (:mod:`flask_maintenance.drain`)
and returns once each process enforces the new state and, when that state refuses writes, has
none from before still running.

Web workers are wired by the extension: the fast path (or, without it, a small WSGI layer) counts
every unsafe request (POST, PUT, PATCH, DELETE, ...) and starts the heartbeat on the first request
a process serves (not while the app is ``TESTING``: a test suite's client is no worker). Any other
kind of process that runs work which may write (a task-queue worker running tasks, say) joins the
same way, with its app's ``Maintenance.worker(app=app)``::

    worker = maintenance.worker(app=app)
    worker.start(kind="tasks")          # once, in the process that runs the work (after a fork)

    with worker.in_flight():            # around each unit of work ...
        run_the_task()

    work = worker.begin()               # ... or where start and end are separate callbacks
    ...
    work.end()

Begin the work *before* reading the state that decides whether it may run: work that an earlier
state let in is then never missed. Counting costs two C-level counter steps (``itertools.count``:
atomic under the GIL, so threads share it without a lock); everything else happens in the
heartbeat thread, once per interval.
"""

from __future__ import annotations

import atexit
import itertools
import json
import logging
import os
import socket
import threading
import weakref
from collections.abc import Callable
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any

from . import times
from .backends import Backend
from .backends.base import Heartbeats
from .errors import BackendError
from .rules import MODES
from .times import format_instant, parse_instant
from .values import Value, assign

if TYPE_CHECKING:
    from .cache import StateCache

logger = logging.getLogger("flask_maintenance")

#: The shortest time between two heartbeats, whatever the check interval (0 reads the state on
#: every request; a heartbeat that often would be a write per request).
MIN_PERIOD = 0.25
#: A heartbeat older than this many of its periods is from a process that is gone or frozen:
#: it is ignored, and blocks nobody.
EXPIRES_AFTER = 3
#: Readers remove records dead for this long (a killed process cannot remove its own).
FORGET_AFTER = 3600.0
#: What a heartbeat says while the state is off.
OFF = "off"
#: No process id is larger (a C ``pid_t``): a bigger one is not a process's.
MAX_PID = 2**31 - 1
#: How long stopping waits for a heartbeat being written (seconds).
STOP_TIMEOUT = 2.0


class Work:
    """The work that began under one version of the state: how much of it is still running.

    Use it as a context manager, or call :meth:`end` once for each :meth:`Worker.begin` that
    returned it.
    """

    __slots__ = ("_ended", "_started", "version")

    def __init__(self, version: str | None) -> None:
        self.version = version
        self._started = itertools.count()
        self._ended = itertools.count()

    def end(self) -> None:
        """One unit of this work is done."""
        next(self._ended)

    def running(self) -> int:
        """How many units are still running (never too few: the ends are read first)."""
        ended = _value(self._ended)
        return _value(self._started) - ended

    def __enter__(self) -> Work:
        next(self._started)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        next(self._ended)


def _value(counter: itertools.count[int]) -> int:
    # An itertools.count shows its next value in its repr: the one way to read it without a lock.
    return int(repr(counter)[6:-1])


class Heartbeat(Value):
    """One process's last heartbeat, as ``m.workers()`` and ``flask maintenance status`` show it.

    ``state`` is the mode it enforces (``"off"`` while off) and ``version`` that state's version
    (every write to the state changes it). ``rereading`` says that its check interval has run
    out: it reads the stored state before its next request, so it enforces whatever is stored
    (an idle process). ``writes_in_flight`` counts its unsafe work (requests, tasks) still running
    that began before it saw the state it enforces (all of it while ``rereading``). ``age`` is
    how old the heartbeat was when read, by the backend's clock; ``interval`` how often the
    process publishes.
    """

    __slots__ = _fields = (
        "host",
        "pid",
        "kind",
        "state",
        "version",
        "last_heartbeat",
        "writes_in_flight",
        "interval",
        "rereading",
        "age",
    )
    host: str
    pid: int
    kind: str
    state: str
    version: str
    last_heartbeat: datetime
    writes_in_flight: int
    interval: float
    rereading: bool
    age: float

    def __init__(
        self,
        host: str,
        pid: int,
        kind: str,
        state: str,
        version: str,
        last_heartbeat: datetime,
        writes_in_flight: int,
        interval: float,
        rereading: bool = False,
        age: float = 0.0,
    ) -> None:
        assign(self, "host", host)
        assign(self, "pid", pid)
        assign(self, "kind", kind)
        assign(self, "state", state)
        assign(self, "version", version)
        assign(self, "last_heartbeat", last_heartbeat)
        assign(self, "writes_in_flight", writes_in_flight)
        assign(self, "interval", interval)
        assign(self, "rereading", rereading)
        assign(self, "age", age)

    @property
    def name(self) -> str:
        """``host:pid``, how operators name a process."""
        return f"{self.host}:{self.pid}"

    @property
    def fresh(self) -> bool:
        """Whether it is at most three periods old (``EXPIRES_AFTER``), or from at most as far
        in the future: a clock stepped back must not keep a record of a process gone alive."""
        return abs(self.age) <= EXPIRES_AFTER * self.interval

    def to_dict(self) -> dict[str, Any]:
        """As JSON values (``status --json``): the record, its age, and whether it is fresh."""
        return {**self._record(), "age": round(self.age, 3), "fresh": self.fresh}

    def to_json(self) -> bytes:
        """The published record."""
        return json.dumps(self._record(), sort_keys=True).encode()

    def _record(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "pid": self.pid,
            "kind": self.kind,
            "state": self.state,
            "version": self.version,
            "last_heartbeat": format_instant(self.last_heartbeat),
            "writes_in_flight": self.writes_in_flight,
            "interval": self.interval,
            "rereading": self.rereading,
        }

    @classmethod
    def parse(cls, data: bytes, age: float) -> Heartbeat | None:
        """A published record read back; ``None`` for anything that is not one (never raises).

        Records are written by the app's own processes, but sit where neighbours may write too
        (a shared folder): every field is checked, and text is bounded.
        """
        try:
            record = json.loads(data.decode("utf-8"))
            host, kind, state, version = (record[key] for key in ("host", "kind", "state", "version"))
            pid, writes, interval = record["pid"], record["writes_in_flight"], record["interval"]
            rereading = record.get("rereading", False)
            texts = (host, kind, state, version)
            if not all(
                isinstance(text, str) and 0 < len(text) <= 255 and text.isprintable() for text in texts
            ):
                return None
            if state not in (OFF, *MODES) or not all(isinstance(n, int) and n >= 0 for n in (pid, writes)):
                return None
            if not 0 < pid <= MAX_PID:  # 0 would ask os.kill about our own process group
                return None
            if not isinstance(interval, int | float) or isinstance(interval, bool):
                return None
            if not MIN_PERIOD <= interval <= 3600 or not isinstance(rereading, bool):
                return None
            seen = parse_instant(record["last_heartbeat"])
            return cls(host, pid, kind, state, version, seen, writes, float(interval), rereading, age)
        except (UnicodeDecodeError, ValueError, TypeError, KeyError, RecursionError, AttributeError):
            return None


def read_heartbeats(backend: Backend) -> list[Heartbeat]:
    """The heartbeats of the processes that enforce ``backend``'s state, by host and pid.

    A heartbeat older than :data:`EXPIRES_AFTER` periods is from a process that is gone, and is
    left out (removed after :data:`FORGET_AFTER` seconds), unless its process is on this host
    and still exists: that one is frozen (``SIGSTOP``, a debugger) and may resume with a write
    in flight, so it is kept (``fresh`` is false). On other hosts nobody can tell frozen from
    gone: there, three periods without a heartbeat mean gone.

    :raises BackendError: when the backend cannot be read.
    """
    store = backend.heartbeats()
    if store is None:
        return []
    alive = []
    for name, data, age in store.read():
        heartbeat = Heartbeat.parse(data, age)
        if heartbeat is not None and (heartbeat.fresh or _exists_here(heartbeat)):
            alive.append(heartbeat)
        elif abs(age) > FORGET_AFTER:
            try:
                store.remove(name)
            except BackendError:
                pass  # tidying only: the next reader tries again
    return sorted(alive, key=lambda heartbeat: (heartbeat.host, heartbeat.pid))


class Worker:
    """This process's record for one app: its unsafe work in flight, and its heartbeat.

    :param cache_of: gives the app's current state cache (the state this process enforces, its
        version, the backend and the check interval).
    :param testing: whether the app is in testing mode; ``serve()`` (the first request) then
        starts nothing.
    """

    def __init__(
        self, cache_of: Callable[[], StateCache], testing: Callable[[], bool] = lambda: False
    ) -> None:
        self._cache_of = cache_of
        self._testing = testing
        self._reset()

    def _reset(self) -> None:
        """A fresh record: at creation, and in a forked child (which is a new process)."""
        #: Whether :meth:`serve` has been called in this process (the fast path tests it).
        self.serving = False
        self.kind = "web"
        self._work = Work(None)
        self._earlier: list[Work] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._published: tuple[Backend, str] | None = None
        # One publish at a time: the heartbeat thread and a caller of publish() share the
        # record's temp file, and two writers at once could leave it truncated.
        self._publishing = threading.Lock()
        self._store: tuple[Backend, Heartbeats | None] | None = None
        self._warned: str | None = None
        self._running = False
        self._thread: threading.Thread | None = None

    # -- counting --------------------------------------------------------------------------

    def in_flight(self) -> Work:
        """A context manager around one unit of unsafe work (a request, a task)."""
        return self._work

    def begin(self) -> Work:
        """Count one unit of unsafe work as started; call ``.end()`` on the result when done."""
        work = self._work
        next(work._started)
        return work

    def writes_from_before(self, version: str | None) -> int:
        """Take ``version`` as the state now enforced; return the work still running that began
        before it (under any earlier version). ``None`` (the next request reads the state
        again, so whatever is stored is enforced): all the work still running."""
        with self._lock:
            if version is None:
                return sum(work.running() for work in (*self._earlier, self._work))
            if version != self._work.version:
                self._earlier.append(self._work)
                self._work = Work(version)
            running = [(work, work.running()) for work in self._earlier]
            self._earlier = [work for work, count in running if count > 0]
            return sum(count for _, count in running)

    # -- publishing ------------------------------------------------------------------------

    def serve(self) -> None:
        """This process serves requests: start its heartbeat, once (not while ``TESTING``)."""
        with self._lock:
            if self.serving:
                return
            self.serving = True
        if not self._testing():
            self.start()

    def start(self, kind: str = "web") -> None:
        """Publish a heartbeat now and then at every check interval, from a daemon thread,
        until :meth:`stop` or the process exits (which removes the record).

        :param kind: what this process is (``"web"``, ``"tasks"``), shown to operators.
        """
        with self._lock:
            self.kind, self.serving = kind, True
            if self._running:
                return
            self._running = True
        _publishing.add(self)
        self._thread = threading.Thread(
            target=_beat,
            args=(weakref.ref(self), self._stop),
            name="flask-maintenance-heartbeat",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop publishing and remove this process's record (:meth:`start` starts again)."""
        with self._lock:
            self._stop.set()
            self._stop, self._running = threading.Event(), False
            thread, self._thread = self._thread, None
        _publishing.discard(self)
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=STOP_TIMEOUT)  # a heartbeat being written must not outlive the removal
        published, self._published = self._published, None
        if published is not None:
            self._remove(*published)

    def publish(self) -> float:
        """Publish this process's heartbeat now; return the seconds until the next one.

        It reads nothing but this process's memory (no backend read, no log line, no signal
        from this thread): what the cache holds and whether its interval has run out. A
        backend that cannot be written is logged once per message; the heartbeat goes on trying.
        """
        with self._publishing:
            return self._publish()

    def _publish(self) -> float:
        cache = self._cache_of()
        period = max(cache.interval, MIN_PERIOD)
        state, version, rereading = cache.view()
        heartbeat = Heartbeat(
            host=_hostname(),
            pid=os.getpid(),
            kind=self.kind,
            state=state.mode if state.active and state.mode else OFF,
            version=version,
            last_heartbeat=times.utcnow(),
            writes_in_flight=self.writes_from_before(None if rereading else version),
            interval=period,
            rereading=rereading,
        )
        backend = cache.backend
        if self._store is None or self._store[0] is not backend:
            self._store = (backend, backend.heartbeats())
        store = self._store[1]
        if store is None:
            return period
        if self._published is not None and self._published[0] is not backend:
            self._remove(*self._published)  # the app's state moved (Maintenance.isolated)
        try:
            if not store.publish(heartbeat.name, heartbeat.to_json()):
                return MIN_PERIOD  # no place for it yet: soon there may be (see drain.SETTLE)
        except BackendError as error:
            message = f"cannot publish this process's maintenance heartbeat: {error}"
            if message != self._warned:
                self._warned = message
                logger.warning("%s", message)
        else:
            self._published, self._warned = (backend, heartbeat.name), None
        return period

    def _remove(self, backend: Backend, name: str) -> None:
        store = backend.heartbeats()
        try:
            if store is not None:
                store.remove(name)
        except BackendError:
            pass  # it expires by itself


def _beat(ref: weakref.ReferenceType[Worker], stop: threading.Event) -> None:
    """The heartbeat thread: holds its worker only while publishing, so that an app that is
    gone (garbage collected) ends it."""
    while not stop.is_set():
        worker = ref()
        if worker is None:
            return
        try:
            period = worker.publish()
        except Exception:  # never let the thread die silently: the process would look frozen
            logger.exception("the maintenance heartbeat failed; trying again")
            period = 1.0
        del worker
        if stop.wait(period):
            return


_publishing: weakref.WeakSet[Worker] = weakref.WeakSet()


def _hostname() -> str:
    global _host
    if _host is None:  # once per process: a heartbeat is published every interval
        _host = socket.gethostname()
    return _host


_host: str | None = None


def _exists_here(heartbeat: Heartbeat) -> bool:
    """Whether the heartbeat's process runs on this host (frozen, since it does not publish)."""
    if heartbeat.host != _hostname() or heartbeat.pid == os.getpid():
        return False
    try:
        os.kill(heartbeat.pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except OSError:
        pass  # it exists, as another user's process
    # A killed worker's pid may have been given to a new process since: not the one it was.
    started = _started_at(heartbeat.pid)
    return started is None or started <= heartbeat.last_heartbeat.timestamp() + 1.0  # boot time: whole s


def _started_at(pid: int) -> float | None:
    """When process ``pid`` started (seconds since the epoch), where the system says (Linux)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as info:
            # The command name (field 2) may hold spaces and brackets: count after its last ")".
            ticks = int(info.read().rsplit(b")", 1)[1].split()[19])  # field 22: start time
        with open("/proc/stat", "rb") as system:
            boot = next(int(line.split()[1]) for line in system if line.startswith(b"btime "))
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def stop_all() -> None:
    """Stop every heartbeat of this process and remove its records: what a clean exit does (a
    killed process's records expire), and what a test suite does after each test whose app
    served requests without ``TESTING``."""
    for worker in list(_publishing):
        worker.stop()


def _after_fork() -> None:
    """A forked child is a new process: it starts its own record on its own first request."""
    global _host
    _host = None
    for worker in list(_publishing):
        worker._reset()
    _publishing.clear()


atexit.register(stop_all)
os.register_at_fork(after_in_child=_after_fork)
