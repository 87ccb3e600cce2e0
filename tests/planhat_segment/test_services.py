import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from planhat_segment import services
from planhat_segment.models import Asset, Company, CompanyDomain, EndUser, License, Project
from planhat_segment.services import (
    BulkItem,
    workspace_object_create,
    workspace_object_update,
    workspace_objects_bulk_upsert,
)
from planhat_segment.signals import workspace_objects_changed
from tests.factories import CompanyFactory, EndUserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def changes():
    """Every workspace_objects_changed the code under test sends, as (sender, model, pks)."""
    seen = []

    def receiver(sender, model, pks, **kwargs):
        seen.append((sender, model, pks))

    workspace_objects_changed.connect(receiver, dispatch_uid="test_changes")
    yield seen
    workspace_objects_changed.disconnect(dispatch_uid="test_changes")


def items(*dicts):
    return [BulkItem(data=d, external_id=d.get("external_id")) for d in dicts]


def errors_of(excinfo) -> dict:
    return services.error_dict(excinfo.value)


# --- single writes ------------------------------------------------------------------------


def test_company_create_stores_normalised_domains():
    company = workspace_object_create(
        model=Company, data={"name": "Acme", "email_domains": ["@ACME.com.", "acme.com", "x.io"]}
    )
    assert sorted(
        CompanyDomain.objects.filter(company=company).values_list("domain", flat=True)
    ) == [
        "acme.com",
        "x.io",
    ]


def test_company_create_rejects_domain_of_another_company_naming_it():
    owner = CompanyFactory(name="Initech")
    CompanyDomain.objects.create(company=owner, domain="initech.com")
    with pytest.raises(ValidationError) as excinfo:
        workspace_object_create(model=Company, data={"name": "B", "email_domains": ["Initech.com"]})
    assert errors_of(excinfo) == {
        "email_domains": [
            f"The domain 'initech.com' already belongs to company 'Initech' (id {owner.pk})."
        ]
    }
    assert Company.objects.count() == 1


def test_company_create_rejects_invalid_domain():
    with pytest.raises(ValidationError) as excinfo:
        workspace_object_create(
            model=Company, data={"name": "B", "email_domains": ["not a domain"]}
        )
    assert "is not a valid email domain" in errors_of(excinfo)["email_domains"][0]


def test_create_rejects_taken_external_id_naming_the_holder():
    holder = CompanyFactory(external_id="X-1")
    with pytest.raises(ValidationError) as excinfo:
        workspace_object_create(model=Company, data={"name": "Dup", "external_id": "X-1"})
    assert errors_of(excinfo) == {
        "external_id": [f"external_id 'X-1' is already used by company {holder.pk}."]
    }


def test_enduser_create_needs_external_id_or_email():
    company = CompanyFactory()
    with pytest.raises(ValidationError) as excinfo:
        workspace_object_create(
            model=EndUser, data={"company_id": company.pk, "external_id": " ", "email": ""}
        )
    assert errors_of(excinfo) == {
        "non_field_errors": ["An enduser needs an external id or an email."]
    }
    assert not EndUser.objects.exists()


def test_enduser_create_gets_source_api_and_blank_external_id_becomes_null():
    company = CompanyFactory(external_id="ACME")
    user = workspace_object_create(
        model=EndUser,
        data={"company_external_id": "ACME", "external_id": "", "email": "Ana@Acme.com"},
    )
    user.refresh_from_db()
    assert (user.source, user.external_id, user.email_normalized, user.company_id) == (
        "api",
        None,
        "ana@acme.com",
        company.pk,
    )


def test_enduser_email_is_taken_case_insensitively():
    owner = EndUserFactory(email="ana@acme.com", external_id="U-1")
    with pytest.raises(ValidationError) as excinfo:
        workspace_object_create(
            model=EndUser, data={"company_id": owner.company_id, "email": "ANA@acme.com"}
        )
    assert errors_of(excinfo) == {
        "email": [
            f"email 'ANA@acme.com' is already used by enduser {owner.pk} (external_id 'U-1')."
        ]
    }


