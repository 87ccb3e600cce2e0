"""Writes of health profiles and their factors; each change re-scores the companies."""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from ..models import FACTOR_FIELDS, PROFILE_FIELDS, HealthFactor, HealthProfile
from ..validation import factor_problems, profile_problems
from .queue import health_recompute_queue

logger = logging.getLogger(__name__)


def _check(profile: HealthProfile, factors: list[dict[str, Any]] | None) -> None:
    problems: dict[str, Any] = dict(
        profile_problems({f: getattr(profile, f) for f in PROFILE_FIELDS})
    )
    if factors is not None:
        messages = []
        for number, factor in enumerate(factors, start=1):
            fields = {k: factor[k] for k in (*FACTOR_FIELDS, "metric") if k in factor}
            for name, message in factor_problems(fields | _metric_id(factor)).items():
                messages.append(f"Factor {number}, {name}: {message}")
        if messages:
            problems["factors"] = messages
    if problems:
        raise ValidationError(problems)


def _metric_id(data: dict) -> dict:
    metric = data.get("metric")
    return {"metric": getattr(metric, "pk", metric)}


def _factor(profile: HealthProfile, order: int, data: dict) -> HealthFactor:
    values = {k: data[k] for k in (*FACTOR_FIELDS, "name", "order") if k in data}
    values.setdefault("order", order)
    metric = data.get("metric")
    if metric is not None and not isinstance(metric, int):
        values["metric_id"] = metric.pk
    elif metric is not None:
        values["metric_id"] = metric
    values["currency"] = (values.get("currency") or "").upper()
    return HealthFactor(profile=profile, **values)


@transaction.atomic
def health_profile_save(
    *, profile: HealthProfile, factors: list[dict[str, Any]] | None = None
) -> HealthProfile:
    """Validate and save a profile (and replace its factors when given), keeping exactly one
    default profile, then queue a recompute after commit."""
    return _save(profile, factors)


def _save(profile: HealthProfile, factors: list[dict] | None) -> HealthProfile:
    profile.currency = (profile.currency or "").upper()
    _check(profile, factors)
    if profile.is_default:
        # One default at a time: making this one the default demotes the previous one.
        HealthProfile.objects.filter(is_default=True).exclude(pk=profile.pk).update(
            is_default=False
        )
    profile.save()
    if factors is not None:
        profile.factors.all().delete()
        HealthFactor.objects.bulk_create([_factor(profile, i, f) for i, f in enumerate(factors)])
    # Which profile applies, and what it yields, may change for any company: re-score all
    # (one set-based pass on a worker, after this transaction commits).
    health_recompute_queue()
    logger.info("health_profile_saved", extra={"profile_id": profile.pk})
    return profile


@transaction.atomic
def health_profile_create(
    *, data: dict[str, Any], factors: list[dict[str, Any]] | None = None
) -> HealthProfile:
    """Create a profile with its factors (validated in plain words; nothing saved on error)."""
    profile = HealthProfile(**{k: v for k, v in data.items() if k in PROFILE_FIELDS})
    return _save(profile, factors or [])


@transaction.atomic
def health_profile_update(
    *, profile: HealthProfile, data: dict[str, Any], factors: list[dict[str, Any]] | None = None
) -> HealthProfile:
    """Change a profile's fields; ``factors``, when given, replace its factors."""
    if profile.is_default and data.get("is_default") is False:
        raise ValidationError(
            {"is_default": "Make another profile the default instead: one must always exist."}
        )
    for key, value in data.items():
        if key in PROFILE_FIELDS:
            setattr(profile, key, value)
    return _save(profile, factors)


@transaction.atomic
def health_profile_delete(*, profile: HealthProfile) -> None:
    """Delete a profile (never the default one); its companies fall to the next match."""
    if profile.is_default:
        raise ValidationError(
            {"is_default": "The default profile cannot be deleted: make another the default first."}
        )
    profile.delete()
    health_recompute_queue()
