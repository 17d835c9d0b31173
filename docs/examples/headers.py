from flask import Flask

from flask_maintenance import Maintenance

app = Flask(__name__)
# On every maintenance answer, whoever sends it; the app's own answers keep their own headers.
app.config["MAINTENANCE_RESPONSE_HEADERS"] = {
    "Strict-Transport-Security": "max-age=63072000; includeSubDomains",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
maintenance = Maintenance(app)


@app.get("/")
def index():
    return "Hello!"
