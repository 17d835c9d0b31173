"""The decision for one request: pass it, leave it to the app, or refuse it with this answer.

:meth:`Gate.decide` is the one place that orders the checks of a request. It reads only the WSGI
environ as the app sees it and the cached state, so the WSGI fast path calls it before Flask
does anything; the request hook calls it only for apps without the fast path. Whatever needs the
app (bypass rules, the features of the matched view, a custom page, the app's CORS headers) is
named in the verdict and done once by :mod:`flask_maintenance.hook`.
"""

from __future__ import annotations

import enum
import functools
import itertools
import logging
import operator
import sys
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, NamedTuple, TypeVar

from .accept import ACCEPT_PREFIX, accepts_json
from .backends import Backend
from .bypass import BypassCookie, BypassRule, IPAllowlist, token_matches
from .cache import StateCache
from .config import Settings
from .languages import Choice, choose
from .model import OFF, Feature, State
from .signals import request_blocked
from .workers import Worker

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment
    from flask import Flask

    from .answer import Answer
    from .notify import Announcer

logger = logging.getLogger("flask_maintenance")

#: Methods that pass in readonly mode (compared upper-case: ``get`` is ``GET``).
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: Other extensions' endpoints that are always served: monitoring must go on during maintenance
#: (``prometheus_metrics`` is prometheus-flask-exporter's ``/metrics``).
OPEN_ENDPOINTS = frozenset({"prometheus_metrics"})
#: What the status path serves beside the status itself, in every mode (the banner script,
#: the calendar of planned windows).
STATUS_FILES = ("banner.js", "calendar.ics")


class Action(enum.Enum):
    """What to do with a request."""

    #: Serve it.
    PASS = "pass"
    #: Refuse it with the built-in answer (the fast path can send it).
    REFUSE = "refuse"
    #: Refuse it, in the app: a custom page, ``request_blocked`` receivers or CORS need it.
    REFUSE_IN_APP = "refuse-in-app"
    #: Refuse it unless one of the app's bypass rules lets it through.
    ASK_RULES = "ask-rules"
    #: The mode lets it through unless its view belongs to a switched-off feature.
    ASK_FEATURES = "ask-features"


class Verdict(NamedTuple):
    """A decision and what it was made on.

    ``feature`` is the switched-off feature that refuses the request, when the gate already
    knows it (a feature named by its URL prefix).
    """

    action: Action
    state: State
    as_json: bool = False
    feature: Feature | None = None


#: The verdict while there is nothing to do (made once: it is every request's while off).
IDLE = Verdict(Action.PASS, OFF)
# Module constants: an enum member looked up on its class costs more than it seems, and so does
# a NamedTuple's own __new__ and ``_make`` (Python functions): tuple.__new__ is one C call.
_PASS, _REFUSE = Action.PASS, Action.REFUSE
_verdict: Callable[[tuple[Action, State, bool, Feature | None]], Verdict] = functools.partial(
    tuple.__new__, Verdict
)


#: How many distinct ``Accept-Language`` headers (as cut to what :func:`choose` reads) each state
#: remembers the built-in answers for (see :func:`remember`).
LANGUAGE_HEADERS = 256
#: The built-in answers of one language while they cannot change, by :func:`plain_slot`:
#: filled on first use.
PlainAnswers = list["Answer | None"]
_SLOTS = 4


def plain_slot(as_json: bool, write: bool) -> int:
    """Where a plain answer goes in its language's :data:`PlainAnswers`: the page, the problem
    JSON, the page that says a write was refused, and the JSON again (a refused write's JSON
    is the same as any other's)."""
    return as_json + 2 * write


