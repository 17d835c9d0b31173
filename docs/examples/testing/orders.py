from flask import Flask, request

from flask_maintenance import Maintenance

maintenance = Maintenance()


def create_app():
    app = Flask(__name__)
    maintenance.init_app(app)

    @app.route("/orders", methods=["GET", "POST"])
    def orders():
        if request.method == "POST":
            return {"created": True}, 201
        return {"orders": []}

    return app
