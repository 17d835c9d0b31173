"""Flask-SocketIO during maintenance: refuse connections and events as the site refuses requests.

Socket.IO traffic never reaches the request gate (Flask-SocketIO answers it in a middleware of its
own, and a connected socket sends events without any HTTP request), so :func:`guard_socketio`
checks each event where Flask-SocketIO runs it, in the request context it pushes for the socket:

- full maintenance: new connections are refused (``connect_error`` with a problem document) and
  events are answered with that document (as the acknowledgement) instead of running;
- readonly: events are refused unless named in ``read_events`` (an event is a write unless said
  otherwise), connections are accepted;
- banner, or off: everything runs. So do sockets of allowed addresses, of a valid bypass cookie
  (from the handshake) and of the app's bypass rules. ``disconnect`` always runs.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

from flask import current_app, request

from .gate import Gate
from .hook import a_rule_passes
from .texts import texts


def guard_socketio(
    socketio: Any, *, read_events: Collection[str] = (), namespaces: Collection[str] = ("/",)
) -> None:
    """Make ``socketio`` (a ``flask_socketio.SocketIO``) refuse during maintenance.

    :param read_events: events that only read, which readonly mode lets through.
    :param namespaces: namespaces whose connections are checked (events are checked in all).
    """
    reads = frozenset(read_events) | {"connect"}
    handle_event = socketio._handle_event  # the one place Flask-SocketIO runs every handler

    def checked_handle_event(handler: Callable[..., Any], message: str, *args: Any) -> Any:
        return handle_event(_checked(handler, message, reads), message, *args)

    socketio._handle_event = checked_handle_event
    for namespace in namespaces:
        if not _has_connect_handler(socketio, namespace):
            # Without one, python-socketio accepts a connection without asking anything.
            socketio.on("connect", namespace=namespace)(_accept)


def _checked(handler: Callable[..., Any], message: str, reads: frozenset[str]) -> Callable[..., Any]:
    def checked(*args: Any, **kwargs: Any) -> Any:
        problem = _refusal(message, reads)
        if problem is None:
            return handler(*args, **kwargs)
        if message == "connect":
            raise ConnectionRefusedError(problem)
        return problem  # the acknowledgement the client gets instead

    return checked


def _refusal(message: str, reads: frozenset[str]) -> dict[str, Any] | None:
    """The problem document refusing this socket event, or ``None`` when it may run."""
    gate: Gate = current_app.extensions["maintenance"]._gate(None)
    state = gate.cache.get()
    readonly = state.mode == "readonly"
    if not state.blocking or message == "disconnect" or (readonly and message in reads):
        return None
    if gate.bypassed(state, request.environ) or a_rule_passes(current_app, gate):
        return None
    gate.refused(state.mode or "full", "socket")
    english = texts()  # a socket event says no language: the catalog's default
    return {
        "error": "maintenance",
        "title": english.readonly_title if readonly else english.full_title,
        "detail": state.message or (english.readonly_detail if readonly else english.full_detail),
        "mode": state.mode,
        "retry_after": state.retry_after(),
    }


def _has_connect_handler(socketio: Any, namespace: str) -> bool:
    server = getattr(socketio, "server", None)
    if server is not None:
        return "connect" in server.handlers.get(namespace, {})
    return any(event == "connect" and (space or "/") == namespace for event, _, space in socketio.handlers)


def _accept(auth: Any = None) -> None:
    """A connect handler that accepts: the check wrapped around it decides."""
