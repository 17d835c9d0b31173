"""Read-only at the database while maintenance is on: SQLAlchemy engines and Flask-SQLAlchemy.

``readonly`` refuses unsafe HTTP methods, but a GET handler that writes ("last seen", counters), a
command that keeps running or a task queue still reach the database. A protected engine makes
every transaction that begins while this process enforces ``readonly`` or ``full`` read-only at
the database itself:

- PostgreSQL: ``SET TRANSACTION READ ONLY`` as the transaction's first statement;
- SQLite: ``PRAGMA query_only = ON`` on the connection (and ``OFF`` again for the first
  transaction after maintenance, so no reconnect is needed);
- MySQL and MariaDB: ``START TRANSACTION READ ONLY`` instead of the driver's implicit begin.

A transaction already running when maintenance starts keeps writing to its end; the next one is
read-only. The database's refusal becomes :class:`WriteRefused` (a
:class:`~flask_maintenance.MaintenanceActive` chained to the driver's error): in a request the
app answers it with the maintenance 503, in a ``flask`` command it is one line and exit status 75.

Maintenance work stays writable: commands that run whatever the state (``MAINTENANCE_CLI_EXEMPT``,
``@m.exempt``, ``FLASK_MAINTENANCE_FORCE=1``, and so the command of ``flask maintenance run``) and
code inside :func:`writable`. Nothing here is imported until an engine is protected, and nothing
runs per request: the cost is one look at the cached state per transaction.
"""

from __future__ import annotations

import sqlite3
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

import click
from flask import Flask, Response, has_request_context, request

from .errors import ConfigurationError, MaintenanceActive
from .guard import EX_TEMPFAIL, FORCE_ENV, describe, forced
from .model import State
from .writelog import SeenWrite, WriteLog, call_site, describe_statement

if TYPE_CHECKING:
    from flask_sqlalchemy import SQLAlchemy
    from sqlalchemy.engine import Connection, Engine, ExceptionContext, ExecutionContext

    from .gate import Gate

#: ``Connection.info`` keys (the info lives as long as the DBAPI connection): the state that made
#: the current transaction read-only; the state during which its writes are logged (dry run);
#: whether SQLite's ``query_only`` is on; whether PostgreSQL's session default is read-only.
READ_ONLY_KEY = "flask_maintenance.read_only"
WATCH_KEY = "flask_maintenance.watch"
QUERY_ONLY_KEY = "flask_maintenance.query_only"
SESSION_READ_ONLY_KEY = "flask_maintenance.session_read_only"
INSTALL_HINT = 'pip install "flask-maintenance-mode[sqlalchemy]"'

_writable: ContextVar[bool] = ContextVar("flask_maintenance_writable", default=False)


@contextmanager
def writable() -> Iterator[None]:
    """Transactions that begin inside the block are writable whatever the state (this thread or
    task only): the maintenance work itself, such as a data fix run from a script."""
    token = _writable.set(True)
    try:
        yield
    finally:
        _writable.reset(token)


class WriteRefused(MaintenanceActive):
    """A protected database refused a write during maintenance; ``__cause__`` is the driver's error."""


class CommandWriteRefused(WriteRefused, click.ClickException):
    """The same, inside a ``flask`` command: one line on stderr and exit status 75."""

    exit_code = EX_TEMPFAIL


# -- what each database needs -------------------------------------------------------------------


def _run(conn: Connection, sql: str) -> None:
    """Run ``sql`` on the DBAPI connection itself: through ``conn`` it would begin a transaction
    again (the ``begin`` event fires before SQLAlchemy records the one it is beginning)."""
    cursor = conn.connection.cursor()
    try:
        cursor.execute(sql)
    finally:
        cursor.close()


