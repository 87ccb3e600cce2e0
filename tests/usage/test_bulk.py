"""usage.bulk: one SQL text per write on both databases, values stored as Django stores them.

Rows written by raw SQL must read back through the ORM exactly (range filters, date
truncation, UUID and JSON lookups): on SQLite a datetime is naive UTC text and a UUID 32 hex
digits, and anything else would make those filters miss rows silently.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from django.db.models.functions import TruncDate, TruncDay
from django.utils import timezone as dj_timezone

from planhat_segment.models import Company, EndUser
from usage.bulk import keys_in, rows_insert, rows_update, rows_where_in
from usage.models import Activity, CompanyActionDay, InboxEvent

pytestmark = pytest.mark.django_db

# A moment late on a UTC day, written with a non-UTC offset: the UTC day is the 5th, the
# local one the 6th.
LATE = datetime(2026, 3, 5, 23, 30, 0, 654321, tzinfo=UTC).astimezone(timezone(timedelta(hours=5)))
ROUND = datetime(2026, 3, 5, 12, 0, 0, tzinfo=UTC)  # no microseconds: Django's shorter form


def _inbox(message_id: str, request_id: uuid.UUID, at: datetime) -> tuple:
    return (message_id, request_id, "track", {"n": 2**70, "s": 'é " \\'}, at, at)


def test_inserted_rows_read_back_through_the_orm_exactly():
    request = uuid.uuid4()
    inserted = rows_insert(
        InboxEvent,
        ("message_id", "request_id", "type", "payload", "received_at", "occurred_at"),
        [_inbox("late", request, LATE), _inbox("round", request, ROUND)],
        returning=("message_id",),
    )

    assert sorted(inserted) == [("late",), ("round",)]
    late = InboxEvent.objects.get(message_id="late")
    # Model defaults (db_default) filled in by the database; values exact.
    assert (late.status, late.reason, late.detail, late.attempts) == ("pending", "", "", 0)
    assert late.received_at == LATE and late.payload == {"n": 2**70, "s": 'é " \\'}
    assert InboxEvent.objects.filter(request_id=request).count() == 2
    # Range filters at the microsecond, on both sides.
    assert set(
        InboxEvent.objects.filter(
            received_at__gte=LATE, received_at__lt=LATE + timedelta(microseconds=1)
        ).values_list("message_id", flat=True)
    ) == {"late"}
    assert not InboxEvent.objects.filter(received_at__gt=LATE).exists()
    assert InboxEvent.objects.filter(received_at=ROUND).get().message_id == "round"
    # Date truncation in UTC, whatever zone the moment was written in.
    days = dict(
        InboxEvent.objects.annotate(day=TruncDate("received_at", tzinfo=UTC)).values_list(
            "message_id", "day"
        )
    )
    assert days == {"late": date(2026, 3, 5), "round": date(2026, 3, 5)}
    assert (
        InboxEvent.objects.annotate(d=TruncDay("received_at", tzinfo=UTC))
        .filter(d=datetime(2026, 3, 5, tzinfo=UTC))
        .count()
        == 2
    )
    # JSON lookups on the stored document.
    assert InboxEvent.objects.filter(payload__s='é " \\').count() == 2


def test_conflicts_insert_nothing_and_return_only_the_new_keys():
    request = uuid.uuid4()
    fields = ("message_id", "request_id", "type", "payload", "received_at", "occurred_at")
    rows_insert(InboxEvent, fields, [_inbox("a", request, ROUND)])
    again = rows_insert(
        InboxEvent,
        fields,
        [_inbox("a", request, ROUND), _inbox("b", request, ROUND)],
        returning=("message_id",),
    )
    assert again == [("b",)]
    assert InboxEvent.objects.count() == 2


def test_model_defaults_fill_columns_left_out():
    acme = Company.objects.create(name="Acme", external_id="ACME")
    rows_insert(
        EndUser,
        ("company", "external_id", "email", "email_normalized", "created_at", "updated_at"),
        [(acme.pk, "u-1", "a@x.io", "a@x.io", LATE, LATE)],
    )
    user = EndUser.objects.get(external_id="u-1")
    assert (user.source, user.custom, user.is_test, user.title) == ("manual", {}, False, "")
    assert user.created_at == LATE


def test_counters_upsert_adds_and_keeps_dates_as_the_orm_does():
    acme = Company.objects.create(name="Acme")
    fields = ("company", "day", "action", "count", "weighted_count")
    for _ in range(2):
        rows_insert(
            CompanyActionDay,
            fields,
            [(acme.pk, date(2026, 3, 5), "E", 2, 1.5), (acme.pk, date(2026, 3, 6), "E", 1, 1.0)],
            conflict=("company", "day", "action"),
            increment=("count", "weighted_count"),
        )
    rows = dict(CompanyActionDay.objects.values_list("day", "count"))
    assert rows == {date(2026, 3, 5): 4, date(2026, 3, 6): 2}
    assert CompanyActionDay.objects.filter(day__gte=date(2026, 3, 6)).get().weighted_count == 2.0


def test_update_from_document_and_lookups_by_keys():
    acme = Company.objects.create(name="Acme", external_id="ACME")
    a = EndUser.objects.create(company=acme, external_id="a")
    b = EndUser.objects.create(company=acme, email="B@x.io")
    written = rows_update(EndUser, ("pk", "title", "updated_at"), [(a.pk, "CTO", LATE)])
    assert written == 1
    a.refresh_from_db()
    assert (a.title, a.updated_at) == ("CTO", LATE)
    found = rows_where_in(EndUser, ("pk",), external_id=["a", "zz"], email_normalized=["b@x.io"])
    assert sorted(found) == sorted([(a.pk,), (b.pk,)])
    assert rows_where_in(EndUser, ("pk",), external_id=[]) == []
    assert list(
        EndUser.objects.filter(external_id__in=keys_in(["a", "nobody"])).values_list(
            "pk", flat=True
        )
    ) == [a.pk]


def test_activity_round_trip_keeps_weight_default_and_day():
    acme = Company.objects.create(name="Acme")
    user = EndUser.objects.create(company=acme, external_id="u")
    now = dj_timezone.now()
    rows_insert(
        Activity,
        ("message_id", "enduser", "company", "occurred_at", "received_at", "action"),
        [("m1", user.pk, acme.pk, LATE, now, "E")],
    )
    activity = Activity.objects.annotate(day=TruncDate("occurred_at", tzinfo=UTC)).get()
    # Left out: weight (db_default), count and properties (the model's defaults).
    assert (activity.weight, activity.count, activity.properties) == (1.0, 1, {})
    assert activity.day == date(2026, 3, 5)
    day = datetime(2026, 3, 5, tzinfo=UTC)
    assert Activity.objects.filter(
        occurred_at__gte=day, occurred_at__lt=day + timedelta(days=1)
    ).exists()
