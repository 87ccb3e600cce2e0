"""Notifications against real parts: a local HTTP receiver on 127.0.0.1 (500, 429, slow, 410,
200, redirect), signatures verified on the receiving side, email in Django's outbox and a
refused SMTP connection; outcomes asserted on the delivery and attempt rows."""

import datetime as dt
import socket

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.utils import timezone

from health.alerts import alert_rule_create, alerts_evaluate, webhook_create, webhook_update
from health.alerts.validation import UnsafeUrl, webhook_url_check
from health.models import Alert, Delivery, DeliveryAttempt
from health.models_alerts import AttemptOutcome, Channel, DeliveryStatus
from health.notifications import deliveries_retry, deliveries_send_due

from .alert_helpers import TODAY, company, drop_rule, falling
from .receiver import Receiver

pytestmark = pytest.mark.django_db

SECRET = "s3cret-for-the-tests-0123456789"


@pytest.fixture
def receiver():
    server = Receiver(secret=SECRET).start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _webhook_settings(settings):
    settings.WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    settings.WEBHOOK_TIMEOUT_SECONDS = 0.5
    settings.NOTIFICATIONS_BACKOFF_SECONDS = 30
    settings.NOTIFICATIONS_BACKOFF_MAX_SECONDS = 3600
    settings.NOTIFICATIONS_MAX_ATTEMPTS = 8
    settings.PUBLIC_BASE_URL = "https://planhat.example"


def _hook(receiver, path: str, **kwargs):
    return webhook_create(
        data={"name": path.strip("/"), "url": receiver.url + path, "secret": SECRET, **kwargs}
    )


def _alert_with(webhooks, emails=(), **rule):
    drop_rule(email_recipients=list(emails), **rule).webhooks.set(webhooks)
    falling(company(name="Acme Corp", external_id="ACME"))
    summary = alerts_evaluate(day=TODAY)
    assert summary.opened == 1
    return Alert.objects.get()


def _delivery(webhook) -> Delivery:
    return Delivery.objects.get(webhook=webhook)


def _later(hours: float = 2):
    return lambda: timezone.now() + dt.timedelta(hours=hours)


def test_webhook_answers_become_delivery_and_attempt_rows(receiver):
    paths = ["/ok", "/fail", "/ratelimit", "/slow", "/gone"]
    hooks = {p: _hook(receiver, p) for p in paths}
    alert = _alert_with(hooks.values(), emails=["cs@example.com"])
    assert Delivery.objects.filter(alert=alert).count() == 6
    assert receiver.calls == []  # evaluation only writes rows: nothing was sent yet

    before = timezone.now()
    summary = deliveries_send_due()
    assert (summary.attempted, summary.delivered, summary.retrying, summary.failed) == (6, 2, 3, 1)

    ok = _delivery(hooks["/ok"])
    assert ok.status == DeliveryStatus.DELIVERED
    assert ok.delivered_at is not None
    [attempt] = ok.attempts.all()
    assert (attempt.number, attempt.status_code, attempt.outcome) == (1, 200, "success")
    assert attempt.response_body == '{"ok":true}'

    fail = _delivery(hooks["/fail"])
    assert fail.status == DeliveryStatus.PENDING
    assert fail.last_status_code == 500
    assert fail.attempts.get().outcome == AttemptOutcome.TRANSIENT
    wait = (fail.next_attempt_at - before).total_seconds()
    assert 27 <= wait <= 40  # 30 s backoff ± 10 % jitter, plus the sweep's own time

    limited = _delivery(hooks["/ratelimit"])
    assert limited.status == DeliveryStatus.PENDING
    assert limited.last_status_code == 429
    wait = (limited.next_attempt_at - before).total_seconds()
    assert 119 <= wait <= 130  # Retry-After: 120 honoured

    slow = _delivery(hooks["/slow"])
    assert slow.status == DeliveryStatus.PENDING
    [attempt] = slow.attempts.all()
    assert attempt.status_code is None
    assert attempt.error == "No answer within 0.5 s."
    assert attempt.outcome == AttemptOutcome.TRANSIENT

    gone = _delivery(hooks["/gone"])
    assert gone.status == DeliveryStatus.FAILED
    assert gone.next_attempt_at is None
    assert gone.last_status_code == 410
    assert "HTTP 410" in gone.last_error
    assert "not retried" in gone.last_error
    assert gone.attempts.get().response_body == "this hook was removed"

    email = Delivery.objects.get(alert=alert, channel=Channel.EMAIL)
    assert email.status == DeliveryStatus.DELIVERED
    [message] = mail.outbox
    assert message.to == ["cs@example.com"]
    assert message.subject == "[Alert] Usage dropped: Acme Corp"
    assert "activities down 80.0 %" in message.body
    assert f"https://planhat.example/admin/health/alert/{alert.pk}/change/" in message.body

    # Every call was signed with the shared secret, and the receiver could check it.
    assert {c.path for c in receiver.calls} == set(paths)
    assert all(c.signature_ok for c in receiver.calls)
    body = receiver.calls_to("/ok")[0].json
    assert body["text"].startswith("Usage dropped — Acme Corp (ACME): activities down 80.0 %")
    assert body["alert"]["id"] == alert.pk
    assert body["alert"]["company"] == {
        "id": alert.company_id,
        "name": "Acme Corp",
        "external_id": "ACME",
    }
    assert body["alert"]["facts"]["drop_percent"] == 80.0
    fields = {f["title"]: f["value"] for f in body["attachments"][0]["fields"]}
    assert fields["Company"] == "Acme Corp (ACME)"
    headers = receiver.calls_to("/ok")[0].headers
    assert headers["Content-Type"] == "application/json"
    assert headers["X-Delivery-Id"] == str(ok.pk)
    assert headers["X-Event"] == "alert.opened"

    # Nothing is due right now: a second sweep sends nothing.
    assert deliveries_send_due().attempted == 0


