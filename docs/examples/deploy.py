from flask import Flask

from flask_maintenance import Maintenance

app = Flask(__name__)
maintenance = Maintenance(app)


def upgrade():
    """The deploy step that needs the window, e.g. a database migration."""


def deploy():
    with maintenance.window(mode="readonly", message="Upgrading the database", app=app):
        upgrade()  # after success the state there was comes back; if it raises, it stays on
