"""Pure reading of a stored Segment message: identity keys, traits, counts, numbers, times.

No database access here, so every rule of DESIGN.md §4.2 that is about *reading* a message
can be tested on plain dicts.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.utils.dateparse import parse_datetime

USER_CALLS = frozenset({"identify", "track", "page", "screen"})
# Planhat's dimension data (usage.ingest.planhat): a metric value for one object.
DIMENSION = "dimension"
MAX_KEY_LENGTH = 255
MAX_EMAIL_LENGTH = 254
MAX_COUNT = 2_147_483_647  # PositiveIntegerField's ceiling on every backend

# A finite decimal number written as a string ("12.5", "-3", ".5"); no exponent, no NaN/inf.
_DECIMAL_RE = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)$")
# A count written as a string: ASCII digits, at most one more than MAX_COUNT has.
_COUNT_RE = re.compile(r"^[0-9]{1,11}$", re.ASCII)


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def as_key(value: Any) -> str | None:
    """An id as a string: ``123`` and ``"123"`` are the same id; blanks and objects are none."""
    if value is None or isinstance(value, bool | dict | list | float):
        # Floats are rejected because "1.0" vs "1" would silently never match an external id.
        return None
    text = str(value).strip()
    if not text or len(text) > MAX_KEY_LENGTH:
        return None
    return text


def as_email(value: Any) -> str | None:
    """A lower-cased email, or None when the value cannot be one."""
    if not isinstance(value, str):
        return None
    text = value.strip().lower()
    if "@" not in text or len(text) > MAX_EMAIL_LENGTH or text.startswith("@"):
        return None
    return text


def email_domain(email: str | None) -> str | None:
    if not email:
        return None
    return email.rsplit("@", 1)[1].rstrip(".") or None


def user_traits(payload: dict) -> dict:
    """Traits about the user: ``context.traits`` overlaid by the message's own ``traits``."""
    return {**_dict(_dict(payload.get("context")).get("traits")), **_dict(payload.get("traits"))}


def company_key_of(payload: dict, kind: str | None = None) -> str | None:
    """The company id an event names; first present wins (DESIGN.md §4.2).

    ``kind`` is the call's type when known (else the payload's ``type``). The candidates, in
    order: ``traits.company_id`` / ``companyId`` / ``company.id``, ``context.groupId``,
    ``context.traits.company_id`` / ``companyId``, ``properties.company_id`` / ``companyId``
    (read lazily: this runs once per event).
    """
    if (kind if kind is not None else payload.get("type")) == "group":
        return as_key(payload.get("groupId"))
    traits = payload.get("traits")
    if isinstance(traits, dict) and traits:
        key = as_key(traits.get("company_id")) or as_key(traits.get("companyId"))
        if key is not None:
            return key
        # A string under "company" is the company's name, not its id.
        company = traits.get("company")
        if isinstance(company, dict) and (key := as_key(company.get("id"))) is not None:
            return key
    context = payload.get("context")
    if isinstance(context, dict) and context:
        if (key := as_key(context.get("groupId"))) is not None:
            return key
        context_traits = context.get("traits")
        if isinstance(context_traits, dict) and context_traits:
            key = as_key(context_traits.get("company_id")) or as_key(
                context_traits.get("companyId")
            )
            if key is not None:
                return key
    properties = payload.get("properties")
    if isinstance(properties, dict) and properties:
        return as_key(properties.get("company_id")) or as_key(properties.get("companyId"))
    return None


def user_key_of(payload: dict) -> str | None:
    traits = _dict(payload.get("traits"))
    for candidate in (payload.get("userId"), traits.get("user_id"), traits.get("userId")):
        key = as_key(candidate)
        if key is not None:
            return key
    return None


def email_key_of(payload: dict) -> str | None:
    """The event's email, first usable wins: ``traits.email``, ``context.traits.email``,
    ``properties.email``, a top-level ``email``. The one rule: ingest's door accepts an
    event as identified by exactly this (:func:`has_identity`), so the door and the matcher
    never disagree."""
    for holder in (
        payload.get("traits"),
        _dict(payload.get("context")).get("traits"),
        payload.get("properties"),
        payload,
    ):
        if isinstance(holder, dict) and (email := as_email(holder.get("email"))) is not None:
            return email
    return None


def has_identity(payload: dict) -> bool:
    """Whether an event names someone: a user id or an email as the matcher reads them
    (:func:`user_key_of`, :func:`email_key_of`), or an ``anonymousId`` (stored, then dropped
    as ``no_identity`` by processing when nothing else identifies the user). Ingest rejects
    an event without any as ``invalid_message``."""
    return (
        user_key_of(payload) is not None
        or email_key_of(payload) is not None
        or as_key(payload.get("anonymousId")) is not None
    )


def _text(value: Any, limit: int) -> str:
    if value is None or isinstance(value, dict | list | bool):
        return ""
    return str(value).strip()[:limit]


@dataclass(frozen=True)
class Profile:
    """Enduser fields an event's traits carry (empty string: not given)."""

    name: str = ""
    first_name: str = ""
    last_name: str = ""
    title: str = ""

    def as_fields(self) -> dict[str, str]:
        return {
            "name": self.name,
            "first_name": self.first_name,
            "last_name": self.last_name,
            "title": self.title,
        }


