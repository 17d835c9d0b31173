import hmac

from flask import Flask, jsonify
from flask_httpauth import HTTPBasicAuth, HTTPTokenAuth, MultiAuth
from werkzeug.security import check_password_hash, generate_password_hash

from flask_maintenance import Maintenance

app = Flask(__name__)
app.config["MAINTENANCE_API_PREFIXES"] = ["/api"]
maintenance = Maintenance(app)
basic = HTTPBasicAuth()
token = HTTPTokenAuth(scheme="Bearer")
auth = MultiAuth(basic, token)


class User:
    def __init__(self, name, password, api_token, is_admin):
        self.name = name
        self.password_hash = generate_password_hash(password)
        self.api_token = api_token
        self.is_admin = is_admin


# Stands in for your user table.
USERS = [User("ada", "staff-only", "ada-token", True), User("bob", "hunter2", "bob-token", False)]


@basic.verify_password
def verify_password(name, password):
    for user in USERS:
        if user.name == name and check_password_hash(user.password_hash, password):
            return user
    return None


@token.verify_token
def verify_token(api_token):
    for user in USERS:
        if api_token and hmac.compare_digest(user.api_token, api_token):
            return user
    return None


# optional=True: no credentials, or wrong ones, leave current_user() None instead of
# answering 401, and the rule says no: the request gets the 503.
@maintenance.bypass_rule
@auth.login_required(optional=True)
def admin():
    user = auth.current_user()
    return user is not None and user.is_admin


@app.get("/api/orders")
@auth.login_required
def orders():
    return jsonify(orders=[], user=auth.current_user().name)
