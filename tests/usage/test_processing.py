"""Processing: fixtures' expected outcomes, claims, query count, failures, sweep, purge,
and waiting events binding once their user or company is known."""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from integrations.models import MetricDefinition
from integrations.services import integration_ensure
from planhat_segment.models import Asset, Company, CompanyDomain, EndUser, Project
from planhat_segment.signals import workspace_objects_changed
from tests.usage.processing_support import fixture_rows, inbox_rows, row
from tests.usage.test_rollups import assert_rollups_equal_a_recount
from usage import services as services_module
from usage.models import Activity, DropReason, InboxEvent, InboxStatus, MetricValue
from usage.processing import write
from usage.processing.claim import claim_lanes, claim_sql, inbox_claim
from usage.processing.pipeline import claim_process
from usage.services import (
    inbox_drain,
    inbox_events_reprocess,
    inbox_purge,
    inbox_sweep,
    unassigned_user_assign,
    waiting_events_rematch,
)

pytestmark = pytest.mark.django_db


def drain():
    return inbox_drain(max_seconds=30)


def statuses():
    return dict(InboxEvent.objects.values_list("message_id", "status"))


# --- the fixtures' expected outcomes (shared/fixtures/segment/README.md) ----------------------


def test_fixtures_identify_track_page_create_and_bind(integration):
    acme = Company.objects.create(external_id="ACME-001", name="Acme")
    asset = Asset.objects.create(company=acme, external_id="ASSET-7", name="Reports")
    fixture_rows("identify.json")
    fixture_rows("track.json")
    fixture_rows("page.json")

    drain()

    peter = EndUser.objects.get(external_id="97980cfea0067")
    assert (peter.company, peter.name, peter.email, peter.title, peter.source) == (
        acme,
        "Peter Gibbons",
        "Peter.Gibbons@initech.com".lower(),
        "Software Engineer",
        "segment",
    )
    report = Activity.objects.get(action="Report Downloaded")
    assert (report.enduser, report.company, report.asset) == (peter, acme, asset)
    assert Activity.objects.get(action="Viewed Getting Started").enduser == peter
    assert set(statuses().values()) == {InboxStatus.PROCESSED}


def test_fixture_track_without_asset_has_no_asset(integration):
    acme = Company.objects.create(external_id="ACME-001", name="Acme")
    EndUser.objects.create(company=acme, external_id="97980cfea0067")
    fixture_rows("track.json")
    drain()
    assert Activity.objects.get().asset is None


def test_fixture_group_metrics(integration):
    Company.objects.create(external_id="ACME-001", name="Acme")
    for key in ("active_users", "storage_gb", "nps"):
        MetricDefinition.objects.create(key=key)
    fixture_rows("group.json")

    drain()

    values = {v.metric.key: v.value for v in MetricValue.objects.select_related("metric")}
    assert values == {"active_users": 42.0, "storage_gb": 12.5}
    group = row("node-9f2b7b1b-6b1e-4f7e-9d2a-2f1c9a1e0c11")
    assert group.status == InboxStatus.PROCESSED
    assert group.detail == ""  # nps is null: no value and no note
    assert Company.objects.get().name == "Acme"  # group never updates companies


def test_fixture_tracking_api_batch(integration):
    globex = Company.objects.create(external_id="GLOBEX", name="Globex")
    project = Project.objects.create(company=globex, external_id="PRJ-9", name="P9")
    for key in ("active_users", "seats"):
        MetricDefinition.objects.create(key=key)
    fixture_rows("tracking_api_batch.json")

    drain()

    ana = EndUser.objects.get(external_id="u-200")
    assert (ana.company, ana.name, ana.email) == (globex, "Ana Lima", "ana@globex.example")
    signed, invoice = row("b-2"), row("b-3")
    assert (signed.status, invoice.status) == ("processed", "processed")
    assert Activity.objects.get(message_id="b-2").enduser == ana
    b3 = Activity.objects.get(message_id="b-3")
    assert (b3.enduser, b3.count, b3.project) == (ana, 3, project)
    values = {v.metric.key: v.value for v in MetricValue.objects.select_related("metric")}
    assert values == {"active_users": 17.0, "seats": 25.0}


def test_fixture_webhook_batch(integration):
    initech = Company.objects.create(external_id="INITECH", name="Initech")
    fixture_rows("webhook_batch.json")

    drain()

    assert EndUser.objects.get(external_id="u-300").company == initech
    assert Activity.objects.get(message_id="wh-1").enduser.external_id == "u-300"
    assert (row("wh-2").status, row("wh-2").reason) == ("dropped", "no_identity")
    wh3 = row("wh-3")
    assert wh3.status == "waiting"
    assert wh3.wait_until == wh3.received_at + timedelta(hours=24)

    inbox_sweep(now=wh3.wait_until + timedelta(seconds=1))
    wh3.refresh_from_db()
    assert (wh3.status, wh3.reason) == ("dropped", "unassigned_user")


