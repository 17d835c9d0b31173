"""The lock-file backend: the file's existence means maintenance is on."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Hashable

from ..errors import BackendError
from ..state import MAX_STATE_BYTES
from .base import Backend


class FileBackend(Backend):
    """A lock file on the local disk, written atomically (temp file, fsync, rename).

    Failure policy: a lock file that exists but cannot be read (permissions, a directory at
    that path, an I/O error) reads as ``b"\\x00"``, content no parser accepts, so that readers
    fail closed and stay in maintenance. Only a file that is truly absent means off.
    """

    def __init__(self, path: str | os.PathLike[str], *, create_directory: bool = False) -> None:
        """:param create_directory: create a missing parent folder on write (used for the
        default lock file in the app's instance folder, which Flask does not create)."""
        self.path = os.fspath(path)
        self.create_directory = create_directory

    def read(self) -> bytes | None:
        try:
            with open(self.path, "rb") as lock:
                return lock.read(MAX_STATE_BYTES + 1)
        except FileNotFoundError:
            # A dangling symlink is a lock someone meant to place: fail closed.
            return UNREADABLE if os.path.islink(self.path) else None
        except NotADirectoryError:
            # A parent of the path is a file: no lock file can exist there.
            return None
        except OSError:
            return UNREADABLE

    def write(self, data: bytes) -> None:
        directory = os.path.dirname(os.path.abspath(self.path))
        try:
            if self.create_directory:
                os.makedirs(directory, exist_ok=True)
            fd, temp_path = tempfile.mkstemp(prefix=".maintenance-", dir=directory)
        except OSError as error:
            raise BackendError(f"cannot write the lock file in {directory}: {_reason(error)}") from error
        try:
            with os.fdopen(fd, "wb") as temp:
                temp.write(data)
                temp.flush()
                os.fsync(temp.fileno())
            # mkstemp makes the file private; the proxy and other users need to read it.
            os.chmod(temp_path, 0o644)
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

    def sibling(self, name: str) -> FileBackend:
        return FileBackend(f"{self.path}.{name}", create_directory=self.create_directory)

    def describe(self) -> str:
        return f"file {self.path}"

    def stamp(self) -> Hashable | None:
        try:
            info = os.stat(self.path)
        except FileNotFoundError:
            # Truly absent (off) is stable: no need to try opening it every interval. A
            # dangling symlink is left to read(), which fails closed.
            return None if os.path.islink(self.path) else ABSENT
        except OSError:
            return None  # unreadable: let read() decide what that means
        return (info.st_ino, info.st_size, info.st_mtime_ns)


#: The stamp of a file that does not exist.
ABSENT = "absent"
#: What an unreadable lock file reads as: no parser accepts it, so readers fail closed.
UNREADABLE = b"\x00"


def _reason(error: OSError) -> str:
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
