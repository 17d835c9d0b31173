"""Maintenance at HAProxy: a complete configuration, and the two answers it serves as files.

HAProxy learns the state from the app itself, through health checks on ``<status path>/ready``,
so it works with every backend (a lock file or Redis) and on another machine than the app. When
no server is ready, because maintenance is on (mode ``full``) or because every app server is
dead, HAProxy answers 503 itself from the files: the page, or problem JSON for API prefixes and
clients that ask for JSON. The app then sees no request at all, except those it would let through
anyway (allowed paths, the status path, allowed addresses, and requests carrying the bypass
cookie or header, which the app verifies), which go to the same servers checked on
``<status path>/live``.

HAProxy reads the files once, when it starts or reloads: write them again (``--page``) and reload
HAProxy after changing the message.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .answer import Answer
from .config import IPNetwork
from .errors import ConfigurationError
from .probes import LIVE, READY
from .proxy import literal

#: HAProxy holds a file's whole answer in one buffer (``tune.bufsize``, 16 KiB by default),
#: headers included, and keeps ``tune.maxrewrite`` (1 KiB) of it free for rewriting; each header
#: also costs it a few bytes more than in the file. Past about 15,200 bytes it warns at every
#: start that rewriting the answer may fail with an internal error; 14 KiB leaves room for
#: dozens of ``MAINTENANCE_RESPONSE_HEADERS``.
MAX_ANSWER_BYTES = 14 * 1024

# What HAProxy would read as syntax (quotes, escapes, variables, comments, word breaks).
_UNSAFE = re.compile(r"[\"'\\$#\s\x00-\x1f\x7f]")
_HOST = re.compile(r"\[[0-9A-Fa-f:.]+\]|[0-9A-Za-z.-]+")


@dataclass(frozen=True)
class Address:
    """A ``HOST:PORT`` given on the command line."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


def address(value: str, label: str, *, any_host: bool = False) -> Address:
    """Parse ``HOST:PORT`` (``[v6]:PORT`` for IPv6).

    :param any_host: allow an empty host or ``*`` (every address), as ``bind`` does.
    :raises ConfigurationError: one line naming ``label``.
    """
    host, separator, port = value.rpartition(":")
    valid_host = bool(_HOST.fullmatch(host)) or (any_host and host in ("", "*"))
    if host.startswith("["):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            valid_host = False
    if (
        not separator
        or not valid_host
        or not port.isascii()
        or not port.isdigit()
        or not 0 < int(port) < 65536
    ):
        example = ":80 or 127.0.0.1:8080" if any_host else "127.0.0.1:8000"
        raise ConfigurationError(f"{label} must be HOST:PORT, such as {example}, not {value!r}")
    return Address(host, int(port))


def http_file(answer: Answer) -> bytes:
    """``answer`` as a complete HTTP response, the form of HAProxy's ``errorfile``.

    :raises ConfigurationError: when it would not fit in HAProxy's buffer.
    """
    lines = ["HTTP/1.1 503 Service Unavailable", *(f"{name}: {value}" for name, value in answer.wsgi_headers)]
    data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + answer.body
    if len(data) > MAX_ANSWER_BYTES:
        raise ConfigurationError(
            f"the maintenance answer is {len(data)} bytes, more than HAProxy's buffer holds "
            f"({MAX_ANSWER_BYTES}); use a shorter message"
        )
    return data


def problem_path(page: str) -> str:
    """Where the problem JSON goes beside the page: ``maintenance.http`` ->
    ``maintenance-problem.http``."""
    stem, dot, suffix = page.rpartition(".")
    if not dot or "/" in suffix:
        return page + "-problem"
    return f"{stem}-problem.{suffix}"


