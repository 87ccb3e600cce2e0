"""REST API of alerts: rules (400s naming the parameter), alerts (filters, acknowledge,
resolve), webhooks (secret write-only), permissions per role, the OpenAPI schema."""

import pytest
from django.contrib.auth.models import Permission
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from health.alerts import alerts_evaluate
from health.models import Alert, AlertRule, Webhook
from health.models_alerts import AlertStatus, Resolution
from integrations.models import MetricDefinition

from .alert_helpers import TODAY, company, drop_rule, falling

pytestmark = pytest.mark.django_db

SECRET = "a-webhook-secret-0123456789"


@pytest.fixture(autouse=True)
def _local_hooks(settings):
    settings.WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]


def _client_with(django_user_model, *codenames: str) -> APIClient:
    user = django_user_model.objects.create_user(username="-".join(codenames) or "nobody")
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


# --- Rules ------------------------------------------------------------------------------------


def test_create_usage_drop_rule_and_read_it_back(api_client):
    hook = Webhook.objects.create(name="Slack", url="http://127.0.0.1/h", secret=SECRET)
    answer = api_client.post(
        "/api/alert-rules/",
        {
            "name": "Usage halved",
            "kind": "usage_drop",
            "drop_percent": 50,
            "window_days": 7,
            "baseline_periods": 4,
            "cooldown_hours": 48,
            "min_mrr": "1000.00",
            "email_recipients": ["cs@example.com", " CS@example.com "],
            "webhooks": [hook.pk],
            "notify_owner": True,
        },
        format="json",
    )
    assert answer.status_code == 201, answer.json()
    body = answer.json()
    assert body["kind"] == "usage_drop"
    assert body["email_recipients"] == ["cs@example.com"]
    assert body["webhooks"] == [hook.pk]
    assert body["min_mrr"] == "1000.00"
    assert body["action"] == ""
    assert body["metric"] is None
    assert body["active_alerts"] == 0
    rule = AlertRule.objects.get(pk=body["id"])
    assert (rule.drop_percent, rule.window_days, rule.baseline_periods) == (50, 7, 4)


@pytest.mark.parametrize(
    ("payload", "field", "words"),
    [
        (
            {"kind": "usage_drop", "window_days": 7, "baseline_periods": 4},
            "drop_percent",
            "Required",
        ),
        (
            {"kind": "usage_drop", "drop_percent": 50, "baseline_periods": 4},
            "window_days",
            "Required",
        ),
        (
            {"kind": "usage_drop", "drop_percent": 150, "window_days": 7, "baseline_periods": 4},
            "drop_percent",
            "at most 100",
        ),
        (
            {
                "kind": "usage_drop",
                "drop_percent": 50,
                "window_days": 7,
                "baseline_periods": 4,
                "days": 3,
            },
            "days",
            "Means nothing",
        ),
        ({"kind": "inactivity"}, "days", "Required"),
        ({"kind": "inactivity", "days": 14, "to_band": "red"}, "to_band", "Means nothing"),
        ({"kind": "active_endusers_below", "threshold": 3}, "window_days", "Required"),
        (
            {"kind": "active_endusers_below", "threshold": 2.5, "window_days": 30},
            "threshold",
            "whole number",
        ),
        ({"kind": "metric_threshold", "operator": "lt", "threshold": 1}, "metric", "Required"),
        ({"kind": "metric_threshold", "metric": "seats", "threshold": 1}, "operator", "Required"),
        (
            {"kind": "metric_threshold", "metric": "nope", "operator": "lt", "threshold": 1},
            "metric",
            "does not exist",
        ),
        ({"kind": "health_band_change"}, "to_band", "Required"),
        ({"kind": "health_band_change", "to_band": "purple"}, "to_band", "valid choice"),
        ({"kind": "bogus"}, "kind", "valid choice"),
        (
            {"kind": "inactivity", "days": 3, "email_recipients": ["nope"]},
            "email_recipients",
            "Not an email",
        ),
        ({"kind": "inactivity", "days": 3, "cooldown_hours": -1}, "cooldown_hours", ""),
    ],
)
def test_missing_or_meaningless_parameter_is_a_400_naming_it(api_client, payload, field, words):
    MetricDefinition.objects.create(key="seats")
    answer = api_client.post("/api/alert-rules/", {"name": "R", **payload}, format="json")
    assert answer.status_code == 400
    errors = answer.json()
    assert field in errors, errors
    assert words in " ".join(errors[field])
    assert AlertRule.objects.count() == 0


