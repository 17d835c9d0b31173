"""The lock-file backend: the file's existence means maintenance is on."""

from __future__ import annotations

import errno
import fcntl
import os
import re
import stat
import time
from contextlib import contextmanager

from ..errors import BackendError
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

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Hashable, Iterator

#: How long an update waits for another one to finish before giving up.
LOCK_TIMEOUT = 10.0
#: The history file is moved to ``<lock file>.history.1`` (replacing the one before) at this size.
MAX_HISTORY_BYTES = 1024 * 1024
#: How many claimed names ``<lock file>.claims`` remembers (a few per window are made).
CLAIMS_KEPT = 64
_READ_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC
_APPEND_FLAGS = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
# A heartbeat's own temp file: never through a symlink, never blocking on a FIFO put there.
_WRITE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
# A document's temp file is new (never one that is there) and private until it is complete.
_TEMP_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
#: How many fresh random names a write tries before giving up (each collision is 1 in 2**64).
_TEMP_ATTEMPTS = 100


class FileBackend(Backend):
    """A lock file on the local disk, written atomically (temp file, fsync, rename).

    Failure policy: a path that exists but cannot be read as a regular file of at most
    :data:`MAX_DOCUMENT_BYTES` (a FIFO, a device, a directory, a socket, no permission, an I/O
    error, too large) reads as :class:`Damaged`, so that readers fail closed and stay in
    maintenance. Only a path where nothing at all exists means off. Nothing here blocks on what
    it finds at the path: it is opened with ``O_NONBLOCK`` and checked with ``fstat``.

    Updates hold an exclusive ``flock`` on ``<lock file>.flock`` for their read-modify-write.
    """

    def __init__(self, path: str | os.PathLike[str], *, create_directory: bool = False) -> None:
        """:param create_directory: create a missing parent folder on write (used for the
        default lock file in the app's instance folder, which Flask does not create)."""
        self.path = os.fspath(path)
        self.create_directory = create_directory

    def read(self) -> Raw:
        try:
            fd = os.open(self.path, _READ_FLAGS)
        except FileNotFoundError:
            # A dangling symlink is a lock someone meant to place: fail closed.
            return Damaged("a dangling symlink") if os.path.islink(self.path) else None
        except NotADirectoryError:
            return None  # a parent of the path is a file: no lock file can exist there
        except OSError as error:
            return Damaged(_reason(error))
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return Damaged("not a regular file")
            data = _read_up_to(fd, MAX_DOCUMENT_BYTES + 1)
        except OSError as error:
            return Damaged(_reason(error))
        finally:
            os.close(fd)
        if len(data) > MAX_DOCUMENT_BYTES:
            return Damaged(f"larger than {MAX_DOCUMENT_BYTES // 1024} KiB")
        return data

    def write(self, data: bytes) -> None:
        directory = self._directory(create=True)
        try:
            fd, temp_path = _create_temp(directory)
        except OSError as error:
            raise BackendError(f"cannot write the lock file in {directory}: {_reason(error)}") from error
        try:
            with os.fdopen(fd, "wb") as temp:
                temp.write(data)
                temp.flush()
                # On the descriptor, never by path: the temp file is private, the proxy and
                # other users need to read it, and a path could be swapped for a symlink meanwhile.
                os.fchmod(temp.fileno(), 0o644)
                os.fsync(temp.fileno())
            os.replace(temp_path, self.path)
        except OSError as error:
            _remove_quietly(temp_path)
            raise BackendError(f"cannot write the lock file {self.path}: {_reason(error)}") from error
        _sync_directory(directory)

    def clear(self) -> None:
        try:
            os.remove(self.path)
        except FileNotFoundError:
            pass
        except IsADirectoryError as error:
            raise BackendError(
                f"cannot remove the lock file {self.path}: it is a directory; remove it by hand"
            ) from error
        except OSError as error:
            raise BackendError(f"cannot remove the lock file {self.path}: {_reason(error)}") from error

    def update(self, change: Change) -> None:
        plan = self.sibling("plan")
        with self._exclusive():
            old = (self.read(), plan.read())
            new = change(*old)
            for backend, before, after in zip((self, plan), old, new, strict=True):
                if after == before or isinstance(after, Damaged):
                    continue
                if after is None:
                    backend.clear()
                else:
                    backend.write(after)

    def append_history(self, entry: bytes) -> None:
        """Append to ``<lock file>.history`` with one ``write`` on an ``O_APPEND`` descriptor:
        lines from several processes never interleave, and no lock is taken (a switch is not
        slowed down). At :data:`MAX_HISTORY_BYTES` the file is rotated, under the update lock."""
        if len(entry) > MAX_ENTRY_BYTES:
            raise BackendError(f"a history entry is larger than {MAX_ENTRY_BYTES // 1024} KiB")
        path = self._history_path()
        self._directory(create=True)
        for attempt in range(2):
            fd = self._open_history(path)
            try:
                if os.fstat(fd).st_size + len(entry) <= MAX_HISTORY_BYTES or attempt:
                    os.write(fd, entry)
                    return
            except OSError as error:
                raise BackendError(f"cannot write the history {path}: {_reason(error)}") from error
            finally:
                os.close(fd)
            self._rotate(path, len(entry))

    def read_history(self, limit: int) -> list[bytes]:
        path = self._history_path()
        lines = _tail_lines(f"{path}.1", limit) + _tail_lines(path, limit)
        return lines[-limit:] if limit > 0 else []

    def claim(self, name: str) -> bool:
        """Remember ``name`` in ``<lock file>.claims`` under the update lock; a damaged list
        is started again (the worst case is an announcement made twice, never one lost)."""
        import json  # only a running app claims: not the console scripts' imports

        claims = self.sibling("claims")
        with self._exclusive():
            raw = claims.read()
            try:
                names = json.loads(raw) if isinstance(raw, bytes) else []
            except ValueError:
                names = []
            if not isinstance(names, list):
                names = []
            if name in names:
                return False
            claims.write(json.dumps([*names[-(CLAIMS_KEPT - 1) :], name]).encode())
            return True

    def sibling(self, name: str) -> FileBackend:
        return FileBackend(f"{self.path}.{name}", create_directory=self.create_directory)

    def describe(self) -> str:
        return f"file {self.path}"

    def heartbeats(self) -> FileHeartbeats:
        return FileHeartbeats(self)

    def stamp(self) -> Hashable | None:
        try:
            info = os.stat(self.path)
        except FileNotFoundError:
            # Truly absent (off) is stable: no need to try opening it every interval. A
            # dangling symlink is left to read(), which fails closed.
            return None if os.path.islink(self.path) else ABSENT
        except OSError:
            return None  # unreadable: let read() decide what that means
        return (info.st_mode, info.st_ino, info.st_size, info.st_mtime_ns)

    def _directory(self, *, create: bool) -> str:
        directory = os.path.dirname(os.path.abspath(self.path))
        if create and self.create_directory:
            try:
                os.makedirs(directory, exist_ok=True)
            except OSError as error:
                raise BackendError(f"cannot create the folder {directory}: {_reason(error)}") from error
        return directory

    def _history_path(self) -> str:
        return f"{self.path}.history"

    def _open_history(self, path: str) -> int:
        try:
            fd = os.open(path, _APPEND_FLAGS, 0o644)
        except OSError as error:  # a FIFO without a reader (ENXIO), a symlink (ELOOP), ...
            raise BackendError(f"cannot write the history {path}: {_reason(error)}") from error
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise BackendError(f"cannot write the history {path}: not a regular file")
        return fd

    def _rotate(self, path: str, needed: int) -> None:
        """Move a full history aside; under the update lock, so that two writers finding it
        full at once rotate it once."""
        with self._exclusive():
            try:
                if os.lstat(path).st_size + needed > MAX_HISTORY_BYTES:
                    os.replace(path, f"{path}.1")
            except FileNotFoundError:
                pass
            except OSError as error:
                raise BackendError(f"cannot rotate the history {path}: {_reason(error)}") from error

    @contextmanager
    def _exclusive(self) -> Iterator[None]:
        """Hold the update lock: ``flock`` on ``<lock file>.flock``, waited for at most
        :data:`LOCK_TIMEOUT` seconds."""
        directory = self._directory(create=True)
        path = f"{self.path}.flock"
        try:
            # O_NOFOLLOW: another user's symlink at this path must not be opened (or created).
            fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_NOFOLLOW | _READ_FLAGS, 0o644)
        except OSError as error:
            raise BackendError(
                f"cannot write the lock file in {directory}: {_reason(error)} (opening {path})"
            ) from error
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise BackendError(f"cannot write the lock file: {path} is not a regular file")
            deadline = time.monotonic() + LOCK_TIMEOUT
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise BackendError(
                            f"another change to the maintenance state has held {path} for "
                            f"{LOCK_TIMEOUT:.0f} s; try again"
                        ) from None
                    time.sleep(0.01)
            yield
        finally:
            os.close(fd)  # releases the flock too


