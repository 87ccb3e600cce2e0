"""Faults found in processing by fault-injection runs, each reproduced first (issue 9)."""

from __future__ import annotations

import pytest

from planhat_segment.models import Company, EndUser
from tests.usage.processing_support import inbox_rows, row
from usage.models import Activity
from usage.processing.parse import count_of
from usage.services import inbox_drain

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("raw", ["²", "٣", "1" * 5000, "99999999999"])
def test_count_strings_int_refuses_are_a_count_of_one_with_a_note(raw):
    count, note = count_of({"count": raw})
    assert count == 1
    assert "not a positive integer" in note


def test_events_with_such_counts_are_processed_not_failed_and_retried(integration):
    # Found: "²" and a 5,000-digit string passed str.isdigit() and failed int(): the events
    # ended failed and were retried for nothing.
    company = Company.objects.create(name="Acme", external_id="ACME")
    EndUser.objects.create(company=company, external_id="u-1")
    base = {"type": "track", "userId": "u-1", "event": "Clicked"}
    inbox_rows(
        [
            {**base, "messageId": "sup", "properties": {"count": "²"}},
            {**base, "messageId": "long", "properties": {"count": "7" * 5000}},
            {**base, "messageId": "fine", "properties": {"count": "12"}},
        ]
    )
    inbox_drain()
    for message_id in ("sup", "long"):
        stored = row(message_id)
        assert (stored.status, stored.attempts) == ("processed", 0)
        assert "1 used" in stored.detail
    counts = dict(Activity.objects.values_list("message_id", "count"))
    assert counts == {"sup": 1, "long": 1, "fine": 12}
