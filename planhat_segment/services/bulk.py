"""Bulk upsert by external id: every valid item is written, every bad one reported."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from ..models import Company, EndUser, WorkspaceObject, blank_to_none
from .objects import domains_replace, workspace_objects_changed_notify
from .validation import (
    LOOKUP_CHUNK,
    WRITE_CHUNK,
    ConcurrentWriteError,
    Draft,
    Errors,
    chunks,
    drafts_validate,
    spec_for,
)


def _normalize_for_write(instance: WorkspaceObject, now) -> None:
    """What the models' save() does, for bulk writes that skip save()."""
    instance.external_id = blank_to_none(instance.external_id)
    if isinstance(instance, EndUser):
        instance.email = blank_to_none(instance.email)
        instance.email_normalized = instance.email.lower() if instance.email else None
    instance.updated_at = now


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
    spec = spec_for(model)
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
    for chunk in chunks(sorted(candidates), LOOKUP_CHUNK):
        existing.update(model.objects.in_bulk(chunk, field_name="external_id"))

    drafts: list[Draft] = []
    for ext, index in candidates.items():
        instance = existing.get(ext)
        if instance is None:
            instance = model(source=source) if model is EndUser else model()
        drafts.append(Draft(index=index, instance=instance, data=dict(items[index].data)))
    # external ids were looked up above: an existing one is this item's own row
    drafts_validate(spec=spec, drafts=drafts, check_external_ids=False)

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
            for chunk in chunks(objs, WRITE_CHUNK):
                model.objects.bulk_create(
                    chunk,
                    update_conflicts=True,
                    unique_fields=["external_id"],
                    update_fields=update_fields,
                )
            if any(o.pk is None for o in objs):  # a backend that returns no ids on upsert
                pks: dict[str, int] = {}
                for chunk in chunks([o.external_id for o in objs], LOOKUP_CHUNK):
                    pks.update(
                        model.objects.filter(external_id__in=chunk).values_list("external_id", "pk")
                    )
                for o in objs:
                    o.pk = pks[o.external_id]
            if model is Company:
                domains_replace({d.instance.pk: d.domains for d in valid if d.domains is not None})
    except IntegrityError as exc:  # a concurrent request took an email or a domain
        raise ConcurrentWriteError() from exc

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
