"""`make run DEMO=1`: rising, steady and falling companies score green, amber and red, and the
falling one has an open usage-drop alert whose email and webhook deliveries went out."""

from io import StringIO

import pytest
from django.core import mail
from django.core.management import call_command

from health.demo import DEMO_RECIPIENT, DEMO_RULE, DEMO_WEBHOOK, demo_health_show
from health.models import Alert, Delivery, HealthScore, Webhook
from health.models_alerts import AlertStatus, Channel, DeliveryStatus
from tests.usage.rollup_factories import rollups_recount

pytestmark = pytest.mark.django_db


def _bootstrap() -> str:
    out = StringIO()
    call_command("bootstrap", "--demo", stdout=out)
    return out.getvalue()


def test_demo_shows_three_bands_and_an_open_usage_drop_alert(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    settings.WEBHOOK_ALLOWED_HOSTS = []  # the demo allows its own receiver, for itself only
    output = _bootstrap()
    # Processing maintains the rollups the scores read; recounting them from the activities
    # changes nothing where it does, and stands in for it on a branch where it does not yet.
    # The demo's health part then runs again, idempotently.
    rollups_recount()
    output += "\n".join(demo_health_show())
    bands = {s.company.external_id: s.band for s in HealthScore.objects.select_related("company")}
    assert bands == {"ACME-001": "green", "GLOBEX": "amber", "INITECH": "red"}

    [alert] = Alert.objects.filter(rule__name=DEMO_RULE)
    assert alert.company.external_id == "INITECH"
    assert alert.status == AlertStatus.OPEN
    assert alert.facts["drop_percent"] == 100.0

    deliveries = {(d.channel, d.target): d for d in Delivery.objects.filter(alert=alert)}
    assert set(deliveries) == {
        (Channel.EMAIL, DEMO_RECIPIENT),
        (Channel.EMAIL, "owner@initech.example"),
        (Channel.WEBHOOK, DEMO_WEBHOOK),
    }
    assert all(d.status == DeliveryStatus.DELIVERED for d in deliveries.values())
    webhook_attempt = deliveries[(Channel.WEBHOOK, DEMO_WEBHOOK)].attempts.get()
    assert webhook_attempt.status_code == 200
    assert webhook_attempt.response_body == "demo receiver: signature verified"
    assert sorted(m.to[0] for m in mail.outbox) == [DEMO_RECIPIENT, "owner@initech.example"]
    assert "signature verified" in output
    assert "1 alerts opened" in output
    # Nothing listens at the demo receiver's address any more: it is disabled, and the
    # operator's setting is as it was.
    assert Webhook.objects.get(name=DEMO_WEBHOOK).enabled is False
    assert settings.WEBHOOK_ALLOWED_HOSTS == []

    # Twice: nothing new.
    _bootstrap()
    assert Alert.objects.count() == 1
    assert Delivery.objects.count() == 3
    assert len(mail.outbox) == 2
