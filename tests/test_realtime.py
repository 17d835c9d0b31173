"""Flask-SocketIO sockets follow maintenance (docs/examples/realtime.py, the real extension)."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

EXAMPLE = Path(__file__).resolve().parent.parent / "docs" / "examples" / "realtime.py"
PROBLEM_KEYS = {"error", "title", "detail", "mode", "retry_after"}


@pytest.fixture
def chat(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The docs' example app, its instance folder (and lock file) in ``tmp_path``."""
    pytest.importorskip("flask_socketio")
    source = tmp_path / "realtime.py"
    shutil.copy(EXAMPLE, source)
    spec = importlib.util.spec_from_file_location("realtime", source)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "realtime", module)
    spec.loader.exec_module(module)
    return module


def connect(chat: ModuleType, **options: Any) -> Any:
    return chat.socketio.test_client(chat.app, **options)


def switch(chat: ModuleType, mode: str | None) -> None:
    """Switch through the API (which the same process then sees at once)."""
    if mode is None:
        chat.maintenance.disable(app=chat.app)
    else:
        chat.maintenance.enable(mode=mode, message="Moving the chat", app=chat.app)


def test_off_everything_runs(chat: ModuleType) -> None:
    client = connect(chat)
    assert client.is_connected()
    assert client.emit("post", "hello", callback=True) == "saved"
    assert client.emit("history", callback=True) == ["hello"]


def test_full_maintenance_refuses_new_connections_and_every_event(chat: ModuleType) -> None:
    before = connect(chat)
    switch(chat, "full")
    assert not connect(chat).is_connected()
    for event, args in (("post", ("lost?",)), ("history", ())):
        problem = before.emit(event, *args, callback=True)
        assert set(problem) == PROBLEM_KEYS
        assert (problem["error"], problem["mode"], problem["detail"]) == (
            "maintenance",
            "full",
            "Moving the chat",
        )
        assert problem["retry_after"] == 60
    assert chat.messages == []  # the handler never ran
    assert chat.maintenance.refusals(app=chat.app)[("full", "socket")] == 3  # two events, one connect

    switch(chat, None)
    assert before.emit("post", "back", callback=True) == "saved"
    assert connect(chat).is_connected()


def test_readonly_refuses_writes_and_lets_reads_and_connections_through(chat: ModuleType) -> None:
    switch(chat, "readonly")
    client = connect(chat)
    assert client.is_connected()
    problem = client.emit("post", "lost?", callback=True)
    assert (problem["mode"], problem["title"]) == ("readonly", "Read-only mode")
    assert client.emit("history", callback=True) == []
    assert chat.messages == []


def test_banner_refuses_nothing(chat: ModuleType) -> None:
    switch(chat, "banner")
    client = connect(chat)
    assert client.emit("post", "hi", callback=True) == "saved"


def test_a_bypass_cookie_passes(chat: ModuleType) -> None:
    chat.maintenance.enable(mode="full", secret="let-the-admin-in-123", app=chat.app)
    assert not connect(chat).is_connected()
    flask_client = chat.app.test_client()
    assert flask_client.get("/_maintenance/bypass/let-the-admin-in-123").status_code == 303
    admin = connect(chat, flask_test_client=flask_client)  # sends the bypass cookie
    assert admin.is_connected()
    assert admin.emit("post", "from the admin", callback=True) == "saved"


def test_an_allowed_address_passes(chat: ModuleType) -> None:
    switch(chat, "full")
    flask_client = chat.app.test_client()
    flask_client.environ_base["REMOTE_ADDR"] = "192.0.2.9"
    assert not connect(chat, flask_test_client=flask_client).is_connected()
    # The handshake's REMOTE_ADDR is what the allowlist sees (behind a proxy: ProxyFix).
    flask_client.environ_base["REMOTE_ADDR"] = "10.1.2.3"
    admin = connect(chat, flask_test_client=flask_client)
    assert admin.is_connected()
    assert admin.emit("history", callback=True) == []
