"""Alert evaluation for 10,000 companies × 5 rules over 180 days of rollups.

Generates, in SQL (``INSERT … SELECT generate_series``), 10,000 companies (created a year
ago, one license each, 3 endusers each), ~5.4 M company-day-action rows (180 days × 3
actions: steady, falling in the last week, rising; every 17th company quiet for 20 days),
~1 M enduser-day rows (60 days), 30 days of one metric per company and two days of health
scores; reports how long generation took. Then times ``alerts_evaluate()`` with five rules —
usage drop (50 %, 7 days vs 4 periods, with an email recipient and a webhook, so deliveries
are written too), inactivity (14 days), active endusers below 2 (30 days), metric below a
threshold, band changed to red — from no alerts (3 runs, alerts deleted between runs;
median reported), plus an idempotent re-run, against a floor measured in the same run: one
plain ``GROUP BY`` over the usage-drop window of the same rollups.
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

DB_NAME = "bench_alerts"
TARGET_S = 10.0

COMPANIES_SQL = """
INSERT INTO planhat_segment_company (external_id, name, is_test, custom, owner_email,
    created_at, updated_at)
SELECT 'C-' || i, 'Company ' || i, false, '{}'::jsonb, 'owner' || i || '@bench.example',
       %(created)s, %(created)s
FROM generate_series(1, %(companies)s) AS g(i)
"""

LICENSES_SQL = """
INSERT INTO planhat_segment_license (company_id, external_id, product, mrr, currency,
    start_date, status, custom, created_at, updated_at)
SELECT id, 'L-' || id, 'Pro', (id %% 50) * 100, 'USD', DATE '2025-01-01', 'active',
       '{}'::jsonb, %(created)s, %(created)s
FROM planhat_segment_company
"""

# Shapes by company id: %% 3 = 1 falls to a fifth in the last 7 days, 2 rises, 0 steady;
# every 17th company has had no activity for the last 20 days.
ACTION_DAYS_SQL = """
INSERT INTO usage_companyactionday (company_id, day, action, count, weighted_count)
SELECT c.id, %(today)s::date - d.n, 'Action ' || a.n, v.count, v.count
FROM planhat_segment_company c
CROSS JOIN generate_series(1, %(days)s) AS d(n)
CROSS JOIN generate_series(1, 3) AS a(n)
CROSS JOIN LATERAL (
    SELECT GREATEST(1, ((c.id * 7 + d.n * 13 + a.n) %% 20)
        * CASE c.id %% 3 WHEN 1 THEN CASE WHEN d.n <= 7 THEN 1 ELSE 5 END
                         WHEN 2 THEN CASE WHEN d.n <= 7 THEN 3 ELSE 1 END
                         ELSE 2 END) AS count
) v
WHERE NOT (c.id %% 17 = 0 AND d.n <= 20)
"""

# Every 11th company has one active enduser; the others all three (on ~60 %% of days).
ENDUSER_DAYS_SQL = """
INSERT INTO usage_enduserday (company_id, enduser_id, day, count)
SELECT u.company_id, u.id, %(today)s::date - d.n, 1 + (u.id + d.n) %% 5
FROM planhat_segment_enduser u
CROSS JOIN generate_series(1, 60) AS d(n)
WHERE (u.id * 7919 + d.n * 104729) %% 100 < 60
  AND (u.company_id %% 11 <> 0 OR u.external_id LIKE '%%-1')
"""

METRIC_SQL = """
INSERT INTO usage_metricvalue (company_id, metric_id, value, occurred_at, message_id)
SELECT c.id, %(metric)s, (c.id + d.n) %% 100,
       (%(today)s::date - d.n)::timestamp AT TIME ZONE 'UTC' + interval '12 hours',
       'm-' || c.id || '-' || d.n
FROM planhat_segment_company c CROSS JOIN generate_series(1, 30) AS d(n)
"""

# Yesterday amber for everyone; today red for the falling third.
SCORES_SQL = """
INSERT INTO health_healthscore (company_id, day, score, band, breakdown, active_endusers_30d,
    mrr_currency, computed_at, traits_changed_at)
SELECT c.id, %(today)s::date - d.n,
       CASE WHEN d.n = 0 AND c.id %% 3 = 1 THEN 3.0 ELSE 5.5 END,
       CASE WHEN d.n = 0 AND c.id %% 3 = 1 THEN 'red' ELSE 'amber' END,
       '{}'::jsonb, 0, 'USD', %(now)s, %(now)s
FROM planhat_segment_company c CROSS JOIN generate_series(0, 1) AS d(n)
"""

FLOOR_SQL = """
SELECT company_id, sum(count) FILTER (WHERE day >= %(today)s::date - 7),
       sum(count) FILTER (WHERE day < %(today)s::date - 7)
