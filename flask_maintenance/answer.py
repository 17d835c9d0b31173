"""A prebuilt HTTP answer: the value the fast path, the hook and the probes send as it is.

Kept apart from :mod:`flask_maintenance.responses`, which builds the page and the problem JSON:
a web worker imports this while maintenance is off, and that only once a state needs an answer.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field

#: The status line of every 503 the extension sends.
STATUS_LINE = "503 SERVICE UNAVAILABLE"
#: Marks every 503 the extension sends (value: ``full``, ``readonly`` or ``feature``), so that a
#: proxy or the edge Worker can tell the app's own refusal from a server that is down.
MARKER_HEADER = "X-Maintenance"


@dataclass(frozen=True)
class Answer:
    """A complete HTTP answer: status code, headers (without Content-Length) and body."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes
    #: The ``Retry-After`` it sends, in seconds.
    retry_after: int
    #: ``next()`` of it counts one refusal with this answer (the gate gives each answer its
    #: counter): one C call, which threads may share.
    counter: Iterator[object] = field(default_factory=itertools.count, compare=False, repr=False)
    #: The headers with ``Content-Length``, as the fast path sends them. Made with the rest (not
    #: a cached property): attributes set later slow down every read of the others.
    wsgi_headers: tuple[tuple[str, str], ...] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        headers = (*self.headers, ("Content-Length", str(len(self.body))))
        object.__setattr__(self, "wsgi_headers", headers)
