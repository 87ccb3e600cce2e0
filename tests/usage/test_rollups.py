"""Daily rollups: written by the real processing path, equal to a recount from activities
whatever the traffic (mixed, duplicated, re-delivered), after ``rebuild_rollups``, and after
deletions; exact distinct active endusers over weeks and months; the upgrade back-fill."""

from __future__ import annotations

import io
import threading
import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.db.models import Count, F, FloatField, Sum
from django.db.models.functions import TruncDate, TruncMonth, TruncWeek
from django.utils import timezone

from integrations.services import integration_ensure
from planhat_segment.models import Company, EndUser
from tests.usage.processing_support import inbox_rows
from usage.models import Activity, CompanyActionDay, EnduserDay, InboxEvent
from usage.rollups import rollups_backfill, rollups_rebuild
from usage.services import inbox_drain, inbox_events_reprocess

pytestmark = pytest.mark.django_db

# Around midnight UTC, on both sides of it, and in two months and weeks.
MOMENTS = [
    "2026-01-31T23:59:59.999999Z",
    "2026-02-01T00:00:00Z",
    "2026-02-01T05:30:00+09:00",  # 2026-01-31 20:30 UTC: the UTC day is the 31st
    "2026-02-09T12:00:00Z",
    "2026-03-02T08:00:00Z",
]


def recount() -> tuple[dict, dict]:
    """What the rollups must hold, straight from activities (test data left out)."""
    counted = Activity.objects.filter(enduser__is_test=False, company__is_test=False).annotate(
        day=TruncDate("occurred_at", tzinfo=UTC)
    )
    actions = {
        (r["company_id"], r["day"], r["action"]): (r["n"], r["w"])
        for r in counted.values("company_id", "day", "action").annotate(
            n=Sum("count"), w=Sum(F("count") * F("weight"), output_field=FloatField())
        )
    }
    users = {
        (r["company_id"], r["enduser_id"], r["day"]): r["n"]
        for r in counted.values("company_id", "enduser_id", "day").annotate(n=Sum("count"))
    }
    return actions, users


def stored() -> tuple[dict, dict]:
    actions = {
        (r.company_id, r.day, r.action): (r.count, r.weighted_count)
        for r in CompanyActionDay.objects.all()
    }
    users = {(r.company_id, r.enduser_id, r.day): r.count for r in EnduserDay.objects.all()}
    return actions, users


def assert_rollups_equal_a_recount() -> None:
    expected_actions, expected_users = recount()
    actions, users = stored()
    assert users == expected_users
    assert actions.keys() == expected_actions.keys()
    for key, (count, weighted) in actions.items():
        assert count == expected_actions[key][0], key
        assert weighted == pytest.approx(expected_actions[key][1]), key


def traffic(tag: str) -> list[dict]:
    """Mixed calls: tracks with counts, pages, identifies, a group, an unknown user, a
    new user under a known company, and a track of the test user."""
    messages = []
    for i, moment in enumerate(MOMENTS):
        for user in ("u-1", "u-2", f"{tag}-new"):
            messages += [
                {
                    "type": "identify",
                    "userId": user,
                    "traits": {"company_id": "ACME" if user != "u-2" else "GLOBEX"},
                },
                {
                    "type": "track",
                    "userId": user,
                    "event": "Report" if i % 2 else "Export",
                    "properties": {"count": i + 1},
                },
                {"type": "page", "userId": user, "name": "Home"},
            ]
        messages += [
            {"type": "group", "groupId": "ACME", "traits": {"seats": 3}},
            {"type": "track", "userId": f"{tag}-nobody", "event": "E"},  # waits
            {"type": "track", "userId": "tester", "event": "E"},  # a test enduser
            {"type": "track", "userId": "guest", "event": "E"},  # of a test company
        ]
        for message in messages[-13:]:
            message["timestamp"] = moment
    for n, message in enumerate(messages):
        message["messageId"] = f"{tag}-{n}"
    return messages


@pytest.fixture
def workspace(integration):
    acme = Company.objects.create(external_id="ACME", name="Acme")
    globex = Company.objects.create(external_id="GLOBEX", name="Globex")
    EndUser.objects.create(company=acme, external_id="u-1")
    EndUser.objects.create(company=globex, external_id="u-2")
    # Test data on either side: a test enduser of a real company, an enduser of a test one.
    EndUser.objects.create(company=acme, external_id="tester", is_test=True)
    test_company = Company.objects.create(external_id="TEST", name="Test", is_test=True)
    EndUser.objects.create(company=test_company, external_id="guest")
    return acme, globex


