"""Config keys: each one's default, what it accepts and what it means, in one table.

:data:`KEYS` is the single source: ``init_app`` sets the defaults and validates with it, and the
documentation's configuration table is generated from it, so the two cannot drift apart.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

from flask import Flask

from . import rules
from .answer import MARKER_HEADER
from .errors import ConfigurationError
from .values import Value, assign

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class Key(Value):
    """One ``MAINTENANCE_*`` config key."""

    __slots__ = _fields = ("name", "field", "default", "parse", "accepts", "doc", "shown_default")
    #: The config key.
    name: str
    #: The :class:`Settings` field it fills.
    field: str
    #: Its default: a value, or a function of the app for defaults that depend on it.
    default: Any
    #: Validates a configured value (``key.parse(value, key.name)``) into what the field holds.
    parse: Callable[[Any, str], Any]
    #: What it accepts, in a few words (for the docs).
    accepts: str
    #: What it means (for the docs; reStructuredText).
    doc: str
    #: The default as the docs show it, when it is not a plain value.
    shown_default: str | None

    def __init__(
        self,
        name: str,
        field: str,
        default: Any,
        parse: Callable[[Any, str], Any],
        accepts: str,
        doc: str,
        shown_default: str | None = None,
    ) -> None:
        assign(self, "name", name)
        assign(self, "field", field)
        assign(self, "default", default)
        assign(self, "parse", parse)
        assign(self, "accepts", accepts)
        assign(self, "doc", doc)
        assign(self, "shown_default", shown_default)

    def default_for(self, app: Flask) -> Any:
        return self.default(app) if callable(self.default) else self.default


def _names(value: Any, key: str) -> tuple[str, ...]:
    """A list of strings; a single comma-separated string is accepted (handy from env vars)."""
    if value is None:
        return ()
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, Iterable) or not all(isinstance(item, str) for item in value):
        raise ConfigurationError(f"{key} must be a list of strings, not {value!r}")
    return tuple(item.strip() for item in value if item.strip())


def _text(value: Any, key: str) -> str:
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str) or not value.strip():
        raise ConfigurationError(f"{key} must be a non-empty string, not {value!r}")
    return value


def _absolute_path(value: Any, key: str) -> str:
    path = _text(value, key)
    if not os.path.isabs(path):
        raise ConfigurationError(
            f"{key} must be an absolute path (the app, the CLI and cron run in different folders), "
            f"not {path!r}"
        )
    return path


def _optional_text(value: Any, key: str) -> str | None:
    return None if value is None or value == "" else _text(value, key)


def _flag(value: Any, key: str) -> bool:
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in {"1", "true", "yes", "on"}:
            return True
        if lowered in {"0", "false", "no", "off", ""}:
            return False
    if isinstance(value, bool | int) and value in (0, 1):
        return bool(value)
    raise ConfigurationError(f"{key} must be True or False, not {value!r}")


def _interval(value: Any, key: str) -> float:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise ConfigurationError(f"{key} must be a number of seconds, not {value!r}") from None
    if isinstance(value, bool) or not 0 <= seconds <= 3600:
        raise ConfigurationError(f"{key} must be between 0 and 3600 seconds, not {value!r}")
    return seconds


def _paths(value: Any, key: str) -> tuple[str, ...]:
    paths = _names(value, key)
    for path in paths:
        if not path.startswith("/"):
            raise ConfigurationError(f"{key}: path prefix {path!r} must start with '/'")
    return paths


def _status_path(value: Any, key: str) -> str:
    path = _text(value, key).rstrip("/")
    if not path.startswith("/") or len(path) < 2:
        raise ConfigurationError(f"{key} must be a path such as '/_maintenance', not {value!r}")
    return path


#: At most this many recovery checks: the page sends them all at once, every few seconds.
MAX_RECOVERY_CHECKS = 8
_SAME_SITE_PATH = re.compile(r"/(?!/)[!#-~]{0,511}")


def _recovery_checks(value: Any, key: str) -> tuple[str, ...]:
    checks = _names(value, key)
    if len(checks) > MAX_RECOVERY_CHECKS:
        raise ConfigurationError(f"{key} takes at most {MAX_RECOVERY_CHECKS} URLs, not {len(checks)}")
    for check in checks:
        # A path on this site only: the page's Content-Security-Policy allows nothing else, and
        # printable ASCII without spaces or quotes so it travels in one HTML attribute.
        if not _SAME_SITE_PATH.fullmatch(check) or "\\" in check:
            raise ConfigurationError(
                f"{key}: {check!r} must be a path on this site, such as '/healthz' (no host, "
                "spaces or backslashes, at most 512 characters)"
            )
    return checks


def _networks(value: Any, key: str) -> tuple[IPNetwork, ...]:
    networks = []
    for entry in _names(value, key):
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise ConfigurationError(
                f"{key}: {entry!r} is not an IP address or CIDR range such as 10.0.0.0/8"
            ) from None
    return tuple(networks)


# Headers every maintenance answer sets itself: configuring them would contradict the answer.
_OWN_HEADERS = frozenset(
    {"content-type", "content-length", "retry-after", "cache-control", MARKER_HEADER.lower()}
)
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def _headers(value: Any, key: str) -> Mapping[str, str]:
    if value is None:
        return MappingProxyType({})
    if not isinstance(value, Mapping):
        raise ConfigurationError(f"{key} must be a dict of header names to values, not {value!r}")
    headers = {}
    for name, text in value.items():
        if not isinstance(name, str) or not _HEADER_NAME.fullmatch(name):
            raise ConfigurationError(f"{key}: {name!r} is not a header name")
        if name.lower() in _OWN_HEADERS:
            raise ConfigurationError(f"{key}: {name} is set by the maintenance answer itself")
        if not isinstance(text, str) or any(char in text for char in "\r\n\x00") or not _latin1(text):
            raise ConfigurationError(
                f"{key}: the value of {name} must be one line of Latin-1 text (what HTTP headers "
                f"carry), not {text!r}"
            )
        headers[name] = text
    return MappingProxyType(headers)


def _latin1(text: str) -> bool:
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return True


def _site_name(value: Any, key: str) -> str | None:
    name = _optional_text(value, key)
    if name is not None and (len(name) > 100 or not name.isprintable()):
        raise ConfigurationError(f"{key} must be one line of at most 100 characters, not {value!r}")
    return None if name is None else name.strip()


def _web_address(value: Any, key: str) -> str | None:
    address = _optional_text(value, key)
    if address is None:
        return None
    parts = urlsplit(address)
    if (
        parts.scheme not in ("http", "https")
        or not parts.netloc
        or len(address) > 2000
        or not address.isascii()
        or any(char in address for char in ' "<>\\`')
        or not address.isprintable()
    ):
        raise ConfigurationError(
            f"{key} must be an http:// or https:// address such as https://status.example.com, not {value!r}"
        )
    return address


def _protection(value: Any, key: str) -> bool | str:
    if isinstance(value, str) and value.strip().lower() == "log":
        return "log"
    try:
        return _flag(value, key)
    except ConfigurationError:
        raise ConfigurationError(f'{key} must be True, False or "log", not {value!r}') from None


def _webhooks(value: Any, key: str) -> tuple[str, ...]:
    urls = _names(value, key)
    for url in urls:
        try:
            parts = urlsplit(url)
            # .port raises for a port out of range (urlopen would refuse it at every delivery),
            # urlsplit for an unclosed "[" of an IPv6 address.
            valid = parts.port is None or parts.port > 0
        except ValueError:
            valid = False
        if (
            not valid
            or parts.scheme not in ("http", "https")
            or not parts.hostname
            or any(c in url for c in " \r\n\t")
        ):
            raise ConfigurationError(f"{key}: {url!r} is not an http:// or https:// URL")
    return urls


def _header_name(value: Any, key: str) -> str:
    name = _text(value, key)
    if not _HEADER_NAME.fullmatch(name):
        raise ConfigurationError(f"{key}: {name!r} is not a header name")
    return name


def _modes(value: Any, key: str) -> frozenset[str]:
    return frozenset(rules.mode(mode, f"{key}: each mode") for mode in _names(value, key))


def _name_set(value: Any, key: str) -> frozenset[str]:
    return frozenset(_names(value, key))


def _default_lock_file(app: Flask) -> str:
    return os.path.join(app.instance_path, "maintenance.lock")


KEYS: tuple[Key, ...] = (
    Key(
        "MAINTENANCE_BACKEND",
        "backend",
        "file",
        _text,
        '``"file"`` or a ``redis://``, ``rediss://`` or ``unix://`` URL',
        "Where the state lives: the lock file below, or Redis for several servers sharing one "
        'switch (``pip install "flask-maintenance-mode[redis]"``).',
    ),
    Key(
        "MAINTENANCE_LOCK_FILE",
        "lock_file",
        _default_lock_file,
        _absolute_path,
        "an absolute path",
        "The lock file of the file backend: while it exists, maintenance is on. Every process "
        "(web workers, the CLI, cron) must see the same path. Its folder is created on ``on`` "
        "only when it is the app's instance folder.",
        shown_default="``<instance folder>/maintenance.lock``",
    ),
    Key(
        "MAINTENANCE_REDIS_KEY",
        "redis_key",
        "flask-maintenance:state",
        _text,
        "a non-empty string",
        "The Redis key of the state (the plan is kept in ``<key>:plan``).",
    ),
    Key(
        "MAINTENANCE_RETRY_AFTER",
        "retry_after",
        60,
        rules.seconds,
        f"0 to {rules.MAX_SECONDS} seconds, or ``90s``, ``5m``, ``1h``",
        "``Retry-After`` when ``on`` is given no ``--retry``, for a lock file without one "
        "(``touch``), and once an expected end has passed.",
    ),
    Key(
        "MAINTENANCE_API_PREFIXES",
        "api_prefixes",
        ("/api",),
        _paths,
        "path prefixes",
        "Paths that always get ``application/problem+json`` instead of the HTML page.",
    ),
    Key(
        "MAINTENANCE_ALLOWED_IPS",
        "allowed_networks",
        (),
        _networks,
        "IP addresses and CIDR ranges",
        "Addresses that pass maintenance, matched against ``request.remote_addr`` (behind a "
        "proxy, install :class:`~werkzeug.middleware.proxy_fix.ProxyFix`).",
    ),
    Key(
        "MAINTENANCE_ALLOWED_PATHS",
        "allowed_paths",
        (),
        _paths,
        "path prefixes",
        "Paths that are always served, in every mode (health checks, payment webhooks).",
    ),
    Key(
        "MAINTENANCE_CHECK_INTERVAL",
        "check_interval",
        1.0,
        _interval,
        "0 to 3600 seconds",
        "How long each process keeps one reading of the state; ``0`` reads it on every request.",
    ),
    Key(
        "MAINTENANCE_STATUS_PATH",
        "status_path",
        "/_maintenance",
        _status_path,
        "a path",
        "The public JSON status, always served; the page polls it and the bypass link lives "
        "under it (``<path>/bypass/<token>``).",
    ),
    Key(
        "MAINTENANCE_RECOVERY_CHECKS",
        "recovery_checks",
        (),
        _recovery_checks,
        f"up to {MAX_RECOVERY_CHECKS} paths on the site",
        "URLs such as ``/healthz`` or ``/api/healthz`` that must all answer 2xx, besides the status "
        "path saying maintenance is over, before the page reloads itself. The page asks them all at "
        "once, and reloads with a cache-busting ``v=<timestamp>`` parameter. They are paths on the "
        "site, not under the app's prefix. The static pages of ``render-page``, ``nginx-config`` and "
        "``haproxy-config`` check them too.",
        shown_default="none: the status path only",
    ),
    Key(
        "MAINTENANCE_STATUS_CORS",
        "status_cors",
        (),
        _name_set,
        'origins, or ``"*"``',
        "Origins that may read the status path from another site.",
    ),
    Key(
        "MAINTENANCE_TEMPLATE",
        "template",
        None,
        _optional_text,
        "a template name, or ``None``",
        "A Jinja template that replaces the built-in page. It gets ``maintenance`` (the state), "
        "``feature``, ``retry_after``, ``readonly`` and ``language`` (the visitor's, among the "
        "built-in page's), and none of the app's context processors "
        "(they may need the database); if it fails, the built-in page is sent.",
    ),
    Key(
        "MAINTENANCE_RESPONSE_HEADERS",
        "response_headers",
        {},
        _headers,
        "a dict of header names to values",
        "Extra headers on every maintenance answer, from the fast path and the app alike "
        "(``Strict-Transport-Security``, say). The answer's own ``Content-Type``, "
        "``Retry-After``, ``Cache-Control`` and ``X-Maintenance`` cannot be replaced.",
        shown_default="``{}``",
    ),
    Key(
        "MAINTENANCE_BYPASS_COOKIE",
        "bypass_cookie",
        "maintenance_bypass",
        _text,
        "a cookie name",
        "The cookie the secret bypass link sets.",
    ),
    Key(
        "MAINTENANCE_BYPASS_MAX_AGE",
        "bypass_max_age",
        12 * 3600,
        rules.seconds,
        f"0 to {rules.MAX_SECONDS} seconds, or ``90s``, ``5m``, ``1h``",
        "How long that cookie lasts (also checked in its signature).",
    ),
    Key(
        "MAINTENANCE_FAST_PATH",
        "fast_path",
        True,
        _flag,
        "``True`` or ``False``",
        "Refuse what can be decided without Flask in a WSGI layer, before Flask's request cycle "
        "(see :doc:`performance`). ``False`` leaves every request to the hook.",
    ),
    Key(
        "MAINTENANCE_CLI_EXEMPT",
        "cli_exempt",
        (),
        _name_set,
        'command names or paths such as ``"db upgrade"``',
        "The app's commands that keep running during maintenance.",
    ),
    Key(
        "MAINTENANCE_CLI_BLOCK_MODES",
        "cli_block_modes",
        rules.BLOCKING_MODES,
        _modes,
        "modes",
        "The modes in which the app's commands, guarded functions, cron lines and task queue "
        "workers stop (``banner`` never blocks).",
    ),
    Key(
        "MAINTENANCE_CELERY_EXEMPT",
        "celery_exempt",
        (),
        _name_set,
        "task names or queue names",
        "Celery tasks that run during maintenance; a queue's name exempts every task on it, and "
        "paused workers keep consuming that queue (see :doc:`background`).",
    ),
    Key(
        "MAINTENANCE_RQ_EXEMPT_QUEUES",
        "rq_exempt_queues",
        (),
        _name_set,
        "queue names",
        "RQ queues that :class:`~flask_maintenance.rq.MaintenanceWorker` keeps working on during "
        "maintenance.",
    ),
    Key(
        "MAINTENANCE_SITE_NAME",
        "site_name",
        None,
        _site_name,
        "one line of text, or ``None``",
        "The site's name, shown above the built-in page's heading and in its title.",
    ),
    Key(
        "MAINTENANCE_STATUS_PAGE_URL",
        "status_page_url",
        None,
        _web_address,
        "an ``http(s)://`` address, or ``None``",
        'A status page where people follow the work: the built-in page links to it ("Follow '
        "updates\", in the visitor's language) and the problem JSON names it as ``status_page_url``.",
    ),
    Key(
        "MAINTENANCE_SERVE_ROBOTS_TXT",
        "serve_robots_txt",
        True,
        _flag,
        "``True`` or ``False``",
        "Serve the app's ``/robots.txt`` in every mode: search engines that get a 5xx for it "
        "stop crawling the whole site.",
    ),
    Key(
        "MAINTENANCE_PROTECT_DATABASE",
        "protect_database",
        False,
        _protection,
        '``True``, ``False`` or ``"log"``',
        "``True``: while maintenance is on in ``readonly`` or ``full``, the app's Flask-SQLAlchemy "
        'database is read-only at the database (see :doc:`database`). ``"log"``: a dry run that '
        "lets writes through and logs each one, for ``flask maintenance report-writes``.",
    ),
    Key(
        "MAINTENANCE_WEBHOOKS",
        "webhooks",
        (),
        _webhooks,
        "``http(s)://`` URLs",
        "Each transition is POSTed to these as JSON (``event``, the public ``status`` and a "
        "``text`` for chat services), from the process that made it, in the background "
        "(see :doc:`notifications`).",
    ),
    Key(
        "MAINTENANCE_BYPASS_HEADER",
        "bypass_header",
        "X-Maintenance-Bypass",
        _header_name,
        "a header name",
        "Requests carrying the window's bypass secret in this header pass (a deploy's verify "
        "step: ``flask maintenance run --secret``).",
    ),
)


def defaults(app: Flask) -> dict[str, Any]:
    """Every config key with its default for ``app``."""
    return {key.name: key.default_for(app) for key in KEYS}


class Settings(Value):
    """The validated config of one app, resolved once at ``init_app``."""

    # The fields are the keys' (KEYS is the single source), each annotated below for the types.
    __slots__ = _fields = tuple(key.field for key in KEYS)
    backend: str
    lock_file: str
    redis_key: str
    retry_after: int
    api_prefixes: tuple[str, ...]
    allowed_networks: tuple[IPNetwork, ...]
    allowed_paths: tuple[str, ...]
    check_interval: float
    status_path: str
    recovery_checks: tuple[str, ...]
    status_cors: frozenset[str]
    template: str | None
    response_headers: Mapping[str, str]
    bypass_cookie: str
    bypass_max_age: int
    fast_path: bool
    cli_exempt: frozenset[str]
    cli_block_modes: frozenset[str]
    site_name: str | None
    status_page_url: str | None
    serve_robots_txt: bool
    celery_exempt: frozenset[str]
    rq_exempt_queues: frozenset[str]
    protect_database: bool | str
    webhooks: tuple[str, ...]
    bypass_header: str

    def __init__(self, **values: Any) -> None:
        """Every field by keyword (see :meth:`from_config`)."""
        if values.keys() != set(self._fields):
            missing, unknown = set(self._fields) - values.keys(), values.keys() - set(self._fields)
            raise TypeError(
                f"Settings() needs every field: missing {sorted(missing)}, unknown {sorted(unknown)}"
            )
        for name, value in values.items():
            assign(self, name, value)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Settings:
        """Validate the ``MAINTENANCE_*`` keys.

        :raises ConfigurationError: naming the key whose value is wrong.
        """
        return cls(**{key.field: key.parse(config[key.name], key.name) for key in KEYS})
