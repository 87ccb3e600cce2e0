"""Fault-injection runs: how long until work resumes after an outage (README, "Recovery").

Usage: ``python scripts/fault_recovery.py [--only redis,kill,postgres,push] [--outage 20]``

Every run uses a scratch PostgreSQL database (``fault_recovery``, on ``BENCH_DATABASE_URL``'s
server, migrated, dropped at the end) and the Redis of ``CELERY_BROKER_URL`` (default
database 9). Outages are made with TCP proxies this script owns (``tests/faults/proxy.py``) in
front of PostgreSQL and Redis: the machine's servers are never stopped. No beat runs, so
nothing is rescued by the sweeper: each figure is the recovery mechanism's own.

- redis: a worker runs; Redis goes away for ``--outage`` seconds while events are stored
  (their nudges fail); seconds from Redis's return until every row is processed.
- kill: a worker is killed (SIGKILL) mid-drain and the queue is emptied (its message was
  acked: lost); seconds from the restart until every row is processed, and from "ready".
- postgres: PostgreSQL goes away under a worker for ``--outage`` seconds with a drain queued;
  seconds from its return until every row is processed.
- push: a push to a slow local sink; its worker is killed mid-run and restarted, the reaper
  runs every 20 s (as beat would); seconds until the run is marked failed, and whether the
  next run sends only what the dead one did not settle.

Targets (issue 9): draining resumes within 10 s; a dead push is detected within 60 s.
Exit status 1 when a target is missed. Only 127.0.0.1 is contacted; every wait is bounded.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.scratch import scratch_database  # noqa: E402
from tests.faults.proxy import FaultProxy  # noqa: E402

DB_NAME = "fault_recovery"
TARGET_DRAIN_SECONDS = 10.0
TARGET_DEAD_PUSH_SECONDS = 60.0
EVENTS = 2_000


def _through(url: str, port: int) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)
    host = f"127.0.0.1:{port}"
    netloc = f"{netloc[0]}@{host}" if len(netloc) == 2 else host
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


class Worker:
    """A Celery worker subprocess in a session of its own (killed with its children)."""

    def __init__(self, *, queues: str, env: dict[str, str], log: Path) -> None:
        self.queues, self.env, self.log = queues, env, log
        self.proc: subprocess.Popen | None = None

    def start(self) -> float:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
                [
                    sys.executable, "-m", "celery", "-A", "planhat_segment", "worker",
                    "-Q", self.queues, "-n", f"fault-{self.queues}@%h", "-P", "solo",
                    "--without-mingle", "--without-gossip", "--loglevel", "INFO",
                ],
                cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip
        return time.monotonic()

    def ready_at(self, since_bytes: int) -> bool:
        return "ready." in self.log.read_text(errors="replace")[since_bytes:]

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            self.proc.wait(timeout=30)
        self.proc = None


def wait(predicate, *, seconds: float, step: float = 0.05) -> float | None:
    """Seconds until ``predicate()`` holds, or None past ``seconds``."""
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        if predicate():
            return time.monotonic() - started
        time.sleep(step)
    return None


def main() -> int:
    parser = argparse.ArgumentParser(prog="scripts/fault_recovery.py")
    parser.add_argument("--only", default="redis,kill,postgres,push")
    parser.add_argument("--outage", type=float, default=20.0)
    args = parser.parse_args()
    chosen = args.only.split(",")
    broker = os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/9")
    redis = urlsplit(broker)
    with scratch_database(DB_NAME) as db_url:
        db = urlsplit(db_url)
        pg_proxy = FaultProxy(upstream=(db.hostname or "127.0.0.1", db.port or 5432))
        redis_proxy = FaultProxy(upstream=(redis.hostname or "127.0.0.1", redis.port or 6379))
        # This process plays the web: its database is direct, its broker through the proxy.
        os.environ.update(
            DATABASE_URL=db_url,
            CELERY_BROKER_URL=_through(broker, redis_proxy.port),
            DJANGO_SETTINGS_MODULE="planhat_segment.settings",
            LOG_LEVEL="WARNING",
        )
        os.environ.pop("TEST_DATABASE_NAME", None)
        worker_env = {
            **os.environ,
            "DATABASE_URL": _through(db_url, pg_proxy.port),
            "DATABASE_CONN_MAX_AGE": "0",
            "LOG_LEVEL": "INFO",
        }
        import django

        django.setup()
        results = Runs(worker_env, pg_proxy, redis_proxy, args.outage, Path("var/faults"))
        try:
            rows = [getattr(results, name)() for name in chosen]
        finally:
            results.close()
            pg_proxy.close()
            redis_proxy.close()
    print(json.dumps(rows, indent=2))
    return 0 if all(r["ok"] for r in rows) else 1


class Runs:
    def __init__(self, env, pg_proxy, redis_proxy, outage, logs: Path) -> None:
        self.env, self.pg_proxy, self.redis_proxy, self.outage = env, pg_proxy, redis_proxy, outage
        logs.mkdir(parents=True, exist_ok=True)
        self.logs = logs
        self.workers: list[Worker] = []
        from integrations.services import integration_ensure

        integration_ensure()

    def close(self) -> None:
        for worker in self.workers:
            worker.kill(signal.SIGTERM)

    def worker(self, queues: str, name: str) -> Worker:
        log = self.logs / f"{name}.log"
        log.write_text("")
        worker = Worker(queues=queues, env=self.env, log=log)
        self.workers.append(worker)
        return worker

    # -- helpers on the inbox ---------------------------------------------------------------
    @staticmethod
    def store(tag: str, n: int = EVENTS) -> None:
        from usage.ingest.services import messages_ingest

        for start in range(0, n, 500):
            items = [
                {
                    "type": "track",
                    "userId": f"{tag}-{i % 50}",
                    "event": "E",
                    "messageId": f"{tag}-{i}",
                }
                | {"context": {"groupId": "ACME"}}
                for i in range(start, min(n, start + 500))
            ]
            messages_ingest(items=items)

    @staticmethod
    def open_rows() -> int:
        from usage.models import InboxEvent

        return InboxEvent.objects.filter(status__in=["pending", "processing"]).count()

    def drained(self, pending: int) -> tuple[float | None, float | None]:
        """Seconds until processing resumes (fewer open rows than ``pending``) and until every
        row is processed."""
        resumed = wait(lambda: self.open_rows() < pending, seconds=120, step=0.02)
        done = wait(lambda: self.open_rows() == 0, seconds=300)
        if resumed is None or done is None:
            return resumed, None
        return resumed, resumed + done

    @staticmethod
    def purge() -> None:
        from planhat_segment.celery import app

        with app.connection_for_write() as conn:
            conn.default_channel.queue_purge("ingest")

    def ready(self, worker: Worker) -> None:
        if wait(lambda: worker.ready_at(0), seconds=60) is None:
            raise RuntimeError(f"worker not ready: {worker.log.read_text()[-2000:]}")

    # -- the runs ------------------------------------------------------------------------------
    def redis(self) -> dict:
        from planhat_segment.models import Company

        Company.objects.get_or_create(external_id="ACME", defaults={"name": "Acme"})
        worker = self.worker("ingest", "redis")
        worker.start()
        self.ready(worker)
        self.redis_proxy.drop()
        ends = time.monotonic() + self.outage
        batches = 0
        while time.monotonic() < ends:  # traffic during the outage: stored, nudges fail
            self.store(f"redis{batches}", 200)
            batches += 1
            time.sleep(1)
        pending = self.open_rows()
        self.redis_proxy.forward()
        resumed, done = self.drained(pending)
        worker.kill(signal.SIGTERM)
        return self._row(
            "redis outage: draining resumed", resumed, TARGET_DRAIN_SECONDS,
            pending=pending, all_processed=_r(done),
        )  # fmt: skip

    def kill(self) -> dict:
        worker = self.worker("ingest", "kill")
        worker.start()
        self.ready(worker)
        self.store("kill", 6_000)  # a long drain, killed in the middle
        wait(lambda: self.open_rows() < 5_000, seconds=60, step=0.01)
        worker.kill(signal.SIGKILL)
        self.purge()  # the killed drain's message was acked; the rest would hide the effect
        pending = self.open_rows()
        size = worker.log.stat().st_size
        worker.start()
        ready = wait(lambda: worker.ready_at(size), seconds=60, step=0.02)
        resumed, done = self.drained(pending)
        worker.kill(signal.SIGTERM)
        row = self._row(
            "worker killed (-9), restarted: draining resumed after ready", resumed,
            TARGET_DRAIN_SECONDS, pending=pending, all_processed=_r(done),
        )  # fmt: skip
        row["startup"] = _r(ready)
        return row

    def postgres(self) -> dict:
        from planhat_segment.celery import app

        worker = self.worker("ingest", "postgres")
        worker.start()
        self.ready(worker)
        self.store("pg")  # stored while the database answers...
        self.purge()
        self.pg_proxy.drop()  # ...then it goes away under the worker, with a drain queued
        app.send_task("usage.drain_inbox", queue="ingest", retry=False)
        time.sleep(self.outage)
        pending = self.open_rows()
        self.pg_proxy.forward()
        resumed, done = self.drained(pending)
        worker.kill(signal.SIGTERM)
        retried = worker.log.read_text(errors="replace").count("Retry in")
        row = self._row(
            "postgres outage: draining resumed", resumed, TARGET_DRAIN_SECONDS,
            pending=pending, all_processed=_r(done),
        )  # fmt: skip
        row["retries_logged"] = retried
        return row

    def push(self) -> dict:
        from django.utils import timezone

        from integrations.services import integration_ensure, integration_update
        from planhat_segment.models import Company
        from tests.warehouse_sync.sink import Sink
        from warehouse_sync.models import SyncRun
        from warehouse_sync.services import sync_run_start, sync_runs_reap_lapsed

        sink = Sink().start()
        n = 3_000
        Company.objects.bulk_create([Company(name=f"P{i}") for i in range(n)])
        # Objects that changed an hour ago, as most do: only what changes after the dead
        # run started (less the safety margin) is sent again regardless of its checkpoint.
        Company.objects.update(updated_at=timezone.now() - timedelta(hours=1))
        integration_update(
            integration=integration_ensure(),
            warehouse_enabled=True,
            write_key=sink.write_key,
            region="custom",
            custom_base_url=sink.url,
            synced_models=["company"],
        )
        self.env.update(
            WAREHOUSE_PUSH_MAX_BATCH_MESSAGES="100", WAREHOUSE_PUSH_CONCURRENCY="1",
            WAREHOUSE_PUSH_MAX_EVENTS_PER_SECOND="0", WAREHOUSE_PUSH_SAFETY_MARGIN_SECONDS="60",
        )  # fmt: skip
        sink.script("slow", times=1_000, delay=0.5)  # 30 batches of 100, half a second each
        worker = self.worker("warehouse", "push")
        worker.start()
        self.ready(worker)
        run = sync_run_start(trigger="manual")
        wait(lambda: len(sink.messages) >= 1_000, seconds=120)
        worker.kill(signal.SIGKILL)
        died = time.monotonic()
        worker.start()  # the supervisor restarts it
        detected = None
        while detected is None and time.monotonic() - died < 180:
            time.sleep(20)  # the reaper's beat interval
            if run.pk in sync_runs_reap_lapsed():
                detected = time.monotonic() - died
        first = {m["anonymousId"] for m in sink.messages}
        sink.reset()
        resumed = sync_run_start(trigger="schedule")
        wait(
            lambda: SyncRun.objects.get(pk=resumed.pk).status != "running",
            seconds=300,
            step=0.5,
        )
        second = {m["anonymousId"] for m in sink.messages}
        worker.kill(signal.SIGTERM)
        sink.stop()
        all_ids = {f"planhat:company:{pk}" for pk in Company.objects.values_list("pk", flat=True)}
        row = self._row("push worker killed: run marked failed", detected, TARGET_DEAD_PUSH_SECONDS)
        dead = SyncRun.objects.get(pk=run.pk)
        row.update(
            dead_checkpoint=dead.checkpoint,
            sent_before_death=len(first),
            sent_by_next_run=len(second),
            resent=len(first & second),
            all_sent=(first | second) == all_ids,
            next_run_status=SyncRun.objects.get(pk=resumed.pk).status,
        )
        row["ok"] = row["ok"] and row["all_sent"] and len(second) < n
        return row

    @staticmethod
    def _row(name: str, seconds: float | None, target: float, **extra) -> dict:
        ok = seconds is not None and seconds <= target
        print(f"[faults] {name}: {_r(seconds)} s (target {target:.0f} s) {extra}", flush=True)
        return {"name": name, "seconds": _r(seconds), "target": target, "ok": ok, **extra}


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


if __name__ == "__main__":
    sys.exit(main())
