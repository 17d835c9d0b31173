"""The Redis backend: one key shared by every server of a fleet."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..errors import BackendError, ConfigurationError
from .base import (
    MAX_DOCUMENT_BYTES,
    MAX_ENTRY_BYTES,
    MAX_HEARTBEAT_BYTES,
    Backend,
    Change,
    Damaged,
    Heartbeats,
    Raw,
)
from .urls import describe_url

#: Short on purpose: a slow Redis must not hold requests; the cache keeps the last state.
SOCKET_TIMEOUT = 0.25
DEFAULT_KEY = "flask-maintenance:state"
#: About this many entries are kept in the history stream (``XADD ... MAXLEN ~``).
HISTORY_LENGTH = 1000
#: How long a claimed name is remembered: longer than any window's announcements take.
CLAIM_SECONDS = 7 * 24 * 3600
#: An update retries this often when another writer changed a key under it, then gives up.
MAX_UPDATE_ATTEMPTS = 50
#: The heartbeats' hash disappears this long after the last one (every process is gone then).
HEARTBEATS_EXPIRE = 24 * 3600
# Stamps the record with the server's clock, so that the hosts' clocks never matter.
_PUBLISH = """
local now = redis.call('TIME')
local stamp = now[1] .. '.' .. string.format('%06d', tonumber(now[2]))
redis.call('HSET', KEYS[1], ARGV[1], stamp .. ' ' .. ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
"""


class RedisBackend(Backend):
    """The state stored under one Redis key (``SET`` is atomic, so no reader sees half of it).

    Reads check each key's type and length in the same round trip (``MULTI``: ``TYPE`` and a
    bounded ``GETRANGE``), so a hash, list or set at the key, or a huge value, reads as
    :class:`Damaged` and fails closed instead of reading as off. Updates use ``WATCH``/``MULTI``.

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
        self._watch_error: type[BaseException] = redis.WatchError
        self.key = key
        if isinstance(url_or_client, str):
            self._where = describe_url(url_or_client)
            try:
                self.client = redis.Redis.from_url(
                    url_or_client,
                    socket_timeout=SOCKET_TIMEOUT,
                    socket_connect_timeout=SOCKET_TIMEOUT,
                    health_check_interval=0,
                )
            except (ValueError, TypeError) as error:
                # The driver's message may quote the URL; ours never shows a password.
                raise ConfigurationError(
                    f"MAINTENANCE_BACKEND: invalid Redis URL {self._where}: {type(error).__name__}"
                ) from None
        else:
            self.client = url_or_client
            self._where = "redis (client given)"

    def read(self) -> Raw:
        return self.read_many([self])[0]

    def write(self, data: bytes) -> None:
        self._call("write", self.client.set, self.key, data)

    def clear(self) -> None:
        self._call("clear", self.client.delete, self.key)

    def read_many(self, backends: Sequence[Backend]) -> list[Raw]:
        if not all(isinstance(b, RedisBackend) and b.client is self.client for b in backends):
            return super().read_many(backends)
        keys = [b.key for b in backends]  # type: ignore[attr-defined]

        def read(pipe: Any) -> list[Raw]:
            for key in keys:
                pipe.type(key)
                pipe.getrange(key, 0, MAX_DOCUMENT_BYTES)  # one byte more than allowed
            # A GETRANGE of a hash fails (WRONGTYPE); its TYPE already says what it is.
            return _documents(pipe.execute(raise_on_error=False))

        return self._call("read", read, self.client.pipeline(transaction=True))  # type: ignore[no-any-return]

    def update(self, change: Change) -> None:
        plan_key = f"{self.key}:plan"

        def attempt(pipe: Any) -> bool:
            pipe.watch(self.key, plan_key)
            replies: list[Any] = []
            for key in (self.key, plan_key):  # immediate mode while watching
                kind = pipe.type(key)
                string = kind in (b"string", "string")
                replies += [kind, pipe.getrange(key, 0, MAX_DOCUMENT_BYTES) if string else b""]
            old = _documents(replies)
            new = change(old[0], old[1])
            pipe.multi()
            for key, before, after in zip((self.key, plan_key), old, new, strict=True):
                if after == before or isinstance(after, Damaged):
                    continue
                if after is None:
                    pipe.delete(key)
                else:
                    pipe.set(key, after)
            try:
                pipe.execute()
            except self._watch_error:
                return False
            return True

        for _ in range(MAX_UPDATE_ATTEMPTS):
            with self.client.pipeline(transaction=True) as pipe:
                if self._call("write", attempt, pipe):
                    return
        raise BackendError(
            f"cannot write the state in {self.describe()}: it kept changing under "
            f"{MAX_UPDATE_ATTEMPTS} attempts; try again"
        )

    def append_history(self, entry: bytes) -> None:
        """``XADD`` to the capped stream ``<key>:history``."""
        if len(entry) > MAX_ENTRY_BYTES:
            raise BackendError(f"a history entry is larger than {MAX_ENTRY_BYTES // 1024} KiB")
        key = f"{self.key}:history"
        self._call(
            "write the history of",
            lambda: self.client.xadd(key, {"entry": entry}, maxlen=HISTORY_LENGTH, approximate=True),
        )

    def read_history(self, limit: int) -> list[bytes]:
        if limit <= 0:
            return []
        key = f"{self.key}:history"
        replies = self._call("read the history of", lambda: self.client.xrevrange(key, count=limit))
        entries = []
        for _, fields in reversed(replies):
            value = fields.get(b"entry", fields.get("entry")) if isinstance(fields, dict) else None
            # A hand-made entry without the field reads as an empty (invalid) line.
            entries.append(value.encode() if isinstance(value, str) else bytes(value or b""))
        return entries

    def claim(self, name: str) -> bool:
        """``SET <key>:claim:<name> NX``: exactly one process of the fleet gets a yes."""
        key = f"{self.key}:claim:{name}"
        return bool(
            self._call(
                "claim an announcement for", lambda: self.client.set(key, b"1", ex=CLAIM_SECONDS, nx=True)
            )
        )

    def sibling(self, name: str) -> RedisBackend:
        twin = RedisBackend(self.client, key=f"{self.key}:{name}")
        twin._where = self._where
        return twin

    def describe(self) -> str:
        return f"{self._where} key {self.key}"

    def heartbeats(self) -> RedisHeartbeats:
        return RedisHeartbeats(self)

    def _call(self, action: str, method: Any, *args: Any) -> Any:
        try:
            return method(*args)
        except self._errors as error:
            raise BackendError(f"cannot {action} the state in {self.describe()}: {error}") from error


