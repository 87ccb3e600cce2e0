import pytest
from django.contrib import admin
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from integrations.models import IntegrationSettings, MetricDefinition
from planhat_segment.models import (
    Asset,
    Company,
    CompanyDomain,
    EndUser,
    License,
    Project,
    Tombstone,
)
from planhat_segment.signals import workspace_objects_changed
from tests.factories import (
    AssetFactory,
    CompanyFactory,
    EndUserFactory,
    LicenseFactory,
    ProjectFactory,
)

pytestmark = pytest.mark.django_db


def make_company(**kwargs):
    company = CompanyFactory(**kwargs)
    CompanyDomain.objects.create(company=company, domain=f"c{company.pk}.example.com")
    EndUserFactory(company=company)
    LicenseFactory(company=company)
    return company


def make_tombstone(**kwargs):
    AssetFactory().delete()
    return Tombstone.objects.latest("deleted_at")


def make_metric(**kwargs):
    n = MetricDefinition.objects.count()
    return MetricDefinition.objects.create(key=f"metric_{n}")


MODELS = [
    (Company, make_company),
    (EndUser, EndUserFactory),
    (Asset, AssetFactory),
    (Project, ProjectFactory),
    (License, LicenseFactory),
    (Tombstone, make_tombstone),
    (MetricDefinition, make_metric),
]


def admin_url(model, view: str, *args) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


@pytest.mark.parametrize(("model", "make"), MODELS)
def test_changelist_and_change_pages_render(admin_client_logged_in, model, make):
    obj = make()
    changelist = admin_client_logged_in.get(admin_url(model, "changelist"))
    assert changelist.status_code == 200
    assert changelist.context["cl"].result_count == model.objects.count()
    change = admin_client_logged_in.get(admin_url(model, "change", obj.pk))
    assert change.status_code == 200


@pytest.mark.parametrize(("model", "make"), MODELS)
def test_changelist_query_count_does_not_grow_with_rows(admin_client_logged_in, model, make):
    def queries_for_changelist() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert admin_client_logged_in.get(admin_url(model, "changelist")).status_code == 200
        return len(ctx)

    for _ in range(3):
        make()
    few = queries_for_changelist()
    for _ in range(30):
        make()
    assert queries_for_changelist() == few


def test_company_changelist_counts_endusers_and_licenses(admin_client_logged_in):
    company = make_company()
    EndUserFactory(company=company)
    answer = admin_client_logged_in.get(admin_url(Company, "changelist"))
    row = answer.context["cl"].result_list[0]
    assert (row.enduser_total, row.license_total) == (2, 1)


@pytest.mark.parametrize(
    ("model", "make", "term"),
    [
        (Company, lambda: CompanyFactory(name="Initech"), "initech"),
        (Company, lambda: CompanyFactory(external_id="XID-42"), "XID-42"),
        (EndUser, lambda: EndUserFactory(email="peter@initech.com"), "peter@initech"),
        (EndUser, lambda: EndUserFactory(external_id="U-777"), "U-777"),
        (Asset, lambda: AssetFactory(name="Printer"), "printer"),
        (Project, lambda: ProjectFactory(name="Migration"), "migrat"),
        (License, lambda: LicenseFactory(external_id="LIC-9"), "LIC-9"),
    ],
)
def test_changelist_search(admin_client_logged_in, model, make, term):
    wanted = make()
    for _ in range(2):
        {Company: CompanyFactory, EndUser: EndUserFactory}.get(model, AssetFactory)()
    answer = admin_client_logged_in.get(admin_url(model, "changelist"), {"q": term})
    assert [obj.pk for obj in answer.context["cl"].result_list] == [wanted.pk]


