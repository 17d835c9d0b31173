from flask import Flask

from flask_maintenance import Maintenance

maintenance = Maintenance()


def create_app():
    app = Flask(__name__)
    app.config["SECRET_KEY"] = "change-me"
    maintenance.init_app(app)
    return app