class RedisHeartbeats(Heartbeats):
    """One hash beside the state key, ``<key>:workers``: a field per process (``host:pid``).

    Each value is stamped with the Redis server's time when written (a short script), and ages
    are measured against the server's time when read, so that no host's clock matters.
    """

    def __init__(self, backend: RedisBackend) -> None:
        self.backend = backend
        self.key = f"{backend.key}:workers"

    def publish(self, name: str, record: bytes) -> bool:
        client = self.backend.client
        self.backend._call(
            "publish a heartbeat to", client.eval, _PUBLISH, 1, self.key, name, record, HEARTBEATS_EXPIRE
        )
        return True

    def remove(self, name: str) -> None:
        self.backend._call("remove a heartbeat from", self.backend.client.hdel, self.key, name)

    def read(self) -> list[tuple[str, bytes, float]]:
        def read(pipe: Any) -> list[Any]:
            pipe.time()
            pipe.hgetall(self.key)
            return pipe.execute()  # type: ignore[no-any-return]

        pipe = self.backend.client.pipeline(transaction=True)
        (seconds, microseconds), fields = self.backend._call("read the heartbeats in", read, pipe)
        now = seconds + microseconds / 1e6
        records = []
        for name, value in fields.items():
            value = value.encode() if isinstance(value, str) else bytes(value)
            stamp, _, record = value.partition(b" ")
            try:
                age = now - float(stamp)
            except ValueError:
                continue  # not written by us
            if len(record) <= MAX_HEARTBEAT_BYTES:
                records.append((name.decode() if isinstance(name, bytes) else str(name), record, age))
        return records


def _documents(replies: Sequence[Any]) -> list[Raw]:
    """Pairs of (``TYPE``, bounded ``GETRANGE``) replies as documents."""
    documents: list[Raw] = []
    for kind, value in zip(replies[::2], replies[1::2], strict=True):
        kind = kind.decode() if isinstance(kind, bytes) else str(kind)
        if kind == "none":
            documents.append(None)
        elif kind != "string":
            documents.append(Damaged(f"a Redis {kind}, not a string"))
        elif len(value) > MAX_DOCUMENT_BYTES:
            documents.append(Damaged(f"larger than {MAX_DOCUMENT_BYTES // 1024} KiB"))
        else:
            documents.append(value.encode() if isinstance(value, str) else bytes(value))
    return documents
