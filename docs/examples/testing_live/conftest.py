import pytest
from orders import create_app


@pytest.fixture(scope="session")  # as long-lived as pytest-flask's live_server
def app():
    return create_app()
