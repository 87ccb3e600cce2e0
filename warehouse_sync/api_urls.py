from django.urls import path

from .api import SyncRunDetailApi, SyncRunListApi

urlpatterns = [
    path("sync-runs/", SyncRunListApi.as_view(), name="sync-run-list"),
    path("sync-runs/<int:pk>/", SyncRunDetailApi.as_view(), name="sync-run-detail"),
]