def profile_of(payload: dict) -> Profile:
    traits = user_traits(payload)
    first = _text(traits.get("firstName") or traits.get("first_name"), 150)
    last = _text(traits.get("lastName") or traits.get("last_name"), 150)
    name = _text(traits.get("name"), 255) or f"{first} {last}".strip()[:255]
    return Profile(
        name=name, first_name=first, last_name=last, title=_text(traits.get("title"), 255)
    )


def count_of(properties: dict) -> tuple[int, str | None]:
    """``properties.count`` as a positive int, else 1 with a note saying why."""
    if "count" not in properties or properties["count"] is None:
        return 1, None
    raw = properties["count"]
    value: int | None = None
    if isinstance(raw, int) and not isinstance(raw, bool):
        value = raw
    elif isinstance(raw, float) and raw.is_integer():
        value = int(raw)
    elif isinstance(raw, str) and _COUNT_RE.match(raw.strip()):
        # ASCII digits only, and few: str.isdigit() also says yes to "²" (which int() refuses)
        # and to 5,000-digit strings (which int() refuses past 4,300 digits).
        value = int(raw.strip())
    if value is None or value < 1 or value > MAX_COUNT:
        shown = repr(raw) if len(repr(raw)) <= 40 else repr(raw)[:37] + "…"
        return 1, f"count {shown} is not a positive integer; 1 used"
    return value, None


def planhat_of(payload: dict) -> dict:
    """What a Planhat activity carries besides Segment's fields (``weight``, ``count``)."""
    return _dict(payload.get("planhat"))


def weight_of(payload: dict) -> float:
    """The activity's weight: Planhat's ``weight`` (checked at the door), else 1."""
    weight = planhat_of(payload).get("weight")
    if isinstance(weight, int | float) and not isinstance(weight, bool) and math.isfinite(weight):
        return float(weight) if weight >= 0 else 1.0
    return 1.0


def number_of(value: Any) -> float | None:
    """A finite number from a JSON number or a decimal string; booleans and null are not."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value)
        return number if math.isfinite(number) else None
    if isinstance(value, str) and _DECIMAL_RE.match(value.strip()):
        number = float(value.strip())
        return number if math.isfinite(number) else None
    return None


def timestamp_of(payload: dict, fallback: datetime) -> datetime:
    """``timestamp``, else ``originalTimestamp``, else ``fallback``; always aware, in UTC."""
    for name in ("timestamp", "originalTimestamp"):
        raw = payload.get(name)
        if isinstance(raw, str):
            try:
                parsed = parse_datetime(raw.strip())
            except ValueError:
                parsed = None
            if parsed is not None:
                if parsed.tzinfo is None:
                    parsed = parsed.replace(tzinfo=UTC)
                return parsed.astimezone(UTC)
    return fallback


def action_of(payload: dict) -> str:
    """The activity's action: the track event name, or "Viewed <name>" for page / screen."""
    kind = payload.get("type")
    if kind == "track":
        return _text(payload.get("event"), 255) or "Unnamed event"
    name = _text(payload.get("name"), 240) or _text(
        _dict(payload.get("properties")).get("name"), 240
    )
    return f"Viewed {name}" if name else f"Viewed {kind}"


def object_keys_of(properties: dict) -> tuple[str | None, str | None]:
    """(asset external id, project external id) named in a track's properties."""
    asset = as_key(properties.get("asset_id")) or as_key(properties.get("assetId"))
    project = as_key(properties.get("project_id")) or as_key(properties.get("projectId"))
    return asset, project


@dataclass
class EventFacts:
    """What processing needs from one inbox row, read once."""

    row_id: int
    message_id: str
    type: str
    payload: dict
    received_at: datetime
    occurred_at: datetime
    user_key: str | None = None
    email_key: str | None = None
    company_key: str | None = None
    asset_key: str | None = None
    project_key: str | None = None
    attempts: int = 0


def facts_of(
    *,
    row_id: int,
    message_id: str,
    type_: str,
    payload: dict,
    received_at: datetime,
    occurred_at: datetime | None,
    attempts: int = 0,
) -> EventFacts:
    payload = payload if isinstance(payload, dict) else {}
    kind = (type_ or payload.get("type") or "").lower()
    facts = EventFacts(
        row_id=row_id,
        message_id=message_id,
        type=kind,
        payload=payload,
        received_at=received_at,
        occurred_at=occurred_at or timestamp_of(payload, received_at),
        company_key=company_key_of(payload, kind),
        attempts=attempts,
    )
    if kind in USER_CALLS:
        facts.user_key = user_key_of(payload)
        facts.email_key = email_key_of(payload)
    if kind == "track":
        facts.asset_key, facts.project_key = object_keys_of(_dict(payload.get("properties")))
    elif kind == DIMENSION:
        # The object the value is for, as the key its model is looked up by.
        key = as_key(payload.get("externalId"))
        model = payload.get("model")
        if model == "EndUser":
            facts.user_key = key
        elif model == "Asset":
            facts.asset_key = key
        elif model == "Project":
            facts.project_key = key
        else:
            facts.company_key = key
    return facts
