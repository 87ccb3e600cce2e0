"""Writes and decisions of the push to Segment (the public service API of the app)."""

from .client import SegmentClient, WriteKeyRejected
from .runs import (
    SyncRefused,
    sync_run_execute,
    sync_run_refusal,
    sync_run_start,
    sync_runs_reap_lapsed,
)

__all__ = [
    "SegmentClient",
    "SyncRefused",
    "WriteKeyRejected",
    "sync_run_execute",
    "sync_run_refusal",
    "sync_run_start",
    "sync_runs_reap_lapsed",
]
