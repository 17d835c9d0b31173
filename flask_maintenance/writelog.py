"""The dry run of database protection: which writes would have been refused, and where from.

With ``MAINTENANCE_PROTECT_DATABASE = "log"`` writes go through while maintenance is on, but each
one is logged once per call site (statement kind, table, the view or command, the line of the
app's code) and kept in a small document beside the state, which ``flask maintenance
report-writes`` prints: a team finds its hidden writes before the window, not during it.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import threading
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace
from types import FrameType

from . import times
from .backends import Backend, Damaged, Raw
from .errors import BackendError

logger = logging.getLogger("flask_maintenance")

#: The backend document (beside the lock) that keeps the writes seen.
DOCUMENT = "writes"
#: At most this many different writes are kept; later ones are only logged.
MAX_WRITES = 200
#: Statements whose first keyword is one of these change the database.
WRITE_KINDS = frozenset(
    {
        "INSERT",
        "UPDATE",
        "DELETE",
        "MERGE",
        "REPLACE",
        "UPSERT",
        "CREATE",
        "ALTER",
        "DROP",
        "TRUNCATE",
        "RENAME",
        "GRANT",
        "REVOKE",
        "COMMENT",
    }
)
# Words between the kind and the name of what it changes (INSERT OR IGNORE INTO t, CREATE
# UNIQUE INDEX IF NOT EXISTS i, DELETE FROM ONLY t, ...).
_FILLERS = frozenset(
    {
        "OR",
        "IGNORE",
        "REPLACE",
        "ROLLBACK",
        "ABORT",
        "FAIL",
        "INTO",
        "FROM",
        "ONLY",
        "TABLE",
        "INDEX",
        "VIEW",
        "UNIQUE",
        "TEMP",
        "TEMPORARY",
        "IF",
        "NOT",
        "EXISTS",
        "LOW_PRIORITY",
        "DELAYED",
        "HIGH_PRIORITY",
        "QUICK",
        "CONCURRENTLY",
        "MATERIALIZED",
        "SEQUENCE",
        "SCHEMA",
        "TYPE",
        "TRIGGER",
        "FUNCTION",
        "ON",
    }
)
# Only the head of a statement is read: a bulk INSERT may be megabytes long.
_HEAD = 2000
_COMMENTS = re.compile(r"\s*(?:--[^\n]*(?:\n|$)|/\*.*?\*/)", re.DOTALL)
_TOKEN = re.compile(r'"(?:[^"]|"")*"|`[^`]*`|\[[^\]]*\]|[\w.$]+|\S')
# Our own and the database layers' frames are not the call site (nor contextlib's, between a
# `with` block of the app and the library's context manager that commits on exit).
_LIBRARIES = ("sqlalchemy.", "flask_sqlalchemy.", "flask_maintenance.", "contextlib.")
_MAX_FRAMES = 200
_FIELD_LENGTH = 300


def describe_statement(statement: str) -> tuple[str, str] | None:
    """``(kind, table)`` of a statement that writes (``table`` may be ``"?"``); ``None`` for a read.

    >>> describe_statement('INSERT INTO "visits" (page) VALUES (?)')
    ('INSERT', 'visits')
    """
    head = statement[:_HEAD]
    position = 0
    while True:  # skip leading comments
        comment = _COMMENTS.match(head, position)
        if comment is None:
            break
        position = comment.end()
    tokens = _TOKEN.findall(head, position)
    words = [token.upper() for token in tokens]
    if not words:
        return None
    kind, start = words[0], 1
    if kind == "WITH":  # a CTE: the statement is what follows it
        for index, word in enumerate(words[1:], 1):
            if word in ("INSERT", "UPDATE", "DELETE", "MERGE") and words[index - 1] != "FOR":
                kind, start = word, index + 1
                break
    if kind not in WRITE_KINDS:
        return None
    for token, word in zip(tokens[start:], words[start:], strict=True):
        if word not in _FILLERS:
            return kind, _name(token)
    return kind, "?"


def _name(token: str) -> str:
    """A table's name as written, without its quotes; ``?`` for what is not a name."""
    if token[0] in '"`[':
        token = token[1:-1]
    elif not (token[0].isalnum() or token[0] == "_"):
        return "?"
    return "".join(char if char.isprintable() else "?" for char in token[:_FIELD_LENGTH]) or "?"


