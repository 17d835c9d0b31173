from datetime import datetime, timezone

from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import Mapped, mapped_column

from flask_maintenance import Maintenance

app = Flask(__name__)
app.config["SQLALCHEMY_DATABASE_URI"] = "sqlite:///shop.db"  # in the instance folder
app.config["MAINTENANCE_PROTECT_DATABASE"] = True

db = SQLAlchemy(app)  # before Maintenance(app): it protects the app's Flask-SQLAlchemy
maintenance = Maintenance(app)


class Product(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]
    last_viewed: Mapped[datetime | None]


@app.get("/products/<int:product_id>")
def product(product_id):
    item = db.get_or_404(Product, product_id)
    item.last_viewed = datetime.now(timezone.utc)  # a write hidden in a GET
    db.session.commit()  # read-only maintenance: the database refuses it, the reader gets the 503
    return {"name": item.name}


@app.post("/admin/products/<int:product_id>/rename")
def rename(product_id):
    # In readonly mode only admins get here (through the bypass link or an allowed address),
    # and even they write only inside writable(): this is maintenance work.
    with maintenance.writable():
        db.get_or_404(Product, product_id).name = "Renamed"
        db.session.commit()
    return {"renamed": product_id}
