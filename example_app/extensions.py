"""The extension instances, created once and shared by every app `create_app` builds."""

from __future__ import annotations

from flask_maintenance import Maintenance

maintenance = Maintenance()
