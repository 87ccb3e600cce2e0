"""The read-only usage API: filters, auth, and a constant number of queries."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from integrations.models import MetricDefinition
from planhat_segment.models import Company, EndUser
from tests.usage.processing_support import fixture_rows, inbox_rows
from usage.services import inbox_drain

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(integration):
    Company.objects.create(external_id="INITECH", name="Initech")
    globex = Company.objects.create(external_id="GLOBEX", name="Globex")
    MetricDefinition.objects.create(key="seats")
    MetricDefinition.objects.create(key="active_users")
    fixture_rows("webhook_batch.json")
    fixture_rows("tracking_api_batch.json")
    inbox_drain(max_seconds=30)
    return globex


def ids(response, key="message_id"):
    assert response.status_code == 200, response.content
    return sorted(item[key] for item in response.json()["results"])


def test_api_requires_a_token(db):
    assert APIClient().get("/api/activities/").status_code == 401


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", ["b-2", "b-3", "wh-1"]),
        ("company_external_id=GLOBEX", ["b-2", "b-3"]),
        ("enduser_external_id=u-300", ["wh-1"]),
        ("action=Invoice+Sent", ["b-3"]),
        ("occurred_after=2026-11-03T10:00:30Z", ["b-3", "wh-1"]),
        ("occurred_before=2026-11-03T10:00:30Z", ["b-2"]),
    ],
)
def test_activities_filters(api_client, world, query, expected):
    assert ids(api_client.get(f"/api/activities/?{query}")) == expected


def test_activities_filter_by_pks(api_client, world):
    ana = EndUser.objects.get(external_id="u-200")
    assert ids(api_client.get(f"/api/activities/?enduser={ana.pk}")) == ["b-2", "b-3"]
    assert ids(api_client.get(f"/api/activities/?company={world.pk}")) == ["b-2", "b-3"]
    item = api_client.get("/api/activities/?action=Invoice+Sent").json()["results"][0]
    assert (item["count"], item["project_external_id"], item["enduser_external_id"]) == (
        3,
        None,
        "u-200",
    )


def test_metric_values_filters(api_client, world):
    response = api_client.get("/api/metric-values/?metric=seats&company_external_id=GLOBEX")
    assert [(v["metric_key"], v["value"]) for v in response.json()["results"]] == [("seats", 25.0)]
    assert len(api_client.get(f"/api/metric-values/?company={world.pk}").json()["results"]) == 2
    assert api_client.get("/api/metric-values/?company_external_id=INITECH").json()["count"] == 0


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("status=dropped", ["wh-2"]),
        ("reason=no_identity", ["wh-2"]),
        ("status=waiting", ["wh-3"]),
        ("type=group", ["b-4"]),
    ],
)
def test_events_filters(api_client, world, query, expected):
    assert ids(api_client.get(f"/api/events/?{query}")) == expected


@pytest.mark.parametrize("path", ["/api/activities/", "/api/metric-values/", "/api/events/"])
def test_api_query_count_is_constant(api_client, world, path):
    def count():
        with CaptureQueriesContext(connection) as ctx:
            assert api_client.get(path).status_code == 200
        return len(ctx.captured_queries)

    before = count()
    inbox_rows(
        [
            {"type": "track", "messageId": f"x{i}", "userId": "u-200", "event": "More"}
            for i in range(10)
        ]
        + [
            {"type": "group", "messageId": f"g{i}", "groupId": "GLOBEX", "traits": {"seats": i}}
            for i in range(10)
        ]
    )
    inbox_drain(max_seconds=30)
    assert count() == before
