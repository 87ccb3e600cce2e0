"""Admin of the workspace's objects: lists that cost the same few queries for any page size.

Saving goes through the ModelForm (full_clean, constraints included); companies and endusers
saved here are announced like API writes, so events waiting for them are matched again.
Also here: the audit log (Django's LogEntry, read-only) and DRF's API-key admin, restricted.
"""

from __future__ import annotations

import csv
import json
from itertools import chain

from django import forms
from django.contrib import admin
from django.contrib.admin.models import LogEntry
from django.contrib.auth import get_user_model
from django.db.models import Count, IntegerField, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.http import StreamingHttpResponse
from django.utils import timezone
from rest_framework.authtoken.admin import TokenAdmin
from rest_framework.authtoken.models import TokenProxy

from .audit import audit_record
from .models import Asset, Company, CompanyDomain, EndUser, License, Project, Tombstone
from .permissions import OwnAppDeletion, has_permission_method
from .services import company_domain_check, enduser_email_check, workspace_objects_changed_notify

# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection).
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class _Echo:
    """csv.writer writes each row into this and gets it back, so rows can be streamed."""

    def write(self, value: str) -> str:
        return value


def _csv_cell(value) -> str:
    if isinstance(value, dict | list):
        value = json.dumps(value, sort_keys=True)
    if value is None:
        return ""
    value = str(value)
    return "'" + value if value.startswith(_FORMULA_STARTS) else value


def _is_changelist(request) -> bool:
    match = getattr(request, "resolver_match", None)
    return bool(match and match.url_name and match.url_name.endswith("_changelist"))


def _count_of(model, field: str = "company"):
    """A correlated COUNT per company (two joined Counts would multiply each other)."""
    counts = (
        model.objects.filter(**{field: OuterRef("pk")})
        .order_by()
        .values(field)
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(counts, output_field=IntegerField()), 0)


