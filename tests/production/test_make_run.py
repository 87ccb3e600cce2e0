"""`make run` holds a burst: 200 parallel SDK batches, no reset, each event stored once,
database connections bounded — on SQLite (the local default) and on PostgreSQL.

The server is started exactly as a person starts it: ``make run`` (migrate, bootstrap, then
honcho with the Procfile: gunicorn, one Celery worker for ingest, one for the rest, beat), in
a temporary ``VAR_DIR``. The requests are shaped like @segment/analytics-node's: ``POST
/v1/batch`` with the write key as Basic user name, a ``batch`` of track calls with their own
``messageId`` and a ``sentAt``, all released at once by a barrier.
"""

from __future__ import annotations

import base64
import json
import os
import sqlite3
import subprocess
import threading
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest

from .support import (
    VENV,
    free_port,
    port_open,
    postgres_test_database_url,
    process_env,
    start,
    stop,
    suite_redis_url,
    transactional_test_database,
    wait_for,
)

pytestmark = pytest.mark.timeout(280)

BURST = 200  # parallel requests, each on its own connection
EVENTS_PER_REQUEST = 5
# The Procfile's defaults (unless the environment says otherwise): gunicorn workers x
# threads, each thread keeping one connection.
WEB_CONCURRENCY = int(os.environ.get("WEB_CONCURRENCY") or 2)
WEB_THREADS = int(os.environ.get("WEB_THREADS") or 4)
# Besides the web: the ingest worker's and the other worker's pool processes and their parents
# (Celery's Django fixup may open one there), and beat.
OTHER_PROCESSES = 5


@dataclass
class Database:
    kind: str
    url: str | None  # None: make run's default, SQLite in VAR_DIR
    var_dir: Path
    samples: list[dict[str, int]] = field(default_factory=list)

    def rows(self, sql: str, params: tuple = ()) -> list[tuple]:
        if self.kind == "postgres":
            import psycopg

            with psycopg.connect(self.url, autocommit=True) as conn:
                return conn.execute(sql, params).fetchall()
        uri = f"file:{self.var_dir / 'db.sqlite3'}?mode=ro"
        with closing(sqlite3.connect(uri, uri=True)) as conn:
            return conn.execute(sql.replace("%s", "?"), params).fetchall()

    def connections(self) -> dict[str, int]:
        """Open connections to this database per program (settings name them)."""
        name = self.url.rsplit("/", 1)[-1]
        found = self.rows(
            "SELECT application_name, count(*) FROM pg_stat_activity WHERE datname = %s"
            " GROUP BY application_name",
            (name,),
        )
        return dict(found)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database(request, tmp_path) -> Database:
    var_dir = tmp_path / "var"
    if request.param == "postgres":
        # The suite's test database, created and migrated by pytest-django, flushed after.
        transactional_test_database(request)
        return Database("postgres", postgres_test_database_url(), var_dir)
    return Database("sqlite", None, var_dir)


@dataclass
class Running:
    proc: subprocess.Popen
    port: int
    token: str
    log: Path


@pytest.fixture
def running(database, tmp_path):
    """`make run` on a free port, until the web answers; stops everything after."""
    port = free_port()
    log = tmp_path / "make-run.log"
    env = process_env(
        VAR_DIR=str(database.var_dir),
        DATABASE_URL=database.url,
        CELERY_BROKER_URL=suite_redis_url() if database.kind == "postgres" else None,
    )
    # -o: the suite's virtualenv is installed already; make run must not reinstall mid-test.
    proc = start(
        ["make", "-o", f"{VENV}/.installed", "run", f"VENV={VENV}", f"PORT={port}"],
        env=env,
        log=log,
    )
    try:
        wait_for(lambda: port_open(port), proc=proc, log=log, seconds=120, what="make run")
        token = log.read_text().split("Tenant token:", 1)[1].split()[0]
        yield Running(proc, port, token, log)
    finally:
        stop(proc)


def _batch(run: str, i: int) -> bytes:
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return json.dumps(
        {
            "batch": [
                {
                    "type": "track",
                    "event": "Burst Tested",
                    "userId": f"burst-user-{i % 17}",
                    "properties": {"request": i, "item": j},
                    "messageId": f"{run}-{i}-{j}",
                    "timestamp": now,
                    "context": {"library": {"name": "@segment/analytics-node", "version": "2.2.0"}},
                    "integrations": {},
                    "_metadata": {"jsRuntime": "node"},
                }
                for j in range(EVENTS_PER_REQUEST)
            ],
            "sentAt": now,
        }
    ).encode()


