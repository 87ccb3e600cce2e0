"""Processing throughput: one process draining the inbox, with and without daily rollups,
against a plain-psycopg baseline.

Creates a dedicated PostgreSQL database ``bench_processing`` (dropped at the end), migrates
it, seeds companies and endusers with COPY, COPYs pending inbox events of mixed types (and
some new users under known companies), and copies it (``CREATE DATABASE … TEMPLATE``) so
every run starts from the same data. Then, each in ONE child process:

- on a copy, the rollups' cost: the drain's claims alternate between rollup writing on
  and off, each claim timed from claim to commit, so both modes see the same data and the
  same load on a shared machine (separate runs minutes apart measured the machine instead);
- on another copy, ``inbox_drain`` on one connection (the same-run reference for lanes);
- on the original, ``inbox_drain`` as in production (rollups on, ``USAGE_DRAIN_CONNECTIONS``
  lanes), then the baseline: the same lookups with psycopg, COPY of activities into a
  staging table and INSERT with ON CONFLICT DO NOTHING. The rollups are then checked
  against a recount.

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

from bench.scratch import admin_execute, database_url, run_child, scratch_database

DB_NAME = "bench_processing"
TARGET = 10_000.0
ROLLUP_RATIO = 0.85
ROOT = Path(__file__).resolve().parent.parent


def run(args) -> list[dict]:
    quick = bool(getattr(args, "quick", False))
    sizes = (
        {"companies": 1_000, "endusers": 10_000, "events": 5_000}
        if quick
        else {"companies": 10_000, "endusers": 100_000, "events": 50_000}
    )
    show = bool(os.environ.get("BENCH_PROFILE") or os.environ.get("BENCH_QUERIES"))
    copy, one_lane = f"{DB_NAME}_norollups", f"{DB_NAME}_onelane"
    with scratch_database(DB_NAME, migrate=False) as url:  # the child migrates
        run_child("bench.processing", {"step": "seed", **sizes}, db_url=url, timeout=3600)
        admin_execute(f'DROP DATABASE IF EXISTS "{copy}" WITH (FORCE)')
        admin_execute(f'CREATE DATABASE "{copy}" TEMPLATE "{DB_NAME}"')
        admin_execute(f'DROP DATABASE IF EXISTS "{one_lane}" WITH (FORCE)')
        admin_execute(f'CREATE DATABASE "{one_lane}" TEMPLATE "{DB_NAME}"')
        try:
            off = run_child(
                "bench.processing",
                {"step": "interleaved", **sizes},
                db_url=database_url(copy),
                timeout=3600,
                show_stderr=show,
            )
            single = run_child(
                "bench.processing",
                {"step": "drain", "rollups": True, "lanes": 1, **sizes},
                db_url=database_url(one_lane),
                timeout=3600,
                show_stderr=show,
            )
        finally:
            admin_execute(f'DROP DATABASE IF EXISTS "{copy}" WITH (FORCE)')
            admin_execute(f'DROP DATABASE IF EXISTS "{one_lane}" WITH (FORCE)')
        on = run_child(
            "bench.processing",
            {"step": "drain", "rollups": True, "baseline": True, **sizes},
            db_url=url,
            timeout=3600,
            show_stderr=show,
        )
    ours, base = on["drain_events_per_s"], on["baseline_events_per_s"]
    lanes = on["lanes"]
    with_rollups, plain = off["on_events_per_s"], off["off_events_per_s"]
    label = f"{sizes['events']:,} events"
    return [
        {
            "name": f"drain with rollups, one process, {lanes} connections ({label})",
            "value": ours,
            "unit": "events/s",
            "baseline": base,
            "ratio": ours / base if base else None,
            "target": f">= {TARGET:,.0f}",
            "ok": ours >= TARGET,
        },
        {
            "name": "claims with rollups vs off (interleaved)",
            "value": with_rollups,
            "unit": "events/s",
            "baseline": plain,
            "ratio": with_rollups / plain if plain else None,
            "target": f">= {ROLLUP_RATIO}x",
            "ok": bool(plain) and with_rollups / plain >= ROLLUP_RATIO,
        },
        {
            "name": "drain with rollups, one connection (same data)",
            "value": single["drain_events_per_s"],
            "unit": "events/s",
        },
        {"name": "claims with rollups off (interleaved)", "value": plain, "unit": "events/s"},
        {"name": f"baseline: plain psycopg ({label})", "value": base, "unit": "events/s"},
        {"name": "drain: claims", "value": on["claims"], "unit": "claims"},
        {"name": "drain: endusers created", "value": on["created"], "unit": "endusers"},
        {
            "name": "rollups equal a recount (mismatched keys)",
            "value": on["rollup_mismatches"],
            "unit": "keys",
            "ok": on["rollup_mismatches"] == 0,
        },
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


_RECOUNT_SQL = """
SELECT (SELECT count(*) FROM (
    (SELECT company_id, (occurred_at AT TIME ZONE 'UTC')::date, action, sum(count)
     FROM usage_activity GROUP BY 1, 2, 3
     EXCEPT SELECT company_id, day, action, count FROM usage_companyactionday)
    UNION ALL
    (SELECT company_id, day, action, count FROM usage_companyactionday
     EXCEPT SELECT company_id, (occurred_at AT TIME ZONE 'UTC')::date, action, sum(count)
     FROM usage_activity GROUP BY 1, 2, 3)
) AS actions) + (SELECT count(*) FROM (
    (SELECT company_id, enduser_id, (occurred_at AT TIME ZONE 'UTC')::date, sum(count)
     FROM usage_activity GROUP BY 1, 2, 3
     EXCEPT SELECT company_id, enduser_id, day, count FROM usage_enduserday)
    UNION ALL
    (SELECT company_id, enduser_id, day, count FROM usage_enduserday
     EXCEPT SELECT company_id, enduser_id, (occurred_at AT TIME ZONE 'UTC')::date, sum(count)
     FROM usage_activity GROUP BY 1, 2, 3)
) AS users)
"""


def _interleaved() -> dict:
    """Claims alternately with and without rollup writing; events/s of each mode."""
    from django.utils import timezone

    from usage.processing.claim import inbox_claimed
    from usage.processing.pipeline import claim_process

    spent = {True: 0.0, False: 0.0}
    events = {True: 0, False: 0}
    rollups, warm = True, False  # the first claim warms caches up and is not counted
    while True:
        began = time.perf_counter()
        with inbox_claimed() as claim:
            if claim is None:
                break
            done = claim_process(claim=claim, now=timezone.now(), rollups=rollups).events
        if warm:
            spent[rollups] += time.perf_counter() - began  # claim to commit
            events[rollups] += done
            rollups = not rollups
        warm = True
    return {
        "on_events_per_s": events[True] / spent[True],
        "off_events_per_s": events[False] / spent[False],
    }


def _child(task: dict) -> None:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "planhat_segment.settings")
    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection

    if task["step"] == "seed":
        call_command("migrate", verbosity=0)
        from integrations.services import integration_ensure

        integration_ensure()
        _seed(task)
        print(json.dumps({"seeded": True}))
        return
    from usage.services import inbox_drain

    if task["step"] == "interleaved":
        print(json.dumps(_interleaved()))
        return
    profiler = None
    if os.environ.get("BENCH_PROFILE"):  # stdlib cProfile: top functions to stderr
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    # cProfile and the statement timer see the main thread's connection only: one lane then.
    lanes = 1 if (profiler is not None or os.environ.get("BENCH_QUERIES")) else task.get("lanes")
    timings: dict[str, list[float]] = {}
    started = time.perf_counter()
    if os.environ.get("BENCH_QUERIES"):  # time per statement kind (first 60 characters)

        def timed(execute, sql, params, many, context):
            began = time.perf_counter()
            try:
                return execute(sql, params, many, context)
            finally:
                timings.setdefault(" ".join(sql.split())[:60], []).append(
                    time.perf_counter() - began
                )

        with connection.execute_wrapper(timed):
            summary = inbox_drain(max_seconds=3600, rollups=task["rollups"], lanes=lanes)
    else:
        summary = inbox_drain(max_seconds=3600, rollups=task["rollups"], lanes=lanes)
    elapsed = time.perf_counter() - started
    print(
        f"--- drain, rollups {'on' if task['rollups'] else 'off'}, lanes {lanes}", file=sys.stderr
    )
    for sql, spent in sorted(timings.items(), key=lambda kv: -sum(kv[1])):
        print(f"{sum(spent):8.3f}s {len(spent):5d}x  {sql}", file=sys.stderr)
    if profiler is not None:
        import pstats

        profiler.disable()
        pstats.Stats(profiler, stream=sys.stderr).sort_stats(
            os.environ.get("BENCH_PROFILE_SORT", "cumulative")
        ).print_stats(25)
    if os.environ.get("BENCH_VERBOSE"):
        print(dict(summary.statuses), file=sys.stderr)
    result = {
        "drain_events_per_s": summary.events / elapsed,
        "claims": summary.claims,
        "created": summary.endusers_created,
        "lanes": lanes or settings.USAGE_DRAIN_CONNECTIONS,
    }
    if task["rollups"]:
        with connection.cursor() as cursor:
            cursor.execute(_RECOUNT_SQL)
            result["rollup_mismatches"] = cursor.fetchone()[0]
    if task.get("baseline"):
        result["baseline_events_per_s"] = _baseline(task["events"])
    print(json.dumps(result))


if __name__ == "__main__":
    _child(json.loads(sys.argv[1]))
