"""Decide: the matching rules of DESIGN.md §4.2, applied to one claim's events in memory.

Everything the rules need from the database is loaded beforehand into :class:`Lookups`
(one query per kind, see ``load.py``), so deciding costs no query per event.
Events are decided in timestamp order and an enduser planned for creation is registered in
the lookups at once, so an identify binds the track events that follow it in the same claim.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from usage.models import DropReason, InboxStatus

from .load import Lookups, Rules, UserRef
from .parse import (
    DIMENSION,
    USER_CALLS,
    EventFacts,
    action_of,
    count_of,
    number_of,
    planhat_of,
    profile_of,
    weight_of,
)
from .policy import wait_expired, wait_until

logger = logging.getLogger(__name__)


@dataclass
class Outcome:
    status: str
    reason: str = ""
    notes: list[str] = field(default_factory=list)
    user: UserRef | None = None
    wait_until: datetime | None = None

    @property
    def detail(self) -> str:
        return "; ".join(self.notes)[:2000]


@dataclass(frozen=True, slots=True)
class ActivitySpec:
    user: UserRef
    asset_id: int | None
    project_id: int | None
    action: str
    count: int
    occurred_at: datetime
    received_at: datetime
    properties: dict
    message_id: str
    weight: float = 1.0


@dataclass(frozen=True, slots=True)
class MetricValueSpec:
    """One metric value for exactly one object: a company, an enduser (possibly planned for
    creation earlier in the claim, so a ref), an asset or a project. ``metric_id`` is None
    for a dimension id not defined yet: the write stage creates it from ``metric_key``."""

    metric_id: int | None
    value: float
    occurred_at: datetime
    message_id: str
    company_id: int | None = None
    user: UserRef | None = None
    asset_id: int | None = None
    project_id: int | None = None
    metric_key: str = ""


@dataclass
class MatchResult:
    outcomes: dict[int, Outcome] = field(default_factory=dict)  # by inbox row id
    new_users: list[UserRef] = field(default_factory=list)
    touched_users: list[UserRef] = field(default_factory=list)  # matched or created
    activities: list[ActivitySpec] = field(default_factory=list)
    metric_values: list[MetricValueSpec] = field(default_factory=list)

    @property
    def changed_users(self) -> list[UserRef]:
        return [u for u in self.touched_users if u.changed and not u.is_new]


def _dropped(reason: DropReason, note: str | None = None) -> Outcome:
    return Outcome(status=InboxStatus.DROPPED, reason=reason, notes=[note] if note else [])


def _fill_empty(ref: UserRef, facts: EventFacts, lookups: Lookups) -> None:
    """Identify fills only the enduser's empty fields; a set value is never overwritten."""
    for name, value in profile_of(facts.payload).as_fields().items():
        if value and not getattr(ref, name):
            setattr(ref, name, value)
            ref.changed.add(name)
    if facts.email_key and not ref.email and facts.email_key not in lookups.users_by_email:
        ref.email = facts.email_key
        ref.changed.add("email")
        lookups.users_by_email[facts.email_key] = ref
    if facts.user_key and not ref.external_id and facts.user_key not in lookups.users_by_ext:
        ref.external_id = facts.user_key
        ref.changed.add("external_id")
        lookups.users_by_ext[facts.user_key] = ref


def _decide_group(
    facts: EventFacts, rules: Rules, lookups: Lookups, result: MatchResult
) -> Outcome:
    if not rules.company_metrics:
        return _dropped(DropReason.SECTION_DISABLED)
    company_id = lookups.companies.get(facts.company_key) if facts.company_key else None
    if company_id is None:
        return _dropped(DropReason.UNKNOWN_COMPANY)
    traits = facts.payload.get("traits")
    traits = traits if isinstance(traits, dict) else {}
    outcome = Outcome(status=InboxStatus.PROCESSED)
    recorded_before = len(result.metric_values)
    for key, metric_id in lookups.metrics.items():
        if key not in traits:
            continue
        raw = traits[key]
        number = number_of(raw)
        if number is not None:
            result.metric_values.append(
                MetricValueSpec(
                    company_id=company_id,
                    metric_id=metric_id,
                    value=number,
                    occurred_at=facts.occurred_at,
                    message_id=facts.message_id,
                )
            )
        elif raw is not None:  # null is simply no value; anything else is worth a note
            outcome.notes.append(f"metric {key!r}: {str(raw)[:60]!r} is not a number")
    if len(result.metric_values) == recorded_before and not outcome.notes:
        # Said on the row, so the event log answers "why is my metric not in the chart?"
        # (a trait name that differs from the key, or a metric removed = archived).
        outcome.notes.append("no metric recorded: none of its traits is an active metric's key")
    return outcome


