"""Single-object writes: create, update, delete; and the change announcement."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from ..models import CompanyDomain, EndUser, WorkspaceObject
from ..signals import workspace_objects_changed
from .validation import (
    LOOKUP_CHUNK,
    NOTIFIED_MODELS,
    WRITE_CHUNK,
    ConcurrentWriteError,
    Draft,
    chunks,
    drafts_validate,
    spec_for,
)


def domains_replace(domains_by_company: dict[int, list[str]]) -> None:
    """Give each company exactly these email domains (validated: none belongs to another)."""
    if not domains_by_company:
        return
    company_pks = sorted(domains_by_company)
    for chunk in chunks(company_pks, LOOKUP_CHUNK):
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
    name = spec_for(model).name
    transaction.on_commit(
        lambda: workspace_objects_changed.send(sender=model, model=name, pks=pk_list),
        robust=True,
    )


def _raise_for(draft: Draft) -> None:
    if draft.errors:
        raise ValidationError(draft.errors)


def _save(draft: Draft) -> None:
    try:
        with transaction.atomic():
            draft.instance.save()
            if draft.domains is not None:
                domains_replace({draft.instance.pk: draft.domains})
    except IntegrityError as exc:  # a concurrent request won the race for a unique value
        raise ConcurrentWriteError() from exc


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
    spec = spec_for(model)
    instance = model(source=source) if model is EndUser else model()
    draft = Draft(index=0, instance=instance, data=dict(data))
    drafts_validate(spec=spec, drafts=[draft])
    _raise_for(draft)
    _save(draft)
    workspace_objects_changed_notify(model=model, pks=[instance.pk])
    return instance


@transaction.atomic
def workspace_object_update(*, instance: WorkspaceObject, data: dict[str, Any]) -> WorkspaceObject:
    """Change the fields given in ``data`` (same keys as create; missing keys stay as they are).

    ``email_domains``, when given, replaces the company's domains. Raises ValidationError.
    """
    spec = spec_for(type(instance))
    draft = Draft(index=0, instance=instance, data=dict(data))
    drafts_validate(spec=spec, drafts=[draft])
    _raise_for(draft)
    _save(draft)
    workspace_objects_changed_notify(model=spec.model, pks=[instance.pk])
    return instance


@transaction.atomic
def workspace_object_delete(*, instance: WorkspaceObject) -> None:
    """Delete an object (and what cascades from it); each deletion leaves a tombstone."""
    instance.delete()
