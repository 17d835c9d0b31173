"""Maintenance at the proxy: the built-in page as a static file, and an nginx snippet that serves it.

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

from .config import IPNetwork
from .errors import ConfigurationError
from .model import State
from .responses import blocked

#: The internal URI the snippet serves the page under (never reachable from outside).
PAGE_URI = "/__flask_maintenance_page__"
#: The variable the ``geo`` block sets for allowed addresses.
ALLOWED_VARIABLE = "$flask_maintenance_allowed"

# Characters nginx would read as syntax or as a variable inside a quoted string: refuse them
# rather than try to escape them (no sane lock file, page or path prefix contains one).
_UNSAFE = re.compile(r'["\\$\s{};\x00-\x1f\x7f]')


def page_body(state: State, *, retry_after: int, status_path: str, now: datetime) -> bytes:
    """The built-in maintenance page for the proxy to serve.

    The current state when maintenance is on (in any mode: the proxy refuses everything), else
    a default full maintenance with ``retry_after``. It is always the full page, never the
    read-only one, since nginx cannot let reads through.

    :param status_path: ``MAINTENANCE_STATUS_PATH``, which the page polls to reload itself.
    """
    if not state.active:
        state = State(active=True, retry=retry_after)
    answer = blocked(
        state,
        readonly=False,
        as_json=False,
        retry_after=state.retry_after(now),
        status_url=status_path,
        banner=None,  # a header; the file has none
    )
    return answer.body


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


def _literal(what: str, value: str) -> str:
    if _UNSAFE.search(value):
        raise ConfigurationError(
            f"{what} {value!r} contains a quote, backslash, '$', brace, ';' or whitespace, "
            "which nginx would not read literally; use a plainer path"
        )
    return value
