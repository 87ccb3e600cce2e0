"""Processing throughput: one process draining the inbox, against a plain-psycopg baseline.

Creates a dedicated PostgreSQL database ``bench_processing`` (dropped at the end), migrates
it, seeds companies and endusers with COPY, COPYs pending inbox events of mixed types (and
some new users under known companies), then measures events/s of ``inbox_drain`` in ONE
child process; the baseline, in the same child, does the same lookups with psycopg, COPYs
activities into a staging table and INSERTs them with ON CONFLICT DO NOTHING.

The server comes from ``BENCH_DATABASE_URL`` (default ``postgres://root@127.0.0.1:5432/postgres``).
Figures are indicative when other work shares the machine.
"""

from __future__ import annotations

import json
import os
import random
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.scratch import run_child, scratch_database

DB_NAME = "bench_processing"
TARGET = 10_000.0
ROOT = Path(__file__).resolve().parent.parent


def run(args) -> list[dict]:
    quick = bool(getattr(args, "quick", False))
    sizes = (
        {"companies": 1_000, "endusers": 10_000, "events": 5_000}
        if quick
        else {"companies": 10_000, "endusers": 100_000, "events": 50_000}
    )
    with scratch_database(DB_NAME, migrate=False) as url:  # the child migrates
        result = run_child(
            "bench.processing",
            sizes,
            db_url=url,
            timeout=3600,
            show_stderr=bool(os.environ.get("BENCH_PROFILE") or os.environ.get("BENCH_QUERIES")),
        )
    ours, base = result["drain_events_per_s"], result["baseline_events_per_s"]
    label = f"{sizes['events']:,} events"
    return [
        {
            "name": f"drain, one process ({label})",
            "value": ours,
            "unit": "events/s",
            "baseline": base,
            "ratio": ours / base if base else None,
            "target": f">= {TARGET:,.0f}",
            "ok": ours >= TARGET,
        },
        {"name": f"baseline: plain psycopg ({label})", "value": base, "unit": "events/s"},
        {"name": "drain: claims", "value": result["claims"], "unit": "claims"},
        {"name": "drain: endusers created", "value": result["created"], "unit": "endusers"},
    ]


# --- the child process (Django configured for the bench database) -----------------------------


def _seed(sizes: dict) -> None:
    from django.db import connection

    now = datetime.now(UTC)
    rng = random.Random(7)
    raw = connection.connection  # the psycopg connection, for COPY
    with raw.cursor() as cur:
        with cur.copy(
            "COPY planhat_segment_company (external_id, name, custom, created_at, updated_at,"
            " is_test) FROM STDIN"
        ) as copy:
            for i in range(sizes["companies"]):
                copy.write_row((f"C-{i}", f"Company {i}", "{}", now, now, False))
        cur.execute("SELECT id FROM planhat_segment_company ORDER BY id")
        company_ids = [r[0] for r in cur.fetchall()]
        with cur.copy(
            "COPY planhat_segment_enduser (external_id, email, email_normalized, company_id,"
            " first_name, last_name, name, title, source, is_test, custom, created_at,"
            " updated_at) FROM STDIN"
        ) as copy:
            for i in range(sizes["endusers"]):
                email = f"user{i}@example.com"
                title = "" if i % 3 else "Engineer"
                copy.write_row(
                    (
                        f"U-{i}",
                        email,
                        email,
                        company_ids[i % len(company_ids)],
                        "",
                        "",
                        f"User {i}",
                        title,
                        "manual",
                        False,
                        "{}",
                        now,
                        now,
                    )
                )
        for key in ("active_users", "seats", "storage_gb"):
            cur.execute(
                "INSERT INTO integrations_metricdefinition (key, label, description, created_at)"
                " VALUES (%s, %s, '', now())",
                [key, key],
            )
        with cur.copy(
            "COPY usage_inboxevent (message_id, request_id, type, payload, received_at,"
            " occurred_at, status, reason, detail, attempts) FROM STDIN"
        ) as copy:
            request_id, new_user = uuid.uuid4(), 0
            for i in range(sizes["events"]):
                if i % 50 == 0:
                    request_id = uuid.uuid4()
                ts = now - timedelta(seconds=sizes["events"] - i)
                u = rng.randrange(sizes["endusers"])
                company = f"C-{rng.randrange(sizes['companies'])}"
                roll = rng.random()
                if roll < 0.55:
                    msg = {
                        "type": "track",
                        "userId": f"U-{u}",
                        "event": "Report Downloaded",
                        "properties": {"format": "pdf", "count": 1 + u % 3},
                        "context": {"groupId": company},
                    }
                elif roll < 0.70:
                    msg = {
                        "type": "page",
                        "userId": f"U-{u}",
                        "name": "Dashboard",
                        "properties": {"path": "/dash"},
                    }
                elif roll < 0.80:
                    msg = {
                        "type": "identify",
                        "userId": f"U-{u}",
                        "traits": {"email": f"user{u}@example.com", "title": "Lead"},
                    }
                elif roll < 0.90:  # a new user under a known company, then its events
                    new_user += 1
                    msg = {
                        "type": "identify",
                        "userId": f"N-{new_user}",
                        "traits": {
                            "email": f"new{new_user}@example.org",
                            "name": "New",
                            "company_id": company,
                        },
                    }
                elif roll < 0.95:
                    msg = {
                        "type": "group",
                        "groupId": company,
                        "traits": {"active_users": u % 100, "seats": "25", "plan": "pro"},
                    }
                else:
                    msg = {
                        "type": "track",
                        "userId": f"N-{max(new_user, 1)}",
                        "event": "Signed In",
                        "context": {"groupId": company},
                    }
                msg["messageId"] = f"m-{i}"
                msg["timestamp"] = ts.isoformat()
                copy.write_row(
                    (
                        msg["messageId"],
                        request_id,
                        msg["type"],
                        json.dumps(msg),
                        ts,
                        ts,
                        "pending",
                        "",
                        "",
                        0,
                    )
                )
        cur.execute("ANALYZE")
    raw.commit()


