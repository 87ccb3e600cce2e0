"""Planhat's open endpoints through HTTP: answers, outcomes in the database, limits, auth."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime

import pytest
from django.test import override_settings

from integrations.models import MetricDefinition, MetricSource
from integrations.services import (
    integration_update,
    metric_definition_create,
    tenant_token_rotate,
)
from tests.factories import AssetFactory, CompanyFactory, EndUserFactory, ProjectFactory
from usage.ingest.auth import integration_cache_clear
from usage.models import Activity, DropReason, InboxEvent, InboxStatus, MetricValue
from usage.services import inbox_drain

pytestmark = pytest.mark.django_db


def post(client, path, body, *, method="POST", content_type="application/json", **extra):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.generic(method, path, data, content_type=content_type, **extra)


def activity(**fields):
    return {
        "email": "ana@acme.example",
        "action": "Logged in",
        "companyExternalId": "ACME",
        **fields,
    }


# --- /analytics: one activity ---------------------------------------------------------------


def test_analytics_single_activity_becomes_an_activity_with_weight_count_info(client, token):
    acme = CompanyFactory(external_id="ACME")
    body = activity(
        externalId="u-1",
        name="Ana Lima",
        date="2026-03-02T10:00:00Z",
        weight=2.5,
        count=3,
        info={"plan": "pro", "seats": 4},
    )
    answer = post(client, f"/analytics/{token}", body)
    assert answer.status_code == 200, answer.content
    assert answer.json() == {"processed": 1, "errors": [], "errors_count": 0}
    assert answer["Access-Control-Allow-Origin"] == "*"
    inbox_drain()

    row = InboxEvent.objects.get()
    assert row.status == InboxStatus.PROCESSED and row.type == "track"
    assert row.message_id.startswith("auto-")
    made = Activity.objects.get()
    assert made.company == acme
    assert made.enduser.external_id == "u-1"
    assert made.enduser.email == "ana@acme.example"
    assert made.enduser.name == "Ana Lima"
    assert (made.action, made.count, made.weight) == ("Logged in", 3, 2.5)
    assert made.properties == {"plan": "pro", "seats": 4}
    assert made.occurred_at == datetime(2026, 3, 2, 10, tzinfo=UTC)


@pytest.mark.parametrize("path", ["/analytics/{t}", "/analytics/{t}/", "/analytics", "/analytics/"])
def test_analytics_token_in_path_or_bearer_with_or_without_slash(client, token, path):
    CompanyFactory(external_id="ACME")
    extra = {} if "{t}" in path else {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    answer = post(client, path.format(t=token), activity(), **extra)
    assert answer.status_code == 200, answer.content
    assert answer.json()["processed"] == 1


def test_analytics_wrong_or_missing_token_is_401_and_stores_nothing(client, integration):
    assert post(client, "/analytics/not-the-token", activity()).status_code == 401
    missing = post(client, "/analytics", activity())
    assert missing.status_code == 401
    assert "Bearer" in missing.json()["detail"]
    wrong_bearer = post(client, "/analytics", activity(), HTTP_AUTHORIZATION="Bearer nope")
    assert wrong_bearer.status_code == 401
    # The browser key is for analytics.js only: never accepted here.
    key = integration.browser_key
    assert post(client, f"/analytics/{key}", activity()).status_code == 401
    assert post(client, f"/dimensiondata/{key}", {"dimensionId": "x"}).status_code == 401
    assert InboxEvent.objects.count() == 0


def test_https_redirect_spares_the_planhat_routes(client, token, settings):
    CompanyFactory(external_id="ACME")
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_REDIRECT_EXEMPT = settings.INGEST_PATH_PATTERNS
    for path in (f"/analytics/{token}", f"/analytics/bulk/{token}", "/analytics/"):
        extra = {} if token in path else {"HTTP_AUTHORIZATION": f"Bearer {token}"}
        assert post(client, path, activity(), **extra).status_code == 200, path
    dimension = {"dimensionId": "nps", "value": 1, "externalId": "ACME"}
    assert post(client, f"/dimensiondata/{token}", dimension).status_code == 200
    assert client.get(f"/v1/projects/{token}/settings").status_code == 200
    assert client.get("/admin/").status_code == 301  # the rest is still redirected


def test_analytics_rotated_token_works_within_grace(client, integration):
    old = integration.tenant_token
    tenant_token_rotate()
    integration_cache_clear()
    assert post(client, f"/analytics/{old}", activity()).status_code == 200


# --- /analytics/bulk ------------------------------------------------------------------------


def test_bulk_good_partial_bad_items_each_answered_by_index(client, token):
    CompanyFactory(external_id="ACME")
    body = [
        {"id": "u-1", "cId": "ACME", "action": "Opened report", "email": "a@acme.example"},
        {"email": "b@acme.example", "cId": "ACME"},  # no action
        "not an object",
        {"action": "Exported", "companyExternalId": "ACME"},  # nobody
        {"email": "c@acme.example", "action": "Viewed", "cId": "ACME", "count": 0},
        {"email": "d@acme.example", "action": "Viewed", "cId": "ACME", "weight": "heavy"},
        {"email": "e@acme.example", "action": "Viewed", "cId": "ACME", "date": "yesterday"},
        {"email": "f@acme.example", "action": "Viewed", "cId": "ACME", "info": [1, 2]},
        {"email": "not-an-email", "action": "Viewed"},
        {"email": "g@acme.example", "action": "Viewed", "cId": "ACME", "count": "2"},
    ]
    answer = post(client, f"/analytics/bulk/{token}", body)
    assert answer.status_code == 200
    result = answer.json()
    assert result["processed"] == 2
    errors = {e["index"]: e["error"] for e in result["errors"]}
    assert set(errors) == {1, 2, 3, 4, 5, 6, 7, 8}
    assert "action is required" in errors[1]
    assert "Not a JSON object" in errors[2]
    assert "email or externalId" in errors[3]
    assert "count" in errors[4] and "weight" in errors[5] and "date" in errors[6]
    assert "info must be a JSON object" in errors[7]
    assert "not an email address" in errors[8]
    inbox_drain()
    made = {a.enduser.email: a for a in Activity.objects.select_related("enduser")}
    assert set(made) == {"a@acme.example", "g@acme.example"}
    assert made["a@acme.example"].enduser.external_id == "u-1"  # Planhat's bulk name "id"
    assert made["g@acme.example"].count == 2


def test_bulk_exact_resend_is_processed_again_but_counts_once(client, token):
    CompanyFactory(external_id="ACME")
    dated = [activity(date="2026-03-02T10:00:00.250Z"), activity(date="2026-03-02T10:00:00.900Z")]
    first = post(client, f"/analytics/bulk/{token}", dated).json()
    again = post(client, f"/analytics/bulk/{token}", dated).json()
    # An exact resend is processed again (Planhat's count) and stored once; a different time
    # is a different activity.
    assert first == again == {"processed": 2, "errors": [], "errors_count": 0}
    assert InboxEvent.objects.count() == 2
    # Two identical activities without a date in one request (one receive second): one.
    timeless = post(client, f"/analytics/bulk/{token}", [activity(), activity()]).json()
    assert timeless["processed"] == 2
    assert InboxEvent.objects.count() == 3
    inbox_drain()
    assert Activity.objects.count() == 3


def test_bulk_gzip_body(client, token):
    CompanyFactory(external_id="ACME")
    body = [activity(email=f"u{i}@acme.example") for i in range(50)]
    data = gzip.compress(json.dumps(body).encode())
    answer = post(client, f"/analytics/bulk/{token}", data, HTTP_CONTENT_ENCODING="gzip")
    assert answer.json() == {"processed": 50, "errors": [], "errors_count": 0}


@override_settings(INGEST_MAX_BODY_BYTES=2_000)
def test_bulk_over_the_body_limit_is_413_declared_or_after_gunzip(client, token):
    big = [activity(email=f"u{i}@acme.example") for i in range(100)]
    data = json.dumps(big).encode()
    assert len(data) > 2_000
    assert post(client, f"/analytics/bulk/{token}", data).status_code == 413
    small_gzip = gzip.compress(data)
    assert len(small_gzip) < 2_000
    answer = post(client, f"/analytics/bulk/{token}", small_gzip, HTTP_CONTENT_ENCODING="gzip")
    assert answer.status_code == 413
    assert InboxEvent.objects.count() == 0


def test_bulk_values_are_bounded_before_parsing(client, token, settings):
    settings.INGEST_MAX_JSON_VALUES = 1_000
    body = [activity(email=f"u{i}@acme.example") for i in range(300)]  # > 1,000 values
    answer = post(client, f"/analytics/bulk/{token}", body)
    assert answer.status_code == 413
    assert answer.json()["error"] == "too_many_values"
    settings.INGEST_MAX_ITEMS = 100
    settings.INGEST_MAX_JSON_VALUES = 1_000_000
    answer = post(client, f"/analytics/bulk/{token}", body)
    assert (answer.status_code, answer.json()["error"]) == (413, "too_many_items")
    assert InboxEvent.objects.count() == 0


def test_bulk_errors_are_capped_and_counted(client, token):
    answer = post(client, f"/analytics/bulk/{token}", [{"action": "x"}] * 250).json()
    assert answer["processed"] == 0
    assert len(answer["errors"]) == 100
    assert answer["errors_count"] == 250
    assert all(set(e) == {"index", "error"} for e in answer["errors"])  # items never echoed


def test_bulk_not_json_is_400_and_cors_preflight(client, token):
    answer = post(client, f"/analytics/bulk/{token}", b"{nope")
    assert answer.status_code == 400
    preflight = client.options(
        f"/analytics/bulk/{token}", HTTP_ACCESS_CONTROL_REQUEST_HEADERS="content-type"
    )
    assert preflight.status_code == 204
    assert preflight["Access-Control-Allow-Origin"] == "*"
    assert "POST" in preflight["Access-Control-Allow-Methods"]
    assert client.get(f"/analytics/bulk/{token}").status_code == 405


def test_activity_of_unknown_company_waits_and_binds_when_the_company_arrives(
    client, token, django_capture_on_commit_callbacks
):
    post(client, f"/analytics/{token}", activity(companyExternalId="LATECO", externalId="u-9"))
    inbox_drain()
    row = InboxEvent.objects.get()
    assert row.status == InboxStatus.WAITING
    assert Activity.objects.count() == 0
    from planhat_segment.models import Company
    from planhat_segment.services import workspace_object_create

    with django_capture_on_commit_callbacks(execute=True):
        workspace_object_create(model=Company, data={"name": "Late Co", "external_id": "LATECO"})
    inbox_drain()
    row.refresh_from_db()
    assert row.status == InboxStatus.PROCESSED
    made = Activity.objects.get()
    assert made.company.external_id == "LATECO"
    assert made.enduser.external_id == "u-9"


def test_activities_honour_the_user_tracking_switch(client, token, integration):
    CompanyFactory(external_id="ACME")
    integration_update(integration=integration, user_tracking_enabled=False)
    integration_cache_clear()
    assert post(client, f"/analytics/{token}", activity()).json()["processed"] == 1
    inbox_drain()
    row = InboxEvent.objects.get()
    assert (row.status, row.reason) == (InboxStatus.DROPPED, DropReason.SECTION_DISABLED)


# --- /dimensiondata ---------------------------------------------------------------------------


def test_dimension_data_for_each_model_creates_metric_and_values(client, token):
    company = CompanyFactory(external_id="ACME")
    enduser = EndUserFactory(company=company, external_id="u-1")
    asset = AssetFactory(company=company, external_id="A-1")
    project = ProjectFactory(company=company, external_id="P-1")
    body = [
        {"dimensionId": "logins", "value": 12, "externalId": "ACME", "date": "2026-03-01"},
        {"dimensionId": "logins", "value": "3.5", "externalId": "u-1", "model": "EndUser"},
        {"dimensionId": "storage_gb", "value": 7, "externalId": "A-1", "model": "asset"},
        {"dimensionId": "progress", "value": 0.4, "externalId": "P-1", "model": "Project"},
        {"dimensionId": "logins", "value": 1, "externalId": "NOPE"},
        {"dimensionId": "logins", "value": 1, "externalId": "nobody", "model": "EndUser"},
    ]
    answer = post(client, f"/dimensiondata/{token}", body)
    assert answer.json() == {"processed": 6, "errors": [], "errors_count": 0}
    inbox_drain()

    metrics = {m.key: m for m in MetricDefinition.objects.all()}
    assert set(metrics) == {"logins", "storage_gb", "progress"}
    assert {m.source for m in metrics.values()} == {MetricSource.DIMENSION_DATA}
    values = {(v.metric.key, v.target): v.value for v in MetricValue.objects.all()}
    assert values == {
        ("logins", company): 12.0,
        ("logins", enduser): 3.5,
        ("storage_gb", asset): 7.0,
        ("progress", project): 0.4,
    }
    on_company = MetricValue.objects.get(company=company)
    assert on_company.occurred_at == datetime(2026, 3, 1, tzinfo=UTC)
    dropped = {
        r.payload["externalId"]: r.reason for r in InboxEvent.objects.filter(status="dropped")
    }
    assert dropped == {"NOPE": DropReason.UNKNOWN_COMPANY, "nobody": DropReason.UNKNOWN_OBJECT}


def test_dimension_data_single_object_and_bad_items(client, token):
    CompanyFactory(external_id="ACME")
    one = post(
        client, f"/dimensiondata/{token}", {"dimensionId": "nps", "value": 40, "externalId": "ACME"}
    )
    assert one.json() == {"processed": 1, "errors": [], "errors_count": 0}
    bad = [
        {"value": 1, "externalId": "ACME"},
        {"dimensionId": "has space", "value": 1, "externalId": "ACME"},
        {"dimensionId": "nps", "externalId": "ACME"},
        {"dimensionId": "nps", "value": True, "externalId": "ACME"},
        {"dimensionId": "nps", "value": 1},
        {"dimensionId": "nps", "value": 1, "externalId": "ACME", "model": "License"},
        {"dimensionId": "nps", "value": "NaN", "externalId": "ACME"},
    ]
    answer = post(client, f"/dimensiondata/{token}", bad).json()
    assert answer["processed"] == 0
    assert [e["index"] for e in answer["errors"]] == list(range(7))
    assert "no spaces" in answer["errors"][1]["error"]
    assert "Company, EndUser, Asset, Project" in answer["errors"][5]["error"]


def test_dimension_data_keeps_a_defined_segment_metric_and_group_ignores_dimension_ones(
    client, token, auth
):
    acme = CompanyFactory(external_id="ACME")
    seats = metric_definition_create(key="seats")
    for key, value in (("seats", 10), ("health", 80)):
        post(
            client,
            f"/dimensiondata/{token}",
            {"dimensionId": key, "value": value, "externalId": "ACME"},
        )
    inbox_drain()
    assert MetricDefinition.objects.get(key="seats").source == MetricSource.SEGMENT
    assert MetricDefinition.objects.get(key="health").source == MetricSource.DIMENSION_DATA
    # A group trait named like a dimension-data metric is not recorded: section 2 keeps
    # "predefined only"; a defined Segment metric is.
    group = {
        "type": "group",
        "groupId": "ACME",
        "userId": "u",
        "messageId": "g-1",
        "traits": {"seats": 12, "health": 99},
    }
    post(client, "/v1/group", group, **auth)
    inbox_drain()
    from_group = MetricValue.objects.filter(message_id="g-1")
    assert [(v.metric_id, v.value) for v in from_group] == [(seats.pk, 12.0)]
    assert MetricValue.objects.filter(company=acme).count() == 3


def test_dimension_data_honours_the_company_metrics_switch(client, token, integration):
    CompanyFactory(external_id="ACME")
    integration_update(integration=integration, company_metrics_enabled=False)
    integration_cache_clear()
    post(
        client, f"/dimensiondata/{token}", {"dimensionId": "nps", "value": 1, "externalId": "ACME"}
    )
    inbox_drain()
    assert InboxEvent.objects.get().reason == DropReason.SECTION_DISABLED
    assert not MetricValue.objects.exists()
    assert not MetricDefinition.objects.exists()


# --- /analytics/stream/csv ----------------------------------------------------------------------

CSV_HEADER = "cId, id, name, email, weight, action, date, count\n"


def test_csv_stream_rows_and_bad_rows(client, token):
    CompanyFactory(external_id="ACME")
    body = (
        CSV_HEADER
        + "ACME,u-1,Ana,ana@acme.example,2,Logged in,2026-03-02T10:00:00Z,3\n"
        + 'ACME,u-2,"Lima, Bo",bo@acme.example,,Opened,,\n'
        + "ACME,u-3,Cy,cy@acme.example,1,,2026-03-02,1\n"  # no action
        + "ACME,u-4,too,few\n"
        + "\n"
        + "ACME,u-5,Di,di@acme.example,x,Opened,,\n"  # bad weight
    )
    answer = post(
        client,
        f"/analytics/stream/csv/{token}",
        body.encode(),
        method="PUT",
        content_type="text/csv",
    )
    assert answer.status_code == 200, answer.content
    result = answer.json()
    assert result["processed"] == 2
    assert [e["index"] for e in result["errors"]] == [2, 3, 4, 5]
    assert "action is required" in result["errors"][0]["error"]
    assert "4 fields" in result["errors"][1]["error"]
    inbox_drain()
    made = {a.enduser.external_id: a for a in Activity.objects.select_related("enduser")}
    assert set(made) == {"u-1", "u-2"}
    assert (made["u-1"].weight, made["u-1"].count) == (2.0, 3)
    assert made["u-2"].enduser.name == "Lima, Bo"


def test_csv_stream_is_stored_in_chunks_gzip_and_limit(client, token, monkeypatch):
    from usage.ingest.planhat import csv_stream

    monkeypatch.setattr(csv_stream, "CSV_CHUNK_ROWS", 1_000)
    rows = "".join(
        f"ACME,u-{i},,u{i}@acme.example,1,Viewed,2026-03-02T10:00:00Z,1\n" for i in range(2_500)
    )
    data = gzip.compress((CSV_HEADER + rows).encode())
    answer = post(
        client,
        f"/analytics/stream/csv/{token}",
        data,
        method="PUT",
        content_type="text/csv",
        HTTP_CONTENT_ENCODING="gzip",
    )
    assert answer.json() == {"processed": 2_500, "errors": [], "errors_count": 0}
    # One inbox request per chunk of rows.
    assert InboxEvent.objects.values("request_id").distinct().count() == 3
    with override_settings(INGEST_MAX_BODY_BYTES=len(data) - 1):
        too_big = post(
            client, f"/analytics/stream/csv/{token}", data, method="PUT", content_type="text/csv"
        )
    assert too_big.status_code == 413


def test_csv_stream_bad_header_wrong_method_and_token(client, token):
    bad = post(
        client,
        f"/analytics/stream/csv/{token}",
        b"who,what\n1,2\n",
        method="PUT",
        content_type="text/csv",
    )
    assert bad.status_code == 400
    assert "Unknown CSV column" in bad.json()["detail"]
    assert post(client, f"/analytics/stream/csv/{token}", CSV_HEADER.encode()).status_code == 405
    wrong = post(
        client,
        "/analytics/stream/csv/nope",
        CSV_HEADER.encode(),
        method="PUT",
        content_type="text/csv",
    )
    assert wrong.status_code == 401
