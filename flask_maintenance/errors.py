"""The few exceptions callers catch."""

from __future__ import annotations


class MaintenanceError(Exception):
    """Base class of every error raised by flask-maintenance."""


class ConfigurationError(MaintenanceError, ValueError):
    """A config value or an operator's argument is invalid.

    Raised at ``init_app`` time for a bad config key, and by the parsing helpers for bad
    command-line input; the message names the key or option at fault.
    """


class BackendError(MaintenanceError):
    """The state backend could not be read or written; ``__cause__`` keeps the driver's error."""


class MaintenanceActive(MaintenanceError):
    """Raised by guarded functions called with ``raise_=True`` while maintenance is on, and by
    a write that a protected database refused (``__cause__`` is then the driver's error)."""

    def __init__(self, state: object, message: str | None = None) -> None:
        self.state = state
        super().__init__(message or f"maintenance is on ({getattr(state, 'mode', 'full')})")
