"""The default health profile every install starts with (idempotent ensure)."""

from __future__ import annotations

from django.db import IntegrityError, transaction

from ..models import Condition, Figure, HealthFactor, HealthProfile

DEFAULT_PROFILE_NAME = "Default"

# Sensible starting factors, in Planhat's spirit: usage trend, recency and breadth.
# A steady company with an active user base lands around 7 (green); a company whose usage
# halves and goes quiet falls under 4 (red).
DEFAULT_FACTORS = (
    {
        "name": "Activity change vs the previous 30 days",
        "figure": Figure.ACTIVITY_CHANGE,
        "window_days": 30,
        "condition": Condition.LINEAR,
        "range_min": -50.0,
        "range_max": 50.0,
        "impact_at_min": -5.0,
        "impact_at_max": 5.0,
        "weight": 2.0,
    },
    {
        "name": "Days since the last activity",
        "figure": Figure.DAYS_SINCE_LAST_ACTIVITY,
        "condition": Condition.LINEAR,
        "range_min": 1.0,
        "range_max": 30.0,
        "impact_at_min": 3.0,
        "impact_at_max": -5.0,
        "weight": 2.0,
    },
    {
        "name": "Active endusers over the last 30 days",
        "figure": Figure.ACTIVE_ENDUSERS,
        "window_days": 30,
        "condition": Condition.LINEAR,
        "range_min": 0.0,
        "range_max": 10.0,
        "impact_at_min": -4.0,
        "impact_at_max": 4.0,
        "weight": 1.0,
    },
)


def health_defaults_ensure() -> HealthProfile:
    """The default profile, created with its starting factors when there is none.

    Idempotent and safe to call from anywhere (post_migrate, bootstrap, every recompute):
    an existing default profile, edited or not, is left exactly as it is.
    """
    profile = HealthProfile.objects.filter(is_default=True).first()
    if profile is not None:
        return profile
    try:
        with transaction.atomic():
            name = DEFAULT_PROFILE_NAME
            if HealthProfile.objects.filter(name=name).exists():
                name = f"{DEFAULT_PROFILE_NAME} (default)"
            profile = HealthProfile.objects.create(
                name=name,
                is_default=True,
                order=1000,
                description="Applies to every company that no other profile matches.",
            )
            HealthFactor.objects.bulk_create(
                [
                    HealthFactor(profile=profile, order=i, **spec)
                    for i, spec in enumerate(DEFAULT_FACTORS)
                ]
            )
    except IntegrityError:
        # Another process created it at the same time: the unique default constraint held.
        profile = HealthProfile.objects.get(is_default=True)
    return profile
