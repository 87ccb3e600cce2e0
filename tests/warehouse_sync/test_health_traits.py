"""Health figures on the company's group call: stable types, and a changed score is a change."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from health.models import HealthScore
from tests.factories import CompanyFactory

from .conftest import push

pytestmark = pytest.mark.django_db

HEALTH_KEYS = (
    "health_score",
    "health_band",
    "last_activity_at",
    "active_endusers_30d",
    "activity_change_30d",
)


def _group_of(sink, company) -> dict:
    [group] = [
        m for m in sink.of_type("group") if m["anonymousId"] == f"planhat:company:{company.pk}"
    ]
    return group["traits"]


def test_company_without_a_score_sends_null_health_traits_with_stable_types(warehouse, sink):
    acme = CompanyFactory(external_id="acme")
    push(full=True)
    traits = _group_of(sink, acme)
    assert {key: traits[key] for key in HEALTH_KEYS} == {
        "health_score": None,
        "health_band": None,
        "last_activity_at": None,
        "active_endusers_30d": 0,
        "activity_change_30d": None,
    }


def test_changed_score_row_makes_the_company_changed_for_the_incremental_push(warehouse, sink):
    acme = CompanyFactory(external_id="acme")
    other = CompanyFactory(external_id="other")
    push()
    sink.reset()
    last_at = timezone.now().replace(microsecond=0) - dt.timedelta(days=2)
    HealthScore.objects.create(
        company=acme,
        day=timezone.now().date(),
        score=3.4,
        band="red",
        last_activity_at=last_at,
        active_endusers_30d=7,
        activity_change_30d=-42.5,
    )

    push()

    sent = {m["anonymousId"] for m in sink.of_type("group")}
    assert sent == {f"planhat:company:{acme.pk}"}, "only the re-scored company is resent"
    assert f"planhat:company:{other.pk}" not in sent
    traits = _group_of(sink, acme)
    assert traits["health_score"] == 3.4
    assert traits["health_band"] == "red"
    assert traits["last_activity_at"] == last_at.isoformat().replace("+00:00", "Z")
    assert traits["active_endusers_30d"] == 7
    assert isinstance(traits["active_endusers_30d"], int)
    assert traits["activity_change_30d"] == -42.5
