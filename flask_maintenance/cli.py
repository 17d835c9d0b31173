"""The ``flask maintenance`` command group, and the gate on the app's other commands."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit
from weakref import WeakKeyDictionary

import click
from flask import Flask, appcontext_pushed, current_app
from flask.cli import AppGroup, FlaskGroup, ScriptInfo

from . import drain, rules, switch, times
from .backends import FileBackend
from .bypass import new_token
from .errors import BackendError, ConfigurationError, MaintenanceError
from .guard import EX_TEMPFAIL, FORCE_ENV, describe, forced
from .lazycli import HELP
from .model import Plan, State, features_of
from .times import format_instant

#: Commands that run whatever the state: this group, and Flask's own.
ALWAYS_EXEMPT = frozenset({"maintenance", "run", "shell", "routes"})
# In a command's ``ctx.meta`` once the gate has let it run: later app contexts are its own work.
_CHECKED = "flask_maintenance.checked"


class MaintenanceCommandError(click.ClickException):
    """An operator error: one line on stderr, no traceback, exit status 1."""


class Interrupted(MaintenanceCommandError):
    """Ctrl-C while waiting: the state stays as written; exit status 130, as a shell reports
    SIGINT, so that a script tells it from a wait that timed out (1)."""

    exit_code = 130


class BadInput(MaintenanceCommandError):
    """Invalid options: nothing was changed; exit status 2, like Click's usage errors."""

    exit_code = 2


class ConfigurationCommandError(ConfigurationError, click.ClickException):
    """A bad ``MAINTENANCE_*`` value met while the ``flask`` command loads the app: one line that
    names the key, and how to switch maintenance anyway, instead of the import's traceback."""

    def __init__(self, error: ConfigurationError, config: Mapping[str, Any]) -> None:
        lock_file = config.get("MAINTENANCE_LOCK_FILE")
        fallback = ""
        if (
            config.get("MAINTENANCE_BACKEND") == "file"
            and isinstance(lock_file, str)
            and os.path.isabs(lock_file)
        ):
            fallback = f"; meanwhile `touch {lock_file}` switches maintenance on, and removing it off"
        click.ClickException.__init__(self, f"{error}. The app cannot load until it is fixed{fallback}.")


class CommandRefused(click.ClickException):
    """A command refused during maintenance: one line on stderr, exit status 75 (EX_TEMPFAIL)."""

    exit_code = EX_TEMPFAIL


class Checked(click.ParamType):  # type: ignore[type-arg]  # generic only in newer Click
    """A parameter checked by a rule of :mod:`flask_maintenance.rules`.

    The same rules check the Python API and the config, so a limit is written once. A bad value
    is one line naming the option (Click's own usage errors print the usage too).
    """

    def __init__(self, rule: Callable[[Any, str], Any], name: str) -> None:
        self.rule = rule
        self.name = name

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if not isinstance(value, str):
            return value  # a default, already converted
        label = param.opts[0] if param is not None and param.opts else self.name
        try:
            return self.rule(value, label)
        except ConfigurationError as error:
            raise BadInput(str(error)) from None


def _root() -> str:
    """Where the app is mounted on its site (``APPLICATION_ROOT``), without a trailing slash."""
    return str(current_app.config.get("APPLICATION_ROOT") or "/").rstrip("/")


def _base_url(value: str, label: str) -> str:
    """An http(s) URL or a path where the app is mounted, for the bypass link."""
    parts = urlsplit(value)
    if parts.scheme in ("http", "https") and parts.netloc and not (parts.query or parts.fragment):
        return value
    if (
        not parts.scheme
        and not parts.netloc
        and value.startswith("/")
        and not (parts.query or parts.fragment)
    ):
        return value
    raise ConfigurationError(
        f"{label} must be the site's address, such as https://example.com/shop, or a path such as /shop, "
        f"not {value!r}"
    )


MODE = Checked(rules.mode, "mode")
SECONDS = Checked(rules.seconds, "seconds")
MESSAGE = Checked(lambda value, label: rules.message(value, label) or "", "message")
FUTURE_INSTANT = Checked(rules.future_instant, "time")
DURATION = Checked(rules.duration, "duration")
FEATURE = Checked(rules.feature_name, "feature")
TRANSLATION = Checked(rules.translation, "translation")
BASE_URL = Checked(_base_url, "base URL")

maintenance_group = AppGroup("maintenance", help=HELP)


