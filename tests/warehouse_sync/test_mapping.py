"""What arrives at Segment: the documented mapping and identity of every model (DESIGN §4.3)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from planhat_segment.models import Company, CompanyDomain, EndUser, License
from tests.factories import (
    AssetFactory,
    CompanyFactory,
    EndUserFactory,
    LicenseFactory,
    ProjectFactory,
)
from warehouse_sync.models import SyncStatus
from warehouse_sync.services import mapping

from .conftest import push

pytestmark = pytest.mark.django_db


def _iso(value) -> str:
    return value.isoformat()


@pytest.fixture
def workspace():
    acme = CompanyFactory(name="Acme", external_id="acme-1", custom={"tier": "gold", "seats": 12})
    CompanyDomain.objects.create(company=acme, domain="acme.com")
    CompanyDomain.objects.create(company=acme, domain="acme.io")
    LicenseFactory(company=acme, mrr=Decimal("100.50"), currency="USD")
    LicenseFactory(company=acme, mrr=Decimal("50.25"), currency="USD")
    LicenseFactory(company=acme, mrr=Decimal("80.00"), currency="EUR")
    LicenseFactory(company=acme, mrr=Decimal("999.00"), status=License.Status.CHURNED)
    alice = EndUserFactory(
        company=acme,
        external_id="u-alice",
        email="alice@acme.com",
        name="Alice Smith",
        first_name="Alice",
        last_name="Smith",
        title="CTO",
        custom={"plan": "pro"},
    )
    bob = EndUserFactory(company=acme, external_id=None, email="bob@acme.com", name="Bob")
    EndUserFactory(company=acme, is_test=True)  # test data: left out, not counted
    asset = AssetFactory(company=acme, name="Main site", custom={"region": "eu"})
    project = ProjectFactory(company=acme, name="Rollout")
    no_ext = CompanyFactory(name="No external id", external_id=None)
    test_co = CompanyFactory(name="Test Co", is_test=True)
    EndUserFactory(company=test_co)  # an enduser of a test company is test data too
    return {
        "acme": acme,
        "alice": alice,
        "bob": bob,
        "asset": asset,
        "project": project,
        "no_ext": no_ext,
        "test_co": test_co,
    }


def test_push_company_group_has_documented_traits(warehouse, sink, workspace):
    run = push()
    assert run.status == SyncStatus.SUCCEEDED, run.error
    acme = Company.objects.get(pk=workspace["acme"].pk)
    [group] = sink.by_anonymous_id()[f"planhat:company:{acme.pk}"]
    assert group["type"] == "group"
    assert group["groupId"] == "acme-1"
    assert group["timestamp"] == _iso(acme.updated_at)
    assert group["traits"] == {
        "name": "Acme",
        "external_id": "acme-1",
        "domains": ["acme.com", "acme.io"],
        # Active licenses only (the churned 999 is left out), summed per currency.
        "mrr": {"EUR": 80.0, "USD": 150.75},
        "arr": {"EUR": 960.0, "USD": 1809.0},
        "license_count": 4,
        "enduser_count": 2,
        # From health's score row; none yet, so the empty values (types never change).
        "health_score": None,
        "health_band": None,
        "last_activity_at": None,
        "active_endusers_30d": 0,
        "activity_change_30d": None,
        "created_at": _iso(acme.created_at),
        "custom": {"tier": "gold", "seats": 12},
    }
    assert group["messageId"].startswith("planhat-")
    assert len(group["messageId"]) <= 100


def test_push_company_without_external_id_uses_planhat_group_id(warehouse, sink, workspace):
    push()
    pk = workspace["no_ext"].pk
    [group] = sink.by_anonymous_id()[f"planhat:company:{pk}"]
    assert group["groupId"] == f"planhat:company:{pk}"
    assert group["traits"]["mrr"] == {}
    assert group["traits"]["license_count"] == 0


def test_push_enduser_identify_has_user_id_traits_and_group_context(warehouse, sink, workspace):
    push()
    alice = EndUser.objects.get(pk=workspace["alice"].pk)
    [identify] = sink.by_anonymous_id()[f"planhat:enduser:{alice.pk}"]
    assert identify["type"] == "identify"
    assert identify["userId"] == "u-alice"
    assert identify["context"] == {"groupId": "acme-1"}
    assert identify["timestamp"] == _iso(alice.updated_at)
    assert identify["traits"] == {
        "email": "alice@acme.com",
        "name": "Alice Smith",
        "first_name": "Alice",
        "last_name": "Smith",
        "title": "CTO",
        "company_external_id": "acme-1",
        "created_at": _iso(alice.created_at),
        "custom": {"plan": "pro"},
    }
    # Without an external id: anonymous only.
    [bob] = sink.by_anonymous_id()[f"planhat:enduser:{workspace['bob'].pk}"]
    assert "userId" not in bob
    assert bob["traits"]["email"] == "bob@acme.com"


def test_push_license_track_has_revenue_properties(warehouse, sink, workspace):
    push()
    licenses = sink.of_type("track", "License Synced")
    assert len(licenses) == 4
    lic = License.objects.get(company=workspace["acme"], currency="EUR")
    [track] = sink.by_anonymous_id()[f"planhat:license:{lic.pk}"]
    assert track["context"] == {"groupId": "acme-1"}
    assert track["timestamp"] == _iso(lic.updated_at)
    assert track["properties"] == {
        "external_id": lic.external_id,
        "product": "Pro plan",
        "mrr": 80.0,
        "arr": 960.0,
        "currency": "EUR",
        "start_date": "2026-01-01",
        "end_date": None,
        "status": "active",
        "company_external_id": "acme-1",
        "created_at": _iso(lic.created_at),
        "custom": {},
    }


def test_push_asset_and_project_tracks(warehouse, sink, workspace):
    push()
    [asset] = sink.of_type("track", "Asset Synced")
    [project] = sink.of_type("track", "Project Synced")
    assert asset["anonymousId"] == f"planhat:asset:{workspace['asset'].pk}"
    assert asset["context"] == {"groupId": "acme-1"}
    assert asset["properties"]["name"] == "Main site"
    assert asset["properties"]["custom"] == {"region": "eu"}
    assert asset["properties"]["company_external_id"] == "acme-1"
    assert project["anonymousId"] == f"planhat:project:{workspace['project'].pk}"
    assert project["properties"]["name"] == "Rollout"


def test_push_leaves_test_data_out(warehouse, sink, workspace):
    run = push()
    ids = set(sink.by_anonymous_id())
    assert f"planhat:company:{workspace['test_co'].pk}" not in ids
    test_users = EndUser.objects.filter(is_test=True) | EndUser.objects.filter(
        company__is_test=True
    )
    assert test_users.count() == 2
    for user in test_users:
        assert f"planhat:enduser:{user.pk}" not in ids
    # Every message is accounted for, and the run's table says the same as the sink.
    assert run.objects_synced == len(sink.messages) == 2 + 2 + 4 + 1 + 1
    per_model = {r.model: r.objects_synced for r in run.results.all()}
    assert per_model == {"company": 2, "enduser": 2, "license": 4, "asset": 1, "project": 1}
    for model, count in per_model.items():
        assert sum(1 for i in ids if i.startswith(f"planhat:{model}:")) == count


def test_push_deleted_enduser_sends_one_deleted_track(warehouse, sink, workspace):
    push()
    alice = workspace["alice"]
    alice_pk = alice.pk
    EndUser.objects.get(pk=alice_pk).delete()
    sink.reset()
    run = push()
    deleted = sink.of_type("track", "EndUser Deleted")
    assert len(deleted) == 1
    [track] = deleted
    assert track["anonymousId"] == f"planhat:enduser:{alice_pk}"
    assert track["userId"] == "u-alice"
    assert track["context"] == {"groupId": "acme-1"}
    assert track["properties"]["external_id"] == "u-alice"
    assert track["properties"]["company_external_id"] == "acme-1"
    assert run.results.get(model="enduser").objects_synced == 1
    # The deletion changed the company's enduser_count: its group is re-sent too.
    [group] = sink.of_type("group")
    assert group["traits"]["enduser_count"] == 1
    sink.reset()
    push()
    assert sink.of_type("track", "EndUser Deleted") == []


def test_message_id_is_stable_for_unchanged_and_new_for_changed(warehouse, sink, workspace):
    push(full=True)
    first = {m["anonymousId"]: m["messageId"] for m in sink.messages}
    sink.reset()
    Company.objects.filter(pk=workspace["acme"].pk).update(name="Acme Inc")  # no updated_at
    push(full=True)
    second = {m["anonymousId"]: m["messageId"] for m in sink.messages}
    acme_id = f"planhat:company:{workspace['acme'].pk}"
    assert second[acme_id] != first[acme_id]
    unchanged = set(first) - {acme_id}
    assert {k: second[k] for k in unchanged} == {k: first[k] for k in unchanged}


def test_company_chunk_mapping_uses_constant_queries(monkeypatch):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from warehouse_sync.services import fastread

    companies = Company.objects.bulk_create(
        [Company(name=f"Bulk {i}", external_id=f"B-{i}") for i in range(40)]
    )
    EndUser.objects.bulk_create(
        [
            EndUser(company=c, external_id=f"BU-{c.pk}", email_normalized=f"b{c.pk}@x.com")
            for c in companies
        ]
    )
    License.objects.bulk_create(
        [
            License(company=c, product="P", mrr=Decimal("10"), start_date=dt.date(2026, 1, 1))
            for c in companies
        ]
    )
    rows = list(Company.objects.order_by("pk").values_list(*mapping.OBJECT_FIELDS["company"]))
    # Domains, licenses (grouped) and enduser counts for the whole chunk: one UNION query on
    # PostgreSQL (through fastread's own cursor, which Django does not see), three ORM queries
    # elsewhere; plus one ORM query for the chunk's health traits; never one per company.
    raw = []
    fetch = fastread.fetch
    monkeypatch.setattr(fastread, "fetch", lambda *a, **kw: raw.append(a) or fetch(*a, **kw))
    with CaptureQueriesContext(connection) as orm:
        mapped = list(mapping.chunk_map("company", rows))
    assert (len(raw), len(orm)) == ((1, 1) if fastread.available() else (0, 4))
    assert len(mapped) == 40


@pytest.fixture
def varied_companies():
    """Companies with domains (mixed case), licenses in several currencies and statuses, and
    endusers (some test data): what the derived traits are made of."""
    companies = Company.objects.bulk_create(
        [Company(name=f"Var {i}", external_id=f"V-{i}" if i % 4 else None) for i in range(30)]
    )
    CompanyDomain.objects.bulk_create(
        [
            CompanyDomain(company=c, domain=f"{prefix}{c.pk}.example")
            for c in companies[::3]
            for prefix in ("b-", "A-", "a")
        ]
    )
    License.objects.bulk_create(
        [
            License(
                company=c,
                product="P",
                mrr=Decimal(f"{i}.{i % 100:02d}"),
                currency=("USD", "EUR", "GBP")[i % 3],
                status=License.Status.ACTIVE if i % 5 else License.Status.CHURNED,
                start_date=dt.date(2026, 1, 1),
            )
            for i, c in enumerate(companies * 3)
        ]
    )
    EndUser.objects.bulk_create(
        [
            EndUser(
                company=c,
                external_id=f"VU-{c.pk}-{j}",
                email_normalized=f"v{c.pk}-{j}@x.com",
                is_test=j == 2,
                custom={"z": j, "a": [1.5, None]},
            )
            for c in companies
            for j in range(3)
        ]
    )
    return [c.pk for c in companies]


def test_chunk_map_is_the_same_for_the_push_reads_and_the_orm(varied_companies):
    """The push reads small keyset chunks (a raw binary cursor on PostgreSQL); mapped, they
    give the bytes of one chunk read through the ORM's ``values_list``."""
    from warehouse_sync.services import changes

    for model in ("company", "enduser", "license"):
        rows = list(
            changes.objects_changed(model=model, since=None)
            .order_by("pk")
            .values_list(*mapping.OBJECT_FIELDS[model])
        )
        expected = [(m.model, m.pk, m.message) for m in mapping.chunk_map(model, rows)]
        got = [
            (m.model, m.pk, m.message)
            for chunk in changes.object_chunks(model=model, since=None, size=7)
            for m in mapping.chunk_map(model, chunk)
        ]
        assert got == expected, model
        assert len(got) == len(rows) > 0


@pytest.mark.postgres
def test_company_aggregates_in_one_query_match_the_orm_on_postgres(varied_companies):
    pks = varied_companies
    for chunk in (pks[:10], pks[::3], [pks[0], pks[-1]]):  # dense, sparse, very sparse
        ours = mapping._company_aggregates_pg(chunk)
        orm = mapping._company_aggregates(chunk)
        for got, expected in zip(ours, orm, strict=True):
            # Rows of companies outside a dense chunk may be read: only the chunk's count.
            assert {pk: got.get(pk) for pk in chunk} == {pk: expected.get(pk) for pk in chunk}


def test_fastread_json_loads_keeps_what_json_loads_returns():
    import json

    from warehouse_sync.services import fastread

    for doc in (
        b"{}",
        b'{"b": 1, "a": [1.5, null, "\\u00e9"], "n": -9223372036854775808}',
        b'{"big": 123456789012345678901234567890}',  # orjson would make this a float
        b'{"inf": 1e400}',  # orjson refuses it
    ):
        got = fastread.json_loads(doc)
        assert got == json.loads(doc)
        assert [type(v) for v in got.values()] == [type(v) for v in json.loads(doc).values()]