def test_transient_failures_retry_from_the_sweep_until_delivered(receiver):
    hook = _hook(receiver, "/flaky")
    _alert_with([hook])
    deliveries_send_due()
    delivery = _delivery(hook)
    assert delivery.status == DeliveryStatus.PENDING
    summary = deliveries_send_due(now=_later())
    assert summary.delivered == 1
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED
    assert [(a.number, a.status_code) for a in delivery.attempts.all()] == [(1, 500), (2, 200)]
    calls = receiver.calls_to("/flaky")
    assert calls[0].body == calls[1].body  # the same bytes each time
    assert [c.headers["X-Delivery-Attempt"] for c in calls] == ["1", "2"]


def test_gives_up_after_the_maximum_attempts_and_can_be_retried(receiver, settings):
    settings.NOTIFICATIONS_MAX_ATTEMPTS = 2
    hook = _hook(receiver, "/fail")
    _alert_with([hook])
    deliveries_send_due()
    deliveries_send_due(now=_later())
    delivery = _delivery(hook)
    assert delivery.status == DeliveryStatus.FAILED
    assert delivery.last_error.startswith("Gave up after 2 attempts. Last: HTTP 500")
    assert deliveries_send_due(now=_later(10)).attempted == 0
    assert deliveries_retry(delivery_ids=[delivery.pk]) == 1
    deliveries_send_due()
    delivery.refresh_from_db()
    assert delivery.attempt_count == 3
    assert delivery.status == DeliveryStatus.PENDING  # a fresh allowance of attempts


def test_backoff_is_capped(receiver, settings):
    settings.NOTIFICATIONS_BACKOFF_MAX_SECONDS = 60
    hook = _hook(receiver, "/fail")
    _alert_with([hook])
    for hours in (0, 1, 2, 3, 4, 5):
        deliveries_send_due(now=_later(hours))
    delivery = _delivery(hook)
    assert delivery.attempt_count == 6
    wait = (delivery.next_attempt_at - delivery.attempts.last().attempted_at).total_seconds()
    assert wait <= 66  # 30 × 2^5 would be 960 s: capped at 60 (± 10 %)


def test_redirect_is_permanent_and_not_followed(receiver):
    hook = _hook(receiver, "/redirect")
    _alert_with([hook])
    deliveries_send_due()
    delivery = _delivery(hook)
    assert delivery.status == DeliveryStatus.FAILED
    assert "redirects are not followed" in delivery.last_error
    assert "http://10.0.0.1/inside" in delivery.last_error


def test_address_checked_again_at_send_time(receiver, settings):
    hook = _hook(receiver, "/ok")
    _alert_with([hook])
    settings.WEBHOOK_ALLOWED_HOSTS = []  # the operator withdrew the exception
    deliveries_send_due()
    delivery = _delivery(hook)
    assert delivery.status == DeliveryStatus.FAILED
    assert "loopback" in delivery.last_error
    assert receiver.calls == []


