"""The per-process cache of the state: one backend read per check interval."""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Hashable

from cachetools import TTLCache

from .backends import Backend
from .errors import BackendError
from .state import OFF, State

logger = logging.getLogger("flask_maintenance")

Timer = Callable[[], float]


class StateCache:
    """Reads the backend at most once per ``interval`` seconds and remembers the result.

    Every request calls :meth:`get`, so while the last read is fresh it costs one clock
    comparison (~0.06 µs; a cachetools ``TTLCache`` lookup costs ~1 µs, see ``benchmarks/``).
    Only when the interval has run out does a caller take the lock and read the backend.
    An interval of 0 reads the backend on every call. The timer is injectable for tests.

    Failure policy: a backend that raises :class:`BackendError` keeps the last known state
    (off when none is known yet) and logs one warning per interval, not one per request.
    """

    def __init__(
        self, backend: Backend, default_retry: int, interval: float, timer: Timer | None = None
    ) -> None:
        self.backend = backend
        self.default_retry = default_retry
        self.interval = interval
        self._timer = timer or time.monotonic
        self._lock = threading.Lock()
        self._state = OFF
        self._fresh_until = float("-inf")
        self._known = False
        self._damaged: str | None = None
        self._stamp: Hashable | None = None
        # Backend failures already warned about, each forgotten after one interval.
        self._warned: TTLCache[str, bool] = TTLCache(
            maxsize=16, ttl=max(interval, 1.0), timer=self._timer
        )

    def get(self) -> State:
        """The current state, from memory while the last read is fresh."""
        if self._timer() < self._fresh_until:
            return self._state
        # One thread reads; the others go on with the last state instead of queueing behind a
        # slow backend (they wait only for the very first read, when there is none yet).
        if not self._lock.acquire(blocking=not self._known):
            return self._state
        try:
            if self._timer() >= self._fresh_until:
                self._remember(self._read())
                self._fresh_until = self._timer() + self.interval if self.interval else float("-inf")
            return self._state
        finally:
            self._lock.release()

    def clear(self) -> None:
        """Forget the last read, so that the next ``get`` reads the backend (after a write)."""
        self._stamp = None
        self._fresh_until = float("-inf")

    def _read(self) -> State:
        try:
            stamp = self.backend.stamp()
            if stamp is not None and stamp == self._stamp:
                return self._state
            raw = self.backend.read()
            self._stamp = stamp
        except BackendError as error:
            self._warn_once(f"maintenance state unavailable, keeping the last known one: {error}")
            return self._state
        state, problem = State.parse(raw, self.default_retry)
        if problem is None:
            self._damaged = None
        else:
            # Once per damaged content: the same bad file read every interval is one warning.
            digest = hashlib.sha256(raw or b"").hexdigest()
            if digest != self._damaged:
                self._damaged = digest
                logger.warning("%s (%s)", problem, self.backend.describe())
        return state

    def _warn_once(self, message: str) -> None:
        if message not in self._warned:
            self._warned[message] = True
            logger.warning("%s", message)

    def _remember(self, state: State) -> None:
        previous, self._state = self._state, state
        changed = (previous.active, previous.mode) != (state.active, state.mode)
        if changed and (self._known or state.active):
            if state.active:
                logger.info("maintenance is on (mode %s)", state.mode)
            else:
                logger.info("maintenance is off")
        self._known = True
