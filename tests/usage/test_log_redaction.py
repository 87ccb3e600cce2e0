"""Keys in the drop-in routes' paths never reach the logs (planhat_segment/logs.py): every
Planhat route and the analytics.js settings route, through Django's request log and a real
gunicorn's access log."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from planhat_segment.logs import RedactingFilter, redact

ROOT = Path(__file__).parents[2]
KEY = "Zx9_abcdefghijklmnopqrstuvwxyz0123456789-AB"


@pytest.mark.parametrize(
    ("path", "shown"),
    [
        (f"/analytics/{KEY}", "/analytics/[redacted]"),
        (f"/analytics/bulk/{KEY}/", "/analytics/bulk/[redacted]/"),
        (f"/analytics/stream/csv/{KEY}", "/analytics/stream/csv/[redacted]"),
        (f"/dimensiondata/{KEY}?x=1", "/dimensiondata/[redacted]?x=1"),
        (f"/v1/projects/{KEY}/settings", "/v1/projects/[redacted]/settings"),
        ("/analytics/bulk", "/analytics/bulk"),
        ("/analytics/stream/csv/", "/analytics/stream/csv/"),
        ("/v1/batch", "/v1/batch"),
    ],
)
def test_redact_keys_in_paths(path, shown):
    assert redact(f'"POST {path} HTTP/1.1" 400') == f'"POST {shown} HTTP/1.1" 400'


@pytest.mark.django_db
def test_django_request_log_of_a_4xx_holds_no_token(client, token):
    console = next(
        h
        for h in logging.getLogger().handlers
        if any(isinstance(f, RedactingFilter) for f in h.filters)
    )
    out = io.StringIO()
    previous = console.setStream(out)
    try:
        answer = client.generic(
            "POST", f"/analytics/bulk/{token}", b"{not json", content_type="application/json"
        )
    finally:
        console.setStream(previous)
    assert answer.status_code == 400
    logged = out.getvalue()
    assert "Bad Request: /analytics/bulk/[redacted]" in logged
    assert token not in logged


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_gunicorn_access_log_holds_no_token(tmp_path):
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "CELERY_BROKER_URL": "memory://",
        "DJANGO_SETTINGS_MODULE": "planhat_segment.settings",
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "planhat_segment.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "1",
            "--access-logfile",
            "-",
            "--logger-class",
            "planhat_segment.logs.RedactingGunicornLogger",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, "gunicorn did not start"
                time.sleep(0.1)
        for path in (f"/v1/projects/{KEY}/settings", f"/analytics/{KEY}"):
            # Any answer is logged; its status does not matter here.
            with contextlib.suppress(urllib.error.HTTPError):
                urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10)
    finally:
        proc.terminate()
        output, _ = proc.communicate(timeout=30)
    assert "GET /v1/projects/[redacted]/settings" in output
    assert "GET /analytics/[redacted]" in output
    assert KEY not in output