def test_create_requires_a_company_and_names_unknown_references():
    with pytest.raises(ValidationError) as excinfo:
        workspace_object_create(model=Asset, data={"name": "A"})
    assert errors_of(excinfo) == {
        "company": ["A company is required: give company (its id) or company_external_id."]
    }
    with pytest.raises(ValidationError) as excinfo:
        workspace_object_create(
            model=Asset, data={"name": "A", "company_id": 999, "company_external_id": "NOPE"}
        )
    assert errors_of(excinfo) == {
        "company": ["Company 999 does not exist."],
        "company_external_id": ["No company has external_id 'NOPE'."],
    }


def test_create_rejects_company_and_external_id_naming_different_companies():
    a, b = CompanyFactory(), CompanyFactory()
    with pytest.raises(ValidationError) as excinfo:
        workspace_object_create(
            model=Project,
            data={"name": "P", "company_id": a.pk, "company_external_id": b.external_id},
        )
    assert errors_of(excinfo) == {
        "non_field_errors": [
            f"company {a.pk} and company_external_id '{b.external_id}' name different companies."
        ]
    }


def test_license_rules_are_checked_with_field_names():
    company = CompanyFactory()
    with pytest.raises(ValidationError) as excinfo:
        workspace_object_create(
            model=License,
            data={
                "company_id": company.pk,
                "product": "Pro",
                "mrr": Decimal("-1"),
                "currency": "dollars",
                "start_date": dt.date(2026, 2, 1),
                "end_date": dt.date(2026, 1, 1),
            },
        )
    errors = errors_of(excinfo)
    assert "Use a three-letter ISO 4217 code, e.g. USD." in errors["currency"]
    assert errors["end_date"] == ["A license cannot end before it starts."]
    assert errors["mrr"] == ["MRR cannot be negative."]


def test_update_changes_only_given_fields_and_replaces_domains():
    company = CompanyFactory(name="Old", external_id="C-9")
    CompanyDomain.objects.create(company=company, domain="old.com")
    workspace_object_update(instance=company, data={"email_domains": ["new.com"]})
    company.refresh_from_db()
    assert (company.name, company.external_id, company.email_domains) == ("Old", "C-9", ["new.com"])


def test_update_keeps_own_external_id_and_email():
    user = EndUserFactory(external_id="U-1", email="a@b.com")
    workspace_object_update(
        instance=user, data={"external_id": "U-1", "email": "A@B.com", "title": "CTO"}
    )
    user.refresh_from_db()
    assert (user.title, user.email_normalized) == ("CTO", "a@b.com")


