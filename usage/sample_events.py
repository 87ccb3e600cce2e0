"""'Send test event': a sample identify and track through the real pipeline, in-process.

The page must not POST to its own server (a single sync worker would deadlock, DESIGN.md
§7), so the messages go through the one ingest service the endpoints use, and then this
request's own rows (no one else's) are processed in this process. The test company and
enduser are flagged ``is_test``: charts, rollups and the warehouse push leave them out.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from planhat_segment.models import Company, EndUser

from .ingest.services import messages_ingest
from .models import InboxEvent, InboxStatus
from .services import inbox_drain

TEST_COMPANY_EXTERNAL_ID = "planhat-segment-test-company"
TEST_USER_ID = "planhat-segment-test-user"
TEST_EMAIL = "segment-test-user@example.invalid"
DRAIN_SECONDS = 5


@dataclass(frozen=True)
class SampleEventOutcome:
    kind: str
    ok: bool
    summary: str


def sample_events_send() -> list[SampleEventOutcome]:
    """Send a sample identify and track for the test enduser and report what became of each."""
    company, _ = Company.objects.get_or_create(
        external_id=TEST_COMPANY_EXTERNAL_ID,
        defaults={"name": "Segment test company", "is_test": True},
    )
    EndUser.objects.get_or_create(
        external_id=TEST_USER_ID,
        defaults={
            "company": company,
            "email": TEST_EMAIL,
            "name": "Segment test user",
            "source": EndUser.Source.SEGMENT,
            "is_test": True,
        },
    )
    run = uuid.uuid4().hex[:12]
    now = timezone.now().isoformat()
    messages = [
        {
            "type": "identify",
            "messageId": f"test-identify-{run}",
            "userId": TEST_USER_ID,
            "timestamp": now,
            "traits": {"email": TEST_EMAIL, "company_id": TEST_COMPANY_EXTERNAL_ID},
        },
        {
            "type": "track",
            "messageId": f"test-track-{run}",
            "userId": TEST_USER_ID,
            "event": "Segment Test Event",
            "timestamp": now,
            "properties": {"source": "integration page"},
        },
    ]
    # One transaction: the drain nudge that ingest asks for fires only after this request's
    # rows are processed here, so no worker takes them meanwhile.
    with transaction.atomic():
        stored = messages_ingest(items=messages)
        inbox_drain(max_seconds=DRAIN_SECONDS, request_id=stored.request_id)
    rows = {
        row.type: row
        for row in InboxEvent.objects.filter(message_id__in=[m["messageId"] for m in messages])
    }
    return [_outcome(kind, rows.get(kind)) for kind in ("identify", "track")]


def _outcome(kind: str, row: InboxEvent | None) -> SampleEventOutcome:
    if row is None:
        return SampleEventOutcome(kind, False, "was not stored (see the server log).")
    if row.status == InboxStatus.PROCESSED:
        what = "matched the test enduser" if kind == "identify" else "recorded as an activity"
        return SampleEventOutcome(kind, True, f"processed: {what} (event #{row.pk}).")
    if row.status in (InboxStatus.PENDING, InboxStatus.PROCESSING):
        return SampleEventOutcome(
            kind,
            False,
            f"queued behind other events; the worker will process it (event #{row.pk}).",
        )
    reason = f" ({row.get_reason_display()})" if row.reason else ""
    detail = f": {row.detail}" if row.detail else ""
    return SampleEventOutcome(kind, False, f"{row.get_status_display()}{reason}{detail}.")
