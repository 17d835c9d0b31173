"""The decision for one request: pass it, leave it to the app, or refuse it with this answer.

:meth:`Gate.decide` is the one place that orders the checks of a request. It reads only the WSGI
environ as the app sees it and the cached state, so the WSGI fast path can call it before Flask
does anything, and the request hook calls it only when no fast path did: the verdict travels from
one to the other, and nothing is decided twice.
"""

from __future__ import annotations

import enum
import logging
import re
import threading
import weakref
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from typing import TYPE_CHECKING, NamedTuple

from .backends import Backend
from .bypass import BypassCookie, BypassRule, IPAllowlist
from .cache import StateCache
from .config import Settings
from .model import OFF, Feature, State
from .responses import Answer, banner_header, blocked, prefers_json
from .signals import request_blocked
from .writes import Writer

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment
    from flask import Flask

logger = logging.getLogger("flask_maintenance")

#: Methods that pass in readonly mode (compared upper-case: ``get`` is ``GET``).
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class Action(enum.Enum):
    """What to do with a request."""

    #: Serve it.
    PASS = "pass"
    #: Refuse it with the built-in answer (the fast path can send it).
    REFUSE = "refuse"
    #: Refuse it, but in the app: a custom template or ``request_blocked`` receivers need it.
    REFUSE_IN_APP = "refuse-in-app"
    #: The mode refuses it unless one of the app's bypass rules lets it through.
    ASK_RULES = "ask-rules"
    #: The mode lets it through unless its view belongs to a switched-off feature.
    ASK_FEATURES = "ask-features"


class Verdict(NamedTuple):
    """A decision and what it was made on: the state, and whether the answer is JSON."""

    action: Action
    state: State
    as_json: bool = False


#: The verdict while there is nothing to do (made once: it is every request's while off).
IDLE = Verdict(Action.PASS, OFF)


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
        app: Flask,
        settings: Settings,
        backend: Backend,
        rules: list[BypassRule],
        on_change: Callable[[State, State], None] | None = None,
    ) -> None:
        self.settings = settings
        self._app = weakref.ref(app)
        self._on_change = on_change
        self._warned: set[str] = set()
        self.use_backend(backend)
        self.allowlist = IPAllowlist(settings.allowed_networks)
        self.cookie = BypassCookie(settings.bypass_cookie, settings.bypass_max_age)
        self.rules = rules
        self.api_paths = PathSet(settings.api_prefixes)
        self.open_paths = PathSet((*settings.allowed_paths, settings.status_path))
        #: The fast path's verdict on the request being handled, for the hook to act on.
        self.verdict: ContextVar[Verdict | None] = ContextVar("flask_maintenance_verdict", default=None)
        # (state, answers): swapped whole, so threads never see a half-updated pair.
        self._answers: tuple[State | None, dict[tuple[bool, int, str | None], Answer]] = (None, {})
        self._answers_lock = threading.Lock()

    # -- the decision ----------------------------------------------------------------------

    def decide(self, state: State, environ: WSGIEnvironment) -> Verdict:
        """Decide a request from its environ (as the app sees it) and the state.

        Cheap checks first: nothing to do; allowed paths; allowed addresses and a valid bypass
        cookie (both decidable without the app); then the mode; then what needs the app (bypass
        rules, features, custom pages).
        """
        if state.idle:
            return IDLE
        if not state.blocking and not state.features:
            return Verdict(Action.PASS, state)
        path = request_path(environ)
        if path in self.open_paths or self._bypassed(state, environ):
            return Verdict(Action.PASS, state)
        method = environ.get("REQUEST_METHOD", "GET").upper()
        refused_by_mode = state.blocking and not (state.mode == "readonly" and method in SAFE_METHODS)
        as_json = path in self.api_paths or prefers_json(environ.get("HTTP_ACCEPT"))
        if not refused_by_mode:
            return Verdict(Action.ASK_FEATURES if state.features else Action.PASS, state, as_json)
        cookies = environ.get("HTTP_COOKIE", "")
        if any(rule.may_pass(cookies) for rule in self.rules):
            return Verdict(Action.ASK_RULES, state, as_json)
        if (self.settings.template and not as_json) or request_blocked.receivers:
            return Verdict(Action.REFUSE_IN_APP, state, as_json)
        return Verdict(Action.REFUSE, state, as_json)

    def _bypassed(self, state: State, environ: WSGIEnvironment) -> bool:
        if self.allowlist and self.allowlist.allows(environ.get("REMOTE_ADDR")):
            return True
        cookies = environ.get("HTTP_COOKIE")
        if not cookies or self.cookie.name not in cookies:
            return False
        app = self._app()
        secret_key = None if app is None else app.secret_key
        return self.cookie.is_valid(cookie_value(cookies, self.cookie.name), state, secret_key)

    # -- the answers -----------------------------------------------------------------------

    def answer(self, state: State, as_json: bool, feature: Feature | None = None) -> Answer:
        """The built-in 503 for this state (or for one switched-off feature), built on first use."""
        retry_after = state.retry_after() if feature is None else self.settings.retry_after
        key = (as_json, retry_after, None if feature is None else feature.name)
        answers_state, answers = self._answers
        if answers_state is not state:
            with self._answers_lock:
                if self._answers[0] is not state:
                    self._answers = (state, {})
                answers = self._answers[1]
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
                self._answers = (state, {})
            answers[key] = answer
        return answer

    # -- state and backend -----------------------------------------------------------------

    @property
    def backend(self) -> Backend:
        """Where the state lives (the cache reads it; the writer writes it)."""
        return self.cache.backend

    def use_backend(self, backend: Backend) -> None:
        """Read and write the state in ``backend`` from now on."""
        self.cache = StateCache(
            backend, self.settings.retry_after, self.settings.check_interval, on_change=self._on_change
        )
        self.writer = Writer(backend, self.settings.retry_after)

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


def request_path(environ: WSGIEnvironment) -> str:
    """``request.path`` as Werkzeug computes it, from the raw environ.

    WSGI carries the path as latin-1 text; Werkzeug reads it as UTF-8 and folds leading slashes.
    """
    raw: str = environ.get("PATH_INFO") or ""
    if not raw.isascii():
        try:
            raw = raw.encode("latin-1").decode("utf-8", "replace")
        except UnicodeEncodeError:
            pass  # not a valid WSGI string; compare it as it is
    return "/" + raw.lstrip("/")


_COOKIE_PAIR = re.compile(r"\s*([^=;\s]+)\s*=\s*([^;]*)")


def cookie_value(header: str, name: str) -> str | None:
    """The first cookie called ``name`` in a ``Cookie`` header (values we set need no unquoting)."""
    for match in _COOKIE_PAIR.finditer(header):
        if match.group(1) == name:
            return match.group(2).strip()
    return None


def verdict_of(gate: Gate, environ: WSGIEnvironment) -> Verdict:
    """The verdict the fast path reached on this request, or a fresh one when none did."""
    verdict = gate.verdict.get()
    return verdict if verdict is not None else gate.decide(gate.cache.get(), environ)