def test_processing_keeps_rollups_equal_to_a_recount(workspace):
    acme, _ = workspace
    rows = inbox_rows(traffic("a"))
    inbox_drain(max_seconds=30)
    assert Activity.objects.exists()
    assert_rollups_equal_a_recount()
    # Test data is left out; UTC days, whatever the offset the event was written in.
    assert Activity.objects.filter(enduser__external_id__in=["tester", "guest"]).count() == 10
    assert not EnduserDay.objects.filter(enduser__external_id__in=["tester", "guest"]).exists()
    assert set(CompanyActionDay.objects.values_list("day", flat=True)) == {
        date(2026, 1, 31),
        date(2026, 2, 1),
        date(2026, 2, 9),
        date(2026, 3, 2),
    }

    # Re-delivered (reprocessed) rows insert no activity and so count nothing.
    before = stored()
    inbox_events_reprocess(ids=[r.pk for r in rows])
    inbox_drain(max_seconds=30)
    assert stored() == before

    # More traffic in another request, part of it the same messages again (ingest stores a
    # message id once; a second copy in the inbox would be a duplicate row), part new.
    again = traffic("a")[:10] + traffic("b")
    InboxEvent.objects.filter(message_id__in=[m["messageId"] for m in again]).delete()
    inbox_rows(again)
    inbox_drain(max_seconds=30)
    assert_rollups_equal_a_recount()
    # The waiting user binds later: its events count once, on their own days.
    EndUser.objects.create(company=acme, external_id="a-nobody")
    from usage.services import waiting_events_rematch

    waiting_events_rematch(model="enduser", pks=EndUser.objects.values_list("pk", flat=True))
    inbox_drain(max_seconds=30)
    assert Activity.objects.filter(enduser__external_id="a-nobody").exists()
    assert_rollups_equal_a_recount()


def test_days_are_utc_whatever_time_zone_is_active(workspace, settings):
    settings.TIME_ZONE = "Asia/Tokyo"
    with timezone.override("Asia/Tokyo"):
        inbox_rows([{**traffic("z")[1], "timestamp": "2026-02-01T05:30:00+09:00"}])
        inbox_drain(max_seconds=30)
    assert list(CompanyActionDay.objects.values_list("day", flat=True)) == [date(2026, 1, 31)]
    with timezone.override("Asia/Tokyo"):
        rebuilt = rollups_rebuild()
    assert rebuilt.company_action_days == 1
    assert list(CompanyActionDay.objects.values_list("day", flat=True)) == [date(2026, 1, 31)]


def test_rebuild_rollups_recounts_idempotently_with_weights(workspace):
    inbox_rows(traffic("a"))
    inbox_drain(max_seconds=30)
    # Weights from elsewhere (Planhat's analytics API), and a drifted rollup to repair.
    Activity.objects.filter(action="Report").update(weight=2.5)
    CompanyActionDay.objects.update(count=F("count") + 7)
    EnduserDay.objects.filter(day=date(2026, 2, 9)).delete()

    out = io.StringIO()
    call_command("rebuild_rollups", stdout=out)
    assert_rollups_equal_a_recount()
    assert "Rebuilt rollups for 31 UTC days (2026-01-31 to 2026-03-02)" in out.getvalue()
    report = CompanyActionDay.objects.filter(action="Report").first()
    counts = Activity.objects.filter(
        company_id=report.company_id, action="Report", occurred_at__date=report.day
    ).aggregate(n=Sum("count"))
    assert report.weighted_count == pytest.approx(counts["n"] * 2.5)

    first = stored()
    call_command("rebuild_rollups", "--chunk-days", "3", stdout=io.StringIO())
    assert stored() == first

    # --since rebuilds that day and later only.
    CompanyActionDay.objects.update(count=F("count") + 1)
    call_command("rebuild_rollups", "--since", "2026-02-09", stdout=io.StringIO())
    assert all(
        (count - 1 if day < date(2026, 2, 9) else count) == recount()[0][(c, day, a)][0]
        for (c, day, a), (count, _) in stored()[0].items()
    )


def test_rebuild_rollups_refuses_a_bad_date(db):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="YYYY-MM-DD"):
        call_command("rebuild_rollups", "--since", "last week")


def test_distinct_active_endusers_per_week_and_month_are_exact(workspace):
    inbox_rows(traffic("a") + traffic("b"))
    inbox_drain(max_seconds=30)
    acme = workspace[0]
    for trunc in (TruncWeek, TruncMonth):
        from_rollups = dict(
            EnduserDay.objects.filter(company=acme)
            .annotate(period=trunc("day"))
            .values("period")
            .annotate(n=Count("enduser_id", distinct=True))
            .order_by()
            .values_list("period", "n")
        )
        direct = dict(
            Activity.objects.filter(company=acme, enduser__is_test=False)
            .annotate(period=trunc(TruncDate("occurred_at", tzinfo=UTC)))
            .values("period")
            .annotate(n=Count("enduser_id", distinct=True))
            .order_by()
            .values_list("period", "n")
        )
        assert from_rollups == direct
        # Exact, not a sum of daily figures: the same users were active on several days.
        assert sum(direct.values()) < EnduserDay.objects.filter(company=acme).count()