class WorkspaceObjectAdmin(OwnAppDeletion, admin.ModelAdmin):
    """Shared list behaviour: custom JSON deferred in lists, company joined, created dates;
    "Export selected as CSV" for those with ``planhat_segment.export_csv``."""

    list_per_page = 100
    date_hierarchy = "created_at"
    readonly_fields = ("created_at", "updated_at")
    actions = ["export_csv"]

    has_export_permission = has_permission_method("planhat_segment.export_csv")

    @admin.action(description="Export selected as CSV", permissions=["export"])
    def export_csv(self, request, queryset):
        header = [f.attname for f in self.model._meta.concrete_fields]
        rows = queryset.order_by("pk").values_list(*header)
        audit_record(
            user=request.user,
            model=self.model,
            object_repr=f"{queryset.count()} {self.model._meta.verbose_name_plural}",
            message="Exported as CSV (admin action).",
        )
        writer = csv.writer(_Echo())
        lines = (
            writer.writerow([_csv_cell(v) for v in row])
            for row in chain([header], rows.iterator(chunk_size=2000))
        )
        name = f"{self.model._meta.model_name}-{timezone.now():%Y%m%d-%H%M%S}.csv"
        return StreamingHttpResponse(
            lines,
            content_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        if _is_changelist(request):
            qs = qs.defer("custom")
        return qs

    def save_model(self, request, obj, form, change) -> None:
        super().save_model(request, obj, form, change)
        workspace_objects_changed_notify(model=type(obj), pks=[obj.pk])


class CompanyDomainForm(forms.ModelForm):
    class Meta:
        model = CompanyDomain
        fields = ("domain",)

    def clean_domain(self) -> str:
        # Normalised before the form's unique check, which would otherwise miss "ACME.com".
        company_pk = self.instance.company_id if self.instance.pk else None
        return company_domain_check(domain=self.cleaned_data["domain"], company_pk=company_pk)


class CompanyDomainInline(admin.TabularInline):
    model = CompanyDomain
    form = CompanyDomainForm
    extra = 1


@admin.register(Company)
class CompanyAdmin(WorkspaceObjectAdmin):
    list_display = (
        "name",
        "external_id",
        "enduser_count",
        "license_count",
        "is_test",
        "created_at",
        "updated_at",
    )
    search_fields = ("name", "external_id", "domains__domain")
    list_filter = ("is_test", "created_at")
    inlines = (CompanyDomainInline,)

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        if _is_changelist(request):
            qs = qs.annotate(enduser_total=_count_of(EndUser), license_total=_count_of(License))
        return qs

    @admin.display(description="Endusers", ordering="enduser_total")
    def enduser_count(self, obj: Company) -> int:
        return obj.enduser_total

    @admin.display(description="Licenses", ordering="license_total")
    def license_count(self, obj: Company) -> int:
        return obj.license_total


class CompanyOwnedAdmin(WorkspaceObjectAdmin):
    list_select_related = ("company",)
    autocomplete_fields = ("company",)


class EndUserForm(forms.ModelForm):
    class Meta:
        model = EndUser
        fields = (
            "company",
            "external_id",
            "email",
            "first_name",
            "last_name",
            "name",
            "title",
            "custom",
            "is_test",
        )

    def clean_email(self) -> str | None:
        email = self.cleaned_data.get("email")
        enduser_email_check(email=email, enduser_pk=self.instance.pk)
        return email


@admin.register(EndUser)
class EndUserAdmin(CompanyOwnedAdmin):
    form = EndUserForm
    list_display = (
        "display_name",
        "email",
        "external_id",
        "company",
        "source",
        "is_test",
        "created_at",
    )
    search_fields = ("name", "first_name", "last_name", "email", "external_id")
    list_filter = (
        "source",
        "is_test",
        "created_at",
        ("company", admin.RelatedOnlyFieldListFilter),
    )
    readonly_fields = (*WorkspaceObjectAdmin.readonly_fields, "source")


@admin.register(Asset)
class AssetAdmin(CompanyOwnedAdmin):
    list_display = ("name", "external_id", "company", "created_at", "updated_at")
    search_fields = ("name", "external_id")
    list_filter = ("created_at", ("company", admin.RelatedOnlyFieldListFilter))


@admin.register(Project)
class ProjectAdmin(AssetAdmin):
    pass


@admin.register(License)
class LicenseAdmin(CompanyOwnedAdmin):
    list_display = (
        "product",
        "external_id",
        "company",
        "mrr",
        "currency",
        "status",
        "start_date",
        "end_date",
    )
    search_fields = ("product", "external_id", "company__name")
    list_filter = (
        "status",
        "currency",
        "created_at",
        ("company", admin.RelatedOnlyFieldListFilter),
    )


@admin.register(Tombstone)
class TombstoneAdmin(admin.ModelAdmin):
    """Read-only: tombstones are written by deletions and read by the warehouse push."""

    list_display = ("model", "object_pk", "external_id", "company_external_id", "deleted_at")
    list_filter = ("model", "deleted_at")
    search_fields = ("external_id", "company_external_id")
    date_hierarchy = "deleted_at"

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(LogEntry)
class AuditLogAdmin(admin.ModelAdmin):
    """The audit log, read-only: settings changes, token rotations, pushes, reprocessing
    (planhat_segment.audit) and every add / change / delete made in the admin."""

    list_display = ("action_time", "user", "action_flag", "content_type", "object_repr", "what")
    list_filter = ("action_flag", "content_type", "action_time")
    search_fields = ("object_repr", "change_message", "user__username")
    date_hierarchy = "action_time"
    list_select_related = ("user", "content_type")
    fields = ("action_time", "user", "action_flag", "content_type", "object_id", "object_repr")
    readonly_fields = (*fields, "what")

    @admin.display(description="What")
    def what(self, obj: LogEntry) -> str:
        return obj.get_change_message()

    def get_fields(self, request, obj=None):
        return (*self.fields, "what")

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


if admin.site.is_registered(TokenProxy):
    admin.site.unregister(TokenProxy)


@admin.register(TokenProxy)
class ApiTokenAdmin(TokenAdmin):
    """DRF's API keys, for those with the ``authtoken`` permissions (Integration admins). Only a
    superuser sees or makes the keys of superusers: anyone else could otherwise act as one."""

    def get_queryset(self, request):
        queryset = super().get_queryset(request).select_related("user")
        if request.user.is_superuser:
            return queryset
        return queryset.filter(user__is_superuser=False)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "user" and not request.user.is_superuser:
            kwargs["queryset"] = get_user_model().objects.filter(is_superuser=False)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)
