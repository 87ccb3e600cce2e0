import pytest
from django.db import IntegrityError, transaction

from planhat_segment.models import Company, EndUser, Tombstone
from tests.factories import CompanyFactory, EndUserFactory, LicenseFactory

pytestmark = pytest.mark.django_db


def test_company_external_id_blank_is_stored_as_null_and_not_unique():
    Company.objects.create(name="A", external_id="")
    Company.objects.create(name="B", external_id="  ")
    assert Company.objects.filter(external_id__isnull=True).count() == 2


def test_company_external_id_is_unique_when_set():
    CompanyFactory(external_id="X-1")
    with pytest.raises(IntegrityError), transaction.atomic():
        CompanyFactory(external_id="X-1")


def test_enduser_email_is_unique_case_insensitively():
    EndUserFactory(email="Peter@Initech.com", external_id=None)
    with pytest.raises(IntegrityError), transaction.atomic():
        EndUserFactory(email="peter@initech.COM", external_id=None)


def test_enduser_needs_external_id_or_email():
    company = CompanyFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        EndUser.objects.create(company=company, external_id="", email="")


def test_deletion_leaves_tombstone_and_frees_external_id():
    company = CompanyFactory(external_id="GONE")
    EndUserFactory(company=company, external_id="U-GONE")
    LicenseFactory(company=company, external_id="L-GONE")
    company.delete()
    tombstones = {(t.model, t.external_id) for t in Tombstone.objects.all()}
    assert tombstones == {("company", "GONE"), ("enduser", "U-GONE"), ("license", "L-GONE")}
    CompanyFactory(external_id="GONE")  # the id is free to reuse


def test_bulk_delete_leaves_tombstones():
    EndUserFactory.create_batch(3)
    EndUser.objects.all().delete()
    assert Tombstone.objects.filter(model="enduser").count() == 3
