import click
from flask import Flask

from flask_maintenance import Maintenance

app = Flask(__name__)
maintenance = Maintenance(app)


@maintenance.guard  # while on: not called, returns None, logs why
def send_reminders():
    return "reminders sent"


@maintenance.guard(raise_=True)  # while on: raises MaintenanceActive instead
def sync_invoices():
    return "invoices synced"


def rebuild_search_index():
    # A with-block cannot be skipped: while on, it raises MaintenanceActive on entry.
    with maintenance.guard(app=app):
        return "index rebuilt"


@app.cli.command("send-reminders")  # refused while on, like every command of the app
def send_reminders_command():
    click.echo(send_reminders())


@maintenance.exempt  # this one runs during maintenance too
@app.cli.command("warm-cache")
def warm_cache():
    click.echo("cache warmed")
