"""Who may pass while maintenance is on: IP ranges, the secret bypass cookie, app rules."""

from __future__ import annotations

import functools
import hashlib
import hmac
import ipaddress
import secrets
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from itsdangerous import BadSignature, URLSafeTimedSerializer

from .config import IPNetwork
from .values import Value, assign

if TYPE_CHECKING:
    from .model import State

# Longer than any token we issue; longer input is rejected before hashing.
MAX_TOKEN_LENGTH = 256
# Longer than any IPv6 address with a zone; a longer "address" (a forged header) never matches.
MAX_ADDRESS_LENGTH = 64


class BypassRule(Value):
    """An app's rule (``@m.bypass_rule``) and the cookie without which it can never pass."""

    __slots__ = _fields = ("check", "cookie")
    check: Callable[[], Any]
    cookie: str | None

    def __init__(self, check: Callable[[], Any], cookie: str | None = None) -> None:
        assign(self, "check", check)
        assign(self, "cookie", cookie)

    def may_pass(self, cookie_header: str) -> bool:
        """Whether a request with this ``Cookie`` header could pass (decidable without Flask)."""
        return self.cookie is None or self.cookie + "=" in cookie_header


def new_token() -> str:
    """A fresh bypass secret for ``flask maintenance on --secret``."""
    return secrets.token_urlsafe(24)


def hash_token(token: str) -> str:
    """What the state stores instead of the token itself."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def token_matches(token: str, state: State) -> bool:
    """Whether ``token`` is this window's secret, compared in constant time."""
    if not state.token_hash or not token or len(token) > MAX_TOKEN_LENGTH:
        return False
    # As bytes: compare_digest refuses str with non-ASCII characters, which a hand-edited lock
    # file may hold, with a TypeError.
    return hmac.compare_digest(hash_token(token).encode(), _utf8(state.token_hash))


class IPAllowlist:
    """Matches client addresses against ``MAINTENANCE_ALLOWED_IPS``, remembering recent answers.

    The memory is a ``functools.lru_cache``, which threads may share (a cachetools cache may
    not: it raises under concurrent eviction).
    """

    def __init__(self, networks: Sequence[IPNetwork]) -> None:
        self.networks = tuple(networks)
        self._allows = functools.lru_cache(maxsize=4096)(self._match)

    def allows(self, remote_addr: str | None) -> bool:
        """Whether the address is in one of the ranges; an unparsable address never is."""
        if not self.networks or not remote_addr or len(remote_addr) > MAX_ADDRESS_LENGTH:
            return False
        return self._allows(remote_addr)

    def _match(self, remote_addr: str) -> bool:
        try:
            address = ipaddress.ip_address(remote_addr.split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped
        return any(address in network for network in self.networks)


class BypassCookie:
    """The signed, expiring cookie a valid bypass link sets.

    It carries the window id, signed with a key made of the app's ``SECRET_KEY`` and the
    window's token hash: a cookie from an earlier window, or forged without both, never verifies.
    """

    salt = "flask-maintenance-bypass"

    def __init__(self, name: str, max_age: int) -> None:
        self.name = name
        self.max_age = max_age

    def value_for(self, state: State, secret_key: object) -> str:
        return self._serializer(state, secret_key).dumps(state.window or "")

    def is_valid(self, value: str | None, state: State, secret_key: object) -> bool:
        # Without SECRET_KEY the only key would be the token hash, readable in the lock file.
        if not value or not secret_key or not state.token_hash or len(value) > 4 * MAX_TOKEN_LENGTH:
            return False
        try:
            window = self._serializer(state, secret_key).loads(value, max_age=self.max_age)
        except BadSignature:  # also covers expired and malformed values
            return False
        return isinstance(window, str) and hmac.compare_digest(_utf8(window), _utf8(state.window or ""))

    def _serializer(self, state: State, secret_key: object) -> URLSafeTimedSerializer:
        return URLSafeTimedSerializer(f"{secret_key or ''}:{state.token_hash}", salt=self.salt)


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def safe_next(target: str | None) -> str:
    """A redirect target on this site: a local absolute path, else ``/`` (no open redirect)."""
    if (
        not target
        or not target.startswith("/")
        or target.startswith("//")
        or any(char in target for char in "\\\r\n\t\x00")
        or len(target) > 2048
    ):
        return "/"
    return target
