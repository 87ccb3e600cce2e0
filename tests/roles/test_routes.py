"""Every route declares what it needs, and each role gets exactly what the declarations say.

These walk the URL resolver, so a route added later (an app's admin view or /api/ route)
fails here until it declares its permissions; the enforcement tests then cover it too.
"""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group, Permission
from django.test import RequestFactory

from integrations import page
from planhat_segment.permissions import declared_permissions, model_permission
from planhat_segment.roles import ROLE_NAMES, role_permission_names

from .routes import (
    API_NOT_DECLARED,
    ROLES,
    api_methods,
    api_required,
    api_routes,
    custom_admin_routes,
    uses_declared_permissions,
)

pytestmark = pytest.mark.django_db


def _every_declared_permission() -> set[str]:
    names: set[str] = set()
    for route in custom_admin_routes():
        for perms in route.callback.required_permissions.values():
            names |= set(perms)
    for route in api_routes():
        if uses_declared_permissions(route):
            for method, view in api_methods(route):
                names |= set(declared_permissions(view, method) or ())
    for perms in page.ACTION_PERMISSIONS.values():
        names |= set(perms)
    for model_admin in _our_admins():
        if model_admin.actions is None:
            continue
        for func, _name, _desc in model_admin._get_base_actions():
            # Django's own (delete_selected) follow the model permissions of each admin.
            names |= {
                _action_permission(model_admin, perm)
                for perm in func.allowed_permissions
                if perm not in ("view", "add", "change", "delete")
            }
    return names


def _action_permission(model_admin, perm: str) -> str:
    if perm in ("view", "add", "change", "delete"):
        return model_permission(model_admin.model, perm)
    return getattr(model_admin, f"has_{perm}_permission").required_permission


# --- declarations ----------------------------------------------------------------------


def test_every_custom_admin_route_declares_its_permissions():
    undeclared = [
        r.route
        for r in custom_admin_routes()
        if not getattr(r.callback, "required_permissions", None)
    ]
    assert undeclared == []
    # The walk finds the views this project adds (so it is not vacuously green).
    assert {r.name for r in custom_admin_routes()} >= {
        "segment_integration",
        "company_trends",
        "enduser_trends",
        "usage_inboxevent_unassigned",
        "warehouse_sync_syncrun_push",
    }


def test_every_api_route_and_method_declares_its_permissions():
    undeclared = []
    for route in api_routes():
        if not uses_declared_permissions(route):
            assert route.name in API_NOT_DECLARED, f"{route.route} bypasses the declarations"
            continue
        for method, view in api_methods(route):
            if declared_permissions(view, method) is None:
                undeclared.append(f"{method} {route.route}")
    assert undeclared == []
    assert len(api_routes()) >= 25


def test_every_integration_page_action_declares_its_permissions():
    assert set(page.ACTION_PERMISSIONS) == set(page._ACTIONS)
    assert all(page.ACTION_PERMISSIONS.values())


# Third-party admins whose actions declare no permissions: no role holds any permission of
# theirs (asserted below), so only superusers reach them.
SUPERUSERS_ONLY_APPS = {"django_celery_beat": "beat schedule: superusers only"}


def _our_admins():
    return [
        model_admin
        for model, model_admin in admin.site._registry.items()
        if model._meta.app_label not in SUPERUSERS_ONLY_APPS
    ]


def test_superuser_only_apps_are_in_no_role():
    granted = Group.objects.filter(
        name__in=ROLE_NAMES, permissions__content_type__app_label__in=list(SUPERUSERS_ONLY_APPS)
    )
    assert not granted.exists()


def test_every_admin_action_declares_its_permissions():
    for model_admin in _our_admins():
        for func, name, _desc in model_admin._get_base_actions():
            assert func.allowed_permissions, f"{model_admin} action {name} needs permissions="
            for perm in func.allowed_permissions:
                assert _action_permission(model_admin, perm)


def test_every_declared_permission_exists_and_the_integration_admin_holds_it():
    existing = {
        f"{app}.{codename}"
        for app, codename in Permission.objects.values_list("content_type__app_label", "codename")
    }
    declared = _every_declared_permission()
    assert declared - existing == set()  # a typo would lock everyone but superusers out
    held = {
        f"{p.content_type.app_label}.{p.codename}"
        for p in Group.objects.get(name="Integration admin").permissions.select_related(
            "content_type"
        )
    }
    assert declared - held == set()


def test_an_api_view_without_declaration_is_refused(rf: RequestFactory, user_in_role):
    from rest_framework.views import APIView

    class Undeclared(APIView):
        def get(self, request):  # pragma: no cover - never reached
            raise AssertionError

    request = rf.get("/api/undeclared/")
    request.user = user_in_role("Integration admin")
    from rest_framework.test import force_authenticate

    force_authenticate(request, user=request.user)
    assert Undeclared.as_view()(request).status_code == 403


# --- enforcement, derived from the declarations -----------------------------------------


def _api_cases():
    for route in api_routes():
        if not uses_declared_permissions(route):
            continue
        for method, _view in api_methods(route):
            yield pytest.param(route, method, id=f"{method} {route.route}")


