"""factory_boy factories for the workspace's objects."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import factory

from planhat_segment.models import Asset, Company, EndUser, License, Project


class CompanyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Company

    name = factory.Sequence(lambda n: f"Company {n}")
    external_id = factory.Sequence(lambda n: f"C-{n}")


class EndUserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = EndUser

    company = factory.SubFactory(CompanyFactory)
    external_id = factory.Sequence(lambda n: f"U-{n}")
    email = factory.Sequence(lambda n: f"user{n}@example.com")
    name = factory.Sequence(lambda n: f"User {n}")


class AssetFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Asset

    company = factory.SubFactory(CompanyFactory)
    name = factory.Sequence(lambda n: f"Asset {n}")
    external_id = factory.Sequence(lambda n: f"A-{n}")


class ProjectFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Project

    company = factory.SubFactory(CompanyFactory)
    name = factory.Sequence(lambda n: f"Project {n}")
    external_id = factory.Sequence(lambda n: f"P-{n}")


class LicenseFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = License

    company = factory.SubFactory(CompanyFactory)
    external_id = factory.Sequence(lambda n: f"L-{n}")
    product = "Pro plan"
    mrr = Decimal("100.00")
    currency = "USD"
    start_date = dt.date(2026, 1, 1)
