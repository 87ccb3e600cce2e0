"""Trends & Analytics with a year of data: one company, 1,000 endusers.

Seeds (COPY) a year of activity (~1 activity per enduser per day) and hourly values of three
metrics, then times the company's Trends page for 30, 90 and 365 days through Django's test
client (aggregates, template and JSON included), against the floor in the same run: one
plain SQL scan summing the same year of activity rows.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time

from .scratch import run_child, scratch_database

DB_NAME = "bench_trends"
TARGET_MS = 1000.0


def run(args) -> list[dict]:
    quick = bool(getattr(args, "quick", False))
    sizes = {"endusers": 200 if quick else 1_000, "days": 365}
    with scratch_database(DB_NAME) as url:
        result = run_child("bench.trends", sizes, db_url=url, timeout=1800)
    rows = []
    for days in (30, 90, 365):
        page_ms = result[f"page_{days}_ms"]
        rows.append(
            {
                "name": f"company trends page, {days} days ({result['activities']:,} rows/yr)",
                "value": page_ms,
                "unit": "ms",
                "baseline": result["floor_ms"],
                "ratio": round(page_ms / result["floor_ms"], 2),
                "target": f"< {TARGET_MS:.0f} ms",
                "ok": page_ms < TARGET_MS,
            }
        )
    rows.append(
        {
            "name": "floor: one SQL scan of the year's activities",
            "value": result["floor_ms"],
            "unit": "ms",
        }
    )
    return rows


def _child(sizes: dict) -> dict:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "planhat_segment.settings")
    django.setup()
    import datetime as dt
    import random

    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.utils import timezone

    from integrations.models import MetricDefinition
    from planhat_segment.models import Company

    rng = random.Random(1)
    company = Company.objects.create(name="Bench Co", external_id="BENCH")
    metrics = [MetricDefinition.objects.create(key=k) for k in ("active_users", "seats", "nps")]
    now = timezone.now()
    with connection.cursor() as cursor:
        raw = cursor.connection
        with raw.cursor().copy(
            "COPY planhat_segment_enduser (company_id, external_id, email, email_normalized, first_name,"
            " last_name, name, title, source, is_test, custom, created_at, updated_at) FROM STDIN"
        ) as copy:
            for i in range(sizes["endusers"]):
                email = f"user{i}@bench.example"
                copy.write_row(
                    (
                        company.pk,
                        f"u{i}",
                        email,
                        email,
                        "",
                        "",
                        f"User {i}",
                        "",
                        "segment",
                        False,
                        "{}",
                        now,
                        now,
                    )
                )
        cursor.execute("SELECT id FROM planhat_segment_enduser WHERE company_id = %s", [company.pk])
        user_ids = [r[0] for r in cursor.fetchall()]
        actions = [f"Action {i}" for i in range(12)]
        activities = 0
        with raw.cursor().copy(
            "COPY usage_activity (enduser_id, company_id, action, count, occurred_at, received_at,"
            " properties, message_id) FROM STDIN"
        ) as copy:
            for day in range(sizes["days"]):
                base = now - dt.timedelta(days=day)
                for user_id in user_ids:
                    if rng.random() < 0.8:
                        when = base - dt.timedelta(minutes=rng.randint(0, 1400))
                        copy.write_row(
                            (
                                user_id,
                                company.pk,
                                rng.choice(actions),
                                rng.randint(1, 3),
                                when,
                                when,
                                "{}",
                                f"a{activities}",
                            )
                        )
                        activities += 1
        with raw.cursor().copy(
            "COPY usage_metricvalue (company_id, metric_id, value, occurred_at, message_id) FROM STDIN"
        ) as copy:
            for hour in range(sizes["days"] * 24):
                when = now - dt.timedelta(hours=hour)
                for metric in metrics:
                    copy.write_row((company.pk, metric.pk, rng.random() * 100, when, f"m{hour}"))
        cursor.execute("ANALYZE")

    def floor() -> float:
        started = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*), sum(count) FROM usage_activity WHERE company_id = %s AND occurred_at >= %s",
                [company.pk, now - dt.timedelta(days=365)],
            )
            cursor.fetchall()
        return (time.perf_counter() - started) * 1000

    user = get_user_model().objects.create_superuser("bench", "b@example.com", "bench-pass-123")
    client = Client()
    client.force_login(user)
    result = {
        "activities": activities,
        "floor_ms": round(statistics.median(floor() for _ in range(5)), 1),
    }
    for days in (30, 90, 365):
        url = f"/admin/planhat_segment/company/{company.pk}/trends/?days={days}"
        assert client.get(url).status_code == 200
        times = []
        for _ in range(5):
            started = time.perf_counter()
            response = client.get(url)
            times.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200
        result[f"page_{days}_ms"] = round(statistics.median(times), 1)
    return result


if __name__ == "__main__":
    print(json.dumps(_child(json.loads(sys.argv[1]))))
