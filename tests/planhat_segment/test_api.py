import datetime as dt
import json

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from planhat_segment.models import (
    Asset,
    Company,
    CompanyDomain,
    EndUser,
    License,
    Project,
    Tombstone,
)
from tests.factories import (
    AssetFactory,
    CompanyFactory,
    EndUserFactory,
    LicenseFactory,
    ProjectFactory,
)

pytestmark = pytest.mark.django_db

ROUTES = ["companies", "endusers", "assets", "projects", "licenses"]


def owned_payload(route: str, company: Company, **extra) -> dict:
    """A valid create body for each route, referring to ``company`` by external id."""
    base = {
        "companies": {"name": "Acme"},
        "endusers": {"email": "ana@acme.com", "name": "Ana"},
        "assets": {"name": "Website"},
        "projects": {"name": "Rollout"},
        "licenses": {
            "product": "Pro",
            "mrr": "99.50",
            "currency": "eur",
            "start_date": "2026-01-01",
        },
    }[route]
    if route != "companies":
        base["company_external_id"] = company.external_id
    return {**base, **extra}


# --- auth ---------------------------------------------------------------------------------


@pytest.mark.parametrize("route", ROUTES)
def test_api_requires_authentication(route):
    answer = APIClient().get(f"/api/{route}/")
    assert answer.status_code == 401
    assert answer["WWW-Authenticate"] == "Token"
    answer = APIClient().post(f"/api/{route}/bulk_upsert/", [], format="json")
    assert answer.status_code == 401


def test_api_rejects_wrong_token():
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-token")
    assert client.get("/api/companies/").status_code == 401


def test_drf_create_token_command_makes_a_working_token(django_user_model, capsys):
    user = django_user_model.objects.create_user(username="etl", password="x" * 20)
    call_command("drf_create_token", "etl")
    key = Token.objects.get(user__username="etl").key
    assert key in capsys.readouterr().out
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    # A key alone grants nothing: its user needs a role (tests/roles covers each route).
    assert client.get("/api/companies/").status_code == 403
    user.groups.add(Group.objects.get(name="Viewer"))
    assert client.get("/api/companies/").status_code == 200


# --- CRUD ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("route", "model", "change"),
    [
        ("companies", Company, {"name": "Acme Corp"}),
        ("endusers", EndUser, {"title": "CTO"}),
        ("assets", Asset, {"name": "App"}),
        ("projects", Project, {"name": "Phase 2"}),
        ("licenses", License, {"status": "churned"}),
    ],
)
def test_crud_round_trip_ends_with_a_tombstone(api_client, route, model, change):
    company = CompanyFactory(external_id="ACME")
    answer = api_client.post(
        f"/api/{route}/", owned_payload(route, company, external_id="X-1"), format="json"
    )
    assert answer.status_code == 201, answer.json()
    pk = answer.json()["id"]
    obj = model.objects.get(pk=pk)
    assert obj.external_id == "X-1"
    if route != "companies":
        assert obj.company_id == company.pk
        assert answer.json()["company"] == company.pk
        assert answer.json()["company_external_id"] == "ACME"

    got = api_client.get(f"/api/{route}/{pk}/")
    assert got.status_code == 200
    assert got.json() == answer.json()

    patched = api_client.patch(f"/api/{route}/{pk}/", change, format="json")
    assert patched.status_code == 200, patched.json()
    obj.refresh_from_db()
    for field, value in change.items():
        assert getattr(obj, field) == value

    put = api_client.put(
        f"/api/{route}/{pk}/", owned_payload(route, company, external_id="X-2"), format="json"
    )
    assert put.status_code == 200, put.json()
    obj.refresh_from_db()
    assert obj.external_id == "X-2"

    assert api_client.delete(f"/api/{route}/{pk}/").status_code == 204
    assert not model.objects.filter(pk=pk).exists()
    tombstone = Tombstone.objects.get(object_pk=pk, model=model._meta.model_name)
    assert tombstone.external_id == "X-2"
    assert api_client.get(f"/api/{route}/{pk}/").status_code == 404


def test_enduser_created_through_api_has_source_api_and_nulls_for_blanks(api_client):
    company = CompanyFactory()
    answer = api_client.post(
        "/api/endusers/",
        {"company": company.pk, "external_id": "", "email": "Ana@Acme.com"},
        format="json",
    )
    assert answer.status_code == 201, answer.json()
    user = EndUser.objects.get()
    assert (user.source, user.external_id, user.email_normalized) == ("api", None, "ana@acme.com")
    assert answer.json()["external_id"] is None


def test_source_is_read_only(api_client):
    user = EndUserFactory()
    api_client.patch(f"/api/endusers/{user.pk}/", {"source": "segment"}, format="json")
    user.refresh_from_db()
    assert user.source == "manual"


