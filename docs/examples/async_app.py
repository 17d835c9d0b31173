import asyncio

from flask import Flask, g, session

from flask_maintenance import Maintenance

maintenance = Maintenance()


async def is_staff(name):
    await asyncio.sleep(0)  # stands in for an async call: a directory, a database
    return name == "ada"


# Awaited like an async view (Flask's async support: pip install "flask[async]").
@maintenance.bypass_rule(cookie="session")
async def staff():
    return await is_staff(session.get("user"))


def create_app(config=None):
    app = Flask(__name__)
    app.config["SECRET_KEY"] = "change-me"
    app.config.from_mapping(config or {})
    maintenance.init_app(app)

    @app.before_request
    async def find_user():
        await asyncio.sleep(0)
        g.user = session.get("user", "guest")

    @app.get("/")
    async def index():
        await asyncio.sleep(0)
        return f"Hello, {g.user}!"

    @app.post("/sign-in/<name>")
    async def sign_in(name):  # stands in for your sign-in view
        session["user"] = name
        return "Signed in"

    return app
