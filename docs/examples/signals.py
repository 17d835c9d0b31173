from collections import Counter

from flask import Flask

from flask_maintenance import Maintenance, request_blocked

app = Flask(__name__)
maintenance = Maintenance(app)
refusals = Counter()


@request_blocked.connect_via(app)
def count_refusal(sender, state, reason, **extra):
    refusals[reason] += 1  # "maintenance", "readonly" or "feature:<name>"


@app.get("/")
def index():
    return "Hello!"
