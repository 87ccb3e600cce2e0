"""REST API of the integration: its settings, token rotation, metric definitions.

Reading the settings needs ``view_integrationsettings`` (the tenant token then comes masked);
changing them, and seeing the token, ``change_integrationsettings``; rotating it,
``rotate_tenant_token``. Every change is recorded in the audit log (integrations.audit).
"""

from __future__ import annotations

import django_filters
from django.db import transaction
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from planhat_segment.api import ApiPagination, model_errors_as_400

from .audit import (
    ADDITION,
    CHANGE,
    DELETION,
    browser_key_rotation_record,
    integration_change_record,
    integration_snapshot,
    metric_definition_archive_record,
    metric_definition_record,
    token_rotation_record,
)
from .models import IntegrationSettings, MetricDefinition
from .serializers import (
    BrowserKeyRotationSerializer,
    IntegrationSettingsSerializer,
    MetricDefinitionSerializer,
    TokenRotationSerializer,
)
from .services import (
    browser_key_rotate,
    integration_ensure,
    integration_update,
    metric_definition_archive,
    metric_definition_create,
    metric_definition_purge,
    metric_definition_restore,
    metric_definition_update,
    tenant_token_rotate,
)

VIA = "API"
MANAGE = "integrations.change_integrationsettings"


def _shown(request: Request, integration: IntegrationSettings) -> dict:
    """The settings as this user may see them: secrets only for those who may manage them."""
    context = {"show_secrets": request.user.has_perm(MANAGE)}
    return IntegrationSettingsSerializer(integration, context=context).data


