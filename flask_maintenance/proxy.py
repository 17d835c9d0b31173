"""Maintenance at the proxy: the built-in answers as static files, and an nginx snippet that serves them.

nginx cannot parse the state, only see whether the lock file exists, so at the proxy any mode
refuses everything, and only address ranges (not the bypass cookie) get through. The app stays the
source of truth behind it; the proxy also answers for the app when the app cannot answer at all.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterable
from datetime import datetime

from .answer import Answer
from .config import IPNetwork, Settings
from .errors import ConfigurationError
from .model import State
from .responses import blocked
from .rules import MODES

#: The internal URI the snippet serves the page under (never reachable from outside).
PAGE_URI = "/__flask_maintenance_page__"
#: The variable the ``geo`` block sets for allowed addresses.
ALLOWED_VARIABLE = "$flask_maintenance_allowed"

# Characters nginx would read as syntax or as a variable inside a quoted string: refuse them
# rather than try to escape them (no sane lock file, page or path prefix contains one).
_UNSAFE = re.compile(r'["\\$\s{};\x00-\x1f\x7f]')


def static_answer(
    state: State,
    settings: Settings,
    *,
    root: str,
    now: datetime,
    as_json: bool = False,
    readonly: bool = False,
    every_mode: bool = False,
) -> Answer:
    """The app's 503 as something outside the app sends it (a proxy's file, the edge Worker): the
    page or the problem JSON, with its headers but no banner header.

    The current state when maintenance is on, else a default full maintenance with
    ``MAINTENANCE_RETRY_AFTER``. The page polls the status path and
    ``MAINTENANCE_RECOVERY_CHECKS`` to reload itself, as the app's page does.

    :param root: where the app is mounted on the site (``APPLICATION_ROOT``), without a
        trailing slash.
    :param readonly: the answer to a write in readonly mode, for what lets reads through; a
        proxy that cannot (nginx, HAProxy) always sends the full page.
    :param every_mode: for a proxy that refuses in every mode while the lock file exists
        (nginx): the page then reloads only once maintenance is off, not in a loop.
    """
    if not state.active:
        state = State(active=True, retry=settings.retry_after)
    return blocked(
        state,
        readonly=readonly,
        as_json=as_json,
        retry_after=state.retry_after(now),
        status_url=root + settings.status_path,
        banner=None,  # a header; a static file has none
        extra_headers=settings.response_headers,
        recovery_checks=settings.recovery_checks,
        refused_in=MODES if every_mode else None,
    )


def unsearchable_folders(path: str | os.PathLike[str]) -> list[str]:
    """The folders above ``path`` that other users cannot enter (no ``o+x``).

    nginx's worker runs as another user (``www-data``, ``nobody``); if it cannot enter a folder,
    it cannot read the page, and ``-f`` on the lock file quietly says "no lock file".
    """
    folders = []
    folder = os.path.dirname(os.path.abspath(path))
    while True:
        try:
            mode = os.stat(folder).st_mode
        except OSError:
            mode = None
        if mode is not None and not mode & stat.S_IXOTH:
            folders.append(folder)
        parent = os.path.dirname(folder)
        if parent == folder:
            return list(reversed(folders))
        folder = parent


def server_snippet(
    *,
    lock_file: str,
    page: str,
    retry_after: int,
    allowed_networks: Iterable[IPNetwork],
    open_paths: Iterable[str],
    render_command: str,
) -> str:
    """The lines to ``include`` inside the site's ``server {}`` block.

    While ``lock_file`` exists every request gets 503 and ``page``, except requests to
    ``open_paths`` (``MAINTENANCE_ALLOWED_PATHS`` and the status path, which the app answers
    itself) and, when there are allowed networks, addresses the :func:`http_snippet` ``geo``
    block marks. Whatever the lock file, an upstream that is down (502, 504) gets the same page
    as a 503.

    :raises ConfigurationError: for a path nginx could not take literally.
    """
    lock_file = _literal("the lock file", os.path.abspath(lock_file))
    page = _literal("the page", os.path.abspath(page))
    prefixes = [_literal("the path prefix", prefix.rstrip("/") or "/") for prefix in open_paths]
    has_allowed = bool(tuple(allowed_networks))

    lines = [
        "# flask-maintenance: the maintenance page at the proxy (`flask maintenance nginx-config`).",
        "# Include inside the site's server {} block, beside `listen` and `location / { proxy_pass ...; }`.",
        "# nginx only sees whether the lock file exists: any mode (even readonly or banner) refuses",
        "# every request here, and the bypass cookie does not get through; allowed addresses do.",
        "# nginx's worker user must be able to read the page and to enter the lock file's folder.",
        f"# Render the page first: {render_command}",
    ]
    if has_allowed:
        lines += [
            "# MAINTENANCE_ALLOWED_IPS is set: this needs the geo block printed by",
            "# `flask maintenance nginx-config --http`, included at http {} level (nginx allows geo",
            "# only there); without it nginx refuses to start with 'unknown variable'.",
        ]
    lines += [
        "",
        "set $flask_maintenance 0;",
        f'if (-f "{lock_file}") {{',
        "    set $flask_maintenance 1;",
        "}",
    ]
    if has_allowed:
        lines += [f"if ({ALLOWED_VARIABLE}) {{", "    set $flask_maintenance 0;", "}"]
    if prefixes:
        # The same segment-boundary match as the app: /health covers /health/live, not /healthy.
        alternatives = "|".join(re.escape(prefix) if prefix != "/" else "" for prefix in prefixes)
        lines += [
            "# Paths the app answers itself during maintenance (allowed paths, the status path, robots.txt).",
            f'if ($uri ~ "^({alternatives})(/|$)") {{',
            "    set $flask_maintenance 0;",
            "}",
        ]
    lines += [
        "# The page's own internal redirect passes this block again: let it through.",
        f"if ($uri = {PAGE_URI}) {{",
        "    set $flask_maintenance 0;",
        "}",
        "if ($flask_maintenance) {",
        "    return 503;",
        "}",
        "",
        "# The app's own 503s pass unchanged (proxy_intercept_errors is off); these are nginx's:",
        "# the lock file above, and an app upstream that is down or too slow.",
        f"error_page 503 {PAGE_URI};",
        f"error_page 502 504 =503 {PAGE_URI};",
        "",
        f"location = {PAGE_URI} {{",
        "    internal;",
        f'    alias "{page}";',
        "    default_type text/html;",
        "    charset utf-8;",
        # `always`: add_header otherwise skips error statuses such as 503.
        f"    add_header Retry-After {retry_after} always;",
        "    add_header Cache-Control no-store always;",
        "}",
    ]
    return "\n".join(lines) + "\n"


def http_snippet(allowed_networks: Iterable[IPNetwork]) -> str:
    """The ``geo`` block marking ``MAINTENANCE_ALLOWED_IPS``, for the ``http {}`` block."""
    networks = tuple(allowed_networks)
    if not networks:
        return (
            "# flask-maintenance: MAINTENANCE_ALLOWED_IPS is empty, so nothing is needed at http {} level.\n"
        )
    lines = [
        "# flask-maintenance: addresses let through during maintenance (MAINTENANCE_ALLOWED_IPS).",
        "# Include inside the http {} block (nginx allows geo only there). It matches $remote_addr:",
        "# behind another proxy, set that proxy's address with set_real_ip_from first.",
        f"geo {ALLOWED_VARIABLE} {{",
        "    default 0;",
        *(f"    {network.with_prefixlen} 1;" for network in networks),
        "}",
    ]
    return "\n".join(lines) + "\n"


def literal(what: str, value: str, *, unsafe: re.Pattern[str], characters: str, reader: str) -> str:
    """``value`` as it is, for a proxy's configuration file: refused rather than escaped.

    :param unsafe: matches what ``reader`` (a proxy) would read as syntax, named by ``characters``.
    :raises ConfigurationError: when ``value`` holds any of it.
    """
    if unsafe.search(value):
        raise ConfigurationError(
            f"{what} {value!r} contains {characters}, which {reader} would not read literally; "
            "use a plainer one"
        )
    return value


def _literal(what: str, value: str) -> str:
    characters = "a quote, backslash, '$', brace, ';' or whitespace"
    return literal(what, value, unsafe=_UNSAFE, characters=characters, reader="nginx")