# --- claims ---------------------------------------------------------------------------------


def _request(n: int, **kwargs) -> uuid.UUID:
    request_id = uuid.uuid4()
    inbox_rows(
        [
            {"type": "track", "messageId": f"{request_id}-{i}", "userId": "u", "event": "E"}
            for i in range(n)
        ],
        request_id=request_id,
        **kwargs,
    )
    return request_id


def _claimed_rows(claim):
    return InboxEvent.objects.filter(pk__in=[r[0] for r in claim.rows()])


def _claimed_requests(claim) -> dict:
    rows = _claimed_rows(claim)
    return {r: rows.filter(request_id=r).count() for r in rows.values_list("request_id", flat=True)}


def _finished(claim) -> dict:
    """Finish a claim's rows the way processing would, so the next claim moves on; returns
    the requests it held.

    (These tests run in one transaction: on PostgreSQL our own row locks never make us skip
    rows, so a claimed row that is still pending would be claimed again.)
    """
    requests = _claimed_requests(claim)
    _claimed_rows(claim).update(status=InboxStatus.PROCESSED)
    return requests


def _locks() -> bool:
    return connection.vendor == "postgresql"


def test_claim_takes_whole_requests_up_to_the_batch_size(db):
    now = timezone.now()
    first = _request(3, received_at=now - timedelta(seconds=3))
    second = _request(4, received_at=now - timedelta(seconds=2))
    third = _request(3, received_at=now - timedelta(seconds=1))

    claim = inbox_claim(batch_size=5, lease_seconds=60)

    # The window of 5 cut the second request: it is left for the next claim, whole.
    assert _claimed_requests(claim) == {first: 3}
    claimed = InboxEvent.objects.get(message_id=f"{first}-0")
    if _locks():  # PostgreSQL: no lease written, the claim is the row locks
        assert (claimed.status, claimed.claim_id, claimed.claimed_until) == ("pending", None, None)
        assert len(claim.rows()) == 3 and claim.rows()[0][3].startswith("{")  # payload returned
    else:  # SQLite: a conditional-UPDATE lease
        assert claimed.status == InboxStatus.PROCESSING
        assert claimed.claimed_until > timezone.now()
    nxt = inbox_claim(batch_size=5, lease_seconds=60)
    _finished(claim)
    if _locks():  # claimed again in the same transaction, until finished
        assert _claimed_requests(nxt) == {first: 3}
        nxt = inbox_claim(batch_size=5, lease_seconds=60)
    assert _finished(nxt) == {second: 4}
    assert _finished(inbox_claim(batch_size=5, lease_seconds=60)) == {third: 3}
    assert inbox_claim(batch_size=5, lease_seconds=60) is None


def test_claim_never_splits_a_request_bigger_than_the_batch(db):
    big = _request(12)
    claim = inbox_claim(batch_size=5, lease_seconds=60)
    assert _claimed_requests(claim) == {big: 12}


def test_claim_groups_many_small_requests(db):
    ids = [_request(1) for _ in range(7)]
    claim = inbox_claim(batch_size=1000, lease_seconds=60)
    assert set(_claimed_requests(claim)) == set(ids)


def test_claim_skips_rows_not_yet_due(db):
    request = _request(2)
    InboxEvent.objects.filter(request_id=request).update(
        next_attempt_at=timezone.now() + timedelta(minutes=5)
    )
    assert inbox_claim(batch_size=10, lease_seconds=60) is None
    InboxEvent.objects.filter(request_id=request).update(
        next_attempt_at=timezone.now() - timedelta(seconds=1)
    )
    assert inbox_claim(batch_size=10, lease_seconds=60) is not None


def _acme_requests(count: int, size: int, *, spread_days: int = 1) -> list[uuid.UUID]:
    """``count`` requests of ``size`` tracks, by users u-0 … u-<size - 1> of company ACME
    (create it first); request r happened r % ``spread_days`` days ago."""
    requests = []
    for r in range(count):
        requests.append(uuid.uuid4())
        when = (timezone.now() - timedelta(days=r % spread_days)).isoformat()
        inbox_rows(
            [
                {
                    "type": "track",
                    "messageId": f"{requests[-1]}-{i}",
                    "userId": f"u-{i}",
                    "event": "E",
                    "context": {"groupId": "ACME"},
                    "timestamp": when,
                }
                for i in range(size)
            ],
            request_id=requests[-1],
        )
    return requests


def test_drain_keeps_claiming_until_nothing_is_pending(integration):
    Company.objects.create(external_id="ACME", name="Acme")
    _acme_requests(6, 3)
    summary = inbox_drain(max_seconds=30, batch_size=4)
    assert summary.claims == 6
    assert not InboxEvent.objects.exclude(status=InboxStatus.PROCESSED).exists()
    assert Activity.objects.count() == 18
    assert EndUser.objects.count() == 3  # each user created once, across claims


