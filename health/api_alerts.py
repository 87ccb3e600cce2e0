"""REST API of alerts: ``/api/alert-rules/``, ``/api/alerts/`` and ``/api/webhooks/``.

Views translate HTTP to ``health.alerts`` services and back. Each view declares what it
needs in the project's style — ``permission_model`` (reads need ``view_*``, POST ``add_*``,
PUT / PATCH ``change_*``, DELETE ``delete_*``) and ``required_permissions`` per action — and
the project-wide default permission class (``planhat_segment.permissions``) enforces it.
"""

from __future__ import annotations

from contextlib import contextmanager

import django_filters as filters
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Count, Q
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import exceptions, mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from planhat_segment.api import ApiPagination
from planhat_segment.services import error_dict

from . import serializers_alerts as s
from .alerts import (
    AlertStateError,
    alert_acknowledge,
    alert_resolve,
    alert_rule_create,
    alert_rule_delete,
    alert_rule_update,
    alerts_evaluate,
    webhook_create,
    webhook_delete,
    webhook_update,
)
from .models_alerts import ACTIVE_STATUSES, Alert, AlertRule, AlertStatus, RuleKind, Webhook


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The alert is not in a state that allows this."
    default_code = "conflict"


@contextmanager
def service_errors():
    """A service's ValidationError → 400 naming the fields; a state conflict → 409."""
    try:
        yield
    except DjangoValidationError as exc:
        raise exceptions.ValidationError(error_dict(exc)) from exc
    except AlertStateError as exc:
        raise Conflict(str(exc)) from exc


class AlertsViewSet(viewsets.GenericViewSet):
    # Permissions: the project's default class (planhat_segment.permissions) reads each
    # view's ``permission_model`` / ``required_permissions``.
    pagination_class = ApiPagination


# --- Rules ------------------------------------------------------------------------------------


class AlertRuleFilter(filters.FilterSet):
    kind = filters.ChoiceFilter(choices=RuleKind.choices)
    enabled = filters.BooleanFilter()

    class Meta:
        model = AlertRule
        fields = ("kind", "enabled")


def _rule_data(validated: dict) -> tuple[dict, list | None]:
    data = dict(validated)
    return data, data.pop("webhooks", None)


