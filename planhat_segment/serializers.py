"""API input and output shapes of the workspace's objects. Writes go through services.py.

DRF's automatic UniqueValidators are switched off: uniqueness is checked by the services,
in bulk, with messages that name the object holding the value.
"""

from __future__ import annotations

from rest_framework import serializers

from .models import Asset, Company, EndUser, License, Project

COMPANY_HELP = "The company's id. Give this or company_external_id when creating."
COMPANY_EXTERNAL_ID_HELP = "The company's external id; an alternative to company (its id)."


class CompanyExternalIdField(serializers.CharField):
    """Write: a company reference by external id. Read: the object's company's external id."""

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("required", False)
        kwargs.setdefault("allow_null", True)
        kwargs.setdefault("allow_blank", True)
        kwargs.setdefault("max_length", 255)
        kwargs.setdefault("help_text", COMPANY_EXTERNAL_ID_HELP)
        super().__init__(**kwargs)

    def get_attribute(self, instance):
        # The selectors select_related("company"): no query here.
        return instance.company.external_id if instance.company_id else None


class WorkspaceObjectSerializer(serializers.ModelSerializer):
    class Meta:
        read_only_fields = ("id", "created_at", "updated_at")
        extra_kwargs = {"external_id": {"validators": []}}


class CompanySerializer(WorkspaceObjectSerializer):
    email_domains = serializers.ListField(
        child=serializers.CharField(max_length=255),
        required=False,
        help_text="Email domains that identify this company, e.g. ['acme.com']. "
        "Writing the list replaces the company's domains.",
    )

    class Meta(WorkspaceObjectSerializer.Meta):
        model = Company
        fields = (
            "id",
            "external_id",
            "name",
            "email_domains",
            "owner_email",
            "custom",
            "is_test",
            "created_at",
            "updated_at",
        )
        read_only_fields = (*WorkspaceObjectSerializer.Meta.read_only_fields, "is_test")


class CompanyOwnedSerializer(WorkspaceObjectSerializer):
    company = serializers.IntegerField(
        source="company_id", required=False, min_value=1, help_text=COMPANY_HELP
    )
    company_external_id = CompanyExternalIdField()


class EndUserSerializer(CompanyOwnedSerializer):
    class Meta(WorkspaceObjectSerializer.Meta):
        model = EndUser
        fields = (
            "id",
            "external_id",
            "email",
            "first_name",
            "last_name",
            "name",
            "title",
            "company",
            "company_external_id",
            "source",
            "custom",
            "is_test",
            "created_at",
            "updated_at",
        )
        read_only_fields = (*WorkspaceObjectSerializer.Meta.read_only_fields, "source", "is_test")


class AssetSerializer(CompanyOwnedSerializer):
    class Meta(WorkspaceObjectSerializer.Meta):
        model = Asset
        fields = (
            "id",
            "external_id",
            "name",
            "company",
            "company_external_id",
            "custom",
            "created_at",
            "updated_at",
        )


class ProjectSerializer(CompanyOwnedSerializer):
    class Meta(AssetSerializer.Meta):
        model = Project


class LicenseSerializer(CompanyOwnedSerializer):
    class Meta(WorkspaceObjectSerializer.Meta):
        model = License
        fields = (
            "id",
            "external_id",
            "product",
            "mrr",
            "currency",
            "start_date",
            "end_date",
            "status",
            "company",
            "company_external_id",
            "custom",
            "created_at",
            "updated_at",
        )


class BulkItemResultSerializer(serializers.Serializer):
    index = serializers.IntegerField(help_text="The item's position in the request (from 0).")
    external_id = serializers.CharField(allow_null=True)
    status = serializers.ChoiceField(choices=["created", "updated", "error"])
    id = serializers.IntegerField(allow_null=True, help_text="The object's id; null on error.")
    errors = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        help_text="Field name -> messages; empty unless status is error.",
    )


class BulkUpsertResultSerializer(serializers.Serializer):
    results = BulkItemResultSerializer(many=True)
    created = serializers.IntegerField()
    updated = serializers.IntegerField()
    errors = serializers.IntegerField()
