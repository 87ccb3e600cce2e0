import datetime as dt

import pytest
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from integrations.models import IntegrationSettings, MetricDefinition
from integrations.services import integration_ensure, tenant_token_check

pytestmark = pytest.mark.django_db

STAFF_ROUTES = ["/api/integration/", "/api/metric-definitions/"]


@pytest.fixture
def member_client(django_user_model):
    """An authenticated user who is not staff."""
    user = django_user_model.objects.create_user(username="member", password="x" * 20)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


@pytest.mark.parametrize("route", STAFF_ROUTES)
def test_integration_routes_need_a_token(route):
    assert APIClient().get(route).status_code == 401


@pytest.mark.parametrize("route", STAFF_ROUTES)
def test_integration_routes_are_staff_only(member_client, route):
    assert member_client.get(route).status_code == 403


def test_non_staff_can_neither_change_settings_nor_rotate(member_client, integration):
    assert (
        member_client.patch(
            "/api/integration/", {"create_endusers": False}, format="json"
        ).status_code
        == 403
    )
    assert member_client.post("/api/integration/rotate-token/").status_code == 403
    assert (
        member_client.post("/api/metric-definitions/", {"key": "seats"}, format="json").status_code
        == 403
    )
    fresh = IntegrationSettings.objects.get()
    assert (fresh.create_endusers, fresh.tenant_token) == (True, integration.tenant_token)
    assert not MetricDefinition.objects.exists()


def test_get_shows_settings_without_secrets(api_client, settings):
    settings.PUBLIC_BASE_URL = "https://cs.example.com"
    row = integration_ensure()
    row.write_key = "wk_secret_value_1234"
    row.shared_secret = "hmac-secret-value"
    row.save()
    answer = api_client.get("/api/integration/")
    assert answer.status_code == 200
    body = answer.json()
    assert "write_key" not in body
    assert "shared_secret" not in body
    assert "wk_secret_value" not in answer.content.decode()
    assert "hmac-secret-value" not in answer.content.decode()
    assert body["write_key_set"] is True
    assert body["write_key_masked"] == "••••1234"
    assert body["shared_secret_set"] is True
    assert body["tenant_token"] == row.tenant_token
    assert body["public_base_url"] == "https://cs.example.com"
    assert body["token_rotation_grace_hours"] == settings.TOKEN_ROTATION_GRACE_HOURS
    assert body["is_on"] is False
    assert body["status_reason"].startswith("OFF")
    assert (body["user_tracking_enabled"], body["company_metrics_enabled"]) == (True, True)


def test_patch_writes_secrets_and_switches_without_echoing_them(api_client, integration):
    answer = api_client.patch(
        "/api/integration/",
        {
            "write_key": "wk_new_key_abcd",
            "shared_secret": "s3cret",
            "warehouse_enabled": True,
            "create_endusers": False,
            "unassigned_wait_hours": 48,
            "region": "eu",
            "synced_models": ["company", "enduser"],
        },
        format="json",
    )
    assert answer.status_code == 200, answer.json()
    assert "wk_new_key_abcd" not in answer.content.decode()
    assert "s3cret" not in answer.content.decode()
    assert answer.json()["is_on"] is True
    row = IntegrationSettings.objects.get()
    assert (row.write_key, row.shared_secret, row.warehouse_enabled) == (
        "wk_new_key_abcd",
        "s3cret",
        True,
    )
    assert (row.create_endusers, row.unassigned_wait_hours, row.region) == (False, 48, "eu")
    assert row.synced_models == ["company", "enduser"]


def test_patch_cannot_set_read_only_fields(api_client, integration):
    answer = api_client.patch(
        "/api/integration/",
        {"tenant_token": "mine", "is_on": True, "previous_token_valid_until": None},
        format="json",
    )
    assert answer.status_code == 200
    row = IntegrationSettings.objects.get()
    assert (row.tenant_token, row.warehouse_enabled) == (integration.tenant_token, False)


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        (
            {"warehouse_enabled": True},
            "write_key",
            "Enter the Segment source's write key to enable the warehouse push.",
        ),
        (
            {"region": "custom"},
            "custom_base_url",
            "A custom region needs a base URL (e.g. https://proxy.example.com).",
        ),
        (
            {"synced_models": ["company", "invoice"]},
            "synced_models",
            "Unknown model(s) ['invoice']; choose from "
            "['asset', 'company', 'enduser', 'license', 'project'].",
        ),
    ],
)
def test_patch_validation_errors_come_from_the_model(api_client, integration, body, field, message):
    answer = api_client.patch("/api/integration/", body, format="json")
    assert answer.status_code == 400
    assert answer.json() == {field: [message]}
    row = IntegrationSettings.objects.get()
    assert (row.warehouse_enabled, row.region, row.synced_models) == (
        False,
        "us",
        integration.synced_models,
    )


