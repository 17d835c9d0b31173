"""Maintenance mode for Flask: 503 + Retry-After, JSON or HTML, admin bypass, cron guard."""

from __future__ import annotations

__version__ = "0.2.0.dev0"

from .errors import BackendError as BackendError
from .errors import ConfigurationError as ConfigurationError
from .errors import MaintenanceActive as MaintenanceActive
from .errors import MaintenanceError as MaintenanceError
from .extension import Maintenance as Maintenance
from .guard import skip_during_maintenance as skip_during_maintenance
from .model import Feature as Feature
from .model import Schedule as Schedule
from .model import State as State
from .responses import PAGE_CSP_SOURCES as PAGE_CSP_SOURCES
from .signals import maintenance_disabled as maintenance_disabled
from .signals import maintenance_enabled as maintenance_enabled
from .signals import request_blocked as request_blocked
