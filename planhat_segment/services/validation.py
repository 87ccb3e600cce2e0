"""Validation shared by single writes and bulk upserts of the workspace's objects.

The model's own ``full_clean`` plus the checks that need the database (the referenced
company, unique external ids, enduser emails, company email domains), done for all objects
at once in a fixed number of queries, so the API, the admin and the bulk upsert give the
same, specific errors.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError

from ..models import (
    Asset,
    Company,
    CompanyDomain,
    EndUser,
    License,
    Project,
    WorkspaceObject,
    blank_to_none,
    normalize_domain,
)

NON_FIELD = "non_field_errors"  # DRF's key for errors that belong to no single field
WRITE_CHUNK = 500  # rows per INSERT: well under SQLite's 32,766 variables per statement
LOOKUP_CHUNK = 5000  # values per IN (...) lookup, for the same reason
DOMAIN_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)+$")
CONCURRENT_WRITE = "A concurrent change took this external id, email or domain; retry the request."


class ConcurrentWriteError(Exception):
    """A unique value passed validation but another transaction took it first: retry."""

    def __init__(self, message: str = CONCURRENT_WRITE) -> None:
        super().__init__(message)


Errors = dict[str, list[str]]


@dataclass(frozen=True)
class ObjectSpec:
    """What the services may write on one workspace model."""

    name: str  # "company", "enduser", ... as in SYNCABLE_MODELS and the change signal
    model: type[WorkspaceObject]
    fields: tuple[str, ...]  # plain writable fields; the company reference is handled apart

    @property
    def has_company(self) -> bool:
        return self.model is not Company


SPECS: dict[type[WorkspaceObject], ObjectSpec] = {
    spec.model: spec
    for spec in (
        ObjectSpec("company", Company, ("external_id", "name", "custom", "owner_email")),
        ObjectSpec(
            "enduser",
            EndUser,
            ("external_id", "email", "first_name", "last_name", "name", "title", "custom"),
        ),
        ObjectSpec("asset", Asset, ("external_id", "name", "custom")),
        ObjectSpec("project", Project, ("external_id", "name", "custom")),
        ObjectSpec(
            "license",
            License,
            (
                "external_id",
                "product",
                "mrr",
                "currency",
                "start_date",
                "end_date",
                "status",
                "custom",
            ),
        ),
    )
}
# Other apps re-match waiting events when these change (DESIGN.md §4.2).
NOTIFIED_MODELS = (Company, EndUser)


@dataclass
class Draft:
    """One object being written: its instance, the input applied to it and what is wrong."""

    index: int
    instance: WorkspaceObject
    data: dict[str, Any]
    errors: Errors = field(default_factory=dict)
    domains: list[str] | None = None  # companies: the new email domains, when given

    def add_error(self, key: str, message: str) -> None:
        self.errors.setdefault(key, []).append(message)


def error_dict(exc: ValidationError) -> Errors:
    """A Django ValidationError as {field: [messages]}, with DRF's key for non-field errors."""
    if hasattr(exc, "error_dict"):
        return {
            (NON_FIELD if key == NON_FIELD_ERRORS else key): list(messages)
            for key, messages in exc.message_dict.items()
        }
    return {NON_FIELD: list(exc.messages)}


def spec_for(model: type[WorkspaceObject]) -> ObjectSpec:
    try:
        return SPECS[model]
    except KeyError:
        raise ValueError(f"{model.__name__} is not a workspace object model") from None


