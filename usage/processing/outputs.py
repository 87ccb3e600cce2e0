"""Database reads and writes of one claim: a fixed number of queries whatever its size.

Lookups are one query per kind; inserts are bulk and conflict tolerant (reprocessing a row
never duplicates its outputs, two workers never create the same enduser twice); the inbox
rows get their outcomes in one bulk update.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from uuid import UUID

from django.db import connection
from django.db.models import Q

from integrations.models import IntegrationSettings, MetricDefinition
from planhat_segment.models import Asset, Company, CompanyDomain, EndUser, Project
from usage.models import Activity, InboxEvent, InboxStatus, MetricValue

from .matching import (
    PROFILE_FIELDS,
    ActivitySpec,
    Lookups,
    MetricValueSpec,
    Outcome,
    Rules,
    UserRef,
)
from .parse import EventFacts, email_domain, facts_of

_USER_COLUMNS = ("pk", "company_id", "external_id", "email", *PROFILE_FIELDS)


def _is_postgres() -> bool:
    return connection.vendor == "postgresql"


def rules_load(integration: IntegrationSettings) -> Rules:
    return Rules(
        user_tracking=integration.user_tracking_enabled,
        company_metrics=integration.company_metrics_enabled,
        create_endusers=integration.create_endusers,
        match_by_email_domain=integration.match_by_email_domain,
        unassigned_wait_hours=integration.unassigned_wait_hours,
    )


def claimed_events_load(*, claim_id: UUID) -> list[EventFacts]:
    """The rows of a claim, read once (values, not model instances: this is the hot path)."""
    rows = InboxEvent.objects.filter(claim_id=claim_id, status=InboxStatus.PROCESSING).values_list(
        "id", "message_id", "type", "payload", "received_at", "occurred_at"
    )
    return [
        facts_of(
            row_id=row_id,
            message_id=message_id,
            type_=type_,
            payload=payload,
            received_at=received_at,
            occurred_at=occurred_at,
        )
        for row_id, message_id, type_, payload, received_at, occurred_at in rows
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
    company_keys = {e.company_key for e in events if e.company_key}
    user_keys = {e.user_key for e in events if e.user_key}
    emails = {e.email_key for e in events if e.email_key}
    asset_keys = {e.asset_key for e in events if e.asset_key}
    project_keys = {e.project_key for e in events if e.project_key}
    lookups = Lookups()
    if company_keys:
        lookups.companies = dict(
            Company.objects.filter(external_id__in=company_keys).values_list("external_id", "pk")
        )
    domains = {email_domain(e.email_key) for e in events if e.email_key and not e.company_key}
    domains.discard(None)
    if rules.match_by_email_domain and domains:
        lookups.domains = dict(
            CompanyDomain.objects.filter(domain__in=domains).values_list("domain", "company_id")
        )
    by_pk: dict[int, UserRef] = {}
    if user_keys:
        for values in EndUser.objects.filter(external_id__in=user_keys).values_list(*_USER_COLUMNS):
            by_pk[values[0]] = _user_ref(values)
    if emails:
        for values in EndUser.objects.filter(email_normalized__in=emails).values_list(
            *_USER_COLUMNS
        ):
            by_pk.setdefault(values[0], _user_ref(values))
    for ref in by_pk.values():
        lookups.user_register(ref)
    if asset_keys:
        lookups.assets = dict(
            Asset.objects.filter(external_id__in=asset_keys).values_list("external_id", "pk")
        )
    if project_keys:
        lookups.projects = dict(
            Project.objects.filter(external_id__in=project_keys).values_list("external_id", "pk")
        )
    if any(e.type == "group" for e in events):
        lookups.metrics = dict(MetricDefinition.objects.values_list("key", "pk"))
    return lookups


def endusers_create(*, users: list[UserRef], now: datetime) -> list[UserRef]:
    """Insert planned endusers, tolerating conflicts, and bind each plan to the stored row.

    ON CONFLICT DO NOTHING then a re-read by external id and email: when another worker
    created the same enduser first, we bind to its row instead of creating a second one.
    Returns the plans that could not be bound (deleted meanwhile; their events fail).
    """
    if not users:
        return []
    # A stable order keeps two workers inserting overlapping sets from deadlocking.
    users = sorted(users, key=lambda u: (u.external_id or "", u.email or ""))
    EndUser.objects.bulk_create(
        [
            EndUser(
                company_id=u.company_id,
                external_id=u.external_id,
                email=u.email,
                email_normalized=u.email,
                name=u.name,
                first_name=u.first_name,
                last_name=u.last_name,
                title=u.title,
                source=EndUser.Source.SEGMENT,
                created_at=now,
                updated_at=now,
            )
            for u in users
        ],
        ignore_conflicts=True,
    )
    ext_ids = [u.external_id for u in users if u.external_id]
    emails = [u.email for u in users if u.email]
    stored = list(
        EndUser.objects.filter(Q(external_id__in=ext_ids) | Q(email_normalized__in=emails))
        .values_list("pk", "company_id", "external_id", "email_normalized")
    )
    by_ext = {ext: (pk, company) for pk, company, ext, _ in stored if ext}
    by_email = {email: (pk, company) for pk, company, _, email in stored if email}
    unbound = []
    for user in users:
        hit = by_ext.get(user.external_id) if user.external_id else None
        hit = hit or (by_email.get(user.email) if user.email else None)
        if hit is None:
            unbound.append(user)
            continue
        user.pk, user.company_id = hit
    return unbound


def endusers_fill(*, users: list[UserRef], now: datetime) -> None:
    """Write the empty fields identify filled in (never a set one), and ``updated_at``."""
    if not users:
        return
    fields = sorted({name for u in users for name in u.changed})
    objs = []
    for user in users:
        obj = EndUser(pk=user.pk, updated_at=now)
        for name in fields:
            value = getattr(user, name)
            setattr(obj, name, value)
        if "email" in fields:
            obj.email_normalized = user.email
        objs.append(obj)
    # Only the fields some user changed; for the others their current value is re-written,
    # which is the value we read moments ago inside the same transaction.
    update_fields = [*fields, "updated_at"]
    if "email" in fields:
        update_fields.append("email_normalized")
    EndUser.objects.bulk_update(objs, update_fields)


def activities_write(*, specs: list[ActivitySpec]) -> None:
    """Insert activities; a message id already stored is skipped (unique constraint)."""
    if not specs:
        return
    Activity.objects.bulk_create(
        [
            Activity(
                enduser_id=s.user.pk,
                company_id=s.user.company_id,
                asset_id=s.asset_id,
                project_id=s.project_id,
                action=s.action,
                count=s.count,
                occurred_at=s.occurred_at,
                received_at=s.received_at,
                properties=s.properties,
                message_id=s.message_id,
            )
            for s in specs
            if s.user.pk is not None
        ],
        ignore_conflicts=True,
    )


def metric_values_write(*, specs: list[MetricValueSpec]) -> None:
    """Insert metric values; (message id, metric) already stored is skipped."""
    if not specs:
        return
    MetricValue.objects.bulk_create(
        [
            MetricValue(
                company_id=s.company_id,
                metric_id=s.metric_id,
                value=s.value,
                occurred_at=s.occurred_at,
                message_id=s.message_id,
            )
            for s in specs
        ],
        ignore_conflicts=True,
    )


def inbox_outcomes_write(
    *,
    claim_id: UUID,
    events: list[EventFacts],
    outcomes: dict[int, Outcome],
    now: datetime,
    backoff_base: int,
    backoff_max: int,
) -> None:
    """One bulk update of the claim's rows with their outcomes and identity keys.

    Only rows still held by this claim are written: a row whose lease lapsed and that another
    worker re-claimed is that worker's to finish.
    """
    if not events:
        return
    ids, statuses, reasons, details, users, emails, companies = [], [], [], [], [], [], []
    enduser_ids, waits, processed, attempts_add = [], [], [], []
    for facts in events:
        outcome = outcomes[facts.row_id]
        failed = outcome.status == InboxStatus.FAILED
        ids.append(facts.row_id)
        statuses.append(str(outcome.status))
        reasons.append(str(outcome.reason))
        details.append(outcome.detail)
        users.append(facts.user_key)
        emails.append(facts.email_key)
        companies.append(facts.company_key)
        enduser_ids.append(outcome.user.pk if outcome.user is not None else None)
        waits.append(outcome.wait_until)
        processed.append(None if failed or outcome.status == InboxStatus.WAITING else now)
        attempts_add.append(1 if failed else 0)
    if _is_postgres():
        _outcomes_write_postgres(
            claim_id,
            [ids, statuses, reasons, details, users, emails, companies, enduser_ids, waits,
             processed, attempts_add],
            now=now,
            backoff_base=backoff_base,
            backoff_max=backoff_max,
        )
        return
    objs = list(
        InboxEvent.objects.filter(claim_id=claim_id, pk__in=ids).only("pk", "attempts")
    )
    index = {row_id: i for i, row_id in enumerate(ids)}
    for obj in objs:
        i = index[obj.pk]
        obj.status, obj.reason, obj.detail = statuses[i], reasons[i], details[i]
        obj.user_key, obj.email_key, obj.company_key = users[i], emails[i], companies[i]
        obj.enduser_id, obj.wait_until, obj.processed_at = enduser_ids[i], waits[i], processed[i]
        obj.next_attempt_at = (
            now + retry_delay(obj.attempts, base=backoff_base, cap=backoff_max)
            if attempts_add[i]
            else None
        )
        obj.attempts += attempts_add[i]
        obj.claim_id = None
        obj.claimed_until = None
    InboxEvent.objects.bulk_update(
        objs,
        [
            "status", "reason", "detail", "user_key", "email_key", "company_key", "enduser_id",
            "wait_until", "processed_at", "attempts", "next_attempt_at", "claim_id",
            "claimed_until",
        ],
        batch_size=500,
    )


def retry_delay(attempts_before: int, *, base: int, cap: int) -> timedelta:
    """Exponential backoff: base, 2×base, 4×base, … capped."""
    return timedelta(seconds=min(base * 2 ** min(attempts_before, 30), cap))


def _outcomes_write_postgres(
    claim_id: UUID, columns: list[list], *, now: datetime, backoff_base: int, backoff_max: int
) -> None:
    # UPDATE … FROM unnest(arrays): one statement, linear in the batch (bulk_update's CASE
    # expressions are quadratic on PostgreSQL).
    table = InboxEvent._meta.db_table
    sql = f"""
        UPDATE {table} AS e SET
            status = v.status, reason = v.reason, detail = v.detail,
            user_key = v.user_key, email_key = v.email_key, company_key = v.company_key,
            enduser_id = v.enduser_id, wait_until = v.wait_until, processed_at = v.processed_at,
            attempts = e.attempts + v.attempts_add,
            next_attempt_at = CASE WHEN v.attempts_add > 0 THEN %s::timestamptz
                + make_interval(secs => LEAST(%s * power(2, LEAST(e.attempts, 30)), %s))
                END,
            claim_id = NULL, claimed_until = NULL
        FROM unnest(
            %s::bigint[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[],
            %s::text[], %s::bigint[], %s::timestamptz[], %s::timestamptz[], %s::int[]
        ) AS v(id, status, reason, detail, user_key, email_key, company_key, enduser_id,
               wait_until, processed_at, attempts_add)
        WHERE e.id = v.id AND e.claim_id = %s
    """  # noqa: S608 — the table name is ours, values are parameters
    with connection.cursor() as cursor:
        cursor.execute(sql, [now, backoff_base, backoff_max, *columns, claim_id])


def waiting_requeue(*, user_keys: Iterable[str], emails: Iterable[str]) -> int:
    """Put waiting rows of these users back to pending (their user is now known)."""
    user_keys = sorted(set(user_keys))
    emails = sorted(set(emails))
    if not user_keys and not emails:
        return 0
    return InboxEvent.objects.filter(status=InboxStatus.WAITING).filter(
        Q(user_key__in=user_keys) | Q(email_key__in=emails)
    ).update(status=InboxStatus.PENDING, wait_until=None, next_attempt_at=None)
