from flask import Flask
from opentelemetry.instrumentation.flask import FlaskInstrumentor

from flask_maintenance import Maintenance

app = Flask(__name__)
# First: instrumented earlier, the app's wsgi_app is a function the fast path cannot look into.
maintenance = Maintenance(app)
# Spans for the requests the app serves. Refusals get none: count them with the metric.
FlaskInstrumentor().instrument_app(app)


@app.get("/")
def index():
    return "Hello!"