def chunks(values: Sequence, size: int) -> Iterable[Sequence]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _companies_resolve(drafts: list[Draft]) -> None:
    """Point each draft at the company named by ``company_id`` or ``company_external_id``."""
    pks = sorted({d.data["company_id"] for d in drafts if d.data.get("company_id") is not None})
    ext_ids = sorted({e for d in drafts if (e := blank_to_none(d.data.get("company_external_id")))})
    by_pk: dict[int, Company] = {}
    for chunk in chunks(pks, LOOKUP_CHUNK):
        by_pk.update(Company.objects.in_bulk(chunk))
    by_ext: dict[str, Company] = {}
    for chunk in chunks(ext_ids, LOOKUP_CHUNK):
        by_ext.update(Company.objects.in_bulk(chunk, field_name="external_id"))

    for d in drafts:
        pk = d.data.get("company_id")
        ext = blank_to_none(d.data.get("company_external_id"))
        named: list[Company] = []
        if pk is not None:
            if pk in by_pk:
                named.append(by_pk[pk])
            else:
                d.add_error("company", f"Company {pk} does not exist.")
        if ext is not None:
            if ext in by_ext:
                named.append(by_ext[ext])
            else:
                d.add_error("company_external_id", f"No company has external_id '{ext}'.")
        if len(named) == 2 and named[0].pk != named[1].pk:
            d.add_error(
                NON_FIELD,
                f"company {pk} and company_external_id '{ext}' name different companies.",
            )
        elif named:
            d.instance.company = named[0]
        elif (
            d.instance.company_id is None
            and "company" not in d.errors
            and ("company_external_id" not in d.errors)
        ):
            d.add_error(
                "company", "A company is required: give company (its id) or company_external_id."
            )


def _domains_parse(d: Draft) -> None:
    domains: list[str] = []
    for raw in d.data["email_domains"]:
        domain = normalize_domain(str(raw))
        if not DOMAIN_RE.match(domain):
            d.add_error("email_domains", f"'{raw}' is not a valid email domain (e.g. example.com).")
        elif domain not in domains:
            domains.append(domain)
    d.domains = domains


def _license_rules_check(d: Draft) -> None:
    """License's CheckConstraints, in Python: checking them through the ORM costs a query each."""
    lic: License = d.instance  # type: ignore[assignment]
    ends_before_start = lic.end_date and lic.start_date and lic.end_date < lic.start_date
    if "end_date" not in d.errors and ends_before_start:
        d.add_error("end_date", "A license cannot end before it starts.")
    if "mrr" not in d.errors and lic.mrr is not None and lic.mrr < 0:
        d.add_error("mrr", "MRR cannot be negative.")


def _external_ids_check(spec: ObjectSpec, drafts: list[Draft]) -> None:
    wanted = sorted({d.instance.external_id for d in drafts if d.instance.external_id})
    holders: dict[str, int] = {}
    for chunk in chunks(wanted, LOOKUP_CHUNK):
        holders.update(
            spec.model.objects.filter(external_id__in=chunk).values_list("external_id", "pk")
        )
    for d in drafts:
        holder = holders.get(d.instance.external_id or "")
        if holder is not None and holder != d.instance.pk:
            d.add_error(
                "external_id",
                f"external_id '{d.instance.external_id}' is already used by {spec.name} {holder}.",
            )


def _email_taken(email: str, owner_pk: int, owner_external_id: str | None) -> str:
    owner = f"enduser {owner_pk}" + (
        f" (external_id '{owner_external_id}')" if owner_external_id else ""
    )
    return f"email '{email}' is already used by {owner}."


def _domain_taken(domain: str, owner: Company) -> str:
    return f"The domain '{domain}' already belongs to company '{owner.name}' (id {owner.pk})."


def enduser_email_check(*, email: str | None, enduser_pk: int | None) -> None:
    """Raise ValidationError when another enduser has this email (case-insensitively).

    For forms that do not go through the services (the admin): the unique column is the
    lower-case copy, which a ModelForm's own unique check does not see.
    """
    email = blank_to_none(email)
    if email is None:
        return
    owner = (
        EndUser.objects.filter(email_normalized=email.lower())
        .exclude(pk=enduser_pk)
        .values_list("pk", "external_id")
        .first()
    )
    if owner is not None:
        raise ValidationError(_email_taken(email, *owner))