@pytest.mark.parametrize(("route", "method"), list(_api_cases()))
def test_api_route_answers_403_exactly_to_roles_without_its_permissions(
    api_client_in_role, integration, route, method
):
    needed = api_required(route, method)
    url = route.url()
    for role in ROLES:
        client = api_client_in_role(role)
        answer = getattr(client, method.lower())(url, {}, format="json")
        allowed = client.user.has_perms(needed)
        assert (answer.status_code != 403) == allowed, (role, method, url, answer.status_code)


def test_api_answers_401_without_a_key(client):
    from rest_framework.test import APIClient

    for route in api_routes():
        assert APIClient().get(route.url()).status_code == 401, route.route


def _admin_cases():
    for route in custom_admin_routes():
        for method in route.callback.required_permissions:
            if method != "HEAD":
                yield pytest.param(route, method, id=f"{method} {route.route}")


@pytest.mark.parametrize(("route", "method"), list(_admin_cases()))
def test_custom_admin_route_answers_403_exactly_to_roles_without_its_permissions(
    client_in_role, integration, route, method
):
    needed = route.callback.required_permissions[method]
    url = route.url()
    for role in ROLES:
        client = client_in_role(role)
        answer = getattr(client, method.lower())(url)
        allowed = client.user.has_perms(needed)
        assert (answer.status_code != 403) == allowed, (role, method, url, answer.status_code)


def test_admin_routes_send_people_who_are_not_staff_to_the_login(client, user_in_role):
    client.force_login(user_in_role("Integration admin", is_staff=False))
    for route in custom_admin_routes():
        answer = client.get(route.url())
        assert answer.status_code == 302
        assert "/admin/login/" in answer["Location"]


@pytest.mark.parametrize("action", sorted(page.ACTION_PERMISSIONS))
def test_integration_page_action_answers_403_exactly_to_roles_without_its_permission(
    client_in_role, integration, action
):
    for role in ROLES:
        client = client_in_role(role)
        answer = client.post("/admin/integrations/segment/", {"action": action})
        allowed = client.user.has_perms((*page.PAGE_PERMISSIONS, *page.ACTION_PERMISSIONS[action]))
        assert (answer.status_code != 403) == allowed, (role, action, answer.status_code)


@pytest.mark.parametrize("role", ROLE_NAMES)
def test_admin_actions_offered_exactly_to_roles_with_their_permissions(user_in_role, role):
    user = user_in_role(role)
    offered_somewhere = set()
    for model_admin in _our_admins():
        request = RequestFactory().get("/admin/")
        request.user = user
        offered = set(model_admin.get_actions(request))
        if model_admin.actions is None:  # DRF's token admin: no actions at all
            assert offered == set()
            continue
        for func, name, _desc in model_admin._get_base_actions():
            perms = {_action_permission(model_admin, p) for p in func.allowed_permissions}
            expected = user.has_perms(perms) and all(
                getattr(model_admin, f"has_{p}_permission")(request)
                for p in func.allowed_permissions
            )
            assert (name in offered) == expected, (role, model_admin, name)
            if expected:
                offered_somewhere.add(f"{model_admin.model._meta.model_name}.{name}")
    wanted = {
        "Viewer": set(),
        "CS manager": {"company.export_csv", "company.delete_selected"},
        "Integration admin": {
            "company.export_csv",
            "inboxevent.reprocess_selected",
            "syncrun.push_data_to_segment",
        },
    }[role]
    assert wanted <= offered_somewhere
    if role == "Viewer":
        assert offered_somewhere == set()


@pytest.mark.parametrize("role", ROLES)
def test_change_lists_open_exactly_for_roles_that_may_view_them(client_in_role, role):
    client = client_in_role(role)
    opened = set()
    for model in admin.site._registry:
        url = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
        answer = client.get(url)
        may = client.user.has_perm(model_permission(model, "view")) or client.user.has_perm(
            model_permission(model, "change")
        )
        assert answer.status_code == (200 if may else 403), (role, url, answer.status_code)
        if may:
            opened.add(model._meta.label_lower)
    if role is None:
        assert opened == set()
    if role in ("Viewer", "CS manager"):
        assert "authtoken.tokenproxy" not in opened
        assert "admin.logentry" not in opened
        assert "auth.user" not in opened
    if role == "Integration admin":
        assert {"authtoken.tokenproxy", "admin.logentry"} <= opened
        assert "auth.user" not in opened  # managing people and roles stays with superusers


def test_roles_table_names_only_permissions_that_exist_or_apps_not_installed_yet():
    from django.apps import apps

    installed = {config.label for config in apps.get_app_configs()}
    existing = {
        f"{app}.{codename}"
        for app, codename in Permission.objects.values_list("content_type__app_label", "codename")
    }
    for role in ROLE_NAMES:
        for name in role_permission_names(role):
            app_label = name.split(".", 1)[0]
            if app_label not in installed:
                continue  # e.g. health, whose lines wait for the app
            if "*" not in name:
                assert name in existing, f"{role}: {name} does not exist (typo?)"
