"""Packing serialised messages into batch bodies under Segment's limits (no I/O).

Segment takes at most 500 KB and 2,500 messages per request, and 32 KB per message
(DESIGN.md §4.3); the limits in settings keep a margin. A message over its limit is not
packed: it is handed to ``reject`` (an error on its model's row), never a dropped batch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings

from .mapping import Mapped

ENVELOPE_START = b'{"batch":['

# (model, kind, pk) of one packed message: kind says whether pk is an object's or a tombstone's.
Ref = tuple[str, str, int]


@dataclass(frozen=True, slots=True)
class Batch:
    """One request body and the objects it carries, in order."""

    sequence: int
    body: bytes
    refs: list[Ref]

    @property
    def count(self) -> int:
        return len(self.refs)


class BatchPacker:
    """Packs messages in order and seals a batch before the next message would break a limit."""

    def __init__(
        self,
        *,
        sent_at: datetime,
        reject: Callable[[Mapped, str, str], None],
        max_bytes: int | None = None,
        max_messages: int | None = None,
        max_message_bytes: int | None = None,
    ) -> None:
        self.envelope_end = (
            b'],"sentAt":"%s","context":{"library":{"name":' % sent_at.isoformat().encode()
            + b'"planhat-segment-warehouse","version":"0.1.0"}}}'
        )
        max_bytes = max_bytes or settings.WAREHOUSE_PUSH_MAX_BATCH_BYTES
        # Room for the messages: the cap less the envelope (the commas are counted in pack).
        self.room = max_bytes - len(ENVELOPE_START) - len(self.envelope_end)
        self.max_messages = max_messages or settings.WAREHOUSE_PUSH_MAX_BATCH_MESSAGES
        self.max_message_bytes = max_message_bytes or settings.WAREHOUSE_PUSH_MAX_MESSAGE_BYTES
        self.reject = reject
        self.sequence = 0
        self.buffer: list[bytes] = []
        self.refs: list[Ref] = []
        self.size = 0

    def pack(self, *, kind: str, items: Iterable[Mapped]) -> Iterator[Batch]:
        """Add ``items``; yield each batch as soon as it is full (the rest stays buffered)."""
        # The hot loop of a push (once per object): limits in locals.
        room, max_messages, max_message_bytes = self.room, self.max_messages, self.max_message_bytes
        for item in items:
            message = item.message
            n = len(message)
            if n > max_message_bytes:
                self.reject(
                    item,
                    kind,
                    f"{item.model} {item.pk}: message of {n:,} bytes is over Segment's "
                    f"32 KB limit (custom fields too large?)",
                )
                continue
            count = len(self.buffer)
            if count and (self.size + n + count + 1 > room or count >= max_messages):
                yield self._seal()
            self.buffer.append(message)
            self.refs.append((item.model, kind, item.pk))
            self.size += n

    def rest(self) -> Batch | None:
        """The last, partly filled batch (None when nothing is buffered)."""
        return self._seal() if self.buffer else None

    def _seal(self) -> Batch:
        self.sequence += 1
        batch = Batch(
            sequence=self.sequence,
            body=ENVELOPE_START + b",".join(self.buffer) + self.envelope_end,
            refs=self.refs,
        )
        self.buffer, self.refs, self.size = [], [], 0
        return batch
