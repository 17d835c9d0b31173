from flask import Flask
from flask_admin import Admin
from flask_admin.contrib.sqla import ModelView
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from flask_maintenance import Maintenance


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)


class Product(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]


class Order(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    product: Mapped[str]


app = Flask(__name__)
app.config["SQLALCHEMY_DATABASE_URI"] = "sqlite://"
db.init_app(app)
admin = Admin(app, name="Shop admin")
# Each view is a blueprint of its own ("product", "order"), beside the index ("admin").
admin.add_view(ModelView(Product, db))
admin.add_view(ModelView(Order, db))
maintenance = Maintenance(app)
# `flask maintenance on --feature admin` then switches off every page under /admin.
maintenance.feature("admin", prefix="/admin")


@app.get("/")
def index():
    return "The shop"


with app.app_context():
    db.create_all()