def test_company_email_domains_round_trip(api_client):
    answer = api_client.post(
        "/api/companies/", {"name": "Acme", "email_domains": ["ACME.com", "acme.io"]}, format="json"
    )
    assert answer.status_code == 201, answer.json()
    assert sorted(answer.json()["email_domains"]) == ["acme.com", "acme.io"]
    pk = answer.json()["id"]
    api_client.patch(f"/api/companies/{pk}/", {"email_domains": ["acme.io"]}, format="json")
    assert list(CompanyDomain.objects.values_list("domain", flat=True)) == ["acme.io"]
    # A PATCH without email_domains leaves them alone.
    api_client.patch(f"/api/companies/{pk}/", {"name": "Acme Inc"}, format="json")
    assert list(CompanyDomain.objects.values_list("domain", flat=True)) == ["acme.io"]


def test_company_domain_of_another_company_is_a_400_naming_it(api_client):
    owner = CompanyFactory(name="Initech")
    CompanyDomain.objects.create(company=owner, domain="initech.com")
    answer = api_client.post(
        "/api/companies/", {"name": "B", "email_domains": ["initech.com"]}, format="json"
    )
    assert answer.status_code == 400
    assert answer.json() == {
        "email_domains": [
            f"The domain 'initech.com' already belongs to company 'Initech' (id {owner.pk})."
        ]
    }
    assert Company.objects.count() == 1


# --- validation ---------------------------------------------------------------------------


def test_duplicate_external_id_is_a_400_naming_the_holder(api_client):
    holder = CompanyFactory(external_id="X")
    answer = api_client.post("/api/companies/", {"name": "B", "external_id": "X"}, format="json")
    assert answer.status_code == 400
    assert answer.json() == {
        "external_id": [f"external_id 'X' is already used by company {holder.pk}."]
    }
    other = CompanyFactory(external_id="Y")
    answer = api_client.patch(f"/api/companies/{other.pk}/", {"external_id": "X"}, format="json")
    assert answer.status_code == 400
    other.refresh_from_db()
    assert other.external_id == "Y"


def test_enduser_without_external_id_or_email_is_a_400(api_client):
    company = CompanyFactory()
    answer = api_client.post(
        "/api/endusers/", {"company": company.pk, "name": "Nobody"}, format="json"
    )
    assert answer.status_code == 400
    assert answer.json() == {"non_field_errors": ["An enduser needs an external id or an email."]}
    assert not EndUser.objects.exists()


def test_enduser_bad_email_is_a_400(api_client):
    company = CompanyFactory()
    answer = api_client.post(
        "/api/endusers/", {"company": company.pk, "email": "not-an-email"}, format="json"
    )
    assert answer.status_code == 400
    assert answer.json() == {"email": ["Enter a valid email address."]}


def test_enduser_email_taken_is_a_400(api_client):
    owner = EndUserFactory(email="ana@acme.com", external_id="U-1")
    answer = api_client.post(
        "/api/endusers/", {"company": owner.company_id, "email": "ANA@acme.com"}, format="json"
    )
    assert answer.status_code == 400
    assert answer.json() == {
        "email": [
            f"email 'ANA@acme.com' is already used by enduser {owner.pk} (external_id 'U-1')."
        ]
    }


def test_unknown_company_reference_is_a_400(api_client):
    answer = api_client.post(
        "/api/assets/", {"name": "A", "company_external_id": "NOPE"}, format="json"
    )
    assert answer.status_code == 400
    assert answer.json() == {"company_external_id": ["No company has external_id 'NOPE'."]}
    answer = api_client.post("/api/assets/", {"name": "A"}, format="json")
    assert answer.json() == {
        "company": ["A company is required: give company (its id) or company_external_id."]
    }


def test_license_ending_before_it_starts_is_a_400(api_client):
    company = CompanyFactory()
    answer = api_client.post(
        "/api/licenses/",
        {
            "company": company.pk,
            "product": "Pro",
            "start_date": "2026-02-01",
            "end_date": "2026-01-01",
        },
        format="json",
    )
    assert answer.status_code == 400
    assert answer.json() == {"end_date": ["A license cannot end before it starts."]}


def test_custom_must_be_an_object(api_client):
    answer = api_client.post("/api/companies/", {"name": "A", "custom": [1, 2]}, format="json")
    assert answer.status_code == 400
    assert answer.json() == {"custom": ["Custom fields must be a JSON object."]}


# --- filters, search, pagination ----------------------------------------------------------


def ids(answer) -> set[int]:
    assert answer.status_code == 200, answer.json()
    return {row["id"] for row in answer.json()["results"]}


