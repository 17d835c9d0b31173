"""Blinker signals, so that apps can log, count or alert on maintenance.

Each is sent with the app as sender and ``state=`` the :class:`~flask_maintenance.State`:

- ``maintenance_enabled``: this process sees maintenance come on (or change mode);
- ``maintenance_disabled``: this process sees it go off;
- ``request_blocked``: a request was refused, with ``reason=`` ``"maintenance"``,
  ``"readonly"`` or ``"feature:<name>"``. While it has receivers, every refusal goes through
  the request hook (the WSGI fast path has no request context to send it from).
"""

from __future__ import annotations

from blinker import Namespace

_signals = Namespace()

maintenance_enabled = _signals.signal("maintenance-enabled")
maintenance_disabled = _signals.signal("maintenance-disabled")
request_blocked = _signals.signal("maintenance-request-blocked")
