"""REST API of usage data: one view per endpoint, token auth (project defaults).

Each list reads with its model's ``view_*`` permission; the event log's raw payloads (personal
data) are in the answer only for users with ``usage.view_payload``. One write: forgetting an
enduser (``planhat_segment.forget_enduser``).
"""

from __future__ import annotations

from django.core.exceptions import ObjectDoesNotExist
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers
from rest_framework.exceptions import NotFound
from rest_framework.response import Response
from rest_framework.views import APIView

from . import selectors
from .filters import ActivityFilter, InboxEventFilter, MetricValueFilter
from .models import Activity, InboxEvent, MetricValue
from .privacy import enduser_forget
from .serializers import ActivitySerializer, InboxEventSerializer, MetricValueSerializer


class ForgetSummarySerializer(serializers.Serializer):
    enduser_id = serializers.IntegerField()
    raw_events = serializers.IntegerField()
    activities = serializers.IntegerField()
    rollup_rows = serializers.IntegerField()
    audit_entries_scrubbed = serializers.IntegerField()
    tombstone = serializers.BooleanField()


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


class EnduserForgetApi(APIView):
    """``POST /api/endusers/<id>/forget/``: erase one enduser's raw events, usage and personal
    fields (``usage.privacy.enduser_forget``); answers the counts of what was erased."""

    required_permissions = {"POST": ("planhat_segment.forget_enduser",)}

    @extend_schema(request=None, responses={200: ForgetSummarySerializer})
    def post(self, request, enduser_id: int):
        try:
            summary = enduser_forget(enduser_id=enduser_id, user=request.user)
        except ObjectDoesNotExist as exc:
            raise NotFound(str(exc)) from None
        return Response(summary.as_dict())
