"""Read-only run history of the push, with "Push data to Segment" (presentation + services)."""

from __future__ import annotations

from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponseRedirect
from django.urls import path, reverse

from planhat_segment.audit import ADDITION, audit_record
from planhat_segment.permissions import admin_view_permissions, has_permission_method

from .models import FailedObject, SyncBatch, SyncModelResult, SyncRun, SyncTrigger
from .services import SyncRefused, sync_run_start


class _ReadOnly:
    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class SyncModelResultInline(_ReadOnly, admin.TabularInline):
    model = SyncModelResult
    fields = ("model", "objects_synced", "errors", "first_errors")
    readonly_fields = fields
    extra = 0
    can_delete = False

    @admin.display(description="First error messages")
    def first_errors(self, obj: SyncModelResult) -> str:
        return "\n".join(obj.error_messages or []) or "—"


PUSH_PERMISSION = "warehouse_sync.push_to_segment"


def _push(request: HttpRequest, via: str) -> None:
    try:
        run = sync_run_start(trigger=SyncTrigger.MANUAL)
    except SyncRefused as exc:
        messages.error(request, exc.message)
        return
    audit_record(
        user=request.user, obj=run, flag=ADDITION, message=f"Started an incremental push ({via})."
    )
    messages.success(request, f"Push to Segment started (run {run.pk}); refresh to follow it.")


@admin.register(SyncRun)
class SyncRunAdmin(_ReadOnly, admin.ModelAdmin):
    list_display = (
        "started_at",
        "duration_display",
        "trigger",
        "status",
        "full",
        "objects_synced",
        "errors",
    )
    list_filter = ("status", "trigger", "full")
    date_hierarchy = "started_at"
    inlines = [SyncModelResultInline]
    actions = ["push_data_to_segment"]
    fields = (
        "started_at",
        "finished_at",
        "duration",
        "trigger",
        "status",
        "full",
        "synced_models",
        "objects_synced",
        "errors",
        "error",
        "lease_expires_at",
        "heartbeat_at",
    )
    readonly_fields = fields

    @admin.display(description="Duration", ordering="duration")
    def duration_display(self, obj: SyncRun) -> str:
        if obj.duration is None:
            return "running…" if obj.status == "running" else "—"
        return f"{obj.duration.total_seconds():.1f}s"

    has_push_permission = has_permission_method(PUSH_PERMISSION)

    @admin.action(description="Push data to Segment", permissions=["push"])
    def push_data_to_segment(self, request, queryset) -> None:
        # The selection does not matter: a push covers the synced models.
        _push(request, via="admin action")

    def get_urls(self):
        return [
            path(
                "push/",
                self.admin_site.admin_view(
                    admin_view_permissions(self.push_view, POST=(PUSH_PERMISSION,))
                ),
                name="warehouse_sync_syncrun_push",
            ),
            *super().get_urls(),
        ]

    def push_view(self, request: HttpRequest):
        _push(request, via="run history button")
        return HttpResponseRedirect(reverse("admin:warehouse_sync_syncrun_changelist"))


@admin.register(SyncBatch)
class SyncBatchAdmin(_ReadOnly, admin.ModelAdmin):
    list_display = ("run", "sequence", "messages", "body_bytes", "status_code", "attempts", "ok")
    list_filter = ("ok", "status_code")
    list_select_related = ("run",)


@admin.register(FailedObject)
class FailedObjectAdmin(_ReadOnly, admin.ModelAdmin):
    list_display = ("model", "kind", "object_pk", "run", "failed_at", "error")
    list_filter = ("model", "kind")
    list_select_related = ("run",)
