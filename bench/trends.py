"""Trends & Analytics with a year of data, read from the daily rollups.

- ``1x``: a company with 1,000 endusers and ~0.8 activity per enduser per day (≈ 292,000
  activities), generated in SQL (``INSERT … SELECT generate_series``), and its rollups built
  from them with one ``INSERT … SELECT … GROUP BY`` each (what ``rebuild_rollups`` recounts;
  processing maintains them incrementally in production);
- ``10x``: a company with ten times those activities (≈ 2.92 M: 10 per active enduser-day,
  same endusers). Its rollups are generated directly (the 1x rows with ten times the counts,
  which is what ten times the activities roll up to): the page never reads activities;
- ``10x endusers`` (only with ``BENCH_TRENDS_WIDE=1``, no target): 10,000 endusers at 1x
  intensity, rollups generated directly, to show what the page's cost does grow with
  (enduser-days).

Generation times are reported. The company's Trends page is timed through Django's test
client (aggregates, template and JSON included, median of 7) against the floor in the same
run: one plain SQL scan summing the 1x company's year of activity rows. This machine is
shared: compare the page with that floor, not across runs.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import statistics
import sys
import time

from .scratch import run_child, scratch_database

DB_NAME = "bench_trends"
TARGET_MS = 100.0
GROWTH_TARGET = 2.0


def run(args) -> list[dict]:
    quick = bool(getattr(args, "quick", False))
    sizes = {
        "endusers": 200 if quick else 1_000,
        "days": 365,
        "wide": os.environ.get("BENCH_TRENDS_WIDE") == "1",
    }
    with scratch_database(DB_NAME) as url:
        result = run_child("bench.trends", sizes, db_url=url, timeout=3600)
    one, ten = result["1x"], result["10x"]
    rows = []
    for days in (30, 90, 365):
        page_ms = one[f"page_{days}_ms"]
        row = {
            "name": f"trends page, {days} days ({one['activities']:,} activities/yr)",
            "value": page_ms,
            "unit": "ms",
            "baseline": one["floor_ms"],
            "ratio": round(page_ms / one["floor_ms"], 2),
        }
        if days == 365:
            row |= {"target": f"< {TARGET_MS:.0f} ms", "ok": page_ms < TARGET_MS}
        rows.append(row)
    growth = ten["page_365_ms"] / one["page_365_ms"]
    rows.append(
        {
            "name": f"trends page, 365 days, 10x activities ({one['activities'] * 10:,})",
            "value": ten["page_365_ms"],
            "unit": "ms",
            "baseline": one["page_365_ms"],
            "ratio": round(growth, 2),
            "target": f"< {GROWTH_TARGET:.0f}x the 1x page",
            "ok": growth < GROWTH_TARGET,
        }
    )
    rows.append(
        {
            "name": "floor: SQL scan of the 1x year's activities",
            "value": one["floor_ms"],
            "unit": "ms",
        }
    )
    if "10x_endusers" in result:
        wide = result["10x_endusers"]
        rows.append(
            {
                "name": "info: 365 days, 10x endusers (rollups of 2.92 M activities)",
                "value": wide["page_365_ms"],
                "unit": "ms",
                "baseline": one["page_365_ms"],
                "ratio": round(wide["page_365_ms"] / one["page_365_ms"], 2),
            }
        )
    for key, label in (
        ("generate_activities_s", "generation: 1x activities (SQL generate_series)"),
        ("generate_rollups_s", "generation: all rollups (INSERT ... SELECT)"),
    ):
        rows.append({"name": label, "value": result[key], "unit": "s"})
    return rows


ACTIVITY_SQL = """
INSERT INTO usage_activity (enduser_id, company_id, action, count, weight, occurred_at,
                            received_at, properties, message_id)
SELECT u.id, u.company_id, 'Action ' || ((u.id * 7 + d.n * 13 + k.n) %% 12),
       1 + ((u.id + d.n + k.n) %% 3), 1.0, t.ts, t.ts, '{}'::jsonb,
       'a-' || u.id || '-' || d.n || '-' || k.n
FROM planhat_segment_enduser u
CROSS JOIN generate_series(0, %(days)s - 1) AS d(n)
CROSS JOIN generate_series(1, %(per_day)s) AS k(n)
CROSS JOIN LATERAL (
    SELECT %(now)s::timestamptz - d.n * interval '1 day'
           - ((u.id * 31 + d.n * 17 + k.n * 7) %% 1400) * interval '1 minute' AS ts
) t
WHERE u.company_id = %(company)s AND (u.id * 7919 + d.n * 104729) %% 100 < 80
"""

ACTION_DAY_SQL = """
INSERT INTO usage_companyactionday (company_id, day, action, count, weighted_count)
SELECT company_id, (occurred_at AT TIME ZONE 'UTC')::date, action, sum(count),
       sum(count * weight)
FROM usage_activity GROUP BY 1, 2, 3
"""

ENDUSER_DAY_SQL = """
INSERT INTO usage_enduserday (company_id, enduser_id, day, count)
SELECT company_id, enduser_id, (occurred_at AT TIME ZONE 'UTC')::date, sum(count)
FROM usage_activity GROUP BY 1, 2, 3
"""

METRIC_SQL = """
INSERT INTO usage_metricvalue (company_id, metric_id, value, occurred_at, message_id)
SELECT %(company)s, m.id, (h.n * 37 + m.id * 11) %% 100, %(now)s::timestamptz
       - h.n * interval '1 hour', 'm-' || %(company)s || '-' || h.n
