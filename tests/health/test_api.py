"""REST API: profiles with nested factors, scores with filters, recompute, company fields."""

import datetime as dt

import pytest
from django.contrib.auth.models import Permission
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from health.models import HealthFactor, HealthProfile, HealthScore
from health.services import health_defaults_ensure, health_scores_recompute
from integrations.models import MetricDefinition
from tests.factories import CompanyFactory, EndUserFactory
from tests.usage.rollup_factories import usage_add
from usage.rollup_selectors import utc_today

pytestmark = pytest.mark.django_db

TODAY = dt.date(2026, 3, 15)

LINEAR = {
    "figure": "activity_change",
    "window_days": 30,
    "condition": "linear",
    "range_min": -50,
    "range_max": 50,
    "impact_at_min": -5,
    "impact_at_max": 5,
    "weight": 2,
}


def _client_with(django_user_model, *codenames):
    user = django_user_model.objects.create_user(username="viewer", password="x-secret-123")
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label="health", codename__in=codenames)
    )
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


def test_profiles_list_includes_the_default_with_factors(api_client):
    health_defaults_ensure()
    answer = api_client.get("/api/health-profiles/")
    assert answer.status_code == 200
    (default,) = answer.json()["results"]
    assert default["is_default"] is True
    assert len(default["factors"]) == 3
    assert default["factors"][0]["label"] == "Activity change vs the previous 30 days"


def test_profile_create_with_factors_and_metric_by_key(
    api_client, django_capture_on_commit_callbacks
):
    MetricDefinition.objects.create(key="nps")
    body = {
        "name": "Enterprise",
        "order": 10,
        "min_mrr": "1000.00",
        "currency": "eur",
        "currency_rates": {"USD": 0.9},
        "factors": [
            LINEAR,
            {
                "figure": "metric_latest",
                "metric": "nps",
                "condition": "lt",
                "threshold": 20,
                "impact": -4,
            },
        ],
    }
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        answer = api_client.post("/api/health-profiles/", body, format="json")
    assert answer.status_code == 201, answer.json()
    data = answer.json()
    assert data["currency"] == "EUR"
    assert [f["figure"] for f in data["factors"]] == ["activity_change", "metric_latest"]
    assert data["factors"][1]["metric"] == "nps"
    profile = HealthProfile.objects.get(name="Enterprise")
    assert profile.factors.count() == 2
    assert len(callbacks) == 1  # a recompute is queued after the commit


@pytest.mark.parametrize(
    ("factor", "field", "words"),
    [
        ({**LINEAR, "window_days": None}, "window_days", "needs window_days"),
        ({**LINEAR, "range_max": -60}, "range_max", "must be greater than range_min"),
        ({**LINEAR, "impact_at_max": 7}, "impact_at_max", "less than or equal to 5"),
        ({"figure": "mrr", "condition": "gt", "threshold": 1}, "impact", "Give impact"),
        ({"figure": "mrr", "condition": "gt", "impact": 1}, "threshold", "needs a threshold"),
        (
            {"figure": "metric_latest", "condition": "gt", "threshold": 1, "impact": 1},
            "metric",
            "needs a metric",
        ),
        ({**LINEAR, "threshold": 3}, "threshold", "A linear condition takes no threshold"),
        ({**LINEAR, "weight": 0}, "weight", "greater than or equal to 0.01"),
        ({**LINEAR, "figure": "enduser_count"}, "window_days", "takes no window_days"),
        ({**LINEAR, "condition": "between"}, "condition", "not a valid choice"),
    ],
)
def test_factor_validation_names_the_field_in_plain_words(api_client, factor, field, words):
    health_defaults_ensure()
    body = {"name": "Bad", "custom_field": "tier", "custom_value": "x", "factors": [factor]}
    answer = api_client.post("/api/health-profiles/", body, format="json")
    assert answer.status_code == 400
    errors = answer.json()["factors"]["0"]  # DRF keys a list's errors by index
    assert field in errors, errors
    assert words in " ".join(errors[field])
    assert not HealthProfile.objects.filter(name="Bad").exists()


def test_profile_validation_of_its_own_fields(api_client):
    health_defaults_ensure()
    no_filter = api_client.post("/api/health-profiles/", {"name": "Loose"}, format="json")
    assert no_filter.status_code == 400
    assert "needs a filter" in no_filter.json()["min_mrr"][0]
    bands = api_client.post(
        "/api/health-profiles/",
        {"name": "B", "min_mrr": 1, "green_min": 5, "amber_min": 6},
        format="json",
    )
    assert "cannot be above green_min" in bands.json()["amber_min"][0]
    rates = api_client.post(
        "/api/health-profiles/",
        {"name": "R", "min_mrr": 1, "currency_rates": {"EUR": -1}},
        format="json",
    )
    assert "must be a positive number" in rates.json()["currency_rates"][0]


def test_profile_update_replaces_factors_and_default_cannot_be_deleted(api_client):
    default = health_defaults_ensure()
    answer = api_client.patch(
        f"/api/health-profiles/{default.pk}/", {"factors": [LINEAR]}, format="json"
    )
    assert answer.status_code == 200, answer.json()
    assert HealthFactor.objects.filter(profile=default).count() == 1
    gone = api_client.delete(f"/api/health-profiles/{default.pk}/")
    assert gone.status_code == 400
    assert "cannot be deleted" in gone.json()["is_default"][0]
    demote = api_client.patch(
        f"/api/health-profiles/{default.pk}/", {"is_default": False}, format="json"
    )
    assert demote.status_code == 400


