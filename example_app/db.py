"""The guestbook's SQLite database, in the instance folder, created on first use."""

from __future__ import annotations

import os
import sqlite3
from datetime import datetime, timedelta, timezone
from typing import Any

import click
from flask import Flask, current_app, g

from .extensions import maintenance

SCHEMA = """
CREATE TABLE IF NOT EXISTS entry (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    message TEXT NOT NULL,
    created_at TEXT NOT NULL
);
"""

MAX_NAME = 80
MAX_MESSAGE = 500


def get_db() -> sqlite3.Connection:
    """This request's connection; the file and its table are created when missing."""
    if "db" not in g:
        path = current_app.config["DATABASE"]
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        connection = sqlite3.connect(path, timeout=5)
        connection.row_factory = sqlite3.Row
        connection.executescript(SCHEMA)
        g.db = connection
    db: sqlite3.Connection = g.db
    return db


def close_db(error: BaseException | None = None) -> None:
    connection = g.pop("db", None)
    if connection is not None:
        connection.close()


def validate(name: str, message: str) -> dict[str, str]:
    """Problems with a new entry, by field; empty when it can be saved."""
    errors = {}
    if not name:
        errors["name"] = "Please tell us your name."
    elif len(name) > MAX_NAME:
        errors["name"] = f"At most {MAX_NAME} characters, please."
    if not message:
        errors["message"] = "Please write a message."
    elif len(message) > MAX_MESSAGE:
        errors["message"] = f"At most {MAX_MESSAGE} characters, please."
    return errors


def list_entries(limit: int = 50) -> list[dict[str, Any]]:
    rows = get_db().execute(
        "SELECT id, name, message, created_at FROM entry ORDER BY id DESC LIMIT ?", (limit,)
    )
    return [dict(row) for row in rows]


def get_entry(entry_id: int) -> dict[str, Any] | None:
    row = (
        get_db()
        .execute("SELECT id, name, message, created_at FROM entry WHERE id = ?", (entry_id,))
        .fetchone()
    )
    return None if row is None else dict(row)


def add_entry(name: str, message: str) -> dict[str, Any]:
    created_at = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    db = get_db()
    with db:
        cursor = db.execute(
            "INSERT INTO entry (name, message, created_at) VALUES (?, ?, ?)",
            (name, message, created_at),
        )
    return {"id": cursor.lastrowid, "name": name, "message": message, "created_at": created_at}


def is_reachable() -> bool:
    """Whether the database answers a trivial query (for the readiness probe)."""
    try:
        get_db().execute("SELECT 1").fetchone()
    except (sqlite3.Error, OSError):
        return False
    return True


@maintenance.exempt  # schema changes are what a maintenance window is for
@click.command("init-db")
@click.option("--reset", is_flag=True, help="Delete every entry first.")
def init_db_command(reset: bool) -> None:
    """Create the guestbook database (the app also creates it on first use)."""
    db = get_db()
    if reset:
        with db:
            db.execute("DROP TABLE IF EXISTS entry")
        db.executescript(SCHEMA)
    click.echo(f"Database ready: {current_app.config['DATABASE']}")


@click.command("prune")
@click.option(
    "--days",
    type=click.IntRange(min=1),
    default=30,
    show_default=True,
    help="Delete entries older than this.",
)
def prune_command(days: int) -> None:
    """Delete old guestbook entries: a typical cron job, refused during maintenance."""
    cutoff = (datetime.now(timezone.utc) - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")
    db = get_db()
    with db:
        deleted = db.execute("DELETE FROM entry WHERE created_at < ?", (cutoff,)).rowcount
    click.echo(f"Deleted {deleted} entries older than {days} days.")


def init_app(app: Flask) -> None:
    app.teardown_appcontext(close_db)
    app.cli.add_command(init_db_command)
    app.cli.add_command(prune_command)
