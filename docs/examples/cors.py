from flask import Flask
from flask_cors import CORS

from flask_maintenance import Maintenance

app = Flask(__name__)
app.config["MAINTENANCE_API_PREFIXES"] = ["/api"]
# Where the single-page app is served; FLASK_SPA_ORIGIN in the environment overrides it.
app.config["SPA_ORIGIN"] = "https://app.example.com"
app.config.from_prefixed_env()
# Let that origin call the API and read its answers, the 503 included.
CORS(app, resources={r"/api/*": {"origins": [app.config["SPA_ORIGIN"]]}})
maintenance = Maintenance(app)


@app.route("/api/orders", methods=["GET", "PUT"])
def orders():
    return {"orders": []}
