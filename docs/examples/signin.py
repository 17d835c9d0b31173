from flask import Flask, redirect, request
from flask_login import LoginManager, UserMixin, current_user, login_user
from werkzeug.security import check_password_hash, generate_password_hash

from flask_maintenance import Maintenance

app = Flask(__name__)
app.config["SECRET_KEY"] = "change-me"
# The sign-in form stays open during maintenance (GET and POST), so that staff can sign in.
app.config["MAINTENANCE_ALLOWED_PATHS"] = ["/login"]
login_manager = LoginManager(app)
maintenance = Maintenance(app)


class User(UserMixin):
    def __init__(self, name, password, is_admin):
        self.id = name
        self.password_hash = generate_password_hash(password)
        self.is_admin = is_admin


# Stands in for your user table.
USERS = {user.id: user for user in (User("ada", "staff-only", True), User("bob", "hunter2", False))}


@login_manager.user_loader
def load_user(user_id):
    return USERS.get(user_id)


# Flask-Login finds the user in the session cookie, or in the remember-me cookie alone (an
# admin who signed in with "remember me" and closed the browser). Naming both cookies keeps
# the requests that carry neither on the fast path.
@maintenance.bypass_rule(cookie="session")
@maintenance.bypass_rule(cookie="remember_token")
def signed_in_admin():
    return current_user.is_authenticated and current_user.is_admin


@app.route("/login", methods=["GET", "POST"])
def login():
    if request.method == "GET":
        return (
            '<form method="post"><input name="name"> <input name="password" type="password">'
            ' <label><input name="remember" type="checkbox"> Remember me</label>'
            " <button>Sign in</button></form>"
        )
    user = USERS.get(request.form.get("name", ""))
    if user is None or not check_password_hash(user.password_hash, request.form.get("password", "")):
        return "Wrong name or password", 401
    login_user(user, remember=request.form.get("remember") == "on")
    return redirect("/")


@app.get("/")
def index():
    return f"Hello, {current_user.id}!" if current_user.is_authenticated else "Hello!"
