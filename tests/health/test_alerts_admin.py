"""Admin of alerts: the inbox and its actions, rule and webhook forms in plain words, the
evaluate button, deliveries with attempts, a company's alerts on its page; the command."""

import datetime as dt
from io import StringIO

import pytest
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.urls import reverse

from health.alerts import alerts_evaluate, webhook_create
from health.models import Alert, AlertRule, Delivery, HealthScore, Webhook
from health.models_alerts import AlertStatus, Resolution
from health.notifications import deliveries_send_due
from tests.factories import EndUserFactory
from tests.usage.rollup_factories import usage_add
from usage.rollup_selectors import utc_today

from .alert_helpers import TODAY, company, drop_rule, falling

pytestmark = pytest.mark.django_db

SECRET = "admin-test-secret-0123456789"


@pytest.fixture(autouse=True)
def _local_hooks(settings):
    settings.WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]


@pytest.fixture
def alert():
    drop_rule(email_recipients=["cs@example.com"])
    c = company(name="Acme Corp")
    falling(c)
    HealthScore.objects.create(company=c, day=TODAY, score=2.5, band="red")
    alerts_evaluate(day=TODAY)
    return Alert.objects.get()


def _staff(django_user_model, client, *codenames):
    user = django_user_model.objects.create_user("staff-" + "-".join(codenames), is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    client.force_login(user)
    return user


def test_inbox_lists_and_filters(admin_client_logged_in, alert):
    url = reverse("admin:health_alert_changelist")
    page = admin_client_logged_in.get(url)
    assert page.status_code == 200
    text = page.content.decode()
    assert "Acme Corp" in text
    assert "activities down 80.0 %" in text
    for query, shown in (
        ({"status__exact": "open"}, True),
        ({"status__exact": "resolved"}, False),
        ({"band": "red"}, True),
        ({"band": "green"}, False),
        ({"company": alert.company_id}, True),
        ({"rule__id__exact": alert.rule_id}, True),
    ):
        answer = admin_client_logged_in.get(url, query)
        assert answer.status_code == 200, query
        assert ("activities down 80.0 %" in answer.content.decode()) is shown, query


def test_acknowledge_and_resolve_buttons(admin_client_logged_in, alert, staff_user):
    page = admin_client_logged_in.get(reverse("admin:health_alert_change", args=[alert.pk]))
    text = page.content.decode()
    assert 'id="alert-acknowledge"' in text
    assert "drop_percent" in text  # the figures that raised it
    assert "cs@example.com" in text  # its deliveries
    answer = admin_client_logged_in.post(reverse("admin:health_alert_acknowledge", args=[alert.pk]))
    assert answer.status_code == 302
    alert.refresh_from_db()
    assert alert.status == AlertStatus.ACKNOWLEDGED
    assert alert.acknowledged_by == staff_user
    admin_client_logged_in.post(
        reverse("admin:health_alert_resolve", args=[alert.pk]), {"note": "Spoke to them"}
    )
    alert.refresh_from_db()
    assert alert.status == AlertStatus.RESOLVED
    assert alert.resolution_note == "Spoke to them"
    assert alert.resolution == Resolution.PERSON


def test_viewer_sees_the_inbox_but_cannot_act(django_user_model, client, alert):
    _staff(django_user_model, client, "view_alert")
    assert client.get(reverse("admin:health_alert_changelist")).status_code == 200
    page = client.get(reverse("admin:health_alert_change", args=[alert.pk])).content.decode()
    assert 'id="alert-acknowledge"' not in page
    answer = client.post(reverse("admin:health_alert_acknowledge", args=[alert.pk]))
    assert answer.status_code == 403
    alert.refresh_from_db()
    assert alert.status == AlertStatus.OPEN


def test_bulk_actions(django_user_model, client, alert):
    _staff(django_user_model, client, "view_alert", "acknowledge_alert", "resolve_alert")
    url = reverse("admin:health_alert_changelist")
    client.post(url, {"action": "acknowledge_selected", "_selected_action": [alert.pk]})
    alert.refresh_from_db()
    assert alert.status == AlertStatus.ACKNOWLEDGED
    client.post(url, {"action": "resolve_selected", "_selected_action": [alert.pk]})
    alert.refresh_from_db()
    assert alert.status == AlertStatus.RESOLVED


def _rule_form(**values):
    data = {
        "name": "Rule",
        "kind": "usage_drop",
        "enabled": "on",
        "cooldown_hours": "24",
        "drop_percent": "",
        "window_days": "",
        "baseline_periods": "",
        "action": "",
        "days": "",
        "threshold": "",
        "metric": "",
        "operator": "",
        "to_band": "",
        "min_mrr": "",
        "email_recipients": "",
    }
    data.update(values)
    return data


def test_rule_form_names_the_missing_parameter_in_plain_words(admin_client_logged_in):
    url = reverse("admin:health_alertrule_add")
    page = admin_client_logged_in.post(url, _rule_form(window_days="7", baseline_periods="4"))
    assert page.status_code == 200
    errors = page.context["adminform"].form.errors
    assert "Required for a 'usage dropped' rule" in errors["drop_percent"][0]
    page = admin_client_logged_in.post(
        url, _rule_form(kind="inactivity", days="7", window_days="30")
    )
    assert (
        "Means nothing for a 'no activity' rule"
        in page.context["adminform"].form.errors["window_days"][0]
    )
    assert not AlertRule.objects.exists()
    answer = admin_client_logged_in.post(
        url,
        _rule_form(
            drop_percent="40",
            window_days="7",
            baseline_periods="4",
            email_recipients="cs@example.com\nops@example.com, cs@example.com",
        ),
    )
    assert answer.status_code == 302
    rule = AlertRule.objects.get()
    assert rule.email_recipients == ["cs@example.com", "ops@example.com"]


def test_rule_form_disabling_resolves_alerts(admin_client_logged_in, alert):
    rule = alert.rule
    url = reverse("admin:health_alertrule_change", args=[rule.pk])
    values = _rule_form(
        name=rule.name,
        drop_percent="50",
        window_days="7",
        baseline_periods="4",
        email_recipients="cs@example.com",
    )
    values.pop("enabled")
    assert admin_client_logged_in.post(url, values).status_code == 302
    alert.refresh_from_db()
    assert alert.resolution == Resolution.RULE_DISABLED


def test_evaluate_button(admin_client_logged_in):
    drop_rule()
    person = EndUserFactory(company=company())
    today = utc_today()  # the button evaluates today: usage relative to the real day
    for n in range(1, 40):
        usage_add(enduser=person, day=today - dt.timedelta(days=n), count=2 if n <= 7 else 10)
    changelist = admin_client_logged_in.get(reverse("admin:health_alertrule_changelist"))
    assert 'id="alert-rules-evaluate"' in changelist.content.decode()
    answer = admin_client_logged_in.post(reverse("admin:health_alertrule_evaluate"), follow=True)
    assert answer.status_code == 200
    assert Alert.objects.count() == 1
    assert "1 alerts opened" in answer.content.decode()


def test_evaluate_button_needs_its_permission(django_user_model, client):
    _staff(django_user_model, client, "view_alertrule")
    page = client.get(reverse("admin:health_alertrule_changelist")).content.decode()
    assert 'id="alert-rules-evaluate"' not in page
    assert client.post(reverse("admin:health_alertrule_evaluate")).status_code == 403


def test_webhook_form(admin_client_logged_in):
    url = reverse("admin:health_webhook_add")
    page = admin_client_logged_in.post(
        url, {"name": "Internal", "url": "http://10.0.0.5/hook", "secret": SECRET, "enabled": "on"}
    )
    assert "a private address" in page.context["adminform"].form.errors["url"][0]
    page = admin_client_logged_in.post(
        url, {"name": "No secret", "url": "http://127.0.0.1/hook", "secret": "", "enabled": "on"}
    )
    assert "at least 16 characters" in page.context["adminform"].form.errors["secret"][0]
    answer = admin_client_logged_in.post(
        url, {"name": "Slack", "url": "http://127.0.0.1/hook", "secret": SECRET, "enabled": "on"}
    )
    assert answer.status_code == 302
    hook = Webhook.objects.get()
    change = reverse("admin:health_webhook_change", args=[hook.pk])
    assert SECRET not in admin_client_logged_in.get(change).content.decode()
    admin_client_logged_in.post(
        change, {"name": "Slack #cs", "url": "http://127.0.0.1/hook", "secret": "", "enabled": "on"}
    )
    hook.refresh_from_db()
    assert (hook.name, hook.secret) == ("Slack #cs", SECRET)


def test_delivery_pages_show_attempts(admin_client_logged_in, alert):
    deliveries_send_due()
    delivery = Delivery.objects.get()
    listing = admin_client_logged_in.get(reverse("admin:health_delivery_changelist"))
    assert "cs@example.com" in listing.content.decode()
    page = admin_client_logged_in.get(reverse("admin:health_delivery_change", args=[delivery.pk]))
    text = page.content.decode()
    assert page.status_code == 200
    assert "Delivered" in text
    assert "attempts" in text.lower()


def test_company_page_shows_its_alerts(admin_client_logged_in, alert):
    page = admin_client_logged_in.get(
        reverse("admin:planhat_segment_company_change", args=[alert.company_id])
    )
    text = page.content.decode()
    assert 'id="company-alerts"' in text
    assert "activities down 80.0 %" in text
    assert f"?company={alert.company_id}" in text


def test_company_owner_email_in_the_admin(admin_client_logged_in):
    c = company(name="Acme")
    page = admin_client_logged_in.get(reverse("admin:planhat_segment_company_change", args=[c.pk]))
    assert 'name="owner_email"' in page.content.decode()


def test_command_prints_what_it_did(settings):
    settings.WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    rule = drop_rule()
    rule.webhooks.add(
        webhook_create(data={"name": "Hook", "url": "http://127.0.0.1:9/h", "secret": SECRET})
    )
    falling(company())
    out = StringIO()
    call_command("alerts_evaluate", "--day", TODAY.isoformat(), stdout=out)
    text = out.getvalue()
    assert f"Alert evaluation for {TODAY}: 1 enabled rules, 1 alerts opened, 0 resolved." in text
    assert "1 notifications queued" in text
    out = StringIO()
    call_command("alerts_evaluate", "--day", TODAY.isoformat(), "--rule", "Usage drop", stdout=out)
    assert "0 alerts opened" in out.getvalue()
    assert "1 still active" in out.getvalue()
    with pytest.raises(Exception, match="No alert rule"):
        call_command("alerts_evaluate", "--rule", "nope")


def test_custom_admin_views_declare_their_permissions():
    from django.urls import resolve

    for name, args, needed in (
        ("admin:health_alert_acknowledge", [1], ("health.acknowledge_alert",)),
        ("admin:health_alert_resolve", [1], ("health.resolve_alert",)),
        ("admin:health_alertrule_evaluate", [], ("health.evaluate_alertrule",)),
    ):
        callback = resolve(reverse(name, args=args)).func
        assert callback.required_permissions == {"POST": needed}
