"""The interface every state backend implements."""

from __future__ import annotations

import abc
from collections.abc import Callable

from ..values import Value, assign

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Hashable, Sequence

#: No document is larger: a bigger one is damaged when read and refused when written.
MAX_DOCUMENT_BYTES = 64 * 1024
#: No history entry is larger: a longer line is refused when written and skipped when read.
MAX_ENTRY_BYTES = 16 * 1024
#: No heartbeat record is larger: a bigger one is skipped when read.
MAX_HEARTBEAT_BYTES = 4 * 1024


class Damaged(Value):
    """A document that exists but cannot be read as one (a FIFO, too large, the wrong Redis type).

    Readers fail closed on it; ``reason`` tells the operator what is wrong.
    """

    __slots__ = _fields = __match_args__ = ("reason",)
    reason: str

    def __init__(self, reason: str) -> None:
        assign(self, "reason", reason)


#: What reading a document gives: its bytes, :class:`Damaged`, or ``None`` when there is none.
Raw = bytes | Damaged | None
#: Computes the new (lock, plan) from the stored ones inside :meth:`Backend.update`.
Change = Callable[[Raw, Raw], tuple[Raw, Raw]]


class Backend(abc.ABC):
    """Stores raw documents; knows nothing about requests or parsing.

    Each backend holds the lock document and, through :meth:`sibling`, the plan beside it.
    Failures to reach the store raise :class:`~flask_maintenance.errors.BackendError`; each
    backend writes its own failure policy next to the code that applies it.
    """

    @abc.abstractmethod
    def read(self) -> Raw:
        """The stored document, ``None`` when there is none (off), :class:`Damaged` when it
        exists but cannot be read as a document of at most :data:`MAX_DOCUMENT_BYTES`."""

    @abc.abstractmethod
    def write(self, data: bytes) -> None:
        """Store ``data`` so that no reader ever sees part of it."""

    @abc.abstractmethod
    def clear(self) -> None:
        """Remove the document; clearing twice is not an error."""

    @abc.abstractmethod
    def update(self, change: Change) -> None:
        """Change this document and its ``plan`` sibling, atomically against every other update.

        ``change`` gets the stored (lock, plan) and returns the new pair; it may raise to abort.
        Only a document whose value changed is written (``None`` removes it, and a
        :class:`Damaged` value given back unchanged is left alone), so a change that changes
        nothing writes nothing.
        """

    @abc.abstractmethod
    def sibling(self, name: str) -> Backend:
        """A second document kept beside this one (the plan: schedule and features)."""

    @abc.abstractmethod
    def describe(self) -> str:
        """Where the state lives, for operators (``status``); never for the public."""

    def read_many(self, backends: Sequence[Backend]) -> list[Raw]:
        """Read several documents (this one and its siblings) in as few round trips as possible."""
        return [backend.read() for backend in backends]

    def append_history(self, entry: bytes) -> None:
        """Append one entry (a line of JSON, at most :data:`MAX_ENTRY_BYTES`) to the history kept
        beside the document. A backend that keeps no history ignores it.

        :raises BackendError: when it cannot be written (callers never let that fail a switch).
        """
        return None  # optional on purpose: a backend of an app's own may keep no history

    def read_history(self, limit: int) -> list[bytes]:
        """The last ``limit`` entries, oldest first, as stored (callers parse them tolerantly)."""
        return []

    def claim(self, name: str) -> bool:
        """Whether this call is the first, of every process sharing the backend, to claim ``name``.

        How a window that starts or ends by itself is announced once for the whole fleet. A
        backend that cannot tell says yes.
        """
        return True

    def heartbeats(self) -> Heartbeats | None:
        """Where the processes that enforce this state publish their heartbeats (see
        :mod:`flask_maintenance.workers`); ``None`` when this backend keeps none."""
        return None

    def stamp(self) -> Hashable | None:
        """A cheap fingerprint that changes whenever the document may have changed.

        Backends that have one (the lock file's inode, size and mtime) let readers skip reading
        and parsing an unchanged document; ``None`` means "no cheap check: always read".
        """
        return None


class Heartbeats(abc.ABC):
    """Small records, one per process, kept beside the state; each one replaced whole.

    Records are opaque bytes here: :mod:`flask_maintenance.workers` writes and parses them.
    """

    @abc.abstractmethod
    def publish(self, name: str, record: bytes) -> bool:
        """Store (or replace) the record of the process ``name`` (``host:pid``); return
        ``False`` when its place does not exist yet (the lock file's folder before the first
        ``on``), so that the process tries again soon."""

    @abc.abstractmethod
    def remove(self, name: str) -> None:
        """Remove the record of ``name``; removing one that is not there is not an error."""

    @abc.abstractmethod
    def read(self) -> list[tuple[str, bytes, float]]:
        """Every record as ``(name, record, age in seconds)``, the age measured by the store's
        own clock (the file's mtime, the Redis server's time), so that hosts' clocks do not
        matter. Records larger than :data:`MAX_HEARTBEAT_BYTES` are left out."""
