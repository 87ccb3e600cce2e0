"""Writes to the workspace's objects: create, update, delete, and bulk upsert by external id.

Single writes and bulk upserts share one validation path (``validation.drafts_validate``): the
model's own ``full_clean`` plus the checks that need the database (the referenced company,
unique external ids, enduser emails, company email domains), done for all objects at once in
a fixed number of queries. The API, the admin and the bulk upsert therefore give the same,
specific errors, and a bulk upsert of 5,000 items costs a handful of queries.

After companies or endusers change, :data:`~planhat_segment.signals.workspace_objects_changed`
is sent once the transaction commits, so the usage app can re-match events that wait for them.
"""

from .bulk import (
    BulkItem,
    BulkItemResult,
    BulkUpsertResult,
    bulk_upsert_max_items,
    workspace_objects_bulk_upsert,
)
from .objects import (
    workspace_object_create,
    workspace_object_delete,
    workspace_object_update,
    workspace_objects_changed_notify,
)
from .validation import (
    CONCURRENT_WRITE,
    SPECS,
    ConcurrentWriteError,
    ObjectSpec,
    company_domain_check,
    enduser_email_check,
    error_dict,
)

__all__ = [
    "CONCURRENT_WRITE",
    "SPECS",
    "BulkItem",
    "BulkItemResult",
    "BulkUpsertResult",
    "ConcurrentWriteError",
    "ObjectSpec",
    "bulk_upsert_max_items",
    "company_domain_check",
    "enduser_email_check",
    "error_dict",
    "workspace_object_create",
    "workspace_object_delete",
    "workspace_object_update",
    "workspace_objects_bulk_upsert",
    "workspace_objects_changed_notify",
]
