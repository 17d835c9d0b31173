import pytest
from flask import Flask

from flask_maintenance import Maintenance


# pytest-flask's live_server lives for the whole session, and so must the app it serves.
@pytest.fixture(scope="session")
def app(tmp_path_factory):
    app = Flask("site", instance_path=str(tmp_path_factory.mktemp("site") / "instance"))
    Maintenance(app)

    @app.route("/orders", methods=["GET", "POST"])
    def orders():
        return "Your orders"

    return app
