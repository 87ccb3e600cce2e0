"""The browser key: what analytics.js may do with a key every visitor's browser holds.

Accepted only on ``/v1`` for identify / track / page / screen (long and short forms, and a
batch of those: any other call in a batch is rejected by itself, the rest kept) and on the
settings GET (``settings_view.py``); never for group (company metrics), alias, ``/dock``,
or Planhat's endpoints, which need the tenant token.
"""

from __future__ import annotations

from typing import Any

from integrations.models import IntegrationSettings
from integrations.services import browser_key_check

from .messages import Rejection
from .services import StoreResult, messages_ingest

BROWSER_TYPES = frozenset({"identify", "track", "page", "screen"})
BROWSER_REASON = "browser_key_not_allowed"
BROWSER_DETAIL = (
    "The browser key may send identify, track, page and screen calls only; send {kind} "
    "server-side with the tenant token."
)


def browser_key_valid(*, integration: IntegrationSettings, candidates: list[str]) -> bool:
    """True when one candidate is the browser key, or the previous one within its grace.

    Every candidate is compared (constant time each), as for the tenant token.
    """
    ok = False
    for candidate in candidates:
        if candidate and browser_key_check(integration=integration, presented=candidate).valid:
            ok = True
    return ok


def browser_path_allowed(path_type: str | None) -> bool:
    """May the browser key post to ``/v1/<path_type>`` (None: a batch, checked per item)?"""
    return path_type is None or path_type in BROWSER_TYPES


def browser_messages_ingest(*, items: list[Any], check_each: bool) -> StoreResult:
    """The one ingest service, for what the browser key may send.

    Items of another type (group, alias) are rejected each with reason
    ``browser_key_not_allowed``; the others go to ``messages_ingest`` unchanged, and their
    rejections keep their index in the body.
    """
    allowed: list[Any] = []
    positions: list[int] = []
    refused: list[Rejection] = []
    for index, item in enumerate(items):
        kind = item.get("type") if isinstance(item, dict) else None
        if isinstance(kind, str) and kind and kind not in BROWSER_TYPES:
            refused.append(
                Rejection(
                    index=index,
                    reason=BROWSER_REASON,
                    detail=BROWSER_DETAIL.format(kind=kind[:40]),
                )
            )
            continue
        allowed.append(item)
        positions.append(index)
    stored = messages_ingest(items=allowed, check_each=check_each)
    rejected = [
        Rejection(index=positions[r.index], detail=r.detail, reason=r.reason)
        for r in stored.rejected
    ]
    return StoreResult(
        request_id=stored.request_id,
        accepted=stored.accepted,
        duplicates=stored.duplicates,
        rejected=sorted(rejected + refused, key=lambda r: r.index),
    )
