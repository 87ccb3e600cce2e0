"""CSV export of admin lists, streamed: what a change list shows (its filters, search, date
drill-down and order), row after row, never the whole list in memory.

Two ways in, both for those with ``planhat_segment.export_csv`` (CS managers, Integration
admins) and the list's view permission: the *Export CSV* button beside a list exports the
filtered list (``<changelist>/export/?<the list's query>``), and the action "Export selected
as CSV" exports the ticked rows.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime
from itertools import chain

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponseRedirect, StreamingHttpResponse
from django.urls import path, resolve, reverse
from django.utils import timezone

from .audit import audit_record
from .permissions import admin_view_permissions, has_permission_method, model_permission

EXPORT_PERMISSION = "planhat_segment.export_csv"
CHUNK_ROWS = 2000
# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection).
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class _Echo:
    """csv.writer writes each row into this and gets it back, so rows can be streamed."""

    def write(self, value: str) -> str:
        return value


def csv_cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        value = json.dumps(value, sort_keys=True)
    elif isinstance(value, datetime):
        value = value.astimezone(UTC).isoformat()  # ISO 8601 in UTC, whatever zone is shown
    elif isinstance(value, date):
        value = value.isoformat()
    value = str(value)
    return "'" + value if value.startswith(_FORMULA_STARTS) else value


def csv_lines(header: list[str], rows: Iterable[tuple]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    for row in chain([header], rows):
        yield writer.writerow([csv_cell(value) for value in row])


def csv_response(*, name: str, header: list[str], rows: Iterable[tuple]) -> StreamingHttpResponse:
    filename = f"{name}-{timezone.now():%Y%m%d-%H%M%S}.csv"
    return StreamingHttpResponse(
        csv_lines(header, rows),
        content_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


class CsvExportMixin:
    """ModelAdmin mixin: the filtered list's export (a URL beside the change list) and the
    "Export selected as CSV" action.

    ``csv_columns`` are value paths (``"company__external_id"``); ``csv_extra_columns`` are
    annotations exported only when the list's queryset has them (e.g. the company list's
    health columns, which the health app adds).
    """

    csv_columns: tuple[str, ...] = ()
    csv_extra_columns: tuple[str, ...] = ()

    has_export_permission = has_permission_method(EXPORT_PERMISSION)

    def _csv_columns(self, queryset: QuerySet) -> list[str]:
        columns = list(self.csv_columns) or [f.attname for f in self.model._meta.concrete_fields]
        annotations = queryset.query.annotations
        return columns + [c for c in self.csv_extra_columns if c in annotations]

    def csv_stream(self, request: HttpRequest, queryset: QuerySet, *, count: int, how: str):
        columns = self._csv_columns(queryset)
        opts = self.model._meta
        audit_record(
            user=request.user,
            model=self.model,
            object_repr=f"{count} {opts.verbose_name_plural}",
            message=f"Exported as CSV ({how}).",
        )
        rows = queryset.values_list(*columns).iterator(chunk_size=CHUNK_ROWS)
        return csv_response(name=opts.model_name, header=columns, rows=rows)

    @admin.action(description="Export selected as CSV", permissions=["export"])
    def export_csv(self, request, queryset):
        return self.csv_stream(
            request, queryset.order_by("pk"), count=queryset.count(), how="admin action"
        )

    def csv_export_view(self, request: HttpRequest):
        opts = self.model._meta
        changelist = f"admin:{opts.app_label}_{opts.model_name}_changelist"
        # Exactly the change list's queryset: the admins (and health's company list) add their
        # columns and filters only for a request that is the change list's.
        request.resolver_match = resolve(reverse(changelist))
        try:
            cl = self.get_changelist_instance(request)
        except IncorrectLookupParameters:
            return HttpResponseRedirect(reverse(changelist) + "?e=1")
        return self.csv_stream(request, cl.queryset, count=cl.result_count, how="filtered list")

    def get_urls(self):
        opts = self.model._meta
        needs = (model_permission(self.model, "view"), EXPORT_PERMISSION)
        return [
            path(
                "export/",
                self.admin_site.admin_view(admin_view_permissions(self.csv_export_view, GET=needs)),
                name=f"{opts.app_label}_{opts.model_name}_export",
            ),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        extra_context = dict(extra_context or {})
        if self.has_export_permission(request):
            opts = self.model._meta
            query = request.GET.urlencode()
            url = reverse(f"admin:{opts.app_label}_{opts.model_name}_export")
            extra_context["csv_export_url"] = url + (f"?{query}" if query else "")
        return super().changelist_view(request, extra_context=extra_context)
