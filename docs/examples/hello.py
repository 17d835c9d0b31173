from flask import Flask

from flask_maintenance import Maintenance

app = Flask(__name__)
app.config["SECRET_KEY"] = "change-me"  # signs the admin bypass cookie
Maintenance(app)


@app.get("/")
def index():
    return "Hello!"