def _mixed_messages(n: int, tag: str) -> list[dict]:
    kinds = []
    for i in range(n):
        uid = f"{tag}-u{i % 7}"
        kinds += [
            {
                "type": "identify",
                "userId": uid,
                "traits": {"email": f"{uid}@x.io", "company_id": "ACME", "name": "N"},
            },
            {
                "type": "track",
                "userId": uid,
                "event": "E",
                "properties": {"asset_id": "A-1", "project_id": "P-1", "count": 2},
            },
            {"type": "page", "userId": f"{tag}-existing", "name": "Home"},
            {"type": "group", "groupId": "ACME", "traits": {"seats": i}},
            {"type": "track", "userId": f"{tag}-nobody{i}", "event": "E"},  # waits
            {"type": "alias", "userId": uid, "previousId": "x"},
            {"type": "identify", "userId": uid, "traits": {"email": f"dom{i}@acme.io"}},
        ]
    for i, msg in enumerate(kinds):
        msg["messageId"] = f"{tag}-{i}"
        msg["timestamp"] = (timezone.now() + timedelta(milliseconds=i)).isoformat()
    return kinds


# SQLite: Django chunks bulk INSERTs at 999 variables (about 70 rows), so "fixed" holds there
# up to that size; on PostgreSQL every statement takes the whole claim.
@pytest.mark.parametrize(
    "size", [8, pytest.param(150, marks=pytest.mark.postgres, id="postgres-150")]
)
def test_claim_processing_costs_a_fixed_number_of_queries(integration, size):
    acme = Company.objects.create(external_id="ACME", name="Acme")
    CompanyDomain.objects.create(company=acme, domain="acme.io")
    Asset.objects.create(company=acme, external_id="A-1", name="a")
    Project.objects.create(company=acme, external_id="P-1", name="p")
    MetricDefinition.objects.create(key="seats")
    for tag in ("small", "big"):
        EndUser.objects.create(company=acme, external_id=f"{tag}-existing")

    def queries_for(n, tag):
        inbox_rows(_mixed_messages(n, tag))
        claim = inbox_claim(batch_size=10_000, lease_seconds=60)
        with CaptureQueriesContext(connection) as ctx:
            claim_process(claim=claim, now=timezone.now())
        return len(ctx.captured_queries)

    small = queries_for(1, "small")
    big = queries_for(size, "big")
    assert big == small
    assert big <= 20
    assert Activity.objects.filter(message_id__startswith="big").count() == size * 2


# --- idempotency and failures ---------------------------------------------------------------


def test_reprocessing_never_duplicates_outputs(integration):
    Company.objects.create(external_id="GLOBEX", name="Globex")
    for key in ("active_users", "seats"):
        MetricDefinition.objects.create(key=key)
    rows = fixture_rows("tracking_api_batch.json")
    drain()
    before = (Activity.objects.count(), MetricValue.objects.count(), EndUser.objects.count())

    assert inbox_events_reprocess(ids=[r.pk for r in rows]) == 4
    assert set(statuses().values()) == {"pending"}
    drain()

    assert (Activity.objects.count(), MetricValue.objects.count(), EndUser.objects.count()) == (
        before
    )
    assert before == (2, 2, 1)
    assert set(statuses().values()) == {"processed"}


