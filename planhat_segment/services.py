"""Writes to the workspace's objects: create, update, delete, and bulk upsert by external id.

Single writes and bulk upserts share one validation path (:func:`_drafts_validate`): the
model's own ``full_clean`` plus the checks that need the database (the referenced company,
unique external ids, enduser emails, company email domains), done for all objects at once in
a fixed number of queries. The API, the admin and the bulk upsert therefore give the same,
specific errors, and a bulk upsert of 5,000 items costs a handful of queries.

After companies or endusers change, :data:`~planhat_segment.signals.workspace_objects_changed`
is sent once the transaction commits, so the usage app can re-match events that wait for them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from django.conf import settings
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from .models import (
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
from .signals import workspace_objects_changed

NON_FIELD = "non_field_errors"  # DRF's key for errors that belong to no single field
WRITE_CHUNK = 500  # rows per INSERT: well under SQLite's 32,766 variables per statement
LOOKUP_CHUNK = 5000  # values per IN (...) lookup, for the same reason
DOMAIN_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)+$")
CONCURRENT_WRITE = "A concurrent change took this external id, email or domain; retry the request."

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
        ObjectSpec("company", Company, ("external_id", "name", "custom")),
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
class _Draft:
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


def _spec(model: type[WorkspaceObject]) -> ObjectSpec:
    try:
        return SPECS[model]
    except KeyError:
        raise ValueError(f"{model.__name__} is not a workspace object model") from None


def _chunks(values: Sequence, size: int) -> Iterable[Sequence]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _companies_resolve(drafts: list[_Draft]) -> None:
    """Point each draft at the company named by ``company_id`` or ``company_external_id``."""
    pks = sorted({d.data["company_id"] for d in drafts if d.data.get("company_id") is not None})
    ext_ids = sorted({e for d in drafts if (e := blank_to_none(d.data.get("company_external_id")))})
    by_pk: dict[int, Company] = {}
    for chunk in _chunks(pks, LOOKUP_CHUNK):
        by_pk.update(Company.objects.in_bulk(chunk))
    by_ext: dict[str, Company] = {}
    for chunk in _chunks(ext_ids, LOOKUP_CHUNK):
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


def _domains_parse(d: _Draft) -> None:
    domains: list[str] = []
    for raw in d.data["email_domains"]:
        domain = normalize_domain(str(raw))
        if not DOMAIN_RE.match(domain):
            d.add_error("email_domains", f"'{raw}' is not a valid email domain (e.g. example.com).")
        elif domain not in domains:
            domains.append(domain)
    d.domains = domains


def _license_rules_check(d: _Draft) -> None:
    """License's CheckConstraints, in Python: checking them through the ORM costs a query each."""
    lic: License = d.instance  # type: ignore[assignment]
    ends_before_start = lic.end_date and lic.start_date and lic.end_date < lic.start_date
    if "end_date" not in d.errors and ends_before_start:
        d.add_error("end_date", "A license cannot end before it starts.")
    if "mrr" not in d.errors and lic.mrr is not None and lic.mrr < 0:
        d.add_error("mrr", "MRR cannot be negative.")


def _external_ids_check(spec: ObjectSpec, drafts: list[_Draft]) -> None:
    wanted = sorted({d.instance.external_id for d in drafts if d.instance.external_id})
    holders: dict[str, int] = {}
    for chunk in _chunks(wanted, LOOKUP_CHUNK):
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


def _emails_check(drafts: list[_Draft]) -> None:
    wanted = sorted({d.instance.email.lower() for d in drafts if d.instance.email})
    owners: dict[str, tuple[int, str | None]] = {}
    for chunk in _chunks(wanted, LOOKUP_CHUNK):
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


def _domains_check(drafts: list[_Draft]) -> None:
    wanted = sorted({dom for d in drafts for dom in (d.domains or [])})
    owners: dict[str, Company] = {}
    for chunk in _chunks(wanted, LOOKUP_CHUNK):
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


