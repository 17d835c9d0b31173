import pytest
from orders import create_app


@pytest.fixture(scope="session")  # as long-lived as pytest-flask's live_server
def app():
    app = create_app()
    # The live server's host: pytest-flask adds its port to SERVER_NAME, and Flask before 3.1
    # answers only requests for that host (these tests run it with --live-server-host 127.0.0.1).
    app.config["SERVER_NAME"] = "127.0.0.1"
    return app