def _postgresql(conn: Connection, read_only: bool) -> None:
    info = conn.info
    if getattr(conn.connection.dbapi_connection, "autocommit", False):
        # Each statement is a transaction of its own, which SET TRANSACTION cannot reach (the
        # server only warns): switch the session's default instead.
        _postgresql_session(conn, read_only)
    elif read_only:
        # psycopg opens the transaction with this statement; it applies to that transaction only.
        _run(conn, "SET TRANSACTION READ ONLY")
    elif info.get(SESSION_READ_ONLY_KEY, False):
        # A session left read-only by autocommit use: writable for this transaction. (Resetting
        # the default here would be undone if the transaction rolls back.)
        _run(conn, "SET TRANSACTION READ WRITE")


def _postgresql_session(conn: Connection, read_only: bool) -> None:
    """Switch the session's default_transaction_read_only when it changes, committed at once."""
    info = conn.info
    if info.get(SESSION_READ_ONLY_KEY, False) != read_only:
        _run(conn, f"SET default_transaction_read_only = {'on' if read_only else 'off'}")
        conn.connection.commit()  # nothing to commit in autocommit
        info[SESSION_READ_ONLY_KEY] = read_only


def _sqlite(conn: Connection, read_only: bool) -> None:
    # query_only belongs to the connection, not the transaction: switch it only when it changes.
    info = conn.info
    if info.get(QUERY_ONLY_KEY, False) != read_only:
        _run(conn, f"PRAGMA query_only = {'ON' if read_only else 'OFF'}")
        info[QUERY_ONLY_KEY] = read_only


def _mysql(conn: Connection, read_only: bool) -> None:
    if read_only:
        _run(conn, "START TRANSACTION READ ONLY")


def _mysql_xa(conn: Connection, read_only: bool) -> None:
    if read_only:
        # XA START takes no READ ONLY; this applies to the next transaction, the one it starts.
        _run(conn, "SET TRANSACTION READ ONLY")


#: Dialect name -> how a two-phase transaction is made read-only (``begin``'s way fails there:
#: psycopg's tpc_begin wants an idle connection, XA START takes no READ ONLY).
TWO_PHASE: dict[str, Callable[[Connection, bool], None]] = {
    "postgresql": _postgresql_session,
    "mysql": _mysql_xa,
    "mariadb": _mysql_xa,
}


def _postgresql_refusal(error: BaseException) -> bool:
    # SQLSTATE 25006, read_only_sql_transaction: psycopg 3 and asyncpg say sqlstate, psycopg2 pgcode.
    code = getattr(error, "sqlstate", None) or getattr(error, "pgcode", None)
    return bool(code == "25006")


def _sqlite_refusal(error: BaseException) -> bool:
    if not isinstance(error, sqlite3.Error):
        return False
    code = getattr(error, "sqlite_errorcode", None)  # Python 3.11 and later
    if code is not None:
        return int(code) & 0xFF == 8  # SQLITE_READONLY and its extended codes
    return "readonly database" in str(error)


def _mysql_refusal(error: BaseException) -> bool:
    args: tuple[object, ...] = error.args
    return bool(args) and args[0] == 1792  # ER_CANT_EXECUTE_IN_READ_ONLY_TRANSACTION


#: Dialect name -> (make a beginning transaction read-only or not, is this the refusal).
DIALECTS: dict[str, tuple[Callable[[Connection, bool], None], Callable[[BaseException], bool]]] = {
    "postgresql": (_postgresql, _postgresql_refusal),
    "sqlite": (_sqlite, _sqlite_refusal),
    "mysql": (_mysql, _mysql_refusal),
    "mariadb": (_mysql, _mysql_refusal),
}


# -- one app's protection ---------------------------------------------------------------------


