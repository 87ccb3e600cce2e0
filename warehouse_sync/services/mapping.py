"""Mapping of workspace objects to Segment messages (DESIGN.md §4.3).

Works on chunks of ``.values()`` rows, with every derived trait (domains, MRR / ARR, counts,
company external ids) fetched for the whole chunk in one query each: no query per object.
Each message is serialised once with orjson; its ``messageId`` is a hash of (model, pk,
payload) spliced into those bytes, so an unchanged object gets the same id at every run.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal

import orjson
from django.db.models import Count, Sum

from planhat_segment.models import Company, CompanyDomain, EndUser, License

# Fields read per model (values() rows: no model instances, cheap to build).
OBJECT_FIELDS: dict[str, tuple[str, ...]] = {
    "company": ("id", "external_id", "name", "custom", "created_at", "updated_at"),
    "enduser": (
        "id",
        "external_id",
        "email",
        "name",
        "first_name",
        "last_name",
        "title",
        "custom",
        "created_at",
        "updated_at",
        "company_id",
        "company__external_id",
    ),
    "license": (
        "id",
        "external_id",
        "product",
        "mrr",
        "currency",
        "start_date",
        "end_date",
        "status",
        "custom",
        "created_at",
        "updated_at",
        "company_id",
        "company__external_id",
    ),
    "asset": (
        "id",
        "external_id",
        "name",
        "custom",
        "created_at",
        "updated_at",
        "company_id",
        "company__external_id",
    ),
    "project": (
        "id",
        "external_id",
        "name",
        "custom",
        "created_at",
        "updated_at",
        "company_id",
        "company__external_id",
    ),
}
TOMBSTONE_FIELDS = (
    "id",
    "model",
    "object_pk",
    "external_id",
    "company_pk",
    "company_external_id",
    "deleted_at",
)

# "<Model> Synced" / "<Model> Deleted" event names.
EVENT_NOUNS = {
    "company": "Company",
    "enduser": "EndUser",
    "license": "License",
    "asset": "Asset",
    "project": "Project",
}


@dataclass(frozen=True, slots=True)
class Mapped:
    """One serialised message and the object it stands for."""

    model: str
    pk: int  # the object's pk, or the tombstone's pk for deletions
    message: bytes


def anonymous_id(model: str, pk: int) -> str:
    return f"planhat:{model}:{pk}"


def company_group_id(external_id: str | None, pk: int) -> str:
    return external_id or f"planhat:company:{pk}"


def _money(value: Decimal | float | int | None) -> float:
    return float(round(Decimal(value or 0), 2))


def _serialise(model: str, pk: int, payload: dict) -> bytes:
    body = orjson.dumps(payload, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
    digest = hashlib.blake2b(b"%s:%d:" % (model.encode(), pk) + body, digest_size=20)
    # Splice the id into the serialised object instead of serialising twice.
    return body[:-1] + b',"messageId":"planhat-' + digest.hexdigest().encode() + b'"}'


def message_id_of(message: bytes) -> str:
    return orjson.loads(message)["messageId"]


# --- companies -------------------------------------------------------------------------


def _company_aggregates(pks: list[int]) -> tuple[dict, dict, dict, dict]:
    domains: dict[int, list[str]] = defaultdict(list)
    for company_id, domain in (
        CompanyDomain.objects.filter(company_id__in=pks)
        .order_by("company_id", "domain")
        .values_list("company_id", "domain")
    ):
        domains[company_id].append(domain)
    mrr: dict[int, dict[str, Decimal]] = defaultdict(dict)
    license_count: dict[int, int] = defaultdict(int)
    # order_by() clears License's default ordering, which would otherwise join GROUP BY.
    for row in (
        License.objects.filter(company_id__in=pks)
        .order_by()
        .values("company_id", "currency", "status")
        .annotate(n=Count("id"), total=Sum("mrr"))
    ):
        license_count[row["company_id"]] += row["n"]
        if row["status"] == License.Status.ACTIVE:
            per_currency = mrr[row["company_id"]]
            per_currency[row["currency"]] = per_currency.get(row["currency"], 0) + (
                row["total"] or 0
            )
    enduser_count = dict(
        EndUser.objects.filter(company_id__in=pks, is_test=False)
        .order_by()
        .values("company_id")
        .annotate(n=Count("id"))
        .values_list("company_id", "n")
    )
    return domains, mrr, license_count, enduser_count


def companies_map(rows: list[dict]) -> Iterator[Mapped]:
    """Company → group. MRR / ARR: active licenses summed per currency code."""
    domains, mrr, license_count, enduser_count = _company_aggregates([r["id"] for r in rows])
    for row in rows:
        pk = row["id"]
        company_mrr = mrr.get(pk, {})
        payload = {
            "type": "group",
            "groupId": company_group_id(row["external_id"], pk),
            "anonymousId": anonymous_id("company", pk),
            "timestamp": row["updated_at"],
            "traits": {
                "name": row["name"],
                "external_id": row["external_id"],
                "domains": domains.get(pk, []),
                "mrr": {cur: _money(v) for cur, v in sorted(company_mrr.items())},
                "arr": {cur: _money(Decimal(v) * 12) for cur, v in sorted(company_mrr.items())},
                "license_count": license_count.get(pk, 0),
                "enduser_count": enduser_count.get(pk, 0),
                "created_at": row["created_at"],
                "custom": row["custom"] or {},
            },
        }
        yield Mapped("company", pk, _serialise("company", pk, payload))


# --- endusers, licenses, assets, projects ---------------------------------------------


def endusers_map(rows: list[dict]) -> Iterator[Mapped]:
    """EndUser → identify (userId = external id when set)."""
    for row in rows:
        pk = row["id"]
        company_external_id = row["company__external_id"]
        payload = {
            "type": "identify",
            "anonymousId": anonymous_id("enduser", pk),
            "timestamp": row["updated_at"],
            "context": {"groupId": company_group_id(company_external_id, row["company_id"])},
            "traits": {
                "email": row["email"],
                "name": row["name"],
                "first_name": row["first_name"],
                "last_name": row["last_name"],
                "title": row["title"],
                "company_external_id": company_external_id,
                "created_at": row["created_at"],
                "custom": row["custom"] or {},
            },
        }
        if row["external_id"]:
            payload["userId"] = row["external_id"]
        yield Mapped("enduser", pk, _serialise("enduser", pk, payload))


def _track(model: str, row: dict, properties: dict) -> Mapped:
    pk = row["id"]
    payload = {
        "type": "track",
        "event": f"{EVENT_NOUNS[model]} Synced",
        "anonymousId": anonymous_id(model, pk),
        "timestamp": row["updated_at"],
        "context": {"groupId": company_group_id(row["company__external_id"], row["company_id"])},
        "properties": properties,
    }
    return Mapped(model, pk, _serialise(model, pk, payload))


def licenses_map(rows: list[dict]) -> Iterator[Mapped]:
    """License → track "License Synced" with revenue properties."""
    for row in rows:
        yield _track(
            "license",
            row,
            {
                "external_id": row["external_id"],
                "product": row["product"],
                "mrr": _money(row["mrr"]),
                "arr": _money(Decimal(row["mrr"] or 0) * 12),
                "currency": row["currency"],
                "start_date": row["start_date"],
                "end_date": row["end_date"],
                "status": row["status"],
                "company_external_id": row["company__external_id"],
                "created_at": row["created_at"],
                "custom": row["custom"] or {},
            },
        )


def _named_map(model: str, rows: list[dict]) -> Iterator[Mapped]:
    for row in rows:
        yield _track(
            model,
            row,
            {
                "external_id": row["external_id"],
                "name": row["name"],
                "company_external_id": row["company__external_id"],
                "created_at": row["created_at"],
                "custom": row["custom"] or {},
            },
        )


def assets_map(rows: list[dict]) -> Iterator[Mapped]:
    """Asset → track "Asset Synced"."""
    return _named_map("asset", rows)


def projects_map(rows: list[dict]) -> Iterator[Mapped]:
    """Project → track "Project Synced"."""
    return _named_map("project", rows)


MAPPERS = {
    "company": companies_map,
    "enduser": endusers_map,
    "license": licenses_map,
    "asset": assets_map,
    "project": projects_map,
}


# --- deletions --------------------------------------------------------------------------


def tombstones_map(rows: list[dict]) -> Iterator[Mapped]:
    """A tombstone → one track "<Model> Deleted" (Mapped.pk is the tombstone's pk)."""
    # The tombstone has the company's external id only when the deleting code had loaded
    # the company: fill the rest in one query (the company may be gone too: fall back).
    missing = {r["company_pk"] for r in rows if r["company_pk"] and not r["company_external_id"]}
    known: dict[int, str | None] = {}
    if missing:
        known = dict(Company.objects.filter(pk__in=missing).values_list("pk", "external_id"))
    for row in rows:
        model = row["model"]
        pk = row["object_pk"]
        if model == "company":
            company_pk, company_external_id = pk, row["external_id"]
        else:
            company_pk = row["company_pk"]
            company_external_id = row["company_external_id"] or known.get(company_pk)
        payload = {
            "type": "track",
            "event": f"{EVENT_NOUNS.get(model, model.title())} Deleted",
            "anonymousId": anonymous_id(model, pk),
            "timestamp": row["deleted_at"],
            "properties": {
                "model": model,
                "object_id": pk,
                "external_id": row["external_id"],
                "company_external_id": company_external_id,
                "deleted_at": row["deleted_at"],
            },
        }
        if company_pk:
            payload["context"] = {"groupId": company_group_id(company_external_id, company_pk)}
        if model == "enduser" and row["external_id"]:
            payload["userId"] = row["external_id"]
        yield Mapped(model, row["id"], _serialise(model, pk, payload))


def chunk_map(model: str, rows: Iterable[dict]) -> Iterator[Mapped]:
    return MAPPERS[model](list(rows))