@dataclass(frozen=True, slots=True)  # slots: the hot path reads these faster than a tuple's fields
class Prepared:
    """What the hot path needs of one state, made once when the cached state changes.

    An immutable value swapped whole in one attribute, so threads see the old one or the new one.
    The cache keeps its state object while what it reads does not change, so these are rebuilt
    only when the state does (at most once per interval).
    """

    state: State
    #: The verdict of every request that passes (one object per state, not one per request).
    passing: Verdict
    #: The verdicts of plain refusals (no feature), by ``as_json``.
    refusing: tuple[Verdict, Verdict]
    #: Whether there is a banner (its header's value depends on the visitor's language).
    banner: bool
    #: The built-in answers (no feature, the app at the root) while they cannot change (no
    #: countdown to ``ends_at``), by language; filled on first use.
    plain: dict[Choice, PlainAnswers]
    #: The same lists by a visitor's ``Accept-Language`` (``""`` when none) as the fast path
    #: reads it (cut to the :data:`~flask_maintenance.languages.ACCEPT_LANGUAGE_PREFIX`
    #: characters that :func:`choose` reads): a refusal's answers in one dictionary look-up
    #: instead of a choice and a key. Filled by :meth:`answers_for`.
    by_header: dict[str, Sequence[Answer | None]]
    #: The ``X-Maintenance-Banner`` header, by language; filled on first use.
    banners: dict[Choice, tuple[str, str]]
    #: The same headers by ``Accept-Language`` as :attr:`by_header` is keyed; filled by
    #: :meth:`banner_for`.
    banner_by_header: dict[str, tuple[str, str]]

    def answers_for(self, accept_language: str) -> Sequence[Answer | None]:
        """The plain answers for an ``Accept-Language`` header (cut as :attr:`by_header`'s keys),
        remembered in :attr:`by_header`; during a countdown none (nothing to remember)."""
        if self.state.ends_at is not None:
            answers: Sequence[Answer | None] = _NO_PLAIN_ANSWERS
        else:
            # setdefault: one C call, so two threads that miss at once share one list.
            answers = self.plain.setdefault(choose(accept_language, self.state.languages), [None] * _SLOTS)
        return remember(self.by_header, accept_language, answers, LANGUAGE_HEADERS)

    def banner_for(self, accept_language: str) -> tuple[str, str]:
        """:meth:`banner_in`, remembered in :attr:`banner_by_header` (bounded as :attr:`by_header`)."""
        return remember(
            self.banner_by_header, accept_language, self.banner_in(accept_language), LANGUAGE_HEADERS
        )

    def banner_in(self, accept_language: str | None) -> tuple[str, str]:
        """The banner header for a visitor's ``Accept-Language`` (built once per language)."""
        language = choose(accept_language, self.state.languages)  # cached: one look-up
        header = self.banners.get(language)
        if header is None:
            from .responses import banner_header  # here: a worker needs it only once there is a banner

            header = self.banners[language] = ("X-Maintenance-Banner", banner_header(self.state, *language))
        return header


#: What a countdown's states give for every language: the answers change every second, so
#: every one comes from :meth:`Gate.answer`.
_NO_PLAIN_ANSWERS: Sequence[Answer | None] = (None,) * _SLOTS


def _prepare(state: State) -> Prepared:
    return Prepared(
        state,
        Verdict(_PASS, state),
        (Verdict(_REFUSE, state, False), Verdict(_REFUSE, state, True)),
        state.banner is not None,
        {},
        {},
        {},
        {},
    )


_Key = TypeVar("_Key")
_Value = TypeVar("_Value")


def remember(memory: dict[_Key, _Value], key: _Key, value: _Value, limit: int) -> _Value:
    """Keep ``value`` under ``key`` in ``memory``, a dictionary of at most ``limit`` entries
    that the hot path reads with one ``get``; return ``value``.

    A full memory is emptied first: a stranger's distinct keys cost bounded memory, and the few
    keys that real clients send are back after one miss each. Each step is one dictionary
    operation, atomic under the GIL, so threads share it (at most one entry per thread beyond
    ``limit``).
    """
    if len(memory) >= limit:
        memory.clear()
    memory[key] = value
    return value


#: How many distinct request paths (``PATH_INFO``) the gate remembers the reading of, and the
#: longest it remembers (a longer one is read on every request).
PATHS_REMEMBERED = 256
REMEMBERED_PATH_LENGTH = 512


class PathReading(NamedTuple):
    """What :meth:`Gate.decide` needs of a request's path."""

    #: As the app sees it: one leading slash, decoded as UTF-8.
    path: str
    #: Always served (allowed paths, the status path and its files, ...).
    open: bool
    #: Answered with problem JSON.
    api: bool


#: What a prebuilt answer depends on besides the state: JSON or not, Retry-After, the feature,
#: the script root, overdue or not, the language, and whether it refuses a write.
_AnswerKey = tuple[bool, int, str | None, str, bool, Choice, bool]