def test_enduser_filters(api_client):
    acme = CompanyFactory(external_id="ACME")
    other = CompanyFactory(external_id="OTHER")
    ana = EndUserFactory(company=acme, email="Ana@Acme.com", external_id="U-ANA", name="Ana")
    bob = EndUserFactory(company=other, email="bob@other.com", external_id="U-BOB", name="Bob")
    assert ids(api_client.get("/api/endusers/", {"email": "ana@ACME.com"})) == {ana.pk}
    assert ids(api_client.get("/api/endusers/", {"external_id": "U-BOB"})) == {bob.pk}
    assert ids(api_client.get("/api/endusers/", {"company": acme.pk})) == {ana.pk}
    assert ids(api_client.get("/api/endusers/", {"company_external_id": "OTHER"})) == {bob.pk}
    assert ids(api_client.get("/api/endusers/", {"search": "bob"})) == {bob.pk}


def test_updated_since_filter(api_client):
    old = CompanyFactory()
    new = CompanyFactory()
    Company.objects.filter(pk=old.pk).update(updated_at=timezone.now() - dt.timedelta(days=2))
    since = (timezone.now() - dt.timedelta(days=1)).isoformat()
    assert ids(api_client.get("/api/companies/", {"updated_since": since})) == {new.pk}
    bad = api_client.get("/api/companies/", {"updated_since": "yesterday"})
    assert bad.status_code == 400
    assert "updated_since" in bad.json()


def test_search_by_name_and_license_filters(api_client):
    CompanyFactory(name="Initech")
    acme = CompanyFactory(name="Acme")
    assert ids(api_client.get("/api/companies/", {"search": "acm"})) == {acme.pk}
    churned = LicenseFactory(status="churned", currency="EUR")
    LicenseFactory(status="active")
    assert ids(api_client.get("/api/licenses/", {"status": "churned", "currency": "eur"})) == {
        churned.pk
    }
    asset = AssetFactory(company=acme)
    project = ProjectFactory(company=acme)
    AssetFactory()
    ProjectFactory()
    assert ids(api_client.get("/api/assets/", {"company_external_id": acme.external_id})) == {
        asset.pk
    }
    assert ids(api_client.get("/api/projects/", {"company": acme.pk})) == {project.pk}


def test_page_size_is_capped(api_client, settings):
    settings.API_MAX_PAGE_SIZE = 3
    CompanyFactory.create_batch(5)
    assert len(api_client.get("/api/companies/", {"page_size": 2}).json()["results"]) == 2
    answer = api_client.get("/api/companies/", {"page_size": 1000}).json()
    assert (len(answer["results"]), answer["count"]) == (3, 5)


@pytest.mark.parametrize(
    ("route", "factory"),
    [
        ("companies", CompanyFactory),
        ("endusers", EndUserFactory),
        ("assets", AssetFactory),
        ("projects", ProjectFactory),
        ("licenses", LicenseFactory),
    ],
)
def test_list_query_count_does_not_grow_with_rows(
    api_client, django_assert_num_queries, route, factory
):
    def add(n):
        for obj in factory.create_batch(n):
            if isinstance(obj, Company):
                CompanyDomain.objects.create(company=obj, domain=f"c{obj.pk}.example.com")

    add(5)
    # token + user, count, page, (companies: their domains)
    expected = 4 if route == "companies" else 3
    with django_assert_num_queries(expected):
        assert len(api_client.get(f"/api/{route}/").json()["results"]) == 5
    add(45)
    with django_assert_num_queries(expected):
        assert len(api_client.get(f"/api/{route}/").json()["results"]) == 50


# --- bulk upsert --------------------------------------------------------------------------


