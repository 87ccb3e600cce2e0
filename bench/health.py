"""Health recompute for 10,000 companies over 180 days of rollups (3 actions a day).

Generates, in SQL (``INSERT … SELECT generate_series``), 10,000 companies with one license
each, 3 endusers each, ~5.4 M company-day-action rows (180 days × 3 actions), ~3.2 M
enduser-day rows (each enduser active on ~60 % of days) and one activity per company (its
last one, for ``last_activity_at``); reports how long generation took. Then times
``health_scores_recompute()`` for every company with the default profile (3 runs for the
same day: the first inserts the day's rows, the others update them in place; median
reported), against a floor measured in the same run: one plain ``GROUP BY`` over the 30-day
window of the same rollups (what one figure costs at least).
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time

from .rollup_data import (
    ENDUSERS_SQL,
    floor_median_seconds,
    generation_row,
    headline_row,
    rollups_generate,
)
from .scratch import run_child, scratch_database

DB_NAME = "bench_health"
TARGET_S = 30.0

COMPANIES_SQL = """
INSERT INTO planhat_segment_company (external_id, name, is_test, custom, created_at, updated_at)
SELECT 'C-' || i, 'Company ' || i, false,
       jsonb_build_object('tier', CASE WHEN i %% 10 = 0 THEN 'vip' ELSE 'basic' END),
       %(now)s, %(now)s
FROM generate_series(1, %(companies)s) AS g(i)
"""

LICENSES_SQL = """
INSERT INTO planhat_segment_license (company_id, external_id, product, mrr, currency,
    start_date, status, custom, created_at, updated_at)
SELECT id, 'L-' || id, 'Pro', (id %% 50) * 100, CASE WHEN id %% 7 = 0 THEN 'EUR' ELSE 'USD' END,
       DATE '2025-01-01', 'active', '{}'::jsonb, %(now)s, %(now)s
FROM planhat_segment_company
"""

# Three usage shapes by company id: steady, falling (last 30 days at a fifth), rising.
ACTION_DAYS_SQL = """
INSERT INTO usage_companyactionday (company_id, day, action, count, weighted_count)
SELECT c.id, %(today)s::date - d.n, 'Action ' || a.n, v.count, v.count
FROM planhat_segment_company c
CROSS JOIN generate_series(1, %(days)s) AS d(n)
CROSS JOIN generate_series(1, 3) AS a(n)
CROSS JOIN LATERAL (
    SELECT GREATEST(1, ((c.id * 7 + d.n * 13 + a.n) %% 20)
        * CASE c.id %% 3 WHEN 1 THEN CASE WHEN d.n <= 30 THEN 1 ELSE 5 END
                         WHEN 2 THEN CASE WHEN d.n <= 30 THEN 3 ELSE 1 END
                         ELSE 2 END) AS count
) v
"""

ENDUSER_DAYS_SQL = """
INSERT INTO usage_enduserday (company_id, enduser_id, day, count)
SELECT u.company_id, u.id, %(today)s::date - d.n, 1 + (u.id + d.n) %% 5
FROM planhat_segment_enduser u
CROSS JOIN generate_series(1, %(days)s) AS d(n)
WHERE (u.id * 7919 + d.n * 104729) %% 100 < 60
"""

LAST_ACTIVITY_SQL = """
INSERT INTO usage_activity (enduser_id, company_id, action, count, weight, occurred_at,
                            received_at, properties, message_id)
SELECT u.id, u.company_id, 'Action 1', 1, 1.0, t.ts, t.ts, '{}'::jsonb, 'last-' || u.id
FROM (SELECT DISTINCT ON (company_id) id, company_id FROM planhat_segment_enduser
      ORDER BY company_id, id) u
CROSS JOIN LATERAL (
    SELECT (%(today)s::date - 1)::timestamp AT TIME ZONE 'UTC'
           + ((u.id * 37) %% 1400) * interval '1 minute' AS ts
) t
"""

FLOOR_SQL = """
SELECT company_id, sum(count) FROM usage_companyactionday
WHERE day >= %(today)s::date - 30 AND day < %(today)s::date GROUP BY company_id
"""


def run(args) -> list[dict]:
    quick = bool(getattr(args, "quick", False))
    sizes = {"companies": 1_000 if quick else 10_000, "days": 180, "endusers": 3, "runs": 3}
    with scratch_database(DB_NAME) as url:
        result = run_child("bench.health", sizes, db_url=url, timeout=3600)
    median = result["recompute_median_s"]
    rows = [
        headline_row(
            name=(
                f"recompute {result['companies']:,} companies "
                f"({result['action_day_rows'] / 1e6:.2f} M action-day rows), median of 3"
            ),
            median_s=median,
            floor_s=result["floor_s"],
            target_s=TARGET_S,
        ),
        {
            "name": "recompute runs (first inserts, then updates)",
            "value": max(result["runs_s"]),
            "unit": "s max",
        },
        {
            "name": "floor: one GROUP BY over the 30-day window",
            "value": result["floor_s"],
            "unit": "s",
        },
        generation_row(result["generate_s"]),
    ]
    print(f"[bench] health: runs {result['runs_s']} s; bands {result['bands']}", file=sys.stderr)
    return rows


def _child(sizes: dict) -> dict:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "planhat_segment.settings")
    django.setup()
    from django.utils import timezone

    from health.services import health_defaults_ensure, health_scores_recompute
    from usage.rollup_selectors import utc_today

    health_defaults_ensure()
    today = utc_today()
    now = timezone.now()
    params = {
        "now": now,
        "created": now,
        "today": today,
        "companies": sizes["companies"],
        "days": sizes["days"],
        "endusers": sizes["endusers"],
    }
    generated = rollups_generate(
        statements=(
            COMPANIES_SQL,
            LICENSES_SQL,
            ENDUSERS_SQL,
            ACTION_DAYS_SQL,
            ENDUSER_DAYS_SQL,
            LAST_ACTIVITY_SQL,
        ),
        params=params,
    )
    floor_s = floor_median_seconds(sql=FLOOR_SQL, params=params)
    runs = []
    summary = None
    for _ in range(sizes["runs"]):
        t0 = time.perf_counter()
        summary = health_scores_recompute(day=today)
        runs.append(round(time.perf_counter() - t0, 2))
    return {
        "companies": summary.companies,
        "action_day_rows": generated.action_day_rows,
        "generate_s": round(generated.seconds, 1),
        "floor_s": round(floor_s, 3),
        "runs_s": runs,
        "recompute_median_s": statistics.median(runs),
        "bands": dict(summary.bands),
    }


if __name__ == "__main__":
    print(json.dumps(_child(json.loads(sys.argv[1]))))
