"""Deletion bookkeeping and a change signal for other apps.

Tombstones are written from ``post_delete`` because that is the one hook that also sees
cascaded deletions (a company's endusers, licenses, …) and admin bulk deletes; it records
data, it decides nothing.
"""

from __future__ import annotations

from django.db.models.signals import post_delete
from django.dispatch import Signal, receiver

from .models import SYNCABLE_MODELS, Tombstone, WorkspaceObject

# Sent by the services after companies or endusers were created or changed, with
# ``model`` ("company" / "enduser") and ``pks`` (list of ints). The usage app listens to
# re-match events waiting for those objects; the workspace never imports usage.
workspace_objects_changed = Signal()

_MODEL_NAMES = {cls: name for name, cls in SYNCABLE_MODELS.items()}


@receiver(post_delete, dispatch_uid="planhat_segment_tombstone")
def record_tombstone(sender, instance, **kwargs) -> None:
    name = _MODEL_NAMES.get(sender)
    if name is None or not isinstance(instance, WorkspaceObject):
        return
    company_pk = getattr(instance, "company_id", None)
    # Only when already loaded: a query per deleted object would slow bulk deletes.
    company = instance._state.fields_cache.get("company")
    Tombstone.objects.create(
        model=name,
        object_pk=instance.pk,
        external_id=instance.external_id,
        company_pk=company_pk,
        company_external_id=getattr(company, "external_id", None),
    )
