"""A change signal the workspace sends for other apps.

Deletion bookkeeping (tombstones) is not here: its receivers are connected per syncable model
by ``services.tombstones`` (see there why never globally).
"""

from __future__ import annotations

from django.dispatch import Signal

# Sent by the services after companies or endusers were created or changed, with
# ``model`` ("company" / "enduser") and ``pks`` (list of ints). The usage app listens to
# re-match events waiting for those objects; the workspace never imports usage.
workspace_objects_changed = Signal()
