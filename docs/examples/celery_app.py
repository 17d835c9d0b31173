"""Flask's "Celery pattern" with maintenance: ``celery -A celery_app worker`` and ``… beat``."""

import os

from celery import Celery, Task
from flask import Flask

from flask_maintenance import Maintenance

maintenance = Maintenance()


def celery_init_app(app: Flask) -> Celery:
    class FlaskTask(Task):
        def __call__(self, *args, **kwargs):
            with app.app_context():
                return self.run(*args, **kwargs)

    celery_app = Celery(app.name, task_cls=FlaskTask)
    celery_app.config_from_object(app.config["CELERY"])
    celery_app.set_default()
    app.extensions["celery"] = celery_app
    maintenance.init_celery(celery_app, app=app)  # workers and beat pause during maintenance
    return celery_app


def create_app() -> Flask:
    app = Flask(__name__)
    broker = os.environ.get("BROKER_URL", "redis://127.0.0.1:6379/0")
    app.config.from_mapping(
        CELERY={
            "broker_url": broker,
            "result_backend": broker,
            "task_routes": {"celery_app.send_password_reset": {"queue": "mail"}},
            "beat_schedule": {"nightly-report": {"task": "celery_app.nightly_report", "schedule": 24 * 3600}},
        },
        # Password resets keep going out during maintenance: workers keep consuming "mail".
        MAINTENANCE_CELERY_EXEMPT=["mail"],
    )
    maintenance.init_app(app)
    celery_init_app(app)
    return app


flask_app = create_app()
celery_app = flask_app.extensions["celery"]


@celery_app.task
def charge_order(order_id: int) -> str:
    return f"order {order_id} charged"


@celery_app.task
def send_password_reset(address: str) -> str:
    return f"reset link sent to {address}"


@maintenance.exempt  # reads only: it may run during maintenance
@celery_app.task
def nightly_report() -> str:
    return "report written"
