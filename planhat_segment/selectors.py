"""Reads of the workspace's objects, with the joins their API and admin views need."""

from __future__ import annotations

from django.db.models import QuerySet

from .models import Company, WorkspaceObject


def workspace_objects_list(*, model: type[WorkspaceObject]) -> QuerySet:
    """All objects of ``model``: companies with their email domains, others with their company.

    Listing N objects costs the same few queries for any N (no per-row lookups).
    """
    if model is Company:
        return Company.objects.prefetch_related("domains")
    return model.objects.select_related("company")


def workspace_object_get(*, model: type[WorkspaceObject], pk: int) -> WorkspaceObject:
    """One object with the same joins as :func:`workspace_objects_list` (DoesNotExist if gone)."""
    return workspace_objects_list(model=model).get(pk=pk)