def test_rotate_token_returns_new_token_and_keeps_old_one_for_grace(api_client, integration):
    old = integration.tenant_token
    before = timezone.now()
    answer = api_client.post("/api/integration/rotate-token/")
    assert answer.status_code == 200
    body = answer.json()
    row = IntegrationSettings.objects.get()
    assert body["tenant_token"] == row.tenant_token != old
    assert row.previous_token == old
    until = row.previous_token_valid_until
    assert body["previous_token_valid_until"] == until.isoformat().replace("+00:00", "Z")
    grace = dt.timedelta(hours=72)
    assert before + grace <= until <= timezone.now() + grace
    assert tenant_token_check(integration=row, presented=old).is_previous
    assert api_client.get("/api/integration/").json()["tenant_token"] == row.tenant_token


# --- metric definitions -------------------------------------------------------------------


def test_metric_definition_crud(api_client):
    answer = api_client.post(
        "/api/metric-definitions/", {"key": " active_users ", "description": "DAU"}, format="json"
    )
    assert answer.status_code == 201, answer.json()
    metric = MetricDefinition.objects.get()
    assert (metric.key, metric.label) == ("active_users", "Active users")
    assert answer.json()["id"] == metric.pk

    listing = api_client.get("/api/metric-definitions/").json()
    assert [row["key"] for row in listing["results"]] == ["active_users"]

    answer = api_client.patch(
        f"/api/metric-definitions/{metric.pk}/", {"label": "Daily actives"}, format="json"
    )
    assert answer.status_code == 200
    metric.refresh_from_db()
    assert (metric.key, metric.label, metric.description) == (
        "active_users",
        "Daily actives",
        "DAU",
    )

    # DELETE removes = archives: the definition and its values stay, restorable.
    assert api_client.delete(f"/api/metric-definitions/{metric.pk}/").status_code == 204
    metric.refresh_from_db()
    assert metric.archived_at is not None
    assert api_client.get(f"/api/metric-definitions/{metric.pk}/").json()["archived_at"]
    listing = api_client.get("/api/metric-definitions/?archived=false").json()
    assert listing["results"] == []
    listing = api_client.get("/api/metric-definitions/?archived=true").json()
    assert [row["key"] for row in listing["results"]] == ["active_users"]
    answer = api_client.post(f"/api/metric-definitions/{metric.pk}/restore/")
    assert answer.status_code == 200
    assert answer.json()["archived_at"] is None


def test_metric_definition_purge_needs_archive_and_the_count(api_client):
    from planhat_segment.models import Company
    from usage.models import MetricValue

    metric = MetricDefinition.objects.create(key="seats")
    company = Company.objects.create(name="Acme", external_id="ACME")
    now = timezone.now()
    MetricValue.objects.bulk_create(
        MetricValue(company=company, metric=metric, value=i, occurred_at=now, message_id=f"m{i}")
        for i in range(3)
    )
    url = f"/api/metric-definitions/{metric.pk}/purge/"
    answer = api_client.post(url, {"confirm_values": 3}, format="json")
    assert answer.status_code == 400
    assert "remove (archive) it before" in str(answer.json())
    api_client.delete(f"/api/metric-definitions/{metric.pk}/")
    answer = api_client.post(url, {"confirm_values": 2}, format="json")
    assert answer.status_code == 400
    assert "has 3 stored values, not 2" in str(answer.json())
    assert MetricValue.objects.count() == 3
    answer = api_client.post(url, {"confirm_values": 3}, format="json")
    assert answer.status_code == 200
    assert answer.json() == {"deleted_values": 3}
    assert not MetricDefinition.objects.exists() and not MetricValue.objects.exists()


@pytest.mark.parametrize("key", ["active users", "", "seats!"])
def test_metric_definition_invalid_key_is_a_400(api_client, key):
    answer = api_client.post("/api/metric-definitions/", {"key": key}, format="json")
    assert answer.status_code == 400
    assert list(answer.json()) == ["key"]
    assert not MetricDefinition.objects.exists()


def test_metric_definition_invalid_key_message(api_client):
    answer = api_client.post("/api/metric-definitions/", {"key": "active users"}, format="json")
    assert answer.json()["key"][0].startswith("'active users' is not a valid metric key")


def test_metric_definition_duplicate_key_is_a_400(api_client):
    MetricDefinition.objects.create(key="seats")
    answer = api_client.post("/api/metric-definitions/", {"key": "seats"}, format="json")
    assert answer.status_code == 400
    assert answer.json() == {"key": ["A metric with the key 'seats' already exists."]}
    other = MetricDefinition.objects.create(key="mrr")
    answer = api_client.patch(
        f"/api/metric-definitions/{other.pk}/", {"key": "seats"}, format="json"
    )
    assert answer.status_code == 400
    other.refresh_from_db()
    assert other.key == "mrr"
    assert MetricDefinition.objects.count() == 2


def test_previous_token_valid_until_is_shown_only_while_it_works(api_client, integration):
    api_client.post("/api/integration/rotate-token/")
    assert api_client.get("/api/integration/").json()["previous_token_valid_until"] is not None
    IntegrationSettings.objects.update(
        previous_token_valid_until=timezone.now() - dt.timedelta(minutes=1)
    )
    assert api_client.get("/api/integration/").json()["previous_token_valid_until"] is None
