"""Health services: the default profile, profile writes, and the set-based recompute."""

from .defaults import DEFAULT_FACTORS, health_defaults_ensure
from .profiles import (
    health_profile_create,
    health_profile_delete,
    health_profile_save,
    health_profile_update,
)
from .queue import (
    RECOMPUTE_QUEUE,
    RECOMPUTE_TASK,
    health_recompute_publish,
    health_recompute_queue,
)
from .recompute import RecomputeSummary, health_scores_recompute, profile_for

__all__ = [
    "DEFAULT_FACTORS",
    "RECOMPUTE_QUEUE",
    "RECOMPUTE_TASK",
    "RecomputeSummary",
    "health_defaults_ensure",
    "health_profile_create",
    "health_profile_delete",
    "health_profile_save",
    "health_profile_update",
    "health_recompute_publish",
    "health_recompute_queue",
    "health_scores_recompute",
    "profile_for",
]
