from flask import Flask
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

from flask_maintenance import Maintenance

app = Flask(__name__)
maintenance = Maintenance(app)
limiter = Limiter(get_remote_address, app=app, default_limits=["10/minute"], storage_uri="memory://")
# The maintenance page asks the status path every 4 to 6 seconds: keep it out of every limit.
limiter.exempt(Maintenance.status_blueprint)


@app.get("/")
def index():
    return "Hello!"
