"""Fill the production test's database, in the server's own environment, and describe it.

Run as ``python -m tests.production.seed <username> <password>`` with the environment the
server runs with (production settings, the same database). It creates the user the test
signs in as, a workspace with usage (the demo, processed in-process), one push to a local
Segment-compatible sink (a batch it refuses leaves failed objects), a tombstone, a token and a
group, so every admin model has a row to open. It prints JSON: the user, a company and an
enduser for the Trends pages, and per admin model one object's id and what the user may do.
"""

from __future__ import annotations

import json
import sys

import django


def signed_in_user_create(*, username: str, password: str):
    """The user the production test signs in as: staff in the "Integration admin" group.

    Not a superuser, so the pages prove what that role really reaches; the test expects a 403
    wherever the admin denies it (users, groups and the beat schedule stay superusers').
    """
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from planhat_segment.roles import roles_ensure

    roles_ensure()
    user = get_user_model().objects.create_user(
        username=username, email=f"{username}@example.com", password=password, is_staff=True
    )
    user.groups.add(Group.objects.get(name="Integration admin"))
    return user


def workspace_seed() -> dict[str, int]:
    from django.conf import settings
    from django.contrib.auth.models import Group

    from integrations.demo import demo_workspace_load
    from integrations.services import integration_ensure, integration_update
    from planhat_segment.models import Company, EndUser
    from planhat_segment.services.objects import workspace_object_delete
    from planhat_segment.services.schedules import schedules_ensure
    from tests.warehouse_sync.sink import Sink
    from usage.services import inbox_drain
    from warehouse_sync.services import sync_run_execute, sync_run_start

    integration = integration_ensure()
    schedules_ensure()
    demo_workspace_load(days=7)
    inbox_drain(max_seconds=120)

    sink = Sink().start()
    try:
        integration_update(
            integration=integration,
            warehouse_enabled=True,
            write_key=sink.write_key,
            region="custom",
            custom_base_url=sink.url,
        )
        settings.WAREHOUSE_PUSH_MAX_EVENTS_PER_SECOND = 0  # no pacing: a few dozen objects
        sink.script("400", body="rejected by the test sink")  # -> failed objects
        run = sync_run_start(trigger="command", full=True, enqueue=False)
        sync_run_execute(run_id=run.pk)
    finally:
        sink.stop()

    from django.apps import apps

    if apps.is_installed("health"):  # a score row for the health admin's pages
        from health.services import health_scores_recompute

        health_scores_recompute()

    gone = EndUser.objects.order_by("-pk").first()
    workspace_object_delete(instance=gone)  # -> a tombstone
    Group.objects.get_or_create(name="Production test group")
    _beat_schedules_seed()
    company = Company.objects.filter(is_test=False).order_by("pk").first()
    enduser = EndUser.objects.filter(company=company, is_test=False).order_by("pk").first()
    _alerts_seed(company)
    return {"company_id": company.pk, "enduser_id": enduser.pk}


def _alerts_seed(company) -> None:
    """One rule, alert, webhook, delivery and attempt, so their admin pages are opened."""
    from django.utils import timezone

    from health.models_alerts import (
        Alert,
        AlertRule,
        AttemptOutcome,
        Channel,
        Delivery,
        DeliveryAttempt,
        RuleKind,
        Webhook,
    )

    hook = Webhook.objects.create(
        name="Production test hook", url="https://hooks.example.com/x", secret="s" * 32
    )
    rule = AlertRule.objects.create(name="Quiet for a week", kind=RuleKind.INACTIVITY, days=7)
    alert = Alert.objects.create(
        rule=rule, company=company, day=timezone.now().date(), facts={"days_inactive": 9}
    )
    delivery = Delivery.objects.create(
        alert=alert, channel=Channel.WEBHOOK, webhook=hook, target=hook.url
    )
    DeliveryAttempt.objects.create(
        delivery=delivery, number=1, status_code=500, outcome=AttemptOutcome.TRANSIENT
    )


def _beat_schedules_seed() -> None:
    """One of each django-celery-beat schedule kind the push's schedule does not use."""
    from django.utils import timezone
    from django_celery_beat.models import ClockedSchedule, IntervalSchedule, SolarSchedule

    IntervalSchedule.objects.get_or_create(every=10, period=IntervalSchedule.MINUTES)
    SolarSchedule.objects.get_or_create(event="sunrise", latitude=52.37, longitude=4.9)
    ClockedSchedule.objects.get_or_create(clocked_time=timezone.now())


def admin_models_describe(user) -> dict[str, dict]:
    """Per registered model ("app_label.model_name"): one object's quoted id (or None) and
    whether ``user`` may add, change, delete and view it in the admin."""
    from django.contrib import admin
    from django.contrib.admin.utils import quote
    from django.test import RequestFactory
    from rest_framework.authtoken.models import Token

    Token.objects.get_or_create(user=user)
    request = RequestFactory().get("/admin/")
    request.user = user
    described = {}
    for model, model_admin in admin.site._registry.items():
        obj = model_admin.get_queryset(request).order_by("pk").first()
        described[model._meta.label_lower] = {
            "object_id": quote(obj.pk) if obj is not None else None,
            "add": model_admin.has_add_permission(request),
            "change": model_admin.has_change_permission(request, obj),
            "delete": model_admin.has_delete_permission(request, obj),
            "view": model_admin.has_view_or_change_permission(request, obj),
        }
    return described


def main(username: str, password: str) -> None:
    django.setup()
    from planhat_segment.audit import audit_record

    user = signed_in_user_create(username=username, password=password)
    seeded = workspace_seed()
    audit_record(user=user, message="Seeded for the production test")  # -> a log entry
    print(
        json.dumps(
            {
                "username": username,
                **seeded,
                "models": admin_models_describe(user),
            }
        )
    )


if __name__ == "__main__":
    main(*sys.argv[1:3])
