"""The interface every state backend implements."""

from __future__ import annotations

import abc
from collections.abc import Hashable, Sequence


class Backend(abc.ABC):
    """Stores the raw state document; knows nothing about requests or parsing.

    ``read`` returns the stored bytes, or ``None`` when maintenance is off. Failures to reach
    the store raise :class:`~flask_maintenance.errors.BackendError`; each backend writes its
    own failure policy next to the code that applies it.
    """

    @abc.abstractmethod
    def read(self) -> bytes | None:
        """The stored state document, or ``None`` when there is none (maintenance off)."""

    @abc.abstractmethod
    def write(self, data: bytes) -> None:
        """Store ``data`` so that no reader ever sees part of it."""

    @abc.abstractmethod
    def clear(self) -> None:
        """Remove the state (maintenance off); clearing twice is not an error."""

    @abc.abstractmethod
    def sibling(self, name: str) -> Backend:
        """A second document kept beside this one (the plan: schedule and features)."""

    @abc.abstractmethod
    def describe(self) -> str:
        """Where the state lives, for operators (``status``); never for the public."""

    def read_many(self, backends: Sequence[Backend]) -> list[bytes | None]:
        """Read several documents (this one and its siblings) in as few round trips as possible."""
        return [backend.read() for backend in backends]

    def stamp(self) -> Hashable | None:
        """A cheap fingerprint that changes whenever the state may have changed.

        Backends that have one (the lock file's inode, size and mtime) let readers skip reading
        and parsing an unchanged state; ``None`` means "no cheap check: always read".
        """
        return None
