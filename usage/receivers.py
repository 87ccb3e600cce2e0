"""Signal receivers, connected in ``UsageConfig.ready``.

The workspace announces new or changed companies and endusers with
``workspace_objects_changed`` (it never imports usage); events waiting for exactly those
objects are re-queued. The decision itself is in ``services.waiting_events_rematch``.

Deleting an enduser deletes its activities (cascade): its share of its company's daily
rollups is taken out first (``rollups.rollups_enduser_forget``). Bookkeeping of a deletion,
like the workspace's tombstones; a company's own deletion takes its rollups with it.
"""

from __future__ import annotations

from django.db.models import QuerySet
from django.db.models.signals import pre_delete
from django.dispatch import receiver

from planhat_segment.models import Company, EndUser
from planhat_segment.signals import workspace_objects_changed

from .rollups import rollups_enduser_forget
from .services import waiting_events_rematch


@receiver(workspace_objects_changed, dispatch_uid="usage_rematch_waiting_events")
def rematch_waiting_events(sender, model: str = "", pks=(), **kwargs) -> None:
    waiting_events_rematch(model=model, pks=pks)


@receiver(pre_delete, sender=EndUser, dispatch_uid="usage_rollups_enduser_deleted")
def forget_deleted_enduser_usage(sender, instance, origin=None, **kwargs) -> None:
    if isinstance(origin, Company) or (isinstance(origin, QuerySet) and origin.model is Company):
        return  # the company's rollups are deleted with it
    rollups_enduser_forget(enduser_id=instance.pk)
