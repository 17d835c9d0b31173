import redis
from flask import Flask, session
from flask_session import Session

from flask_maintenance import Maintenance

maintenance = Maintenance()


# The only part of a refused request that reads the session store, and only for requests that
# carry a session cookie. When the store is down, the rule sees an empty session: a 503.
@maintenance.bypass_rule(cookie="session")
def staff():
    return session.get("staff") is True


def create_app(redis_url="redis://127.0.0.1:6379/0"):
    app = Flask(__name__)
    app.config["SECRET_KEY"] = "change-me"
    app.config["SESSION_TYPE"] = "redis"
    app.config["SESSION_REDIS"] = redis.Redis.from_url(redis_url)
    Session(app)
    maintenance.init_app(app)

    @app.get("/")
    def index():
        return "Hello, staff!" if session.get("staff") else "Hello!"

    @app.post("/staff")
    def sign_in_as_staff():  # stands in for your sign-in view
        session["staff"] = True
        return "Signed in"

    return app
