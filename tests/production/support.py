"""Helpers of the production tests: processes started from the checkout, as a person would.

Every server here is a subprocess in a session of its own (so stopping it stops its children
and nothing else), logging to a file (a full pipe would stall it), bound to 127.0.0.1 on a
free port. The environment is the suite's, less what would point the processes at the wrong
database or broker; each test says which database and broker its processes use.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest

ROOT = Path(__file__).resolve().parents[2]
VENV = Path(sys.prefix)  # the suite's virtualenv (make test's .venv); the Procfile runs from it

# Variables of the suite that must not leak into a process under test (prefixes; DJANGO_
# also covers DJANGO_ALLOW_ASYNC_UNSAFE, which the browser tests set and check --deploy
# rightly refuses).
_SUITE_ONLY = (
    "DATABASE_URL",
    "TEST_DATABASE_NAME",
    "CELERY_BROKER_URL",
    "DJANGO_",
    "SECRET_KEY",
    "PUBLIC_BASE_URL",
    "ALLOWED_HOSTS",
    "CSRF_TRUSTED_ORIGINS",
    "VAR_DIR",
    "STATIC_ROOT",
    "PYTEST_ADDOPTS",
)


def process_env(**values: str | None) -> dict[str, str]:
    """The suite's environment without its database / broker / mode, plus ``values``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_SUITE_ONLY)}
    env["VENV"] = str(VENV)
    env["DJANGO_SETTINGS_MODULE"] = "planhat_segment.settings"
    env.update({k: v for k, v in values.items() if v is not None})
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def log_tail(path: Path, chars: int = 4000) -> str:
    text = path.read_text(errors="replace") if path.exists() else ""
    return text[-chars:]


def start(cmd: list[str], *, env: dict[str, str], log: Path) -> subprocess.Popen:
    with log.open("ab") as out:
        return subprocess.Popen(
            cmd,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _session_members(sid: int) -> list[int]:
    """Processes still in session ``sid`` (Linux /proc; field 6 of stat is the session)."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid and fields[0] != "Z":
            members.append(int(stat.parent.name))
    return members


def stop(proc: subprocess.Popen, *, timeout: float = 30) -> None:
    """SIGTERM to the process's own session group, then wait until every process of the
    session is gone: make exits at once, honcho only once its processes have stopped (they
    hold database connections the test database's teardown must not meet)."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None and not _session_members(proc.pid):
            return
        time.sleep(0.1)
    for pid in _session_members(proc.pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    proc.wait(timeout=10)


def wait_for(predicate, *, proc: subprocess.Popen, log: Path, seconds: float, what: str):
    """Poll ``predicate`` until it returns a truthy value; fail with the log if the process
    exits or the deadline passes."""
    deadline = time.monotonic() + seconds
    while True:
        value = predicate()
        if value:
            return value
        if proc.poll() is not None:
            raise AssertionError(
                f"{what}: the process exited ({proc.returncode}):\n{log_tail(log)}"
            )
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {seconds:.0f} s:\n{log_tail(log)}")
        time.sleep(0.2)


def port_open(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
    except OSError:
        return False
    return True


def procfile_command(name: str) -> str:
    """The command of one process type of the Procfile (what honcho runs through the shell)."""
    for line in (ROOT / "Procfile").read_text().splitlines():
        match = re.match(rf"^{re.escape(name)}:\s*(.+)$", line)
        if match:
            return match.group(1)
    raise AssertionError(f"no {name!r} process in the Procfile")


def manage(*args: str, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, f"manage.py {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done


def transactional_test_database(request) -> None:
    """Set up the suite's test database for processes outside this one, flushed after.

    Requested from inside a fixture, ``transactional_db`` alone is not enough: pytest-django
    decides "transactional" from the test's static fixture names or its django_db marker, and
    would otherwise wrap the test in a transaction (the subprocesses' rows would survive, and
    the open transaction keeps the test database from being dropped).
    """
    request.applymarker(pytest.mark.django_db(transaction=True))
    request.getfixturevalue("transactional_db")


def postgres_test_database_url() -> str:
    """The URL of the suite's PostgreSQL test database (it exists while a db fixture is up)."""
    from django.db import connection

    s = connection.settings_dict
    auth = quote(s["USER"] or "", safe="")
    if s.get("PASSWORD"):
        auth += ":" + quote(s["PASSWORD"], safe="")
    host = s.get("HOST") or "127.0.0.1"
    port = s.get("PORT") or 5432
    return f"postgres://{auth}@{host}:{port}/{s['NAME']}"


def suite_redis_url() -> str | None:
    """The suite's Redis broker, purged (the suite's own Redis database), or None."""
    from django.conf import settings

    from tests.conftest import uses_redis

    if not uses_redis():
        return None
    from planhat_segment.celery import app

    app.control.purge()
    return settings.CELERY_BROKER_URL
