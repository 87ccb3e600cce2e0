"""What each view needs: the REST API's default permission class and the admin's checks.

Every API view and every custom admin view declares the Django permissions it needs; a view
that declares nothing is refused (never open). ``tests/roles/`` walks the URL resolver and
fails on any route without a declaration.

API views declare with class attributes:

- ``permission_model``: a model; reads (GET, HEAD, OPTIONS) need its ``view_*`` permission,
  POST ``add_*``, PUT / PATCH ``change_*``, DELETE ``delete_*``. Unlike DRF's
  ``DjangoModelPermissions``, reads are not open and no queryset is needed.
- ``required_permissions``: HTTP method or viewset action → permission names, which win over
  ``permission_model``. A name is "app_label.codename", or a bare action ("add", "change")
  of ``permission_model``.

Custom admin views are wrapped with :func:`admin_view_permissions`; admin actions name a
``has_<name>_permission`` method made with :func:`has_permission_method`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from functools import wraps

from django.apps import apps
from django.core.exceptions import ImproperlyConfigured, PermissionDenied
from django.db.models import Model
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from rest_framework.permissions import BasePermission

logger = logging.getLogger(__name__)

METHOD_ACTIONS = {
    "GET": "view",
    "HEAD": "view",
    "OPTIONS": "view",
    "POST": "add",
    "PUT": "change",
    "PATCH": "change",
    "DELETE": "delete",
}


def model_permission(model: type[Model], action: str) -> str:
    """Django's name of a model permission: ``model_permission(Company, "view")`` →
    "planhat_segment.view_company"."""
    return f"{model._meta.app_label}.{action}_{model._meta.model_name}"


def declared_permissions(view, method: str) -> tuple[str, ...] | None:
    """The permissions ``view`` declares for ``method`` (and its viewset action, if any), or
    None when it declares none."""
    method = method.upper()
    declared = getattr(view, "required_permissions", None) or {}
    model = getattr(view, "permission_model", None)
    action = getattr(view, "action", None)
    if action is not None and action in declared:
        entries = declared[action]
    elif method in declared:
        entries = declared[method]
    elif method in ("HEAD", "OPTIONS") and "GET" in declared:
        entries = declared["GET"]
    elif model is not None and method in METHOD_ACTIONS:
        entries = (METHOD_ACTIONS[method],)
    else:
        return None
    resolved = []
    for entry in entries:
        if "." in entry:
            resolved.append(entry)
        elif model is not None:
            resolved.append(model_permission(model, entry))
        else:
            raise ImproperlyConfigured(
                f"{type(view).__name__} names {entry!r} without a permission_model."
            )
    return tuple(resolved)


class DeclaredPermissions(BasePermission):
    """The project's default: an active, authenticated user holding every permission the view
    declares for the request. A view without a declaration answers 403 to everyone."""

    message = "You do not have permission to perform this action."

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not (user and user.is_authenticated and user.is_active):
            return False
        needed = declared_permissions(view, request.method)
        if needed is None:
            logger.warning(
                "api_view_without_permissions",
                extra={"view": type(view).__name__, "method": request.method},
            )
            return False
        return user.has_perms(needed)


def admin_view_permissions(view: Callable, **required: Sequence[str]) -> Callable:
    """Wrap a custom admin view (a function or a bound method taking the request) so that each
    HTTP method needs the permissions given for it (``GET=(...), POST=(...)``): 403 without
    them, 405 for a method not given. HEAD follows GET. Wrap the result in ``admin_view``,
    which sends anonymous and non-staff people to the login page first.

    The declaration stays readable on the view (``required_permissions``) for the tests."""
    declared = {method.upper(): tuple(perms) for method, perms in required.items()}
    if "GET" in declared:
        declared.setdefault("HEAD", declared["GET"])

    @wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        needed = declared.get(request.method or "")
        if needed is None:
            return HttpResponseNotAllowed([m for m in declared if m != "HEAD"])
        if not request.user.has_perms(needed):
            raise PermissionDenied
        return view(request, *args, **kwargs)

    wrapped.required_permissions = declared
    return wrapped


def has_permission_method(permission: str) -> Callable:
    """A ``has_<name>_permission`` method for an admin action declared with
    ``@admin.action(permissions=["<name>"])``: true when the user holds ``permission``."""

    def has_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(permission)

    has_permission.required_permission = permission
    return has_permission


class OwnAppDeletion:
    """ModelAdmin mixin: deleting needs the delete permission on the models of the admin's own
    app only. Rows that other apps derive from the object (a company's activities and metric
    values) go with it, as they do through the API and the services; without this, Django's
    delete page would ask a CS manager for ``usage.delete_activity``, which no role holds."""

    def get_deleted_objects(self, objs, request):
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        own = {
            str(model._meta.verbose_name)
            for model in apps.get_app_config(self.model._meta.app_label).get_models()
        }
        return deleted, counts, {p for p in perms_needed if str(p) in own}, protected
