"""The per-process cache of the state: one backend read per check interval."""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Generic, TypeVar

from . import times
from .backends import Backend, Damaged, Raw
from .errors import BackendError
from .model import LONG_OUTAGE, OFF, Plan, State, resolve
from .times import format_instant

if TYPE_CHECKING:
    from cachetools import TTLCache

logger = logging.getLogger("flask_maintenance")

monotonic = time.monotonic

Timer = Callable[[], float]
T = TypeVar("T")


class _Document(Generic[T]):
    """One stored document, read again only when the backend's stamp says it may have changed."""

    def __init__(self, backend: Backend, parse: Callable[[Raw], tuple[T, str | None]]) -> None:
        self.backend = backend
        self._parse = parse
        self.value: T | None = None
        self._stamp: Hashable | None = None
        self._next_stamp: Hashable | None = None
        self._damaged: str | None = None
        #: The digest of the content read last (see :func:`state_version`).
        self.digest = _digest(None)

    def stale(self) -> bool:
        """Whether the document must be read again (its stamp is unknown or has changed)."""
        self._next_stamp = self.backend.stamp()
        return self.value is None or self._next_stamp is None or self._next_stamp != self._stamp

    def take(self, raw: Raw) -> None:
        """Parse freshly read content; damaged content warns once per content, not per read."""
        value, problem = self._parse(raw)
        if problem is None:
            self._damaged = None
        else:
            content = raw.reason.encode() if isinstance(raw, Damaged) else raw or b""
            digest = hashlib.sha256(content).hexdigest()
            if digest != self._damaged:
                self._damaged = digest
                logger.warning("%s (%s)", problem, self.backend.describe())
        self.value, self._stamp = value, self._next_stamp
        self.digest = _digest(raw)

    def forget(self) -> None:
        self._stamp = None


