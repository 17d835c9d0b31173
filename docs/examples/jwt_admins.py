from flask import Flask, jsonify
from flask_jwt_extended import JWTManager, jwt_required, verify_jwt_in_request
from flask_jwt_extended.exceptions import JWTExtendedException
from jwt import PyJWTError

from flask_maintenance import Maintenance

app = Flask(__name__)
app.config["JWT_SECRET_KEY"] = "change-me-to-32-random-bytes-or-more"  # HS256 wants 32+
app.config["MAINTENANCE_API_PREFIXES"] = ["/api"]
jwt = JWTManager(app)
maintenance = Maintenance(app)


@maintenance.bypass_rule
def admin_token():
    try:
        found = verify_jwt_in_request(optional=True)
    except (JWTExtendedException, PyJWTError):
        return False  # a wrong or expired token is no admin: the 503, not a 401
    return found is not None and found[1].get("admin") is True


@app.get("/api/orders")
@jwt_required()
def orders():
    return jsonify(orders=[])
