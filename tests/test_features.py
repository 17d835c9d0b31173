"""Kill switches: one feature off on its own (a view, a blueprint, a command, a guarded function)
while the rest of the app runs; every blueprint is a feature by its name."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from flask import Blueprint, Flask, request

from flask_maintenance import ConfigurationError, Maintenance, MaintenanceActive
from flask_maintenance.responses import FEATURE_PROBLEM_TYPE
from flask_maintenance.texts import texts

AppFactory = Callable[..., Flask]

fast_path = pytest.mark.parametrize("fast", [True, False], ids=["fast-path", "hook-only"])


class Shop:
    """An app with features of every kind, and the paths that belong to each."""

    def __init__(self, make_app: AppFactory, **config: Any) -> None:
        self.extension = m = Maintenance()
        self.app = app = make_app(m, **config)
        self.ran: list[str] = []

        @app.post("/pay")
        @m.feature("payments")
        def pay() -> str:
            return "paid"

        @m.feature("payments")
        @app.get("/api/pay")
        def api_pay() -> dict[str, str]:
            return {"paid": "yes"}

        @app.get("/search")
        @m.feature("search")
        @m.feature("catalogue")
        def search() -> str:
            return "results"

        # A blueprint named for code, given a feature name as a whole.
        checkout = Blueprint("checkout", __name__, url_prefix="/checkout")
        m.feature("payments", blueprint=checkout)

        @checkout.get("/")
        def checkout_index() -> str:
            return "checkout"

        # A blueprint nobody wrote maintenance code for.
        admin = Blueprint("admin", __name__, url_prefix="/admin")

        @admin.get("/")
        def admin_index() -> str:
            return "admin"

        @admin.post("/users")
        def admin_users() -> str:
            return "user saved"

        # Nested: account, and billing inside it (its full name is account.billing).
        account = Blueprint("account", __name__, url_prefix="/account")
        billing = Blueprint("billing", __name__, url_prefix="/billing")

        @account.get("/")
        def account_index() -> str:
            return "account"

        @billing.get("/")
        def billing_index() -> str:
            return "billing"

        account.register_blueprint(billing)
        for blueprint in (checkout, admin, account):
            app.register_blueprint(blueprint)

        @app.cli.command("charge")
        @m.feature("payments")
        def charge() -> None:
            self.ran.append("charge")

        @m.feature("payments")
        @app.cli.command("refund")
        def refund() -> None:
            self.ran.append("refund")

        @app.cli.command("reindex")
        @m.feature("search")
        def reindex() -> None:
            self.ran.append("reindex")

        @app.cli.command("hello")
        def hello() -> None:
            self.ran.append("hello")

        self.client = app.test_client()

    def cli(self, *args: str) -> Result:
        return self.app.test_cli_runner().invoke(args=list(args))

    def status(self, path: str, method: str = "GET", **kwargs: Any) -> int:
        return self.client.open(path, method=method, **kwargs).status_code


EVERYTHING = [
    ("GET", "/"),
    ("POST", "/form"),
    ("DELETE", "/api/items"),
    ("POST", "/pay"),
    ("GET", "/api/pay"),
    ("GET", "/search"),
    ("GET", "/checkout/"),
    ("GET", "/admin/"),
    ("POST", "/admin/users"),
    ("GET", "/account/"),
    ("GET", "/account/billing/"),
]


def down_while(shop: Shop, feature: str) -> set[tuple[str, str]]:
    """Which of EVERYTHING answers 503 while ``feature`` is off."""
    shop.extension.enable(feature=feature, app=shop.app)
    try:
        return {(method, path) for method, path in EVERYTHING if shop.status(path, method) == 503}
    finally:
        shop.extension.disable(feature=feature, app=shop.app)


@pytest.fixture
def shop(make_app: AppFactory) -> Shop:
    return Shop(make_app)


class TestWhatEachFeatureTakesDown:
    @fast_path
    def test_payments_view_and_blueprint_feature(self, make_app: AppFactory, fast: bool) -> None:
        shop = Shop(make_app, MAINTENANCE_FAST_PATH=fast)
        assert down_while(shop, "payments") == {("POST", "/pay"), ("GET", "/api/pay"), ("GET", "/checkout/")}

    def test_a_view_can_belong_to_several_features(self, shop: Shop) -> None:
        assert down_while(shop, "search") == {("GET", "/search")}
        assert down_while(shop, "catalogue") == {("GET", "/search")}

    def test_every_blueprint_is_a_feature_by_its_name(self, shop: Shop) -> None:
        assert down_while(shop, "admin") == {("GET", "/admin/"), ("POST", "/admin/users")}
        assert down_while(shop, "checkout") == {("GET", "/checkout/")}

    def test_a_parent_blueprint_takes_its_nested_blueprints_down(self, shop: Shop) -> None:
        assert down_while(shop, "account") == {("GET", "/account/"), ("GET", "/account/billing/")}

    def test_a_nested_blueprint_alone_by_its_full_name(self, shop: Shop) -> None:
        assert down_while(shop, "account.billing") == {("GET", "/account/billing/")}

    def test_an_unknown_feature_takes_nothing_down(self, shop: Shop) -> None:
        assert down_while(shop, "no-such-feature") == set()

    def test_nothing_is_down_after_the_feature_is_back(self, shop: Shop) -> None:
        down_while(shop, "payments")
        assert all(shop.status(path, method) != 503 for method, path in EVERYTHING)

    def test_a_feature_given_to_a_nested_blueprint(self, make_app: AppFactory) -> None:
        m = Maintenance()
        app = make_app(m)
        account = Blueprint("account", __name__, url_prefix="/account")
        billing = Blueprint("billing", __name__, url_prefix="/billing")
        m.feature("invoices", blueprint=billing)

        @billing.get("/")
        def billing_index() -> str:
            return "billing"

        account.register_blueprint(billing)
        app.register_blueprint(account)
        m.enable(feature="invoices", app=app)
        assert app.test_client().get("/account/billing/").status_code == 503


class TestTheRefusal:
    def test_json_problem_with_the_feature_member(self, shop: Shop) -> None:
        shop.extension.enable(feature="payments", message="Our card provider is down", app=shop.app)
        response = shop.client.get("/api/pay")
        assert response.status_code == 503
        assert response.content_type == "application/problem+json"
        assert response.headers["Retry-After"] == "60"
        assert response.headers["Cache-Control"] == "no-store"
        assert response.get_json() == {
            "overdue": False,
            "status_url": "/_maintenance",
            "type": FEATURE_PROBLEM_TYPE,
            "title": "payments is temporarily unavailable",
            "status": 503,
            "detail": "Our card provider is down",
            "retry_after": 60,
            "ends_at": None,
            "feature": "payments",
        }

    def test_json_by_accept_header_and_the_default_detail(self, shop: Shop) -> None:
        shop.extension.enable(feature="payments", app=shop.app)
        response = shop.client.post("/pay", headers={"Accept": "application/json"})
        assert response.status_code == 503
        assert response.content_type == "application/problem+json"
        problem = response.get_json()
        assert problem["detail"] == texts().feature_detail
        assert problem["feature"] == "payments"

    def test_html_page_with_its_own_title_and_detail(self, shop: Shop) -> None:
        shop.extension.enable(feature="admin", message="Admin is <b>moving</b>", app=shop.app)
        response = shop.client.get("/admin/", headers={"Accept": "text/html,*/*;q=0.8"})
        assert response.status_code == 503
        assert response.content_type == "text/html; charset=utf-8"
        page = response.get_data(as_text=True)
        assert "<title>admin is temporarily unavailable</title>" in page
        assert "Admin is &lt;b&gt;moving&lt;/b&gt;" in page
        assert "<b>moving</b>" not in page
        assert "Down for maintenance" not in page
        # The page waits for this feature, not for the whole site, to come back.
        assert '<main role="main" data-status-url="/_maintenance" data-feature="admin" ' in page

    def test_the_rest_of_the_app_runs_and_has_no_banner(self, shop: Shop) -> None:
        shop.extension.enable(feature="payments", app=shop.app)
        response = shop.client.post("/form")
        assert response.status_code == 200
        assert response.get_data(as_text=True) == "form saved"
        assert "X-Maintenance-Banner" not in response.headers
        assert shop.client.get("/checkout/").status_code == 503

    @pytest.mark.parametrize("fast", [True, False], ids=["fast-path", "hook-only"])
    def test_an_allowed_admin_address_bypasses_it(self, make_app: AppFactory, fast: bool) -> None:
        shop = Shop(make_app, MAINTENANCE_ALLOWED_IPS=["10.0.0.0/8"], MAINTENANCE_FAST_PATH=fast)
        shop.extension.enable(feature="payments", app=shop.app)
        admin = {"REMOTE_ADDR": "10.1.2.3"}
        assert shop.client.post("/pay", environ_overrides=admin).status_code == 200
        assert shop.client.get("/checkout/", environ_overrides=admin).status_code == 200
        outsider = {"REMOTE_ADDR": "192.0.2.7"}
        assert shop.client.post("/pay", environ_overrides=outsider).status_code == 503

    def test_an_app_bypass_rule_bypasses_it(self, make_app: AppFactory) -> None:
        shop = Shop(make_app)

        @shop.extension.bypass_rule
        def staff() -> bool:
            return request.headers.get("X-Staff") == "yes"

        shop.extension.enable(feature="payments", app=shop.app)
        assert shop.client.post("/pay", headers={"X-Staff": "yes"}).status_code == 200
        assert shop.client.post("/pay").status_code == 503


class TestFromTheCommandLine:
    def test_on_and_off_feature(self, shop: Shop) -> None:
        result = shop.cli("maintenance", "on", "--feature", "admin", "--message", "Rebuilding permissions")
        assert result.exit_code == 0, result.output
        assert "Feature admin is OFF" in result.output
        assert shop.status("/admin/") == 503
        assert shop.client.get("/api/pay").status_code == 200
        assert shop.status("/") == 200
        problem = shop.client.get("/admin/", headers={"Accept": "application/json"}).get_json()
        assert problem["detail"] == "Rebuilding permissions"

        result = shop.cli("maintenance", "off", "--feature", "admin")
        assert result.exit_code == 0, result.output
        assert "Feature admin is ON again" in result.output
        assert shop.status("/admin/") == 200

    @pytest.mark.parametrize(
        "args, says",
        [
            (["--feature", "bad name!"], "--feature must be a feature name"),
            (["--feature", ""], "--feature must be a feature name"),
            (["--feature", "admin", "--mode", "readonly"], "--feature takes only --message"),
            (["--feature", "admin", "--retry", "30"], "--feature takes only --message"),
            (["--feature", "admin", "--for", "1h"], "--feature takes only --message"),
            (["--feature", "admin", "--secret"], "--feature takes only --message"),
        ],
    )
    def test_bad_input_is_refused_and_changes_nothing(self, shop: Shop, args: list[str], says: str) -> None:
        plan = Path(shop.app.config["MAINTENANCE_LOCK_FILE"] + ".plan")
        shop.cli("maintenance", "on", "--feature", "search")
        before = plan.read_bytes()
        result = shop.cli("maintenance", "on", *args)
        assert result.exit_code == 2, result.output
        assert result.stderr.startswith("Error:") and says in result.stderr, result.stderr
        assert len(result.stderr.splitlines()) == 1
        assert plan.read_bytes() == before
        assert not Path(shop.app.config["MAINTENANCE_LOCK_FILE"]).exists()

    def test_the_api_refuses_whole_site_options_for_a_feature(self, shop: Shop) -> None:
        with pytest.raises(ConfigurationError, match="takes only a message"):
            shop.extension.enable(mode="readonly", feature="payments", app=shop.app)
        with pytest.raises(ConfigurationError, match="must be a feature name"):
            shop.extension.enable(feature="no spaces", app=shop.app)
        with pytest.raises(ConfigurationError, match="must be a feature name"):
            shop.extension.feature("no spaces")
        assert shop.extension.status(app=shop.app).features == {}

    def test_status_lists_killed_features(self, shop: Shop) -> None:
        shop.cli("maintenance", "on", "--feature", "payments", "--message", "Card provider down")
        shop.cli("maintenance", "on", "--feature", "admin")
        output = shop.cli("maintenance", "status").output
        assert "Maintenance is OFF" in output
        lines = [line.strip() for line in output.splitlines() if "feature off:" in line]
        assert len(lines) == 2
        assert lines[0].startswith("feature off:  admin since ")
        assert lines[1].startswith("feature off:  payments since ")
        assert lines[1].endswith(": Card provider down")
        as_json = json.loads(shop.cli("maintenance", "status", "--json").output)
        assert as_json["features"] == ["admin", "payments"]
        assert shop.client.get("/_maintenance").get_json()["features"] == ["admin", "payments"]

        shop.cli("maintenance", "off", "--feature", "admin")
        assert "admin" not in shop.cli("maintenance", "status").output
        assert shop.client.get("/_maintenance").get_json()["features"] == ["payments"]

    def test_with_a_real_flask_command(
        self, run_flask: Callable[..., Any], tmp_path: Path, make_app: AppFactory
    ) -> None:
        lock_file = tmp_path / "maintenance.lock"  # the subprocess app's lock file
        shop = Shop(make_app, MAINTENANCE_LOCK_FILE=str(lock_file))
        done = run_flask(
            "maintenance", "on", "--feature", "payments", "--force", "--message", "Card provider down"
        )
        assert done.returncode == 0, done.stderr
        assert "Feature payments is OFF" in done.stdout
        assert not lock_file.exists(), "the site as a whole stays up"
        assert (
            json.loads((tmp_path / "maintenance.lock.plan").read_text())["features"]["payments"]["message"]
            == "Card provider down"
        )

        assert shop.status("/pay", "POST") == 503
        assert shop.status("/") == 200

        done = run_flask("maintenance", "status")
        assert done.returncode == 0, done.stderr
        assert "feature off:  payments since " in done.stdout

        done = run_flask("maintenance", "off", "--feature", "payments")
        assert done.returncode == 0, done.stderr
        assert "Feature payments is ON again" in done.stdout
        assert shop.status("/pay", "POST") == 200
        assert not (tmp_path / "maintenance.lock.plan").exists()


class TestCommandsAndGuardedFunctions:
    def test_a_command_of_a_killed_feature_exits_75_without_running(self, shop: Shop) -> None:
        shop.extension.enable(feature="payments", app=shop.app)
        for name in ("charge", "refund"):  # the decorator below and above the command's
            result = shop.cli(name)
            assert result.exit_code == 75, (name, result.output)
            assert f"feature payments is switched off for maintenance: `{name}` did not run" in result.stderr
            assert "FLASK_MAINTENANCE_FORCE=1" in result.stderr
        assert shop.ran == []
        for name in ("reindex", "hello"):
            assert shop.cli(name).exit_code == 0
        assert shop.ran == ["reindex", "hello"]

        shop.extension.disable(feature="payments", app=shop.app)
        assert shop.cli("charge").exit_code == 0
        assert shop.ran[-1] == "charge"

    def test_force_runs_it_anyway(self, shop: Shop, monkeypatch: pytest.MonkeyPatch) -> None:
        shop.extension.enable(feature="payments", app=shop.app)
        monkeypatch.setenv("FLASK_MAINTENANCE_FORCE", "1")
        assert shop.cli("charge").exit_code == 0
        assert shop.ran == ["charge"]

    def test_guarded_functions_in_both_orders(self, shop: Shop) -> None:
        m, calls = shop.extension, []

        @m.guard
        @m.feature("payments")
        def settle() -> str:
            calls.append("settle")
            return "settled"

        @m.feature("payments")
        @m.guard
        def payout() -> str:
            calls.append("payout")
            return "paid out"

        @m.feature("payments")
        @m.guard(raise_=True)
        def strict() -> str:
            calls.append("strict")
            return "strict"

        @m.guard
        @m.feature("search")
        def reindex() -> str:
            calls.append("reindex")
            return "reindexed"

        with shop.app.app_context():
            m.enable(feature="payments")
            assert settle() is None
            assert payout() is None
            with pytest.raises(MaintenanceActive):
                strict()
            assert reindex() == "reindexed"
            assert calls == ["reindex"]
            m.disable(feature="payments")
            assert (settle(), payout(), strict()) == ("settled", "paid out", "strict")

    def test_a_guard_outside_an_app_context_finds_the_only_app(self, shop: Shop) -> None:
        @shop.extension.guard
        @shop.extension.feature("payments")
        def settle() -> str:
            return "settled"

        shop.extension.enable(feature="payments", app=shop.app)
        assert settle() is None


class TestWithTheGlobalSwitch:
    def test_touch_still_switches_the_whole_site(self, shop: Shop) -> None:
        lock_file = Path(shop.app.config["MAINTENANCE_LOCK_FILE"])
        shop.cli("maintenance", "on", "--feature", "payments")
        lock_file.parent.mkdir(parents=True, exist_ok=True)
        lock_file.touch()
        assert all(shop.status(path, method) == 503 for method, path in EVERYTHING)
        page = shop.client.get("/").get_data(as_text=True)
        assert "Down for maintenance" in page
        lock_file.unlink()
        assert down_while_on(shop) == {("POST", "/pay"), ("GET", "/api/pay"), ("GET", "/checkout/")}

    def test_global_on_and_off_leave_features_alone(self, shop: Shop) -> None:
        shop.cli("maintenance", "on", "--feature", "payments")
        result = shop.cli("maintenance", "on", "--message", "Upgrading")
        assert result.exit_code == 0, result.output
        status = shop.client.get("/_maintenance").get_json()
        assert status["active"] is True and status["features"] == ["payments"]
        lock_before = Path(shop.app.config["MAINTENANCE_LOCK_FILE"]).read_bytes()
        shop.cli("maintenance", "on", "--feature", "admin")
        assert Path(shop.app.config["MAINTENANCE_LOCK_FILE"]).read_bytes() == lock_before
        shop.cli("maintenance", "off")
        assert down_while_on(shop) == {
            ("POST", "/pay"),
            ("GET", "/api/pay"),
            ("GET", "/checkout/"),
            ("GET", "/admin/"),
            ("POST", "/admin/users"),
        }

    def test_during_full_maintenance_a_killed_feature_gets_the_site_wide_answer(self, shop: Shop) -> None:
        shop.extension.enable(feature="payments", app=shop.app)
        shop.extension.enable(message="Everything is down", app=shop.app)
        problem = shop.client.get("/api/pay").get_json()
        assert problem["detail"] == "Everything is down"
        assert "feature" not in problem

    def test_banner_mode_and_a_killed_feature(self, shop: Shop) -> None:
        shop.extension.enable(feature="payments", app=shop.app)
        shop.extension.enable(mode="banner", message="Slow tonight", app=shop.app)
        assert shop.status("/") == 200
        response = shop.client.post("/pay")
        assert response.status_code == 503
        assert response.headers["X-Maintenance-Banner"] == "Slow tonight"

    def test_readonly_mode_does_not_revive_a_killed_feature(self, shop: Shop) -> None:
        shop.extension.enable(feature="payments", app=shop.app)
        shop.extension.enable(mode="readonly", app=shop.app)
        assert shop.status("/") == 200
        assert shop.status("/form", "POST") == 503
        response = shop.client.get("/api/pay")
        assert response.status_code == 503
        assert response.get_json()["feature"] == "payments"


def down_while_on(shop: Shop) -> set[tuple[str, str]]:
    return {(method, path) for method, path in EVERYTHING if shop.status(path, method) == 503}
