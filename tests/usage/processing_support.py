"""Helpers for the processing tests (a support module, not a test module): inbox rows built
from payloads."""

from __future__ import annotations

import uuid
from datetime import datetime

from django.utils import timezone

from tests.conftest import load_fixture
from usage.models import InboxEvent
from usage.processing.parse import timestamp_of


def batch_messages(body: dict | list) -> list[dict]:
    """Messages of a fixture body, with a batch's top-level context merged in (as ingest does)."""
    if isinstance(body, list):
        return body
    if "batch" in body:
        shared = body.get("context") or {}
        return [{**m, "context": {**shared, **(m.get("context") or {})}} for m in body["batch"]]
    return [body]


def inbox_rows(
    messages: list[dict],
    *,
    request_id: uuid.UUID | None = None,
    received_at: datetime | None = None,
) -> list[InboxEvent]:
    """Store messages as one request's pending inbox rows, the way ingest does."""
    request_id = request_id or uuid.uuid4()
    received_at = received_at or timezone.now()
    rows = [
        InboxEvent(
            message_id=m.get("messageId") or str(uuid.uuid4()),
            request_id=request_id,
            type=m.get("type", ""),
            payload=m,
            received_at=received_at,
            occurred_at=timestamp_of(m, received_at),
        )
        for m in messages
    ]
    InboxEvent.objects.bulk_create(rows)
    return list(InboxEvent.objects.filter(request_id=request_id).order_by("id"))


def fixture_rows(name: str, **kwargs) -> list[InboxEvent]:
    return inbox_rows(batch_messages(load_fixture(name)), **kwargs)


def row(message_id: str) -> InboxEvent:
    return InboxEvent.objects.get(message_id=message_id)