@extend_schema_view(
    list=extend_schema(summary="List alert rules"),
    retrieve=extend_schema(summary="Get an alert rule"),
    create=extend_schema(
        summary="Create an alert rule",
        description="A missing or meaningless parameter for the chosen kind is a 400 naming it.",
    ),
    update=extend_schema(summary="Replace an alert rule"),
    partial_update=extend_schema(
        summary="Change fields of an alert rule",
        description="Changing kind drops the old kind's parameters not given again; "
        "disabling a rule resolves its active alerts.",
    ),
    destroy=extend_schema(summary="Delete an alert rule with its alerts"),
)
class AlertRuleViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, AlertsViewSet
):
    permission_model = AlertRule
    required_permissions = {"evaluate": ("health.evaluate_alertrule",)}
    serializer_class = s.AlertRuleSerializer
    filterset_class = AlertRuleFilter
    ordering_fields = ("id", "name", "kind", "created_at")
    ordering = ("id",)

    def get_queryset(self):
        return (
            AlertRule.objects.select_related("metric")
            .prefetch_related("webhooks")
            .annotate(active_total=Count("alerts", filter=Q(alerts__status__in=ACTIVE_STATUSES)))
            .order_by("id")
        )

    def _answer(self, rule: AlertRule, code: int = status.HTTP_200_OK) -> Response:
        return Response(self.get_serializer(self.get_queryset().get(pk=rule.pk)).data, status=code)

    def create(self, request: Request) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data, webhooks = _rule_data(serializer.validated_data)
        with service_errors():
            rule = alert_rule_create(data=data, webhooks=webhooks)
        return self._answer(rule, status.HTTP_201_CREATED)

    def update(self, request: Request, pk=None, partial: bool = False) -> Response:
        rule = self.get_object()
        serializer = self.get_serializer(rule, data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        data, webhooks = _rule_data(serializer.validated_data)
        with service_errors():
            alert_rule_update(rule=rule, data=data, webhooks=webhooks)
        return self._answer(rule)

    def partial_update(self, request: Request, pk=None) -> Response:
        return self.update(request, pk, partial=True)

    def perform_destroy(self, instance: AlertRule) -> None:
        alert_rule_delete(rule=instance)

    @extend_schema(
        summary="Evaluate the alert rules now",
        description="Evaluates the enabled rules (all, or the ids given) for a UTC day, "
        "synchronously: opens alerts whose condition holds, resolves those whose condition "
        "cleared (idempotent) and queues their notifications. Answers what it did.",
        request=s.EvaluateRequestSerializer,
        responses={200: s.EvaluationSerializer},
    )
    @action(detail=False, methods=["post"], filter_backends=(), pagination_class=None)
    def evaluate(self, request: Request) -> Response:
        serializer = s.EvaluateRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        summary = alerts_evaluate(
            day=serializer.validated_data.get("day"),
            rule_ids=serializer.validated_data.get("rules"),
        )
        return Response(summary.as_dict())


# --- Alerts -----------------------------------------------------------------------------------


class AlertFilter(filters.FilterSet):
    status = filters.MultipleChoiceFilter(
        choices=AlertStatus.choices, help_text="open, acknowledged or resolved (repeatable)."
    )
    rule = filters.NumberFilter(field_name="rule_id", help_text="The rule's id.")
    company = filters.NumberFilter(field_name="company_id", help_text="The company's id.")
    company_external_id = filters.CharFilter(
        field_name="company__external_id", help_text="The company's external id."
    )
    kind = filters.ChoiceFilter(field_name="rule__kind", choices=RuleKind.choices)
    opened_since = filters.IsoDateTimeFilter(field_name="opened_at", lookup_expr="gte")

    class Meta:
        model = Alert
        fields = ("status", "rule", "company", "company_external_id", "kind", "opened_since")


ALERT_STATE_RESPONSES = {
    404: OpenApiResponse(description="No such alert."),
    409: OpenApiResponse(description="The alert is already resolved."),
}


@extend_schema_view(
    list=extend_schema(summary="List alerts (newest first)"),
    retrieve=extend_schema(summary="Get an alert, with its notification deliveries"),
)
class AlertViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, AlertsViewSet):
    permission_model = Alert
    required_permissions = {
        "acknowledge": ("health.acknowledge_alert",),
        "resolve": ("health.resolve_alert",),
    }
    serializer_class = s.AlertSerializer
    filterset_class = AlertFilter
    ordering_fields = ("opened_at", "resolved_at", "id")
    ordering = ("-opened_at", "-id")

    def get_queryset(self):
        return (
            Alert.objects.select_related("rule", "company", "acknowledged_by", "resolved_by")
            .prefetch_related("deliveries")
            .order_by("-opened_at", "-id")
        )

    @extend_schema(
        summary="Acknowledge an alert",
        description="Open → acknowledged. Acknowledging again changes nothing. The alert still "
        "resolves by itself when its condition clears.",
        request=None,
        responses={200: s.AlertSerializer, **ALERT_STATE_RESPONSES},
    )
    @action(detail=True, methods=["post"])
    def acknowledge(self, request: Request, pk=None) -> Response:
        with service_errors():
            alert = alert_acknowledge(alert=self.get_object(), user=request.user)
        return Response(self.get_serializer(self.get_queryset().get(pk=alert.pk)).data)

    @extend_schema(
        summary="Resolve an alert",
        description="Open or acknowledged → resolved by you, with an optional note. The "
        "rule's cooldown runs from now.",
        request=s.AlertResolveSerializer,
        responses={200: s.AlertSerializer, **ALERT_STATE_RESPONSES},
    )
    @action(detail=True, methods=["post"])
    def resolve(self, request: Request, pk=None) -> Response:
        body = s.AlertResolveSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        with service_errors():
            alert = alert_resolve(
                alert=self.get_object(), user=request.user, note=body.validated_data.get("note", "")
            )
        return Response(self.get_serializer(self.get_queryset().get(pk=alert.pk)).data)


# --- Webhooks ---------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(summary="List webhooks (secrets are never returned)"),
    retrieve=extend_schema(summary="Get a webhook"),
    create=extend_schema(
        summary="Create a webhook",
        description="http(s) only; private, loopback and link-local addresses are refused "
        "unless the host is in WEBHOOK_ALLOWED_HOSTS. The secret is write-only.",
    ),
    update=extend_schema(summary="Replace a webhook (leave secret out to keep it)"),
    partial_update=extend_schema(summary="Change fields of a webhook"),
    destroy=extend_schema(summary="Delete a webhook (its past deliveries stay)"),
)
class WebhookViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, AlertsViewSet
):
    permission_model = Webhook
    serializer_class = s.WebhookSerializer
    filterset_fields = ("enabled",)
    ordering_fields = ("id", "name")
    ordering = ("id",)

    def get_queryset(self):
        return Webhook.objects.order_by("id")

    def create(self, request: Request) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        with service_errors():
            webhook = webhook_create(data=dict(serializer.validated_data))
        return Response(self.get_serializer(webhook).data, status=status.HTTP_201_CREATED)

    def update(self, request: Request, pk=None, partial: bool = False) -> Response:
        webhook = self.get_object()
        serializer = self.get_serializer(webhook, data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        with service_errors():
            webhook_update(webhook=webhook, data=dict(serializer.validated_data))
        return Response(self.get_serializer(webhook).data)

    def partial_update(self, request: Request, pk=None) -> Response:
        return self.update(request, pk, partial=True)

    def perform_destroy(self, instance: Webhook) -> None:
        webhook_delete(webhook=instance)
