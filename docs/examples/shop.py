from flask import Flask

from flask_maintenance import Maintenance

app = Flask(__name__)
app.config.update(
    MAINTENANCE_LOCK_FILE="/srv/shop/instance/maintenance.lock",
    MAINTENANCE_RETRY_AFTER=120,
    MAINTENANCE_ALLOWED_PATHS=["/health"],
    MAINTENANCE_ALLOWED_IPS=["10.0.0.0/8", "192.168.1.7", "2001:db8::/32"],
)
Maintenance(app)
