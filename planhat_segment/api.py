"""REST API of the workspace's objects: CRUD, filters, search and bulk upsert by external id.

Views translate HTTP to service calls (services.py) and back; reads come from selectors.py.
"""

from __future__ import annotations

from contextlib import contextmanager

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import exceptions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.filters import OrderingFilter, SearchFilter
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response

from . import filters
from . import serializers as s
from .models import Asset, Company, EndUser, License, Project, WorkspaceObject
from .selectors import workspace_object_get, workspace_objects_list
from .services import (
    CONCURRENT_WRITE,
    BulkItem,
    ConcurrentWriteError,
    bulk_upsert_max_items,
    error_dict,
    workspace_object_create,
    workspace_object_delete,
    workspace_object_update,
    workspace_objects_bulk_upsert,
)


class ApiPagination(PageNumberPagination):
    """PAGE_SIZE by default; clients may ask for up to API_MAX_PAGE_SIZE with ?page_size=."""

    page_size_query_param = "page_size"

    @property
    def max_page_size(self) -> int:  # read per request, so tests can override the setting
        return settings.API_MAX_PAGE_SIZE


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "Request body too large."
    default_code = "payload_too_large"


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = CONCURRENT_WRITE
    default_code = "conflict"


@contextmanager
def model_errors_as_400():
    """A service's Django ValidationError becomes a DRF 400 with the same field names;
    a lost race for a unique value becomes a 409 (retrying is safe)."""
    try:
        yield
    except DjangoValidationError as exc:
        raise exceptions.ValidationError(error_dict(exc)) from exc
    except ConcurrentWriteError as exc:
        raise Conflict(str(exc)) from exc


def _bulk_items(payload) -> list:
    if isinstance(payload, dict) and "items" in payload:
        payload = payload["items"]
    if not isinstance(payload, list):
        raise exceptions.ValidationError(
            {"detail": 'Send a JSON array of objects, or an object {"items": [...]}.'}
        )
    limit = bulk_upsert_max_items()
    if len(payload) > limit:
        raise exceptions.ValidationError(
            {"detail": f"Too many items: {len(payload)}; at most {limit} per request."}
        )
    return payload


def _external_id_echo(raw) -> str | None:
    """The external id as sent, for the answer of any item, valid or not."""
    value = raw.get("external_id") if isinstance(raw, dict) else None
    return None if value is None or isinstance(value, dict | list) else str(value)


BULK_DESCRIPTION = (
    "Create or update up to BULK_UPSERT_MAX_ITEMS objects by external id. Body: a JSON array "
    'of objects, or {"items": [...]}. Every item needs external_id. Fields an item leaves out '
    "keep their current values. Valid items are written even when others are rejected; the "
    "answer lists one result per item, in input order."
)


