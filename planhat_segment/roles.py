"""Roles: three groups whose permissions come from the tables below, (re)made on every migrate.

Why ``post_migrate`` and not a data migration: on a fresh database a data migration runs
before Django has created the permissions it would grant, and a transactional test database
is flushed (migration-made rows gone) after each test; ``post_migrate`` runs after both.

The tables are data, not code, so a later app adds its lines here and nothing else:

- ``NAMED_PERMISSIONS``: the permissions that are not Django's add/change/delete/view, per
  model ("app_label.ModelName"). They are created here rather than in ``Meta.permissions``
  so that no app needs a migration for them (an app may still use ``Meta.permissions``: the
  role table only names "app_label.codename").
- ``ROLE_PERMISSIONS``: role → permissions, each "app_label.codename" or a pattern with ``*``
  ("health.view_*"). A role also holds everything of the role it ``includes``. A name or
  pattern that matches no permission yet (an app not installed on this branch, such as
  ``health``) is skipped with a debug log, so its lines can be written before the app lands.

The three groups are made to hold exactly their table's permissions at every migrate: edits
to them in the admin are reverted. Make a group of your own for anything else.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase

from django.apps import apps
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.db import DEFAULT_DB_ALIAS, transaction

logger = logging.getLogger(__name__)

VIEWER = "Viewer"
CS_MANAGER = "CS manager"
INTEGRATION_ADMIN = "Integration admin"

# Named permissions: model → (codename, name). Codenames are unique per app, because
# ``user.has_perm`` takes "app_label.codename".
NAMED_PERMISSIONS: dict[str, tuple[tuple[str, str], ...]] = {
    "integrations.IntegrationSettings": (("rotate_tenant_token", "Can rotate the tenant token"),),
    "usage.InboxEvent": (
        ("view_payload", "Can view raw event payloads"),
        ("reprocess_events", "Can reprocess events"),
        ("assign_users", "Can assign unassigned users to companies"),
    ),
    "warehouse_sync.SyncRun": (("push_to_segment", "Can push data to Segment"),),
    "planhat_segment.Company": (("export_csv", "Can export workspace objects as CSV"),),
    "planhat_segment.EndUser": (
        ("forget_enduser", "Can forget an enduser (erase their events and personal data)"),
    ),
}

_WORKSPACE_MODELS = ("company", "companydomain", "enduser", "asset", "project", "license")


def _each(action: str, app_label: str, models: Iterable[str]) -> tuple[str, ...]:
    return tuple(f"{app_label}.{action}_{model}" for model in models)


@dataclass(frozen=True)
class Role:
    name: str
    includes: str | None
    permissions: tuple[str, ...]


# What each role may do, on top of the role it includes. README's roles table says the same
# in words: change both together.
ROLES: tuple[Role, ...] = (
    Role(
        name=VIEWER,
        includes=None,
        permissions=(
            # The workspace's objects, read-only.
            *_each("view", "planhat_segment", (*_WORKSPACE_MODELS, "tombstone")),
            # Usage, trends and the event log (statuses, never the raw payloads).
            "usage.view_activity",
            "usage.view_metricvalue",
            "usage.view_inboxevent",
            # The integration page without its secrets, metric definitions, run history.
            "integrations.view_integrationsettings",
            "integrations.view_metricdefinition",
            *_each(
                "view",
                "warehouse_sync",
                ("syncrun", "syncmodelresult", "syncbatch", "failedobject"),
            ),
            # health (next): health scores, profiles and alerts, read-only.
            "health.view_*",
        ),
    ),
    Role(
        name=CS_MANAGER,
        includes=VIEWER,
        permissions=(
            # Edit the workspace's objects (company owners included), export them as CSV.
            *_each("add", "planhat_segment", _WORKSPACE_MODELS),
            *_each("change", "planhat_segment", _WORKSPACE_MODELS),
            *_each("delete", "planhat_segment", _WORKSPACE_MODELS),
            "planhat_segment.export_csv",
            # Assign users whose events wait for a company.
            "usage.assign_users",
            # health (next): acknowledge and resolve alerts.
            "health.acknowledge_alert",
            "health.resolve_alert",
        ),
    ),
    Role(
        name=INTEGRATION_ADMIN,
        includes=CS_MANAGER,
        permissions=(
            # The integration's settings (and so its secrets), the tenant token, metrics.
            "integrations.change_integrationsettings",
            "integrations.rotate_tenant_token",
            "integrations.add_metricdefinition",
            "integrations.change_metricdefinition",
            "integrations.delete_metricdefinition",
            # Forget an enduser (privacy: erase their raw events, usage and personal fields).
            "planhat_segment.forget_enduser",
            # Raw payloads, reprocessing, the push.
            "usage.view_payload",
            "usage.reprocess_events",
            "warehouse_sync.push_to_segment",
            # API keys (DRF's token admin) and the audit log.
            "authtoken.view_tokenproxy",
            "authtoken.add_tokenproxy",
            "authtoken.change_tokenproxy",
            "authtoken.delete_tokenproxy",
            "admin.view_logentry",
            # health (next): profiles, alert rules, webhooks, recomputes — all of health.
            "health.*",
        ),
    ),
)
ROLE_NAMES = tuple(role.name for role in ROLES)


def role_permission_names(name: str) -> tuple[str, ...]:
    """A role's permission names and patterns, those of the roles it includes first."""
    by_name = {role.name: role for role in ROLES}
    role = by_name[name]
    inherited = role_permission_names(role.includes) if role.includes else ()
    return (*inherited, *role.permissions)


