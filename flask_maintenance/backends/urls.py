"""Backend URLs as operators may see them: never with a password."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

#: URL schemes the Redis backend understands.
REDIS_SCHEMES = ("redis", "rediss", "unix")


def redact(url: str) -> str:
    """``url`` with everything between its scheme and the last ``@`` (user, password) hidden."""
    if "@" not in url:
        return url
    head, _, where = url.rpartition("@")
    scheme, separator, _ = head.partition("://")
    return f"{scheme}{separator}***@{where}" if separator else f"***@{where}"


def scheme_of(url: str) -> str:
    """The URL's scheme, lower-cased (schemes are case-insensitive), or ``""``."""
    head, separator, _ = url.partition("://")
    return head.lower() if separator and re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*", head) else ""


def describe_url(url: str) -> str:
    """Where a Redis URL points, for logs and ``status``: never its password, never an error."""
    try:
        # Redacted first: a password holding '/' or '?' would otherwise be read as the path.
        parts = urlsplit(redact(url.strip()))
        scheme = parts.scheme.lower()
        if scheme == "unix":
            return f"redis unix:{parts.path}"
        host = parts.hostname or "localhost"
        port = parts.port or 6379
        database = parts.path.lstrip("/") or "0"
        return f"redis {scheme}://{host}:{port}/{database}"
    except ValueError:  # a port that is not a number, or out of range
        return f"redis {redact(url.strip())!r}"
