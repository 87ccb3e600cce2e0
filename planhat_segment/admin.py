"""Admin of the workspace's objects: lists that cost the same few queries for any page size.

Saving goes through the ModelForm (full_clean, constraints included); companies and endusers
saved here are announced like API writes, so events waiting for them are matched again.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.db.models import Count, IntegerField, OuterRef, Subquery
from django.db.models.functions import Coalesce

from .models import Asset, Company, CompanyDomain, EndUser, License, Project, Tombstone
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


class WorkspaceObjectAdmin(admin.ModelAdmin):
    """Shared list behaviour: custom JSON deferred in lists, company joined, created dates."""

    list_per_page = 100
    date_hierarchy = "created_at"
    readonly_fields = ("created_at", "updated_at")

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
