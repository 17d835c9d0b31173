"""Config keys, their defaults, and the validated settings the request path reads."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from flask import Flask

from .errors import ConfigurationError
from .state import BLOCKING_MODES, MAX_RETRY, MODES

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def defaults(app: Flask) -> dict[str, Any]:
    """Every config key with its default (documented in the README's configuration table)."""
    return {
        "MAINTENANCE_BACKEND": "file",
        "MAINTENANCE_LOCK_FILE": os.path.join(app.instance_path, "maintenance.lock"),
        "MAINTENANCE_REDIS_KEY": "flask-maintenance:state",
        "MAINTENANCE_RETRY_AFTER": 60,
        "MAINTENANCE_API_PREFIXES": ("/api",),
        "MAINTENANCE_ALLOWED_IPS": (),
        "MAINTENANCE_ALLOWED_PATHS": (),
        "MAINTENANCE_CHECK_INTERVAL": 1.0,
        "MAINTENANCE_STATUS_PATH": "/_maintenance",
        "MAINTENANCE_STATUS_CORS": (),
        "MAINTENANCE_TEMPLATE": None,
        "MAINTENANCE_BYPASS_COOKIE": "maintenance_bypass",
        "MAINTENANCE_BYPASS_MAX_AGE": 12 * 3600,
        "MAINTENANCE_FAST_PATH": True,
        "MAINTENANCE_CLI_EXEMPT": (),
        "MAINTENANCE_CLI_BLOCK_MODES": BLOCKING_MODES,
    }


@dataclass(frozen=True)
class Settings:
    """The validated config of one app, resolved once at ``init_app``."""

    backend: str
    lock_file: str
    redis_key: str
    retry_after: int
    api_prefixes: tuple[str, ...]
    allowed_networks: tuple[IPNetwork, ...]
    allowed_paths: tuple[str, ...]
    check_interval: float
    status_path: str
    status_cors: frozenset[str]
    template: str | None
    bypass_cookie: str
    bypass_max_age: int
    fast_path: bool
    cli_exempt: frozenset[str]
    cli_block_modes: frozenset[str]

    @classmethod
    def from_config(cls, config: Any) -> Settings:
        """Validate the ``MAINTENANCE_*`` keys.

        :raises ConfigurationError: naming the key whose value is wrong.
        """
        return cls(
            backend=_text(config, "MAINTENANCE_BACKEND"),
            lock_file=_text(config, "MAINTENANCE_LOCK_FILE"),
            redis_key=_text(config, "MAINTENANCE_REDIS_KEY"),
            retry_after=_seconds(config, "MAINTENANCE_RETRY_AFTER"),
            api_prefixes=_paths(config, "MAINTENANCE_API_PREFIXES"),
            allowed_networks=_networks(config, "MAINTENANCE_ALLOWED_IPS"),
            allowed_paths=_paths(config, "MAINTENANCE_ALLOWED_PATHS"),
            check_interval=_interval(config, "MAINTENANCE_CHECK_INTERVAL"),
            status_path=_status_path(config, "MAINTENANCE_STATUS_PATH"),
            status_cors=frozenset(_names(config, "MAINTENANCE_STATUS_CORS")),
            template=config["MAINTENANCE_TEMPLATE"] or None,
            bypass_cookie=_text(config, "MAINTENANCE_BYPASS_COOKIE"),
            bypass_max_age=_seconds(config, "MAINTENANCE_BYPASS_MAX_AGE"),
            fast_path=bool(config["MAINTENANCE_FAST_PATH"]),
            cli_exempt=frozenset(_names(config, "MAINTENANCE_CLI_EXEMPT")),
            cli_block_modes=frozenset(_modes(config, "MAINTENANCE_CLI_BLOCK_MODES")),
        )


def _names(config: Any, key: str) -> tuple[str, ...]:
    """A list of strings; a single comma-separated string is accepted (handy from env vars)."""
    value = config[key]
    if value is None:
        return ()
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, Iterable) or not all(isinstance(item, str) for item in value):
        raise ConfigurationError(f"{key} must be a list of strings, not {value!r}")
    return tuple(item.strip() for item in value if item.strip())


def _text(config: Any, key: str) -> str:
    value = config[key]
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str) or not value:
        raise ConfigurationError(f"{key} must be a non-empty string, not {value!r}")
    return value


def _seconds(config: Any, key: str) -> int:
    value = config[key]
    if isinstance(value, str) and value.strip().isdecimal():  # isdigit() accepts "²", int() not
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_RETRY:
        raise ConfigurationError(
            f"{key} must be a whole number of seconds from 0 to {MAX_RETRY}, not {value!r}"
        )
    return value


def _interval(config: Any, key: str) -> float:
    value = config[key]
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise ConfigurationError(f"{key} must be a number of seconds, not {value!r}") from None
    if isinstance(value, bool) or not 0 <= seconds <= 3600:
        raise ConfigurationError(f"{key} must be between 0 and 3600 seconds, not {value!r}")
    return seconds


def _paths(config: Any, key: str) -> tuple[str, ...]:
    paths = _names(config, key)
    for path in paths:
        if not path.startswith("/"):
            raise ConfigurationError(f"{key}: path prefix {path!r} must start with '/'")
    return paths


def _status_path(config: Any, key: str) -> str:
    path = _text(config, key).rstrip("/")
    if not path.startswith("/") or len(path) < 2:
        raise ConfigurationError(f"{key} must be a path such as '/_maintenance', not {config[key]!r}")
    return path


def _networks(config: Any, key: str) -> tuple[IPNetwork, ...]:
    networks = []
    for entry in _names(config, key):
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise ConfigurationError(
                f"{key}: {entry!r} is not an IP address or CIDR range such as 10.0.0.0/8"
            ) from None
    return tuple(networks)


def _modes(config: Any, key: str) -> tuple[str, ...]:
    modes = _names(config, key)
    for mode in modes:
        if mode not in MODES:
            raise ConfigurationError(f"{key}: unknown mode {mode!r}; choose from {', '.join(MODES)}")
    return modes
