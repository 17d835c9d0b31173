"""The ``flask maintenance`` command group."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any, NoReturn

import click
from flask import current_app
from flask.cli import AppGroup

from .bypass import new_token
from .errors import MaintenanceError
from .state import MODES, State
from .times import format_instant, parse_duration, parse_instant, utcnow


class MaintenanceCommandError(click.ClickException):
    """An operator error: one line on stderr, no traceback, exit status 1 (2 for bad input)."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


maintenance_group = AppGroup("maintenance", help="Switch maintenance mode on and off, and show it.")


def _extension() -> Any:
    return current_app.extensions["maintenance"]


def _bad_input(message: str) -> NoReturn:
    raise MaintenanceCommandError(message, exit_code=2)


def _parse_retry(value: str | None) -> int | None:
    if value is None:
        return None
    if not value.strip().isdigit():
        _bad_input(f"--retry must be a whole number of seconds (0 or more), not {value!r}")
    return int(value)


def _parse_end(until: str | None, duration: str | None) -> datetime | None:
    if until is not None and duration is not None:
        _bad_input("use either --until or --for, not both")
    try:
        if until is not None:
            ends_at = parse_instant(until)
            if ends_at <= utcnow():
                _bad_input(f"--until {until} is in the past")
            return ends_at
        if duration is not None:
            return utcnow().replace(microsecond=0) + parse_duration(duration)
    except MaintenanceError as error:
        _bad_input(f"{'--until' if until is not None else '--for'}: {error}")
    return None


@maintenance_group.command("on")
@click.option("--mode", default="full", metavar="|".join(MODES), help="What to refuse (default full).")
@click.option("--retry", metavar="SECONDS", help="Retry-After in seconds (default: MAINTENANCE_RETRY_AFTER).")
@click.option("--message", help="Shown on the page, in the JSON body and in the banner.")
@click.option("--until", metavar="ISO8601", help="Expected end, e.g. 2026-11-21T23:00:00Z.")
@click.option("--for", "duration", metavar="DURATION", help="Expected length, e.g. 30m or 2h.")
@click.option("--secret", is_flag=True, help="Generate a bypass link for admins.")
def maintenance_on(
    mode: str, retry: str | None, message: str | None, until: str | None, duration: str | None, secret: bool
) -> None:
    """Switch maintenance on (a new window: earlier bypass links stop working)."""
    if mode not in MODES:
        _bad_input(f"--mode must be one of {', '.join(MODES)}, not {mode!r}")
    retry_seconds = _parse_retry(retry)
    ends_at = _parse_end(until, duration)
    token = new_token() if secret else None
    try:
        state = _extension().enable(
            mode=mode, retry=retry_seconds, message=message, ends_at=ends_at, secret=token
        )
    except MaintenanceError as error:
        raise MaintenanceCommandError(str(error)) from None
    _describe(state)
    if token is not None:
        click.echo(f"  bypass link: {_bypass_url(token)}")
        click.echo("  (shown once; anyone with it can use the site until the next `on`)")


@maintenance_group.command("off")
def maintenance_off() -> None:
    """Switch maintenance off (nothing happens if it is already off)."""
    try:
        _extension().disable()
    except MaintenanceError as error:
        raise MaintenanceCommandError(str(error)) from None
    click.echo("Maintenance is OFF")


@maintenance_group.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print the state as JSON.")
def maintenance_status(as_json: bool) -> None:
    """Show whether maintenance is on, since when, why and until when (exit 0 either way)."""
    extension = _extension()
    state = extension.status()
    if as_json:
        click.echo(json.dumps({**state.to_dict(), "backend": extension.backend().describe()}, indent=2))
    else:
        _describe(state)


def _describe(state: State) -> None:
    backend = _extension().backend().describe()
    if not state.active:
        click.echo("Maintenance is OFF")
        click.echo(f"  backend:      {backend}")
        return
    click.echo(f"Maintenance is ON (mode {state.mode})")
    if state.started_at is not None:
        click.echo(f"  since:        {format_instant(state.started_at)}")
    if state.user or state.host:
        click.echo(f"  by:           {state.user or '?'}@{state.host or '?'}")
    click.echo(f"  retry after:  {state.retry_after()} s")
    if state.ends_at is not None:
        left = max(timedelta(0), state.ends_at - utcnow().replace(microsecond=0))
        click.echo(f"  expected end: {format_instant(state.ends_at)} (in {left})")
    click.echo(f"  message:      {state.message or '(default)'}")
    click.echo(f"  backend:      {backend}")


def _bypass_url(token: str) -> str:
    path = f"{current_app.config['MAINTENANCE_STATUS_PATH'].rstrip('/')}/bypass/{token}"
    server = current_app.config.get("SERVER_NAME")
    if server:
        return f"{current_app.config.get('PREFERRED_URL_SCHEME', 'http')}://{server}{path}"
    return path + "  (append to your site's address)"
