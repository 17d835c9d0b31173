"""The Flask extension: wiring, and the thin public API over the gate and the writer."""

from __future__ import annotations

import functools
import logging
import os
import weakref
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar
from weakref import WeakKeyDictionary

import click
from flask import Blueprint, Flask, current_app, has_request_context, request

from . import config, fastpath, lazycli, metrics, rules, texts
from .backends import Backend, backend_from_url
from .bypass import BypassRule, hash_token
from .endpoints import BLUEPRINT_NAME
from .endpoints import blueprint as status_blueprint
from .errors import ConfigurationError, MaintenanceError
from .gate import Features, Gate
from .hook import request_hook
from .inflight import CountUnsafeRequests
from .languages import choose
from .model import FEATURES_ATTRIBUTE, Schedule, State, features_of
from .signals import maintenance_disabled, maintenance_enabled, request_blocked
from .workers import Heartbeat, Worker, read_heartbeats

if TYPE_CHECKING:
    from .writes import Writer

logger = logging.getLogger("flask_maintenance")

F = TypeVar("F", bound=Callable[..., Any])

#: The key of ``app.extensions`` that holds the extension instance.
EXTENSION_KEY = "maintenance"


class Maintenance:
    """Puts a Flask app into maintenance: ``Maintenance(app)`` or ``m.init_app(app)``.

    One instance may serve several apps; each app's settings, state cache and backend are kept
    per app, and the methods below act on ``current_app`` unless given ``app=``.

    :param app: the app to set up now; leave out to call :meth:`init_app` later.
    """

    #: The blueprint of the status and bypass routes (to exempt it from a rate limiter, say).
    status_blueprint = status_blueprint
    #: Blinker signals, also importable from the package.
    maintenance_enabled = maintenance_enabled
    maintenance_disabled = maintenance_disabled
    request_blocked = request_blocked

    def __init__(self, app: Flask | None = None) -> None:
        self._gates: WeakKeyDictionary[Flask, Gate] = WeakKeyDictionary()
        self._bypass_rules: list[BypassRule] = []
        self._features = Features()
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Read and validate the ``MAINTENANCE_*`` config and install the request hook.

        :raises ConfigurationError: when a config value is invalid (the message names the key).
        """
        if EXTENSION_KEY in app.extensions:
            raise MaintenanceError("this app already has a Maintenance extension")
        for key, value in config.defaults(app).items():
            app.config.setdefault(key, value)
        try:
            settings = config.Settings.from_config(app.config)
            backend = backend_from_url(
                settings.backend,
                lock_file=settings.lock_file,
                redis_key=settings.redis_key,
                create_directory=os.path.dirname(os.path.abspath(settings.lock_file))
                == os.path.abspath(app.instance_path),
            )
        except ConfigurationError as error:
            _raise_config_error(error, app)
        gate = Gate(
            app,
            settings,
            backend,
            self._bypass_rules,
            self._features,
            on_change=_signal_changes(app),
        )
        if settings.protect_database:
            from .database import protect_configured

            try:
                protect_configured(app, gate)
            except ConfigurationError as error:
                _raise_config_error(error, app)
        self._gates[app] = gate
        app.extensions[EXTENSION_KEY] = self

        app.context_processor(functools.partial(_template_context, gate))
        app.register_blueprint(status_blueprint, url_prefix=settings.status_path)
        if not (settings.fast_path and fastpath.install(app, gate)):
            # First of all before_request hooks, so that nothing the app does (database,
            # session) runs for a refused request: Flask opened the session already, though.
            app.before_request_funcs.setdefault(None, []).insert(0, request_hook(app, gate))
            # What the fast path does besides deciding: count unsafe requests for the drain.
            app.wsgi_app = CountUnsafeRequests(app.wsgi_app, gate.worker)  # type: ignore[method-assign]
        metrics.watch(gate)

        lazycli.install(app)

    # -- switching -------------------------------------------------------------------------

    def enable(
        self,
        mode: str | None = None,
        retry: int | str | None = None,
        message: str | None = None,
        ends_at: datetime | str | None = None,
        *,
        secret: str | None = None,
        feature: str | None = None,
        translations: Mapping[str, str] | None = None,
        app: Flask | None = None,
    ) -> State:
        """Switch maintenance on, or change what is named while it is on.

        Off, this starts a new window in ``mode`` (``full`` by default). On, only the arguments
        given change (an empty ``message`` removes the message); a new ``secret`` starts a new
        window, so earlier bypass links and cookies stop working (that is how to revoke them).

        With ``feature=`` only that feature is switched off (its views, commands and guarded
        functions refuse with its own message) and the rest of the app runs.

        :param mode: ``"full"``, ``"readonly"`` or ``"banner"``.
        :param retry: seconds for ``Retry-After`` (also ``"90s"``, ``"5m"``); without it,
            ``Retry-After`` counts down to ``ends_at``, else is the configured default.
        :param message: shown on the page, in the problem JSON and in the banner.
        :param ends_at: the expected end, timezone-aware and in the future.
        :param translations: the message in other languages, by language tag
            (``{"de": "Wartung bis 3 Uhr"}``): visitors get the one their ``Accept-Language``
            matches best, else ``message``. Given, they replace the earlier ones; a new
            ``message`` without them drops the earlier ones (they translated the old message).
        :param secret: a bypass token; only its hash is stored.
        :param feature: switch off just this feature (a blueprint's name, or a name given to
            :meth:`feature`); only ``message`` applies then.
        :param app: the app to act on, instead of ``current_app``.
        :return: the new state.
        :raises ConfigurationError: on an invalid argument; the state is then left unchanged.
        :raises BackendError: when the state cannot be written.
        """
        gate = self._gate(app)
        if feature is not None:
            if (mode, retry, ends_at, secret, translations) != (None, None, None, None, None):
                raise ConfigurationError("a feature switch takes only a message")
            _writer(gate).switch_feature_off(feature, message)
            logger.info("feature %s switched off", feature)
            return self._fresh(gate)
        if secret and not (app or current_app).secret_key:
            raise ConfigurationError(
                "bypass links need the app's SECRET_KEY (it signs the bypass cookie): set it first"
            )
        _writer(gate).enable(
            mode, retry, message, ends_at, hash_token(secret) if secret else None, translations
        )
        return self._fresh(gate)  # the cache logs the change, once

    def disable(self, *, feature: str | None = None, app: Flask | None = None) -> bool:
        """Switch maintenance off; doing it while already off is not an error.

        A scheduled window that has already started ends too (one still to come stays: see
        :meth:`cancel`). Features switched off on their own stay off.

        :param feature: switch just this feature back on instead.
        :return: whether anything was on (the site, or that feature); if not, nothing is written.
        :raises BackendError: when the state cannot be removed.
        """
        gate = self._gate(app)
        if feature is not None:
            changed = _writer(gate).switch_feature_on(feature)
            if changed:
                logger.info("feature %s switched back on", feature)
        else:
            changed = _writer(gate).disable()
        self._fresh(gate)  # the cache logs the change, once
        return changed

    def schedule(
        self,
        starts_at: datetime,
        ends_at: datetime | None = None,
        *,
        mode: str = "full",
        message: str | None = None,
        auto_off: bool = False,
        app: Flask | None = None,
    ) -> State:
        """Plan a window: announced in the banner until ``starts_at``, then in ``mode``.

        It replaces any earlier plan. It ends by itself at ``ends_at`` only with ``auto_off``
        (also the safety net for a window forgotten on); otherwise someone runs ``off``.

        :raises ConfigurationError: for naive or past times, an end before the start, or
            ``auto_off`` without an end.
        """
        gate = self._gate(app)
        window, _ = _writer(gate).schedule(starts_at, ends_at, mode=mode, message=message, auto_off=auto_off)
        logger.info("maintenance scheduled at %s", window.starts_at.isoformat())
        return self._fresh(gate)

    def cancel(self, *, app: Flask | None = None) -> Schedule | None:
        """Drop the scheduled window (before or during it); the main switch is left alone.

        :return: the window cancelled, or ``None`` when nothing was scheduled.
        """
        gate = self._gate(app)
        cancelled = _writer(gate).cancel()
        if cancelled is not None:
            logger.info("scheduled maintenance cancelled")
        self._fresh(gate)
        return cancelled

    @contextmanager
    def enabled(
        self,
        mode: str = "full",
        retry: int | None = None,
        message: str | None = None,
        ends_at: datetime | None = None,
        *,
        app: Flask | None = None,
    ) -> Iterator[State]:
        """Maintenance on for a block, then exactly the main switch there was before (for tests)::

            with m.enabled(mode="readonly", app=app) as state:
                assert client.post("/orders").status_code == 503

        The arguments are those of :meth:`enable`. Unlike :meth:`window`, the switch is put back
        whatever happens in the block, an exception or a change made meanwhile included.
        """
        gate = self._gate(app)
        previous = gate.backend.read()
        try:
            yield self.enable(mode=mode, retry=retry, message=message, ends_at=ends_at, app=app)
        finally:
            _writer(gate).restore_lock(previous)
            gate.cache.clear()

    @contextmanager
    def window(
        self,
        mode: str = "full",
        retry: int | None = None,
        message: str | None = None,
        ends_at: datetime | None = None,
        *,
        off_on_failure: bool = False,
        report: Callable[[str], None] | None = None,
        secret: str | None = None,
        app: Flask | None = None,
    ) -> Iterator[State]:
        """Maintenance in at least ``mode`` around a block of a deploy script::

            with m.window(mode="readonly", app=app):
                migrate()

        Entering switches on, or to ``mode`` from a weaker one (``banner`` < ``readonly`` <
        ``full``); a stronger or equal mode already on is left as it is. When the block succeeds,
        the state there was before comes back exactly (unless somebody changed it meanwhile:
        then it is left as they made it). When the block raises, the window stays (the site
        stays safe while someone looks), unless ``off_on_failure``.

        :param report: called with one line each time the state is switched (default: logged).
        :param secret: a bypass secret for the duration (the deploy's own checks pass with it,
            in the bypass header); it is set even when the mode already on is strong enough,
            and taken back when the block ends, whether or not the window stays.
        """
        gate = self._gate(app)
        say = report or logger.info
        before = gate.cache.read_now()
        strong_enough = (
            before.active and rules.STRENGTH[before.mode or "full"] >= rules.STRENGTH[rules.mode(mode)]
        )
        if strong_enough and secret is None:
            say(f"Maintenance is already on (mode {before.mode}); left as it is.")
            yield before
            return
        previous = gate.backend.read()
        # Raising the mode keeps the window, so that admins' bypass cookies go on working; only
        # a secret starts a new one (given back with the rest at the end).
        token_hash = None if secret is None else hash_token(secret)
        if strong_enough:
            _, lock = _writer(gate).enable(token_hash=token_hash)
        else:
            _, lock = _writer(gate).enable(mode, retry, message, ends_at, token_hash)
        state = self._fresh(gate)
        if strong_enough:
            say(f"Maintenance is already on (mode {before.mode}); a bypass secret is set for the duration.")
        elif before.active:
            say(f"Maintenance raised from mode {before.mode} to {mode} for the duration.")
        else:
            say(f"Maintenance is on (mode {mode}) for the duration.")
        try:
            yield state
        except BaseException:
            if off_on_failure:
                self._give_back(gate, lock.to_json(), previous, before, say, token_hash)
            else:
                say(f"Maintenance stays on (mode {mode}): run `flask maintenance off` when the site is safe.")
                self._revoke(gate, token_hash, before, say)
            raise
        self._give_back(gate, lock.to_json(), previous, before, say, token_hash)

    def _give_back(
        self,
        gate: Gate,
        written: bytes,
        previous: Any,
        before: State,
        say: Callable[[str], None],
        token_hash: str | None,
    ) -> None:
        """Put back the lock there was before a window, unless somebody changed it meanwhile
        (then only the window's own secret is taken back)."""
        if not _writer(gate).replace_lock(written, previous):
            say("Maintenance was changed by somebody else meanwhile; left as they made it.")
            self._revoke(gate, token_hash, before, say)
        elif before.active:
            say(f"Maintenance is back to mode {before.mode}.")
        else:
            say("Maintenance is off again.")
        self._fresh(gate)

    def _revoke(self, gate: Gate, token_hash: str | None, before: State, say: Callable[[str], None]) -> None:
        """Take back the secret a window made, when its state stays beyond the block."""
        if token_hash is None:
            return
        try:
            _writer(gate).revoke_secret(token_hash, before)
        except MaintenanceError as error:  # the block's own error, if any, is the one to raise
            say(f"The bypass secret of the window could not be taken back: {error}")
            return
        self._fresh(gate)

    # -- reading ---------------------------------------------------------------------------

    def status(self, *, fresh: bool = False, app: Flask | None = None) -> State:
        """The current state (cached for at most ``MAINTENANCE_CHECK_INTERVAL`` seconds).

        :param fresh: read the backend now; a backend that cannot be read then raises
            :class:`BackendError` instead of answering with the last known state.
        """
        gate = self._gate(app)
        return gate.cache.read_now() if fresh else gate.cache.get()

    def is_active(self, *, app: Flask | None = None) -> bool:
        """Whether maintenance is on, in any mode."""
        return self.status(app=app).active

    def wait_for_notifications(self, timeout: float = 15.0, *, app: Flask | None = None) -> bool:
        """Wait until the webhook notifications this process started are delivered or given up
        (a process exiting waits by itself; this is for tests and long-running scripts).

        :return: whether everything was settled within ``timeout`` seconds.
        """
        return self._gate(app).announcer.wait(timeout)

    def settings(self, *, app: Flask | None = None) -> config.Settings:
        """The app's ``MAINTENANCE_*`` config as validated by :meth:`init_app`."""
        return self._gate(app).settings

    def backend(self, *, app: Flask | None = None) -> Backend:
        """Where this app's state lives."""
        return self._gate(app).backend

    def known_features(self, *, app: Flask | None = None) -> frozenset[str]:
        """The feature names the app knows: its blueprints' and every name given to :meth:`feature`."""
        gate = self._gate(app)
        target = app if app is not None else current_app
        names = set(gate.features.names)
        for registered, registered_blueprint in target.blueprints.items():
            names.update((registered, registered_blueprint.name))
        names.discard(BLUEPRINT_NAME)  # the extension's own routes are never a feature
        return frozenset(names)

    def refusals(self, *, app: Flask | None = None) -> dict[tuple[str, str], int]:
        """How many requests this process has refused, per ``(mode, kind)``.

        ``kind`` is ``"page"`` or ``"json"``, the kind of answer. The same counts are the
        ``flask_maintenance_refused_total`` metric when ``prometheus_client`` is installed.
        """
        return self._gate(app).refusal_counts()

    def workers(self, *, app: Flask | None = None) -> list[Heartbeat]:
        """The processes that enforce this app's state now, from their last heartbeats.

        Each serving process (every web worker, on every server sharing the backend) publishes
        one at the check interval; a process gone or frozen for three intervals is left out.
        ``flask maintenance status`` lists the same.

        :raises BackendError: when the backend cannot be read.
        """
        return read_heartbeats(self._gate(app).backend)

    def worker(self, *, app: Flask | None = None) -> Worker:
        """This process's :class:`~flask_maintenance.workers.Worker` for the app: to count other
        unsafe work than requests (tasks) and publish its heartbeat from a process that serves
        no requests (see :mod:`flask_maintenance.workers`)."""
        return self._gate(app).worker

    @contextmanager
    def isolated(
        self, backend: Backend, *, check_interval: float | None = None, app: Flask | None = None
    ) -> Iterator[None]:
        """Keep the state in ``backend`` for a block (tests), then go back to the configured one.

        :param check_interval: read it this often instead (``0``: on every request, so that a
            server in another process sees each switch at once).
        """
        gate = self._gate(app)
        configured = gate.backend
        gate.use_backend(backend, check_interval)
        try:
            yield
        finally:
            gate.use_backend(configured)

    def guard_socketio(self, socketio: Any, *, read_events: Collection[str] = ()) -> None:
        """Refuse Flask-SocketIO connections and events during maintenance, as requests are.

        Full maintenance refuses new connections and every event; readonly refuses the events
        not named in ``read_events`` (see "Using it with other extensions" in the docs).
        """
        from .realtime import guard_socketio

        guard_socketio(socketio, read_events=read_events)

    # -- the database ------------------------------------------------------------------------

    def protect_database(self, target: Any, *, app: Flask | None = None) -> None:
        """Make a database read-only at the database while maintenance is on (:doc:`database`).

        While this process enforces ``readonly`` or ``full``, every transaction that begins on
        ``target`` is read-only: a write in a request gets the maintenance 503, in a ``flask``
        command one line and exit status 75, elsewhere :class:`MaintenanceActive`. Commands that
        run whatever the state, and code inside :meth:`writable`, can still write. With
        ``MAINTENANCE_PROTECT_DATABASE = "log"`` writes go through and are logged instead.

        :param target: a SQLAlchemy ``Engine``, or a Flask-SQLAlchemy ``SQLAlchemy`` instance set
            up on the app (all its binds).
        :param app: the app whose state decides, instead of ``current_app`` (or the only app).
        :raises ConfigurationError: for another kind of target, a database other than
            PostgreSQL, SQLite, MySQL or MariaDB, or when SQLAlchemy is not installed.
        """
        from .database import protect

        resolved = app if app is not None else self._only_app()
        gate = self._gate(resolved)
        flask_app = resolved if resolved is not None else current_app._get_current_object()  # type: ignore[attr-defined]
        protect(flask_app, gate, target)

    @contextmanager
    def writable(self) -> Iterator[None]:
        """Transactions that begin in the block can write to a protected database whatever the
        state (in this thread or task only): for the maintenance work itself::

            with maintenance.writable():
                db.session.execute(update(Order).values(currency="EUR"))
                db.session.commit()
        """
        from .database import writable

        with writable():
            yield

    # -- app rules ---------------------------------------------------------------------------

    def bypass_rule(self, rule: F | None = None, *, cookie: str | None = None) -> Any:
        """Register a function that lets a request through when it returns a true value.

        It runs inside the request (``current_user.is_admin``, say); an ``async def`` rule is
        awaited the way Flask runs async views (this needs ``flask[async]``). One that raises
        is logged and counts as False: a broken rule never turns a 503 into a 500. Usable as
        ``@m.bypass_rule`` or ``@m.bypass_rule(cookie="session")``.

        :param cookie: a cookie the rule cannot pass without (the session cookie for a rule
            about the signed-in user). Requests that lack it are refused by the WSGI fast path
            instead of all going through the full request cycle.
        """

        def register(check: F) -> F:
            self._bypass_rules.append(BypassRule(check, cookie))
            return check

        return register if rule is None else register(rule)

    def feature(
        self, name: str, blueprint: Blueprint | None = None, *, prefix: str | None = None
    ) -> Callable[[F], F]:
        """Name a feature that can be switched off on its own (``flask maintenance on --feature``).

        ``@m.feature("payments")`` on a view, a Click command or a guarded function;
        ``m.feature("payments", blueprint=bp)`` for a whole blueprint;
        ``m.feature("admin", prefix="/admin")`` for every URL under a path (an extension's
        views that are not one blueprint, such as Flask-Admin's). Every blueprint is already a
        feature by its own name.

        :raises ConfigurationError: for a name that is not a valid feature name, or a prefix
            that is not a path.
        """
        rules.feature_name(name)
        if prefix is not None and (not isinstance(prefix, str) or not prefix.startswith("/")):
            raise ConfigurationError(f"a feature prefix must be a path such as '/admin', not {prefix!r}")
        self._features.add(name, blueprint, prefix)

        def mark(target: F) -> F:
            setattr(target, FEATURES_ATTRIBUTE, features_of(target) | {name})
            return target

        return mark

    def exempt(self, command: F) -> F:
        """Mark a Click command (or its callback), or a Celery task (above or below the task
        decorator), to run even during maintenance."""
        command.__maintenance_exempt__ = True  # type: ignore[attr-defined]
        return command

    def init_celery(self, celery_app: Any, *, app: Flask | None = None) -> None:
        """Pause ``celery_app``'s workers and beat while maintenance blocks background work.

        While on in one of ``MAINTENANCE_CLI_BLOCK_MODES``, each worker stops taking tasks
        within its check interval (tasks already running finish), a task run anyway is retried
        after ``Retry-After``, and beat skips periodic tasks; all resume when it is off. Tasks
        marked with :meth:`exempt` or named in ``MAINTENANCE_CELERY_EXEMPT`` (or sent to a queue
        named there) run. Needs the ``celery`` extra.

        :param celery_app: the ``Celery`` instance, from the app factory.
        :param app: the Flask app whose state and config decide, instead of ``current_app`` (or
            the only app this instance serves).
        """
        from . import workgate
        from .celery import install

        gate = self._gate(app if app is not None else self._only_app())
        install(celery_app, workgate.for_gate(gate, gate.settings.celery_exempt))

    def guard(self, func: F | None = None, *, raise_: bool = False, app: Flask | None = None) -> Any:
        """Skip a function while maintenance stops background work (``@m.guard``).

        While on in one of ``MAINTENANCE_CLI_BLOCK_MODES`` the function is not called, a log line
        says why, and the call returns ``None`` (or raises :class:`MaintenanceActive` with
        ``raise_=True``). Usable as ``@m.guard``, ``@m.guard(raise_=True)`` or ``with m.guard():``.
        The app is ``app=``, else ``current_app``, else the only app this instance serves.
        """

        def read_state() -> tuple[State, Collection[str]]:
            gate = self._gate(app if app is not None else self._only_app())
            # Fresh, so that a backend that cannot be read stops the work instead of passing
            # for "off" (guarded work is seldom enough for a read per call).
            return gate.cache.read_now(), gate.settings.cli_block_modes

        from .guard import Guard  # here: a web worker that guards nothing never imports it

        guard = Guard(read_state, raise_=raise_)
        return guard if func is None else guard(func)

    # -- internals --------------------------------------------------------------------------

    def _fresh(self, gate: Gate) -> State:
        """The state after our own write: forget the cached one, read it again."""
        gate.cache.clear()
        return gate.cache.get()

    def _only_app(self) -> Flask | None:
        """``current_app`` when there is one, else the single app this instance serves."""
        if current_app or len(self._gates) != 1:
            return None
        return next(iter(self._gates.keys()))

    def _gate(self, app: Flask | None) -> Gate:
        if app is None:
            if not current_app:
                raise MaintenanceError("no app: call this inside an app context or pass app=")
            app = current_app._get_current_object()  # type: ignore[attr-defined]
        try:
            return self._gates[app]
        except KeyError:
            raise MaintenanceError(
                "this app is not set up for maintenance: call Maintenance(app) or init_app(app)"
            ) from None


def _writer(gate: Gate) -> Writer:
    """What makes every change to ``gate``'s state: made for each change, so that a web worker,
    which only reads the state, never imports the writes, the history or the notifications."""
    from .writes import Writer

    return Writer(gate.backend, gate.settings.retry_after, gate.announcer)


def _template_context(gate: Gate) -> dict[str, Any]:
    """``maintenance`` (the state) and ``maintenance_banner`` (what a banner says, in the
    request's language; ``None`` when there is nothing to say) for the app's templates."""
    state = gate.cache.get()
    if state.banner is None:
        return {"maintenance": state, "maintenance_banner": None}
    accept_language = request.headers.get("Accept-Language") if has_request_context() else None
    language, translation = choose(accept_language, state.languages)
    message = None if translation is None else state.messages[translation]
    return {"maintenance": state, "maintenance_banner": texts.banner(state, language, message)}


def _raise_config_error(error: ConfigurationError, app: Flask) -> NoReturn:
    """Raise ``error``; under the `flask` command, as one line instead of the traceback of the
    app's import."""
    if click.get_current_context(silent=True) is None:
        raise error
    from .cli import ConfigurationCommandError

    raise ConfigurationCommandError(error, app.config) from None


def _signal_changes(app: Flask) -> Callable[[State, State], None]:
    """Send ``maintenance_enabled``/``_disabled`` when this process sees the state change."""
    app_ref = weakref.ref(app)  # the gate that holds this lives in a dict keyed by the app

    def send(previous: State, current: State) -> None:
        sender = app_ref()
        if sender is None:
            return
        signal = maintenance_enabled if current.active else maintenance_disabled
        try:
            signal.send(sender, state=current)
        except Exception:  # the request that noticed the change must not fail because of it
            logger.warning("a %s receiver failed", signal.name, exc_info=True)

    return send
