"""A Flask-SQLAlchemy app whose GET handler writes ("last seen"), for the database protection tests.

Used in-process (``create_app(...)``) and by real ``flask`` subprocesses
(``flask --app "database_app:create_app()"``), which configure it with ``SUBJECT_*`` variables.
"""

from __future__ import annotations

import os
from typing import Any

import click
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import String, func, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from flask_maintenance import Maintenance


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)


class Visit(db.Model):  # type: ignore[name-defined,misc]
    id: Mapped[int] = mapped_column(primary_key=True)
    page: Mapped[str] = mapped_column(String(100))  # MySQL needs a length


def visits() -> int:
    return db.session.scalar(select(func.count()).select_from(Visit)) or 0


def create_app(**config: Any) -> Flask:
    app = Flask(__name__, instance_path=os.environ.get("SUBJECT_INSTANCE", "/nonexistent/instance"))
    app.config.update(
        SQLALCHEMY_DATABASE_URI=os.environ.get("SUBJECT_DATABASE_URL"),
        MAINTENANCE_LOCK_FILE=os.environ.get("SUBJECT_LOCK_FILE"),
        MAINTENANCE_CHECK_INTERVAL=0,
        MAINTENANCE_PROTECT_DATABASE=os.environ.get("SUBJECT_PROTECT", "true"),
        # Flask-Migrate's `flask db upgrade` is the maintenance work; the app's other commands
        # keep running while the site is read-only (and so meet the read-only database).
        MAINTENANCE_CLI_EXEMPT="db upgrade",
        MAINTENANCE_CLI_BLOCK_MODES="full",
    )
    app.config.update(config)
    db.init_app(app)
    maintenance = Maintenance(app)

    @app.get("/")
    def home() -> str:
        db.session.add(Visit(page="/"))  # "last seen": a write hidden in a GET
        db.session.commit()
        return f"{visits()} visits"

    @app.get("/visits/count")
    def count() -> dict[str, int]:
        return {"visits": visits()}

    @app.post("/visits")
    def add_visit() -> dict[str, int]:
        db.session.add(Visit(page="posted"))
        db.session.commit()
        return {"visits": visits()}

    @app.get("/api/visits")
    def api_visits() -> dict[str, int]:
        db.session.add(Visit(page="/api"))
        db.session.commit()
        return {"visits": visits()}

    @app.get("/admin/fix")
    def admin_fix() -> str:
        with maintenance.writable():
            db.session.add(Visit(page="fix"))
            db.session.commit()
        return "fixed"

    @app.cli.command("record-visit")
    def record_visit() -> None:
        """A command that writes and is not maintenance work."""
        db.session.add(Visit(page="cli"))
        db.session.commit()
        click.echo(f"recorded: {visits()} visits")

    @app.cli.group("db")
    def database() -> None:
        """Like Flask-Migrate's group."""

    @database.command("upgrade")
    def upgrade() -> None:
        """A migration: creates the tables and writes."""
        db.create_all()
        db.session.add(Visit(page="upgrade"))
        db.session.commit()
        click.echo(f"upgraded: {visits()} visits")

    return app
