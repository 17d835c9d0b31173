"""Background work during maintenance: a guard for Python entrypoints, and the console script
``flask-maintenance-guard`` that wraps cron lines."""

from __future__ import annotations

import argparse
import functools
import logging
import os
import shlex
import sys
from collections.abc import Callable, Collection, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

from . import times
from .backends import Backend, FileBackend, backend_from_url
from .errors import BackendError, ConfigurationError, MaintenanceActive
from .model import Plan, State, features_of, resolve
from .rules import BLOCKING_MODES

if TYPE_CHECKING:
    from flask import Flask

logger = logging.getLogger("flask_maintenance")

F = TypeVar("F", bound=Callable[..., Any])

#: Exit status of a refused command: sysexits' EX_TEMPFAIL, "try again later".
EX_TEMPFAIL = 75
#: Environment variable that lets one command run during maintenance anyway.
FORCE_ENV = "FLASK_MAINTENANCE_FORCE"
LOCK_FILE_ENV = "MAINTENANCE_LOCK_FILE"
BACKEND_ENV = "MAINTENANCE_BACKEND"
# With no app config to ask, the documented default of Retry-After.
_DEFAULT_RETRY = 60


def forced() -> bool:
    """Whether ``FLASK_MAINTENANCE_FORCE`` asks to run despite maintenance."""
    return os.environ.get(FORCE_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def describe(state: State, features: Collection[str] = ()) -> str:
    """``maintenance is on (mode full, since …)``: how refusals name the state."""
    if not state.blocking:
        off = sorted(name for name in features if name in state.features)
        if off:
            return f"feature {off[0]} is switched off for maintenance"
    since = f", since {state.started_at:%Y-%m-%dT%H:%M:%SZ}" if state.started_at else ""
    return f"maintenance is on (mode {state.mode}{since})"


#: What a guard acts on when the state cannot be read: maintenance, with the defaults.
UNKNOWN = State(active=True)


class Guard:
    """Keeps a function, a block or a command from running while maintenance blocks work.

    As a decorator the guarded function is not called and the call returns ``None`` (or raises
    :class:`MaintenanceActive` with ``raise_=True``); as a context manager it raises
    :class:`MaintenanceActive` on entry, since a ``with`` body cannot be skipped.

    :param read_state: returns the current state.
    :param block_modes: the modes that stop work (``MAINTENANCE_CLI_BLOCK_MODES``).
    :param raise_: raise instead of returning ``None`` from a skipped call.
    """

    def __init__(
        self,
        read_state: Callable[[], tuple[State, Collection[str]]],
        raise_: bool = False,
    ) -> None:
        self._read_state = read_state
        self.raise_ = raise_
        #: Where a guard made for a plain script reads the state (``None`` for an app's guard).
        self.backend: Backend | None = None

    def blocking_state(self, features: Collection[str] = ()) -> State | None:
        """The state that stops work now, or ``None`` when work may run.

        :param features: the work's feature names; it stops when any of them is switched off.
        :raises BackendError: when the state cannot be read (the decorator and the context
            manager then stop the work: running it while the state is unknown is the worse
            mistake).
        """
        if forced():
            return None
        state, block_modes = self._read_state()
        # `blocking` first: banner never stops work, even when listed in the block modes.
        if state.blocking and state.mode in block_modes:
            return state
        if any(name in state.features for name in features):
            return state
        return None

    def __call__(self, func: F) -> F:
        @functools.wraps(func)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            # Read at call time: @m.feature may sit above or below the guard.
            features = features_of(guarded) | features_of(func)
            try:
                state = self.blocking_state(features)
                reason = None if state is None else describe(state, features)
            except BackendError as error:
                state, reason = UNKNOWN, f"the maintenance state cannot be read ({error})"
            if state is None:
                return func(*args, **kwargs)
            logger.info("skipped %s: %s", getattr(func, "__qualname__", func), reason)
            if self.raise_:
                raise MaintenanceActive(state)
            return None

        return guarded  # type: ignore[return-value]

    def __enter__(self) -> None:
        try:
            state = self.blocking_state()
        except BackendError as error:
            raise MaintenanceActive(UNKNOWN) from error
        if state is not None:
            raise MaintenanceActive(state)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None


def backend_guard(backend: Backend, raise_: bool = False) -> Guard:
    """A guard that reads a backend directly, without importing any app."""

    plan_backend = backend.sibling("plan")

    def read_state() -> tuple[State, Collection[str]]:
        lock = State.parse(backend.read(), _DEFAULT_RETRY)[0]
        plan = Plan.parse(plan_backend.read())[0]
        return resolve(lock, plan, times.utcnow(), _DEFAULT_RETRY), BLOCKING_MODES

    guard = Guard(read_state, raise_=raise_)
    guard.backend = backend
    return guard


def skip_during_maintenance(
    lock_file: str | os.PathLike[str] | None = None,
    app: Flask | None = None,
    *,
    backend: str | None = None,
    raise_: bool = False,
) -> Guard:
    """Guard a plain script's function (a cron job, a scheduler task) against maintenance.

    Give the app's lock file, a backend URL (``redis://…``), or the app itself (which must have
    the extension); with none, the ``MAINTENANCE_BACKEND`` or ``MAINTENANCE_LOCK_FILE``
    environment variable says where the state is::

        @skip_during_maintenance(lock_file="/srv/app/instance/maintenance.lock")
        def nightly_report(): ...

    :raises ConfigurationError: when nothing says where the state is.
    """
    if app is not None:
        extension = app.extensions.get("maintenance")
        if extension is None:
            raise ConfigurationError("this app has no Maintenance extension: call Maintenance(app)")
        return extension.guard(raise_=raise_, app=app)  # type: ignore[no-any-return]
    if lock_file is None and backend is None:
        backend = os.environ.get(BACKEND_ENV) or None
        lock_file = os.environ.get(LOCK_FILE_ENV) or None
        if backend == "file":
            backend = None
    if backend is not None:
        return backend_guard(backend_from_url(backend), raise_=raise_)
    if not lock_file:
        raise ConfigurationError(
            f"give lock_file=, backend= or app=, or set {LOCK_FILE_ENV} or {BACKEND_ENV}"
        )
    if not os.path.isabs(lock_file):
        # Cron and the app run in different folders: a relative path names another file.
        raise ConfigurationError(f"the lock file must be an absolute path, not {os.fspath(lock_file)!r}")
    return backend_guard(FileBackend(lock_file), raise_=raise_)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def _parser() -> argparse.ArgumentParser:
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


def _app_guard(import_path: str) -> Guard:
    from flask.cli import ScriptInfo

    try:
        app = ScriptInfo(app_import_path=import_path).load_app()
    except Exception as error:  # whatever the broken app raises, the operator gets one line
        message = " ".join(str(error).split()) or type(error).__name__
        raise ConfigurationError(f"cannot load the app {import_path!r}: {message}") from None
    return skip_during_maintenance(app=app)


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Entry point of ``flask-maintenance-guard``."""
    args = list(sys.argv[1:] if argv is None else argv)
    parser = _parser()
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
        print(f"{parser.prog}: {error}; skipped: {shlex.join(command)}", file=sys.stderr)
        sys.exit(options.skip_exit_code)
    if state is not None:
        if not options.quiet:
            print(
                f"{parser.prog}: {describe(state)}; skipped: {shlex.join(command)} "
                f"(set {FORCE_ENV}=1 to run it anyway)",
                file=sys.stderr,
            )
        sys.exit(options.skip_exit_code)
    try:
        os.execvp(command[0], command)
    except OSError as error:
        print(f"{parser.prog}: cannot run {command[0]}: {error.strerror or error}", file=sys.stderr)
        sys.exit(127 if isinstance(error, FileNotFoundError) else 126)