class PathSet:
    """Path prefixes matched on segment boundaries: ``/api`` covers ``/api/x``, not ``/apiary``."""

    def __init__(self, prefixes: Iterable[str], exact: Iterable[str] = ()) -> None:
        """:param exact: paths matched alone, not as prefixes."""
        roots = [prefix.rstrip("/") for prefix in prefixes]
        #: The prefixes themselves, and what starts under them (``decide`` reads these directly).
        self.exact = frozenset((*(root or "/" for root in roots), *exact))
        self.under = tuple(root + "/" for root in roots)

    def __contains__(self, path: str) -> bool:
        return path in self.exact or path.startswith(self.under)


class Features:
    """The feature names an extension instance knows, and how requests map onto them.

    ``blueprints``: names given to blueprints with ``m.feature(name, blueprint=bp)`` (every
    blueprint is also a feature by its own name); ``prefixes``: features named by URL prefix,
    which the gate can match without the app; ``names``: every name given to ``m.feature``.
    """

    def __init__(self) -> None:
        self.blueprints: weakref.WeakKeyDictionary[object, set[str]] = weakref.WeakKeyDictionary()
        self.prefixes: dict[str, PathSet] = {}
        self._prefix_lists: dict[str, list[str]] = {}
        self.names: set[str] = set()

    def add(self, name: str, blueprint: object | None = None, prefix: str | None = None) -> None:
        self.names.add(name)
        if blueprint is not None:
            self.blueprints.setdefault(blueprint, set()).add(name)
        if prefix is not None:
            self._prefix_lists.setdefault(name, []).append(prefix)
            self.prefixes[name] = PathSet(self._prefix_lists[name])

    def by_prefix(self, switched_off: Mapping[str, Feature], path: str) -> Feature | None:
        """The first switched-off feature (by name) whose URL prefix covers ``path``."""
        for name in sorted(switched_off):
            prefixes = self.prefixes.get(name)
            if prefixes is not None and path in prefixes:
                return switched_off[name]
        return None


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
        features: Features,
        on_change: Callable[[State, State], None] | None = None,
    ) -> None:
        self.settings = settings
        self._app = weakref.ref(app)
        self._on_change = on_change
        self._announcer: Announcer | None = None
        self._announcer_lock = threading.Lock()
        self._warned: set[str] = set()
        self.use_backend(backend)
        #: This process's heartbeat and unsafe requests in flight (``--wait``), for this app.
        self.worker = Worker(lambda: self.cache, testing=lambda: bool(getattr(self._app(), "testing", False)))
        self.allowlist = IPAllowlist(settings.allowed_networks)
        self.cookie = BypassCookie(settings.bypass_cookie, settings.bypass_max_age)
        # Settings that decide() reads on every refusal, one attribute away instead of two.
        self._allowlisting = bool(settings.allowed_networks)
        self._cookie_name = self.cookie.name
        self._template = settings.template
        #: The bypass header as the WSGI environ names it (``HTTP_X_MAINTENANCE_BYPASS``).
        self.bypass_header = "HTTP_" + settings.bypass_header.upper().replace("-", "_")
        self.rules = rules
        self.features = features
        self.api_paths = PathSet(settings.api_prefixes)
        self._use_open_paths(self._open_paths())
        # The app's views, and how many there were when OPEN_ENDPOINTS were last looked for.
        self._views = app.view_functions
        self._views_seen = -1
        #: Refusals counted per (mode, kind), each by a :func:`refusal_counter`.
        self.refusals: dict[tuple[str, str], Iterator[None]] = {}
        self._refusals_lock = threading.Lock()
        # (state, answers): swapped whole, so threads never see a half-updated pair.
        self._answers: tuple[State | None, dict[_AnswerKey, Answer]] = (None, {})
        self._answers_lock = threading.Lock()
        #: The hot path's values for the state seen last (see :meth:`prepared`).
        self.current = _prepare(OFF)
        #: Whether the debug log wants a line per refusal: looked up after each reading of the
        #: state (at most once per interval), not per request.
        self.debug_refusals = False

    # -- the decision ----------------------------------------------------------------------

    def decide(self, state: State, environ: WSGIEnvironment) -> Verdict:
        """Decide a request from its environ (as the app sees it) and the state.

        Cheap checks first: nothing to do; allowed paths and CORS preflights; what the mode
        lets through; allowed addresses, a valid bypass cookie and the bypass header (all
        decidable without the app); features named by URL prefix; then what needs the app (bypass rules, the features
        of the view, a custom page, signal receivers, the app's CORS headers).
        """
        if state.idle:
            return IDLE
        prepared = self.current
        if prepared.state is not state:
            prepared = self.prepared(state)
        if not state.blocking and not state.features:
            return prepared.passing
        # Written out rather than in helpers: every refused request comes through here. What the
        # mode lets through comes first (every GET in readonly), so that it costs no path work.
        method = environ.get("REQUEST_METHOD") or "GET"
        if method not in SAFE_METHODS:
            method = method.upper()
        refused_by_mode = state.blocking and not (state.mode == "readonly" and method in SAFE_METHODS)
        if not refused_by_mode and not state.features:
            return prepared.passing
        raw = environ.get("PATH_INFO") or ""
        path, open_path, api_path = self._paths.get(raw) or self.read_path(raw)
        if open_path:
            return prepared.passing
        if method == "OPTIONS" and "HTTP_ACCESS_CONTROL_REQUEST_METHOD" in environ:
            return prepared.passing  # a CORS preflight: the app's CORS answers it
        # Nothing bypasses without an allowlist or this window's secret: two attribute tests.
        if self._allowlisting or state.token_hash:
            if (self._allowlisting or self._cookie_name in environ.get("HTTP_COOKIE", "")) and self.bypassed(
                state, environ
            ):
                return prepared.passing
            if state.token_hash is not None and self.header_bypassed(state, environ):
                return prepared.passing
        accept = environ.get("HTTP_ACCEPT")
        as_json = api_path or (
            accept is not None
            and accepts_json(accept if len(accept) <= ACCEPT_PREFIX else accept[:ACCEPT_PREFIX])
        )
        feature = None
        if not refused_by_mode:
            feature = self.features.by_prefix(state.features, path)
            if feature is None:
                return _verdict((Action.ASK_FEATURES, state, as_json, None))
        if self.rules and self.rules_may_pass(environ):
            return _verdict((Action.ASK_RULES, state, as_json, feature))
        if (
            (self._template and not as_json)
            or request_blocked.receivers
            or "HTTP_ORIGIN" in environ  # the app's CORS headers let the other origin read it
        ):
            return _verdict((Action.REFUSE_IN_APP, state, as_json, feature))
        if feature is None:
            return prepared.refusing[as_json]
        return _verdict((_REFUSE, state, as_json, feature))

    def read_path(self, raw: str) -> PathReading:
        """``PATH_INFO`` as the app sees it (one leading slash, UTF-8), and whether it is
        always served or answered with problem JSON; remembered when short (see :func:`remember`)."""
        path = "/" + (raw if raw.isascii() else _wsgi_text(raw)).lstrip("/")
        open_paths, memory = self._path_rules  # one pair: the memory of these open paths
        api_paths = self.api_paths
        reading = PathReading(
            path,
            path in open_paths.exact or path.startswith(open_paths.under),
            path in api_paths.exact or path.startswith(api_paths.under),
        )
        if len(raw) > REMEMBERED_PATH_LENGTH:
            return reading
        return remember(memory, raw, reading, PATHS_REMEMBERED)

    def prepared(self, state: State) -> Prepared:
        """The hot path's values for ``state`` (made when the cached state changes)."""
        prepared = self.current
        if prepared.state is not state:
            # Once per state read, not per request: Flask adds no view once it has served.
            if len(self._views) != self._views_seen:
                self._find_open_endpoints()
            prepared = self.current = _prepare(state)
        return prepared

    def _read_again(self) -> None:
        """After each reading of the state (at most once per interval, even when it is the same
        state): notice a change of the log level."""
        self.debug_refusals = logger.isEnabledFor(logging.DEBUG)

    def _find_open_endpoints(self) -> None:
        """Add the paths of :data:`OPEN_ENDPOINTS` to the open paths (again when views change)."""
        app = self._app()
        if app is None:
            return
        self._views_seen = len(self._views)
        self._use_open_paths(
            self._open_paths(
                rule.rule
                for rule in app.url_map.iter_rules()
                if rule.endpoint in OPEN_ENDPOINTS and not rule.arguments
            )
        )

    def _use_open_paths(self, open_paths: PathSet) -> None:
        # The readings of recent paths, by PATH_INFO (see read_path), are remembered afresh
        # with each set of open paths (which are open is known once the app's views are): the
        # pair is swapped whole, so no reading of the old paths lands in the new memory.
        memory: dict[str, PathReading] = {}
        self._path_rules = (open_paths, memory)
        self._paths = memory
        #: What is always served (see :meth:`_open_paths`).
        self.open_paths = open_paths

    def _open_paths(self, endpoint_paths: Iterable[str] = ()) -> PathSet:
        """What is always served: allowed paths, other extensions' open endpoints, the status
        path with its bypass links (not whatever else the app puts under it), and
        ``/robots.txt`` (a 5xx one stops search engines crawling the whole site)."""
        status = self.settings.status_path
        robots = ("/robots.txt",) if self.settings.serve_robots_txt else ()
        return PathSet(
            (*self.settings.allowed_paths, f"{status}/bypass", *endpoint_paths),
            exact=(status, *(f"{status}/{name}" for name in STATUS_FILES), *robots),
        )

    def rules_may_pass(self, environ: WSGIEnvironment) -> bool:
        """Whether one of the app's bypass rules could let this request through."""
        cookies = environ.get("HTTP_COOKIE", "")
        return any(rule.may_pass(cookies) for rule in self.rules)

    def header_bypassed(self, state: State, environ: WSGIEnvironment) -> bool:
        """Whether the bypass header carries this window's secret (compared in constant time)."""
        token = environ.get(self.bypass_header)
        return token is not None and token_matches(token.strip(), state)

    def bypassed(self, state: State, environ: WSGIEnvironment) -> bool:
        """Whether an allowed address or a valid bypass cookie lets this request through."""
        if self.settings.allowed_networks and self.allowlist.allows(environ.get("REMOTE_ADDR")):
            return True
        cookies = environ.get("HTTP_COOKIE")
        if not cookies or self.cookie.name not in cookies:
            return False
        app = self._app()
        secret_key = None if app is None else app.secret_key
        return self.cookie.is_valid(cookie_value(cookies, self.cookie.name), state, secret_key)

    # -- the answers -----------------------------------------------------------------------

    def answer(
        self,
        state: State,
        as_json: bool,
        feature: Feature | None = None,
        script_root: str = "",
        accept_language: str | None = None,
        write: bool = False,
    ) -> Answer:
        """The built-in 503 for this state (or for one switched-off feature), built on first use.

        :param script_root: where the app is mounted (``SCRIPT_NAME``), for the URLs it holds.
        :param accept_language: the request's ``Accept-Language``: one answer per language.
        :param write: the request's method is not a safe one (its page says nothing was saved).
        """
        language = choose(accept_language, state.languages)  # cached: one look-up
        slot = plain_slot(as_json, write)
        write = write and not as_json  # only the page differs
        plain = feature is None and not script_root and state.ends_at is None
        prepared = self.current
        if plain and prepared.state is state:  # nearly every refusal: two look-ups
            answer = prepared.plain.get(language, _NO_PLAIN_ANSWERS)[slot]
            if answer is not None:
                return answer
        retry_after = state.retry_after() if feature is None else self.settings.retry_after
        # An overdue window says so: not the same page as a countdown at the same value.
        overdue = state.ends_at is not None and feature is None and state.overdue()
        key = (
            as_json,
            retry_after,
            None if feature is None else feature.name,
            script_root,
            overdue,
            language,
            write,
        )
        answers_state, answers = self._answers
        if answers_state is not state:
            with self._answers_lock:
                if self._answers[0] is not state:
                    self._answers = (state, {})
                answers = self._answers[1]
        answer = answers.get(key)
        if answer is None:
            # Here: a web worker loads the page and the problem JSON only once a state refuses.
            from .responses import banner_header, blocked

            answer = blocked(
                state,
                readonly=state.mode == "readonly",
                as_json=as_json,
                retry_after=retry_after,
                status_url=script_root + self.settings.status_path,
                banner=None if state.banner is None else banner_header(state, *language),
                feature=feature,
                extra_headers=self.settings.response_headers,
                language=language.page,
                translation=language.message,
                write=write,
                site_name=self.settings.site_name,
                status_page_url=self.settings.status_page_url,
                recovery_checks=self.settings.recovery_checks,
            )
            kind = "json" if as_json else "page"
            mode = "feature" if feature is not None else state.mode or "full"
            answer = replace(answer, counter=self._counter(mode, kind))
            if len(answers) > 256:  # a countdown to ends_at makes a new key every second, per language
                self._answers = (state, {})
            answers[key] = answer
        if plain:
            # setdefault: the fast path may be filling the same language's list.
            self.prepared(state).plain.setdefault(language, [None] * _SLOTS)[slot] = answer
        return answer

    def _counter(self, mode: str, kind: str) -> Iterator[None]:
        counter = self.refusals.get((mode, kind))
        if counter is None:
            with self._refusals_lock:
                counter = self.refusals.setdefault((mode, kind), refusal_counter())
        return counter

    def refused(self, mode: str, kind: str) -> None:
        """Count one refusal that no prebuilt answer counted (a Socket.IO event, say)."""
        next(self._counter(mode, kind))

    def refusal_counts(self) -> dict[tuple[str, str], int]:
        """How many requests this process refused, per (mode, kind of answer)."""
        return {key: refusals_counted(counter) for key, counter in list(self.refusals.items())}

    # -- state and backend -----------------------------------------------------------------

    @property
    def backend(self) -> Backend:
        """Where the state lives (the cache reads it; the writer writes it)."""
        return self.cache.backend

    def use_backend(self, backend: Backend, check_interval: float | None = None) -> None:
        """Read and write the state in ``backend`` from now on.

        :param check_interval: instead of ``MAINTENANCE_CHECK_INTERVAL``.
        """
        interval = self.settings.check_interval if check_interval is None else check_interval
        self.cache = StateCache(
            backend, self.settings.retry_after, interval, on_change=self._changed, on_read=self._read_again
        )

    @property
    def announcer(self) -> Announcer:
        """Tells of transitions (history, webhooks); the writer and the cache report to it. Made
        on first use, so that a web worker that has seen no change never imports it; one per
        gate, so that :meth:`Announcer.wait` sees every notification this process sent."""
        if self._announcer is None:
            with self._announcer_lock:
                if self._announcer is None:
                    from .notify import Announcer

                    self._announcer = Announcer(self.settings.webhooks)
        return self._announcer

    def _changed(self, previous: State, current: State) -> None:
        """What this process does when its cache sees the state change."""
        if self._on_change is not None:
            self._on_change(previous, current)
        self.announcer.observe(self.backend, previous, current)

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


