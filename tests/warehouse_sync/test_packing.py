"""Packing messages into batches under Segment's limits (no I/O)."""

from __future__ import annotations

import orjson
from django.utils import timezone

from warehouse_sync.services.mapping import Mapped
from warehouse_sync.services.packing import BatchPacker


def _items(n: int, size: int = 10, model: str = "company") -> list[Mapped]:
    return [Mapped(model, pk, orjson.dumps({"pk": pk, "pad": "x" * size})) for pk in range(n)]


def _packer(rejected: list, **limits) -> BatchPacker:
    return BatchPacker(
        sent_at=timezone.now(),
        reject=lambda item, kind, error: rejected.append((item.pk, kind, error)),
        **limits,
    )


def test_packer_seals_by_message_count_and_keeps_order():
    packer = _packer([], max_messages=3)
    batches = list(packer.pack(kind="object", items=_items(7)))
    batches.append(packer.rest())
    assert [b.count for b in batches] == [3, 3, 1]
    assert [b.sequence for b in batches] == [1, 2, 3]
    assert [ref[2] for b in batches for ref in b.refs] == list(range(7))
    body = orjson.loads(batches[0].body)
    assert [m["pk"] for m in body["batch"]] == [0, 1, 2]
    assert "sentAt" in body and body["context"]["library"]["name"]
    assert packer.rest() is None


def test_packer_keeps_every_body_within_the_byte_cap():
    packer = _packer([], max_bytes=1_000)
    batches = [*packer.pack(kind="object", items=_items(40, size=50)), packer.rest()]
    assert len(batches) > 1
    assert all(len(b.body) <= 1_000 for b in batches)
    assert sum(b.count for b in batches) == 40


def test_packer_rejects_an_oversized_message_and_packs_the_rest():
    rejected = []
    packer = _packer(rejected, max_message_bytes=100)
    items = [*_items(2), Mapped("license", 99, b'{"pad":"' + b"x" * 200 + b'"}'), *_items(1)]
    assert list(packer.pack(kind="tombstone", items=items)) == []
    assert packer.rest().count == 3
    [(pk, kind, error)] = rejected
    assert (pk, kind) == (99, "tombstone")
    assert "over Segment's 32 KB limit" in error
