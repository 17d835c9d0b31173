"""The Redis backend: one key shared by every server of a fleet."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from ..errors import BackendError, ConfigurationError
from .base import Backend

#: Short on purpose: a slow Redis must not hold requests; the cache keeps the last state.
SOCKET_TIMEOUT = 0.25
DEFAULT_KEY = "flask-maintenance:state"


class RedisBackend(Backend):
    """The state stored under one Redis key (``SET`` is atomic, so no reader sees half of it).

    Failure policy: every driver error (unreachable, timeout, auth) is raised once as
    :class:`BackendError`; the per-process cache then keeps the last known state and warns once
    per interval, and the CLI reports it in one line.

    :param url_or_client: a ``redis://``, ``rediss://`` or ``unix://`` URL, or a ready client.
    :param key: the key that holds the state.
    """

    def __init__(self, url_or_client: Any, key: str = DEFAULT_KEY) -> None:
        try:
            import redis
        except ImportError:
            raise ConfigurationError(
                'the Redis backend needs the redis client: pip install "flask-maintenance-mode[redis]"'
            ) from None
        self._errors: tuple[type[BaseException], ...] = (redis.RedisError, OSError)
        self.key = key
        if isinstance(url_or_client, str):
            self._where = _describe_url(url_or_client)
            try:
                self.client = redis.Redis.from_url(
                    url_or_client,
                    socket_timeout=SOCKET_TIMEOUT,
                    socket_connect_timeout=SOCKET_TIMEOUT,
                    health_check_interval=0,
                )
            except ValueError as error:
                raise ConfigurationError(f"invalid Redis URL {self._where}: {error}") from None
        else:
            self.client = url_or_client
            self._where = "redis (client given)"

    def read(self) -> bytes | None:
        value: bytes | None = self._call("read", self.client.get, self.key)
        return value

    def write(self, data: bytes) -> None:
        self._call("write", self.client.set, self.key, data)

    def clear(self) -> None:
        self._call("clear", self.client.delete, self.key)

    def read_many(self, backends: Sequence[Backend]) -> list[bytes | None]:
        if not all(isinstance(b, RedisBackend) and b.client is self.client for b in backends):
            return super().read_many(backends)
        keys = [b.key for b in backends]  # type: ignore[attr-defined]
        values: list[bytes | None] = self._call("read", self.client.mget, keys)
        return values

    def sibling(self, name: str) -> RedisBackend:
        twin = RedisBackend(self.client, key=f"{self.key}:{name}")
        twin._where = self._where
        return twin

    def describe(self) -> str:
        return f"{self._where} key {self.key}"

    def _call(self, action: str, method: Any, *args: Any) -> Any:
        try:
            return method(*args)
        except self._errors as error:
            raise BackendError(f"cannot {action} the state in {self.describe()}: {error}") from error


def _describe_url(url: str) -> str:
    """The URL without its password, for logs and ``status``."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return f"redis unix:{parts.path}"
    host = parts.hostname or "localhost"
    port = parts.port or 6379
    database = parts.path.lstrip("/") or "0"
    return f"redis {parts.scheme}://{host}:{port}/{database}"