def test_single_writes_announce_companies_and_endusers(changes, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        company = workspace_object_create(model=Company, data={"name": "A"})
        user = workspace_object_create(
            model=EndUser, data={"company_id": company.pk, "external_id": "U-1"}
        )
        workspace_object_update(instance=user, data={"title": "CEO"})
        workspace_object_create(model=Asset, data={"company_id": company.pk, "name": "X"})
    assert changes == [
        (Company, "company", [company.pk]),
        (EndUser, "enduser", [user.pk]),
        (EndUser, "enduser", [user.pk]),
    ]


def test_failed_write_announces_nothing(changes, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(ValidationError):
        workspace_object_create(model=Company, data={"name": ""})
    assert changes == []


# --- bulk upsert --------------------------------------------------------------------------


def test_bulk_upsert_writes_good_items_and_reports_bad_ones_precisely():
    acme = CompanyFactory(external_id="ACME")
    EndUserFactory(company=acme, external_id="U-OWNER", email="taken@acme.com")
    existing = EndUserFactory(company=acme, external_id="U-1", name="Old name", title="CTO")
    result = workspace_objects_bulk_upsert(
        model=EndUser,
        items=items(
            {"external_id": "U-1", "name": "New name"},  # 0: update, title kept
            {"external_id": "U-2", "email": "u2@acme.com", "company_external_id": "ACME"},  # 1
            {"email": "noid@acme.com", "company_external_id": "ACME"},  # 2: no external id
            {"external_id": "U-3", "company_external_id": "NOPE"},  # 3: unknown company
            {"external_id": "U-2", "company_external_id": "ACME"},  # 4: repeated id
            {"external_id": "U-4", "email": "Taken@acme.com", "company_id": acme.pk},  # 5
            {"external_id": "U-5", "email": "u2@ACME.com", "company_id": acme.pk},  # 6: dup email
            {"external_id": "U-6"},  # 7: new, but no company
        ),
    )
    by_index = {r.index: r for r in result.results}
    assert [r.status for r in result.results] == [
        "updated",
        "created",
        "error",
        "error",
        "error",
        "error",
        "error",
        "error",
    ]
    assert by_index[0].id == existing.pk
    assert by_index[2].errors == {"external_id": ["An external_id is required for bulk upsert."]}
    assert by_index[3].errors == {"company_external_id": ["No company has external_id 'NOPE'."]}
    assert by_index[4].errors == {
        "external_id": [
            "external_id 'U-2' appears more than once in this request: first at index 1."
        ]
    }
    owner_pk = EndUser.objects.get(external_id="U-OWNER").pk
    assert by_index[5].errors == {
        "email": [
            f"email 'Taken@acme.com' is already used by enduser {owner_pk} (external_id 'U-OWNER')."
        ]
    }
    assert by_index[6].errors == {
        "email": ["email 'u2@ACME.com' is also given to the item at index 1."]
    }
    assert by_index[7].errors == {
        "company": ["A company is required: give company (its id) or company_external_id."]
    }
    assert (result.count("created"), result.count("updated"), result.count("error")) == (1, 1, 6)

    rows = {u.external_id: u for u in EndUser.objects.all()}
    assert set(rows) == {"U-OWNER", "U-1", "U-2"}
    assert (rows["U-1"].name, rows["U-1"].title) == ("New name", "CTO")
    assert rows["U-2"].pk == by_index[1].id
    assert (rows["U-2"].source, rows["U-2"].email_normalized, rows["U-2"].company_id) == (
        "api",
        "u2@acme.com",
        acme.pk,
    )


def test_bulk_upsert_update_sets_updated_at_and_keeps_created_at():
    company = CompanyFactory(external_id="C-1", name="Old")
    long_ago = timezone.now() - dt.timedelta(days=30)
    Company.objects.filter(pk=company.pk).update(created_at=long_ago, updated_at=long_ago)
    before = timezone.now()
    result = workspace_objects_bulk_upsert(
        model=Company, items=items({"external_id": "C-1", "name": "New"})
    )
    company.refresh_from_db()
    assert result.results[0].status == "updated"
    assert company.name == "New"
    assert company.updated_at >= before
    assert company.created_at == long_ago


def test_bulk_upsert_companies_replaces_domains_and_rejects_taken_ones():
    other = CompanyFactory(name="Other", external_id="O-1")
    CompanyDomain.objects.create(company=other, domain="other.com")
    mine = CompanyFactory(external_id="C-1")
    CompanyDomain.objects.create(company=mine, domain="old.com")
    result = workspace_objects_bulk_upsert(
        model=Company,
        items=items(
            {"external_id": "C-1", "email_domains": ["New.com"]},
            {"external_id": "C-2", "name": "Two", "email_domains": ["other.com"]},
            {"external_id": "C-3", "name": "Three", "email_domains": ["new.com"]},
            {"external_id": "C-4", "name": "Four"},
        ),
    )
    assert [r.status for r in result.results] == ["updated", "error", "error", "created"]
    assert result.results[1].errors == {
        "email_domains": [
            f"The domain 'other.com' already belongs to company 'Other' (id {other.pk})."
        ]
    }
    assert result.results[2].errors == {
        "email_domains": ["The domain 'new.com' is also given to the item at index 0."]
    }
    assert dict(CompanyDomain.objects.values_list("domain", "company__external_id")) == {
        "other.com": "O-1",
        "new.com": "C-1",
    }
    assert set(Company.objects.values_list("external_id", flat=True)) == {"O-1", "C-1", "C-4"}


def test_bulk_upsert_licenses_validates_each_item():
    CompanyFactory(external_id="ACME")
    result = workspace_objects_bulk_upsert(
        model=License,
        items=items(
            {
                "external_id": "L-1",
                "company_external_id": "ACME",
                "product": "Pro",
                "mrr": Decimal("10"),
                "currency": "eur",
                "start_date": dt.date(2026, 1, 1),
            },
            {"external_id": "L-2", "company_external_id": "ACME", "product": "Pro"},
        ),
    )
    assert [r.status for r in result.results] == ["created", "error"]
    assert result.results[1].errors == {"start_date": ["This field cannot be null."]}
    assert License.objects.get().currency == "EUR"


def test_bulk_upsert_input_errors_are_passed_through_and_not_written():
    result = workspace_objects_bulk_upsert(
        model=Company,
        items=[
            BulkItem(data={}, external_id="C-1", errors={"name": ["Not a valid string."]}),
            BulkItem(data={"external_id": "C-2", "name": "Two"}, external_id="C-2"),
        ],
    )
    assert result.results[0].errors == {"name": ["Not a valid string."]}
    assert list(Company.objects.values_list("external_id", flat=True)) == ["C-2"]


def test_bulk_upsert_announces_written_pks_only(changes, django_capture_on_commit_callbacks):
    existing = CompanyFactory(external_id="C-1")
    with django_capture_on_commit_callbacks(execute=True):
        workspace_objects_bulk_upsert(
            model=Company,
            items=items(
                {"external_id": "C-1", "name": "One"},
                {"external_id": "C-2", "name": "Two"},
                {"external_id": "C-3", "name": ""},
            ),
        )
    new_pk = Company.objects.get(external_id="C-2").pk
    assert changes == [(Company, "company", sorted([existing.pk, new_pk]))]


def test_bulk_upsert_of_assets_sends_no_change_signal(changes, django_capture_on_commit_callbacks):
    CompanyFactory(external_id="ACME")
    with django_capture_on_commit_callbacks(execute=True):
        workspace_objects_bulk_upsert(
            model=Asset,
            items=items({"external_id": "A-1", "name": "A", "company_external_id": "ACME"}),
        )
    assert Asset.objects.count() == 1
    assert changes == []


def _enduser_payload(company, start, n):
    return [
        {
            "external_id": f"U-{i}",
            "email": f"u{i}@acme.com",
            "company_external_id": company.external_id,
            "company_id": company.pk,
        }
        for i in range(start, start + n)
    ]


def test_bulk_upsert_query_count_does_not_grow_with_items(django_assert_num_queries):
    company = CompanyFactory(external_id="ACME")
    # savepoint, existing rows, company by id, company by external id, emails,
    # savepoint, one INSERT ... ON CONFLICT, release x2: the same for 10 or 60 items
    # (60 endusers stay within one statement, even under SQLite's 999-variable batches).
    with django_assert_num_queries(9):
        workspace_objects_bulk_upsert(model=EndUser, items=items(*_enduser_payload(company, 0, 10)))
    with django_assert_num_queries(9):
        workspace_objects_bulk_upsert(
            model=EndUser, items=items(*_enduser_payload(company, 10, 60))
        )
    assert EndUser.objects.count() == 70


def test_bulk_upsert_of_many_items_writes_in_chunks_and_updates_on_repeat():
    company = CompanyFactory(external_id="ACME")
    payload = _enduser_payload(company, 0, 1200)
    result = workspace_objects_bulk_upsert(model=EndUser, items=items(*payload))
    assert result.count("created") == 1200
    assert {r.id for r in result.results} == set(EndUser.objects.values_list("pk", flat=True))

    for item in payload:
        item["title"] = "Engineer"
    result = workspace_objects_bulk_upsert(model=EndUser, items=items(*payload))
    assert result.count("updated") == 1200
    assert EndUser.objects.count() == 1200
    assert set(EndUser.objects.values_list("title", flat=True)) == {"Engineer"}
