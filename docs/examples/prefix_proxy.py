from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from flask_maintenance import Maintenance

app = Flask(__name__)
app.config["SECRET_KEY"] = "change-me"
# Where the proxy serves the app: `flask maintenance on --secret` prints links under it.
app.config["APPLICATION_ROOT"] = "/shop"
app.config["MAINTENANCE_ALLOWED_PATHS"] = ["/health/live"]
# One proxy in front passes /shop/cart as /cart, with X-Forwarded-Prefix: /shop.
app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_prefix=1)
maintenance = Maintenance(app)


@app.get("/")
def index():
    return "The shop"


@app.get("/health/live")
def live():
    return "alive"