def configuration(
    *,
    bind: Address,
    servers: Sequence[Address],
    page: str,
    problem: str,
    status_path: str,
    api_prefixes: Iterable[str],
    open_paths: Iterable[str],
    allowed_networks: Iterable[IPNetwork],
    bypass_cookie: str,
    bypass_header: str,
    interval: float,
    command: str,
) -> str:
    """The complete HAProxy configuration (see the module docstring).

    :param status_path: with the app's root, where the probes are.
    :param open_paths: with the app's root: ``MAINTENANCE_ALLOWED_PATHS`` and the status path.
    :param interval: seconds between health checks, which is how long HAProxy takes to see a
        change.
    :param command: the command that printed it, for the comment at the top.
    :raises ConfigurationError: for a path, prefix, cookie or header name HAProxy could not take
        literally.
    """
    page = _literal("the page file", page)
    problem = _literal("the problem JSON file", problem)
    status_path = _literal("MAINTENANCE_STATUS_PATH", status_path)
    cookie = _literal("MAINTENANCE_BYPASS_COOKIE", bypass_cookie)
    header = _literal("MAINTENANCE_BYPASS_HEADER", bypass_header)
    open_roots = [_literal("the path prefix", prefix.rstrip("/") or "/") for prefix in open_paths]
    api_roots = [_literal("the API prefix", prefix.rstrip("/") or "/") for prefix in api_prefixes]
    networks = [network.with_prefixlen for network in allowed_networks]
    milliseconds = max(1, round(interval * 1000))
    names = [f"app{number}" for number in range(1, len(servers) + 1)]

    lines = [
        f"# flask-maintenance: HAProxy (2.6 or later) in front of the app. Printed by `{command}`.",
        "# Check it with `haproxy -c -f <this file>`. HAProxy reads the two answer files when it",
        "# starts or reloads: after changing the message, write them again (--page) and reload.",
        "#",
        f"# - Normal: every request goes to the app servers, which HAProxy checks on {status_path}{READY}",
        f"#   every {milliseconds} ms.",
        f"# - Maintenance (mode full, with any backend): {status_path}{READY} answers 503, so no server",
        "#   is ready and HAProxy answers 503 itself with Retry-After: the page, or problem JSON for",
        "#   API prefixes and clients that ask for JSON. The app sees none of these requests. What",
        "#   the app lets through itself still reaches it: allowed paths, the status path (which the",
        "#   page polls), allowed addresses and requests with the bypass cookie or header (the app",
        "#   verifies them).",
        "#   Modes readonly and banner stay ready: the app answers those requests itself.",
        "# - Every app server dead: the same page and JSON, never HAProxy's own error text.",
        "# - Back: normal again at the next health check.",
        "",
        "global",
        "    # As a service, keep your distribution's lines here too (Debian's: log, chroot, user,",
        "    # group, stats socket, daemon). maxconn defaults to what the file limit allows.",
        "",
        "defaults",
        "    mode http",
        "    # The app sees the client's address in X-Forwarded-For: its MAINTENANCE_ALLOWED_IPS",
        "    # needs werkzeug's ProxyFix to read it.",
        "    option forwardfor",
        "    # A request to a server that has just died is tried once more on another one.",
        "    retries 1",
        "    option redispatch",
        "    timeout connect 5s",
        "    timeout client 30s",
        "    timeout server 30s",
        "    timeout queue 30s",
        f"    timeout check {milliseconds}ms",
        "    # One failed check takes a server out and one good check brings it back, so a change",
        "    # of state reaches HAProxy within one interval.",
        f"    default-server inter {milliseconds}ms fastinter {milliseconds}ms downinter {milliseconds}ms"
        " rise 1 fall 1",
        "",
        "frontend flask_maintenance",
        f"    bind {bind}",
        "",
        "    # Requests the app answers itself during maintenance.",
    ]
    for root in open_roots:
        lines.append(f"    acl fm_open path {root}" if root != "/" else "    acl fm_open path_beg /")
        if root != "/":
            lines.append(f"    acl fm_open path_beg {root}/")
    if networks:
        lines.append(f"    acl fm_open src {' '.join(networks)}")
    lines += [
        f"    acl fm_open req.cook({cookie}) -m found",
        f"    acl fm_open req.hdr({header}) -m found",
        "",
        "    # Problem JSON for the API prefixes, and for clients that ask for JSON rather than HTML.",
    ]
    for root in api_roots:
        lines.append(
            f"    http-request set-var(txn.fm_json) bool(true) if {{ path {root} }} || {{ path_beg {root}/ }}"
        )
    lines += [
        "    acl fm_asks_json req.fhdr(accept) -m sub -i json",
        "    acl fm_asks_html req.fhdr(accept) -m sub -i text/html",
        "    http-request set-var(txn.fm_json) bool(true) if fm_asks_json !fm_asks_html",
        "    acl fm_json var(txn.fm_json) -m bool",
        "",
        "    # No server ready (maintenance, or every server dead): HAProxy answers itself.",
        "    acl fm_ready nbsrv(app) gt 0",
        f"    http-request return errorfile {problem} if !fm_ready !fm_open fm_json",
        f"    http-request return errorfile {page} if !fm_ready !fm_open",
        "    # What the app lets through needs a live server; none is left: the same answers.",
        "    acl fm_live nbsrv(app_open) gt 0",
        f"    http-request return errorfile {problem} if !fm_live fm_json",
        f"    http-request return errorfile {page} if !fm_live",
        "",
        "    use_backend app_open_json if fm_open fm_json",
        "    use_backend app_open if fm_open",
        "    use_backend app_json if fm_json",
        "    default_backend app",
        "",
    ]
    lines += _backend(
        "app",
        "The app servers, ready unless in maintenance.",
        f"{status_path}{READY}",
        None,
        page,
        servers,
        names,
    )
    lines += _backend(
        "app_json",
        "The same servers, for JSON clients: the same checks, the JSON answer.",
        None,
        "app",
        problem,
        servers,
        names,
    )
    lines += _backend(
        "app_open",
        "The same servers for what the app lets through: checked only for being up.",
        f"{status_path}{LIVE}",
        None,
        page,
        servers,
        names,
    )
    lines += _backend(
        "app_open_json",
        "The same again, for JSON clients.",
        None,
        "app_open",
        problem,
        servers,
        names,
    )
    return "\n".join(lines).rstrip("\n") + "\n"


def _backend(
    name: str,
    comment: str,
    check: str | None,
    track: str | None,
    answer: str,
    servers: Sequence[Address],
    names: Sequence[str],
) -> list[str]:
    lines = [f"backend {name}", f"    # {comment}"]
    if check is not None:
        lines += [f"    option httpchk GET {check}", "    http-check expect status 200"]
    lines += [
        "    # A server that dies between two checks: the maintenance answer, not HAProxy's text.",
        *(f"    errorfile {status} {answer}" for status in (502, 503, 504)),
    ]
    for server, server_name in zip(servers, names, strict=True):
        health = "check" if track is None else f"track {track}/{server_name}"
        lines.append(f"    server {server_name} {server} {health}")
    return [*lines, ""]


def _literal(what: str, value: str) -> str:
    characters = "a quote, backslash, '$', '#' or whitespace"
    return literal(what, value, unsafe=_UNSAFE, characters=characters, reader="HAProxy")
