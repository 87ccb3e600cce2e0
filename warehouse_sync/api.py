"""REST API of the push (read-only): the run history with per-model results nested."""

from __future__ import annotations

from rest_framework import generics

from .models import SyncRun
from .selectors import sync_runs_list
from .serializers import SyncRunSerializer


class SyncRunListApi(generics.ListAPIView):
    permission_model = SyncRun
    serializer_class = SyncRunSerializer
    filterset_fields = ["status", "trigger", "full"]
    ordering_fields = ["started_at"]

    def get_queryset(self):
        return sync_runs_list()


class SyncRunDetailApi(generics.RetrieveAPIView):
    permission_model = SyncRun
    serializer_class = SyncRunSerializer

    def get_queryset(self):
        return sync_runs_list()
