import os

from flask import Flask

from flask_maintenance import Maintenance

app = Flask(__name__)
# For example redis://:password@redis.internal:6379/0, kept out of the code.
app.config["MAINTENANCE_BACKEND"] = os.environ["MAINTENANCE_BACKEND"]
app.config["MAINTENANCE_REDIS_KEY"] = "shop:maintenance"  # optional
Maintenance(app)
