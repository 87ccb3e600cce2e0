from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from integrations.models import IntegrationSettings
from integrations.services import (
    integration_ensure,
    integration_update,
    metric_definition_create,
    tenant_token_check,
    tenant_token_rotate,
)

pytestmark = pytest.mark.django_db


def test_integration_ensure_is_idempotent_with_fresh_install_defaults():
    first = integration_ensure()
    second = integration_ensure()
    assert first.pk == second.pk == 1
    assert IntegrationSettings.objects.count() == 1
    assert first.user_tracking_enabled and first.company_metrics_enabled
    assert not first.warehouse_enabled
    assert first.create_endusers and first.match_by_email_domain


def test_tenant_token_has_at_least_32_bytes_of_entropy():
    token = integration_ensure().tenant_token
    assert len(token) >= 43  # 32 bytes in URL-safe base64
    assert integration_ensure().tenant_token == token


def test_rotation_keeps_previous_token_for_grace_period():
    old = integration_ensure().tenant_token
    now = timezone.now()
    row = tenant_token_rotate(now=now)
    assert row.tenant_token != old
    assert tenant_token_check(integration=row, presented=row.tenant_token).valid
    in_grace = tenant_token_check(integration=row, presented=old, now=now + timedelta(hours=71))
    assert in_grace.valid and in_grace.is_previous
    after = tenant_token_check(integration=row, presented=old, now=now + timedelta(hours=73))
    assert not after.valid
    assert not tenant_token_check(integration=row, presented="nope").valid


def test_status_is_on_only_while_warehouse_enabled():
    row = integration_ensure()
    assert not row.is_on and row.status_reason.startswith("OFF")
    integration_update(integration=row, warehouse_enabled=True, write_key="wk")
    assert row.is_on and row.status_reason.startswith("ON")


def test_enabling_warehouse_without_write_key_is_refused():
    row = integration_ensure()
    with pytest.raises(ValidationError) as excinfo:
        integration_update(integration=row, warehouse_enabled=True)
    assert "write_key" in excinfo.value.message_dict


@pytest.mark.parametrize("key", ["active users", "", "nps!", "a b"])
def test_metric_key_must_be_a_trait_name(key):
    with pytest.raises(ValidationError):
        metric_definition_create(key=key)


def test_metric_key_is_unique():
    metric_definition_create(key="active_users")
    with pytest.raises(ValidationError) as excinfo:
        metric_definition_create(key="active_users")
    assert "already exists" in str(excinfo.value)
