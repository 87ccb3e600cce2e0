"""Writes and decisions of the push to Segment (the public service API of the app)."""

from .client import SegmentClient, WriteKeyRejected
from .retention import PurgeSummary, sync_history_purge
from .runs import (
    SyncRefused,
    sync_run_execute,
    sync_run_refusal,
    sync_run_start,
    sync_runs_reap_lapsed,
)

__all__ = [
    "PurgeSummary",
    "SegmentClient",
    "SyncRefused",
    "WriteKeyRejected",
    "sync_history_purge",
    "sync_run_execute",
    "sync_run_refusal",
    "sync_run_start",
    "sync_runs_reap_lapsed",
]