class Protection:
    """Protects engines for one app: decides, per transaction, whether it must be read-only."""

    def __init__(self, app: Flask, gate: Gate) -> None:
        self.gate = gate
        self.dry_run = gate.settings.protect_database == "log"
        self.write_log = WriteLog()
        self._app = weakref.ref(app)
        if not self.dry_run:
            app.register_error_handler(WriteRefused, self.answer)
            # A write refused in an after_request function (the view has answered) never reaches
            # error handlers: Flask's handle_exception would answer it with a 500. Only that error
            # is answered here; every other one goes on to the app's (or another wrapper's).
            handle_exception = app.handle_exception

            def answer_late(error: Exception) -> Response:
                if isinstance(error, WriteRefused):
                    return app.finalize_request(self.answer(error), from_error_handler=True)
                return handle_exception(error)

            app.handle_exception = answer_late  # type: ignore[method-assign,assignment]

    def refusing_state(self) -> State | None:
        """The state that makes a transaction beginning now read-only, or ``None``.

        Requests are never maintenance work (an admin's bypass included: use :func:`writable`);
        outside them, commands that run whatever the state are.
        """
        if _writable.get():
            return None
        state = self.gate.cache.get()
        if not state.blocking:
            return None
        if has_request_context():
            return state
        if forced():
            return None
        command = flask_command()
        if command is not None:
            from .cli import runs_whatever_the_state

            if runs_whatever_the_state(command, self.gate.settings.cli_exempt):
                return None
        return state

    def install(self, engine: Engine) -> None:
        from sqlalchemy import event

        owner = _protected.get(engine)
        if owner is self:
            return
        if owner is not None:
            raise ConfigurationError("this engine is already protected for another app")
        try:
            make_read_only, is_refusal = DIALECTS[engine.dialect.name]
        except KeyError:
            raise ConfigurationError(
                "protect_database works with PostgreSQL, SQLite, MySQL and MariaDB, "
                f"not {engine.dialect.name} ({engine.url.render_as_string()})"
            ) from None
        protection = self

        make_two_phase_read_only = TWO_PHASE.get(engine.dialect.name, make_read_only)

        def begin(conn: Connection, make: Callable[[Connection, bool], None] = make_read_only) -> None:
            state = protection.refusing_state()
            info = conn.info
            key = WATCH_KEY if protection.dry_run else READ_ONLY_KEY
            if state is None:
                info.pop(key, None)
            else:
                info[key] = state
            if not protection.dry_run:
                make(conn, state is not None)

        def begin_twophase(conn: Connection, xid: Any) -> None:
            # Connection.begin_twophase() fires this event instead of "begin".
            begin(conn, make_two_phase_read_only)

        def handle_error(context: ExceptionContext) -> BaseException | None:
            conn = context.connection
            if conn is None or context.is_disconnect or conn.invalidated:
                return None
            state = conn.info.get(READ_ONLY_KEY)
            if state is None or not is_refusal(context.original_exception):
                return None
            # Returned, SQLAlchemy raises it from the driver's error, once the transaction is
            # cleaned up.
            return protection.refusal(state, context.statement or "")

        def watch(
            conn: Connection,
            cursor: Any,
            statement: str,
            parameters: Any,
            context: ExecutionContext | None,
            executemany: bool,
        ) -> None:
            state = conn.info.get(WATCH_KEY)
            if state is None:
                return
            write = describe_statement(statement)
            if write is not None:
                seen = SeenWrite(write[0], write[1], source(), call_site(), state.mode or "full")
                protection.write_log.saw(seen, protection.gate.backend)

        event.listen(engine, "begin", begin)
        event.listen(engine, "begin_twophase", begin_twophase)
        if self.dry_run:
            event.listen(engine, "before_cursor_execute", watch)
        else:
            event.listen(engine, "handle_error", handle_error)
        _protected[engine] = self

    def refusal(self, state: State, statement: str) -> WriteRefused:
        """The exception for a refused write, worded for where it happened."""
        write = describe_statement(statement)
        what = f"{write[0]} on {write[1]}" if write else "a write"
        if has_request_context():
            return WriteRefused(state, f"{describe(state)}: the database refused {what}")
        command = flask_command()
        if command is not None:
            from .cli import _command_path

            path = _command_path(command) or ("flask",)
            return CommandWriteRefused(
                state,
                f"{describe(state)}: the database is read-only, so `{' '.join(path)}` could not write "
                f"({what}). Set {FORCE_ENV}=1 to run it anyway, or add {path[0]!r} to "
                "MAINTENANCE_CLI_EXEMPT.",
            )
        return WriteRefused(
            state,
            f"{describe(state)}: the database is read-only and refused {what} "
            "(maintenance work goes inside `with maintenance.writable():`)",
        )

    def answer(self, error: WriteRefused) -> Response:
        """The maintenance 503 for a request whose write the database refused (never a 500)."""
        from .accept import prefers_json
        from .hook import refusal

        app = self._app()
        assert app is not None  # the app is answering this request
        state = error.state if isinstance(error.state, State) else self.gate.cache.get()
        as_json = request.path in self.gate.api_paths or prefers_json(request.headers.get("Accept"))
        return refusal(app, self.gate, state, as_json, None)


