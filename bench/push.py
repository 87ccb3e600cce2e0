"""Benchmark of the push to Segment against what a user would script, on real PostgreSQL.

A dedicated database ``bench_push`` is created with psycopg, migrated, seeded with COPY
(50,000 companies, 250,000 endusers, 50,000 licenses; ``--quick``: 2,000 / 10,000 / 2,000)
and dropped at the end. A minimal sink runs in its own process (so the ratio measures the
pushers, not the sink; with TCP_NODELAY, as production servers set it, so a reply does not
idle ~40 ms per request on Nagle and delayed ACKs) and counts the messages that arrive.
Measured, each in a fresh subprocess so Django is configured for ``bench_push`` and RSS is
the pusher's own:

(a) our full push end to end (pacing off), every object accounted for, peak RSS growth;
(b) the peer: plain psycopg reads of the same rows pushed with segment-analytics-python at its
    best settings (upload_size=1000, two threads, a queue that holds everything);
(c) mapping and serialisation alone (the floor: no HTTP).

Environment: ``BENCH_DATABASE_URL`` (default postgres://root@127.0.0.1:5432/postgres),
used to create and drop ``bench_push``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import json
import multiprocessing
import os
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from bench.scratch import admin_execute, database_url

ROOT = Path(__file__).resolve().parent.parent
DB_NAME = "bench_push"
WRITE_KEY = "bench-write-key"
TARGET_RATIO = 1.5
TARGET_RSS_MB = 150


# --- the sink (separate process) ---------------------------------------------------------


def _sink_main(port_out, ready) -> None:
    import orjson

    counted = [0]
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self):
            super().setup()
            # As production HTTP servers do: without TCP_NODELAY the small reply body waits
            # (Nagle) for the client's delayed ACK of the headers, ~40 ms idle per request.
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def log_message(self, *args):
            pass

        def _reply(self, body: bytes) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            with lock:
                count = counted[0]
                if self.path == "/reset":
                    counted[0] = 0
            self._reply(orjson.dumps({"count": count}))

        def do_POST(self):
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.headers.get("Content-Encoding", "") == "gzip":
                raw = gzip.decompress(raw)
            n = len(orjson.loads(raw)["batch"])
            with lock:
                counted[0] += n
            self._reply(b'{"success":true}')

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port_out.value = server.server_address[1]
    ready.set()
    server.serve_forever()


def _sink_get(url: str, path: str) -> int:
    import requests

    return requests.get(url + path, timeout=10).json()["count"]


# --- database -----------------------------------------------------------------------------


def _seed(db_url: str, companies: int, endusers: int, licenses: int) -> None:
    import psycopg

    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    with psycopg.connect(db_url) as conn, conn.cursor() as cur:
        with cur.copy(
            "COPY planhat_segment_company (id, external_id, name, custom, created_at, "
            "updated_at, is_test) FROM STDIN"
        ) as copy:
            for i in range(1, companies + 1):
                copy.write_row((i, f"C-{i}", f"Company {i}", '{"tier": "gold"}', now, now, False))
        with cur.copy(
            "COPY planhat_segment_enduser (id, external_id, custom, created_at, updated_at, "
            "email, email_normalized, first_name, last_name, name, title, source, is_test, "
            "company_id) FROM STDIN"
        ) as copy:
            for i in range(1, endusers + 1):
                email = f"user{i}@example.com"
                copy.write_row(
                    (
                        i,
                        f"U-{i}",
                        "{}",
                        now,
                        now,
                        email,
                        email,
                        "Ada",
                        f"Lovelace{i}",
                        f"Ada Lovelace{i}",
                        "Engineer",
                        "manual",
                        False,
                        (i % companies) + 1,
                    )
                )
        with cur.copy(
            "COPY planhat_segment_license (id, external_id, custom, created_at, updated_at, "
            "product, mrr, currency, start_date, end_date, status, company_id) FROM STDIN"
        ) as copy:
            for i in range(1, licenses + 1):
                copy.write_row(
                    (
                        i,
                        f"L-{i}",
                        "{}",
                        now,
                        now,
                        "Pro plan",
                        "99.50",
                        "USD" if i % 5 else "EUR",
                        dt.date(2026, 1, 1),
                        None,
                        "active" if i % 7 else "churned",
                        (i % companies) + 1,
                    )
                )
        for table in ("company", "enduser", "license"):
            cur.execute(
                f"SELECT setval(pg_get_serial_sequence('planhat_segment_{table}', 'id'), "
                f"(SELECT max(id) FROM planhat_segment_{table}))"
            )
        cur.execute("ANALYZE")


# --- the workers (subprocesses) -------------------------------------------------------------


def _rss_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _worker_ours(sink_url: str, floor_only: bool, use_gzip: bool) -> dict:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "planhat_segment.settings")
    import django

    django.setup()
    from django.conf import settings

    settings.WAREHOUSE_PUSH_MAX_EVENTS_PER_SECOND = 0
    settings.WAREHOUSE_PUSH_GZIP = use_gzip
    from integrations.services import integration_ensure, integration_update
    from warehouse_sync.services import changes, mapping, sync_run_execute, sync_run_start

    integration_update(
        integration=integration_ensure(),
        warehouse_enabled=True,
        write_key=WRITE_KEY,
        region="custom",
        custom_base_url=sink_url,
    )
    # Warm imports and the connection before the baseline, so growth is the push's own.
    # (One chunk only: list() of the generator would read every company 10 rows at a time.)
    next(iter(changes.object_chunks(model="company", since=None, size=10)), None)
    baseline = _rss_kb("VmRSS")
    started = time.perf_counter()
    if floor_only:
        count = nbytes = 0
        for model in ("company", "enduser", "license"):
            for rows in changes.object_chunks(
                model=model, since=None, size=settings.WAREHOUSE_PUSH_CHUNK_SIZE
            ):
                for item in mapping.chunk_map(model, rows):
                    count += 1
                    nbytes += len(item.message)
        result = {"objects": count, "bytes": nbytes}
    else:
        run = sync_run_start(
            trigger="command", full=True, models=["company", "enduser", "license"], enqueue=False
        )
        run = sync_run_execute(run_id=run.pk)
        result = {
            "objects": run.objects_synced,
            "errors": run.errors,
            "status": run.status,
            "batches": run.batches.count(),
        }
    result["seconds"] = time.perf_counter() - started
    result["rss_growth_mb"] = max(_rss_kb("VmHWM") - baseline, 0) / 1024
    return result


def _worker_peer(db_url: str, sink_url: str) -> dict:
    """What a user would script: psycopg reads + segment-analytics-python's background queue."""
    import psycopg
    from segment.analytics.client import Client

    baseline = _rss_kb("VmRSS")
    errors = []
    started = time.perf_counter()
    client = Client(
        write_key=WRITE_KEY,
        host=sink_url,
        upload_size=1000,
        thread=2,
        max_queue_size=1_000_000,
        on_error=lambda exc, batch: errors.append(len(batch)),
    )
    sent = 0
    with psycopg.connect(db_url) as conn:
        with conn.cursor(name="companies") as cur:
            cur.itersize = 5000
            cur.execute(
                """
                SELECT c.id, c.external_id, c.name, c.custom, c.created_at, c.updated_at,
                       COALESCE((SELECT json_object_agg(currency, total) FROM (
                           SELECT currency, SUM(mrr) AS total FROM planhat_segment_license l
                           WHERE l.company_id = c.id AND l.status = 'active' GROUP BY currency
                       ) s), '{}'::json),
                       (SELECT count(*) FROM planhat_segment_license l WHERE l.company_id = c.id),
                       (SELECT count(*) FROM planhat_segment_enduser u WHERE u.company_id = c.id)
                FROM planhat_segment_company c WHERE NOT c.is_test ORDER BY c.id
                """
            )
            for pk, ext, name, custom, created, updated, mrr, nlic, nusers in cur:
                client.group(
                    anonymous_id=f"planhat:company:{pk}",
                    group_id=ext or f"planhat:company:{pk}",
                    traits={
                        "name": name,
                        "mrr": {k: float(v) for k, v in mrr.items()},
                        "arr": {k: float(v) * 12 for k, v in mrr.items()},
                        "license_count": nlic,
                        "enduser_count": nusers,
                        "created_at": created.isoformat(),
                        "custom": custom,
                    },
                    timestamp=updated,
                )
                sent += 1
        with conn.cursor(name="endusers") as cur:
            cur.itersize = 5000
            cur.execute(
                """
                SELECT u.id, u.external_id, u.email, u.name, u.first_name, u.last_name, u.title,
                       u.custom, u.created_at, u.updated_at, c.external_id
                FROM planhat_segment_enduser u JOIN planhat_segment_company c
                  ON c.id = u.company_id
                WHERE NOT u.is_test AND NOT c.is_test ORDER BY u.id
                """
            )
            for pk, ext, email, name, first, last, title, custom, created, updated, cext in cur:
                client.identify(
                    user_id=ext,
                    anonymous_id=f"planhat:enduser:{pk}",
                    traits={
                        "email": email,
                        "name": name,
                        "first_name": first,
                        "last_name": last,
                        "title": title,
                        "company_external_id": cext,
                        "created_at": created.isoformat(),
                        "custom": custom,
                    },
                    context={"groupId": cext},
                    timestamp=updated,
                )
                sent += 1
        with conn.cursor(name="licenses") as cur:
            cur.itersize = 5000
            cur.execute(
                """
                SELECT l.id, l.external_id, l.product, l.mrr, l.currency, l.start_date,
                       l.end_date, l.status, l.updated_at, c.external_id
                FROM planhat_segment_license l JOIN planhat_segment_company c
                  ON c.id = l.company_id
                WHERE NOT c.is_test ORDER BY l.id
                """
            )
            for pk, ext, product, mrr, cur_, start, end, status, updated, cext in cur:
                client.track(
                    anonymous_id=f"planhat:license:{pk}",
                    event="License Synced",
                    properties={
                        "external_id": ext,
                        "product": product,
                        "mrr": float(mrr),
                        "arr": float(mrr) * 12,
                        "currency": cur_,
                        "start_date": start.isoformat(),
                        "end_date": end.isoformat() if end else None,
                        "status": status,
                        "company_external_id": cext,
                    },
                    context={"groupId": cext},
                    timestamp=updated,
                )
                sent += 1
    client.flush()
    client.join()
    return {
        "objects": sent,
        "errors": sum(errors),
        "seconds": time.perf_counter() - started,
        "rss_growth_mb": max(_rss_kb("VmHWM") - baseline, 0) / 1024,
    }


