"""Rollup data for the benchmarks that read it (alerts, health): generated in SQL, then timed.

Each benchmark seeds its own shapes of data (its own ``INSERT … SELECT generate_series``
statements); how the seed is run and timed, and how the floor query it is measured against
is timed, is the same for both and lives here.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterable
from dataclasses import dataclass

# ``%(endusers)s`` endusers per company, created at ``%(created)s``.
ENDUSERS_SQL = """
INSERT INTO planhat_segment_enduser (company_id, external_id, email, email_normalized,
    first_name, last_name, name, title, source, is_test, custom, created_at, updated_at)
SELECT c.id, 'U-' || c.id || '-' || k, 'u' || k || '@c' || c.id || '.bench',
       'u' || k || '@c' || c.id || '.bench', '', '', '', '', 'segment', false, '{}'::jsonb,
       %(created)s, %(created)s
FROM planhat_segment_company c CROSS JOIN generate_series(1, %(endusers)s) AS g(k)
"""


@dataclass(frozen=True)
class GeneratedRollups:
    seconds: float
    action_day_rows: int


def rollups_generate(*, statements: Iterable[str], params: dict) -> GeneratedRollups:
    """Run ``statements`` in order with ``params``, then ``VACUUM ANALYZE``.

    The seconds include the ``VACUUM ANALYZE``: the timed queries need fresh statistics, so
    it is part of what generating the data costs. The row count is taken after the clock.
    """
    from django.db import connection

    started = time.perf_counter()
    with connection.cursor() as cursor:
        for sql in statements:
            cursor.execute(sql, params)
        cursor.execute("VACUUM ANALYZE")
        seconds = time.perf_counter() - started
        cursor.execute("SELECT count(*) FROM usage_companyactionday")
        action_day_rows = cursor.fetchone()[0]
    return GeneratedRollups(seconds=seconds, action_day_rows=action_day_rows)


def floor_median_seconds(*, sql: str, params: dict, runs: int = 3) -> float:
    """Median seconds of ``sql`` with all its rows fetched: what the measured figure costs at least."""
    from django.db import connection

    def once() -> float:
        t0 = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            cursor.fetchall()
        return time.perf_counter() - t0

    return statistics.median(once() for _ in range(runs))


def headline_row(*, name: str, median_s: float, floor_s: float, target_s: float) -> dict:
    """The benchmark's main row: its median against the floor and the target."""
    return {
        "name": name,
        "value": median_s,
        "unit": "s",
        "baseline": floor_s,
        "ratio": round(median_s / floor_s, 1) if floor_s else None,
        "target": f"< {target_s:.0f} s",
        "ok": median_s < target_s,
    }


def generation_row(generate_s: float) -> dict:
    return {
        "name": "generation of the rollups and objects (SQL)",
        "value": generate_s,
        "unit": "s",
    }