_protections: weakref.WeakKeyDictionary[Flask, Protection] = weakref.WeakKeyDictionary()
_protected: weakref.WeakKeyDictionary[Any, Protection] = weakref.WeakKeyDictionary()


def protect(app: Flask, gate: Gate, target: Any) -> None:
    """Protect ``target`` (an ``Engine``, or a Flask-SQLAlchemy ``SQLAlchemy`` with every bind)
    for ``app``; protecting one twice changes nothing.

    :raises ConfigurationError: for anything else, an unsupported database, or without SQLAlchemy.
    """
    try:
        from sqlalchemy.engine import Engine
    except ImportError:
        raise ConfigurationError(f"protecting a database needs SQLAlchemy: {INSTALL_HINT}") from None
    if isinstance(target, Engine):
        engines = [target]
    elif _is_flask_sqlalchemy(target):
        engines = _engines_of(app, target)
    else:
        raise ConfigurationError(
            "protect_database takes a SQLAlchemy Engine or a Flask-SQLAlchemy SQLAlchemy instance, "
            f"not {type(target).__name__}"
        )
    protection = _protections.get(app)
    if protection is None:
        protection = _protections[app] = Protection(app, gate)
    for engine in engines:
        protection.install(engine)


def protect_configured(app: Flask, gate: Gate) -> None:
    """``MAINTENANCE_PROTECT_DATABASE``: protect the app's Flask-SQLAlchemy extension."""
    extension = app.extensions.get("sqlalchemy")
    if extension is None or not _is_flask_sqlalchemy(extension):
        raise ConfigurationError(
            "MAINTENANCE_PROTECT_DATABASE is set but the app has no Flask-SQLAlchemy extension: call "
            "db.init_app(app) before Maintenance(app), or protect an engine with "
            "maintenance.protect_database(engine)"
        )
    protect(app, gate, extension)


def _is_flask_sqlalchemy(target: Any) -> bool:
    try:
        from flask_sqlalchemy import SQLAlchemy
    except ImportError:
        return False
    return isinstance(target, SQLAlchemy)


def _engines_of(app: Flask, db: SQLAlchemy) -> list[Engine]:
    if app.extensions.get("sqlalchemy") is not db:
        raise ConfigurationError(
            "this Flask-SQLAlchemy instance is not set up on the app: call db.init_app(app) first"
        )
    with app.app_context():
        return list(db.engines.values())


def flask_command() -> click.Context | None:
    """The context of the ``flask`` command running now, if any (another Click program, such as a
    task queue's worker, is not one)."""
    ctx = click.get_current_context(silent=True)
    if ctx is None:
        return None
    from flask.cli import AppGroup

    # AppGroup: the `flask` command (a FlaskGroup) and app.test_cli_runner()'s app.cli alike.
    return ctx if isinstance(ctx.find_root().command, AppGroup) else None


def source() -> str:
    """What made a write: the view, the command, or other code."""
    if has_request_context():
        return f"view {request.endpoint or '(none)'}"
    command = flask_command()
    if command is not None:
        from .cli import _command_path

        return f'command "flask {" ".join(_command_path(command))}"'
    return "code outside requests and commands"
