"""`manage.py bootstrap` (what `make run` calls): login, schedule, connection details, demo."""

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django_celery_beat.models import PeriodicTask

from integrations.models import IntegrationSettings, MetricDefinition
from planhat_segment.models import Company, EndUser
from usage.models import Activity, InboxEvent, MetricValue

pytestmark = pytest.mark.django_db


def _bootstrap(*args: str) -> str:
    out = StringIO()
    call_command("bootstrap", *args, stdout=out)
    return out.getvalue()


def test_bootstrap_prints_login_destination_and_token(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    settings.ADMIN_PASSWORD = ""
    output = _bootstrap()
    integration = IntegrationSettings.objects.get()
    password = (tmp_path / "admin_password").read_text().strip()
    assert f"Login:            admin / {password}" in output
    assert "http://127.0.0.1:8000/dock/segment" in output
    assert integration.tenant_token in output
    assert get_user_model().objects.get(username="admin").check_password(password)
    assert PeriodicTask.objects.filter(task="warehouse_sync.scheduled_sync").exists()
    # Idempotent: the same login, still working, and nothing created twice.
    again = _bootstrap()
    assert f"admin / {password}" in again
    assert get_user_model().objects.count() == 1
    assert IntegrationSettings.objects.count() == 1


def test_bootstrap_takes_password_from_environment(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    settings.ADMIN_USERNAME = "ops"
    settings.ADMIN_PASSWORD = "from-the-environment-42"
    output = _bootstrap()
    assert "ops / from-the-environment-42" in output
    assert get_user_model().objects.get(username="ops").check_password("from-the-environment-42")
    assert not (tmp_path / "admin_password").exists()


def test_bootstrap_demo_loads_a_workspace_processed_by_the_pipeline(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    output = _bootstrap("--demo")
    assert "Demo workspace: 3 companies, 12 endusers" in output
    assert Company.objects.count() == 3
    assert EndUser.objects.count() == 12
    assert MetricDefinition.objects.count() == 3
    # The demo processes what it queued at once (its health scores and alerts need it).
    queued = InboxEvent.objects.count()
    assert queued > 100
    assert InboxEvent.objects.filter(status="processed").count() == queued
    assert Activity.objects.exists()
    assert MetricValue.objects.exists()
    # Loading the demo twice creates nothing twice.
    _bootstrap("--demo")
    assert Company.objects.count() == 3
    assert InboxEvent.objects.count() == queued
