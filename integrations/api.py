"""Staff-only REST API: the integration's settings, token rotation, metric definitions."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import status, viewsets
from rest_framework.permissions import IsAdminUser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from planhat_segment.api import ApiPagination, model_errors_as_400

from .models import MetricDefinition
from .serializers import (
    IntegrationSettingsSerializer,
    MetricDefinitionSerializer,
    TokenRotationSerializer,
)
from .services import (
    integration_ensure,
    integration_update,
    metric_definition_create,
    metric_definition_delete,
    metric_definition_update,
    tenant_token_rotate,
)


class IntegrationSettingsApi(APIView):
    """The one integration settings row."""

    permission_classes = (IsAdminUser,)
    serializer_class = IntegrationSettingsSerializer

    @extend_schema(
        summary="Get the integration's settings", responses=IntegrationSettingsSerializer
    )
    def get(self, request: Request) -> Response:
        return Response(IntegrationSettingsSerializer(integration_ensure()).data)

    @extend_schema(
        summary="Change the integration's settings",
        request=IntegrationSettingsSerializer,
        responses=IntegrationSettingsSerializer,
    )
    def patch(self, request: Request) -> Response:
        integration = integration_ensure()
        serializer = IntegrationSettingsSerializer(integration, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        with model_errors_as_400():
            integration = integration_update(integration=integration, **serializer.validated_data)
        return Response(IntegrationSettingsSerializer(integration).data)


class TenantTokenRotateApi(APIView):
    permission_classes = (IsAdminUser,)

    @extend_schema(
        summary="Rotate the tenant token",
        description="Issues a new token; the old one keeps working for the grace period.",
        request=None,
        responses=TokenRotationSerializer,
    )
    def post(self, request: Request) -> Response:
        row = tenant_token_rotate()
        return Response(
            TokenRotationSerializer(
                {
                    "tenant_token": row.tenant_token,
                    "previous_token_valid_until": row.previous_token_valid_until,
                }
            ).data
        )


@extend_schema_view(
    list=extend_schema(summary="List metric definitions"),
    retrieve=extend_schema(summary="Get a metric definition"),
    create=extend_schema(summary="Define a metric (a numeric group trait)"),
    update=extend_schema(summary="Replace a metric definition"),
    partial_update=extend_schema(summary="Change a metric definition"),
    destroy=extend_schema(summary="Delete a metric definition and its values"),
)
class MetricDefinitionViewSet(viewsets.ModelViewSet):
    permission_classes = (IsAdminUser,)
    serializer_class = MetricDefinitionSerializer
    pagination_class = ApiPagination
    queryset = MetricDefinition.objects.order_by("key")
    filterset_fields = ("key",)
    ordering_fields = ("key", "created_at")

    def create(self, request: Request, *args, **kwargs) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        with model_errors_as_400():
            metric = metric_definition_create(**serializer.validated_data)
        return Response(self.get_serializer(metric).data, status=status.HTTP_201_CREATED)

    def update(self, request: Request, *args, **kwargs) -> Response:
        metric = self.get_object()
        serializer = self.get_serializer(
            metric, data=request.data, partial=kwargs.get("partial", False)
        )
        serializer.is_valid(raise_exception=True)
        with model_errors_as_400():
            metric = metric_definition_update(metric=metric, **serializer.validated_data)
        return Response(self.get_serializer(metric).data)

    def destroy(self, request: Request, *args, **kwargs) -> Response:
        metric_definition_delete(metric_id=self.get_object().pk)
        return Response(status=status.HTTP_204_NO_CONTENT)