def _baseline(n_events: int) -> float:
    """Plain psycopg: same lookups, COPY into a staging table, INSERT … ON CONFLICT."""
    from django.db import connection

    raw = connection.connection
    with raw.cursor() as cur:
        cur.execute("CREATE TABLE bench_activity (LIKE usage_activity INCLUDING ALL)")
        raw.commit()
        started = time.perf_counter()
        last_id = 0
        while True:
            cur.execute(
                "SELECT id, message_id, type, payload, received_at, occurred_at"
                " FROM usage_inboxevent WHERE id > %s ORDER BY id LIMIT 1000",
                [last_id],
            )
            # Django registers jsonb as text on this connection: decode, as processing does.
            rows = [
                (*r[:3], json.loads(r[3]) if isinstance(r[3], str) else r[3], *r[4:])
                for r in cur.fetchall()
            ]
            if not rows:
                break
            last_id = rows[-1][0]
            users = {r[3].get("userId") for r in rows}
            companies = {
                (r[3].get("context") or {}).get("groupId") or r[3].get("groupId") for r in rows
            }
            cur.execute(
                "SELECT external_id, id, company_id FROM planhat_segment_enduser"
                " WHERE external_id = ANY(%s)",
                [list(users)],
            )
            by_user = {ext: (pk, company) for ext, pk, company in cur.fetchall()}
            cur.execute(
                "SELECT external_id, id FROM planhat_segment_company WHERE external_id = ANY(%s)",
                [list(companies)],
            )
            dict(cur.fetchall())
            cur.execute(
                "CREATE TEMP TABLE IF NOT EXISTS staging (LIKE usage_activity INCLUDING DEFAULTS)"
                " ON COMMIT DELETE ROWS"
            )
            with cur.copy(
                "COPY staging (id, enduser_id, company_id, action, count, occurred_at,"
                " received_at, properties, message_id) FROM STDIN"
            ) as copy:
                for row_id, message_id, kind, payload, received_at, occurred_at in rows:
                    hit = by_user.get(payload.get("userId"))
                    if kind not in ("track", "page") or hit is None:
                        continue
                    copy.write_row(
                        (
                            row_id,
                            hit[0],
                            hit[1],
                            payload.get("event") or "Viewed",
                            1,
                            occurred_at,
                            received_at,
                            json.dumps(payload.get("properties") or {}),
                            message_id,
                        )
                    )
            cur.execute(
                "INSERT INTO bench_activity (enduser_id, company_id, action, count, occurred_at,"
                " received_at, properties, message_id) SELECT enduser_id, company_id, action,"
                " count, occurred_at, received_at, properties, message_id FROM staging"
                " ON CONFLICT (message_id) DO NOTHING"
            )
            cur.execute(
                "UPDATE usage_inboxevent SET detail = 'baseline' WHERE id = ANY(%s)",
                [[r[0] for r in rows]],
            )
            raw.commit()
        return n_events / (time.perf_counter() - started)


def _child(sizes: dict) -> None:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "planhat_segment.settings")
    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from integrations.services import integration_ensure
    from usage.services import inbox_drain

    integration_ensure()
    _seed(sizes)
    profiler = None
    if os.environ.get("BENCH_PROFILE"):  # stdlib cProfile: top functions to stderr
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    timings: dict[str, list[float]] = {}
    started = time.perf_counter()
    if os.environ.get("BENCH_QUERIES"):  # time per statement kind (first 60 characters)
        from django.db import connection

        def timed(execute, sql, params, many, context):
            began = time.perf_counter()
            try:
                return execute(sql, params, many, context)
            finally:
                timings.setdefault(" ".join(sql.split())[:60], []).append(
                    time.perf_counter() - began
                )

        with connection.execute_wrapper(timed):
            summary = inbox_drain(max_seconds=3600)
    else:
        summary = inbox_drain(max_seconds=3600)
    elapsed = time.perf_counter() - started
    for sql, spent in sorted(timings.items(), key=lambda kv: -sum(kv[1])):
        print(f"{sum(spent):8.3f}s {len(spent):5d}x  {sql}", file=sys.stderr)
    if profiler is not None:
        import pstats

        profiler.disable()
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative").print_stats(25)
    if os.environ.get("BENCH_VERBOSE"):
        print(dict(summary.statuses), file=sys.stderr)
    baseline = _baseline(sizes["events"])
    print(
        json.dumps(
            {
                "drain_events_per_s": summary.events / elapsed,
                "baseline_events_per_s": baseline,
                "claims": summary.claims,
                "created": summary.endusers_created,
            }
        )
    )


if __name__ == "__main__":
    _child(json.loads(sys.argv[1]))
