"""Read-only run history of the push, with "Push data to Segment" (presentation + services)."""

from __future__ import annotations

from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponseRedirect, JsonResponse
from django.template.loader import render_to_string
from django.urls import path, reverse
from django.utils.html import format_html_join
from django.utils.safestring import mark_safe

from planhat_segment.audit import ADDITION, audit_record
from planhat_segment.display import seconds_text, when_text
from planhat_segment.permissions import admin_view_permissions, has_permission_method

from .models import FailedObject, SyncBatch, SyncModelResult, SyncRun, SyncTrigger
from .selectors import run_failed_objects, sync_run_progress
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
        if not obj.error_messages:
            return "—"
        return format_html_join(mark_safe("<br>"), "{}", ((m,) for m in obj.error_messages))


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


# What a run's page shows, every field read-only: the run first, then its internals.
SYNC_RUN_FIELDS = (
    "started",
    "finished",
    "duration_display",
    "trigger",
    "status",
    "full",
    "synced_models",
    "objects_synced",
    "errors",
    "error",
    "failed_objects_display",
)
SYNC_RUN_INTERNAL_FIELDS = ("lease", "heartbeat")


@admin.register(SyncRun)
class SyncRunAdmin(_ReadOnly, admin.ModelAdmin):
    list_display = (
        "started",
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
    fieldsets = (
        (None, {"fields": SYNC_RUN_FIELDS}),
        # The lease is the worker's business: out of the way, for whoever debugs a stuck run.
        ("Internals", {"classes": ("collapse",), "fields": SYNC_RUN_INTERNAL_FIELDS}),
    )
    readonly_fields = (*SYNC_RUN_FIELDS, *SYNC_RUN_INTERNAL_FIELDS)

    @admin.display(description="Started", ordering="started_at")
    def started(self, obj: SyncRun) -> str:
        return when_text(obj.started_at)

    @admin.display(description="Finished", ordering="finished_at")
    def finished(self, obj: SyncRun) -> str:
        return when_text(obj.finished_at) if obj.finished_at else "—"

    @admin.display(description="Lease expires")
    def lease(self, obj: SyncRun) -> str:
        return when_text(obj.lease_expires_at) if obj.lease_expires_at else "—"

    @admin.display(description="Last heartbeat")
    def heartbeat(self, obj: SyncRun) -> str:
        return when_text(obj.heartbeat_at) if obj.heartbeat_at else "—"

    @admin.display(description="Duration", ordering="duration")
    def duration_display(self, obj: SyncRun) -> str:
        if obj.duration is None:
            return "running…" if obj.status == "running" else "—"
        return seconds_text(obj.duration.total_seconds())

    @admin.display(description="Failed objects")
    def failed_objects_display(self, obj: SyncRun) -> str:
        rows = run_failed_objects(run_id=obj.pk)
        if not rows:
            return "—"
        return render_to_string("admin/warehouse_sync/syncrun/failed_objects.html", {"rows": rows})

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
            path(
                "progress/",
                self.admin_site.admin_view(
                    admin_view_permissions(self.progress_view, GET=("warehouse_sync.view_syncrun",))
                ),
                name="warehouse_sync_syncrun_progress",
            ),
            *super().get_urls(),
        ]

    def push_view(self, request: HttpRequest):
        _push(request, via="run history button")
        return HttpResponseRedirect(reverse("admin:warehouse_sync_syncrun_changelist"))

    def progress_view(self, request: HttpRequest) -> JsonResponse:
        """The running (else last) run's progress, or ``?run=<id>``'s: what the integration
        page polls while a push runs. Read-only JSON."""
        try:
            run_id = int(request.GET["run"]) if request.GET.get("run") else None
        except ValueError:
            return JsonResponse({"error": "run must be a run id"}, status=400)
        progress = sync_run_progress(run_id=run_id)
        if progress is None:
            return JsonResponse({"error": "no such run"}, status=404)
        return JsonResponse(progress, headers={"Cache-Control": "no-store"})


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
