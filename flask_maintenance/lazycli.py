"""The ``flask maintenance`` group and the command gate, loaded only when a command line needs them.

A web worker runs no command: importing :mod:`flask_maintenance.cli` (and what only the commands
need: the drain, the proxies' configurations, the switch, ``subprocess``, ``shlex``) would add
megabytes to every worker. So ``Maintenance(app)`` registers :class:`LazyMaintenanceGroup` on
``app.cli`` and wraps ``app.cli.get_command`` so that the gate on the app's other commands is
installed when Click first resolves one of them; only then is the command line imported.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from flask import Flask

#: The group's help, shown by ``flask --help`` without importing the commands.
HELP = "Switch maintenance mode on and off, and show it."


class LazyMaintenanceGroup(click.Group):
    """``flask maintenance``: lists and resolves the commands of :mod:`flask_maintenance.cli`,
    imported on first use."""

    def __init__(self) -> None:
        super().__init__("maintenance", help=HELP)

    @staticmethod
    def _group() -> click.Group:
        from .cli import maintenance_group

        return maintenance_group

    def list_commands(self, ctx: click.Context) -> list[str]:
        return self._group().list_commands(ctx)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return self._group().get_command(ctx, cmd_name)


def install(app: Flask) -> None:
    """Add ``flask maintenance`` to ``app.cli`` and gate the app's commands while on."""
    app.cli.add_command(LazyMaintenanceGroup())
    if click.get_current_context(silent=True) is not None:
        # A command line is loading the app (`flask ...`): it needs the gate now.
        _install_gate(app)
        return
    resolve = app.cli.get_command

    def get_command(ctx: click.Context, name: str) -> click.Command | None:
        app.cli.get_command = resolve  # type: ignore[method-assign]
        _install_gate(app)
        return app.cli.get_command(ctx, name)

    app.cli.get_command = get_command  # type: ignore[method-assign,assignment]


def _install_gate(app: Flask) -> None:
    from .cli import install_command_gate

    install_command_gate(app)
