"""Planhat items into the one inbox: translate each, store the good ones as one request.

The same inbox, processing, event log and reasons as Segment calls (``inbox_store``, then
the coalesced drain): only the door differs. ``processed`` is what Planhat counts: items
stored now plus exact resends already stored (duplicates).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.utils import timezone

from ..messages import Message
from ..nudge import drain_soon
from ..services import inbox_store

# The answer lists at most as many errors as the Segment endpoints list rejections (one
# rule); ``errors_count`` says how many there were.
from ..views import MAX_REJECTED_SHOWN as MAX_ERRORS_LISTED
from .items import ItemError

Translate = Callable[..., Message]


@dataclass
class PlanhatResult:
    processed: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    errors_count: int = 0

    def error_add(self, index: int, error: str) -> None:
        self.errors_count += 1
        if len(self.errors) < MAX_ERRORS_LISTED:
            self.errors.append({"index": index, "error": error})

    def as_dict(self) -> dict[str, Any]:
        return {
            "processed": self.processed,
            "errors": self.errors,
            "errors_count": self.errors_count,
        }


def planhat_messages_store(*, messages: list[Message], received_at: datetime) -> int:
    """Store translated messages as one request; returns how many are processed (new +
    already stored). Raises DatabaseError when the database cannot take the write."""
    if not messages:
        return 0
    stored = inbox_store(messages=messages, received_at=received_at)
    if stored.accepted:
        drain_soon()
    return stored.accepted + stored.duplicates


def planhat_items_ingest(
    *,
    items: Iterable[tuple[int, Any]],
    translate: Translate,
    received_at: datetime | None = None,
    check_nul: bool = True,
    result: PlanhatResult | None = None,
) -> PlanhatResult:
    """Translate ``(index, item)`` pairs with ``translate`` and store the good ones.

    A bad item is an error of its own (``index`` as given), never the request's. Raises
    DatabaseError when the database cannot take the write (nothing of this call stored).
    """
    received_at = received_at or timezone.now()
    result = result or PlanhatResult()
    messages: list[Message] = []
    for index, item in items:
        try:
            messages.append(translate(item, received_at=received_at, check_nul=check_nul))
        except ItemError as exc:
            result.error_add(index, str(exc))
    result.processed += planhat_messages_store(messages=messages, received_at=received_at)
    return result