FROM usage_companyactionday
WHERE day >= %(today)s::date - 35 AND day < %(today)s::date GROUP BY company_id
"""


def run(args) -> list[dict]:
    quick = bool(getattr(args, "quick", False))
    sizes = {"companies": 1_000 if quick else 10_000, "days": 180, "runs": 3}
    with scratch_database(DB_NAME) as url:
        result = run_child("bench.alerts", sizes, db_url=url, timeout=3600)
    median = result["evaluate_median_s"]
    rows = [
        headline_row(
            name=(
                f"evaluate {result['companies']:,} companies × 5 rules "
                f"({result['action_day_rows'] / 1e6:.2f} M action-day rows), median of 3"
            ),
            median_s=median,
            floor_s=result["floor_s"],
            target_s=TARGET_S,
        ),
        {
            "name": "idempotent re-run (nothing new to open)",
            "value": result["rerun_s"],
            "unit": "s",
        },
        {
            "name": "alerts opened per run (deliveries written)",
            "value": result["opened"],
            "unit": f"({result['deliveries']:,})",
        },
        {
            "name": "floor: one GROUP BY over the usage-drop window",
            "value": result["floor_s"],
            "unit": "s",
        },
        generation_row(result["generate_s"]),
    ]
    print(
        f"[bench] alerts: runs {result['runs_s']} s; per rule {result['per_rule']}",
        file=sys.stderr,
    )
    return rows


def _child(sizes: dict) -> dict:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "planhat_segment.settings")
    os.environ.setdefault("WEBHOOK_ALLOWED_HOSTS", "127.0.0.1")
    django.setup()
    import datetime as dt

    from django.utils import timezone

    from health.alerts import alert_rule_create, alerts_evaluate, webhook_create
    from health.models import Alert, AlertRule, Delivery
    from health.services import health_defaults_ensure
    from integrations.models import MetricDefinition
    from usage.rollup_selectors import utc_today

    health_defaults_ensure()
    metric = MetricDefinition.objects.create(key="seats")
    now = timezone.now()
    today = utc_today()
    params = {
        "now": now,
        "created": now - dt.timedelta(days=365),
        "today": today,
        "companies": sizes["companies"],
        "days": sizes["days"],
        "metric": metric.pk,
        "endusers": 3,
    }
    generated = rollups_generate(
        statements=(
            COMPANIES_SQL,
            LICENSES_SQL,
            ENDUSERS_SQL,
            ACTION_DAYS_SQL,
            ENDUSER_DAYS_SQL,
            METRIC_SQL,
            SCORES_SQL,
        ),
        params=params,
    )

    hook = webhook_create(
        data={"name": "Bench hook", "url": "http://127.0.0.1:9/hook", "secret": "b" * 32}
    )
    alert_rule_create(
        data={
            "name": "Usage drop",
            "kind": "usage_drop",
            "drop_percent": 50,
            "window_days": 7,
            "baseline_periods": 4,
            "email_recipients": ["cs@bench.example"],
        },
        webhooks=[hook],
    )
    alert_rule_create(data={"name": "Quiet", "kind": "inactivity", "days": 14})
    alert_rule_create(
        data={
            "name": "Few users",
            "kind": "active_endusers_below",
            "threshold": 2,
            "window_days": 30,
        }
    )
    alert_rule_create(
        data={
            "name": "Seats low",
            "kind": "metric_threshold",
            "metric": metric,
            "operator": "lt",
            "threshold": 10,
        }
    )
    alert_rule_create(data={"name": "Red", "kind": "health_band_change", "to_band": "red"})

    floor_s = floor_median_seconds(sql=FLOOR_SQL, params=params)
    runs, summary = [], None
    for _ in range(sizes["runs"]):
        # From no alerts each time (outside the timing): every run opens the same alerts.
        Alert.objects.all().delete()
        AlertRule.objects.update(last_evaluated_day=None, last_evaluated_at=None)
        t0 = time.perf_counter()
        summary = alerts_evaluate(day=today)
        runs.append(round(time.perf_counter() - t0, 2))
    t0 = time.perf_counter()
    rerun = alerts_evaluate(day=today)
    rerun_s = round(time.perf_counter() - t0, 2)
    assert rerun.opened == 0, "an idempotent re-run opened alerts"
    return {
        "companies": sizes["companies"],
        "action_day_rows": generated.action_day_rows,
        "generate_s": round(generated.seconds, 1),
        "floor_s": round(floor_s, 3),
        "runs_s": runs,
        "evaluate_median_s": statistics.median(runs),
        "rerun_s": rerun_s,
        "opened": summary.opened,
        "deliveries": Delivery.objects.count(),
        "per_rule": {r.name: r.opened for r in summary.rules},
    }


if __name__ == "__main__":
    print(json.dumps(_child(json.loads(sys.argv[1]))))
