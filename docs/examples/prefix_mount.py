from flask import Flask
from werkzeug.middleware.dispatcher import DispatcherMiddleware
from werkzeug.wrappers import Response

from flask_maintenance import Maintenance

shop = Flask(__name__)
shop.config["SECRET_KEY"] = "change-me"
shop.config["APPLICATION_ROOT"] = "/shop"
shop.config["MAINTENANCE_ALLOWED_PATHS"] = ["/health/live"]
maintenance = Maintenance(shop)


@shop.get("/")
def index():
    return "The shop"


@shop.get("/health/live")
def live():
    return "alive"


# What the WSGI server runs: the shop under /shop, nothing else on this host.
application = DispatcherMiddleware(Response("Not found", status=404), {"/shop": shop})
