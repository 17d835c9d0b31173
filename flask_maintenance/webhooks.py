"""Delivery of transitions to ``MAINTENANCE_WEBHOOKS``: in the background, bounded, never failing.

Each URL gets its own queue and daemon thread, so that its documents arrive in order and a slow
receiver delays no other. A document is POSTed as JSON with a :data:`TIMEOUT` per attempt and up
to :data:`RETRIES` more attempts after a failure that may pass (no answer, a timeout, 408, 429 or
a 5xx); redirects are not followed (a receiver cannot send the document elsewhere). Nothing here
ever raises into the switch that caused it: failures are logged.

A process that exits (the ``flask`` command) waits for what it queued, for at most
:data:`EXIT_WAIT` seconds in all.
"""

from __future__ import annotations

import atexit
import base64
import http.client
import json
import logging
import os
import queue
import threading
import time
import urllib.error
import urllib.request
import weakref
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

logger = logging.getLogger("flask_maintenance")

#: Seconds for one attempt (connecting, sending and reading the answer's status).
TIMEOUT = 2.0
#: Attempts after the first failed one.
RETRIES = 3
#: Seconds before each retry: the n-th waits ``BACKOFF * 2 ** n``.
BACKOFF = 0.25
#: Longest a process waits at exit for its queued documents (every URL at once).
EXIT_WAIT = 12.0
#: Documents waiting per URL beyond which new ones are dropped (with a warning).
QUEUE_LIMIT = 100
# Statuses worth another attempt: the receiver may take it later.
_TRANSIENT = frozenset({408, 425, 429})


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # the 3xx then fails the attempt as an HTTPError


_OPENER = urllib.request.build_opener(_NoRedirects)


class Webhooks:
    """Posts documents to every configured URL from background threads.

    :param urls: ``MAINTENANCE_WEBHOOKS``.
    """

    def __init__(self, urls: Sequence[str]) -> None:
        self.urls = tuple(urls)
        self._queues: dict[str, queue.Queue[bytes]] = {}
        self._lock = threading.Lock()
        self._pid = -1
        _LIVE.add(self)

    def post(self, document: Mapping[str, Any]) -> None:
        """Queue ``document`` for every URL and return at once."""
        if not self.urls:
            return
        body = json.dumps(document).encode()
        for url in self.urls:
            try:
                self._queue(url).put_nowait(body)
            except queue.Full:
                logger.warning(
                    "maintenance webhook %s: %d notifications waiting; dropped one", _shown(url), QUEUE_LIMIT
                )

    def wait(self, timeout: float) -> bool:
        """Wait until every queued document is delivered or given up; whether all were."""
        if self._pid != os.getpid():
            return True  # nothing queued by this process (a forked worker's inherited queues)
        deadline = time.monotonic() + timeout
        for waiting in list(self._queues.values()):
            with waiting.all_tasks_done:
                while waiting.unfinished_tasks:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return False
                    waiting.all_tasks_done.wait(left)
        return True

    def _queue(self, url: str) -> queue.Queue[bytes]:
        with self._lock:
            if self._pid != os.getpid():
                # A forked worker inherits the queues but not the threads: start afresh.
                self._queues, self._pid = {}, os.getpid()
            waiting = self._queues.get(url)
            if waiting is None:
                waiting = self._queues[url] = queue.Queue(QUEUE_LIMIT)
                threading.Thread(
                    target=_deliver_forever, args=(url, waiting), name="maintenance-webhook", daemon=True
                ).start()
            return waiting


def _deliver_forever(url: str, waiting: queue.Queue[bytes]) -> None:
    while True:
        body = waiting.get()
        try:
            deliver(url, body)
        finally:
            waiting.task_done()


def deliver(url: str, body: bytes) -> bool:
    """POST ``body`` to ``url``, retrying what may pass; whether it was accepted (2xx)."""
    target, headers = _request_parts(url)
    for attempt in range(RETRIES + 1):
        if attempt:
            time.sleep(BACKOFF * 2 ** (attempt - 1))
        request = urllib.request.Request(target, data=body, method="POST", headers=headers)
        try:
            with _OPENER.open(request, timeout=TIMEOUT) as answer:
                answer.read(64 * 1024)  # a polite reader; what it says does not matter
            return True
        except urllib.error.HTTPError as error:
            error.close()
            problem = f"HTTP {error.code}"
            if error.code < 500 and error.code not in _TRANSIENT:
                logger.warning("maintenance webhook %s refused the notification (%s)", _shown(url), problem)
                return False
        except (OSError, ValueError, http.client.HTTPException) as error:  # no answer, a timeout, garbage
            problem = type(error).__name__
        logger.info("maintenance webhook %s: attempt %d failed (%s)", _shown(url), attempt + 1, problem)
    logger.warning(
        "maintenance webhook %s: notification not delivered after %d attempts", _shown(url), RETRIES + 1
    )
    return False


def _request_parts(url: str) -> tuple[str, dict[str, str]]:
    """The URL to open and the headers to send: credentials in the URL (``https://user:pw@host``)
    go as Basic auth, which urllib would otherwise take for part of the host name."""
    headers = {"Content-Type": "application/json", "User-Agent": "flask-maintenance"}
    parts = urlsplit(url)
    userinfo, at, host = parts.netloc.rpartition("@")
    if not at:
        return url, headers
    credentials = ":".join(unquote(part) for part in userinfo.split(":", 1))
    headers["Authorization"] = "Basic " + base64.b64encode(credentials.encode()).decode("ascii")
    return urlunsplit(parts._replace(netloc=host)), headers


def _shown(url: str) -> str:
    """The URL without its path, query or user: incoming-webhook URLs carry their secret there."""
    # urlsplit, not a split on "/": a URL with a query and no path ("https://host?key=...")
    # must lose its query too.
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"


_LIVE: weakref.WeakSet[Webhooks] = weakref.WeakSet()


@atexit.register
def _wait_at_exit() -> None:
    deadline = time.monotonic() + EXIT_WAIT
    for webhooks in list(_LIVE):
        if not webhooks.wait(max(0.0, deadline - time.monotonic())):
            logger.warning("maintenance webhooks: exiting before every notification was delivered")
            return
