"""The Flask extension: configuration, the request hook, the public API and app rules."""

from __future__ import annotations

import getpass
import logging
import os
import secrets
import socket
import weakref
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
from typing import Any, TypeVar
from weakref import WeakKeyDictionary

from flask import (
    Blueprint,
    Flask,
    Response,
    after_this_request,
    current_app,
    jsonify,
    redirect,
    render_template,
    request,
)
from werkzeug.wrappers import Response as WerkzeugResponse

from . import config
from .backends import Backend, backend_from_url
from .bypass import BypassRule, hash_token, safe_next, token_matches
from .errors import ConfigurationError, MaintenanceError
from .fastpath import FastPath
from .gate import Gate
from .guard import Guard
from .plan import FEATURES_ATTRIBUTE, Feature, Plan, Schedule, check_feature_name, features_of
from .signals import maintenance_disabled, maintenance_enabled, request_blocked
from .responses import banner_header, public_status
from .state import MAX_MESSAGE_LENGTH, MAX_RETRY, MODES, State, encodable
from .times import MAX_DURATION, utcnow

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

    #: Blinker signals (see :mod:`flask_maintenance.signals`), also importable from the package.
    maintenance_enabled = maintenance_enabled
    maintenance_disabled = maintenance_disabled
    request_blocked = request_blocked

    def __init__(self, app: Flask | None = None) -> None:
        self._gates: WeakKeyDictionary[Flask, Gate] = WeakKeyDictionary()
        self._bypass_rules: list[BypassRule] = []
        self._blueprint_features: WeakKeyDictionary[object, set[str]] = WeakKeyDictionary()
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Read and validate the ``MAINTENANCE_*`` config and install the request hook.

        :raises ConfigurationError: when a config value is invalid (the message names the key).
        """
        for key, value in config.defaults(app).items():
            app.config.setdefault(key, value)
        settings = config.Settings.from_config(app.config)
        backend = backend_from_url(
            settings.backend,
            lock_file=settings.lock_file,
            redis_key=settings.redis_key,
            create_directory=os.path.dirname(os.path.abspath(settings.lock_file))
            == os.path.abspath(app.instance_path),
        )
        gate = Gate(settings, backend, self._bypass_rules, on_change=_signal_changes(app))
        self._gates[app] = gate
        app.extensions[EXTENSION_KEY] = self

        # First of all before_request hooks, so that nothing the app does (database, session)
        # runs for a refused request.
        app.before_request_funcs.setdefault(None, []).insert(0, self._hook_for(app, gate))
        app.context_processor(lambda: {"maintenance": gate.cache.get()})
        self._add_routes(app, gate)
        if settings.fast_path:
            app.wsgi_app = FastPath(app.wsgi_app, gate)  # type: ignore[method-assign]

        from .cli import install_command_gate, maintenance_group

        app.cli.add_command(maintenance_group)
        install_command_gate(app, gate)

    # -- public API -------------------------------------------------------------------------

    def enable(
        self,
        mode: str = "full",
        retry: int | None = None,
        message: str | None = None,
        ends_at: datetime | None = None,
        *,
        secret: str | None = None,
        feature: str | None = None,
        app: Flask | None = None,
    ) -> State:
        """Switch maintenance on and start a new window (earlier bypass cookies stop working).

        With ``feature=`` only that feature is switched off (its views, commands and guarded
        functions refuse with its own message) and the rest of the app runs.

        :param mode: ``"full"``, ``"readonly"`` or ``"banner"``.
        :param retry: seconds for ``Retry-After``; the configured default when ``None``.
        :param message: shown on the page, in the problem JSON and in the banner.
        :param ends_at: the expected end, timezone-aware and in the future.
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
            if (mode, retry, ends_at, secret) != ("full", None, None, None):
                raise ConfigurationError("a feature switch takes only a message")
            switched = Feature(
                name=_check_feature(feature),
                message=_check_message(message),
                started_at=utcnow().replace(microsecond=0),
            )
            self._update_plan(gate, lambda plan: plan.with_feature(switched))
            logger.info("feature %s switched off", feature)
            return gate.cache.get()
        if secret and not (app or current_app).secret_key:
            raise ConfigurationError(
                "bypass links need the app's SECRET_KEY (it signs the bypass cookie): set it first"
            )
        state = State(
            active=True,
            mode=_check_mode(mode),
            retry=_check_retry(retry),
            message=_check_message(message),
            started_at=utcnow().replace(microsecond=0),
            ends_at=_check_ends_at(ends_at),
            user=_user(),
            host=socket.gethostname(),
            window=secrets.token_hex(8),
            token_hash=hash_token(secret) if secret else None,
        )
        gate.backend.write(state.to_json())
        gate.cache.clear()
        return gate.cache.get()  # the cache logs the change, once

    def disable(self, *, feature: str | None = None, app: Flask | None = None) -> None:
        """Switch maintenance off; doing it while already off is not an error.

        A scheduled window that has already started ends too (one still to come stays: see
        :meth:`cancel`). Features switched off on their own stay off.

        :param feature: switch just this feature back on instead.
        :raises BackendError: when the state cannot be removed.
        """
        gate = self._gate(app)
        if feature is not None:
            self._update_plan(gate, lambda plan: plan.without_feature(feature))
            logger.info("feature %s switched back on", feature)
            return
        gate.backend.clear()
        now = utcnow()
        self._update_plan(
            gate,
            lambda plan: replace(plan, schedule=None)
            if plan.schedule is not None and plan.schedule.starts_at <= now
            else plan,
        )
        gate.cache.get()  # the cache logs the change, once

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
        now = utcnow()
        starts_at = _check_aware(starts_at, "starts_at")
        if starts_at <= now:
            raise ConfigurationError(f"the start {starts_at.isoformat()} is in the past")
        if starts_at > now + MAX_DURATION:
            raise ConfigurationError(f"the start {starts_at.isoformat()} is more than 366 days away")
        if ends_at is not None and _check_aware(ends_at, "ends_at") <= starts_at:
            raise ConfigurationError("the end must come after the start")
        if auto_off and ends_at is None:
            raise ConfigurationError("auto_off needs an end time")
        window = Schedule(
            starts_at=starts_at.replace(microsecond=0),
            ends_at=None if ends_at is None else ends_at.replace(microsecond=0),
            mode=_check_mode(mode),
            message=_check_message(message),
            auto_off=auto_off,
        )
        self._update_plan(gate, lambda plan: replace(plan, schedule=window))
        logger.info("maintenance scheduled at %s", window.starts_at.isoformat())
        return gate.cache.get()

    def cancel(self, *, app: Flask | None = None) -> None:
        """Drop the scheduled window (before or during it); the main switch is left alone."""
        gate = self._gate(app)
        self._update_plan(gate, lambda plan: replace(plan, schedule=None))
        logger.info("scheduled maintenance cancelled")

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
        """Maintenance on for a block, then exactly the state there was before (for tests)::

            with m.enabled(mode="readonly", app=app):
                assert client.post("/orders").status_code == 503
        """
        gate = self._gate(app)
        previous = gate.backend.read()
        try:
            yield self.enable(mode=mode, retry=retry, message=message, ends_at=ends_at, app=app)
        finally:
            if previous is None:
                gate.backend.clear()
            else:
                gate.backend.write(previous)
            gate.cache.clear()

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

    def settings(self, *, app: Flask | None = None) -> config.Settings:
        """The app's ``MAINTENANCE_*`` config as validated by :meth:`init_app`."""
        return self._gate(app).settings

    def backend(self, *, app: Flask | None = None) -> Backend:
        """Where this app's state lives."""
        return self._gate(app).backend

    def bypass_rule(self, rule: F | None = None, *, cookie: str | None = None) -> Any:
        """Register a function that lets a request through when it returns True.

        It runs inside the request (``current_user.is_admin``, say). One that raises is
        logged and counts as False: a broken rule never turns a 503 into a 500. Usable as
        ``@m.bypass_rule`` or ``@m.bypass_rule(cookie="session")``.

        :param cookie: a cookie the rule cannot pass without (the session cookie for a rule
            about the signed-in user). Requests that lack it are refused by the WSGI fast path
            instead of all going through the full request cycle.
        """

        def register(check: F) -> F:
            self._bypass_rules.append(BypassRule(check, cookie))
            return check

        return register if rule is None else register(rule)

    def feature(self, name: str, blueprint: Blueprint | None = None) -> Callable[[F], F]:
        """Name a feature that can be switched off on its own (``flask maintenance on --feature``).

        ``@m.feature("payments")`` on a view, a Click command or a guarded function;
        ``m.feature("payments", blueprint=bp)`` for a whole blueprint. Every blueprint is
        already a feature by its own name.

        :raises ConfigurationError: for a name that is not a valid feature name.
        """
        _check_feature(name)
        if blueprint is not None:
            self._blueprint_features.setdefault(blueprint, set()).add(name)

        def mark(target: F) -> F:
            setattr(target, FEATURES_ATTRIBUTE, features_of(target) | {name})
            return target

        return mark

    def exempt(self, command: F) -> F:
        """Mark a Click command (or its callback) to run even during maintenance."""
        command.__maintenance_exempt__ = True  # type: ignore[attr-defined]
        return command

    def guard(
        self, func: F | None = None, *, raise_: bool = False, app: Flask | None = None
    ) -> Any:
        """Skip a function while maintenance stops background work (``@m.guard``).

        While on in one of ``MAINTENANCE_CLI_BLOCK_MODES`` the function is not called, a log line
        says why, and the call returns ``None`` (or raises :class:`MaintenanceActive` with
        ``raise_=True``). Usable as ``@m.guard``, ``@m.guard(raise_=True)`` or ``with m.guard():``.
        The app is ``app=``, else ``current_app``, else the only app this instance serves.
        """

        def read_state() -> tuple[State, Collection[str]]:
            gate = self._gate(app if app is not None else self._only_app())
            return gate.cache.get(), gate.settings.cli_block_modes

        guard = Guard(read_state, raise_=raise_)
        return guard if func is None else guard(func)

    @contextmanager
    def window(
        self,
        mode: str = "full",
        retry: int | None = None,
        message: str | None = None,
        ends_at: datetime | None = None,
        *,
        off_on_failure: bool = False,
        app: Flask | None = None,
    ) -> Iterator[State]:
        """Maintenance around a block of a deploy script::

            with m.window(mode="readonly", app=app):
                migrate()

        Switches on when entering; off when the block succeeds; when it raises, stays on (the
        site stays safe while someone looks) unless ``off_on_failure``. If maintenance was
        already on, it is left as it was.
        """
        if self.is_active(app=app):
            yield self.status(app=app)
            return
        state = self.enable(mode=mode, retry=retry, message=message, ends_at=ends_at, app=app)
        try:
            yield state
        except BaseException:
            if off_on_failure:
                self.disable(app=app)
            raise
        self.disable(app=app)

    @contextmanager
    def isolated(self, backend: Backend, *, app: Flask | None = None) -> Iterator[None]:
        """Keep the state in ``backend`` for a block (tests), then go back to the configured one."""
        gate = self._gate(app)
        configured = gate.backend
        gate.use_backend(backend)
        try:
            yield
        finally:
            gate.use_backend(configured)

    # -- internals --------------------------------------------------------------------------

    def _update_plan(self, gate: Gate, change: Callable[[Plan], Plan]) -> None:
        """Read, change and store the plan (schedule and features) in the app's backend."""
        backend = gate.cache.plan_backend
        plan = change(Plan.parse(backend.read())[0])
        if plan.empty:
            backend.clear()
        else:
            backend.write(plan.to_json())
        gate.cache.clear()

    def _only_app(self) -> Flask | None:
        """``current_app`` when there is one, else the single app this instance serves."""
        if current_app or len(self._gates) != 1:
            return None
        return next(iter(self._gates.keys()))

    def _gate(self, app: Flask | None) -> Gate:
        if app is None:
            if not current_app:
                raise MaintenanceError(
                    "no app: call this inside an app context or pass app="
                )
            app = current_app._get_current_object()  # type: ignore[attr-defined]
        try:
            return self._gates[app]
        except KeyError:
            raise MaintenanceError(
                "this app is not set up for maintenance: call Maintenance(app) or init_app(app)"
            ) from None

    def _hook_for(self, app: Flask, gate: Gate) -> Callable[[], Response | None]:
        def add_banner(response: Response) -> Response:
            state = gate.cache.get()
            if state.banner is not None:
                response.headers.setdefault("X-Maintenance-Banner", banner_header(state))
            return response

        def check_maintenance() -> Response | None:
            state = gate.cache.get()
            if state.idle:
                return None
            if state.banner is not None:
                # Per request, only while there is a banner: an after_request hook would
                # cost every request when off.
                after_this_request(add_banner)
            if not state.blocking and not state.features:
                return None
            path = request.path
            if state.blocking and not gate.passes_anyway(state, path, request.method):
                if self._bypassed(app, gate, state):
                    return None
                return self._refusal(app, gate, state, path, None)
            # A switched-off feature stays off even for the reads readonly mode lets through.
            feature = self._switched_off_feature(app, state) if state.features else None
            if feature is None or path in gate.open_paths or self._bypassed(app, gate, state):
                return None
            return self._refusal(app, gate, state, path, feature)

        return check_maintenance

    def _switched_off_feature(self, app: Flask, state: State) -> Feature | None:
        """The first switched-off feature this request belongs to (view, blueprints).

        A blueprint is a feature by its registered name (``account.billing`` when nested) and
        by its own name (``billing``), plus the names given with ``m.feature(blueprint=bp)``.
        """
        view = app.view_functions.get(request.endpoint or "")
        names = set(features_of(view))
        for registered in request.blueprints:
            names.add(registered)
            blueprint = app.blueprints.get(registered)
            if blueprint is not None:
                names.add(blueprint.name)
                names.update(self._blueprint_features.get(blueprint) or ())
        for name in sorted(names):
            if name in state.features:
                return state.features[name]
        return None

    def _bypassed(self, app: Flask, gate: Gate, state: State) -> bool:
        if gate.allowlist.allows(request.remote_addr):
            return True
        if gate.cookie.is_valid(request.cookies.get(gate.cookie.name), state, app.secret_key):
            return True
        for rule in self._bypass_rules:
            try:
                if rule.check():
                    return True
            except Exception:  # a broken rule must not turn the 503 into a 500
                gate.warn_once(f"maintenance bypass rule {rule.check!r} failed; counting it as False")
        return False

    def _refusal(
        self, app: Flask, gate: Gate, state: State, path: str, feature: Feature | None
    ) -> Response:
        reason = state.mode if feature is None else f"feature:{feature.name}"
        reason = "maintenance" if reason == "full" else reason
        logger.debug("refused %s %s (%s)", request.method, path, reason)
        request_blocked.send(app, state=state, reason=reason)
        as_json = gate.wants_json(path, request.headers.get("Accept"))
        answer = gate.answer(state, as_json, feature)
        response = Response(answer.body, status=answer.status, headers=list(answer.headers))
        template = gate.settings.template
        if template and not as_json:
            try:
                response.set_data(
                    render_template(
                        template,
                        maintenance=state,
                        feature=feature,
                        retry_after=state.retry_after(),
                        readonly=state.mode == "readonly",
                    )
                )
            except Exception:  # a broken custom page falls back to the built-in one
                gate.warn_once(f"maintenance template {template!r} failed; using the built-in page")
        return response

    def _add_routes(self, app: Flask, gate: Gate) -> None:
        status_path = gate.settings.status_path

        cors = gate.settings.status_cors

        def maintenance_status() -> Response:
            response = jsonify(public_status(gate.cache.get(), utcnow()))
            response.headers["Cache-Control"] = "no-store"
            origin = request.headers.get("Origin")
            if "*" in cors:
                response.headers["Access-Control-Allow-Origin"] = "*"
            elif origin in cors:
                response.headers["Access-Control-Allow-Origin"] = origin
                response.vary.add("Origin")
            return response

        def maintenance_bypass(token: str) -> WerkzeugResponse:
            state = gate.cache.get()
            if not token_matches(token, state):
                refused = jsonify(error="invalid or expired bypass link")
                refused.status_code = 403
                refused.headers["Cache-Control"] = "no-store"
                return refused
            response = redirect(safe_next(request.args.get("next")), code=303)
            response.headers["Cache-Control"] = "no-store"
            response.set_cookie(
                gate.cookie.name,
                gate.cookie.value_for(state, app.secret_key),
                max_age=gate.settings.bypass_max_age,
                httponly=True,
                samesite="Lax",
                secure=request.is_secure,
            )
            logger.info("maintenance bypass cookie issued to %s", request.remote_addr)
            return response

        app.add_url_rule(status_path, "maintenance_status", maintenance_status, methods=["GET"])
        app.add_url_rule(
            f"{status_path}/bypass/<path:token>", "maintenance_bypass", maintenance_bypass, methods=["GET"]
        )


