"""Deletes: tombstones for syncable objects only, in bulk; every other model fast-deletes."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.db.models.deletion import Collector
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from integrations.models import MetricDefinition
from planhat_segment.models import Company, EndUser, License, Tombstone
from tests.factories import (
    AssetFactory,
    CompanyFactory,
    EndUserFactory,
    LicenseFactory,
    ProjectFactory,
)
from usage.models import Activity, InboxEvent, InboxStatus, MetricValue

pytestmark = pytest.mark.django_db


def _statements(queries, verb: str, table: str) -> list[str]:
    return [
        q["sql"]
        for q in queries.captured_queries
        if q["sql"].lstrip().upper().startswith(verb) and table in q["sql"]
    ]


def test_inbox_purge_deletes_without_loading_payloads():
    from usage.services import inbox_purge

    old = timezone.now() - timedelta(days=40)
    InboxEvent.objects.bulk_create(
        [
            InboxEvent(
                message_id=f"m-{i}",
                request_id=uuid.uuid4(),
                type="track",
                payload={"event": "Big", "properties": {"blob": "x" * 100}},
                received_at=old,
                status=InboxStatus.PROCESSED,
            )
            for i in range(5)
        ]
    )
    with CaptureQueriesContext(connection) as queries:
        assert inbox_purge(retention_days=30) == 5
    # A fast delete: the ids are selected, then one DELETE; no row (payload) is loaded.
    assert not [
        sql for sql in _statements(queries, "SELECT", "usage_inboxevent") if "payload" in sql
    ]
    assert len(_statements(queries, "DELETE", "usage_inboxevent")) == 1
    assert not InboxEvent.objects.exists()


def test_metric_definition_delete_does_not_load_its_values():
    company = CompanyFactory()
    metric = MetricDefinition.objects.create(key="seats")
    MetricValue.objects.bulk_create(
        [
            MetricValue(
                company=company,
                metric=metric,
                value=i,
                occurred_at=timezone.now(),
                message_id=f"g-{i}",
            )
            for i in range(5)
        ]
    )
    with CaptureQueriesContext(connection) as queries:
        metric.delete()
    assert _statements(queries, "SELECT", "usage_metricvalue") == []
    assert len(_statements(queries, "DELETE", "usage_metricvalue")) == 1
    assert not MetricValue.objects.exists()


def test_company_delete_loads_its_syncable_objects_but_not_its_activities():
    company = CompanyFactory()
    enduser = EndUserFactory(company=company)
    now = timezone.now()
    Activity.objects.bulk_create(
        [
            Activity(
                enduser=enduser,
                company=company,
                action="Logged in",
                occurred_at=now,
                received_at=now,
                message_id=f"a-{i}",
            )
            for i in range(5)
        ]
    )
    with CaptureQueriesContext(connection) as queries:
        company.delete()
    assert _statements(queries, "SELECT", "usage_activity") == []
    assert _statements(queries, "DELETE", "usage_activity")
    assert not Activity.objects.exists()
    assert Tombstone.objects.filter(model="enduser", object_pk=enduser.pk).count() == 1


def test_cascaded_delete_leaves_one_tombstone_each_in_one_insert():
    company = CompanyFactory(external_id="C-1")
    endusers = EndUserFactory.create_batch(3, company=company)
    licenses = LicenseFactory.create_batch(2, company=company)
    asset = AssetFactory(company=company)
    project = ProjectFactory(company=company)
    pk = company.pk
    with CaptureQueriesContext(connection) as queries:
        company.delete()
    assert len(_statements(queries, "INSERT", "planhat_segment_tombstone")) == 1
    got = sorted(Tombstone.objects.values_list("model", "object_pk", "company_external_id"))
    expected = sorted(
        [("company", pk, None)]
        + [("enduser", e.pk, "C-1") for e in endusers]
        + [("license", lic.pk, "C-1") for lic in licenses]
        + [("asset", asset.pk, "C-1"), ("project", project.pk, "C-1")]
    )
    assert got == expected


def test_queryset_and_related_manager_deletes_leave_tombstones():
    company = CompanyFactory()
    LicenseFactory.create_batch(2, company=company)
    EndUserFactory.create_batch(3)
    EndUser.objects.all().delete()
    company.licenses.all().delete()
    assert Tombstone.objects.filter(model="enduser").count() == 3
    assert Tombstone.objects.filter(model="license").count() == 2


def test_admin_bulk_delete_leaves_tombstones(admin_client):
    companies = CompanyFactory.create_batch(2)
    for company in companies:
        EndUserFactory(company=company)
    response = admin_client.post(
        reverse("admin:planhat_segment_company_changelist"),
        {"action": "delete_selected", "_selected_action": [c.pk for c in companies], "post": "yes"},
    )
    assert response.status_code == 302
    assert not Company.objects.exists()
    assert Tombstone.objects.filter(model="company").count() == 2
    assert Tombstone.objects.filter(model="enduser").count() == 2


def test_delete_bypassing_the_collecting_entry_points_still_leaves_tombstones():
    enduser = EndUserFactory()
    collector = Collector(using="default")
    collector.collect([enduser])
    pk = enduser.pk
    collector.delete()
    assert Tombstone.objects.filter(model="enduser", object_pk=pk).exists()


def test_rolled_back_delete_leaves_no_tombstone():
    company = CompanyFactory()
    pk = company.pk
    EndUserFactory(company=company)

    def delete_then_fail() -> None:
        with transaction.atomic():
            company.delete()
            raise RuntimeError("abort")

    with pytest.raises(RuntimeError):
        delete_then_fail()
    assert Company.objects.filter(pk=pk).exists()
    assert not Tombstone.objects.exists()
    EndUser.objects.filter(company_id=pk).delete()  # a later delete collects afresh
    assert Tombstone.objects.filter(model="enduser").count() == 1


def test_test_data_leaves_no_tombstone():
    test_company = CompanyFactory(is_test=True)
    EndUserFactory(company=test_company)  # test data through its company
    LicenseFactory(company=test_company)
    real = CompanyFactory()
    EndUserFactory(company=real, is_test=True)
    kept = EndUserFactory(company=real)
    test_company.delete()
    EndUser.objects.filter(company=real).delete()
    License.objects.all().delete()
    assert list(Tombstone.objects.values_list("model", "object_pk")) == [("enduser", kept.pk)]
