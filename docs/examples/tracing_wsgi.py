from flask import Flask
from opentelemetry.instrumentation.wsgi import OpenTelemetryMiddleware

from flask_maintenance import Maintenance

app = Flask(__name__)
maintenance = Maintenance(app)
# A span for every request, refusals included (status 503): the middleware sits outside.
app.wsgi_app = OpenTelemetryMiddleware(app.wsgi_app)


@app.get("/")
def index():
    return "Hello!"
