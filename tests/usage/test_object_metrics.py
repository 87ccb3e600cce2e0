"""Metric values of endusers, assets and projects: storage rule, API, pages."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from integrations.models import MetricDefinition, MetricSource
from tests.factories import AssetFactory, CompanyFactory, EndUserFactory, ProjectFactory
from usage.models import MetricValue
from usage.trends import object_metrics

pytestmark = pytest.mark.django_db


@pytest.fixture
def objects():
    company = CompanyFactory(external_id="ACME")
    return {
        "company": company,
        "enduser": EndUserFactory(company=company, external_id="u-1"),
        "asset": AssetFactory(company=company, external_id="A-1"),
        "project": ProjectFactory(company=company, external_id="P-1"),
    }


@pytest.fixture
def metric():
    return MetricDefinition.objects.create(key="usage_hours", source=MetricSource.DIMENSION_DATA)


def value(metric, n, when=None, **target):
    return MetricValue.objects.create(
        metric=metric,
        value=n,
        occurred_at=when or timezone.now(),
        message_id=f"m-{n}-{next(iter(target))}",
        **target,
    )


def test_a_value_belongs_to_exactly_one_object(objects, metric):
    for target in ({}, {"company": objects["company"], "asset": objects["asset"]}):
        with pytest.raises(IntegrityError), transaction.atomic():
            MetricValue.objects.create(
                metric=metric, value=1, occurred_at=timezone.now(), message_id="x", **target
            )


def test_object_metrics_last_value_per_day_and_latest(objects, metric):
    now = timezone.now().replace(hour=12)
    asset = objects["asset"]
    value(metric, 1, now - timedelta(days=1, hours=2), asset=asset)
    value(metric, 2, now - timedelta(days=1), asset=asset)
    value(metric, 5, now, asset=asset)
    value(metric, 99, now, project=objects["project"])  # someone else's
    result = object_metrics(obj=asset, days=30)
    [series] = result.metric_series
    assert result.buckets.bucket == "day"
    points = {
        start.isoformat(): v
        for start, v in zip(result.buckets.starts, series.values, strict=True)
        if v is not None
    }
    assert points == {
        (now - timedelta(days=1)).date().isoformat(): 2.0,
        now.date().isoformat(): 5.0,
    }
    assert [(m["key"], m["value"], m["count"]) for m in result.latest] == [("usage_hours", 5.0, 3)]


def test_api_lists_values_of_every_kind_with_filters(objects, metric, api_client_in_role):
    for n, kind in enumerate(("company", "enduser", "asset", "project"), start=1):
        value(metric, n, **{kind: objects[kind]})
    client = api_client_in_role("Viewer")
    everything = client.get("/api/metric-values/").json()["results"]
    assert len(everything) == 4
    assets = client.get("/api/metric-values/", {"model": "asset"}).json()["results"]
    assert [(r["asset_external_id"], r["company"], r["metric_source"]) for r in assets] == [
        ("A-1", None, "dimension_data")
    ]
    by_user = client.get("/api/metric-values/", {"enduser_external_id": "u-1"}).json()["results"]
    assert [r["value"] for r in by_user] == [2.0]


@pytest.mark.parametrize("model", ["asset", "project"])
def test_asset_and_project_metrics_pages(admin_client_logged_in, objects, metric, model):
    obj = objects[model]
    value(metric, 7, **{model: obj})
    change = admin_client_logged_in.get(
        reverse(f"admin:planhat_segment_{model}_change", args=[obj.pk])
    )
    url = reverse(f"admin:planhat_segment_{model}_metrics", args=[obj.pk])
    assert url in change.content.decode()
    page = admin_client_logged_in.get(url)
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-testid="chart-object-metrics"' in html
    assert "Usage hours" in html and ">7.0<" in html
    assert 7.0 in page.context["chart_data"]["metrics"][0]["values"]


def test_enduser_trends_page_shows_its_metric_values(admin_client_logged_in, objects, metric):
    value(metric, 3, enduser=objects["enduser"])
    page = admin_client_logged_in.get(reverse("admin:enduser_trends", args=[objects["enduser"].pk]))
    assert page.status_code == 200
    assert 'data-testid="chart-object-metrics"' in page.content.decode()
    assert [m["value"] for m in page.context["trends"].latest_metrics] == [3.0]
