"""A scratch PostgreSQL database for one benchmark, migrated, and dropped afterwards."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent


def server_url() -> str:
    """The PostgreSQL server benchmarks use (its maintenance database)."""
    return os.environ.get("BENCH_DATABASE_URL", "postgres://root@127.0.0.1:5432/postgres")


def database_url(name: str) -> str:
    parts = urlsplit(server_url())
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


def admin_execute(sql: str) -> None:
    """Run one statement on the server's maintenance database (CREATE / DROP DATABASE)."""
    import psycopg

    with psycopg.connect(server_url(), autocommit=True) as conn:
        conn.execute(sql)


@contextmanager
def scratch_database(name: str, *, migrate: bool = True) -> Iterator[str]:
    """Create database ``name`` (dropping a leftover), migrate it, yield its URL, drop it."""
    admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin_execute(f'CREATE DATABASE "{name}"')
    url = database_url(name)
    try:
        if migrate:
            env = {**os.environ, "DATABASE_URL": url, "CELERY_BROKER_URL": "memory://"}
            subprocess.run(
                [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
                cwd=ROOT,
                env=env,
                check=True,
            )
        yield url
    finally:
        admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def run_child(
    module: str, payload: dict, *, db_url: str, timeout: int, show_stderr: bool = False
) -> dict:
    """Run ``python -m <module> <payload>`` on ``db_url`` and return the JSON of its last line.

    Benchmarks measure in a child process so the parent's imports and memory don't count.
    """
    env = {
        **os.environ,
        "DATABASE_URL": db_url,
        "CELERY_BROKER_URL": "memory://",
        "LOG_LEVEL": "WARNING",
    }
    child = subprocess.run(
        [sys.executable, "-m", module, json.dumps(payload)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )
    if child.returncode != 0 or show_stderr:
        print(child.stderr[-12000:], file=sys.stderr)
    if child.returncode != 0:
        raise RuntimeError(f"{module} child failed")
    return json.loads(child.stdout.strip().splitlines()[-1])