def test_tombstones_are_read_only(admin_client_logged_in):
    tombstone = make_tombstone()
    assert admin_client_logged_in.get(admin_url(Tombstone, "add")).status_code == 403
    answer = admin_client_logged_in.post(
        admin_url(Tombstone, "change", tombstone.pk), {"model": "company", "object_pk": 1}
    )
    assert answer.status_code == 403
    tombstone.refresh_from_db()
    assert tombstone.model == "asset"


def test_integration_settings_have_no_change_list():
    assert IntegrationSettings not in admin.site._registry
    assert MetricDefinition in admin.site._registry


def enduser_form(company, **fields) -> dict:
    return {
        "company": company.pk,
        "external_id": "",
        "email": "",
        "first_name": "",
        "last_name": "",
        "name": "",
        "title": "",
        "custom": "{}",
        **fields,
    }


def test_enduser_admin_validates_through_the_model(admin_client_logged_in):
    company = CompanyFactory()
    answer = admin_client_logged_in.post(admin_url(EndUser, "add"), enduser_form(company))
    assert answer.status_code == 200  # the form again, with the error
    assert "An enduser needs an external id or an email." in answer.content.decode()
    assert not EndUser.objects.exists()


def test_enduser_admin_reports_taken_email_instead_of_failing(admin_client_logged_in):
    owner = EndUserFactory(email="ana@acme.com", external_id="U-1")
    answer = admin_client_logged_in.post(
        admin_url(EndUser, "add"), enduser_form(owner.company, email="ANA@acme.com")
    )
    assert answer.status_code == 200
    assert answer.context["adminform"].form.errors["email"] == [
        f"email 'ANA@acme.com' is already used by enduser {owner.pk} (external_id 'U-1')."
    ]
    assert EndUser.objects.count() == 1


def test_enduser_admin_save_announces_the_change(
    admin_client_logged_in, django_capture_on_commit_callbacks
):
    company = CompanyFactory()
    seen = []
    workspace_objects_changed.connect(
        lambda sender, model, pks, **kw: seen.append((model, pks)), weak=False, dispatch_uid="t"
    )
    try:
        with django_capture_on_commit_callbacks(execute=True):
            answer = admin_client_logged_in.post(
                admin_url(EndUser, "add"), enduser_form(company, email="new@acme.com")
            )
    finally:
        workspace_objects_changed.disconnect(dispatch_uid="t")
    assert answer.status_code == 302
    user = EndUser.objects.get()
    assert (user.email, user.source) == ("new@acme.com", "manual")
    assert seen == [("enduser", [user.pk])]


def company_form(name: str, domain: str) -> dict:
    return {
        "name": name,
        "external_id": "",
        "custom": "{}",
        "domains-TOTAL_FORMS": "1",
        "domains-INITIAL_FORMS": "0",
        "domains-MIN_NUM_FORMS": "0",
        "domains-MAX_NUM_FORMS": "1000",
        "domains-0-domain": domain,
    }


def test_company_admin_domain_inline_normalises_and_rejects_taken_domain(admin_client_logged_in):
    answer = admin_client_logged_in.post(
        admin_url(Company, "add"), company_form("Acme", "ACME.com")
    )
    assert answer.status_code == 302
    acme = Company.objects.get(name="Acme")
    assert acme.email_domains == ["acme.com"]

    answer = admin_client_logged_in.post(
        admin_url(Company, "add"), company_form("Copy", "Acme.COM")
    )
    assert answer.status_code == 200
    assert (
        f"The domain &#x27;acme.com&#x27; already belongs to company &#x27;Acme&#x27; (id {acme.pk})."
        in answer.content.decode()
    )
    assert not Company.objects.filter(name="Copy").exists()


def test_metric_definition_admin_rejects_invalid_key(admin_client_logged_in):
    answer = admin_client_logged_in.post(
        admin_url(MetricDefinition, "add"), {"key": "active users", "label": "", "description": ""}
    )
    assert answer.status_code == 200
    assert "is not a valid metric key" in answer.context["adminform"].form.errors["key"][0]
    assert not MetricDefinition.objects.exists()
