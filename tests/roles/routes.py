"""The URL resolver, walked: every admin and /api/ route with what it declares it needs.

Shared by the tests of this package. A route is *standard* when Django's admin checks it
itself (model permissions on change lists and forms, the login, the index); every other
admin route and every /api/ route must declare its permissions (planhat_segment.permissions).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.contrib import admin
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.views.generic import RedirectView

from planhat_segment.permissions import DeclaredPermissions, declared_permissions

ROLES = (None, "Viewer", "CS manager", "Integration admin")  # None: staff in no group

SITE_NAMES = {
    "index",
    "login",
    "logout",
    "password_change",
    "password_change_done",
    "autocomplete",
    "jsi18n",
    "view_on_site",
    "app_list",
}
MODEL_ADMIN_VIEWS = ("changelist", "add", "history", "delete", "change")
# Views of Django's own admins that check model permissions themselves.
DJANGO_OWN = {
    "auth_user_password_change": "UserAdmin.user_change_password checks change_user itself",
}
# /api/ routes that deliberately do not use the declared-permission class.
API_NOT_DECLARED = {
    "api-schema": "the OpenAPI description holds no data; any signed-in user reads it",
}


@dataclass
class Route:
    route: str
    name: str | None
    namespace: str | None
    callback: object
    kwargs: tuple[str, ...] = field(default_factory=tuple)

    @property
    def url_name(self) -> str:
        return f"{self.namespace}:{self.name}" if self.namespace else str(self.name)

    def url(self, value: str = "999999") -> str:
        return reverse(self.url_name, kwargs=dict.fromkeys(self.kwargs, value))


def _kwargs(pattern: URLPattern) -> tuple[str, ...]:
    regex = pattern.pattern.regex
    return tuple(regex.groupindex)


def _walk(patterns, prefix: str = "", namespace: str | None = None):
    for entry in patterns:
        if isinstance(entry, URLResolver):
            inner = entry.namespace or namespace
            yield from _walk(entry.url_patterns, prefix + str(entry.pattern), inner)
        else:
            yield Route(
                route=prefix + str(entry.pattern),
                name=entry.name,
                namespace=namespace,
                callback=entry.callback,
                kwargs=_kwargs(entry),
            )


def all_routes() -> list[Route]:
    return list(_walk(get_resolver().url_patterns))


def _standard_admin_names() -> set[str]:
    names = set(SITE_NAMES) | set(DJANGO_OWN)
    for model in admin.site._registry:
        base = f"{model._meta.app_label}_{model._meta.model_name}"
        names |= {f"{base}_{view}" for view in MODEL_ADMIN_VIEWS}
    return names


def _is_django_plumbing(callback) -> bool:
    """The admin's unnamed routes: the object-id redirect and the final catch-all."""
    return (
        getattr(callback, "view_class", None) is RedirectView
        or getattr(callback, "__name__", "") == "catch_all_view"
    )


def admin_routes() -> list[Route]:
    return [r for r in all_routes() if r.route.startswith("admin/")]


def custom_admin_routes() -> list[Route]:
    """Admin routes that Django's model permissions do not cover."""
    standard = _standard_admin_names()
    return [
        r
        for r in admin_routes()
        if r.name not in standard and not (r.name is None and _is_django_plumbing(r.callback))
    ]


def api_routes() -> list[Route]:
    return [r for r in all_routes() if r.route.startswith("api/")]


def api_methods(route: Route) -> list[tuple[str, object]]:
    """(HTTP method, a view instance set up as for that method) for each method the route
    answers, OPTIONS aside (it follows GET)."""
    cls = route.callback.cls
    initkwargs = getattr(route.callback, "initkwargs", {})
    actions = getattr(route.callback, "actions", None)
    if actions:
        methods = [(m.upper(), a) for m, a in actions.items()]
    else:
        methods = [
            (m.upper(), None)
            for m in cls.http_method_names
            if m not in ("options", "head") and hasattr(cls, m)
        ]
    out = []
    for method, action in methods:
        view = cls(**initkwargs)
        view.action = action
        view.request = None
        out.append((method, view))
    return out


def uses_declared_permissions(route: Route) -> bool:
    return any(issubclass(p, DeclaredPermissions) for p in route.callback.cls.permission_classes)


def api_required(route: Route, method: str) -> tuple[str, ...] | None:
    for candidate, view in api_methods(route):
        if candidate == method:
            return declared_permissions(view, method)
    raise LookupError(f"{route.route} does not answer {method}")
