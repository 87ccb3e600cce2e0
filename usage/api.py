"""Read-only REST API of usage data: one view per endpoint, token auth (project defaults)."""

from __future__ import annotations

from rest_framework import generics

from . import selectors
from .filters import ActivityFilter, InboxEventFilter, MetricValueFilter
from .serializers import ActivitySerializer, InboxEventSerializer, MetricValueSerializer


class ActivityListApi(generics.ListAPIView):
    """Activities (track / page / screen), newest first."""

    serializer_class = ActivitySerializer
    filterset_class = ActivityFilter
    ordering_fields = ["occurred_at", "received_at", "id"]

    def get_queryset(self):
        return selectors.activity_list()


class MetricValueListApi(generics.ListAPIView):
    """Company metric values (from group calls), newest first."""

    serializer_class = MetricValueSerializer
    filterset_class = MetricValueFilter
    ordering_fields = ["occurred_at", "id"]

    def get_queryset(self):
        return selectors.metric_value_list()


class InboxEventListApi(generics.ListAPIView):
    """The event log: raw inbox rows with their status and reason."""

    serializer_class = InboxEventSerializer
    filterset_class = InboxEventFilter
    ordering_fields = ["received_at", "id"]

    def get_queryset(self):
        return selectors.inbox_event_list()
