"""Maintenance mode for Flask: 503 + Retry-After, JSON or HTML, admin bypass, cron guard.

The public names are imported on first use (:pep:`562`): ``flask-maintenance-guard`` and the
``flask-maintenance`` switch import this package without Flask, so that they start in a few
milliseconds on a machine that is drowning; ``from flask_maintenance import Maintenance`` works
as ever.
"""

from __future__ import annotations

import importlib

__version__ = "0.2.0.dev0"

from .errors import BackendError as BackendError
from .errors import ConfigurationError as ConfigurationError
from .errors import MaintenanceActive as MaintenanceActive
from .errors import MaintenanceError as MaintenanceError

TYPE_CHECKING = False  # not typing's: the console scripts start without importing typing
if TYPE_CHECKING:
    from typing import Any

    from .extension import Maintenance as Maintenance
    from .guard import skip_during_maintenance as skip_during_maintenance
    from .model import Feature as Feature
    from .model import Schedule as Schedule
    from .model import State as State
    from .responses import PAGE_CSP_SOURCES as PAGE_CSP_SOURCES
    from .signals import maintenance_disabled as maintenance_disabled
    from .signals import maintenance_enabled as maintenance_enabled
    from .signals import request_blocked as request_blocked

#: Each lazily imported public name, and the module that defines it.
_LAZY = {
    "Maintenance": "extension",
    "skip_during_maintenance": "guard",
    "Feature": "model",
    "Schedule": "model",
    "State": "model",
    "PAGE_CSP_SOURCES": "responses",
    "maintenance_disabled": "signals",
    "maintenance_enabled": "signals",
    "request_blocked": "signals",
}

__all__ = [
    "BackendError",
    "ConfigurationError",
    "MaintenanceActive",
    "MaintenanceError",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # the next look-up is an ordinary attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