def _scored(n_days=3):
    health_defaults_ensure()
    acme = CompanyFactory(external_id="ACME")
    other = CompanyFactory()
    usage_add(enduser=EndUserFactory(company=acme), day=TODAY - dt.timedelta(days=2))
    for n in range(n_days):
        health_scores_recompute(day=TODAY - dt.timedelta(days=n))
    return acme, other


def test_scores_filters_and_newest_first(api_client):
    acme, other = _scored()
    rows = api_client.get("/api/health-scores/").json()["results"]
    assert [r["date"] for r in rows[:2]] == [TODAY.isoformat()] * 2
    assert rows[-1]["date"] == (TODAY - dt.timedelta(days=2)).isoformat()
    history = api_client.get("/api/health-scores/", {"company_external_id": "ACME"}).json()
    assert [r["date"] for r in history["results"]] == [
        (TODAY - dt.timedelta(days=n)).isoformat() for n in range(3)
    ]
    assert {r["company"] for r in history["results"]} == {acme.pk}
    one_day = api_client.get(
        "/api/health-scores/", {"company": other.pk, "date": TODAY.isoformat()}
    ).json()
    assert one_day["count"] == 1
    row = one_day["results"][0]
    assert row["score"] is None
    assert row["breakdown"]["note"] == "No score: no factor has data."
    window = api_client.get(
        "/api/health-scores/",
        {"company": acme.pk, "date_after": (TODAY - dt.timedelta(days=1)).isoformat()},
    ).json()
    assert window["count"] == 2


def test_scores_list_costs_a_fixed_number_of_queries(api_client, django_assert_max_num_queries):
    _scored(n_days=5)
    with django_assert_max_num_queries(6):
        assert api_client.get("/api/health-scores/").status_code == 200


def test_recompute_one_company_inline_or_all_queued(api_client, django_capture_on_commit_callbacks):
    health_defaults_ensure()
    acme = CompanyFactory(external_id="ACME")
    answer = api_client.post(
        "/api/health-scores/recompute/",
        {"company_external_id": "ACME", "date": TODAY.isoformat()},
        format="json",
    )
    assert answer.status_code == 200, answer.json()
    assert answer.json()["companies"] == 1
    assert HealthScore.objects.filter(company=acme, day=TODAY).exists()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        queued = api_client.post("/api/health-scores/recompute/", {}, format="json")
    assert queued.status_code == 202
    assert queued.json() == {"queued": True}
    assert len(callbacks) == 1
    missing = api_client.post("/api/health-scores/recompute/", {"company": 999999}, format="json")
    assert missing.status_code == 400
    assert "company" in missing.json()


def test_permissions_viewer_reads_only_and_recompute_needs_its_permission(django_user_model):
    health_defaults_ensure()
    viewer = _client_with(django_user_model, "view_healthprofile", "view_healthscore")
    assert viewer.get("/api/health-profiles/").status_code == 200
    assert viewer.get("/api/health-scores/").status_code == 200
    assert viewer.post("/api/health-profiles/", {"name": "x"}, format="json").status_code == 403
    assert viewer.post("/api/health-scores/recompute/", {}, format="json").status_code == 403
    nobody = APIClient()
    assert nobody.get("/api/health-scores/").status_code == 401


def test_company_api_gains_health_fields_with_ordering(api_client):
    health_defaults_ensure()
    steady, quiet, unscored = CompanyFactory(), CompanyFactory(), CompanyFactory()
    today = utc_today()
    for n in range(1, 61):
        usage_add(enduser=EndUserFactory(company=steady), day=today - dt.timedelta(days=n))
    usage_add(enduser=EndUserFactory(company=quiet), day=today - dt.timedelta(days=45))
    health_scores_recompute(company_ids=[steady.pk, quiet.pk])
    answer = api_client.get("/api/companies/", {"ordering": "-health_score"})
    assert answer.status_code == 200
    rows = answer.json()["results"]
    by_id = {r["id"]: r for r in rows}
    assert [r["id"] for r in rows][:2] == [steady.pk, quiet.pk]
    assert by_id[steady.pk]["health_band"] == "green"
    assert isinstance(by_id[steady.pk]["health_score"], float)
    assert by_id[steady.pk]["active_endusers_30d"] == 30
    assert by_id[quiet.pk]["activity_change_30d"] == -100.0
    assert by_id[unscored.pk]["health_score"] is None
    assert by_id[unscored.pk]["active_endusers_30d"] == 0
    for field in ("last_activity_at", "active_endusers_30d", "activity_change_30d", "health_band"):
        assert api_client.get("/api/companies/", {"ordering": field}).status_code == 200
    single = api_client.patch(f"/api/companies/{steady.pk}/", {"name": "Renamed"}, format="json")
    assert single.status_code == 200
    assert single.json()["health_band"] == "green"


def test_schema_lists_health_routes_and_company_fields(api_client):
    schema = api_client.get("/api/schema/", {"format": "json"}).json()
    assert "/api/health-profiles/" in schema["paths"]
    assert "/api/health-scores/" in schema["paths"]
    assert "/api/health-scores/recompute/" in schema["paths"]
    company = schema["components"]["schemas"]["CompanyWithHealth"]["properties"]
    assert company["health_score"]["readOnly"] is True
    params = {p["name"] for p in schema["paths"]["/api/health-scores/"]["get"]["parameters"]}
    assert {"company", "company_external_id", "date"} <= params