def _burst(port: int, token: str, run: str) -> list[tuple[object, object]]:
    """BURST posts released together; (status or error, answer) for each."""
    authorization = "Basic " + base64.b64encode(f"{token}:".encode()).decode()
    barrier = threading.Barrier(BURST)

    def post(i: int):
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/v1/batch",
            data=_batch(run, i),
            method="POST",
            headers={
                "Authorization": authorization,
                "Content-Type": "application/json",
                "User-Agent": "analytics-node-next/latest",
            },
        )
        barrier.wait(timeout=60)
        try:
            with urllib.request.urlopen(request, timeout=120) as answer:
                return answer.status, json.loads(answer.read())
        except urllib.error.HTTPError as error:
            return error.code, error.read()[:300]
        except OSError as error:  # reset, refused, timeout: what runserver did under bursts
            return f"{type(error).__name__}: {error}", None

    with ThreadPoolExecutor(BURST) as pool:
        return list(pool.map(post, range(BURST)))


def _sample_connections(database: Database, stop_event: threading.Event) -> None:
    while not stop_event.is_set():
        database.samples.append(database.connections())
        stop_event.wait(0.05)


def _get(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=30) as answer:
        return answer.status, answer.read()


def test_make_run_serves_and_holds_a_burst_of_200_sdk_batches(database, running):
    # What make run prints, one honcho line per process of the Procfile, static files served.
    text = running.log.read_text()
    base = f"http://127.0.0.1:{running.port}"
    assert f"  Admin:            {base}/admin/" in text
    assert "  Login:            admin / " in text
    assert f"  Destination URL:  {base}/dock/segment" in text
    assert "  Authorization:    Basic " in text
    for name in ("web.1", "ingest.1", "worker.1", "beat.1"):
        assert f"{name} started" in text
    assert _get(f"{base}/admin/login/")[0] == 200
    status, chart = _get(f"{base}/static/vendor/chartjs/chart.umd.min.js")
    assert status == 200
    assert b"window.Chart" in chart

    run = f"burst-{uuid.uuid4().hex[:8]}"
    sampler_stop = threading.Event()
    sampler = None
    if database.kind == "postgres":
        sampler = threading.Thread(target=_sample_connections, args=(database, sampler_stop))
        sampler.start()
    try:
        outcomes = _burst(running.port, running.token, run)
    finally:
        sampler_stop.set()
        if sampler:
            sampler.join()

    failed = [(i, o) for i, o in enumerate(outcomes) if o[0] != 200]
    assert not failed, f"{len(failed)} of {BURST} requests failed, e.g. {failed[:5]}"
    for _, answer in outcomes:
        assert answer == {
            "accepted": EVENTS_PER_REQUEST,
            "duplicates": 0,
            "rejected": [],
            "rejected_count": 0,
        }

    # Every event stored exactly once.
    stored = database.rows(
        "SELECT message_id, count(*) FROM usage_inboxevent WHERE message_id LIKE %s"
        " GROUP BY message_id",
        (run + "-%",),
    )
    expected = {f"{run}-{i}-{j}" for i in range(BURST) for j in range(EVENTS_PER_REQUEST)}
    assert {m for m, _ in stored} == expected
    assert all(n == 1 for _, n in stored)

    # make run's ingest worker processes them (unknown users without a company: they wait).
    def settled():
        rows = database.rows(
            "SELECT status, count(*) FROM usage_inboxevent WHERE message_id LIKE %s"
            " GROUP BY status",
            (run + "-%",),
        )
        statuses = dict(rows)
        return statuses if not set(statuses) & {"pending", "processing"} else None

    statuses = wait_for(settled, proc=running.proc, log=running.log, seconds=120, what="processing")
    assert statuses == {"waiting": len(expected)}

    if database.kind == "postgres":
        # Bounded during the burst and after it (runserver left one per request thread).
        web_bound = WEB_CONCURRENCY * WEB_THREADS
        web_peak = max(s.get("planhat-segment:gunicorn", 0) for s in database.samples)
        assert 0 < web_peak <= web_bound, database.samples[-5:]
        after = database.connections()
        assert after.get("planhat-segment:gunicorn", 0) <= web_bound, after
        ours = sum(n for app, n in after.items() if app.startswith("planhat-segment:"))
        own = after.get("planhat-segment:pytest", 0)
        assert ours - own <= web_bound + OTHER_PROCESSES, after


def test_procfile_runs_ingestion_on_a_worker_of_its_own():
    """Ingestion has its own worker; every queue the settings declare is consumed once."""
    from django.conf import settings

    from .support import procfile_command

    def queues_of(name: str) -> list[str]:
        return procfile_command(name).split(" -Q ", 1)[1].split()[0].split(",")

    assert queues_of("ingest") == ["ingest"]
    consumed = queues_of("ingest") + queues_of("worker") + queues_of("notify")
    assert sorted(consumed) == sorted(q.name for q in settings.CELERY_QUEUES)
    assert "/bin/gunicorn " in procfile_command("web")
