"""Admin of the workspace's objects: lists that cost the same few queries for any page size.

Saving goes through the ModelForm (full_clean, constraints included); companies and endusers
saved here are announced like API writes, so events waiting for them are matched again.
Also here: the audit log (Django's LogEntry, read-only) and DRF's API-key admin, restricted.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.contrib.admin.models import LogEntry
from django.contrib.auth import get_user_model
from django.db.models import Count, IntegerField, OuterRef, Subquery
from django.db.models.functions import Coalesce
from rest_framework.authtoken.admin import TokenAdmin
from rest_framework.authtoken.models import TokenProxy

from .admin_export import CsvExportMixin
from .models import Asset, Company, CompanyDomain, EndUser, License, Project, Tombstone
from .permissions import OwnAppDeletion
from .services import company_domain_check, enduser_email_check, workspace_objects_changed_notify


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


class WorkspaceObjectAdmin(CsvExportMixin, OwnAppDeletion, admin.ModelAdmin):
    """Shared list behaviour: custom JSON deferred in lists, company joined, created dates;
    CSV export (the filtered list, or the selected rows) for those with
    ``planhat_segment.export_csv``."""

    list_per_page = 100
    date_hierarchy = "created_at"
    readonly_fields = ("created_at", "updated_at")
    actions = ["export_csv"]

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
    # A phone shows these (the health app adds the last two); the rest is on the company page.
    phone_columns = ("name", "health", "last_activity")
    csv_columns = ("id", "name", "external_id", "is_test", "custom", "created_at", "updated_at")
    # Exported when the list has them (the last ones come with the health app's columns).
    csv_extra_columns = (
        "enduser_total",
        "license_total",
        "health_score",
        "health_band",
        "last_activity_at",
        "active_endusers_30d",
        "activity_change_30d",
        "health_mrr",
        "health_mrr_currency",
    )

    def get_search_results(self, request, queryset, search_term):
        found, duplicates = super().get_search_results(request, queryset, search_term)
        match = getattr(request, "resolver_match", None)
        if match and match.url_name == "autocomplete":
            # Company pickers (enduser forms, assigning unassigned users) never offer the
            # test company that "Send test event" uses.
            found = found.filter(is_test=False)
        return found, duplicates

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
    phone_columns = ("display_name", "company")
    csv_columns = (
        "id",
        "external_id",
        "email",
        "name",
        "first_name",
        "last_name",
        "title",
        "company_id",
        "company__name",
        "company__external_id",
        "source",
        "is_test",
        "custom",
        "created_at",
        "updated_at",
    )
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