def named_permissions_ensure(*, using: str = DEFAULT_DB_ALIAS) -> int:
    """Create the named permissions of installed models that are missing; returns how many."""
    wanted: list[Permission] = []
    for label, entries in NAMED_PERMISSIONS.items():
        try:
            model = apps.get_model(label)
        except LookupError:
            logger.debug("named_permission_model_missing", extra={"model": label})
            continue
        content_type = ContentType.objects.db_manager(using).get_for_model(model)
        wanted += [
            Permission(content_type=content_type, codename=codename, name=name)
            for codename, name in entries
        ]
    existing = set(
        Permission.objects.using(using)
        .filter(content_type__in={p.content_type_id for p in wanted})
        .values_list("content_type_id", "codename")
    )
    missing = [p for p in wanted if (p.content_type_id, p.codename) not in existing]
    with transaction.atomic(using=using):
        Permission.objects.using(using).bulk_create(missing, ignore_conflicts=True)
    return len(missing)


def _resolve(names: Iterable[str], catalogue: dict[str, int]) -> set[int]:
    """Permission ids for names and ``*`` patterns; those matching nothing are skipped."""
    ids: set[int] = set()
    for name in names:
        if "*" in name:
            matched = [pk for full, pk in catalogue.items() if fnmatchcase(full, name)]
        else:
            matched = [catalogue[name]] if name in catalogue else []
        if not matched:
            # An app that is not installed yet (health), or a typo: tests catch the latter.
            logger.debug("role_permission_missing", extra={"permission": name})
        ids.update(matched)
    return ids


def roles_ensure(*, using: str = DEFAULT_DB_ALIAS) -> dict[str, int]:
    """Create the named permissions and the three role groups, each holding exactly its table's
    permissions. Idempotent; returns role → number of permissions it holds."""
    named_permissions_ensure(using=using)
    catalogue = {
        f"{app_label}.{codename}": pk
        for pk, app_label, codename in Permission.objects.using(using).values_list(
            "pk", "content_type__app_label", "codename"
        )
    }
    held: dict[str, int] = {}
    with transaction.atomic(using=using):
        for role in ROLES:
            group, _ = Group.objects.using(using).get_or_create(name=role.name)
            ids = _resolve(role_permission_names(role.name), catalogue)
            group.permissions.set(ids)
            held[role.name] = len(ids)
    logger.info("roles_ensured", extra={"roles": held})
    return held


def roles_on_post_migrate(sender, using: str = DEFAULT_DB_ALIAS, **kwargs) -> None:
    """``post_migrate`` is sent once per app, in INSTALLED_APPS order, and Django creates each
    app's permissions in its own receiver: act once, after the last app's permissions exist."""
    with_models = [config for config in apps.get_app_configs() if config.models_module]
    if not with_models or sender.label != with_models[-1].label:
        return
    roles_ensure(using=using)
