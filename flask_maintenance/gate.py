"""The decision for one request while maintenance is on, shared by the hook and the fast path."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable

from .backends import Backend
from .bypass import BypassCookie, BypassRule, IPAllowlist
from .cache import StateCache
from .config import Settings
from .responses import Answer, banner_header, blocked, prefers_json
from .plan import Feature
from .state import State

logger = logging.getLogger("flask_maintenance")

#: Methods that pass in readonly mode.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class PathSet:
    """Path prefixes matched on segment boundaries: ``/api`` covers ``/api/x``, not ``/apiary``."""

    def __init__(self, prefixes: Iterable[str]) -> None:
        roots = [prefix.rstrip("/") for prefix in prefixes]
        self._exact = frozenset(root or "/" for root in roots)
        self._under = tuple(root + "/" for root in roots)

    def __contains__(self, path: str) -> bool:
        return path in self._exact or path.startswith(self._under)


class Gate:
    """Everything one app needs to decide a request: settings, cached state, bypass rules.

    Answers are built once per state and reused; with an ``ends_at`` they change once a second
    (``Retry-After`` counts down), so they are kept per value of ``Retry-After``.
    """

    def __init__(
        self,
        settings: Settings,
        backend: Backend,
        rules: list[BypassRule],
        on_change: Callable[[State, State], None] | None = None,
    ) -> None:
        self.settings = settings
        self._on_change = on_change
        self._warned: set[str] = set()
        self.use_backend(backend)
        self.allowlist = IPAllowlist(settings.allowed_networks)
        self.cookie = BypassCookie(settings.bypass_cookie, settings.bypass_max_age)
        self.rules = rules
        self.api_paths = PathSet(settings.api_prefixes)
        self.open_paths = PathSet((*settings.allowed_paths, settings.status_path))
        self._answers_state: State | None = None
        self._answers: dict[tuple[bool, int, str | None], Answer] = {}
        self._lock = threading.Lock()

    def warn_once(self, message: str) -> None:
        """Log ``message`` with the current traceback once as a warning, then at DEBUG.

        A broken bypass rule or template fails on every refused request; a window must not
        flood the error tracker.
        """
        if message in self._warned:
            logger.debug("%s", message, exc_info=True)
        else:
            self._warned.add(message)
            logger.warning("%s", message, exc_info=True)

    @property
    def backend(self) -> Backend:
        """Where the state lives (the cache reads it; the extension writes it)."""
        return self.cache.backend

    def use_backend(self, backend: Backend) -> None:
        """Read and write the state in ``backend`` from now on."""
        self.cache = StateCache(
            backend, self.settings.retry_after, self.settings.check_interval, on_change=self._on_change
        )

    def passes_anyway(self, state: State, path: str, method: str) -> bool:
        """Requests no one is refused: allowed paths, the status path, reads in readonly mode."""
        return path in self.open_paths or (state.mode == "readonly" and method in SAFE_METHODS)

    def wants_json(self, path: str, accept: str | None) -> bool:
        """JSON for API paths, and for clients whose Accept prefers JSON over HTML."""
        return path in self.api_paths or prefers_json(accept)

    def answer(self, state: State, as_json: bool, feature: Feature | None = None) -> Answer:
        """The built-in 503 for this state (or for one switched-off feature), built on first use."""
        if feature is None:
            retry_after = state.retry_after()
        else:
            retry_after = self.settings.retry_after
        key = (as_json, retry_after, None if feature is None else feature.name)
        answers = self._answers
        if self._answers_state is not state:
            with self._lock:
                self._answers_state, self._answers = state, {}
                answers = self._answers
        answer = answers.get(key)
        if answer is None:
            answer = blocked(
                state,
                readonly=state.mode == "readonly",
                as_json=as_json,
                retry_after=retry_after,
                status_path=self.settings.status_path,
                banner=None if state.banner is None else banner_header(state),
                feature=feature,
            )
            if len(answers) > 64:  # a countdown to ends_at makes a new key every second
                answers.clear()
            answers[key] = answer
        return answer
