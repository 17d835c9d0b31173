from flask import Flask, session
from werkzeug.middleware.proxy_fix import ProxyFix

from flask_maintenance import Maintenance

app = Flask(__name__)
app.config["SECRET_KEY"] = "change-me"  # signs the session and the bypass cookie
# 1. Addresses and CIDR ranges, IPv4 and IPv6, matched against request.remote_addr.
app.config["MAINTENANCE_ALLOWED_IPS"] = ["203.0.113.7", "10.8.0.0/16", "2001:db8:1::/48"]
# Behind one proxy you control: remote_addr becomes the client's address, not the proxy's.
app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1)
maintenance = Maintenance(app)


# 3. Your own rule. Without a session cookie it can never pass, so cookie="session" lets the
# fast path refuse those requests without running the rule.
@maintenance.bypass_rule(cookie="session")
def signed_in_admin():
    return session.get("admin") is True


@app.get("/")
def index():
    return "Hello!"