def call_site() -> str:
    """``path:line`` of the innermost frame of the app's own code (not SQLAlchemy's, nor ours)."""
    frame: FrameType | None = sys._getframe(1)
    for _ in range(_MAX_FRAMES):
        if frame is None:
            break
        module = frame.f_globals.get("__name__", "")
        if not isinstance(module, str) or not (module + ".").startswith(_LIBRARIES):
            return f"{frame.f_code.co_filename}:{frame.f_lineno}"
        frame = frame.f_back
    return "?"


@dataclass(frozen=True)
class SeenWrite:
    """One write let through by the dry run, as ``report-writes`` shows it."""

    #: The statement's first keyword: ``INSERT``, ``UPDATE``, ``DELETE``, ``CREATE``, ...
    kind: str
    #: The table (or other object) it changes, ``?`` when it cannot be told.
    table: str
    #: ``view index``, ``command "flask cleanup"`` or ``code outside requests and commands``.
    source: str
    #: ``path:line`` in the app's code.
    site: str
    #: The mode maintenance was on in.
    mode: str
    #: When this process first saw it (ISO 8601, UTC).
    seen_at: str = ""

    def key(self) -> tuple[str, str, str, str]:
        return (self.kind, self.table, self.source, self.site)


_FIELDS = tuple(SeenWrite.__dataclass_fields__)


class WriteLog:
    """Logs each write seen during maintenance once per (kind, table, source, call site), and
    keeps it in the backend document :data:`DOCUMENT` for ``report-writes``.

    Failure policy: the dry run must never fail the write it watches, so a backend that cannot
    be written is logged beside the write, which goes through all the same.
    """

    def __init__(self) -> None:
        self._seen: set[tuple[str, str, str, str]] = set()
        self._lock = threading.Lock()

    def saw(self, write: SeenWrite, backend: Backend) -> None:
        key = write.key()
        if key in self._seen:
            return
        with self._lock:
            if key in self._seen or len(self._seen) >= MAX_WRITES:
                return
            self._seen.add(key)
        logger.warning(
            "%s on %s from %s at %s while maintenance is on (mode %s): let through because "
            'MAINTENANCE_PROTECT_DATABASE = "log"; it will be refused when protection is on',
            write.kind,
            write.table,
            write.source,
            write.site,
            write.mode,
        )
        stamped = replace(write, seen_at=times.format_instant(times.utcnow()))
        try:
            record(backend, [stamped])
        except BackendError as error:
            logger.warning("cannot keep the write for report-writes: %s", error)


def _bounded(text: str) -> str:
    return "".join(char if char.isprintable() else "?" for char in text[:_FIELD_LENGTH])


def parse(raw: Raw) -> list[SeenWrite]:
    """The writes kept in the document; a damaged document counts as none (it is only a report)."""
    if raw is None or isinstance(raw, Damaged):
        return []
    try:
        entries = json.loads(raw)["writes"]
    except (ValueError, TypeError, KeyError, RecursionError):  # deep nesting fits in 64 KiB
        return []
    if not isinstance(entries, list):
        return []
    writes = []
    for entry in entries[:MAX_WRITES]:
        if isinstance(entry, dict) and all(name in entry for name in _FIELDS):
            writes.append(SeenWrite(**{name: _bounded(str(entry[name])) for name in _FIELDS}))
    return writes


def serialise(writes: Iterable[SeenWrite]) -> bytes:
    return json.dumps({"writes": [asdict(write) for write in writes]}, sort_keys=True).encode()


def record(backend: Backend, new: list[SeenWrite]) -> None:
    """Add writes to the document beside ``backend``'s state, under the backend's update lock."""
    document = backend.sibling(DOCUMENT)

    def change(raw: Raw, untouched: Raw) -> tuple[Raw, Raw]:
        writes = parse(raw)
        known = {write.key() for write in writes}
        writes += [write for write in new if write.key() not in known]
        return serialise(writes[:MAX_WRITES]), untouched

    document.update(change)


def stored(backend: Backend) -> list[SeenWrite]:
    """The writes seen so far, by every process that shares ``backend``."""
    return parse(backend.sibling(DOCUMENT).read())


def forget(backend: Backend) -> None:
    """Start a new report."""
    backend.sibling(DOCUMENT).clear()


def relative(site: str) -> str:
    """A call site relative to the working folder when it is under it (shorter to read)."""
    path, _, line = site.rpartition(":")
    if path and os.path.isabs(path):
        shorter = os.path.relpath(path)
        if not shorter.startswith(".."):
            return f"{shorter}:{line}"
    return site