def _decide_dimension(
    facts: EventFacts, rules: Rules, lookups: Lookups, result: MatchResult
) -> Outcome:
    """Dimension data: one value for one object; any dimension id (created when new)."""
    if not rules.company_metrics:
        return _dropped(DropReason.SECTION_DISABLED)
    payload = facts.payload
    value = number_of(payload.get("value"))
    key = payload.get("dimensionId")
    if value is None or not isinstance(key, str) or not key:
        # The door checks both; a row stored otherwise (by hand) says so.
        return Outcome(status=InboxStatus.FAILED, notes=["dimension data without id or value"])
    if key in lookups.metrics_archived:
        notes = [f"no metric recorded: metric {key!r} is removed (archived); restore it to record"]
        return Outcome(status=InboxStatus.PROCESSED, notes=notes)
    target: dict = {}
    model = payload.get("model")
    if model == "EndUser":
        user = lookups.user_find(facts.user_key, None) if facts.user_key else None
        if user is not None:
            target = {"user": user}
    elif model == "Asset":
        if facts.asset_key and (pk := lookups.assets.get(facts.asset_key)) is not None:
            target = {"asset_id": pk}
    elif model == "Project":
        if facts.project_key and (pk := lookups.projects.get(facts.project_key)) is not None:
            target = {"project_id": pk}
    elif facts.company_key and (pk := lookups.companies.get(facts.company_key)) is not None:
        target = {"company_id": pk}
    if not target:
        reason = DropReason.UNKNOWN_COMPANY if model == "Company" else DropReason.UNKNOWN_OBJECT
        return _dropped(reason, f"no {model} with external id {payload.get('externalId')!r}")
    result.metric_values.append(
        MetricValueSpec(
            metric_id=lookups.metrics_any.get(key),
            metric_key=key,
            value=value,
            occurred_at=facts.occurred_at,
            message_id=facts.message_id,
            **target,
        )
    )
    return Outcome(status=InboxStatus.PROCESSED, user=target.get("user"))


def _decide_user_call(
    facts: EventFacts, rules: Rules, lookups: Lookups, result: MatchResult, now: datetime
) -> Outcome:
    if not rules.user_tracking:
        return _dropped(DropReason.SECTION_DISABLED)
    if not facts.user_key and not facts.email_key:
        return _dropped(DropReason.NO_IDENTITY)
    ref = lookups.user_find(facts.user_key, facts.email_key)
    if ref is None:
        company_id = lookups.company_find(facts)
        if company_id is None:
            until = wait_until(facts.received_at, hours=rules.unassigned_wait_hours)
            if wait_expired(until, now=now):
                return _dropped(DropReason.UNASSIGNED_USER)
            return Outcome(status=InboxStatus.WAITING, wait_until=until)
        if not rules.create_endusers:
            return _dropped(DropReason.UNKNOWN_ENDUSER)
        profile = profile_of(facts.payload)
        ref = UserRef(
            pk=None,
            company_id=company_id,
            external_id=facts.user_key,
            email=facts.email_key,
            is_new=True,
            **profile.as_fields(),
        )
        lookups.user_register(ref)
        result.new_users.append(ref)
    elif facts.type == "identify":
        _fill_empty(ref, facts, lookups)
    result.touched_users.append(ref)
    outcome = Outcome(status=InboxStatus.PROCESSED, user=ref)
    if facts.type != "identify":
        properties = facts.payload.get("properties")
        properties = properties if isinstance(properties, dict) else {}
        planhat = planhat_of(facts.payload)
        if "count" in planhat:  # a Planhat activity's count, checked at the door
            count, note = count_of(planhat)
        elif facts.type == "track":
            count, note = count_of(properties)
        else:
            count, note = 1, None
        if note:
            outcome.notes.append(note)
        result.activities.append(
            ActivitySpec(
                user=ref,
                asset_id=lookups.assets.get(facts.asset_key) if facts.asset_key else None,
                project_id=lookups.projects.get(facts.project_key) if facts.project_key else None,
                action=action_of(facts.payload),
                count=count,
                occurred_at=facts.occurred_at,
                received_at=facts.received_at,
                properties=properties,
                message_id=facts.message_id,
                weight=weight_of(facts.payload),
            )
        )
    return outcome


def events_match(
    *, events: list[EventFacts], rules: Rules, lookups: Lookups, now: datetime
) -> MatchResult:
    """Decide every event of a claim, in timestamp order; costs no query.

    An error while deciding one event fails that event only (status failed, with the error),
    never the claim: the other events of the request are still turned into data.
    """
    result = MatchResult()
    for facts in sorted(events, key=lambda e: (e.occurred_at, e.received_at, e.row_id)):
        try:
            if facts.type in USER_CALLS:
                outcome = _decide_user_call(facts, rules, lookups, result, now)
            elif facts.type == "group":
                outcome = _decide_group(facts, rules, lookups, result)
            elif facts.type == DIMENSION:
                outcome = _decide_dimension(facts, rules, lookups, result)
            else:  # alias, and any type the door let through by mistake
                outcome = _dropped(DropReason.UNSUPPORTED_CALL)
        except Exception as exc:
            logger.exception("usage_event_mapping_failed", extra={"inbox_id": facts.row_id})
            outcome = Outcome(status=InboxStatus.FAILED, notes=[f"{type(exc).__name__}: {exc}"])
        result.outcomes[facts.row_id] = outcome
    return result
