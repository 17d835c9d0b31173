from flask import Flask
from flask_talisman import Talisman

from flask_maintenance import PAGE_CSP_SOURCES, Maintenance

# Talisman's default policy, plus the hashes of the maintenance page's inline style and script:
# Talisman's header replaces the page's own on the refusals that go through the app's
# after_request functions (with MAINTENANCE_FAST_PATH = False, or a request with an Origin).
POLICY = {
    "default-src": "'self'",
    "object-src": "'none'",
    "style-src": ["'self'", PAGE_CSP_SOURCES["style-src"]],
    "script-src": ["'self'", PAGE_CSP_SOURCES["script-src"]],
}

maintenance = Maintenance()


def create_app(config=None):
    app = Flask(__name__)
    app.config.from_mapping(config or {})
    Talisman(app, content_security_policy=POLICY)
    maintenance.init_app(app)

    @app.get("/")
    def index():
        return "Hello!"

    @app.post("/orders")
    def order():
        return "Ordered", 201

    return app