def test_failed_claim_is_retried_with_backoff_then_stays_failed(integration, monkeypatch, settings):
    settings.USAGE_MAX_ATTEMPTS = 2
    settings.USAGE_RETRY_BACKOFF_SECONDS = 10
    acme = Company.objects.create(external_id="ACME", name="Acme")
    EndUser.objects.create(company=acme, external_id="u-1")
    inbox_rows(
        [
            {"type": "track", "messageId": "t1", "userId": "u-1", "event": "E"},
            {"type": "track", "messageId": "t2", "userId": "u-1", "event": "F"},
        ]
    )

    def broken(**kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(write, "activities_write", broken)
    before = timezone.now()
    summary = drain()

    assert summary.failed_claims == 1
    t1 = row("t1")
    assert (t1.status, t1.attempts) == ("failed", 1)
    assert "disk on fire" in t1.detail
    assert t1.next_attempt_at >= before + timedelta(seconds=10)
    assert not Activity.objects.exists()  # the claim's writes were rolled back together

    # Not yet due: the sweeper leaves it.
    assert inbox_sweep(now=t1.next_attempt_at - timedelta(seconds=1)).retried == 0
    # Due: retried, fails again, backoff doubles, and then the budget is spent.
    assert inbox_sweep(now=t1.next_attempt_at + timedelta(seconds=1)).retried == 2
    t1.refresh_from_db()
    assert (t1.status, t1.attempts) == ("failed", 2)
    assert inbox_sweep(now=timezone.now() + timedelta(days=1)).retried == 0

    monkeypatch.undo()
    inbox_events_reprocess(ids=[t1.pk, row("t2").pk])  # an admin's "Reprocess selected"
    drain()
    assert Activity.objects.count() == 2
    assert set(statuses().values()) == {"processed"}


def test_one_bad_event_does_not_fail_the_claim(integration, monkeypatch):
    acme = Company.objects.create(external_id="ACME", name="Acme")
    EndUser.objects.create(company=acme, external_id="u-1")
    from usage.processing import matching

    real = matching.action_of

    def picky(payload):
        if payload.get("event") == "Bad":
            raise ValueError("cannot map this one")
        return real(payload)

    monkeypatch.setattr(matching, "action_of", picky)
    inbox_rows(
        [
            {"type": "track", "messageId": "good", "userId": "u-1", "event": "Good"},
            {"type": "track", "messageId": "bad", "userId": "u-1", "event": "Bad"},
        ]
    )

    summary = drain()

    assert summary.failed_claims == 0
    assert row("good").status == "processed"
    bad = row("bad")
    assert (bad.status, bad.attempts) == ("failed", 1)
    assert "cannot map this one" in bad.detail
    assert bad.next_attempt_at is not None
    assert list(Activity.objects.values_list("action", flat=True)) == ["Good"]


def _leases_only() -> None:
    if connection.vendor == "postgresql":
        pytest.skip("SQLite's lease; a PostgreSQL claim is row locks (test_claim_row_locks_*)")


def test_sweeper_frees_lapsed_claims_and_drains_stale_pending(integration, settings):
    _leases_only()
    settings.USAGE_STALE_PENDING_SECONDS = 120
    acme = Company.objects.create(external_id="ACME", name="Acme")
    EndUser.objects.create(company=acme, external_id="u-1")
    inbox_rows([{"type": "track", "messageId": "t1", "userId": "u-1", "event": "E"}])
    claim = inbox_claim(batch_size=10, lease_seconds=30)  # a worker died holding it
    assert claim is not None

    fresh = inbox_sweep(now=timezone.now())
    assert (fresh.lapsed, fresh.drained) == (0, None)
    assert row("t1").status == "processing"

    later = inbox_sweep(now=timezone.now() + timedelta(seconds=31))
    assert later.lapsed == 1
    assert row("t1").status == "processed"

    # A pending row whose nudge was lost is drained once it is older than the threshold.
    inbox_rows(
        [{"type": "track", "messageId": "t2", "userId": "u-1", "event": "E"}],
        received_at=timezone.now() - timedelta(seconds=121),
    )
    assert inbox_sweep().drained.events == 1
    assert row("t2").status == "processed"


def test_lapsed_claim_finished_late_does_not_overwrite_the_new_claim(integration):
    _leases_only()
    acme = Company.objects.create(external_id="ACME", name="Acme")
    EndUser.objects.create(company=acme, external_id="u-1")
    inbox_rows([{"type": "track", "messageId": "t1", "userId": "u-1", "event": "E"}])
    old = inbox_claim(batch_size=10, lease_seconds=1)
    inbox_sweep(now=timezone.now() + timedelta(seconds=5))  # lapsed -> re-claimed, processed
    assert row("t1").status == "processed"

    late = claim_process(claim=old, now=timezone.now())

    assert late.events == 0  # the slow worker no longer holds the row: nothing written twice
    assert Activity.objects.count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)  # to see the settings end with the claim's transaction
