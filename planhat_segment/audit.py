"""The audit log: who changed the integration, rotated its token, pushed, or reprocessed.

Entries are Django's own admin ``LogEntry`` rows rather than a model of ours: the admin
already writes them for every add / change / delete made through its forms (metric
definitions, workspace objects), each object's History page shows them, and no migration is
needed. This module adds entries for what happens outside the admin's forms (the integration
page, the REST API, admin actions). A secret is never written: only that it was set, changed
or cleared. The log is shown under *Administration › Log entries* (``admin.view_logentry``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db.models import Model

__all__ = ["ADDITION", "CHANGE", "DELETION", "audit_record", "changes_describe"]

OBJECT_REPR_MAX = 200


def audit_record(
    *,
    user,
    message: str,
    obj: Model | None = None,
    model: type[Model] | None = None,
    object_repr: str | None = None,
    flag: int = CHANGE,
) -> LogEntry:
    """Record that ``user`` did ``message`` to ``obj`` (or to several rows of ``model``, named
    by ``object_repr``). The message must never hold a secret."""
    target = type(obj) if obj is not None else model
    return LogEntry.objects.create(
        user_id=user.pk,
        content_type=ContentType.objects.get_for_model(target) if target else None,
        object_id=str(obj.pk) if obj is not None else None,
        object_repr=(object_repr or str(obj or ""))[:OBJECT_REPR_MAX],
        action_flag=flag,
        change_message=message,
    )


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if value in ("", None, []):
        return "(empty)"
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    return str(value)


def changes_describe(
    *,
    before: Mapping[str, Any],
    after: Mapping[str, Any],
    secret_fields: Iterable[str] = (),
    labels: Mapping[str, str] | None = None,
) -> list[str]:
    """One line per field whose value differs: "Region: us → eu"; a secret field only says
    "Write key changed" / "set" / "cleared", never a value."""
    secrets = set(secret_fields)
    labels = labels or {}
    lines = []
    for field, old in before.items():
        new = after.get(field, old)
        if new == old:
            continue
        label = labels.get(field, field.replace("_", " ").capitalize())
        if field in secrets:
            verb = "set" if not old else "cleared" if not new else "changed"
            lines.append(f"{label} {verb}")
        else:
            lines.append(f"{label}: {_shown(old)} → {_shown(new)}")
    return lines
