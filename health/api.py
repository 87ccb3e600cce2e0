"""REST API of health: profiles (with nested factors), scores, and recompute on demand.

Views translate HTTP to service calls and back; reads come from selectors.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import exceptions, permissions, status, viewsets
from rest_framework.decorators import action
from rest_framework.filters import OrderingFilter
from rest_framework.request import Request
from rest_framework.response import Response

from planhat_segment.api import ApiPagination
from planhat_segment.models import Company

from . import serializers as s
from .filters import HealthScoreFilter
from .selectors import health_profile_list, health_score_list
from .services import (
    health_profile_create,
    health_profile_delete,
    health_profile_update,
    health_recompute_queue,
    health_scores_recompute,
)

RECOMPUTE_PERMISSION = "health.recompute_healthscore"


class ModelPermissionsWithView(permissions.DjangoModelPermissions):
    """Django's model permissions, reads included (view_<model>): Viewer roles read, only
    roles holding add / change / delete write."""

    perms_map = {
        **permissions.DjangoModelPermissions.perms_map,
        "GET": ["%(app_label)s.view_%(model_name)s"],
        "HEAD": ["%(app_label)s.view_%(model_name)s"],
        "OPTIONS": ["%(app_label)s.view_%(model_name)s"],
    }


class CanRecompute(permissions.BasePermission):
    message = "Starting a recompute needs the 'Can start health score recomputes' permission."

    def has_permission(self, request, view) -> bool:
        return bool(request.user and request.user.has_perm(RECOMPUTE_PERMISSION))


def _as_400(exc: DjangoValidationError) -> exceptions.ValidationError:
    if hasattr(exc, "error_dict"):
        return exceptions.ValidationError(dict(exc.message_dict))
    return exceptions.ValidationError({"non_field_errors": exc.messages})


@extend_schema_view(
    list=extend_schema(summary="List health profiles (first match by order; default last)"),
    retrieve=extend_schema(summary="Get a health profile with its factors"),
    create=extend_schema(summary="Create a health profile with its factors"),
    update=extend_schema(summary="Replace a health profile (factors replaced when given)"),
    partial_update=extend_schema(summary="Change fields of a health profile"),
    destroy=extend_schema(summary="Delete a health profile (never the default one)"),
)
class HealthProfileViewSet(viewsets.ModelViewSet):
    serializer_class = s.HealthProfileSerializer
    permission_classes = (permissions.IsAuthenticated, ModelPermissionsWithView)
    pagination_class = ApiPagination
    filter_backends = ()

    def get_queryset(self):
        return health_profile_list()

    def _factors(self, serializer) -> list[dict] | None:
        return serializer.validated_data.pop("factors", None)

    def _answer(self, pk: int, code: int = status.HTTP_200_OK) -> Response:
        fresh = health_profile_list().get(pk=pk)
        return Response(self.get_serializer(fresh).data, status=code)

    def create(self, request: Request, *args, **kwargs) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        factors = self._factors(serializer) or []
        try:
            profile = health_profile_create(data=serializer.validated_data, factors=factors)
        except DjangoValidationError as exc:
            raise _as_400(exc) from exc
        return self._answer(profile.pk, status.HTTP_201_CREATED)

    def update(self, request: Request, *args, **kwargs) -> Response:
        profile = self.get_object()
        serializer = self.get_serializer(
            profile, data=request.data, partial=kwargs.get("partial", False)
        )
        serializer.is_valid(raise_exception=True)
        factors = self._factors(serializer)
        try:
            health_profile_update(profile=profile, data=serializer.validated_data, factors=factors)
        except DjangoValidationError as exc:
            raise _as_400(exc) from exc
        return self._answer(profile.pk)

    def destroy(self, request: Request, *args, **kwargs) -> Response:
        try:
            health_profile_delete(profile=self.get_object())
        except DjangoValidationError as exc:
            raise _as_400(exc) from exc
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema_view(
    list=extend_schema(
        summary="List health scores, newest first (one row per company per UTC day)",
        description="Filter by company, company_external_id and date (or date_after / "
        "date_before for a company's history).",
    ),
    retrieve=extend_schema(summary="Get one health score with its breakdown"),
)
class HealthScoreViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = s.HealthScoreSerializer
    permission_classes = (permissions.IsAuthenticated, ModelPermissionsWithView)
    pagination_class = ApiPagination
    filter_backends = (DjangoFilterBackend, OrderingFilter)
    filterset_class = HealthScoreFilter
    ordering_fields = ("day", "score", "company")

    def get_queryset(self):
        return health_score_list()

    @extend_schema(
        summary="Recompute health scores",
        description="With company or company_external_id: recomputes that company now and "
        "answers 200 with the summary. Without: queues a recompute of every company on a "
        "worker and answers 202. Idempotent (one row per company per day).",
        request=s.RecomputeRequestSerializer,
        responses={
            200: s.RecomputeResultSerializer,
            202: s.RecomputeResultSerializer,
            400: OpenApiResponse(description="Unknown company or bad date."),
        },
    )
    @action(
        detail=False,
        methods=["post"],
        permission_classes=(permissions.IsAuthenticated, CanRecompute),
        filter_backends=(),
        pagination_class=None,
    )
    def recompute(self, request: Request) -> Response:
        body = s.RecomputeRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        day = data.get("date")
        ids = None
        if "company" in data or "company_external_id" in data:
            companies = Company.objects.filter(is_test=False)
            if "company" in data:
                companies = companies.filter(pk=data["company"])
            if "company_external_id" in data:
                companies = companies.filter(external_id=data["company_external_id"])
            ids = list(companies.values_list("pk", flat=True))
            if not ids:
                field = "company" if "company" in data else "company_external_id"
                raise exceptions.ValidationError({field: ["No such company (or a test company)."]})
        if ids is None:
            health_recompute_queue(day=day)
            return Response({"queued": True}, status=status.HTTP_202_ACCEPTED)
        summary = health_scores_recompute(company_ids=ids, day=day)
        return Response({"queued": False, **summary.as_dict()})