FROM generate_series(0, %(days)s * 24 - 1) AS h(n)
CROSS JOIN integrations_metricdefinition m
"""


# The 10x company: the 1x company's rollup rows with ten times the counts (what ten times
# the activities, spread over the same enduser-days, roll up to), on its own endusers.
TENFOLD_ACTION_DAY_SQL = """
INSERT INTO usage_companyactionday (company_id, day, action, count, weighted_count)
SELECT %(target)s, day, action, count * 10, weighted_count * 10
FROM usage_companyactionday WHERE company_id = %(source)s
"""

TENFOLD_ENDUSER_DAY_SQL = """
INSERT INTO usage_enduserday (company_id, enduser_id, day, count)
SELECT %(target)s, t.id, d.day, d.count * 10
FROM usage_enduserday d
JOIN planhat_segment_enduser s ON s.id = d.enduser_id
JOIN planhat_segment_enduser t ON t.company_id = %(target)s AND t.name = s.name
WHERE d.company_id = %(source)s
"""

# 10x endusers at 1x intensity, generated directly as rollups.
WIDE_ENDUSER_DAY_SQL = """
INSERT INTO usage_enduserday (company_id, enduser_id, day, count)
SELECT u.company_id, u.id, %(today)s::date - d.n, 1 + ((u.id + d.n) %% 3)
FROM planhat_segment_enduser u CROSS JOIN generate_series(0, %(days)s - 1) AS d(n)
WHERE u.company_id = %(company)s AND (u.id * 7919 + d.n * 104729) %% 100 < 80
"""

WIDE_ACTION_DAY_SQL = """
INSERT INTO usage_companyactionday (company_id, day, action, count, weighted_count)
SELECT %(company)s, day, 'Action ' || (enduser_id %% 12), sum(count), sum(count)
FROM usage_enduserday WHERE company_id = %(company)s GROUP BY 2, 3
"""

ENDUSERS_SQL = """
INSERT INTO planhat_segment_enduser (company_id, external_id, email, email_normalized,
    first_name, last_name, name, title, source, is_test, custom, created_at, updated_at)
SELECT %(company)s, 'u-' || %(company)s || '-' || i,
       'user' || i || '@' || %(company)s || '.bench', 'user' || i || '@'
       || %(company)s || '.bench', '', '', 'User ' || i, '', 'segment', false,
       '{}'::jsonb, %(now)s, %(now)s
FROM generate_series(1, %(n)s) AS g(i)
"""


def _child(sizes: dict) -> dict:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "planhat_segment.settings")
    django.setup()
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.utils import timezone

    from integrations.models import MetricDefinition
    from planhat_segment.models import Company

    for key in ("active_users", "seats", "nps"):
        MetricDefinition.objects.create(key=key)
    now = timezone.now()
    days = sizes["days"]
    labels = ["1x", "10x"] + (["10x_endusers"] if sizes.get("wide") else [])
    companies = {
        label: Company.objects.create(name=f"Bench {label}", external_id=f"BENCH-{label}")
        for label in labels
    }
    one, ten = companies["1x"], companies["10x"]
    with connection.cursor() as cursor:
        for label, company in companies.items():
            n = sizes["endusers"] * (10 if label == "10x_endusers" else 1)
            cursor.execute(ENDUSERS_SQL, {"company": company.pk, "n": n, "now": now})
            cursor.execute(METRIC_SQL, {"company": company.pk, "days": days, "now": now})
        started = time.perf_counter()
        cursor.execute(ACTIVITY_SQL, {"company": one.pk, "days": days, "per_day": 1, "now": now})
        generated = time.perf_counter()
        cursor.execute(ACTION_DAY_SQL)
        cursor.execute(ENDUSER_DAY_SQL)
        pair = {"source": one.pk, "target": ten.pk}
        cursor.execute(TENFOLD_ACTION_DAY_SQL, pair)
        cursor.execute(TENFOLD_ENDUSER_DAY_SQL, pair)
        if "10x_endusers" in companies:
            wide = {"company": companies["10x_endusers"].pk, "days": days, "today": now.date()}
            cursor.execute(WIDE_ENDUSER_DAY_SQL, wide)
            cursor.execute(WIDE_ACTION_DAY_SQL, wide)
        rolled = time.perf_counter()
        cursor.execute("VACUUM ANALYZE")
        cursor.execute("SELECT count(*) FROM usage_activity WHERE company_id = %s", [one.pk])
        activities = cursor.fetchone()[0]

    def floor() -> float:
        t0 = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*), sum(count) FROM usage_activity"
                " WHERE company_id = %s AND occurred_at >= %s",
                [one.pk, now - dt.timedelta(days=365)],
            )
            cursor.fetchall()
        return (time.perf_counter() - t0) * 1000

    user = get_user_model().objects.create_superuser("bench", "b@example.com", "bench-pass-123")
    client = Client()
    client.force_login(user)

    def page_ms(company_id: int, days: int) -> float:
        url = f"/admin/planhat_segment/company/{company_id}/trends/?days={days}"
        assert client.get(url).status_code == 200  # warm
        times = []
        for _ in range(7):
            t0 = time.perf_counter()
            response = client.get(url)
            times.append((time.perf_counter() - t0) * 1000)
            assert response.status_code == 200
        return round(statistics.median(times), 1)

    result: dict = {
        "generate_activities_s": round(generated - started, 1),
        "generate_rollups_s": round(rolled - generated, 1),
    }
    for label, company in companies.items():
        entry = {}
        if label == "1x":
            entry["activities"] = activities
            entry["floor_ms"] = round(statistics.median(floor() for _ in range(5)), 1)
        for days in (30, 90, 365) if label == "1x" else (365,):
            entry[f"page_{days}_ms"] = page_ms(company.pk, days)
        result[label] = entry
    return result


if __name__ == "__main__":
    print(json.dumps(_child(json.loads(sys.argv[1]))))
