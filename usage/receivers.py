"""Signal receivers, connected in ``UsageConfig.ready``.

The workspace announces new or changed companies and endusers with
``workspace_objects_changed`` (it never imports usage); events waiting for exactly those
objects are re-queued. The decision itself is in ``services.waiting_events_rematch``.
"""

from __future__ import annotations

from django.dispatch import receiver

from planhat_segment.signals import workspace_objects_changed

from .services import waiting_events_rematch


@receiver(workspace_objects_changed, dispatch_uid="usage_rematch_waiting_events")
def rematch_waiting_events(sender, model: str = "", pks=(), **kwargs) -> None:
    waiting_events_rematch(model=model, pks=pks)
