"""The console scripts, which run without Flask or the app: ``flask-maintenance-guard`` (wraps
cron lines) and ``flask-maintenance`` (the switch for a drowning server).

Both must start in a few milliseconds when the machine is starved of CPU, which is when they are
needed: they use argparse, not Click, and import nothing that imports Flask (``--app`` aside,
which loads the app on purpose).
"""

from __future__ import annotations

import argparse
import os
import sys

from . import rules, switch
from .backends import Backend, FileBackend
from .errors import BackendError, ConfigurationError, MaintenanceError
from .guard import (
    BACKEND_ENV,
    DEFAULT_RETRY,
    EX_TEMPFAIL,
    FORCE_ENV,
    LOCK_FILE_ENV,
    Guard,
    backend_without_app,
    describe,
    skip_during_maintenance,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import Any, NoReturn

    from .writes import Writer


class _Parser(argparse.ArgumentParser):
    def __init__(self, **options: Any) -> None:
        options.setdefault("formatter_class", _formatter)  # subparsers are made with it too
        super().__init__(**options)

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def _formatter(prog: str) -> argparse.HelpFormatter:
    """argparse's formatter, told the width argparse finds with :mod:`shutil`: argparse makes
    one for every option it adds, and importing shutil would cost more than all the parsing."""
    return argparse.HelpFormatter(prog, width=_columns() - 2)


def _columns() -> int:
    """The terminal's width as :func:`shutil.get_terminal_size` finds it: ``$COLUMNS``, else
    the terminal on standard output, else 80."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns or 80


def _guard_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="flask-maintenance-guard",
        description="Run COMMAND unless maintenance is on (for cron lines).",
        usage="%(prog)s [--lock-file PATH | --backend URL | --app IMPORT] [--skip-exit-code N] [--quiet]"
        " -- COMMAND [ARGS...]",
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--lock-file", metavar="PATH", help=f"the lock file (default: ${LOCK_FILE_ENV})")
    source.add_argument("--backend", metavar="URL", help=f"a redis:// URL (default: ${BACKEND_ENV})")
    source.add_argument("--app", metavar="IMPORT", help="import the app like `flask --app` does")
    parser.add_argument(
        "--skip-exit-code",
        metavar="N",
        type=_exit_code,
        default=EX_TEMPFAIL,
        help=f"exit status when skipped (default {EX_TEMPFAIL}; 0 for cron that mails on failure)",
    )
    parser.add_argument("--quiet", action="store_true", help="print nothing when skipping")
    return parser


def _warn_about_a_missing_folder(guard: Guard, prog: str) -> None:
    """Every run, on stderr: a lock file in a folder that does not exist can never switch on."""
    backend = guard.backend
    if isinstance(backend, FileBackend):
        folder = os.path.dirname(backend.path)
        if not os.path.isdir(folder):
            print(
                f"{prog}: warning: the lock file's folder {folder} does not exist, so maintenance can "
                "never be on there: check --lock-file (or MAINTENANCE_LOCK_FILE)",
                file=sys.stderr,
            )


def _exit_code(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or int(text) > 255:  # isdigit alone takes "²"
        raise argparse.ArgumentTypeError(f"must be a number from 0 to 255, not {text!r}")
    return int(text)


def _shown(command: Sequence[str]) -> str:
    """The skipped command as a shell line, for its message."""
    import shlex  # only a message needs it: `--quiet`, cron's usual way, starts without it

    return shlex.join(command)


def _app_guard(import_path: str) -> Guard:
    from flask.cli import ScriptInfo

    try:
        app = ScriptInfo(app_import_path=import_path).load_app()
    except Exception as error:  # whatever the broken app raises, the operator gets one line
        message = " ".join(str(error).split()) or type(error).__name__
        raise ConfigurationError(f"cannot load the app {import_path!r}: {message}") from None
    return skip_during_maintenance(app=app)


#: Exit statuses as ``flask maintenance`` gives them (Click's): bad input 2, a failed backend or
#: Ctrl-C 1.
EX_BAD_INPUT = 2
EX_FAILED = 1
#: The guard's Ctrl-C before its command starts: the shell's status for SIGINT, since the
#: command's own 1 must not be mistaken for it.
EX_INTERRUPTED = 130


def _aborted(status: int) -> NoReturn:
    """Ctrl-C: the line Click prints for it (``flask maintenance`` prints the same), no traceback."""
    print("\nAborted!", file=sys.stderr)
    sys.exit(status)


def guard(argv: Sequence[str] | None = None) -> NoReturn:
    """Entry point of ``flask-maintenance-guard``."""
    try:
        _guard(argv)
    except KeyboardInterrupt:  # before the command started: it did not run
        _aborted(EX_INTERRUPTED)


def _guard(argv: Sequence[str] | None) -> NoReturn:
    args = list(sys.argv[1:] if argv is None else argv)
    parser = _guard_parser()
    if "--" in args:
        split = args.index("--")
        options, command = parser.parse_args(args[:split]), args[split + 1 :]
    else:
        options, command = parser.parse_known_args(args)
        if command and command[0].startswith("-"):
            parser.error(f"unknown option {command[0]} (put the command after --)")
    if not command:
        parser.error("no COMMAND given (put it after --)")
    try:
        if options.app:
            guard = _app_guard(options.app)
        else:
            guard = skip_during_maintenance(lock_file=options.lock_file, backend=options.backend)
            _warn_about_a_missing_folder(guard, parser.prog)
        state = guard.blocking_state()
    except ConfigurationError as error:
        parser.error(str(error))
    except BackendError as error:
        # Unknown state: running a job that may write during a migration is the worse mistake.
        print(f"{parser.prog}: {error}; skipped: {_shown(command)}", file=sys.stderr)
        sys.exit(options.skip_exit_code)
    if state is not None:
        if not options.quiet:
            print(
                f"{parser.prog}: {describe(state)}; skipped: {_shown(command)} "
                f"(set {FORCE_ENV}=1 to run it anyway)",
                file=sys.stderr,
            )
        sys.exit(options.skip_exit_code)
    try:
        os.execvp(command[0], command)
    except OSError as error:
        print(f"{parser.prog}: cannot run {command[0]}: {error.strerror or error}", file=sys.stderr)
        sys.exit(127 if isinstance(error, FileNotFoundError) else 126)


# -- flask-maintenance: the switch -----------------------------------------------------------


def _switch_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="flask-maintenance",
        description=(
            "Switch maintenance on and off without loading Flask or the app: the command for a "
            "server too loaded to start `flask maintenance`. It writes exactly what "
            "`flask maintenance on` writes."
        ),
    )
    commands = parser.add_subparsers(dest="command", metavar="on|off|status", required=True)
    on = commands.add_parser("on", help="Switch maintenance on; while on, change only what the options name.")
    on.add_argument(
        "--mode", metavar="|".join(rules.MODES), help="What to refuse (default full; while on: unchanged)."
    )
    on.add_argument(
        "--retry",
        metavar="SECONDS",
        help="Retry-After: seconds or 90s, 5m, 1h (default: the app's MAINTENANCE_RETRY_AFTER).",
    )
    on.add_argument("--message", help="Shown on the page, in the JSON body and in the banner.")
    on.add_argument("--until", metavar="ISO8601", help="Expected end, e.g. 2026-11-21T23:00:00Z.")
    on.add_argument("--for", dest="duration", metavar="DURATION", help="Expected length, e.g. 30m or 2h.")
    commands.add_parser("off", help="Switch maintenance off (saying so if it was already off).")
    status = commands.add_parser("status", help="Show whether maintenance is on (exit 0 either way).")
    status.add_argument("--json", dest="as_json", action="store_true", help="Print the state as JSON.")
    for command in (on, commands.choices["off"], status):
        source = command.add_mutually_exclusive_group()
        source.add_argument("--lock-file", metavar="PATH", help=f"the lock file (default: ${LOCK_FILE_ENV})")
        source.add_argument("--backend", metavar="URL", help=f"a redis:// URL (default: ${BACKEND_ENV})")
    return parser


def _say(line: str) -> None:
    print(line, flush=True)


def _checked(rule: Callable[[str, str], object], value: str | None, label: str) -> object:
    """An option checked by the rule ``flask maintenance`` checks it with, under the same label."""
    return None if value is None else rule(value, label)


def _writer(backend: Backend) -> Writer:
    """The writer ``flask maintenance`` uses, recording the history as it does (webhooks are the
    app's config, which this command does not load)."""
    from .notify import Announcer  # here: the guard, which shares this module, writes nothing
    from .writes import Writer

    return Writer(backend, DEFAULT_RETRY, Announcer(()), origin="cli")


def _switch_on(backend: Backend, options: argparse.Namespace) -> None:
    # The same rules and labels as `flask maintenance on`'s Click parameter types.
    mode = _checked(rules.mode, options.mode, "--mode")
    retry = _checked(rules.seconds, options.retry, "--retry")
    message = _checked(lambda value, label: rules.message(value, label) or "", options.message, "--message")
    until = _checked(rules.future_instant, options.until, "--until")
    duration = _checked(rules.duration, options.duration, "--for")
    ends_at = switch.end_of(until, duration)  # type: ignore[arg-type]
    before, _ = switch.stored(backend, DEFAULT_RETRY)
    _writer(backend).enable(mode, retry, message, ends_at)  # type: ignore[arg-type]
    switch.switch_on(before, switch.read_state(backend, DEFAULT_RETRY), backend.describe(), _say)


def _switch_off(backend: Backend) -> None:
    changed = _writer(backend).disable()
    switch.switch_off(changed, switch.read_state(backend, DEFAULT_RETRY), backend.describe(), _say)


def _switch_status(backend: Backend, as_json: bool) -> None:
    try:
        state = switch.read_state(backend, DEFAULT_RETRY)
    except MaintenanceError as error:
        raise MaintenanceError(f"cannot tell: {error}") from None
    if as_json:
        _say(switch.status_json(state, backend.describe()))
    else:
        switch.describe(state, backend.describe(), _say)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``flask-maintenance``: ``on``, ``off`` or ``status`` on a lock file or a
    Redis backend, as ``flask maintenance`` does, with the same messages and exit statuses."""
    try:
        options = _switch_parser().parse_args(argv)
        backend = backend_without_app(
            options.lock_file, options.backend, missing="give --lock-file or --backend"
        )
        if options.command == "on":
            _switch_on(backend, options)
        elif options.command == "off":
            _switch_off(backend)
        else:
            _switch_status(backend, options.as_json)
    except MaintenanceError as error:
        # As Click shows its exceptions: one line on stderr, no traceback.
        print(f"Error: {error}", file=sys.stderr)
        return EX_BAD_INPUT if isinstance(error, ConfigurationError) else EX_FAILED
    except KeyboardInterrupt:  # a write is atomic: the state is the old one or the new one
        _aborted(EX_FAILED)
    return 0
