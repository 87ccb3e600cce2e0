"""The matching rules of DESIGN.md §4.2, applied to one claim's events in memory.

Everything the rules need from the database is loaded beforehand into :class:`Lookups`
(one query per kind, see ``outputs.lookups_load``), so deciding costs no query per event.
Events are decided in timestamp order and an enduser planned for creation is registered in
the lookups at once, so an identify binds the track events that follow it in the same claim.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from usage.models import DropReason, InboxStatus

from .parse import (
    USER_CALLS,
    EventFacts,
    action_of,
    count_of,
    email_domain,
    number_of,
    profile_of,
)

logger = logging.getLogger(__name__)

PROFILE_FIELDS = ("name", "first_name", "last_name", "title")


@dataclass(frozen=True)
class Rules:
    """The integration's switches, read once per claim."""

    user_tracking: bool = True
    company_metrics: bool = True
    create_endusers: bool = True
    match_by_email_domain: bool = True
    unassigned_wait_hours: int = 24


@dataclass(eq=False, slots=True)
class UserRef:
    """An enduser as matching sees it: an existing row, or one planned for creation (pk None)."""

    pk: int | None
    company_id: int
    external_id: str | None = None
    email: str | None = None
    name: str = ""
    first_name: str = ""
    last_name: str = ""
    title: str = ""
    is_new: bool = False
    changed: set[str] = field(default_factory=set)


@dataclass
class Lookups:
    companies: dict[str, int] = field(default_factory=dict)  # external id -> pk
    domains: dict[str, int] = field(default_factory=dict)  # email domain -> company pk
    users_by_ext: dict[str, UserRef] = field(default_factory=dict)
    users_by_email: dict[str, UserRef] = field(default_factory=dict)  # lower-case email
    assets: dict[str, int] = field(default_factory=dict)
    projects: dict[str, int] = field(default_factory=dict)
    metrics: dict[str, int] = field(default_factory=dict)  # metric key -> definition pk

    def user_find(self, user_key: str | None, email: str | None) -> UserRef | None:
        # The user id wins; the email is used when there is no user id or it is not found.
        if user_key and user_key in self.users_by_ext:
            return self.users_by_ext[user_key]
        if email:
            return self.users_by_email.get(email)
        return None

    def company_find(
        self, company_key: str | None, email: str | None, by_domain: bool
    ) -> int | None:
        if company_key is not None:
            return self.companies.get(company_key)
        # Last resort, only when the event names no company id at all.
        if by_domain and email:
            return self.domains.get(email_domain(email) or "")
        return None

    def user_register(self, ref: UserRef) -> None:
        if ref.external_id:
            self.users_by_ext.setdefault(ref.external_id, ref)
        if ref.email:
            self.users_by_email.setdefault(ref.email, ref)


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


@dataclass(frozen=True, slots=True)
class MetricValueSpec:
    company_id: int
    metric_id: int
    value: float
    occurred_at: datetime
    message_id: str


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


def _decide_user_call(
    facts: EventFacts, rules: Rules, lookups: Lookups, result: MatchResult, now: datetime
) -> Outcome:
    if not rules.user_tracking:
        return _dropped(DropReason.SECTION_DISABLED)
    if not facts.user_key and not facts.email_key:
        return _dropped(DropReason.NO_IDENTITY)
    ref = lookups.user_find(facts.user_key, facts.email_key)
    if ref is None:
        company_id = lookups.company_find(
            facts.company_key, facts.email_key, rules.match_by_email_domain
        )
        if company_id is None:
            wait_until = facts.received_at + timedelta(hours=rules.unassigned_wait_hours)
            if wait_until <= now:
                return _dropped(DropReason.UNASSIGNED_USER)
            return Outcome(status=InboxStatus.WAITING, wait_until=wait_until)
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
        count, note = count_of(properties) if facts.type == "track" else (1, None)
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
            else:  # alias, and any type the door let through by mistake
                outcome = _dropped(DropReason.UNSUPPORTED_CALL)
        except Exception as exc:
            logger.exception("usage_event_mapping_failed", extra={"inbox_id": facts.row_id})
            outcome = Outcome(status=InboxStatus.FAILED, notes=[f"{type(exc).__name__}: {exc}"])
        outcome.notes[:0] = facts.notes
        result.outcomes[facts.row_id] = outcome
    return result