def _subprocess(kind: str, db_url: str, sink_url: str, *extra: str) -> dict:
    env = {**os.environ, "DATABASE_URL": db_url, "LOG_LEVEL": "WARNING"}
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.push",
            "--worker",
            kind,
            "--db",
            db_url,
            "--sink",
            sink_url,
            *extra,
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"bench worker {kind} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# --- the suite ------------------------------------------------------------------------------


def run(args) -> list[dict]:
    quick = getattr(args, "quick", False)
    companies, endusers, licenses = (2_000, 10_000, 2_000) if quick else (50_000, 250_000, 50_000)
    total = companies + endusers + licenses
    db_url = database_url(DB_NAME)
    admin_execute(f"DROP DATABASE IF EXISTS {DB_NAME}")
    admin_execute(f"CREATE DATABASE {DB_NAME}")
    ctx = multiprocessing.get_context("spawn")
    port, ready = ctx.Value("i", 0), ctx.Event()
    sink = ctx.Process(target=_sink_main, args=(port, ready), daemon=True)
    results: list[dict] = []
    try:
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
            cwd=ROOT,
            env={**os.environ, "DATABASE_URL": db_url},
            check=True,
        )
        t0 = time.perf_counter()
        _seed(db_url, companies, endusers, licenses)
        print(
            f"[bench push] seeded {total:,} rows in {time.perf_counter() - t0:.1f}s",
            file=sys.stderr,
        )
        sink.start()
        ready.wait(10)
        sink_url = f"http://127.0.0.1:{port.value}"

        floor = _subprocess("floor", db_url, sink_url)
        _sink_get(sink_url, "/reset")
        ours = _subprocess("ours", db_url, sink_url)
        ours_arrived = _sink_get(sink_url, "/reset")
        ours_plain = _subprocess("ours", db_url, sink_url, "--no-gzip")
        plain_arrived = _sink_get(sink_url, "/reset")
        peer = _subprocess("peer", db_url, sink_url)
        peer_arrived = _sink_get(sink_url, "/reset")

        print(
            f"[bench push] ours {ours} arrived={ours_arrived}; no-gzip {ours_plain} "
            f"arrived={plain_arrived}; peer {peer} arrived={peer_arrived}; floor {floor}",
            file=sys.stderr,
        )
        ours_rate = ours["objects"] / ours["seconds"]
        plain_rate = ours_plain["objects"] / ours_plain["seconds"]
        peer_rate = max(peer_arrived, 1) / peer["seconds"]
        accounted = ours["objects"] + ours["errors"] == total and ours_arrived == ours["objects"]
        results += [
            {
                "name": "full push end to end, gzip (objects/s)",
                "value": ours_rate,
                "unit": "obj/s",
                "baseline": peer_rate,
                "ratio": ours_rate / peer_rate,
                "target": f">= {TARGET_RATIO}x peer",
                "ok": ours_rate / peer_rate >= TARGET_RATIO,
            },
            {
                "name": "full push end to end, no gzip (objects/s)",
                "value": plain_rate,
                "unit": "obj/s",
                "baseline": peer_rate,
                "ratio": plain_rate / peer_rate,
            },
            {
                "name": "peer: psycopg + analytics-python (obj/s)",
                "value": peer_rate,
                "unit": "obj/s",
            },
            {
                "name": "serialisation alone, the floor (objects/s)",
                "value": floor["objects"] / floor["seconds"],
                "unit": "obj/s",
            },
            {
                "name": "push peak RSS growth",
                "value": ours["rss_growth_mb"],
                "unit": "MB",
                "baseline": peer["rss_growth_mb"],
                "target": f"< {TARGET_RSS_MB} MB",
                "ok": ours["rss_growth_mb"] < TARGET_RSS_MB,
            },
            {
                "name": "objects accounted for (synced+errors)",
                "value": ours["objects"] + ours["errors"],
                "unit": "objects",
                "target": f"= {total:,}",
                "ok": accounted,
            },
            {
                "name": "peer arrivals at the sink",
                "value": peer_arrived,
                "unit": "objects",
                "target": f"= {total:,}",
            },
        ]
    finally:
        if sink.is_alive():
            sink.terminate()
            sink.join(5)
        admin_execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
    return results


def _worker_cli() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--worker", choices=["ours", "peer", "floor"], required=True)
    parser.add_argument("--db", required=True)
    parser.add_argument("--sink", required=True)
    parser.add_argument("--no-gzip", action="store_true")
    ns = parser.parse_args()
    if ns.worker == "peer":
        out = _worker_peer(ns.db, ns.sink)
    else:
        out = _worker_ours(ns.sink, floor_only=ns.worker == "floor", use_gzip=not ns.no_gzip)
    sys.stdout.write(json.dumps(out) + "\n")


if __name__ == "__main__":
    _worker_cli()
