"""Admin: the event log (inbox), activities, metric values and the unassigned-users report.

Presentation plus calls to services: reprocessing and assignment live in ``usage.services``.
"""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path
from django.utils.html import format_html

from planhat_segment.audit import audit_record
from planhat_segment.models import Company, EndUser
from planhat_segment.permissions import admin_view_permissions, has_permission_method

from . import selectors, services
from .models import Activity, InboxEvent, MetricValue
from .privacy import enduser_forget


class AssignForm(forms.Form):
    user_key = forms.CharField(required=False)
    email = forms.CharField(required=False)
    company_id = forms.IntegerField()


AUDIT_IDS_SHOWN = 20


@admin.register(InboxEvent)
class InboxEventAdmin(admin.ModelAdmin):
    """The event log. Statuses and reasons are for everyone who may view events; the raw
    payload (personal data) only for those with ``usage.view_payload``."""

    list_display = [
        "received_at",
        "type",
        "status",
        "reason",
        "user_key",
        "email_key",
        "company_key",
        "short_detail",
        "attempts",
    ]
    list_filter = ["status", "type", "reason", ("received_at", admin.DateFieldListFilter)]
    search_fields = ["=message_id", "user_key", "email_key"]
    date_hierarchy = "received_at"
    actions = ["reprocess_selected"]
    readonly_fields = [
        "message_id",
        "request_id",
        "type",
        "status",
        "reason",
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
        # The payload can be large: never loaded for the list.
        return super().get_queryset(request).defer("payload")

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

    @admin.display(description="detail")
    def short_detail(self, obj):
        return obj.detail[:80] + ("…" if len(obj.detail) > 80 else "")

    @admin.display(description="payload")
    def pretty_payload(self, obj):
        return format_html("<pre>{}</pre>", json.dumps(obj.payload, indent=2, sort_keys=True))

    @admin.action(description="Reprocess selected", permissions=["reprocess"])
    def reprocess_selected(self, request, queryset):
        ids = sorted(queryset.values_list("pk", flat=True))
        count = services.inbox_events_reprocess(ids=ids)
        shown = ", ".join(str(pk) for pk in ids[:AUDIT_IDS_SHOWN])
        more = f" and {len(ids) - AUDIT_IDS_SHOWN} more" if len(ids) > AUDIT_IDS_SHOWN else ""
        audit_record(
            user=request.user,
            model=InboxEvent,
            object_repr=f"{count} event(s)",
            message=f"Reprocessed {count} event(s) (admin action): ids {shown}{more}.",
        )
        self.message_user(request, f"{count} event(s) queued for processing again.")

    def changelist_view(self, request, extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "inbox_counts": selectors.inbox_counts_last_24h(),
            "reason_counts": selectors.inbox_reason_counts_last_24h(),
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
        form = AssignForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                enduser = services.unassigned_user_assign(
                    user_key=form.cleaned_data["user_key"] or None,
                    email=form.cleaned_data["email"] or None,
                    company_id=form.cleaned_data["company_id"],
                )
            except ValidationError as exc:
                form.add_error(None, exc)
            else:
                audit_record(
                    user=request.user,
                    obj=enduser,
                    message=f"Assigned to company '{enduser.company}' from the unassigned users.",
                )
                messages.success(
                    request, f"{enduser} assigned to {enduser.company}; their events are queued."
                )
                return redirect("admin:usage_inboxevent_unassigned")
        context = {
            **self.admin_site.each_context(request),
            "title": "Unassigned users",
            "rows": selectors.unassigned_users_list(),
            "companies": Company.objects.only("pk", "name", "external_id").order_by("name")[:1000],
            "form": form,
            "can_assign": request.user.has_perm("usage.assign_users"),
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/usage/inboxevent/unassigned.html", context)


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Activity)
class ActivityAdmin(ReadOnlyAdmin):
    list_display = ["occurred_at", "action", "count", "enduser", "company", "asset", "project"]
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
