"""What became of an event, and what to do about it, in words: the event log's answer to
"why did my event not arrive?". Presentation only: reads the row's own fields (no query)."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings

from planhat_segment.display import when_text

from .models import DropReason, InboxEvent, InboxStatus

USER_CALLS = ("identify", "track", "page", "screen")


@dataclass(frozen=True)
class Explanation:
    """``what`` happened to the event and, when something is to be done, the ``fix``."""

    what: str
    fix: str = ""

    def __str__(self) -> str:
        return f"{self.what} {self.fix}".strip()


def _who(event: InboxEvent) -> str:
    parts = []
    if event.user_key:
        parts.append(f"user id {event.user_key}")
    if event.email_key:
        parts.append(f"email {event.email_key}")
    return " / ".join(parts) or "this user"


def event_explanation(event: InboxEvent) -> Explanation:
    """The reason and the fix for one event, e.g. "No company with external id NOPE: create
    it or send company_id"."""
    status, reason, detail = event.status, event.reason, (event.detail or "").strip()
    if status == InboxStatus.PENDING:
        return Explanation("Received; waiting for a worker to process it.")
    if status == InboxStatus.PROCESSING:
        return Explanation("Being processed now.")
    if status == InboxStatus.PROCESSED:
        if detail:
            return Explanation(f"Processed, with a note: {detail}")
        return Explanation("Processed.")
    if status == InboxStatus.WAITING:
        company = f"company {event.company_key}" if event.company_key else "a company"
        until = f" until {when_text(event.wait_until, seconds=False)}" if event.wait_until else ""
        return Explanation(
            f"Waiting{until}: {_who(event)} has no known company, and {company} is not in "
            "the workspace.",
            "Create the company (or send company_id in the user's traits), or assign the user "
            "in Unassigned users: the event is then processed at once.",
        )
    if status == InboxStatus.FAILED:
        return Explanation(
            f"Failed after {event.attempts} attempt(s): {detail or 'unknown error'}",
            f"Retried automatically up to {settings.USAGE_MAX_ATTEMPTS} attempts; "
            "use Reprocess once the cause is fixed.",
        )
    return _dropped(event, reason, detail)


def _dropped(event: InboxEvent, reason: str, detail: str) -> Explanation:
    if reason == DropReason.UNKNOWN_COMPANY:
        return Explanation(
            f"No company with external id {event.company_key or '(none given)'}.",
            "Create it (or fix the groupId), then Reprocess this event.",
        )
    if reason == DropReason.UNASSIGNED_USER:
        return Explanation(
            f"{_who(event).capitalize()} never got a known company within the waiting window.",
            "Assign the user to a company in Unassigned users (their events are processed "
            "again), or send company_id in their traits.",
        )
    if reason == DropReason.NO_IDENTITY:
        return Explanation(
            "No user id and no email: the event cannot be tied to an enduser.",
            "Send userId (or traits.email) with every call.",
        )
    if reason == DropReason.UNKNOWN_ENDUSER:
        return Explanation(
            f"No enduser with {_who(event)}, and creating endusers automatically is off.",
            "Create the enduser, or switch on “Create endusers automatically” on the "
            "integration page, then Reprocess.",
        )
    if reason == DropReason.SECTION_DISABLED:
        section = "User tracking" if event.type in USER_CALLS else "Company metrics"
        return Explanation(
            f"The “{section}” section was switched off when the event arrived.",
            "Switch it on on the integration page, then Reprocess (the event was kept).",
        )
    if reason == DropReason.UNSUPPORTED_CALL:
        return Explanation(f"{event.type or 'This'} calls are not turned into data.")
    if reason == DropReason.INVALID_MESSAGE:
        return Explanation(f"Invalid message: {detail}", "Fix the call where it is sent.")
    return Explanation(f"Dropped ({reason}){': ' + detail if detail else ''}.")
