"""Re-score companies after their own writes (their profile filter may now match another
profile). ``planhat_segment`` announces company writes with ``workspace_objects_changed``
and never imports health; this receiver only queues work."""

from __future__ import annotations

from django.dispatch import receiver

from planhat_segment.signals import workspace_objects_changed

from .services import health_recompute_publish


@receiver(workspace_objects_changed, dispatch_uid="health_rescore_changed_companies")
def rescore_changed_companies(sender, *, model: str, pks, **kwargs) -> None:
    # The signal is sent after the write committed: publish at once.
    if model == "company":
        health_recompute_publish(company_ids=pks)