def test_claim_reads_pending_rows_only_and_commits_asynchronously():
    """The window goes through ``inbox_pending`` even when statistics say every row is
    pending (a burst), where the planner preferred the event log's ``received_at`` index
    and then walked every row processed since the burst began, claim after claim."""
    now = timezone.now()
    # 50,000 pending rows of a realistic size (the heap's size decides the plan), 50 a
    # request, one a second.
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO usage_inboxevent (message_id, request_id, type, payload, received_at,"
            " occurred_at) SELECT 'm-' || g, md5((g / 50)::text)::uuid, 'track',"
            " json_build_object('type', 'track', 'userId', 'U-' || g, 'padding', repeat('x', 400)),"
            " %s - make_interval(secs => 50000 - g), %s FROM generate_series(1, 50000) g",
            [now, now],
        )
        cursor.execute("ANALYZE usage_inboxevent")
    with transaction.atomic():
        claim = inbox_claim(batch_size=1000)
        assert claim is not None and len(claim.rows()) == 999  # 49 + 19 × 50; the cut one left
        with connection.cursor() as cursor:
            params = {"now": now, "batch": 1000, "pending": "pending", "request": None}
            cursor.execute("EXPLAIN " + claim_sql(one_request=False), params)
            plan = "\n".join(line for (line,) in cursor.fetchall())
            assert "Index Scan using inbox_pending on" in plan, plan
            assert "received_at_" not in plan, plan
            cursor.execute("SHOW synchronous_commit")
            assert cursor.fetchone()[0] == "off"  # only this transaction: SET LOCAL
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        assert cursor.fetchone()[0] == "on"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_claim_row_locks_are_skipped_by_other_claimers_and_freed_by_a_crash(settings):
    settings.USAGE_STALE_PENDING_SECONDS = 0
    integration_ensure()
    acme = Company.objects.create(external_id="ACME", name="Acme")
    EndUser.objects.create(company=acme, external_id="u")
    now = timezone.now()
    first = _request(3, received_at=now - timedelta(seconds=3))
    second = _request(2, received_at=now - timedelta(seconds=2))
    other: dict = {}

    def claim_elsewhere(batch_size: int) -> None:
        # A second worker: its own connection and transaction, while ours holds the locks.
        try:
            with transaction.atomic():
                got = inbox_claim(batch_size=batch_size, lease_seconds=60)
                other["requests"] = _claimed_requests(got) if got else None
        finally:
            connection.close()

    def in_thread(batch_size: int) -> dict:
        thread = threading.Thread(target=claim_elsewhere, args=(batch_size,))
        thread.start()
        thread.join(30)
        return other.pop("requests")

    with transaction.atomic():
        mine = inbox_claim(batch_size=3, lease_seconds=60)
        assert _claimed_requests(mine) == {first: 3}
        # The other worker skips our rows (no waiting, no lease written) and takes the next.
        assert in_thread(10) == {second: 2}
        # One row of ``second`` held elsewhere: the other worker never splits the request.
        InboxEvent.objects.filter(message_id=f"{second}-0").select_for_update().get()
        assert in_thread(10) is None
        # Nothing was written to claim the rows: they read pending, with no lease.
        assert set(_claimed_rows(mine).values_list("status", flat=True)) == {"pending"}
        assert not _claimed_rows(mine).exclude(claim_id=None).exists()
    # Our transaction ended (a worker that died rolls back just the same) without finishing
    # the rows: they are simply pending again, and
    # the sweeper (or the next drain) processes them, no lease to wait for.
    assert set(InboxEvent.objects.values_list("status", flat=True)) == {"pending"}
    assert inbox_sweep().drained.events == 5
    assert set(InboxEvent.objects.values_list("status", flat=True)) == {"processed"}
    assert Activity.objects.count() == 5


def test_claim_lanes_are_one_inside_a_transaction_and_on_sqlite(db):
    # Inside an open transaction (this test's), other connections could not see its rows.
    assert claim_lanes(4) == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_drain_claims_on_two_connections_at_once_and_processes_each_row_once(monkeypatch):
    """Two lanes: both hold a claim at the same time (a barrier proves it), on their own
    backends; every row is processed once, each new enduser created once, the rollups
    equal a recount, and the lanes' connections are closed afterwards."""
    integration_ensure()
    Company.objects.create(external_id="ACME", name="Acme")
    _acme_requests(12, 3, spread_days=3)  # the same three users in every request
    both_lanes_busy = threading.Barrier(2, timeout=20)
    backends: dict[str, int] = {}
    real_claim_process = services_module.claim_process

    def observed(**kwargs):
        name = threading.current_thread().name
        if name not in backends:
            backends[name] = connection.connection.info.backend_pid
            both_lanes_busy.wait()  # each lane's first claim waits for the other's
        return real_claim_process(**kwargs)

    monkeypatch.setattr(services_module, "claim_process", observed)
    summary = inbox_drain(max_seconds=30, batch_size=3, lanes=2)

    assert len(backends) == 2 and len(set(backends.values())) == 2
    assert summary.claims == 12 and summary.events == 36 and summary.failed_claims == 0
    assert set(InboxEvent.objects.values_list("status", flat=True)) == {"processed"}
    assert Activity.objects.count() == 36
    assert EndUser.objects.count() == 3
    assert summary.endusers_created == 3
    assert_rollups_equal_a_recount()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s)", [list(backends.values())]
        )
        assert cursor.fetchone()[0] == 0  # both lanes closed their connections


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_request_the_lanes_gave_up_is_taken_by_the_last_pass(monkeypatch):
    """A lane skips a request another connection holds part of (two lanes claiming parts of
    one large request at once both give it up, as the Airbyte-style test once showed). The
    lanes then end; the drain's last pass, on its own thread once they have, takes it."""
    integration_ensure()
    Company.objects.create(external_id="ACME", name="Acme")
    requests = _acme_requests(4, 5)
    held, release = threading.Event(), threading.Event()

    def hold_one_row() -> None:  # another connection holds one row of the second request
        try:
            with transaction.atomic():
                InboxEvent.objects.select_for_update().get(message_id=f"{requests[1]}-3")
                held.set()
                release.wait(20)
        finally:
            connection.close()

    holder = threading.Thread(target=hold_one_row)
    holder.start()
    assert held.wait(10)
    real_lane, passes = services_module._drain_lane, []

    def lane(**kwargs):
        if kwargs["turn"] is None:  # the last pass: the other connection is done by now
            release.set()
            holder.join(10)
        summary = real_lane(**kwargs)
        passes.append(("last" if kwargs["turn"] is None else "lane", summary.events))
        return summary

    monkeypatch.setattr(services_module, "_drain_lane", lane)
    summary = inbox_drain(max_seconds=30, batch_size=5, lanes=2)

    # The lanes: the first request; then the held one heads the queue and both give up.
    assert sorted(passes) == [("lane", 0), ("lane", 5), ("last", 15)]
    assert summary.events == 20
    assert set(InboxEvent.objects.values_list("status", flat=True)) == {"processed"}