class IntegrationSettingsApi(APIView):
    """The one integration settings row."""

    required_permissions = {
        "GET": ("integrations.view_integrationsettings",),
        "PATCH": (MANAGE,),
    }
    serializer_class = IntegrationSettingsSerializer

    @extend_schema(
        summary="Get the integration's settings", responses=IntegrationSettingsSerializer
    )
    def get(self, request: Request) -> Response:
        return Response(_shown(request, integration_ensure()))

    @extend_schema(
        summary="Change the integration's settings",
        request=IntegrationSettingsSerializer,
        responses=IntegrationSettingsSerializer,
    )
    def patch(self, request: Request) -> Response:
        integration = integration_ensure()
        serializer = IntegrationSettingsSerializer(integration, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        before = integration_snapshot(integration)
        with model_errors_as_400(), transaction.atomic():
            integration = integration_update(integration=integration, **serializer.validated_data)
            integration_change_record(
                user=request.user, before=before, integration=integration, via=VIA
            )
        return Response(_shown(request, integration))


class TenantTokenRotateApi(APIView):
    required_permissions = {"POST": ("integrations.rotate_tenant_token",)}

    @extend_schema(
        summary="Rotate the tenant token",
        description="Issues a new token; the old one keeps working for the grace period.",
        request=None,
        responses=TokenRotationSerializer,
    )
    def post(self, request: Request) -> Response:
        with transaction.atomic():
            row = tenant_token_rotate()
            token_rotation_record(user=request.user, integration=row, via=VIA)
        return Response(
            TokenRotationSerializer(
                {
                    "tenant_token": row.tenant_token,
                    "previous_token_valid_until": row.previous_token_valid_until,
                }
            ).data
        )


class BrowserKeyRotateApi(APIView):
    # The browser key is rotated by whoever may rotate the tenant token.
    required_permissions = {"POST": ("integrations.rotate_tenant_token",)}

    @extend_schema(
        summary="Rotate the browser key (analytics.js)",
        description="Issues a new browser key; the old one keeps working for the grace period.",
        request=None,
        responses=BrowserKeyRotationSerializer,
    )
    def post(self, request: Request) -> Response:
        with transaction.atomic():
            row = browser_key_rotate()
            browser_key_rotation_record(user=request.user, integration=row, via=VIA)
        return Response(
            BrowserKeyRotationSerializer(
                {
                    "browser_key": row.browser_key,
                    "previous_browser_key_valid_until": row.previous_browser_key_valid_until,
                }
            ).data
        )


class MetricDefinitionFilter(django_filters.FilterSet):
    archived = django_filters.BooleanFilter(
        field_name="archived_at",
        lookup_expr="isnull",
        exclude=True,
        help_text="true: only removed (archived) metrics; false: only those in use.",
    )

    class Meta:
        model = MetricDefinition
        fields = ("key", "archived")


class MetricPurgeSerializer(serializers.Serializer):
    confirm_values = serializers.IntegerField(
        min_value=0, help_text="How many stored values you expect to delete (the current count)."
    )


@extend_schema_view(
    list=extend_schema(summary="List metric definitions (in use and archived)"),
    retrieve=extend_schema(summary="Get a metric definition"),
    create=extend_schema(summary="Define a metric (a numeric group trait)"),
    update=extend_schema(summary="Replace a metric definition"),
    partial_update=extend_schema(summary="Change a metric definition"),
    destroy=extend_schema(
        summary="Remove a metric definition (archive it; its values are kept)",
        description="New values stop being recorded; the stored values stay, and "
        "`POST …/restore/` undoes it. Deleting the values is `POST …/purge/`.",
    ),
)
class MetricDefinitionViewSet(viewsets.ModelViewSet):
    permission_model = MetricDefinition
    required_permissions = {
        "restore": ("change",),
        "purge": ("delete",),
    }
    serializer_class = MetricDefinitionSerializer
    pagination_class = ApiPagination
    queryset = MetricDefinition.objects.order_by("key")
    filterset_class = MetricDefinitionFilter
    ordering_fields = ("key", "created_at")

    def create(self, request: Request, *args, **kwargs) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        with model_errors_as_400(), transaction.atomic():
            metric = metric_definition_create(**serializer.validated_data)
            metric_definition_record(user=request.user, metric=metric, flag=ADDITION, via=VIA)
        return Response(self.get_serializer(metric).data, status=status.HTTP_201_CREATED)

    def update(self, request: Request, *args, **kwargs) -> Response:
        metric = self.get_object()
        serializer = self.get_serializer(
            metric, data=request.data, partial=kwargs.get("partial", False)
        )
        serializer.is_valid(raise_exception=True)
        before = {field: getattr(metric, field) for field in ("key", "label", "description")}
        with model_errors_as_400(), transaction.atomic():
            metric = metric_definition_update(metric=metric, **serializer.validated_data)
            metric_definition_record(
                user=request.user, metric=metric, flag=CHANGE, via=VIA, before=before
            )
        return Response(self.get_serializer(metric).data)

    def destroy(self, request: Request, *args, **kwargs) -> Response:
        metric = self.get_object()
        with transaction.atomic():
            metric_definition_archive(metric_id=metric.pk)
            metric_definition_archive_record(
                user=request.user, metric=metric, archived=True, via=VIA
            )
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        summary="Restore a removed (archived) metric definition",
        request=None,
        responses=MetricDefinitionSerializer,
    )
    @action(detail=True, methods=["post"])
    def restore(self, request: Request, pk=None) -> Response:
        metric = self.get_object()
        with transaction.atomic():
            metric = metric_definition_restore(metric_id=metric.pk)
            metric_definition_archive_record(
                user=request.user, metric=metric, archived=False, via=VIA
            )
        return Response(self.get_serializer(metric).data)

    @extend_schema(
        summary="Delete a removed metric definition and its stored values",
        description="Only an archived metric (remove it first), and only when "
        "`confirm_values` is its current number of stored values: a 400 says the number "
        "otherwise, and nothing is deleted.",
        request=MetricPurgeSerializer,
        responses={200: {"type": "object", "properties": {"deleted_values": {"type": "integer"}}}},
    )
    @action(detail=True, methods=["post"])
    def purge(self, request: Request, pk=None) -> Response:
        metric = self.get_object()
        serializer = MetricPurgeSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        with model_errors_as_400(), transaction.atomic():
            deleted = metric_definition_purge(
                metric_id=metric.pk, confirm_values=serializer.validated_data["confirm_values"]
            )
            metric_definition_record(user=request.user, metric=metric, flag=DELETION, via=VIA)
        return Response({"deleted_values": deleted})
