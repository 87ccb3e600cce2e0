"""Admin: the event log (inbox), activities, metric values and the unassigned-users report.

Presentation plus calls to services: reprocessing and assignment live in ``usage.services``.
"""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.widgets import AutocompleteSelect
from django.core.exceptions import ValidationError
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Coalesce
from django.http import Http404, HttpRequest, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from planhat_segment.admin_export import CsvExportMixin
from planhat_segment.audit import audit_record
from planhat_segment.models import Company, EndUser
from planhat_segment.permissions import admin_view_permissions, has_permission_method

from . import selectors, services
from .explain import event_explanation
from .models import Activity, InboxEvent, InboxStatus, MetricValue
from .privacy import enduser_forget
from .rejections import rejected_calls_last_24h


class AssignForm(forms.Form):
    """Assign one unassigned user to a company: a searchable picker (the admin's own
    autocomplete, through the enduser's company field) that never offers the test company."""

    user_key = forms.CharField(required=False, widget=forms.HiddenInput)
    email = forms.CharField(required=False, widget=forms.HiddenInput)
    company_id = forms.ModelChoiceField(
        queryset=Company.objects.filter(is_test=False),
        label="Company",
        error_messages={"invalid_choice": "Choose a company from the list (not the test company)."},
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["company_id"]
        field.widget = AutocompleteSelect(
            EndUser._meta.get_field("company"),
            admin.site,
            attrs={
                "data-placeholder": "Type a company name or external id…",
                "style": "width: 100%",
            },
        )
        field.widget.choices = field.choices  # what ModelChoiceField gives its own widget


def _event_name():
    """The track's event, or the page / screen's name, read from the payload in SQL (so the
    list never loads payloads)."""
    return Coalesce(KeyTextTransform("event", "payload"), KeyTextTransform("name", "payload"))


AUDIT_IDS_SHOWN = 20


@admin.register(InboxEvent)
class InboxEventAdmin(CsvExportMixin, admin.ModelAdmin):
    """The event log. Statuses, reasons and what to do about them are for everyone who may
    view events; the raw payload (personal data) only for those with ``usage.view_payload``."""

    list_display = [
        "received_at",
        "type",
        "event_name",
        "status",
        "what_happened",
        "user_key",
        "email_key",
        "company_key",
    ]
    list_filter = ["status", "type", "reason", ("received_at", admin.DateFieldListFilter)]
    # Event name (track event / page name), user id and email; an exact message id too.
    search_fields = ["=message_id", "event_name", "user_key", "email_key"]
    search_help_text = "Search by event name, user id, email, or an exact message id."
    date_hierarchy = "received_at"
    actions = ["reprocess_selected", "export_csv"]
    phone_columns = ("received_at", "event_name", "status")
    csv_columns = (
        "id",
        "received_at",
        "occurred_at",
        "type",
        "event_name",
        "status",
        "reason",
        "detail",
        "user_key",
        "email_key",
        "company_key",
        "message_id",
    )
    change_form_template = "admin/usage/inboxevent/change_form.html"
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "received_at",
                    "occurred_at",
                    "type",
                    "event_name",
                    "status",
                    "reason",
                    "explanation",
                    "fix",
                    "detail",
                    "user_key",
                    "email_key",
                    "company_key",
                    "enduser",
                    "wait_until",
                    "processed_at",
                    "message_id",
                )
            },
        ),
        ("Payload", {"fields": ("pretty_payload",)}),
        # The claim's bookkeeping: for whoever debugs processing, out of everyone else's way.
        (
            "Internals",
            {
                "classes": ("collapse",),
                "fields": ("request_id", "attempts", "next_attempt_at", "claimed_until"),
            },
        ),
    )
    readonly_fields = [
        "message_id",
        "request_id",
        "type",
        "event_name",
        "status",
        "reason",
        "explanation",
        "fix",
        "detail",
        "attempts",
        "received_at",
        "occurred_at",
        "processed_at",
        "next_attempt_at",
        "claimed_until",
        "wait_until",
        "user_key",
        "email_key",
        "company_key",
        "enduser",
        "pretty_payload",
    ]
    exclude = ["payload"]
    list_per_page = 100

    def get_queryset(self, request):
        # The payload can be large: never loaded for the list (the event name is read in SQL).
        return super().get_queryset(request).defer("payload").annotate(event_name=_event_name())

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    has_reprocess_permission = has_permission_method("usage.reprocess_events")

    def get_readonly_fields(self, request, obj=None):
        fields = super().get_readonly_fields(request, obj)
        if request.user.has_perm("usage.view_payload"):
            return fields
        return [name for name in fields if name != "pretty_payload"]

    def get_fieldsets(self, request, obj=None):
        if request.user.has_perm("usage.view_payload"):
            return self.fieldsets
        return tuple(f for f in self.fieldsets if f[0] != "Payload")

    @admin.display(description="event", ordering="event_name")
    def event_name(self, obj):
        return getattr(obj, "event_name", None) or "—"

    @admin.display(description="what happened")
    def what_happened(self, obj):
        if obj.status == InboxStatus.PROCESSED and not obj.detail:
            return ""  # the status says it all
        text = event_explanation(obj).what
        return text[:140] + ("…" if len(text) > 140 else "")

    @admin.display(description="what happened")
    def explanation(self, obj):
        return event_explanation(obj).what

    @admin.display(description="what to do")
    def fix(self, obj):
        return event_explanation(obj).fix or "—"

    @admin.display(description="payload")
    def pretty_payload(self, obj):
        return format_html("<pre>{}</pre>", json.dumps(obj.payload, indent=2, sort_keys=True))

    def _reprocess(self, request, ids: list[int], via: str) -> int:
        count = services.inbox_events_reprocess(ids=ids)
        shown = ", ".join(str(pk) for pk in ids[:AUDIT_IDS_SHOWN])
        more = f" and {len(ids) - AUDIT_IDS_SHOWN} more" if len(ids) > AUDIT_IDS_SHOWN else ""
        audit_record(
            user=request.user,
            model=InboxEvent,
            object_repr=f"{count} event(s)",
            message=f"Reprocessed {count} event(s) ({via}): ids {shown}{more}.",
        )
        return count

    @admin.action(description="Reprocess selected", permissions=["reprocess"])
    def reprocess_selected(self, request, queryset):
        count = self._reprocess(
            request, sorted(queryset.values_list("pk", flat=True)), via="admin action"
        )
        self.message_user(request, f"{count} event(s) queued for processing again.")

    def reprocess_view(self, request: HttpRequest, object_id: int):
        """The event page's Reprocess button: this one event back to pending."""
        event = get_object_or_404(InboxEvent.objects.only("pk", "status"), pk=object_id)
        count = self._reprocess(request, [event.pk], via="event page")
        if count:
            messages.success(
                request, "Event queued for processing again; reload to see its outcome."
            )
        else:
            messages.warning(request, "This event could not be queued again.")
        return HttpResponseRedirect(reverse("admin:usage_inboxevent_change", args=[event.pk]))

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "can_reprocess": self.has_reprocess_permission(request),
        }
        return super().change_view(request, object_id, form_url, extra_context=extra_context)

    def changelist_view(self, request, extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "inbox_counts": selectors.inbox_counts_last_24h(),
            "reason_counts": selectors.inbox_reason_counts_last_24h(),
            "rejected_counts": rejected_calls_last_24h(),
        }
        return super().changelist_view(request, extra_context=extra_context)

    def get_urls(self):
        extra = [
            path(
                "unassigned/",
                self.admin_site.admin_view(
                    admin_view_permissions(
                        self.unassigned_view,
                        GET=("usage.view_inboxevent",),
                        POST=("usage.view_inboxevent", "usage.assign_users"),
                    )
                ),
                name="usage_inboxevent_unassigned",
            ),
            path(
                "forget-enduser/<int:enduser_id>/",
                self.admin_site.admin_view(
                    admin_view_permissions(
                        self.forget_view,
                        GET=("planhat_segment.forget_enduser",),
                        POST=("planhat_segment.forget_enduser",),
                    )
                ),
                name="usage_enduser_forget",
            ),
            path(
                "<int:object_id>/reprocess/",
                self.admin_site.admin_view(
                    admin_view_permissions(
                        self.reprocess_view,
                        POST=("usage.view_inboxevent", "usage.reprocess_events"),
                    )
                ),
                name="usage_inboxevent_reprocess",
            ),
        ]
        return extra + super().get_urls()

    def forget_view(self, request, enduser_id: int):
        """Confirm, then forget one enduser (``usage.privacy.enduser_forget``)."""
        enduser = EndUser.objects.filter(pk=enduser_id).select_related("company").first()
        if enduser is None:
            raise Http404(f"There is no enduser {enduser_id}.")
        if request.method == "POST":
            summary = enduser_forget(enduser_id=enduser_id, user=request.user)
            messages.success(
                request,
                f"Enduser {enduser_id} forgotten: {summary.raw_events} raw event(s) and "
                f"{summary.activities} activities erased.",
            )
            return redirect("admin:planhat_segment_enduser_changelist")
        context = {
            **self.admin_site.each_context(request),
            "title": "Forget this enduser?",
            "enduser": enduser,
            "activities": Activity.objects.filter(enduser=enduser).count(),
            "opts": EndUser._meta,
        }
        return TemplateResponse(request, "admin/usage/enduser_forget.html", context)

    def unassigned_view(self, request):
        rows = selectors.unassigned_users_list()
        can_assign = request.user.has_perm("usage.assign_users")
        bound = None
        if request.method == "POST":
            bound = AssignForm(request.POST, prefix=request.POST.get("prefix") or None)
            if bound.is_valid():
                try:
                    enduser = services.unassigned_user_assign(
                        user_key=bound.cleaned_data["user_key"] or None,
                        email=bound.cleaned_data["email"] or None,
                        company_id=bound.cleaned_data["company_id"].pk,
                    )
                except ValidationError as exc:
                    bound.add_error(None, exc)
                else:
                    audit_record(
                        user=request.user,
                        obj=enduser,
                        message=f"Assigned to company '{enduser.company}' from the unassigned users.",
                    )
                    messages.success(
                        request,
                        f"{enduser} assigned to {enduser.company}; their events are queued.",
                    )
                    return redirect("admin:usage_inboxevent_unassigned")
        media = forms.Media()
        if can_assign:
            for index, row in enumerate(rows):
                prefix = f"row{index}"
                if bound is not None and bound.prefix == prefix:
                    row["form"] = bound
                else:
                    row["form"] = AssignForm(
                        prefix=prefix,
                        initial={"user_key": row["user_key"], "email": row["email_key"]},
                    )
                row["prefix"] = prefix
            if rows:
                media = rows[0]["form"].media
        context = {
            **self.admin_site.each_context(request),
            "title": "Unassigned users",
            "rows": rows,
            "error_form": bound if bound is not None and bound.errors else None,
            "can_assign": can_assign,
            "media": media,
            "opts": self.model._meta,
        }
        return TemplateResponse(
            request,
            "admin/usage/inboxevent/unassigned.html",
            context,
            status=400 if bound is not None and bound.errors else 200,
        )


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Activity)
class ActivityAdmin(CsvExportMixin, ReadOnlyAdmin):
    list_display = ["occurred_at", "action", "count", "enduser", "company", "asset", "project"]
    actions = ["export_csv"]
    phone_columns = ("occurred_at", "action", "enduser")
    csv_columns = (
        "id",
        "occurred_at",
        "action",
        "count",
        "enduser_id",
        "enduser__external_id",
        "enduser__email",
        "company_id",
        "company__name",
        "company__external_id",
        "asset__external_id",
        "project__external_id",
        "received_at",
        "message_id",
    )
    list_filter = [("occurred_at", admin.DateFieldListFilter), "action"]
    search_fields = ["=message_id", "action", "enduser__external_id", "company__external_id"]
    list_select_related = ["enduser", "company", "asset", "project"]
    raw_id_fields = ["enduser", "company", "asset", "project"]


@admin.register(MetricValue)
class MetricValueAdmin(ReadOnlyAdmin):
    list_display = ["occurred_at", "metric", "value", "company", "enduser", "asset", "project"]
    list_filter = ["metric", "metric__source", ("occurred_at", admin.DateFieldListFilter)]
    search_fields = [
        "=message_id",
        "company__external_id",
        "company__name",
        "enduser__external_id",
        "asset__external_id",
        "project__external_id",
    ]
    list_select_related = ["company", "enduser", "asset", "project", "metric"]
    raw_id_fields = ["company", "enduser", "asset", "project"]