def refusal_counter() -> Iterator[None]:
    """A counter that the fast path steps with ``next()``, once per refusal.

    ``itertools.repeat(None, n)`` counts down in C and hands out the same ``None`` each time:
    one C call that threads may share (atomic under the GIL), and, unlike an
    ``itertools.count``, no new int to make and free per refusal, which would be half the cost.
    Read with :func:`refusals_counted` (its length hint is what is left). Exhausted only after
    ``sys.maxsize`` refusals, some 290,000 years at a million a second.
    """
    return itertools.repeat(None, sys.maxsize)


def refusals_counted(counter: Iterator[None]) -> int:
    """How many times a :func:`refusal_counter` was stepped."""
    return sys.maxsize - operator.length_hint(counter)


def script_root(environ: WSGIEnvironment) -> str:
    """``request.script_root``: where the app is mounted, without a trailing slash."""
    raw = environ.get("SCRIPT_NAME")
    return _wsgi_text(raw).rstrip("/") if raw else ""


def _wsgi_text(raw: str) -> str:
    if raw.isascii():
        return raw
    try:
        return raw.encode("latin-1").decode("utf-8", "replace")
    except UnicodeEncodeError:
        return raw  # not a valid WSGI string; compare it as it is


def cookie_value(header: str, name: str) -> str | None:
    """The first cookie called ``name`` in a ``Cookie`` header (values we set need no unquoting).

    Split, not a regular expression: a hostile header costs one pass over it, whatever it holds.
    """
    for pair in header.split(";"):
        key, separator, value = pair.partition("=")
        if separator and key.strip() == name:
            return value.strip()
    return None