def test_bulk_upsert_endpoint_writes_good_items_and_answers_per_item(api_client):
    acme = CompanyFactory(external_id="ACME")
    existing = EndUserFactory(company=acme, external_id="U-1", name="Old", title="CTO")
    before = timezone.now()
    answer = api_client.post(
        "/api/endusers/bulk_upsert/",
        [
            {"external_id": "U-1", "name": "New"},
            {"external_id": "U-2", "email": "u2@acme.com", "company_external_id": "ACME"},
            {"external_id": "U-3", "email": "not-an-email", "company_external_id": "ACME"},
            {"external_id": "U-2", "company_external_id": "ACME"},
            "not an object",
            {"name": "no id", "company_external_id": "ACME"},
        ],
        format="json",
    )
    assert answer.status_code == 200
    body = answer.json()
    u2 = EndUser.objects.get(external_id="U-2")
    assert body == {
        "results": [
            {
                "index": 0,
                "external_id": "U-1",
                "status": "updated",
                "id": existing.pk,
                "errors": {},
            },
            {"index": 1, "external_id": "U-2", "status": "created", "id": u2.pk, "errors": {}},
            {
                "index": 2,
                "external_id": "U-3",
                "status": "error",
                "id": None,
                "errors": {"email": ["Enter a valid email address."]},
            },
            {
                "index": 3,
                "external_id": "U-2",
                "status": "error",
                "id": None,
                "errors": {
                    "external_id": [
                        "external_id 'U-2' appears more than once in this request: first at index 1."
                    ]
                },
            },
            {
                "index": 4,
                "external_id": None,
                "status": "error",
                "id": None,
                "errors": {"non_field_errors": ["Not a JSON object."]},
            },
            {
                "index": 5,
                "external_id": None,
                "status": "error",
                "id": None,
                "errors": {"external_id": ["An external_id is required for bulk upsert."]},
            },
        ],
        "created": 1,
        "updated": 1,
        "errors": 4,
    }
    existing.refresh_from_db()
    assert (existing.name, existing.title) == ("New", "CTO")
    assert existing.updated_at >= before
    assert (u2.source, u2.company_id) == ("api", acme.pk)
    assert set(EndUser.objects.values_list("external_id", flat=True)) == {"U-1", "U-2"}


def test_bulk_upsert_accepts_items_envelope_for_companies_with_domains(api_client):
    answer = api_client.post(
        "/api/companies/bulk_upsert/",
        {"items": [{"external_id": "C-1", "name": "One", "email_domains": ["one.com"]}]},
        format="json",
    )
    assert answer.status_code == 200
    assert answer.json()["created"] == 1
    assert Company.objects.get(external_id="C-1").email_domains == ["one.com"]


def test_bulk_upsert_licenses_by_company_external_id(api_client):
    acme = CompanyFactory(external_id="ACME")
    answer = api_client.post(
        "/api/licenses/bulk_upsert/",
        [
            {
                "external_id": "L-1",
                "company_external_id": "ACME",
                "product": "Pro",
                "mrr": "12.5",
                "start_date": "2026-01-01",
            },
            {"external_id": "L-2", "company_external_id": "ACME", "product": "Pro", "mrr": "-1"},
        ],
        format="json",
    )
    results = answer.json()["results"]
    assert results[0]["status"] == "created"
    assert results[1]["errors"] == {
        "start_date": ["This field cannot be null."],
        "mrr": ["MRR cannot be negative."],
    }
    lic = License.objects.get()
    assert (lic.external_id, lic.company_id, str(lic.mrr)) == ("L-1", acme.pk, "12.50")


@pytest.mark.parametrize("body", [{"name": "not a list"}, "text", 5])
def test_bulk_upsert_rejects_a_body_that_is_not_a_list(api_client, body):
    answer = api_client.post("/api/companies/bulk_upsert/", body, format="json")
    assert answer.status_code == 400
    assert answer.json() == {
        "detail": 'Send a JSON array of objects, or an object {"items": [...]}.'
    }


def test_bulk_upsert_rejects_invalid_json(api_client):
    answer = api_client.post(
        "/api/companies/bulk_upsert/", data="[{", content_type="application/json"
    )
    assert answer.status_code == 400
    assert "JSON parse error" in answer.json()["detail"]


def test_bulk_upsert_rejects_too_many_items_naming_the_limit(api_client, settings):
    settings.BULK_UPSERT_MAX_ITEMS = 2
    answer = api_client.post(
        "/api/companies/bulk_upsert/",
        [{"external_id": str(i), "name": str(i)} for i in range(3)],
        format="json",
    )
    assert answer.status_code == 400
    assert answer.json() == {"detail": "Too many items: 3; at most 2 per request."}
    assert not Company.objects.exists()


def test_bulk_upsert_rejects_oversized_body(api_client, settings):
    settings.BULK_UPSERT_MAX_BYTES = 100
    body = json.dumps([{"external_id": str(i), "name": "x" * 20} for i in range(10)])
    answer = api_client.post(
        "/api/companies/bulk_upsert/", data=body, content_type="application/json"
    )
    assert answer.status_code == 413
    assert not Company.objects.exists()


# --- OpenAPI ------------------------------------------------------------------------------


def test_schema_lists_the_workspace_routes(api_client):
    answer = api_client.get("/api/schema/", {"format": "json"})
    assert answer.status_code == 200
    paths = json.loads(answer.content)["paths"]
    for route in ROUTES:
        assert f"/api/{route}/" in paths
        assert f"/api/{route}/{{id}}/" in paths
        assert f"/api/{route}/bulk_upsert/" in paths
    for route in (
        "/api/integration/",
        "/api/integration/rotate-token/",
        "/api/metric-definitions/",
    ):
        assert route in paths