def _mode_option(help: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return click.option("--mode", type=MODE, default="full", metavar="|".join(rules.MODES), help=help)


def _wait_option(help: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--wait [SECONDS]``: a number of seconds, or the default when given alone."""
    return click.option(
        "--wait",
        "wait_seconds",
        type=SECONDS,
        is_flag=False,
        flag_value=int(drain.DEFAULT_WAIT),
        metavar="[SECONDS]",
        help=help,
    )


def _extension() -> Any:
    return current_app.extensions["maintenance"]


def _operator_error(error: MaintenanceError) -> click.ClickException:
    """Our errors as one line: bad input exits 2, anything else (the backend) 1."""
    error_class = BadInput if isinstance(error, ConfigurationError) else MaintenanceCommandError
    return error_class(str(error))


def _end(
    until: datetime | None, duration: timedelta | None, start: datetime | None = None
) -> datetime | None:
    try:
        return switch.end_of(until, duration, start)
    except ConfigurationError as error:
        raise BadInput(str(error)) from None


def _backend_description() -> str:
    return str(_extension().backend().describe())


@maintenance_group.command("on")
@click.option(
    "--mode",
    type=MODE,
    metavar="|".join(rules.MODES),
    help="What to refuse (default full; while on: unchanged).",
)
@click.option(
    "--retry",
    type=SECONDS,
    metavar="SECONDS",
    help="Retry-After: seconds or 90s, 5m, 1h (default: MAINTENANCE_RETRY_AFTER).",
)
@click.option("--message", type=MESSAGE, help="Shown on the page, in the JSON body and in the banner.")
@click.option(
    "--translation",
    "translations",
    type=TRANSLATION,
    multiple=True,
    metavar="LANG=TEXT",
    help="The message in another language, e.g. de='Wartung bis 3 Uhr' (repeatable; replaces the "
    "earlier ones; a new --message without any drops them).",
)
@click.option(
    "--until", type=FUTURE_INSTANT, metavar="ISO8601", help="Expected end, e.g. 2026-11-21T23:00:00Z."
)
@click.option("--for", "duration", type=DURATION, metavar="DURATION", help="Expected length, e.g. 30m or 2h.")
@click.option("--secret", is_flag=True, help="Generate a bypass link for admins.")
@click.option(
    "--feature", type=FEATURE, metavar="NAME", help="Switch off just this feature (a blueprint's name, say)."
)
@click.option("--force", is_flag=True, help="With --feature: a name the app does not know (yet).")
@_wait_option(
    "Return once every worker enforces the new state and, for readonly and full, the writes "
    "that started before are done (default 30 s; exit 1 after that)."
)
@click.option(
    "--base-url",
    type=BASE_URL,
    metavar="URL",
    help="Where the site is, for the bypass link (default: SERVER_NAME and APPLICATION_ROOT).",
)
def maintenance_on(
    mode: str | None,
    retry: int | None,
    message: str | None,
    translations: tuple[tuple[str, str], ...],
    until: datetime | None,
    duration: timedelta | None,
    secret: bool,
    feature: str | None,
    force: bool,
    wait_seconds: int | None,
    base_url: str | None,
) -> None:
    """Switch maintenance on; while on, change only what the options name.

    --secret prints a new bypass link and revokes earlier links and cookies. --wait returns only
    when every worker of every server has switched, and no write from before is running.
    """
    ends_at = _end(until, duration)
    if feature is not None and (mode is not None or retry is not None or ends_at or secret or translations):
        raise BadInput("--feature takes only --message (the other options apply to the whole site)")
    extension = _extension()
    token = new_token() if secret else None
    try:
        if feature is not None:
            _check_known_feature(feature, force)
        before, plan = _stored()
        state = extension.enable(
            mode=mode,
            retry=retry,
            message=message,
            ends_at=ends_at,
            secret=token,
            feature=feature,
            translations=translations or None,
        )
    except MaintenanceError as error:
        raise _operator_error(error) from None
    if feature is not None:
        was_off = feature in plan.features
        click.echo(f"Feature {feature} {'was already OFF' if was_off else 'is OFF (its requests get 503)'}")
        _describe(state)
    else:
        switch.switch_on(before, state, _backend_description(), click.echo)
    if token is not None:
        click.echo(f"  bypass link: {_bypass_url(token, base_url)}")
        if not (base_url or current_app.config.get("SERVER_NAME")):
            click.echo("  (a path: append it to your site's address, or give --base-url)")
        click.echo("  (shown once; anyone with it can use the site until the next --secret or `off`)")
    if wait_seconds is not None:
        _wait_or_fail(wait_seconds, state, f"maintenance is ON (mode {state.mode}) all the same")


def _stored() -> tuple[State, Plan]:
    """The lock and the plan as stored now, read without a word (the change will report)."""
    return switch.stored(_extension().backend(), _extension().settings().retry_after)


def _check_known_feature(name: str, force: bool) -> None:
    known = _extension().known_features()
    if force or name in known:
        return
    import difflib  # CLI-only: a web worker never imports it

    close = difflib.get_close_matches(name, sorted(known), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else f"; known: {', '.join(sorted(known)) or 'none'}"
    raise BadInput(f"this app has no feature {name!r}{hint} (--force switches it off anyway)")


@maintenance_group.command("off")
@click.option("--feature", type=FEATURE, metavar="NAME", help="Switch just this feature back on.")
@_wait_option("Return once every worker serves normally again (default 30 s; exit 1 after that).")
def maintenance_off(feature: str | None, wait_seconds: int | None) -> None:
    """Switch maintenance off (saying so if it was already off)."""
    try:
        changed = _extension().disable(feature=feature)
    except MaintenanceError as error:
        raise _operator_error(error) from None
    state = _extension().status()
    if feature is not None:
        click.echo(
            f"Feature {feature} is ON again" if changed else f"Feature {feature} was not OFF; nothing changed"
        )
        _describe(state)
    else:
        switch.switch_off(changed, state, _backend_description(), click.echo)
    if wait_seconds is not None:
        _wait_or_fail(wait_seconds, state, "maintenance is OFF all the same")


def _wait_for_workers(
    seconds: int, state: State, afterwards: str, say: Callable[[str], None] = click.echo
) -> str | None:
    """``--wait``: what remains after ``seconds``, or ``None`` once every worker is done.

    :param afterwards: what stands once the wait is given up (said after Ctrl-C too).
    """
    try:
        return drain.wait_in_terminal(_extension().backend(), seconds, state, say)
    except MaintenanceError as error:
        raise _operator_error(error) from None
    except KeyboardInterrupt:
        raise Interrupted(f"interrupted while waiting for the workers; {afterwards}") from None


def _wait_or_fail(seconds: int, state: State, afterwards: str) -> None:
    problem = _wait_for_workers(seconds, state, afterwards)
    if problem is not None:
        raise MaintenanceCommandError(f"{problem}; {afterwards}")


@maintenance_group.command("schedule")
@click.option(
    "--at",
    "starts",
    required=True,
    type=FUTURE_INSTANT,
    metavar="ISO8601",
    help="Start, e.g. 2026-11-22T02:00:00Z.",
)
@click.option("--for", "duration", type=DURATION, metavar="DURATION", help="Length, e.g. 30m or 2h.")
@click.option("--until", type=FUTURE_INSTANT, metavar="ISO8601", help="End.")
@_mode_option("Mode from the start (default full).")
@click.option("--message", type=MESSAGE, help="Shown in the announcement banner and during the window.")
@click.option("--auto-off", is_flag=True, help="End by itself at the end time.")
def maintenance_schedule(
    starts: datetime,
    duration: timedelta | None,
    until: datetime | None,
    mode: str,
    message: str | None,
    auto_off: bool,
) -> None:
    """Plan a window: announced in the banner until it starts, then in MODE with no one acting."""
    ends_at = _end(until, duration, start=starts)
    if auto_off and ends_at is None:
        raise BadInput("--auto-off needs --for or --until")
    try:
        replaced = _stored()[1].schedule
        state = _extension().schedule(starts, ends_at, mode=mode, message=message, auto_off=auto_off)
    except MaintenanceError as error:
        raise _operator_error(error) from None
    if replaced is not None:
        click.echo(f"Replaced the window planned at {format_instant(replaced.starts_at)}")
    _describe(state)


@maintenance_group.command("cancel")
def maintenance_cancel() -> None:
    """Drop the scheduled window (the main switch is left as it is)."""
    try:
        cancelled = _extension().cancel()
    except MaintenanceError as error:
        raise _operator_error(error) from None
    if cancelled is None:
        click.echo("Nothing was scheduled; nothing changed")
    else:
        click.echo(f"Cancelled the window planned at {format_instant(cancelled.starts_at)}")
    _describe(_extension().status())


@maintenance_group.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print the state as JSON.")
def maintenance_status(as_json: bool) -> None:
    """Show whether maintenance is on, since when, why and until when (exit 0 either way;
    1 when the backend cannot be read)."""
    extension = _extension()
    try:
        state = extension.status(fresh=True)
        now = drain.progress(extension.backend(), drain=state.blocking)
    except MaintenanceError as error:
        raise MaintenanceCommandError(f"cannot tell: {error}") from None
    if as_json:
        workers = {"version": now.version, "workers": [worker.to_dict() for worker in now.workers]}
        click.echo(switch.status_json(state, _backend_description(), workers))
    else:
        _describe(state)
        for line in now.describe():
            click.echo(line)


@maintenance_group.command("report-writes")
@click.option("--json", "as_json", is_flag=True, help="Print the writes as JSON.")
@click.option("--clear", is_flag=True, help="Forget them afterwards, to start a new dry run.")
def maintenance_report_writes(as_json: bool, clear: bool) -> None:
    """Print the writes the dry run let through during maintenance (MAINTENANCE_PROTECT_DATABASE
    = "log"): each statement kind, table, view or command and line of code, once, as seen by
    every process that shares this state."""
    from . import writelog

    backend = _extension().backend()
    try:
        writes = writelog.stored(backend)
        if clear:
            writelog.forget(backend)
    except MaintenanceError as error:
        raise MaintenanceCommandError(f"cannot read the writes: {error}") from None
    if as_json:
        click.echo(json.dumps({"writes": [asdict(write) for write in writes]}, indent=2))
        return
    if _extension().settings().protect_database != "log":
        click.echo(
            'Protection is not in dry run here (MAINTENANCE_PROTECT_DATABASE is not "log"): '
            "the processes that run it add to this report."
        )
    if writes:
        click.echo(f"{len(writes)} write{'s' if len(writes) > 1 else ''} seen during maintenance:")
    else:
        click.echo("No writes seen during maintenance.")
    for write in writes:
        click.echo(
            f"  {write.kind} on {write.table} from {write.source} at {writelog.relative(write.site)} "
            f"(mode {write.mode}, first seen {write.seen_at})"
        )
    if clear:
        click.echo("Cleared: the next report starts empty.")


def _describe(state: State) -> None:
    switch.describe(state, _backend_description(), click.echo)


def _bypass_url(token: str, base_url: str | None) -> str:
    """The link, under ``--base-url``, else ``SERVER_NAME`` and ``APPLICATION_ROOT``."""
    path = f"{_extension().settings().status_path}/bypass/{token}"
    if base_url:
        return base_url.rstrip("/") + path
    root = _root()
    server = current_app.config.get("SERVER_NAME")
    if server:
        return f"{current_app.config.get('PREFERRED_URL_SCHEME', 'http')}://{server}{root}{path}"
    return root + path


class _CommandFailed(Exception):
    """COMMAND exited with a failure: the window stays (unless --off-on-failure)."""


@maintenance_group.command(
    "run", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False}
)
@_mode_option("What to refuse at least (default full).")
@click.option("--retry", type=SECONDS, metavar="SECONDS", help="Retry-After: seconds or 90s, 5m, 1h.")
@click.option("--message", type=MESSAGE, help="Shown on the page, in the JSON body and in the banner.")
@click.option(
    "--keep-on-failure/--off-on-failure",
    default=True,
    help="When COMMAND fails, leave maintenance on (default) or give back the state there was.",
)
@click.option(
    "--secret",
    is_flag=True,
    help="Give COMMAND a bypass secret for this window: MAINTENANCE_BYPASS_TOKEN, to send in the "
    "header MAINTENANCE_BYPASS_HEADER names.",
)
@click.option(
    "--wait",
    "wait_seconds",
    type=SECONDS,
    default=int(drain.DEFAULT_WAIT),
    show_default=True,
    metavar="SECONDS",
    help="Before COMMAND, wait this long at most for every worker to switch and the writes from "
    "before to finish; COMMAND does not start if they do not.",
)
@click.option("--no-wait", is_flag=True, help="Start COMMAND at once, without waiting for the workers.")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def maintenance_run(
    mode: str,
    retry: int | None,
    message: str | None,
    keep_on_failure: bool,
    secret: bool,
    wait_seconds: int,
    no_wait: bool,
    command: tuple[str, ...],
) -> None:
    """Hold maintenance in at least MODE while COMMAND runs; exit with its status.

    A weaker mode already on (banner < readonly < full) is raised to MODE for the duration.
    First it waits until every worker enforces it and no write from before is running (see
    --wait). When COMMAND succeeds, or does not start at all, the state there was before comes back.

    \b
    Example: flask maintenance run --mode readonly -- flask db upgrade
    """

    def report(line: str) -> None:
        click.echo(line, err=True)

    status = 0
    interrupted: Interrupted | None = None
    token = new_token() if secret else None
    # Only the command gets the secret: it is never printed, logged or stored (only its hash).
    bypass = (
        {}
        if token is None
        else {
            "MAINTENANCE_BYPASS_TOKEN": token,
            "MAINTENANCE_BYPASS_HEADER": _extension().settings().bypass_header,
        }
    )
    try:
        with _extension().window(
            mode=mode,
            retry=retry,
            message=message,
            off_on_failure=not keep_on_failure,
            report=report,
            secret=token,
        ) as state:
            not_started = f"{command[0]} did not start"
            try:
                problem = None if no_wait else _wait_for_workers(wait_seconds, state, not_started, report)
            except Interrupted as error:  # nothing started: the state comes back, as after a timeout
                interrupted = error
                status, started = error.exit_code, False
            else:
                if problem is None:
                    status, started = _run_passing_signals(list(command), bypass)
                else:
                    report(f"Error: {problem}; {not_started}.")
                    status, started = 1, False
            if started:
                report(f"Command exited with {status}.")
            if started and status != 0:  # one that never started changed nothing to guard
                raise _CommandFailed
    except _CommandFailed:
        pass
    except MaintenanceError as error:
        raise _operator_error(error) from None
    if interrupted is not None:
        raise interrupted
    raise SystemExit(status)


def _run_passing_signals(command: list[str], extra_env: Mapping[str, str]) -> tuple[int, bool]:
    """Run ``command`` (never itself refused); return its exit status, shell style, and whether
    it started at all (a command that cannot be found or executed gets 127 or 126, as in a shell).

    Ctrl-C reaches the command through the terminal's process group; SIGTERM sent to us is
    passed on. Either way we wait for the command so that the state is settled afterwards.
    """
    # CLI-only modules, imported here so that a web worker (which imports this module to
    # register the command group) never loads them.
    import signal
    import subprocess

    env = {**os.environ, **extra_env, FORCE_ENV: "1"}
    try:
        child = subprocess.Popen(command, env=env)
    except OSError as error:
        # A failure like any other, so that the caller still settles the state; shell statuses.
        click.echo(f"Error: cannot run {command[0]}: {error.strerror or error}", err=True)
        return (127 if isinstance(error, FileNotFoundError) else 126), False

    def pass_on(signum: int, frame: object) -> None:
        child.send_signal(signum)

    previous = {sig: signal.signal(sig, pass_on) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        returncode = child.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return (128 - returncode if returncode < 0 else returncode), True


def install_command_gate(app: Flask) -> None:
    """Refuse the app's commands while maintenance is on in a blocking mode.

    Commands of ``app.cli`` (blueprints', other extensions', groups' subcommands) are gated when
    Flask resolves them, so ``--help`` still works. Commands that installed packages register
    through the ``flask.commands`` entry point are resolved before ``app.cli``; they are gated
    when they push this app's context, before their body runs. Which app's state decides is
    looked up when the command runs: one command object may be registered on several apps.
    """

    def on_app_context(sender: Flask, **extra: Any) -> None:
        ctx = click.get_current_context(silent=True)
        if ctx is None or ctx.parent is None:  # outside a command, or Flask resolving one
            return
        # Once per command, and only under `flask` itself: a worker that a command starts
        # (Celery's and RQ's command lines are Click programs too) pushes an app context for
        # each task, and a task is not a command; workers pause instead (flask_maintenance.celery).
        if ctx.meta.get(_CHECKED) or not isinstance(ctx.find_root().command, FlaskGroup):
            return
        check_command(ctx, sender)
        ctx.meta[_CHECKED] = True

    _gate_group(app.cli)
    # Only when the `flask` command is loading the app: a receiver would cost every web
    # request's app context ~1.5 µs, and outside the command it has nothing to do. Another
    # Click program (a task queue's worker) that loads the app is not a `flask` command.
    running = click.get_current_context(silent=True)
    if running is not None and isinstance(running.find_root().command, FlaskGroup):
        # Held strongly by the signal; blinker drops it when the app is garbage collected.
        appcontext_pushed.connect(on_app_context, sender=app, weak=False)


def check_command(ctx: click.Context, app: Flask | None = None) -> None:
    """Raise :class:`CommandRefused` when maintenance stops the command ``ctx`` is running."""
    path = _command_path(ctx)
    if _always_runs(path):
        return
    app = app or _running_app(ctx)
    extension = None if app is None else app.extensions.get("maintenance")
    if extension is None:
        return  # an app without the extension: nothing to enforce
    gate = extension._gate(app)
    if _exempt(ctx, path, gate.settings.cli_exempt):
        return
    try:
        state = gate.cache.read_now()
    except BackendError as error:
        # Unknown state: running a command that may write during a migration is the worse mistake.
        raise CommandRefused(
            f"the maintenance state cannot be read ({error}): `{' '.join(path)}` did not run. "
            f"Set {FORCE_ENV}=1 to run it anyway."
        ) from None
    for name in sorted(features_of(ctx.command) | features_of(ctx.command.callback)):
        if name in state.features:
            raise CommandRefused(
                f"feature {name} is switched off for maintenance: `{' '.join(path)}` did not run. "
                f"Set {FORCE_ENV}=1 to run it anyway."
            )
    # `blocking` first: banner never stops commands, even when listed in the setting.
    if state.blocking and state.mode in gate.settings.cli_block_modes:
        raise CommandRefused(
            f"{describe(state)}: `{' '.join(path)}` did not run. Set {FORCE_ENV}=1 to run it anyway, "
            f"or add {path[0]!r} to MAINTENANCE_CLI_EXEMPT."
        )


def runs_whatever_the_state(ctx: click.Context, exempt_names: frozenset[str]) -> bool:
    """Whether the command ``ctx`` runs is never refused (so its work is maintenance work)."""
    path = _command_path(ctx)
    return _always_runs(path) or _exempt(ctx, path, exempt_names)


def _always_runs(path: tuple[str, ...]) -> bool:
    return not path or path[0] in ALWAYS_EXEMPT or forced()


def _running_app(ctx: click.Context) -> Flask | None:
    """The app the ``flask`` command loaded (or ``app.test_cli_runner()`` gave)."""
    info = ctx.find_object(ScriptInfo)
    if info is not None:
        return info.load_app()
    return current_app._get_current_object() if current_app else None  # type: ignore[attr-defined]


def _gate_group(group: click.Group) -> None:
    resolve = group.get_command

    def get_command(ctx: click.Context, name: str) -> click.Command | None:
        command = resolve(ctx, name)
        if command is not None and not getattr(command, "_maintenance_gated", False):
            _gate_command(command)
        return command

    group.get_command = get_command  # type: ignore[method-assign,assignment]


def _gate_command(command: click.Command) -> None:
    command._maintenance_gated = True  # type: ignore[attr-defined]
    if isinstance(command, click.Group):
        # A group's callback runs before its subcommand; by then Click knows which one, but has
        # not parsed the subcommand's options yet. `flask db upgrade --help` is left to the
        # subcommand (whose own gate still stops a real run), so that help works while on.
        callback = command.callback
        resolve = command.resolve_command
        asks_for_help: WeakKeyDictionary[click.Context, bool] = WeakKeyDictionary()

        def resolve_command(
            ctx: click.Context, args: list[str]
        ) -> tuple[str | None, click.Command | None, list[str]]:
            name, subcommand, rest = resolve(ctx, args)
            options = rest[: rest.index("--")] if "--" in rest else rest
            asks_for_help[ctx] = any(arg in ctx.help_option_names for arg in options)
            return name, subcommand, rest

        def gated_callback(*args: Any, **kwargs: Any) -> Any:
            ctx = click.get_current_context()
            if not asks_for_help.get(ctx, False):
                check_command(ctx)
            return callback(*args, **kwargs) if callback is not None else None

        command.resolve_command = resolve_command  # type: ignore[method-assign]
        command.callback = gated_callback
        _gate_group(command)
        return
    invoke = command.invoke

    def gated_invoke(ctx: click.Context) -> Any:
        check_command(ctx)
        ctx.meta[_CHECKED] = True
        return invoke(ctx)

    command.invoke = gated_invoke  # type: ignore[method-assign]


def _command_path(ctx: click.Context) -> tuple[str, ...]:
    """The command's names below the root (``("db", "upgrade")`` for ``flask db upgrade``)."""
    names = [ctx.invoked_subcommand] if isinstance(ctx.invoked_subcommand, str) else []
    while ctx.parent is not None:
        names.append(ctx.info_name or "")
        ctx = ctx.parent
    return tuple(reversed(names))


def _exempt(ctx: click.Context, path: tuple[str, ...], exempt_names: frozenset[str]) -> bool:
    command = ctx.command
    if getattr(command, "__maintenance_exempt__", False) or getattr(
        command.callback, "__maintenance_exempt__", False
    ):
        return True
    return any(" ".join(path[: i + 1]) in exempt_names for i in range(len(path)))


@maintenance_group.command("history")
@click.option(
    "--limit", type=click.IntRange(1, 10000), default=20, show_default=True, help="How many entries."
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def maintenance_history(limit: int, as_json: bool) -> None:
    """Show the last transitions, oldest first: when, what, who and from where."""
    from .history import Entry

    try:
        lines = _extension().backend().read_history(limit)
    except MaintenanceError as error:
        raise MaintenanceCommandError(str(error)) from None
    entries = [Entry.parse(line) for line in lines]
    for entry in entries:
        if entry is None:
            continue
        if as_json:
            click.echo(json.dumps(entry.to_dict()))
        else:
            # Printable only: whoever wrote the history file may have put terminal escapes in it.
            text = "".join(c if c.isprintable() else "?" for c in entry.describe())
            who = "".join(c if c.isprintable() else "?" for c in f"{entry.who} ({entry.origin})")
            click.echo(f"{format_instant(entry.at)}  {entry.event:<11}  {who}  {text}")
    skipped = entries.count(None)
    if skipped:
        click.echo(f"warning: {skipped} damaged history entries skipped", err=True)
    if not entries and not as_json:
        click.echo("No history yet")


# -- maintenance at the proxy ----------------------------------------------------------------


@maintenance_group.command("render-page")
@click.argument("path", type=click.Path(dir_okay=False))
def maintenance_render_page(path: str) -> None:
    """Write the maintenance page to PATH as a static HTML file, for the proxy to serve.

    It has the current message and retry when maintenance is on, else the defaults. Run it again
    after `flask maintenance on --message ...` to update the page.
    """
    from . import proxy

    # nginx refuses every mode while the lock file exists: the page waits for off.
    answer = proxy.static_answer(
        _extension().status(),
        _extension().settings(),
        as_json=False,
        root=_root(),
        now=times.utcnow(),
        every_mode=True,
    )
    body = answer.body
    target = os.path.abspath(path)
    try:
        FileBackend(target).write(body)  # atomic and 0644: nginx never serves half a page
    except MaintenanceError as error:
        reason = getattr(error.__cause__, "strerror", None) or error
        raise MaintenanceCommandError(f"cannot write the page {target}: {reason}") from None
    click.echo(f"Wrote the maintenance page to {target}")
    _warn_unsearchable(target, "read the page")


@maintenance_group.command("nginx-config")
@click.option(
    "--page", metavar="PATH", help="The page nginx serves (default: maintenance.html beside the lock file)."
)
@click.option(
    "--http",
    "http_level",
    is_flag=True,
    help="Print the geo block for MAINTENANCE_ALLOWED_IPS (http {} level).",
)
def maintenance_nginx_config(page: str | None, http_level: bool) -> None:
    """Print an nginx snippet to include inside the site's server {} block.

    While the lock file exists nginx answers 503 with the page at --page (see render-page), and
    it serves that page too when the app is down. With MAINTENANCE_ALLOWED_IPS set, also include
    the output of `--http` in the http {} block.
    """
    from . import proxy

    backend = _extension().backend()
    if not isinstance(backend, FileBackend):
        raise MaintenanceCommandError(
            f"nginx cannot see a state kept in {backend.describe()}: "
            "nginx-config needs MAINTENANCE_BACKEND = 'file' (a lock file nginx can test)"
        )
    settings = _extension().settings()
    if http_level:
        click.echo(proxy.http_snippet(settings.allowed_networks), nl=False)
        return
    lock_file = os.path.abspath(backend.path)
    page = os.path.abspath(page or os.path.join(os.path.dirname(lock_file), "maintenance.html"))
    try:
        snippet = proxy.server_snippet(
            lock_file=lock_file,
            page=page,
            retry_after=settings.retry_after,
            allowed_networks=settings.allowed_networks,
            open_paths=_proxy_open_paths(),
            render_command=f"flask maintenance render-page {page}",
        )
    except ConfigurationError as error:
        raise MaintenanceCommandError(str(error)) from None
    click.echo(snippet, nl=False)
    _warn_unsearchable(lock_file, "see the lock file")
    if not os.path.exists(page):
        click.echo(
            f"warning: {page} does not exist yet: run `flask maintenance render-page {page}`", err=True
        )
    else:
        _warn_unsearchable(page, "read the page")


def _address(any_host: bool) -> Checked:
    from .haproxy import address

    return Checked(lambda value, label: address(value, label, any_host=any_host), "HOST:PORT")


@maintenance_group.command("haproxy-config")
@click.option(
    "--bind", required=True, type=_address(True), metavar="ADDR:PORT", help="Where HAProxy listens."
)
@click.option(
    "--server",
    "servers",
    required=True,
    multiple=True,
    type=_address(False),
    metavar="HOST:PORT",
    help="An app server (repeat for each one).",
)
@click.option(
    "--page",
    metavar="PATH",
    help="Write the page here and the problem JSON beside it (PATH-problem), as HAProxy's "
    "errorfile reads them. Default: maintenance.http in the instance folder, not written.",
)
@click.option(
    "--interval",
    type=click.FloatRange(0.1, 60),
    default=1.0,
    show_default=True,
    metavar="SECONDS",
    help="Seconds between health checks: how long HAProxy takes to see a change.",
)
def maintenance_haproxy_config(
    bind: Any, servers: tuple[Any, ...], page: str | None, interval: float
) -> None:
    """Print a complete HAProxy (2.6+) configuration in front of the app servers.

    HAProxy checks each server on <status path>/ready: while maintenance is on (mode full, any
    backend) or every server is dead, it answers 503 itself with the page or problem JSON, and
    still lets through what the app lets through. With --page, also write those two files.
    """
    from . import haproxy, proxy

    settings = _extension().settings()
    root = _root()
    target = os.path.abspath(page or os.path.join(current_app.instance_path, "maintenance.http"))
    problem = haproxy.problem_path(target)
    try:
        text = haproxy.configuration(
            bind=bind,
            servers=servers,
            page=target,
            problem=problem,
            status_path=root + settings.status_path,
            api_prefixes=[root + prefix for prefix in settings.api_prefixes],
            open_paths=_proxy_open_paths(),
            allowed_networks=settings.allowed_networks,
            bypass_cookie=settings.bypass_cookie,
            bypass_header=settings.bypass_header,
            interval=interval,
            command=" ".join(
                [
                    f"flask maintenance haproxy-config --bind {bind}",
                    *(f"--server {server}" for server in servers),
                    f"--page {target}",
                ]
            ),
        )
        files = {}
        if page is not None:
            state, now = _extension().status(), times.utcnow()
            for path, as_json in ((target, False), (problem, True)):
                answer = proxy.static_answer(state, settings, as_json=as_json, root=root, now=now)
                files[path] = haproxy.http_file(answer)
    except ConfigurationError as error:
        raise MaintenanceCommandError(str(error)) from None
    for path, data in files.items():
        try:
            FileBackend(path).write(data)  # atomic and 0644: HAProxy never reads half a file
        except MaintenanceError as error:
            reason = getattr(error.__cause__, "strerror", None) or error
            raise MaintenanceCommandError(f"cannot write {path}: {reason}") from None
        click.echo(f"Wrote {path}", err=True)
    click.echo(text, nl=False)
    if page is None and not os.path.exists(target):
        click.echo(
            f"warning: {target} does not exist yet: run again with --page {target} to write the answers",
            err=True,
        )


@maintenance_group.command("edge-worker")
@click.option(
    "--out",
    metavar="PATH",
    default="worker.js",
    show_default=True,
    help="Where to write the Worker's module; - prints it.",
)
@click.option(
    "--interval",
    type=SECONDS,
    default=10,
    show_default=True,
    metavar="SECONDS",
    help="Without KV: how often each isolate reads the app's status path.",
)
def maintenance_edge_worker(out: str, interval: int) -> None:
    """Write a Cloudflare Worker that answers for the app at the edge.

    It forwards requests to the origin; while maintenance blocks it answers 503 itself (the page,
    or problem JSON), and when the origin is down it sends the page. It reads the state from the
    KV namespace bound as MAINTENANCE (see edge-state), else from the app's status path. The
    page has the current message and retry, as with render-page: generate it again after
    changing them or the app's MAINTENANCE_* config.
    """
    from . import edge

    extension = _extension()
    source = edge.worker_source(
        extension._gate(None), extension.status(), root=_root(), interval=interval, now=times.utcnow()
    )
    if out == "-":
        click.echo(source, nl=False)
        return
    target = os.path.abspath(out)
    try:
        FileBackend(target).write(source.encode())  # atomic: a deploy never uploads half a Worker
    except MaintenanceError as error:
        reason = getattr(error.__cause__, "strerror", None) or error
        raise MaintenanceCommandError(f"cannot write the Worker {target}: {reason}") from None
    click.echo(f"Wrote the edge Worker to {target}")


@maintenance_group.command("edge-state")
def maintenance_edge_state() -> None:
    """Print the state document for the edge Worker's KV namespace (key `state`).

    The lock's document, with `active` and the planned window (`scheduled`); put it into KV
    after every change, e.g. with `wrangler kv key put state --path FILE --binding MAINTENANCE`.
    """
    from . import edge

    gate = _extension()._gate(None)
    backend, plan_backend = gate.backend, gate.cache.plan_backend
    try:
        lock_raw, plan_raw = backend.read_many([backend, plan_backend])
    except MaintenanceError as error:
        raise MaintenanceCommandError(f"cannot tell: {error}") from None
    lock, lock_warning = State.parse(lock_raw, gate.settings.retry_after)
    plan, plan_warning = Plan.parse(plan_raw)
    for warning in (lock_warning, plan_warning):
        if warning is not None:
            click.echo(f"warning: {warning}", err=True)
    document = edge.edge_document(lock, plan, times.utcnow(), gate.settings.retry_after)
    click.echo(document.decode(), nl=False)


def _proxy_open_paths() -> list[str]:
    """What a proxy in front lets through to the app during maintenance: the allowed paths, the
    status path and (unless configured otherwise) ``/robots.txt``, under ``APPLICATION_ROOT``."""
    settings = _extension().settings()
    robots = ("/robots.txt",) if settings.serve_robots_txt else ()
    return [_root() + path for path in (*settings.allowed_paths, settings.status_path, *robots)]


def _warn_unsearchable(path: str, purpose: str) -> None:
    from .proxy import unsearchable_folders

    folders = unsearchable_folders(path)
    if folders:
        click.echo(
            f"warning: other users cannot enter {', '.join(folders)} (no o+x): "
            f"nginx's worker may not be able to {purpose} {path}",
            err=True,
        )