#: The stamp of a file that does not exist.
ABSENT = "absent"


class FileHeartbeats(Heartbeats):
    """One small file per process beside the lock file: ``<lock file>.worker.<host>.<pid>``.

    Written like the lock (temp file, ``os.replace``) but not synced to disk: a heartbeat lost
    to a power cut describes a process that is gone anyway. The age is the file's mtime against
    this host's clock. Read with the lock file's care: ``O_NOFOLLOW``, regular files only,
    bounded size; anything else at such a path is skipped.
    """

    def __init__(self, backend: FileBackend) -> None:
        self.directory = os.path.dirname(os.path.abspath(backend.path))
        self.prefix = f"{os.path.basename(backend.path)}.worker."

    def publish(self, name: str, record: bytes) -> bool:
        path = self._path(name)
        # Only this process writes this record: its temp name is fixed (mkstemp would cost more
        # than the rest of a heartbeat), hidden, and outside the records' prefix.
        temp_path = os.path.join(self.directory, f".heartbeat-{os.path.basename(path)}")
        try:
            fd = os.open(temp_path, _WRITE_FLAGS, 0o644)
        except FileNotFoundError:
            return False  # the instance folder before the first `on` (which creates it)
        except OSError as error:
            raise BackendError(f"cannot write a heartbeat in {self.directory}: {_reason(error)}") from error
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise BackendError(f"cannot write a heartbeat: {temp_path} is not a regular file")
            os.fchmod(fd, 0o644)  # on the descriptor: readable by the CLI of another user
            os.write(fd, record)
            os.replace(temp_path, path)
        except FileNotFoundError:
            _remove_quietly(temp_path)
            return False  # the folder was removed meanwhile: as if it never existed
        except OSError as error:
            _remove_quietly(temp_path)
            raise BackendError(f"cannot write the heartbeat {path}: {_reason(error)}") from error
        finally:
            os.close(fd)
        return True

    def remove(self, name: str) -> None:
        _remove_quietly(self._path(name))

    def read(self) -> list[tuple[str, bytes, float]]:
        try:
            entries = [
                entry.name for entry in os.scandir(self.directory) if entry.name.startswith(self.prefix)
            ]
        except OSError:
            return []  # no folder (yet): nobody has published
        records = []
        for entry in entries:
            try:
                fd = os.open(os.path.join(self.directory, entry), _READ_FLAGS | os.O_NOFOLLOW)
            except OSError:
                continue  # removed meanwhile, a symlink, or not ours to read
            try:
                info = os.fstat(fd)
                if stat.S_ISREG(info.st_mode):
                    data = _read_up_to(fd, MAX_HEARTBEAT_BYTES + 1)
                    if len(data) <= MAX_HEARTBEAT_BYTES:
                        records.append((entry[len(self.prefix) :], data, time.time() - info.st_mtime))
            except OSError:
                pass
            finally:
                os.close(fd)
        return records

    def _path(self, name: str) -> str:
        # A host name is ours to trust no more than any text: only what is safe in a file name.
        safe = re.sub(r"[^A-Za-z0-9._-]", ".", name.replace(":", "."))
        return os.path.join(self.directory, self.prefix + safe)