def _check_mode(mode: str) -> str:
    if mode not in MODES:
        raise ConfigurationError(f"unknown mode {mode!r}; choose from {', '.join(MODES)}")
    return mode


def _check_retry(retry: int | None) -> int | None:
    if retry is None:
        return None
    if isinstance(retry, bool) or not isinstance(retry, int) or not 0 <= retry <= MAX_RETRY:
        raise ConfigurationError(f"retry must be a whole number of seconds from 0 to {MAX_RETRY}, not {retry!r}")
    return retry


def _check_message(message: str | None) -> str | None:
    if message is None or message == "":
        return None
    if not isinstance(message, str):
        raise ConfigurationError(f"message must be text, not {type(message).__name__}")
    if len(message) > MAX_MESSAGE_LENGTH:
        raise ConfigurationError(f"message is too long ({len(message)} characters; at most {MAX_MESSAGE_LENGTH})")
    return encodable(message)


def _check_ends_at(ends_at: datetime | None) -> datetime | None:
    if ends_at is None:
        return None
    if _check_aware(ends_at, "ends_at") > utcnow() + MAX_DURATION:
        raise ConfigurationError(f"ends_at {ends_at.isoformat()} is more than 366 days away")
    if ends_at <= utcnow():
        raise ConfigurationError(f"ends_at {ends_at.isoformat()} is in the past")
    return ends_at.replace(microsecond=0)


def _user() -> str | None:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for this uid, e.g. in some containers
        return None


def _signal_changes(app: Flask) -> Callable[[State, State], None]:
    """Send ``maintenance_enabled``/``_disabled`` when this process sees the state change."""
    app_ref = weakref.ref(app)  # the gate that holds this lives in a dict keyed by the app

    def send(previous: State, current: State) -> None:
        sender = app_ref()
        if sender is None:
            return
        if current.active:
            maintenance_enabled.send(sender, state=current)
        else:
            maintenance_disabled.send(sender, state=current)

    return send


def _check_feature(name: str) -> str:
    try:
        return check_feature_name(name)
    except ValueError as error:
        raise ConfigurationError(str(error)) from None


def _check_aware(moment: datetime, name: str) -> datetime:
    if not isinstance(moment, datetime) or moment.tzinfo is None or moment.utcoffset() is None:
        raise ConfigurationError(f"{name} must be a timezone-aware datetime")
    return moment
