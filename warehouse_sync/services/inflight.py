"""Batches in flight: HTTP in a few threads while the run's thread reads and packs the next.

Only the HTTP call runs in the pool; every database write stays in the run's own thread,
which takes the outcomes back in submission order (so accounting is deterministic).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor

from .client import BatchOutcome, SegmentClient, WriteKeyRejected
from .packing import Batch

# What a post gives back: its outcome, or the 401/403 that stops the run.
Result = BatchOutcome | WriteKeyRejected


class InFlight:
    """Keeps up to ``concurrency`` - 1 batches posting while the next one is packed."""

    def __init__(self, *, client: SegmentClient, concurrency: int) -> None:
        self.client = client
        self.concurrency = max(1, concurrency)
        self.pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="push")
        self.pending: deque[tuple[Batch, Future]] = deque()

    def submit(self, batch: Batch) -> None:
        """Pace (in this thread: the pace is the run's), then post in the pool."""
        self.client.pace(batch.count)
        self.pending.append((batch, self.pool.submit(self._post, batch.body)))

    def done(self, *, drain: bool = False) -> Iterator[tuple[Batch, Result]]:
        """The batches to account now, oldest first: enough to leave room for the next
        submit, or every one when ``drain``. Waits for their answers."""
        while self.pending and (drain or len(self.pending) >= self.concurrency):
            batch, future = self.pending.popleft()
            yield batch, future.result()

    def close(self) -> None:
        """Stop: batches not yet accounted are dropped (the run failed; its mark stays)."""
        for _batch, future in self.pending:
            future.cancel()
        self.pool.shutdown(wait=True)

    def _post(self, body: bytes) -> Result:
        try:
            return self.client.post(body=body)
        except WriteKeyRejected as exc:  # returned, so the run's thread records its batch
            return exc
