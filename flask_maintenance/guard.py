"""Background work during maintenance: a guard for Python entrypoints (and the engine of the
``flask-maintenance-guard`` console script in :mod:`flask_maintenance.console`).

Importing it imports no Flask, so that the console script starts fast."""

from __future__ import annotations

import functools
import os

from .backends import Backend, FileBackend, backend_from_url
from .errors import BackendError, ConfigurationError, MaintenanceActive
from .model import State, features_of
from .rules import BLOCKING_MODES

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Collection
    from types import TracebackType
    from typing import Any, TypeVar

    from flask import Flask

    F = TypeVar("F", bound=Callable[..., Any])

#: Exit status of a refused command: sysexits' EX_TEMPFAIL, "try again later".
EX_TEMPFAIL = 75
#: Environment variable that lets one command run during maintenance anyway.
FORCE_ENV = "FLASK_MAINTENANCE_FORCE"
LOCK_FILE_ENV = "MAINTENANCE_LOCK_FILE"
BACKEND_ENV = "MAINTENANCE_BACKEND"
#: With no app config to ask, the documented default of Retry-After.
DEFAULT_RETRY = 60


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
            import logging  # only a skipped call logs: the console scripts start without it

            logging.getLogger("flask_maintenance").info(
                "skipped %s: %s", getattr(func, "__qualname__", func), reason
            )
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

    # Imported here: a web worker imports this module (``m.guard``) but needs no switch.
    from .switch import read_state as read_backend_state

    def read_state() -> tuple[State, Collection[str]]:
        return read_backend_state(backend, DEFAULT_RETRY), BLOCKING_MODES

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
    found = backend_without_app(lock_file, backend, missing="give lock_file=, backend= or app=")
    return backend_guard(found, raise_=raise_)


def backend_without_app(
    lock_file: str | os.PathLike[str] | None, backend: str | None, *, missing: str
) -> Backend:
    """The backend a program without the app acts on: ``lock_file`` or ``backend`` (a URL),
    else the ``MAINTENANCE_BACKEND`` or ``MAINTENANCE_LOCK_FILE`` environment variable.

    :param missing: how the caller's own options are named, for the error when none is given.
    :raises ConfigurationError: when nothing says where the state is, or the lock file's path
        is relative.
    """
    if lock_file is None and backend is None:
        backend = os.environ.get(BACKEND_ENV) or None
        lock_file = os.environ.get(LOCK_FILE_ENV) or None
        if backend == "file":
            backend = None
    if backend is not None:
        return backend_from_url(backend)
    if not lock_file:
        raise ConfigurationError(f"{missing}, or set {LOCK_FILE_ENV} or {BACKEND_ENV}")
    if not os.path.isabs(lock_file):
        # Cron and the app run in different folders: a relative path names another file.
        raise ConfigurationError(f"the lock file must be an absolute path, not {os.fspath(lock_file)!r}")
    return FileBackend(lock_file)
