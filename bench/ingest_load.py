"""The ingest benchmark's load generator: a separate process, asyncio, HTTP/1.1 keep-alive.

Bounded in requests and time, and only ever talks to 127.0.0.1. Every request carries fresh
message ids (nothing is a duplicate). Prints one JSON line of counts and latencies.

    python -m bench.ingest_load '{"port": 8000, "path": "/v1/batch", "kind": "batch", ...}'
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import sys
import time

HOST = "127.0.0.1"  # never anything else

# A Segment track call. The run's reference travels in ``properties.ref`` (as the Planhat
# items' does in ``info``), so the run's rows are counted by it whatever their ids.
# - ``sequential``: messageId = the reference (run prefix + counter), as this benchmark has
#   always sent: the message-id index takes every insert at its right edge.
# - otherwise a random id, as SDKs send (analytics.js, -node and -python send UUIDs or
#   hashes), inserted all over the index; Planhat items' ids are hashes too, so they are
#   compared with this one.
EVENT = (
    b'{"type":"track","userId":"u-%d","event":"Report Downloaded",'
    b'"properties":{"format":"pdf","report":"Quarterly usage","asset_id":"ASSET-7","ref":"%b"},'
    b'"context":{"groupId":"ACME-001","library":{"name":"bench","version":"1"}},'
    b'"timestamp":"2026-11-03T10:00:05.123Z","messageId":"%b"}'
)


def event(prefix: bytes, i: int, *, sequential: bool = True) -> bytes:
    ref = prefix + str(i).encode()
    message_id = ref if sequential else hashlib.blake2b(ref, digest_size=16).hexdigest().encode()
    return EVENT % (i % 97, ref, message_id)


def batch_body(prefix: bytes, size: int, *, sequential: bool = True) -> bytes:
    events = b",".join(event(prefix, i, sequential=sequential) for i in range(size))
    return b'{"batch":[' + events + b'],"sentAt":"2026-11-03T10:00:06Z"}'


# A Planhat bulk activity (POST /analytics/bulk): the same activity as EVENT, in Planhat's
# fields; the run's reference in ``info`` makes each one unique (Planhat items carry no id).
ACTIVITY_HEAD = (
    b'{"externalId":"u-%d","email":"u-%d@acme.example","companyExternalId":"ACME-001",'
    b'"action":"Report Downloaded","date":"2026-11-03T10:00:05.123Z","weight":1,'
    b'"info":{"format":"pdf","report":"Quarterly usage","asset_id":"ASSET-7","ref":"'
)
ACTIVITY_TAIL = b'"}}'


def planhat_bulk_body(prefix: bytes, size: int) -> bytes:
    items = b",".join(
        (ACTIVITY_HEAD % (i % 97, i % 97)) + prefix + str(i).encode() + ACTIVITY_TAIL
        for i in range(size)
    )
    return b"[" + items + b"]"


BODIES = {
    "batch": batch_body,
    "batch_random_ids": lambda prefix, size: batch_body(prefix, size, sequential=False),
    "planhat_bulk": planhat_bulk_body,
    "single": lambda prefix, size: event(prefix, 0),
}


class Stats:
    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.status: dict[int, int] = {}
        self.accepted = 0
        self.duplicates = 0
        self.errors = 0


async def _request(reader, writer, head: bytes, body: bytes) -> tuple[int, bytes, bool]:
    writer.write(head + b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    await writer.drain()
    header = await reader.readuntil(b"\r\n\r\n")
    lines = header.split(b"\r\n")
    status = int(lines[0].split()[1])
    length = 0
    close = False
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"connection" and value.strip().lower() == b"close":
            close = True
    payload = await reader.readexactly(length) if length else b""
    return status, payload, close


async def _connection_loop(cfg: dict, index: int, stats: Stats, deadline: float, schedule) -> None:
    port = cfg["port"]
    head = (
        f"POST {cfg['path']} HTTP/1.1\r\nHost: {HOST}:{port}\r\nContent-Type: application/json\r\n"
    ).encode()
    if cfg.get("authorization"):
        head += b"Authorization: " + cfg["authorization"].encode() + b"\r\n"
    reader = writer = None
    seq = 0
    pid = os.getpid()
    while True:
        intended = schedule(index, seq)
        if intended is None or time.monotonic() >= deadline:
            break
        now = time.monotonic()
        if intended > now:
            await asyncio.sleep(intended - now)
        prefix = f"{cfg['run']}-{pid}-{index}-{seq}-".encode()
        body = BODIES[cfg["kind"]](prefix, cfg["batch_size"])
        seq += 1
        started = max(intended, time.monotonic()) if cfg.get("rate") else time.monotonic()
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection(HOST, port)
            status, payload, close = await _request(reader, writer, head, body)
        except (OSError, asyncio.IncompleteReadError) as exc:
            stats.errors += 1
            if stats.errors < 3:
                print(f"load: {exc!r}", file=sys.stderr)
            writer = None
            continue
        stats.latencies.append(time.monotonic() - started)
        stats.status[status] = stats.status.get(status, 0) + 1
        if status == 200:
            answer = json.loads(payload)
            # Planhat's answer counts ``processed`` (new + duplicates; none are duplicates here).
            stats.accepted += answer.get("accepted", answer.get("processed", 0))
            stats.duplicates += answer.get("duplicates", 0)
        if close:
            writer.close()
            writer = None
    if writer is not None:
        writer.close()


async def main(cfg: dict) -> dict:
    stats = Stats()
    connections = cfg["connections"]
    max_requests = cfg["max_requests"]
    started = time.monotonic()
    deadline = started + cfg["seconds"]
    rate = cfg.get("rate")

    if rate:
        # Open loop: request n is due at started + n / rate (latency counts from then).
        def schedule(index: int, seq: int):
            n = seq * connections + index
            return None if n >= max_requests else started + n / rate
    else:

        def schedule(index: int, seq: int):
            return None if seq * connections + index >= max_requests else 0.0

    await asyncio.gather(
        *(_connection_loop(cfg, i, stats, deadline, schedule) for i in range(connections))
    )
    elapsed = time.monotonic() - started
    lat = sorted(stats.latencies)

    def pct(p: float) -> float:
        return round(lat[min(len(lat) - 1, int(p * len(lat)))] * 1000, 2) if lat else 0.0

    return {
        "requests": len(lat),
        "status": stats.status,
        "errors": stats.errors,
        "accepted": stats.accepted,
        "duplicates": stats.duplicates,
        "elapsed": round(elapsed, 3),
        "p50_ms": pct(0.50),
        "p90_ms": pct(0.90),
        "p99_ms": pct(0.99),
        "max_ms": round(lat[-1] * 1000, 2) if lat else 0.0,
    }


if __name__ == "__main__":
    config = json.loads(sys.argv[1])
    print(json.dumps(asyncio.run(main(config))))