def company_domain_check(*, domain: str, company_pk: int | None) -> str:
    """Normalise an email domain and check it is valid and not another company's.

    Returns the normalised domain; raises ValidationError naming the owning company.
    """
    normalized = normalize_domain(domain)
    if not DOMAIN_RE.match(normalized):
        raise ValidationError(f"'{domain}' is not a valid email domain (e.g. example.com).")
    owner = (
        CompanyDomain.objects.filter(domain=normalized)
        .exclude(company_id=company_pk)
        .select_related("company")
        .first()
    )
    if owner is not None:
        raise ValidationError(_domain_taken(normalized, owner.company))
    return normalized


def _emails_check(drafts: list[Draft]) -> None:
    wanted = sorted({d.instance.email.lower() for d in drafts if d.instance.email})
    owners: dict[str, tuple[int, str | None]] = {}
    for chunk in chunks(wanted, LOOKUP_CHUNK):
        owners.update(
            (email, (pk, ext))
            for email, pk, ext in EndUser.objects.filter(email_normalized__in=chunk).values_list(
                "email_normalized", "pk", "external_id"
            )
        )
    first_index: dict[str, int] = {}
    for d in drafts:
        if not d.instance.email:
            continue
        email = d.instance.email.lower()
        owner = owners.get(email)
        if owner is not None and owner[0] != d.instance.pk:
            d.add_error("email", _email_taken(d.instance.email, *owner))
        elif email in first_index:
            d.add_error(
                "email",
                f"email '{d.instance.email}' is also given to the item at index "
                f"{first_index[email]}.",
            )
        else:
            first_index[email] = d.index


def _domains_check(drafts: list[Draft]) -> None:
    wanted = sorted({dom for d in drafts for dom in (d.domains or [])})
    owners: dict[str, Company] = {}
    for chunk in chunks(wanted, LOOKUP_CHUNK):
        owners.update(
            (cd.domain, cd.company)
            for cd in CompanyDomain.objects.filter(domain__in=chunk).select_related("company")
        )
    first_index: dict[str, int] = {}
    for d in drafts:
        for domain in d.domains or []:
            owner = owners.get(domain)
            if owner is not None and owner.pk != d.instance.pk:
                d.add_error("email_domains", _domain_taken(domain, owner))
            elif domain in first_index:
                d.add_error(
                    "email_domains",
                    f"The domain '{domain}' is also given to the item at index "
                    f"{first_index[domain]}.",
                )
            else:
                first_index[domain] = d.index


def drafts_validate(
    *, spec: ObjectSpec, drafts: list[Draft], check_external_ids: bool = True
) -> None:
    """Apply each draft's data to its instance and record every problem on the draft.

    Queries do not depend on the number of drafts: one per lookup (company by id, company by
    external id, external ids, emails, domains), chunked only past LOOKUP_CHUNK values.
    """
    if spec.has_company:
        _companies_resolve(drafts)
    for d in drafts:
        for name in spec.fields:
            if name in d.data:
                setattr(d.instance, name, d.data[name])
        if spec.model is Company and d.data.get("email_domains") is not None:
            _domains_parse(d)
        try:
            # The company was resolved above (ForeignKey.validate would query per object);
            # uniqueness is checked below in bulk; check constraints are re-stated in Python
            # (the ORM evaluates each with a query). clean() still runs in full.
            d.instance.full_clean(
                exclude=["company"] if spec.has_company else None,
                validate_unique=False,
                validate_constraints=False,
            )
        except ValidationError as exc:
            for key, messages in error_dict(exc).items():
                for message in messages:
                    d.add_error(key, message)
        if spec.model is License:
            _license_rules_check(d)
    if check_external_ids:
        _external_ids_check(spec, drafts)
    if spec.model is EndUser:
        _emails_check(drafts)
    if spec.model is Company:
        _domains_check(drafts)
