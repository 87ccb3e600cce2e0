"""Load: everything deciding a claim needs, read from the database up front.

The claim's rows become :class:`EventFacts`; the integration's switches become
:class:`Rules`; the workspace objects the events name become :class:`Lookups`, one query
per kind whatever the claim's size (skipped when there is nothing to ask). Deciding
(``matching.py``) then costs no query per event.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from integrations.models import IntegrationSettings, MetricDefinition, MetricSource
from planhat_segment.models import Asset, Company, CompanyDomain, EndUser, Project
from usage.bulk import rows_where_in

from .parse import DIMENSION, EventFacts, email_domain, facts_of

PROFILE_FIELDS = ("name", "first_name", "last_name", "title")
_USER_COLUMNS = ("pk", "company_id", "external_id", "email", *PROFILE_FIELDS)


@dataclass(frozen=True)
class Rules:
    """The integration's switches, read once per claim."""

    user_tracking: bool = True
    company_metrics: bool = True
    create_endusers: bool = True
    match_by_email_domain: bool = True
    unassigned_wait_hours: int = 24


def rules_load(integration: IntegrationSettings) -> Rules:
    return Rules(
        user_tracking=integration.user_tracking_enabled,
        company_metrics=integration.company_metrics_enabled,
        create_endusers=integration.create_endusers,
        match_by_email_domain=integration.match_by_email_domain,
        unassigned_wait_hours=integration.unassigned_wait_hours,
    )


def domain_key(facts: EventFacts, rules: Rules) -> str | None:
    """The email domain to find the event's company by, when that rule applies.

    A last resort: only when the event names no company id at all, and only while the
    integration's "match companies by email domain" is on.
    """
    if facts.company_key is not None or not rules.match_by_email_domain:
        return None
    return email_domain(facts.email_key)


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
    rules: Rules = field(default_factory=Rules)
    companies: dict[str, int] = field(default_factory=dict)  # external id -> pk
    domains: dict[str, int] = field(default_factory=dict)  # email domain -> company pk
    users_by_ext: dict[str, UserRef] = field(default_factory=dict)
    users_by_email: dict[str, UserRef] = field(default_factory=dict)  # lower-case email
    assets: dict[str, int] = field(default_factory=dict)
    projects: dict[str, int] = field(default_factory=dict)
    # Group traits count only for metrics an admin defined (section 2's rule) ...
    metrics: dict[str, int] = field(default_factory=dict)  # metric key -> definition pk
    # ... while dimension data uses any metric, and creates those not defined yet.
    metrics_any: dict[str, int] = field(default_factory=dict)
    metrics_archived: set[str] = field(default_factory=set)

    def user_find(self, user_key: str | None, email: str | None) -> UserRef | None:
        # The user id wins; the email is used when there is no user id or it is not found.
        if user_key and user_key in self.users_by_ext:
            return self.users_by_ext[user_key]
        if email:
            return self.users_by_email.get(email)
        return None

    def company_find(self, facts: EventFacts) -> int | None:
        if facts.company_key is not None:
            return self.companies.get(facts.company_key)
        domain = domain_key(facts, self.rules)
        return self.domains.get(domain) if domain else None

    def user_register(self, ref: UserRef) -> None:
        if ref.external_id:
            self.users_by_ext.setdefault(ref.external_id, ref)
        if ref.email:
            self.users_by_email.setdefault(ref.email, ref)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _when(value: datetime | int | None) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return _EPOCH + timedelta(microseconds=value)


def events_of(rows: Iterable[tuple]) -> list[EventFacts]:
    """Facts of claimed rows (``claim.ROW_FIELDS``): the payload as JSON text or decoded,
    times as microseconds since the epoch or datetimes (whichever the claim gives)."""
    return [
        facts_of(
            row_id=row_id,
            message_id=message_id,
            type_=type_,
            # ``json``, as the ORM's JSONField decodes: orjson would turn integers past 64
            # bits into floats (and is no faster here once that is guarded against).
            payload=json.loads(payload) if isinstance(payload, str | bytes) else payload,
            received_at=_when(received_at),
            occurred_at=_when(occurred_at),
            attempts=attempts,
        )
        for row_id, message_id, type_, payload, received_at, occurred_at, attempts in rows
    ]


def _user_ref(values: tuple) -> UserRef:
    pk, company_id, external_id, email, name, first_name, last_name, title = values
    return UserRef(
        pk=pk,
        company_id=company_id,
        external_id=external_id,
        email=email.lower() if email else None,
        name=name,
        first_name=first_name,
        last_name=last_name,
        title=title,
    )


def lookups_load(*, events: list[EventFacts], rules: Rules) -> Lookups:
    """Everything matching needs, one query per kind (skipped when there is nothing to ask)."""
    lookups = Lookups(rules=rules)
    company_keys = {e.company_key for e in events if e.company_key}
    if company_keys:
        lookups.companies = dict(
            rows_where_in(Company, ("external_id", "pk"), external_id=company_keys)
        )
    domains = {d for e in events if (d := domain_key(e, rules))}
    if domains:
        lookups.domains = dict(
            rows_where_in(CompanyDomain, ("domain", "company_id"), domain=domains)
        )
    # One query for both: external ids and normalised emails are each unique, so every key
    # maps to one row whichever way the row was found.
    for values in rows_where_in(
        EndUser,
        _USER_COLUMNS,
        external_id={e.user_key for e in events if e.user_key},
        email_normalized={e.email_key for e in events if e.email_key},
    ):
        lookups.user_register(_user_ref(values))
    asset_keys = {e.asset_key for e in events if e.asset_key}
    if asset_keys:
        lookups.assets = dict(rows_where_in(Asset, ("external_id", "pk"), external_id=asset_keys))
    project_keys = {e.project_key for e in events if e.project_key}
    if project_keys:
        lookups.projects = dict(
            rows_where_in(Project, ("external_id", "pk"), external_id=project_keys)
        )
    if any(e.type in ("group", DIMENSION) for e in events):
        rows = MetricDefinition.objects.values_list("key", "pk", "source", "archived_at")
        for key, pk, source, archived_at in rows:
            lookups.metrics_any[key] = pk
            if archived_at is not None:  # removed in the admin: history kept, no new values
                lookups.metrics_archived.add(key)
            elif source == MetricSource.SEGMENT:
                lookups.metrics[key] = pk
    return lookups
