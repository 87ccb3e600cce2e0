"""Forgetting one enduser: their raw events, usage and personal fields erased, on request.

Lives in usage because it composes both sides: the workspace's enduser (``planhat_segment``,
which never imports usage) and the events, activities and rollups usage holds about them.
Called by the admin (the "Forget this enduser" button, ``usage.admin``) and the REST API
(``POST /api/endusers/<id>/forget/``), both for holders of
``planhat_segment.forget_enduser`` (Integration admins).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ObjectDoesNotExist
from django.db import transaction
from django.db.models import Q

from planhat_segment.audit import DELETION, audit_record
from planhat_segment.models import EndUser, Tombstone

from .models import Activity, EnduserDay, InboxEvent, InboxStatus

logger = logging.getLogger(__name__)

# Rows not processed yet carry no identity keys (processing extracts them): they are matched
# on the payload's own fields, as processing would read them first.
_UNPROCESSED = (InboxStatus.PENDING, InboxStatus.PROCESSING, InboxStatus.FAILED)


@dataclass(frozen=True)
class ForgetSummary:
    """What was erased (counts only: never the erased data)."""

    enduser_id: int
    raw_events: int
    activities: int
    rollup_rows: int
    audit_entries_scrubbed: int
    tombstone: bool

    def as_dict(self) -> dict:
        return asdict(self)


def _inbox_rows_of(enduser: EndUser) -> Q:
    rows = Q(enduser_id=enduser.pk)
    if enduser.external_id:
        rows |= Q(user_key=enduser.external_id)
        rows |= Q(status__in=_UNPROCESSED, payload__userId=enduser.external_id)
    if enduser.email_normalized:
        email = enduser.email_normalized
        rows |= Q(email_key=email)
        for path in ("traits__email", "context__traits__email", "properties__email"):
            rows |= Q(status__in=_UNPROCESSED, **{f"payload__{path}__iexact": email})
    return rows


@transaction.atomic
def enduser_forget(*, enduser_id: int, user) -> ForgetSummary:
    """Erase one enduser: every raw event of theirs in the inbox (bound to them, or naming
    their user id or email: waiting, dropped and unprocessed rows too), their activities,
    their daily rollups (their share of the company's is taken out) and the enduser itself
    with its personal fields. A tombstone (model, pk, external id, company) is left, so the
    next push tells Segment the enduser was deleted; admin history entries that named them
    are renamed. The audit log records who did it and the counts, never the erased data.

    Raises ``ObjectDoesNotExist`` when there is no such enduser.
    """
    enduser = EndUser.objects.select_for_update().filter(pk=enduser_id).first()
    if enduser is None:
        raise ObjectDoesNotExist(f"There is no enduser {enduser_id}.")
    label = f"EndUser {enduser_id} (forgotten)"
    raw_events = InboxEvent.objects.filter(_inbox_rows_of(enduser)).delete()[0]
    activities = Activity.objects.filter(enduser_id=enduser_id).count()
    rollup_rows = EnduserDay.objects.filter(enduser_id=enduser_id).count()
    scrubbed = LogEntry.objects.filter(
        content_type=ContentType.objects.get_for_model(EndUser), object_id=str(enduser_id)
    ).update(object_repr=label)
    tombstones_before = Tombstone.objects.filter(model="enduser", object_pk=enduser_id).count()
    # Deleting goes through the workspace's own path: the tombstone, the activities (their
    # rollup share taken out first by usage.receivers), the EnduserDay rows by cascade.
    enduser.delete()
    tombstone = (
        Tombstone.objects.filter(model="enduser", object_pk=enduser_id).count() > tombstones_before
    )
    summary = ForgetSummary(
        enduser_id=enduser_id,
        raw_events=raw_events,
        activities=activities,
        rollup_rows=rollup_rows,
        audit_entries_scrubbed=scrubbed,
        tombstone=tombstone,
    )
    audit_record(
        user=user,
        model=EndUser,
        object_repr=label,
        flag=DELETION,
        message=(
            f"Forgot enduser {enduser_id}: erased {raw_events} raw event(s), {activities} "
            f"activit{'y' if activities == 1 else 'ies'}, {rollup_rows} daily rollup row(s) and "
            "the enduser's personal fields"
            + ("; a tombstone tells the next push to Segment." if tombstone else ".")
        ),
    )
    logger.info("usage_enduser_forgotten", extra=summary.as_dict())
    return summary