def test_metric_rule_takes_and_returns_the_metric_key(api_client):
    MetricDefinition.objects.create(key="seats")
    answer = api_client.post(
        "/api/alert-rules/",
        {
            "name": "Seats",
            "kind": "metric_threshold",
            "metric": "seats",
            "operator": "gt",
            "threshold": 100,
        },
        format="json",
    )
    assert answer.status_code == 201, answer.json()
    assert answer.json()["metric"] == "seats"


def test_changing_the_kind_drops_the_old_parameters(api_client):
    rule = drop_rule()
    answer = api_client.patch(
        f"/api/alert-rules/{rule.pk}/", {"kind": "inactivity", "days": 10}, format="json"
    )
    assert answer.status_code == 200, answer.json()
    body = answer.json()
    assert (body["days"], body["drop_percent"], body["window_days"]) == (10, None, None)


def test_duplicate_rule_name_is_a_400(api_client):
    drop_rule(name="Usage drop")
    answer = api_client.post(
        "/api/alert-rules/", {"name": "usage DROP", "kind": "inactivity", "days": 3}, format="json"
    )
    assert answer.status_code == 400
    assert "already a rule named" in answer.json()["name"][0]


def test_evaluate_action_answers_what_it_did(api_client):
    drop_rule()
    falling(company())
    answer = api_client.post(
        "/api/alert-rules/evaluate/", {"day": TODAY.isoformat()}, format="json"
    )
    assert answer.status_code == 200
    body = answer.json()
    assert body["opened"] == 1
    assert body["rules"][0]["opened"] == 1
    again = api_client.post("/api/alert-rules/evaluate/", {"day": TODAY.isoformat()}, format="json")
    assert again.json()["opened"] == 0


# --- Alerts -----------------------------------------------------------------------------------


@pytest.fixture
def two_alerts():
    drop_rule()
    falling(company(external_id="ACME"))
    falling(company(external_id="GLOBEX"))
    alerts_evaluate(day=TODAY)
    return list(Alert.objects.order_by("company__external_id"))


def test_alert_list_filters(api_client, two_alerts):
    acme, globex = two_alerts
    assert api_client.get("/api/alerts/").json()["count"] == 2
    one = api_client.get("/api/alerts/", {"company_external_id": "ACME"}).json()
    assert [a["id"] for a in one["results"]] == [acme.pk]
    assert one["results"][0]["company_external_id"] == "ACME"
    assert one["results"][0]["facts"]["drop_percent"] == 80.0
    assert set(one["results"][0]) >= {
        "id",
        "rule",
        "company",
        "company_external_id",
        "status",
        "opened_at",
        "resolved_at",
        "facts",
    }
    by_company = api_client.get("/api/alerts/", {"company": globex.company_id}).json()
    assert [a["id"] for a in by_company["results"]] == [globex.pk]
    by_rule = api_client.get("/api/alerts/", {"rule": acme.rule_id}).json()
    assert by_rule["count"] == 2
    assert api_client.get("/api/alerts/", {"status": "resolved"}).json()["count"] == 0
    assert api_client.get("/api/alerts/", {"status": "open"}).json()["count"] == 2


def test_acknowledge_and_resolve(api_client, two_alerts, staff_user):
    alert = two_alerts[0]
    answer = api_client.post(f"/api/alerts/{alert.pk}/acknowledge/")
    assert answer.status_code == 200
    assert answer.json()["status"] == "acknowledged"
    assert answer.json()["acknowledged_by"] == staff_user.username
    answer = api_client.post(
        f"/api/alerts/{alert.pk}/resolve/", {"note": "Renewal call went fine"}, format="json"
    )
    assert answer.status_code == 200
    body = answer.json()
    assert body["status"] == "resolved"
    assert body["resolution"] == Resolution.PERSON
    assert body["resolution_note"] == "Renewal call went fine"
    assert body["resolved_at"] is not None
    alert.refresh_from_db()
    assert alert.status == AlertStatus.RESOLVED
    assert alert.resolved_by == staff_user
    # Resolved is final: both actions answer 409 and change nothing.
    assert api_client.post(f"/api/alerts/{alert.pk}/resolve/").status_code == 409
    assert api_client.post(f"/api/alerts/{alert.pk}/acknowledge/").status_code == 409
    assert api_client.get("/api/alerts/", {"status": ["open", "acknowledged"]}).json()["count"] == 1


