from datetime import datetime, timedelta, timezone

from flask import Flask

from flask_maintenance import Maintenance

app = Flask(__name__)
maintenance = Maintenance(app)  # or Maintenance() and later maintenance.init_app(app)

with app.app_context():  # or pass app=app to each call
    state = maintenance.enable(
        mode="readonly",  # "full" (the default), "readonly" or "banner"
        retry=120,  # Retry-After, even with ends_at; None: count down to ends_at
        message="Moving to a new database",
        ends_at=datetime.now(timezone.utc) + timedelta(minutes=20),  # aware, future
    )
    assert maintenance.is_active()  # True in any mode
    state = maintenance.status()  # a flask_maintenance.State
    print(state.mode, state.retry, state.message, state.started_at, state.ends_at)
    print(state.to_dict())  # the same fields as `flask maintenance status --json`
    maintenance.disable()  # off; already off is not an error
