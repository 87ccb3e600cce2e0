"""Tombstones: what is left of a deleted workspace object, for the push's "<Model> Deleted".

Why a ``post_delete`` receiver: it is the one hook that also sees cascaded deletions (a
company's endusers, licenses, …) and admin bulk deletes. Why one receiver *per syncable
model* (never a global one): Django's deletion collector fast-deletes a model (one DELETE,
no rows loaded) only when no delete signal has a listener for it, so a global receiver would
make every delete in the project load its rows first (the inbox purge, metric values,
activities).

Why collected, then written at once: ``WorkspaceObject.delete`` and the workspace querysets'
``delete`` (what the API, the admin, its bulk action and related managers call) open
:func:`tombstones_collected` around Django's delete, inside its transaction; the receiver
only notes each deleted object, and the notes become one ``bulk_create`` (plus one query for
the companies they name) before the transaction commits. A delete that bypasses those entry
points still leaves its tombstones, written as they come.

Test data (``is_test`` objects, and everything of a test company) leaves no tombstone: it
was never pushed, so Segment must not hear of its deletion either.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from django.db.models.signals import post_delete

from ..models import SYNCABLE_MODELS, Company, Tombstone, WorkspaceObject

_MODEL_NAMES = {cls: name for name, cls in SYNCABLE_MODELS.items()}


@dataclass(frozen=True, slots=True)
class DeletionNote:
    """One deleted object, as the receiver saw it (no query)."""

    model: str
    pk: int
    external_id: str | None
    company_pk: int | None
    company_external_id: str | None
    is_test: bool


# The notes of the delete in progress in this thread / task; None when none collects.
_collecting: ContextVar[list[DeletionNote] | None] = ContextVar("tombstones", default=None)


def tombstone_receivers_connect() -> None:
    """Connect the receiver to each syncable model (called from ``AppConfig.ready``)."""
    for name, model in SYNCABLE_MODELS.items():
        post_delete.connect(
            _deletion_note, sender=model, dispatch_uid=f"planhat_segment_tombstone_{name}"
        )


def _deletion_note(sender, instance: WorkspaceObject, using: str, **kwargs) -> None:
    # The company's external id only when already loaded: a query per deleted object would
    # slow bulk deletes (the rest are looked up once, in tombstones_write).
    company = instance._state.fields_cache.get("company")
    note = DeletionNote(
        model=_MODEL_NAMES[sender],
        pk=instance.pk,
        external_id=instance.external_id,
        company_pk=getattr(instance, "company_id", None),
        company_external_id=getattr(company, "external_id", None),
        is_test=bool(getattr(instance, "is_test", False)),
    )
    notes = _collecting.get()
    if notes is None:  # a delete that no collector wraps: write it now, inside its transaction
        tombstones_write(notes=[note], using=using)
    else:
        notes.append(note)


@contextmanager
def tombstones_collected(*, using: str) -> Iterator[None]:
    """Collect the deletions made inside the block; write their tombstones when it ends.

    Use inside the delete's transaction (the workspace's ``delete`` methods do). A nested
    block joins the outer one; on an exception the notes are dropped with the rollback.
    """
    if _collecting.get() is not None:
        yield
        return
    token = _collecting.set([])
    try:
        yield
        notes = _collecting.get()
    finally:
        _collecting.reset(token)
    tombstones_write(notes=notes, using=using)


def tombstones_write(*, notes: list[DeletionNote], using: str = "default") -> int:
    """Write one tombstone per deleted object that was not test data; returns how many.

    One query for the companies the notes name (their external id, and whether they are
    test data) unless every company is among the deleted objects themselves, then one
    ``bulk_create``.
    """
    if not notes:
        return 0
    # Companies deleted in the same operation are gone from the table: take them as noted.
    companies = {n.pk: (n.external_id, n.is_test) for n in notes if n.model == "company"}
    missing = {n.company_pk for n in notes if n.company_pk} - companies.keys()
    if missing:
        for pk, external_id, is_test in (
            Company.objects.using(using)
            .filter(pk__in=missing)
            .values_list("pk", "external_id", "is_test")
        ):
            companies[pk] = (external_id, is_test)
    tombstones = []
    for note in notes:
        company_external_id, company_is_test = companies.get(note.company_pk, (None, False))
        if note.is_test or company_is_test:
            continue
        tombstones.append(
            Tombstone(
                model=note.model,
                object_pk=note.pk,
                external_id=note.external_id,
                company_pk=note.company_pk,
                company_external_id=note.company_external_id or company_external_id,
            )
        )
    Tombstone.objects.using(using).bulk_create(tombstones, batch_size=1000)
    return len(tombstones)
