"""Read-only REST API of usage data: one view per endpoint, token auth (project defaults).

Each view reads with its model's ``view_*`` permission; the event log's raw payloads (personal
data) are in the answer only for users with ``usage.view_payload``.
"""

from __future__ import annotations

from rest_framework import generics

from . import selectors
from .filters import ActivityFilter, InboxEventFilter, MetricValueFilter
from .models import Activity, InboxEvent, MetricValue
from .serializers import ActivitySerializer, InboxEventSerializer, MetricValueSerializer


class InboxEventWithoutPayloadSerializer(InboxEventSerializer):
    class Meta(InboxEventSerializer.Meta):
        fields = [f for f in InboxEventSerializer.Meta.fields if f != "payload"]
        read_only_fields = fields


class ActivityListApi(generics.ListAPIView):
    """Activities (track / page / screen), newest first."""

    permission_model = Activity
    serializer_class = ActivitySerializer
    filterset_class = ActivityFilter
    ordering_fields = ["occurred_at", "received_at", "id"]

    def get_queryset(self):
        return selectors.activity_list()


class MetricValueListApi(generics.ListAPIView):
    """Company metric values (from group calls), newest first."""

    permission_model = MetricValue
    serializer_class = MetricValueSerializer
    filterset_class = MetricValueFilter
    ordering_fields = ["occurred_at", "id"]

    def get_queryset(self):
        return selectors.metric_value_list()


class InboxEventListApi(generics.ListAPIView):
    """The event log: raw inbox rows with their status and reason."""

    permission_model = InboxEvent
    serializer_class = InboxEventSerializer
    filterset_class = InboxEventFilter
    ordering_fields = ["received_at", "id"]

    def get_serializer_class(self):
        if self.request is not None and self.request.user.has_perm("usage.view_payload"):
            return InboxEventSerializer
        return InboxEventWithoutPayloadSerializer

    def get_queryset(self):
        return selectors.inbox_event_list()