class WorkspaceObjectViewSet(viewsets.ModelViewSet):
    """List, retrieve, create, update, delete and bulk-upsert one kind of workspace object."""

    model: type[WorkspaceObject]
    # Reads need view_<model>, writes add / change / delete (planhat_segment.permissions);
    # a bulk upsert creates and updates, so it needs both.
    required_permissions = {"bulk_upsert": ("add", "change")}
    pagination_class = ApiPagination
    filter_backends = (DjangoFilterBackend, SearchFilter, OrderingFilter)
    ordering_fields = ("id", "external_id", "name", "created_at", "updated_at")

    @property
    def permission_model(self) -> type[WorkspaceObject]:
        return self.model

    def get_queryset(self):
        return workspace_objects_list(model=self.model)

    def _answer(self, instance: WorkspaceObject, code: int = status.HTTP_200_OK) -> Response:
        # Re-read with the selector's joins, so the answer shows what is stored.
        fresh = workspace_object_get(model=self.model, pk=instance.pk)
        return Response(self.get_serializer(fresh).data, status=code)

    def create(self, request: Request, *args, **kwargs) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        with model_errors_as_400():
            instance = workspace_object_create(model=self.model, data=serializer.validated_data)
        return self._answer(instance, status.HTTP_201_CREATED)

    def update(self, request: Request, *args, **kwargs) -> Response:
        instance = self.get_object()
        serializer = self.get_serializer(
            instance, data=request.data, partial=kwargs.get("partial", False)
        )
        serializer.is_valid(raise_exception=True)
        with model_errors_as_400():
            workspace_object_update(instance=instance, data=serializer.validated_data)
        return self._answer(instance)

    def destroy(self, request: Request, *args, **kwargs) -> Response:
        workspace_object_delete(instance=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @action(detail=False, methods=["post"], url_path="bulk_upsert", filter_backends=())
    def bulk_upsert(self, request: Request) -> Response:
        length = request.META.get("CONTENT_LENGTH") or "0"
        max_bytes = settings.BULK_UPSERT_MAX_BYTES
        if length.isdigit() and int(length) > max_bytes:
            # DRF's JSON parser reads the body with no limit of its own.
            raise PayloadTooLarge(f"Request body over {max_bytes} bytes (BULK_UPSERT_MAX_BYTES).")
        raw_items = _bulk_items(request.data)
        # One serializer validates every item's fields (partial: an update may send only some).
        checker = self.get_serializer_class()(partial=True, context=self.get_serializer_context())
        items: list[BulkItem] = []
        for raw in raw_items:
            echo = _external_id_echo(raw)
            if not isinstance(raw, dict):
                items.append(BulkItem({}, echo, {"non_field_errors": ["Not a JSON object."]}))
                continue
            try:
                items.append(BulkItem(checker.run_validation(raw), echo))
            except serializers.ValidationError as exc:
                detail = (
                    exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
                )
                items.append(
                    BulkItem({}, echo, {k: [str(m) for m in v] for k, v in detail.items()})
                )
        with model_errors_as_400():
            result = workspace_objects_bulk_upsert(model=self.model, items=items)
        return Response(
            {
                "results": [
                    {
                        "index": r.index,
                        "external_id": r.external_id,
                        "status": r.status,
                        "id": r.id,
                        "errors": r.errors,
                    }
                    for r in result.results
                ],
                "created": result.count("created"),
                "updated": result.count("updated"),
                "errors": result.count("error"),
            }
        )


def _documented(viewset: type[WorkspaceObjectViewSet], plural: str):
    """OpenAPI docs for one model's viewset, with the bulk upsert's request and answer."""
    example_item = {"external_id": "ACME-001", "name": "Acme Inc."}
    return extend_schema_view(
        list=extend_schema(summary=f"List {plural}"),
        retrieve=extend_schema(summary=f"Get one of the {plural}"),
        create=extend_schema(summary=f"Create one of the {plural}"),
        update=extend_schema(summary=f"Replace one of the {plural}"),
        partial_update=extend_schema(summary=f"Change fields of one of the {plural}"),
        destroy=extend_schema(summary=f"Delete one of the {plural} (leaves a tombstone)"),
        bulk_upsert=extend_schema(
            summary=f"Bulk upsert {plural} by external id",
            description=BULK_DESCRIPTION,
            request=viewset.serializer_class(many=True),
            responses={
                200: s.BulkUpsertResultSerializer,
                400: OpenApiResponse(description="Not an array of items, or too many items."),
                409: OpenApiResponse(description="A concurrent write took a unique value."),
                413: OpenApiResponse(description="Body over BULK_UPSERT_MAX_BYTES."),
            },
            examples=[OpenApiExample("One company", value=[example_item], request_only=True)]
            if viewset.model is Company
            else [],
        ),
    )(viewset)


class CompanyViewSet(WorkspaceObjectViewSet):
    model = Company
    serializer_class = s.CompanySerializer
    filterset_class = filters.CompanyFilter
    search_fields = ("name", "external_id", "domains__domain")


class EndUserViewSet(WorkspaceObjectViewSet):
    model = EndUser
    serializer_class = s.EndUserSerializer
    filterset_class = filters.EndUserFilter
    search_fields = ("name", "first_name", "last_name", "email", "external_id")
    ordering_fields = (*WorkspaceObjectViewSet.ordering_fields, "email")


class AssetViewSet(WorkspaceObjectViewSet):
    model = Asset
    serializer_class = s.AssetSerializer
    filterset_class = filters.AssetFilter
    search_fields = ("name", "external_id")


class ProjectViewSet(WorkspaceObjectViewSet):
    model = Project
    serializer_class = s.ProjectSerializer
    filterset_class = filters.ProjectFilter
    search_fields = ("name", "external_id")


class LicenseViewSet(WorkspaceObjectViewSet):
    model = License
    serializer_class = s.LicenseSerializer
    filterset_class = filters.LicenseFilter
    search_fields = ("product", "external_id")
    ordering_fields = (
        "id",
        "external_id",
        "product",
        "mrr",
        "start_date",
        "created_at",
        "updated_at",
    )


CompanyViewSet = _documented(CompanyViewSet, "companies")
EndUserViewSet = _documented(EndUserViewSet, "endusers")
AssetViewSet = _documented(AssetViewSet, "assets")
ProjectViewSet = _documented(ProjectViewSet, "projects")
LicenseViewSet = _documented(LicenseViewSet, "licenses")
