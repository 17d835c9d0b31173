"""Where the maintenance state lives: one small interface, one module per backend."""

from __future__ import annotations

import os

from ..errors import ConfigurationError
from .base import Backend as Backend
from .file import FileBackend as FileBackend

#: URL schemes the Redis backend understands.
REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


def backend_from_url(
    url: str,
    *,
    lock_file: str | os.PathLike[str] | None = None,
    redis_key: str | None = None,
    create_directory: bool = False,
) -> Backend:
    """The backend ``MAINTENANCE_BACKEND`` names: ``"file"`` (the lock file) or a Redis URL.

    :raises ConfigurationError: for an unknown value, or when the redis extra is missing.
    """
    if url == "file":
        if not lock_file:
            raise ConfigurationError("the file backend needs a lock file path")
        return FileBackend(lock_file, create_directory=create_directory)
    if url.startswith(REDIS_SCHEMES):
        from .redis import DEFAULT_KEY, RedisBackend

        return RedisBackend(url, key=redis_key or DEFAULT_KEY)
    raise ConfigurationError(
        f"MAINTENANCE_BACKEND must be 'file' or a redis://, rediss:// or unix:// URL, not {url!r}"
    )
