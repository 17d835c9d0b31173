from flask import Blueprint, Flask

from flask_maintenance import Maintenance

app = Flask(__name__)
maintenance = Maintenance(app)

# Every blueprint is a feature by its own name: this one is "shop".
shop = Blueprint("shop", __name__, url_prefix="/shop")


@shop.get("/")
def catalogue():
    return "The catalogue"


# A view (or a command, or a guarded function) can be given a feature name of its own.
@app.post("/checkout")
@maintenance.feature("payments")
def checkout():
    return "Paid"


# A whole blueprint can answer to another name too.
billing = Blueprint("billing", __name__, url_prefix="/billing")
maintenance.feature("payments", blueprint=billing)


@billing.get("/invoices")
def invoices():
    return "Your invoices"


# Views that share a URL prefix but no blueprint (another extension's, say) can be named by it.
maintenance.feature("reports", prefix="/reports")


@app.get("/reports/sales")
def sales_report():
    return "Sales by month"


app.register_blueprint(shop)
app.register_blueprint(billing)
