from flask import Flask
from prometheus_flask_exporter import PrometheusMetrics

from flask_maintenance import Maintenance

app = Flask(__name__)
maintenance = Maintenance(app)
# GET /metrics, served during maintenance too: the exporter's request metrics, plus
# flask_maintenance_refused_total{mode,kind} and flask_maintenance_active.
metrics = PrometheusMetrics(app)


@app.get("/")
def index():
    return "Hello!"