def _create_temp(directory: str) -> tuple[int, str]:
    """A new private file (mode 0600) with a random hidden name in ``directory``: its descriptor
    and path. What :func:`tempfile.mkstemp` does, without importing :mod:`tempfile` (and
    :mod:`random`, :mod:`shutil`) into a command that must start fast.

    :raises OSError: when it cannot be created (a name that exists is tried again).
    """
    for _ in range(_TEMP_ATTEMPTS):
        path = os.path.join(directory, f".maintenance-{os.getpid()}-{os.urandom(8).hex()}")
        try:
            return os.open(path, _TEMP_FLAGS, 0o600), path
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no unused name for a temporary file")


def _read_up_to(fd: int, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while size < limit:
        chunk = os.read(fd, limit - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _tail_lines(path: str, limit: int) -> list[bytes]:
    """The last ``limit`` complete lines of a history file, read from at most its last
    :data:`MAX_HISTORY_BYTES` (a file grown by hand is not read whole).

    :raises BackendError: when something other than a regular file is there, or it cannot be read.
    """
    try:
        fd = os.open(path, _READ_FLAGS | os.O_NOFOLLOW)
    except FileNotFoundError:
        return []
    except OSError as error:
        raise BackendError(f"cannot read the history {path}: {_reason(error)}") from error
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise BackendError(f"cannot read the history {path}: not a regular file")
        start = max(0, info.st_size - MAX_HISTORY_BYTES)
        os.lseek(fd, start, os.SEEK_SET)
        data = _read_up_to(fd, MAX_HISTORY_BYTES)
    except OSError as error:
        raise BackendError(f"cannot read the history {path}: {_reason(error)}") from error
    finally:
        os.close(fd)
    lines = data.split(b"\n")
    if start:
        lines = lines[1:]  # the first one began before what was read
    return [line for line in lines if line.strip()][-limit:] if limit > 0 else []


def _reason(error: OSError) -> str:
    if error.errno == errno.ELOOP:
        return "it is a symlink"
    return error.strerror or str(error)


def _sync_directory(directory: str) -> None:
    """Make the rename itself durable (a power loss after it must not bring the old state back)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems cannot sync a directory; the write itself is done
    finally:
        os.close(fd)


def _remove_quietly(path: str) -> None:
    try:
        os.remove(path)
    except OSError:
        pass
