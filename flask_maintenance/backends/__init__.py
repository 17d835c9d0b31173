"""Where the maintenance state lives: one small interface, one module per backend."""

from __future__ import annotations

import os

from ..errors import ConfigurationError
from .base import Backend as Backend
from .base import Damaged as Damaged
from .base import Raw as Raw
from .file import FileBackend as FileBackend
from .urls import REDIS_SCHEMES, redact, scheme_of


def backend_from_url(
    url: str,
    *,
    lock_file: str | os.PathLike[str] | None = None,
    redis_key: str | None = None,
    create_directory: bool = False,
) -> Backend:
    """The backend ``MAINTENANCE_BACKEND`` names: ``"file"`` (the lock file) or a Redis URL.

    URL schemes are case-insensitive (RFC 3986); no message ever shows the URL's password.

    :raises ConfigurationError: for an unknown value, or when the redis extra is missing.
    """
    if url == "file":
        if not lock_file:
            raise ConfigurationError("the file backend needs a lock file path (MAINTENANCE_LOCK_FILE)")
        return FileBackend(lock_file, create_directory=create_directory)
    scheme = scheme_of(url)
    if scheme in REDIS_SCHEMES:
        from .redis import DEFAULT_KEY, RedisBackend

        rest = url.partition("://")[2]
        return RedisBackend(f"{scheme}://{rest}", key=redis_key or DEFAULT_KEY)
    raise ConfigurationError(
        f"MAINTENANCE_BACKEND must be 'file' or a redis://, rediss:// or unix:// URL, not {redact(url)!r}"
    )