class StateCache:
    """Reads the backend at most once per ``interval`` seconds and remembers the result.

    Every request calls :meth:`get`, so while the last read is fresh it costs one clock
    comparison (~0.06 µs; a cachetools ``TTLCache`` lookup costs ~1 µs, see ``benchmarks/``).
    Only when the interval has run out does one caller read the backend: the lock document and
    the plan, combined with the time of day (a scheduled window starts with no one acting).
    An interval of 0 reads on every call. ``timer`` (monotonic) is injectable for tests; the time
    of day comes from :func:`flask_maintenance.times.utcnow`. ``on_change`` is called when the
    mode changes, ``on_read`` after each of those reads (once per interval at most).

    Failure policy: a backend that raises :class:`BackendError` keeps the last known state
    (off when none is known yet) and logs one warning per interval, not one per request.
    """

    def __init__(
        self,
        backend: Backend,
        default_retry: int,
        interval: float,
        timer: Timer | None = None,
        on_change: Callable[[State, State], None] | None = None,
        on_read: Callable[[], None] | None = None,
    ) -> None:
        self.backend = backend
        self.default_retry = default_retry
        self.interval = interval
        # Looked up here, not at import, so that tests can patch this module's timer.
        self._timer = timer or monotonic
        self._on_change = on_change
        self._on_read = on_read
        self._lock_document = _Document(backend, lambda raw: State.parse(raw, default_retry))
        self._plan_document = _Document(backend.sibling("plan"), Plan.parse)
        self._mutex = threading.Lock()
        self._state = OFF
        #: The version of the stored state that :meth:`get` gives (see :func:`state_version`).
        self.version = state_version(None, None)
        self._digests = (_digest(None), _digest(None))
        self._fresh_until = float("-inf")
        self._known = False
        #: Why the last read of the backend failed (``None`` after a good one): workers, which
        #: must not take an unknown state for "off", stop on it (see flask_maintenance.workgate).
        self.failure: BackendError | None = None
        # The windows whose long full maintenance was logged (see State.long_outage).
        self._long_outages: set[str | None] = set()
        # Backend failures already warned about, each forgotten after one interval: made on the
        # first failure, so that a healthy web worker never imports cachetools (~150 KiB).
        self._warned: TTLCache[str, bool] | None = None

    @property
    def plan_backend(self) -> Backend:
        """Where the schedule and the feature switches are kept."""
        return self._plan_document.backend

    def get(self) -> State:
        """The current state, from memory while the last read is fresh."""
        if self._timer() < self._fresh_until:
            return self._state
        # One thread reads; the others go on with the last state instead of queueing behind a
        # slow backend (they wait only for the very first read, when there is none yet).
        if not self._mutex.acquire(blocking=not self._known):
            return self._state
        try:
            if self._timer() >= self._fresh_until:
                self._remember(self._read())
                self._new_version()
                if self._on_read is not None:
                    self._on_read()
                self._fresh_until = self._timer() + self.interval if self.interval else float("-inf")
            return self._state
        finally:
            self._mutex.release()

    def view(self) -> tuple[State, str, bool]:
        """What this process enforces, without reading anything: the state :meth:`get` gives,
        its version, and whether the interval has run out (then the next :meth:`get` reads the
        backend first, so the state stored by then is what the next request enforces)."""
        version = self.version  # first: the state set before it is at least as new
        # A read in progress may have read the backend before a write that is already there:
        # what it took is enforced next, for a whole interval. Tested before the deadline, so a
        # read that starts after this test reads the backend after it too.
        reading = self._mutex.locked()
        return self._state, version, not reading and self._timer() >= self._fresh_until

    def clear(self) -> None:
        """Forget the last read, so that the next ``get`` reads the backend (after a write)."""
        self._lock_document.forget()
        self._plan_document.forget()
        self._fresh_until = float("-inf")

    def read_now(self) -> State:
        """Read the backend at once, bypassing the interval.

        :raises BackendError: when it cannot be read (requests never see this; see ``get``).
        """
        with self._mutex:  # one reader at a time: a document's stamp and content go together
            return self._read_documents()

    def _read_documents(self) -> State:
        documents = (self._lock_document, self._plan_document)
        stale = [document for document in documents if document.stale()]
        if stale:
            # One round trip for both documents where the backend can (Redis MGET).
            raws = self.backend.read_many([document.backend for document in stale])
            for document, raw in zip(stale, raws, strict=True):
                document.take(raw)
        lock, plan = self._lock_document.value, self._plan_document.value
        assert lock is not None and plan is not None  # both were read at least once above
        return resolve(lock, plan, times.utcnow(), self.default_retry)

    def _new_version(self) -> None:
        """Take the version of what was just remembered: after the state, never before, so that
        whoever sees the new version (a heartbeat) also gets the new state from :meth:`get`."""
        digests = (self._lock_document.digest, self._plan_document.digest)
        if digests != self._digests:
            self._digests = digests
            self.version = _combined(*digests)

    def _read(self) -> State:
        """Read under the mutex the caller holds; on failure, the last known state."""
        try:
            state = self._read_documents()
        except BackendError as error:
            self.failure = error
            message = f"maintenance state unavailable, keeping the last known one: {error}"
            if self._warned is None:
                from cachetools import TTLCache

                self._warned = TTLCache(maxsize=16, ttl=max(self.interval, 1.0), timer=self._timer)
            if message not in self._warned:
                self._warned[message] = True
                logger.warning("%s", message)
            return self._state
        self.failure = None
        return state

    def _remember(self, state: State) -> None:
        previous, known = self._state, self._known
        if known and state == previous:
            # Nothing changed (each read resolves the documents anew): keep the object, and with
            # it the answers the gate prepared for it, instead of building them every interval.
            return
        self._state, self._known = state, True
        if state.window not in self._long_outages and state.long_outage():
            self._long_outages.add(state.window)  # once per window and process
            logger.warning(
                "full maintenance has lasted more than %d hours (since %s): search engines may "
                "start dropping the site's pages; readonly or banner mode keeps it crawlable",
                LONG_OUTAGE.total_seconds() // 3600,
                format_instant(state.started_at) if state.started_at else "?",
            )
        if (previous.active, previous.mode) == (state.active, state.mode):
            return
        if known or state.active:
            if state.active:
                logger.info("maintenance is on (mode %s)", state.mode)
            else:
                logger.info("maintenance is off")
            if self._on_change is not None:
                self._on_change(previous, state)


def state_version(lock: Raw, plan: Raw) -> str:
    """A short version of the stored lock and plan: every write changes one of them, so every
    write changes it. Workers publish the version they enforce; ``--wait`` compares."""
    return _combined(_digest(lock), _digest(plan))


def _digest(raw: Raw) -> bytes:
    if raw is None:
        content = b"none"
    elif isinstance(raw, Damaged):
        content = b"damaged:" + raw.reason.encode()
    else:
        content = b"document:" + raw
    return hashlib.blake2b(content, digest_size=16).digest()


def _combined(lock_digest: bytes, plan_digest: bytes) -> str:
    return hashlib.blake2b(lock_digest + plan_digest, digest_size=6).hexdigest()