@pytest.mark.postgres
def test_shared_writes_begin_runs_the_deferred_checks_now(integration):
    """Before the rollups, the claim's deferred foreign-key checks run, so the rollup rows'
    locks are not held through them at the commit: a broken reference fails right there."""
    inbox_rows([{"type": "track", "userId": "u", "event": "E"}])
    with transaction.atomic():
        claim = inbox_claim()
        before = transaction.savepoint()
        with connection.cursor() as cursor:
            cursor.execute(  # deferred, as Django's foreign keys are: accepted for now
                "INSERT INTO usage_activity (enduser_id, company_id, action, count, weight,"
                " occurred_at, received_at, properties, message_id)"
                " VALUES (-1, -1, 'E', 1, 1, now(), now(), '{}', 'dangling')"
            )
        with pytest.raises(IntegrityError):
            claim.shared_writes_begin()
        transaction.savepoint_rollback(before)


def test_purge_deletes_old_processed_and_dropped_rows_only(db, settings):
    settings.INBOX_RETENTION_DAYS = 30
    old = timezone.now() - timedelta(days=31)
    recent = timezone.now() - timedelta(days=29)
    for i, (status, when) in enumerate(
        [
            ("processed", old),
            ("dropped", old),
            ("failed", old),
            ("waiting", old),
            ("pending", old),
            ("processed", recent),
        ]
    ):
        inbox_rows(
            [{"type": "track", "messageId": f"m{i}", "userId": "u", "event": "E"}], received_at=when
        )
        InboxEvent.objects.filter(message_id=f"m{i}").update(status=status)

    assert inbox_purge() == 2
    assert sorted(InboxEvent.objects.values_list("message_id", flat=True)) == [
        "m2",
        "m3",
        "m4",
        "m5",
    ]


def test_bulk_writes_set_updated_at(integration):
    acme = Company.objects.create(external_id="ACME", name="Acme")
    user = EndUser.objects.create(company=acme, external_id="u-1")
    EndUser.objects.filter(pk=user.pk).update(updated_at=timezone.now() - timedelta(days=3))
    inbox_rows(
        [{"type": "identify", "messageId": "i1", "userId": "u-1", "traits": {"title": "CTO"}}]
    )
    drain()
    user.refresh_from_db()
    assert user.title == "CTO"
    assert user.updated_at > timezone.now() - timedelta(minutes=1)


def test_outputs_keep_payload_values_and_times_exactly(integration):
    # PostgreSQL reads claimed rows as JSON text and epoch microseconds and writes outputs
    # from one JSON document: integers past 64 bits, odd strings and microseconds survive.
    acme = Company.objects.create(external_id="ACME", name="Acme")
    EndUser.objects.create(company=acme, external_id="u-1")
    props = {"big": 2**70, "neg": -(2**64), "ratio": 0.1, "text": 'quote " back \\ é', "n": None}
    received = timezone.now().replace(microsecond=123457)
    rows = inbox_rows(
        [
            {
                "type": "track",
                "messageId": "t1",
                "userId": "u-1",
                "event": "E",
                "properties": props,
                "timestamp": "2026-11-05T10:00:00.654321Z",
            }
        ],
        received_at=received,
    )
    drain()
    activity = Activity.objects.get(message_id="t1")
    assert activity.properties == props
    assert activity.received_at == rows[0].received_at == received
    assert activity.occurred_at.isoformat() == "2026-11-05T10:00:00.654321+00:00"


# --- waiting events bind when their user or company becomes known ---------------------------


