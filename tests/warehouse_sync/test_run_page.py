"""A sync run's page: durations as "0.3 s", times with seconds and zone, failed objects by
name and external id (issue 12)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse

from planhat_segment.display import seconds_text
from planhat_segment.models import Company, Tombstone
from warehouse_sync.models import FailedObject, SyncModelResult, SyncRun

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("total", "text"),
    [(0.31, "0.3 s"), (9.96, "10.0 s"), (12.4, "12 s"), (65, "1 min 05 s"), (3720, "1 h 02 min")],
)
def test_seconds_text(total, text):
    assert seconds_text(total) == text


def test_run_page_shows_failed_objects_by_name_and_external_id(admin_client_logged_in):
    acme = Company.objects.create(name="Acme Corp", external_id="ACME-001")
    start = dt.datetime(2026, 3, 1, 14, 5, 9, tzinfo=dt.UTC)
    run = SyncRun.objects.create(
        trigger="manual",
        status="partial",
        started_at=start,
        finished_at=start + dt.timedelta(seconds=0.3),
        duration=dt.timedelta(seconds=0.3),
        synced_models=["company"],
    )
    SyncModelResult.objects.create(run=run, model="company", objects_synced=3, errors=2)
    gone = Tombstone.objects.create(model="company", object_pk=99, external_id="OLD-9")
    FailedObject.objects.create(model="company", object_pk=acme.pk, run=run, error="400: too big")
    FailedObject.objects.create(
        model="company", kind="tombstone", object_pk=gone.pk, run=run, error="400: bad"
    )
    html = admin_client_logged_in.get(
        reverse("admin:warehouse_sync_syncrun_change", args=[run.pk])
    ).content.decode()
    assert "0.3 s" in html
    assert "2026-03-01 14:05:09 UTC" in html
    table = html.split('data-testid="failed-objects"', 1)[1].split("</table>", 1)[0]
    assert "Acme Corp" in table and "ACME-001" in table and "400: too big" in table
    assert "(deletion)" in table and "OLD-9" in table
    listing = admin_client_logged_in.get(reverse("admin:warehouse_sync_syncrun_changelist"))
    assert "0.3 s" in listing.content.decode()
