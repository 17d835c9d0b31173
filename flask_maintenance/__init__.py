"""Maintenance mode for Flask: 503 + Retry-After, JSON or HTML, admin bypass, cron guard."""

from __future__ import annotations

from .errors import BackendError as BackendError
from .errors import ConfigurationError as ConfigurationError
from .errors import MaintenanceActive as MaintenanceActive
from .errors import MaintenanceError as MaintenanceError
from .extension import Maintenance as Maintenance
from .state import State as State