def test_track_before_its_identify_in_separate_requests_binds(integration):
    acme = Company.objects.create(external_id="ACME", name="Acme")
    inbox_rows(
        [
            {
                "type": "track",
                "messageId": "t1",
                "userId": "u-7",
                "event": "Early",
                "timestamp": "2026-11-05T10:00:00Z",
            }
        ]
    )
    drain()
    assert row("t1").status == "waiting"

    inbox_rows(
        [
            {
                "type": "identify",
                "messageId": "i1",
                "userId": "u-7",
                "traits": {"company_id": "ACME", "name": "Late Identify"},
                "timestamp": "2026-11-05T10:05:00Z",
            }
        ]
    )
    drain()

    t1 = row("t1")
    assert t1.status == "processed"
    assert t1.enduser.external_id == "u-7"
    assert Activity.objects.get(message_id="t1").company == acme


def test_waiting_rows_bind_by_email_when_identify_arrives(integration):
    Company.objects.create(external_id="ACME", name="Acme")
    inbox_rows(
        [
            {
                "type": "track",
                "messageId": "t1",
                "anonymousId": "a",
                "event": "E",
                "context": {"traits": {"email": "Z@x.io"}},
            }
        ]
    )
    drain()
    assert row("t1").status == "waiting"
    inbox_rows(
        [
            {
                "type": "identify",
                "messageId": "i1",
                "userId": "u-z",
                "traits": {"company_id": "ACME", "email": "z@x.io"},
            }
        ]
    )
    drain()
    assert row("t1").status == "processed"


def test_company_created_signal_requeues_its_waiting_rows(
    integration, django_capture_on_commit_callbacks
):
    inbox_rows(
        [
            {
                "type": "track",
                "messageId": "t1",
                "userId": "u-1",
                "event": "E",
                "context": {"groupId": "NEWCO"},
            },
            {
                "type": "track",
                "messageId": "t2",
                "userId": "u-2",
                "event": "E",
                "context": {"groupId": "OTHER"},
            },
        ]
    )
    drain()
    assert set(statuses().values()) == {"waiting"}

    company = Company.objects.create(external_id="NEWCO", name="New Co")
    with django_capture_on_commit_callbacks() as callbacks:
        workspace_objects_changed.send(sender=Company, model="company", pks=[company.pk])
    assert len(callbacks) == 1  # the drain nudge, published after commit
    assert statuses() == {"t1": "pending", "t2": "waiting"}
    drain()
    assert statuses() == {"t1": "processed", "t2": "waiting"}
    assert EndUser.objects.get(external_id="u-1").company == company


def test_company_domain_requeues_rows_without_a_company_id(integration):
    inbox_rows(
        [
            {
                "type": "identify",
                "messageId": "i1",
                "userId": "u-1",
                "traits": {"email": "joe@newco.io"},
            }
        ]
    )
    drain()
    company = Company.objects.create(external_id="NEWCO", name="New Co")
    CompanyDomain.objects.create(company=company, domain="newco.io")
    assert waiting_events_rematch(model="company", pks=[company.pk]) == 1
    drain()
    assert EndUser.objects.get(external_id="u-1").company == company


def test_enduser_signal_requeues_by_user_key_and_email(integration):
    acme = Company.objects.create(external_id="ACME", name="Acme")
    inbox_rows(
        [
            {"type": "track", "messageId": "t1", "userId": "u-1", "event": "E"},
            {
                "type": "track",
                "messageId": "t2",
                "anonymousId": "a",
                "event": "E",
                "context": {"traits": {"email": "b@x.io"}},
            },
        ]
    )
    drain()
    a = EndUser.objects.create(company=acme, external_id="u-1")
    b = EndUser.objects.create(company=acme, email="B@x.io")
    workspace_objects_changed.send(sender=EndUser, model="enduser", pks=[a.pk, b.pk])
    drain()
    assert Activity.objects.get(message_id="t1").enduser == a
    assert Activity.objects.get(message_id="t2").enduser == b


def test_sweeper_rematches_waiting_rows_whose_user_appeared_without_a_signal(integration):
    acme = Company.objects.create(external_id="ACME", name="Acme")
    inbox_rows([{"type": "track", "messageId": "t1", "userId": "u-1", "event": "E"}])
    drain()
    EndUser.objects.create(company=acme, external_id="u-1")  # e.g. a plain admin save
    assert inbox_sweep().rematched == 1
    assert row("t1").status == "processed"


def test_unassigned_user_assign_creates_and_requeues_waiting_and_dropped(integration):
    acme = Company.objects.create(external_id="ACME", name="Acme")
    old = timezone.now() - timedelta(hours=30)
    inbox_rows(
        [{"type": "track", "messageId": "old", "userId": "u-9", "event": "E"}], received_at=old
    )
    inbox_rows(
        [
            {
                "type": "identify",
                "messageId": "new",
                "userId": "u-9",
                "traits": {"name": "Nina", "email": "nina@x.io"},
            }
        ]
    )
    inbox_rows([{"type": "track", "messageId": "other", "userId": "u-8", "event": "E"}])
    drain()
    assert (row("old").status, row("old").reason) == ("dropped", DropReason.UNASSIGNED_USER)
    assert row("new").status == "waiting"

    user = unassigned_user_assign(user_key="u-9", email=None, company_id=acme.pk)
    drain()

    assert user.company == acme
    user.refresh_from_db()
    assert user.name == "Nina"  # the identify, reprocessed, filled the empty name
    assert Activity.objects.get(message_id="old").enduser == user
    assert row("new").status == "processed"
    assert row("other").status == "waiting"


