"""A chat on Flask-SocketIO whose sockets follow maintenance like its pages do."""

from flask import Flask
from flask_socketio import SocketIO

from flask_maintenance import Maintenance

app = Flask(__name__)
app.config["SECRET_KEY"] = "change-me"
app.config["MAINTENANCE_ALLOWED_IPS"] = ["10.0.0.0/8"]
maintenance = Maintenance(app)
socketio = SocketIO(app)
messages: list[str] = []


@socketio.on("history")
def history() -> list[str]:
    return messages


@socketio.on("post")
def post(text: str) -> str:
    messages.append(text)
    return "saved"


# Full maintenance refuses new connections and every event; readonly refuses every event but
# the reads named here. Call it after the handlers or before: it checks them all.
maintenance.guard_socketio(socketio, read_events=["history"])
