"""roles_ensure: the three groups, what each holds, re-made on migrate and flush."""

from __future__ import annotations

import logging

import pytest
from django.apps import apps
from django.contrib.auth.models import Group, Permission
from django.core.management import call_command
from django.core.management.sql import emit_post_migrate_signal

from planhat_segment import roles
from planhat_segment.roles import (
    CS_MANAGER,
    INTEGRATION_ADMIN,
    VIEWER,
    Role,
    roles_ensure,
    roles_on_post_migrate,
)

pytestmark = pytest.mark.django_db


def held(name: str) -> set[str]:
    return {
        f"{app}.{codename}"
        for app, codename in Group.objects.get(name=name).permissions.values_list(
            "content_type__app_label", "codename"
        )
    }


# What each role may and may not do, in Django's permission names (README's roles table).
ALLOWED = {
    VIEWER: {
        "planhat_segment.view_company",
        "planhat_segment.view_enduser",
        "planhat_segment.view_license",
        "usage.view_activity",
        "usage.view_metricvalue",
        "usage.view_inboxevent",
        "integrations.view_integrationsettings",
        "integrations.view_metricdefinition",
        "warehouse_sync.view_syncrun",
    },
    CS_MANAGER: {
        "planhat_segment.change_company",
        "planhat_segment.add_enduser",
        "planhat_segment.delete_license",
        "planhat_segment.export_csv",
        "usage.assign_users",
    },
    INTEGRATION_ADMIN: {
        "integrations.change_integrationsettings",
        "integrations.rotate_tenant_token",
        "integrations.add_metricdefinition",
        "integrations.delete_metricdefinition",
        "usage.view_payload",
        "usage.reprocess_events",
        "warehouse_sync.push_to_segment",
        "authtoken.view_tokenproxy",
        "authtoken.add_tokenproxy",
        "admin.view_logentry",
    },
}
NEVER = {
    "auth.change_user",
    "auth.add_group",
    "auth.change_group",
    "usage.delete_inboxevent",
    "usage.delete_activity",
    "warehouse_sync.delete_syncrun",
    "admin.delete_logentry",
    "django_celery_beat.change_periodictask",
}


def test_the_three_roles_exist_after_migrate():
    assert set(Group.objects.values_list("name", flat=True)) >= {
        "Viewer",
        "CS manager",
        "Integration admin",
    }


@pytest.mark.parametrize(
    ("role", "gets", "not_yet"),
    [
        (VIEWER, ALLOWED[VIEWER], ALLOWED[CS_MANAGER] | ALLOWED[INTEGRATION_ADMIN]),
        (CS_MANAGER, ALLOWED[VIEWER] | ALLOWED[CS_MANAGER], ALLOWED[INTEGRATION_ADMIN]),
        (
            INTEGRATION_ADMIN,
            ALLOWED[VIEWER] | ALLOWED[CS_MANAGER] | ALLOWED[INTEGRATION_ADMIN],
            set(),
        ),
    ],
)
def test_each_role_holds_its_permissions_and_not_the_next_ones(role, gets, not_yet):
    perms = held(role)
    assert gets <= perms
    assert perms & not_yet == set()
    assert perms & NEVER == set()


def test_roles_nest_strictly():
    viewer, cs, admin_ = held(VIEWER), held(CS_MANAGER), held(INTEGRATION_ADMIN)
    assert viewer < cs < admin_


def test_viewer_reads_only():
    assert all(p.split(".", 1)[1].startswith("view_") for p in held(VIEWER))
    assert "usage.view_payload" not in held(VIEWER)  # a "view", but of personal data


def test_roles_ensure_is_idempotent_and_reverts_edits():
    first = roles_ensure()
    viewer = Group.objects.get(name=VIEWER)
    viewer.permissions.add(Permission.objects.get(codename="change_user"))
    Group.objects.get(name=CS_MANAGER).delete()

    again = roles_ensure()

    assert again == first
    assert "auth.change_user" not in held(VIEWER)
    assert ALLOWED[CS_MANAGER] <= held(CS_MANAGER)
    assert Group.objects.filter(name__in=[VIEWER, CS_MANAGER, INTEGRATION_ADMIN]).count() == 3


def test_named_permissions_are_created_with_readable_names():
    perm = Permission.objects.get(content_type__app_label="usage", codename="view_payload")
    assert perm.name == "Can view raw event payloads"
    assert perm.content_type.model == "inboxevent"
    assert Permission.objects.filter(codename="push_to_segment").count() == 1


def test_missing_permissions_are_skipped_with_a_debug_log(monkeypatch, caplog):
    monkeypatch.setattr(
        roles,
        "ROLES",
        (
            Role(
                name=VIEWER, includes=None, permissions=("nosuchapp.view_*", "usage.view_activity")
            ),
        ),
    )
    with caplog.at_level(logging.DEBUG, logger="planhat_segment.roles"):
        held_counts = roles_ensure()
    assert held_counts == {VIEWER: 1}
    assert held(VIEWER) == {"usage.view_activity"}
    missing = [r for r in caplog.records if r.getMessage() == "role_permission_missing"]
    assert [r.permission for r in missing] == ["nosuchapp.view_*"]


def test_health_lines_give_each_role_its_share_of_health():
    roles_ensure()

    viewer = {p for p in held(VIEWER) if p.startswith("health.")}
    assert {"health.view_healthscore", "health.view_alert", "health.view_alertrule"} <= viewer
    assert all(p.split(".")[1].startswith("view_") for p in viewer), viewer
    cs_manager = {p for p in held(CS_MANAGER) if p.startswith("health.")}
    assert cs_manager == viewer | {"health.acknowledge_alert", "health.resolve_alert"}
    admin = {p for p in held(INTEGRATION_ADMIN) if p.startswith("health.")}
    assert {
        "health.change_healthprofile",
        "health.change_alertrule",
        "health.change_webhook",
        "health.recompute_healthscore",
    } <= admin
    assert cs_manager < admin


def test_post_migrate_acts_once_after_the_last_app():
    Group.objects.filter(name__in=[VIEWER, CS_MANAGER, INTEGRATION_ADMIN]).delete()
    roles_on_post_migrate(sender=apps.get_app_config("auth"))
    assert not Group.objects.filter(name=VIEWER).exists()  # auth is not the last app

    emit_post_migrate_signal(verbosity=0, interactive=False, db="default")

    assert ALLOWED[INTEGRATION_ADMIN] <= held(INTEGRATION_ADMIN)


@pytest.mark.django_db(transaction=True)
def test_roles_survive_a_flush():
    # Transactional tests flush the database (migration-made rows are gone); post_migrate
    # re-makes the groups with their permissions.
    call_command("flush", interactive=False, verbosity=0)
    assert ALLOWED[CS_MANAGER] <= held(CS_MANAGER)
    assert ALLOWED[INTEGRATION_ADMIN] <= held(INTEGRATION_ADMIN)