def _drafts_validate(
    *, spec: ObjectSpec, drafts: list[_Draft], check_external_ids: bool = True
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


def _normalize_for_write(instance: WorkspaceObject, now) -> None:
    """What the models' save() does, for bulk writes that skip save()."""
    instance.external_id = blank_to_none(instance.external_id)
    if isinstance(instance, EndUser):
        instance.email = blank_to_none(instance.email)
        instance.email_normalized = instance.email.lower() if instance.email else None
    instance.updated_at = now


def _domains_replace(domains_by_company: dict[int, list[str]]) -> None:
    """Give each company exactly these email domains (validated: none belongs to another)."""
    if not domains_by_company:
        return
    company_pks = sorted(domains_by_company)
    for chunk in _chunks(company_pks, LOOKUP_CHUNK):
        CompanyDomain.objects.filter(company_id__in=chunk).delete()
    CompanyDomain.objects.bulk_create(
        [
            CompanyDomain(company_id=pk, domain=domain)
            for pk, domains in domains_by_company.items()
            for domain in domains
        ],
        batch_size=WRITE_CHUNK,
    )


def workspace_objects_changed_notify(*, model: type[WorkspaceObject], pks: Iterable[int]) -> None:
    """After commit, tell listeners (usage's re-matching) which companies / endusers changed.

    Only Company and EndUser are announced; other models are ignored. ``robust=True``: a
    failing listener is logged and never turns a committed write into an error answer.
    """
    if model not in NOTIFIED_MODELS:
        return
    pk_list = sorted(set(pks))
    if not pk_list:
        return
    name = _spec(model).name
    transaction.on_commit(
        lambda: workspace_objects_changed.send(sender=model, model=name, pks=pk_list),
        robust=True,
    )


def _raise_for(draft: _Draft) -> None:
    if draft.errors:
        raise ValidationError(draft.errors)


def _save(draft: _Draft) -> None:
    try:
        with transaction.atomic():
            draft.instance.save()
            if draft.domains is not None:
                _domains_replace({draft.instance.pk: draft.domains})
    except IntegrityError as exc:  # a concurrent request won the race for a unique value
        raise ValidationError({NON_FIELD: [CONCURRENT_WRITE]}) from exc


@transaction.atomic
def workspace_object_create(
    *, model: type[WorkspaceObject], data: dict[str, Any], source: str = EndUser.Source.API
) -> WorkspaceObject:
    """Create one object from validated input.

    ``data`` holds model field values plus, for objects that belong to a company,
    ``company_id`` and/or ``company_external_id``, and for companies ``email_domains``.
    New endusers get ``source``. Raises ValidationError ({field: [messages]}); writes nothing
    then.
    """
    spec = _spec(model)
    instance = model(source=source) if model is EndUser else model()
    draft = _Draft(index=0, instance=instance, data=dict(data))
    _drafts_validate(spec=spec, drafts=[draft])
    _raise_for(draft)
    _save(draft)
    workspace_objects_changed_notify(model=model, pks=[instance.pk])
    return instance


@transaction.atomic
def workspace_object_update(*, instance: WorkspaceObject, data: dict[str, Any]) -> WorkspaceObject:
    """Change the fields given in ``data`` (same keys as create; missing keys stay as they are).

    ``email_domains``, when given, replaces the company's domains. Raises ValidationError.
    """
    spec = _spec(type(instance))
    draft = _Draft(index=0, instance=instance, data=dict(data))
    _drafts_validate(spec=spec, drafts=[draft])
    _raise_for(draft)
    _save(draft)
    workspace_objects_changed_notify(model=spec.model, pks=[instance.pk])
    return instance


@transaction.atomic
def workspace_object_delete(*, instance: WorkspaceObject) -> None:
    """Delete an object (and what cascades from it); each deletion leaves a tombstone."""
    instance.delete()


@dataclass(frozen=True)
class BulkItem:
    """One bulk upsert input item, after input parsing (which may already have rejected it)."""

    data: dict[str, Any]
    external_id: str | None  # as sent, echoed in the answer even when the item is rejected
    errors: Errors = field(default_factory=dict)


@dataclass(frozen=True)
class BulkItemResult:
    index: int
    external_id: str | None
    status: Literal["created", "updated", "error"]
    id: int | None
    errors: Errors


@dataclass(frozen=True)
class BulkUpsertResult:
    results: list[BulkItemResult]

    def count(self, status: str) -> int:
        return sum(1 for r in self.results if r.status == status)


def bulk_upsert_max_items() -> int:
    return settings.BULK_UPSERT_MAX_ITEMS


@transaction.atomic
def workspace_objects_bulk_upsert(
    *, model: type[WorkspaceObject], items: Sequence[BulkItem], source: str = EndUser.Source.API
) -> BulkUpsertResult:
    """Create or update objects by external id; every valid item is written, bad ones reported.

    Each item needs an external id; a repeated one is rejected on the later item. Fields an
    item leaves out keep their current values (or defaults, for new objects). Validation is
    the same as for single writes (see the module docstring), all at once; writing is one
    ``INSERT … ON CONFLICT (external_id) DO UPDATE`` per chunk, which also absorbs a row
    another request created in between. Results come back in input order.
    """
    spec = _spec(model)
    now = timezone.now()
    errors: dict[int, Errors] = {}
    keyed: dict[str, int] = {}  # external id -> index of its first item
    for index, item in enumerate(items):
        ext = blank_to_none(item.external_id)
        if item.errors:
            errors[index] = dict(item.errors)
        elif ext is None:
            errors[index] = {"external_id": ["An external_id is required for bulk upsert."]}
        if ext is not None:
            if ext in keyed:
                errors.setdefault(index, {}).setdefault("external_id", []).append(
                    f"external_id '{ext}' appears more than once in this request: "
                    f"first at index {keyed[ext]}."
                )
            else:
                keyed[ext] = index

    candidates = {ext: index for ext, index in keyed.items() if index not in errors}
    existing: dict[str, WorkspaceObject] = {}
    for chunk in _chunks(sorted(candidates), LOOKUP_CHUNK):
        existing.update(model.objects.in_bulk(chunk, field_name="external_id"))

    drafts: list[_Draft] = []
    for ext, index in candidates.items():
        instance = existing.get(ext)
        if instance is None:
            instance = model(source=source) if model is EndUser else model()
        drafts.append(_Draft(index=index, instance=instance, data=dict(items[index].data)))
    # external ids were looked up above: an existing one is this item's own row
    _drafts_validate(spec=spec, drafts=drafts, check_external_ids=False)

    valid = [d for d in drafts if not d.errors]
    errors.update({d.index: d.errors for d in drafts if d.errors})
    created = {d.index for d in valid if d.instance.pk is None}
    update_fields = [f for f in spec.fields if f != "external_id"] + ["updated_at"]
    if spec.has_company:
        update_fields.append("company")
    if model is EndUser:
        update_fields.append("email_normalized")

    objs = []
    for d in valid:
        _normalize_for_write(d.instance, now)
        # Existing rows are written through ON CONFLICT on external_id, not by primary key.
        d.instance.pk = None
        objs.append(d.instance)
    try:
        with transaction.atomic():
            for chunk in _chunks(objs, WRITE_CHUNK):
                model.objects.bulk_create(
                    chunk,
                    update_conflicts=True,
                    unique_fields=["external_id"],
                    update_fields=update_fields,
                )
            if any(o.pk is None for o in objs):  # a backend that returns no ids on upsert
                pks: dict[str, int] = {}
                for chunk in _chunks([o.external_id for o in objs], LOOKUP_CHUNK):
                    pks.update(
                        model.objects.filter(external_id__in=chunk).values_list("external_id", "pk")
                    )
                for o in objs:
                    o.pk = pks[o.external_id]
            if model is Company:
                _domains_replace({d.instance.pk: d.domains for d in valid if d.domains is not None})
    except IntegrityError as exc:  # a concurrent request took an email or a domain
        raise ValidationError({NON_FIELD: [CONCURRENT_WRITE]}) from exc

    workspace_objects_changed_notify(model=model, pks=[o.pk for o in objs])
    by_index = {d.index: d for d in valid}
    results = []
    for index, item in enumerate(items):
        if index in errors:
            results.append(BulkItemResult(index, item.external_id, "error", None, errors[index]))
        else:
            d = by_index[index]
            status = "created" if index in created else "updated"
            results.append(BulkItemResult(index, d.instance.external_id, status, d.instance.pk, {}))
    return BulkUpsertResult(results=results)