def test_disabled_webhook_gets_no_delivery_and_one_disabled_later_fails(receiver):
    on, off = _hook(receiver, "/ok"), _hook(receiver, "/gone", enabled=False)
    _alert_with([on, off])
    assert not Delivery.objects.filter(webhook=off).exists()
    webhook_update(webhook=on, data={"enabled": False})
    deliveries_send_due()
    delivery = _delivery(on)
    assert delivery.status == DeliveryStatus.FAILED
    assert delivery.last_error == "The webhook is disabled."


def test_owner_is_notified_once_with_the_fixed_recipients():
    rule = drop_rule(email_recipients=["cs@example.com", "Owner@acme.example"], notify_owner=True)
    falling(company(owner_email="owner@acme.example"))
    alerts_evaluate(day=TODAY)
    deliveries_send_due()
    assert sorted(m.to[0] for m in mail.outbox) == ["Owner@acme.example", "cs@example.com"]
    assert Delivery.objects.filter(alert__rule=rule, status="delivered").count() == 2


def test_owner_only_when_the_rule_says_so():
    drop_rule(email_recipients=[], notify_owner=False)
    falling(company(owner_email="owner@acme.example"))
    alerts_evaluate(day=TODAY)
    assert Delivery.objects.count() == 0


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_mail_server_refusing_the_connection_is_transient(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = _closed_port()
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_TIMEOUT = 2
    drop_rule(email_recipients=["cs@example.com"])
    falling(company())
    alerts_evaluate(day=TODAY)
    deliveries_send_due()
    delivery = Delivery.objects.get()
    assert delivery.status == DeliveryStatus.PENDING
    assert delivery.next_attempt_at is not None
    attempt = DeliveryAttempt.objects.get()
    assert attempt.outcome == AttemptOutcome.TRANSIENT
    assert attempt.error.startswith("Mail server:")


# --- URL validation ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("ftp://example.com/hook", "Only http:// and https://"),
        ("http://10.1.2.3/hook", "a private address"),
        ("http://192.168.0.10:8080/hook", "a private address"),
        ("http://127.0.0.1:9000/hook", "a loopback address"),
        ("http://localhost/hook", "a loopback address"),
        ("http://[::1]/hook", "a loopback address"),
        ("http://169.254.169.254/latest/meta-data", "a link-local address"),
        ("http://0.0.0.0/hook", "a reserved address"),
        ("https://user:pw@203.0.113.9/hook", "credentials"),
        ("https:///nohost", "no host"),
    ],
)
def test_webhook_url_refusals(settings, url, words):
    settings.WEBHOOK_ALLOWED_HOSTS = []
    with pytest.raises(UnsafeUrl, match=words):
        webhook_url_check(url)
    with pytest.raises(ValidationError) as caught:
        webhook_create(data={"name": "Hook", "url": url, "secret": SECRET})
    assert "url" in caught.value.message_dict


def test_loopback_allowed_only_through_the_setting(settings):
    settings.WEBHOOK_ALLOWED_HOSTS = []
    with pytest.raises(UnsafeUrl):
        webhook_url_check("http://127.0.0.1:8000/hook")
    settings.WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    webhook_url_check("http://127.0.0.1:8000/hook")
    assert webhook_create(
        data={"name": "Local", "url": "http://127.0.0.1:8000/h", "secret": SECRET}
    )


def test_public_address_literal_is_accepted(settings):
    settings.WEBHOOK_ALLOWED_HOSTS = []
    webhook_url_check("https://8.8.8.8/hook")  # a literal: nothing to resolve


def test_webhook_secret_is_required_and_long_enough():
    with pytest.raises(ValidationError) as caught:
        webhook_create(data={"name": "Hook", "url": "http://127.0.0.1/h", "secret": "short"})
    assert "16 characters" in caught.value.message_dict["secret"][0]


def test_rule_with_an_unknown_metric_id_is_refused():
    with pytest.raises(ValidationError) as caught:
        alert_rule_create(
            data={
                "name": "M",
                "kind": "metric_threshold",
                "metric": 999,
                "operator": "lt",
                "threshold": 1,
            }
        )
    assert caught.value.message_dict["metric"] == ["No such metric."]