def test_unassigned_user_assign_validates(integration):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError):
        unassigned_user_assign(user_key=" ", email=None, company_id=1)
    with pytest.raises(ValidationError):
        unassigned_user_assign(user_key="u-1", email=None, company_id=999)


def test_beat_schedule_registers_sweep_and_purge():
    from planhat_segment.schedules import periodic_defaults

    tasks = {default.task: default.queue for default in periodic_defaults()}
    assert {"usage.sweep_inbox": "ingest", "usage.purge_inbox": "ingest"}.items() <= tasks.items()


def test_tasks_have_pinned_names_and_the_ingest_queue():
    from usage import tasks

    for task, name in [
        (tasks.drain_inbox, "usage.drain_inbox"),
        (tasks.sweep_inbox, "usage.sweep_inbox"),
        (tasks.purge_inbox, "usage.purge_inbox"),
    ]:
        assert task.name == name
        assert task.queue == "ingest"


def test_drain_task_called_directly_processes(integration):
    from usage.tasks import drain_inbox

    Company.objects.create(external_id="INITECH", name="Initech")
    fixture_rows("webhook_batch.json")
    assert drain_inbox() == {"claims": 1, "events": 3, "more": False}


def test_integration_row_is_used_for_rules(db):
    integration = integration_ensure()
    integration.user_tracking_enabled = False
    integration.save()
    inbox_rows([{"type": "track", "messageId": "t1", "userId": "u-1", "event": "E"}])
    drain()
    assert row("t1").reason == DropReason.SECTION_DISABLED


# --- one re-queue, one nudge, one retry policy ------------------------------------------------


def test_assigning_a_user_requeues_once_and_nudges_once(
    integration, django_capture_on_commit_callbacks
):
    from usage.ingest.nudge import nudge

    acme = Company.objects.create(external_id="ACME", name="Acme")
    old = timezone.now() - timedelta(hours=30)
    inbox_rows(
        [{"type": "track", "messageId": "old", "userId": "u-9", "event": "E"}], received_at=old
    )
    inbox_rows([{"type": "track", "messageId": "new", "userId": "u-9", "event": "E"}])
    drain()
    assert (row("old").reason, row("new").status) == (DropReason.UNASSIGNED_USER, "waiting")

    with (
        CaptureQueriesContext(connection) as ctx,
        django_capture_on_commit_callbacks() as callbacks,
    ):
        unassigned_user_assign(user_key="u-9", email=None, company_id=acme.pk)

    table = InboxEvent._meta.db_table
    requeues = [q for q in ctx.captured_queries if q["sql"].startswith(f'UPDATE "{table}"')]
    assert len(requeues) == 1
    assert callbacks == [nudge]
    # Back to pending as if just received: no reason, no detail, no window.
    assert set(InboxEvent.objects.values_list("status", "reason", "detail", "wait_until")) == {
        ("pending", "", "", None)
    }


def test_retry_policy_backs_off_then_gives_up(settings):
    from usage.processing.policy import next_attempt

    settings.USAGE_MAX_ATTEMPTS = 4
    settings.USAGE_RETRY_BACKOFF_SECONDS = 30
    settings.USAGE_RETRY_BACKOFF_MAX_SECONDS = 100
    now = timezone.now()
    delays = [next_attempt(n, now=now) for n in range(1, 5)]
    assert [d - now for d in delays[:3]] == [timedelta(seconds=s) for s in (30, 60, 100)]
    assert delays[3] is None  # exhausted: a terminal failed state


def test_an_event_that_keeps_failing_ends_failed_with_its_reason(
    integration, monkeypatch, settings
):
    settings.USAGE_MAX_ATTEMPTS = 1
    acme = Company.objects.create(external_id="ACME", name="Acme")
    EndUser.objects.create(company=acme, external_id="u-1")
    from usage.processing import matching

    def broken(payload):
        raise ValueError("cannot map this one")

    monkeypatch.setattr(matching, "action_of", broken)
    inbox_rows([{"type": "track", "messageId": "bad", "userId": "u-1", "event": "E"}])
    drain()
    bad = row("bad")
    assert (bad.status, bad.attempts, bad.next_attempt_at) == ("failed", 1, None)
    assert "cannot map this one" in bad.detail and "no more retries" in bad.detail
    assert inbox_sweep(now=timezone.now() + timedelta(days=30)).retried == 0