def test_permissions_per_role(django_user_model, two_alerts):
    alert = two_alerts[0]
    viewer = _client_with(django_user_model, "view_alert", "view_alertrule", "view_webhook")
    assert viewer.get("/api/alerts/").status_code == 200
    assert viewer.get("/api/alert-rules/").status_code == 200
    assert viewer.post(f"/api/alerts/{alert.pk}/acknowledge/").status_code == 403
    assert viewer.post("/api/alert-rules/evaluate/").status_code == 403
    assert viewer.post("/api/alert-rules/", {"name": "x"}, format="json").status_code == 403
    manager = _client_with(django_user_model, "view_alert", "acknowledge_alert", "resolve_alert")
    assert manager.post(f"/api/alerts/{alert.pk}/acknowledge/").status_code == 200
    assert manager.post(f"/api/alerts/{alert.pk}/resolve/").status_code == 200
    assert manager.post("/api/alert-rules/evaluate/").status_code == 403
    nobody = _client_with(django_user_model)
    assert nobody.get("/api/alerts/").status_code == 403
    admin = _client_with(django_user_model, "add_alertrule", "evaluate_alertrule", "view_alertrule")
    assert admin.post("/api/alert-rules/evaluate/", {}, format="json").status_code == 200
    created = admin.post(
        "/api/alert-rules/", {"name": "Quiet", "kind": "inactivity", "days": 9}, format="json"
    )
    assert created.status_code == 201
    assert APIClient().get("/api/alerts/").status_code in (401, 403)


# --- Webhooks ---------------------------------------------------------------------------------


def test_webhook_secret_is_write_only(api_client):
    answer = api_client.post(
        "/api/webhooks/",
        {"name": "Slack", "url": "http://127.0.0.1:9999/hook", "secret": SECRET},
        format="json",
    )
    assert answer.status_code == 201, answer.json()
    body = answer.json()
    assert "secret" not in body
    assert body["has_secret"] is True
    assert Webhook.objects.get().secret == SECRET
    listed = api_client.get("/api/webhooks/").json()["results"][0]
    assert "secret" not in listed
    # Leaving the secret out keeps it; giving one replaces it.
    api_client.patch(f"/api/webhooks/{body['id']}/", {"name": "Slack #cs"}, format="json")
    assert Webhook.objects.get().secret == SECRET
    api_client.patch(
        f"/api/webhooks/{body['id']}/", {"secret": "another-secret-0123456"}, format="json"
    )
    assert Webhook.objects.get().secret == "another-secret-0123456"


@pytest.mark.parametrize(
    "url",
    [
        "ftp://127.0.0.1/hook",
        "http://10.0.0.8/hook",
        "http://169.254.169.254/",
        "http://127.0.0.2/",
    ],
)
def test_webhook_refused_urls_are_400s(api_client, url):
    answer = api_client.post(
        "/api/webhooks/", {"name": "Bad", "url": url, "secret": SECRET}, format="json"
    )
    assert answer.status_code == 400
    assert "url" in answer.json()
    assert not Webhook.objects.exists()


def test_webhook_without_a_secret_is_a_400(api_client):
    answer = api_client.post(
        "/api/webhooks/", {"name": "Bad", "url": "http://127.0.0.1/h"}, format="json"
    )
    assert answer.status_code == 400
    assert "secret" in answer.json()


# --- Company owner and schema -------------------------------------------------------------------


def test_company_owner_email_through_the_api(api_client):
    answer = api_client.post(
        "/api/companies/", {"name": "Acme", "owner_email": "ana@acme.example"}, format="json"
    )
    assert answer.status_code == 201
    assert answer.json()["owner_email"] == "ana@acme.example"
    bad = api_client.patch(
        f"/api/companies/{answer.json()['id']}/", {"owner_email": "nope"}, format="json"
    )
    assert bad.status_code == 400
    assert "owner_email" in bad.json()


def test_openapi_schema_has_the_alert_routes(api_client):
    answer = api_client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert answer.status_code == 200
    paths = answer.json()["paths"]
    for route in (
        "/api/alert-rules/",
        "/api/alert-rules/{id}/",
        "/api/alert-rules/evaluate/",
        "/api/alerts/",
        "/api/alerts/{id}/",
        "/api/alerts/{id}/acknowledge/",
        "/api/alerts/{id}/resolve/",
        "/api/webhooks/",
        "/api/webhooks/{id}/",
    ):
        assert route in paths, route
    webhook = answer.json()["components"]["schemas"]["Webhook"]["properties"]
    assert webhook["secret"]["writeOnly"] is True


def test_openapi_schema_validates_without_warnings(tmp_path):
    from django.core.management import call_command

    target = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target))
    assert "/api/alerts/{id}/acknowledge/" in target.read_text()