def test_deleting_an_enduser_or_a_company_removes_its_rollups(workspace):
    acme, globex = workspace
    inbox_rows(traffic("a"))
    inbox_drain(max_seconds=30)
    gone = EndUser.objects.get(external_id="u-1")
    assert EnduserDay.objects.filter(enduser=gone).exists()

    gone.delete()
    assert not EnduserDay.objects.filter(enduser_id=gone.pk).exists()
    assert_rollups_equal_a_recount()  # its share of Acme's per-action rows is gone too

    globex.delete()
    assert not CompanyActionDay.objects.filter(company_id=globex.pk).exists()
    assert not EnduserDay.objects.filter(company_id=globex.pk).exists()
    acme.delete()
    assert not CompanyActionDay.objects.exists() and not EnduserDay.objects.exists()


def test_upgrade_backfills_rollups_after_migrate(workspace):
    from django.apps import apps

    from usage.apps import _rollups_backfill

    inbox_rows(traffic("a"))
    inbox_drain(max_seconds=30)
    expected = stored()
    # An install from before the rollups: activities, no rollups.
    CompanyActionDay.objects.all().delete()
    EnduserDay.objects.all().delete()

    out = io.StringIO()
    _rollups_backfill(sender=apps.get_app_config("usage"), apps=apps, verbosity=1, stdout=out)
    assert stored() == expected
    assert "Usage rollups back-filled: Rebuilt rollups" in out.getvalue()
    # With rollups in place it does nothing (and says nothing).
    assert rollups_backfill() is None


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_workers_and_a_rebuild_keep_rollups_exact():
    """Two workers upserting the same keys in the same claims' days, and a rebuild waiting
    on the day lock that processing holds: no deadlock, nothing counted twice or lost."""
    integration_ensure()
    acme = Company.objects.create(external_id="ACME", name="Acme")
    users = [EndUser.objects.create(company=acme, external_id=f"u-{i}") for i in range(20)]
    moment = datetime(2026, 2, 1, 12, tzinfo=UTC)
    for batch in range(8):
        request = uuid.uuid4()
        order = users if batch % 2 else list(reversed(users))  # keys in opposite orders
        inbox_rows(
            [
                {
                    "type": "track",
                    "messageId": f"{batch}-{i}",
                    "userId": u.external_id,
                    "event": f"E{i % 3}",
                    "timestamp": (moment + timedelta(days=i % 2)).isoformat(),
                }
                for i, u in enumerate(order)
            ],
            request_id=request,
        )
    errors: list[BaseException] = []

    def work(job) -> None:
        try:
            job()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    jobs = [
        lambda: inbox_drain(max_seconds=60, batch_size=20),
        lambda: inbox_drain(max_seconds=60, batch_size=20),
        lambda: rollups_rebuild(),
    ]
    threads = [threading.Thread(target=work, args=(job,)) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    assert Activity.objects.count() == 160
    after = stored()
    assert_rollups_equal_a_recount()
    rollups_rebuild()
    assert stored() == after


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_processing_waits_for_a_rebuild_of_the_same_day():
    """The advisory day lock: processing blocks while a rebuild holds the day."""
    from usage.rollups import _days_lock

    integration_ensure()
    acme = Company.objects.create(external_id="ACME", name="Acme")
    EndUser.objects.create(company=acme, external_id="u")
    inbox_rows(
        [
            {
                "type": "track",
                "messageId": "t",
                "userId": "u",
                "event": "E",
                "timestamp": "2026-02-01T12:00:00Z",
            }
        ]
    )
    done = threading.Event()

    def drain() -> None:
        try:
            inbox_drain(max_seconds=60)
        finally:
            done.set()
            connection.close()

    with transaction.atomic():
        _days_lock([date(2026, 2, 1)], exclusive=True)  # what a rebuild of that day holds
        worker = threading.Thread(target=drain)
        worker.start()

        def waiting_on_advisory_lock() -> bool:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                )
                return cursor.fetchone()[0] == 1

        deadline = timezone.now() + timedelta(seconds=30)
        while not waiting_on_advisory_lock() and timezone.now() < deadline:
            threading.Event().wait(0.05)
        assert waiting_on_advisory_lock()
        assert not done.is_set()
    worker.join(30)
    assert done.is_set()
    assert CompanyActionDay.objects.get().count == 1
