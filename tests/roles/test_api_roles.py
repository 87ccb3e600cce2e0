"""Each role on the REST API: the answer and what the database holds afterwards."""

from __future__ import annotations

import uuid

import pytest

from integrations.models import IntegrationSettings, MetricDefinition
from integrations.services import integration_update
from planhat_segment.models import Company
from usage.models import InboxEvent

pytestmark = pytest.mark.django_db

VIEWER, CS, ADMIN = "Viewer", "CS manager", "Integration admin"
ALL = (None, VIEWER, CS, ADMIN)


def _status(allowed_roles: tuple, ok: int) -> dict:
    return {role: ok if role in allowed_roles else 403 for role in ALL}


READS = (VIEWER, CS, ADMIN)
EDITS = (CS, ADMIN)
MANAGES = (ADMIN,)

# (method, path, body, role → status). "{company}" is an existing company's id.
TABLE = [
    ("get", "/api/companies/", None, _status(READS, 200)),
    ("get", "/api/companies/{company}/", None, _status(READS, 200)),
    ("post", "/api/companies/", {"name": "New", "external_id": "NEW"}, _status(EDITS, 201)),
    ("patch", "/api/companies/{company}/", {"name": "Renamed"}, _status(EDITS, 200)),
    (
        "post",
        "/api/companies/bulk_upsert/",
        [{"external_id": "BULK-1", "name": "Bulk"}],
        _status(EDITS, 200),
    ),
    ("delete", "/api/companies/{company}/", None, _status(EDITS, 204)),
    ("get", "/api/endusers/", None, _status(READS, 200)),
    ("get", "/api/licenses/", None, _status(READS, 200)),
    ("get", "/api/activities/", None, _status(READS, 200)),
    ("get", "/api/metric-values/", None, _status(READS, 200)),
    ("get", "/api/events/", None, _status(READS, 200)),
    ("get", "/api/sync-runs/", None, _status(READS, 200)),
    ("get", "/api/integration/", None, _status(READS, 200)),
    ("patch", "/api/integration/", {"create_endusers": False}, _status(MANAGES, 200)),
    ("post", "/api/integration/rotate-token/", None, _status(MANAGES, 200)),
    ("get", "/api/metric-definitions/", None, _status(READS, 200)),
    ("post", "/api/metric-definitions/", {"key": "seats"}, _status(MANAGES, 201)),
]


def _snapshot() -> tuple:
    row = IntegrationSettings.objects.get()
    return (
        sorted(Company.objects.values_list("external_id", "name")),
        (row.tenant_token, row.create_endusers),
        sorted(MetricDefinition.objects.values_list("key", flat=True)),
    )


@pytest.mark.parametrize(
    ("method", "path", "body", "expected"), TABLE, ids=[f"{m} {p}" for m, p, _, _ in TABLE]
)
@pytest.mark.parametrize("role", ALL, ids=[str(r) for r in ALL])
def test_api_by_role(api_client_in_role, integration, method, path, body, expected, role):
    company = Company.objects.create(name="Acme", external_id="ACME")
    before = _snapshot()
    client = api_client_in_role(role)

    answer = getattr(client, method)(path.format(company=company.pk), body, format="json")

    assert answer.status_code == expected[role], answer.content
    if answer.status_code == 403 or method == "get":
        assert _snapshot() == before  # refused (or a read): nothing written
    else:
        assert _snapshot() != before


@pytest.mark.parametrize(("role", "sees_secrets"), [(VIEWER, False), (CS, False), (ADMIN, True)])
def test_settings_show_the_token_and_write_key_only_to_managers(
    api_client_in_role, integration, role, sees_secrets
):
    row = integration_update(integration=integration, write_key="wk_live_abcdefgh1234")
    body = api_client_in_role(role).get("/api/integration/").json()
    assert (body["tenant_token"] == row.tenant_token) is sees_secrets
    assert body["write_key_masked"] == ("••••1234" if sees_secrets else "")
    if not sees_secrets:
        assert body["tenant_token"] == "••••" + row.tenant_token[-4:]
    assert body["write_key_set"] is True  # whether it is set is no secret
    assert "write_key" not in body and "shared_secret" not in body


@pytest.mark.parametrize(("role", "sees_payload"), [(VIEWER, False), (CS, False), (ADMIN, True)])
def test_events_carry_raw_payloads_only_for_those_allowed(api_client_in_role, role, sees_payload):
    InboxEvent.objects.create(
        message_id="m-1",
        request_id=uuid.uuid4(),
        type="identify",
        payload={"type": "identify", "traits": {"email": "ana@acme.com"}},
    )
    results = api_client_in_role(role).get("/api/events/").json()["results"]
    assert [r["message_id"] for r in results] == ["m-1"]
    assert ("payload" in results[0]) is sees_payload
    if sees_payload:
        assert results[0]["payload"]["traits"]["email"] == "ana@acme.com"


def test_schema_needs_a_signed_in_user(api_client_in_role):
    from rest_framework.test import APIClient

    assert APIClient().get("/api/schema/").status_code == 401
    assert api_client_in_role(None).get("/api/schema/", {"format": "json"}).status_code == 200


def test_inactive_user_with_a_role_is_refused(api_client_in_role):
    client = api_client_in_role(ADMIN)
    client.user.is_active = False
    client.user.save()
    assert client.get("/api/companies/").status_code in (401, 403)
