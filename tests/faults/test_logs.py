"""Tokens never appear in logs: access log (gunicorn) and error logs (Django, Celery)."""

from __future__ import annotations

import base64
import io
import logging
import logging.config
import secrets

import pytest
import requests

from planhat_segment.logs import RedactingFilter, redact
from tests.production.support import (
    free_port,
    manage,
    port_open,
    process_env,
    procfile_command,
    start,
    stop,
    wait_for,
)

TOKEN = "tok_" + "S3cr3t" * 6


@pytest.mark.parametrize(
    "line",
    [
        f"POST /analytics/{TOKEN} HTTP/1.1",
        f"POST /dimensiondata/{TOKEN}?x=1 HTTP/1.1",
        f"GET /v1/projects/{TOKEN}/settings HTTP/1.1",
        f"{{'HTTP_AUTHORIZATION': 'Basic {base64.b64encode(f'{TOKEN}:'.encode()).decode()}'}}",
        f'{{"type": "track", "writeKey": "{TOKEN}"}}',
        f"Authorization: Bearer {TOKEN}",
        f"/v1/track?writeKey={TOKEN}&x=1",
    ],
)
def test_redact_removes_every_form_of_the_token(line):
    cleaned = redact(line)
    assert TOKEN not in cleaned
    assert base64.b64encode(f"{TOKEN}:".encode()).decode() not in cleaned
    assert "[redacted]" in cleaned


def test_redact_leaves_ordinary_text_alone():
    text = "Token rotation grace: 72 h; Basic auth; POST /v1/track 200"
    assert redact(text) == text


def app_streams() -> list[logging.Handler]:
    """The root logger's stream handlers, less pytest's own capturing ones."""
    return [
        h
        for h in logging.getLogger().handlers
        if isinstance(h, logging.StreamHandler) and not type(h).__module__.startswith("_pytest")
    ]


def console_output(emit) -> str:
    """What the root's stream handler writes while ``emit`` runs: settings.LOGGING's console
    handler, or the one a Celery worker put in its place (earlier tests may start one)."""
    handler = next(h for h in logging.getLogger().handlers if isinstance(h, logging.StreamHandler))
    stream, handler.stream = handler.stream, io.StringIO()
    try:
        emit()
        return handler.stream.getvalue()
    finally:
        handler.stream = stream


def test_error_logs_through_settings_logging_are_redacted():
    streams = app_streams()
    assert streams
    assert all(any(isinstance(f, RedactingFilter) for f in h.filters) for h in streams)
    logger = logging.getLogger("django.request")

    def emit():
        logger.error("Internal Server Error: %s", f"/analytics/{TOKEN}")
        try:
            raise ValueError(f"bad body {{'writeKey': '{TOKEN}'}}")
        except ValueError:
            logger.exception("ingest_failed", extra={"path": f"/dimensiondata/{TOKEN}"})

    out = console_output(emit)
    assert "Internal Server Error: /analytics/[redacted]" in out
    assert "ValueError" in out  # the traceback is kept, without the token
    assert TOKEN not in out


@pytest.mark.django_db(transaction=True)
def test_gunicorn_access_log_of_the_procfile_holds_no_token(tmp_path):
    env = process_env(
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        VAR_DIR=str(tmp_path / "var"),
        SECRET_KEY=secrets.token_urlsafe(50),
        LOG_LEVEL="INFO",
    )
    manage("migrate", "--noinput", env=env)
    port = free_port()
    log = tmp_path / "web.log"
    proc = start(
        ["sh", "-c", procfile_command("web")],
        env={**env, "WEB_HOST": "127.0.0.1", "WEB_PORT": str(port)},
        log=log,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: port_open(port), proc=proc, log=log, seconds=60, what="gunicorn")
        body = {"type": "track", "userId": "u", "event": "E"}
        requests.post(f"{base}/dock/segment", json=body, auth=(TOKEN, ""), timeout=10)
        requests.post(f"{base}/v1/track", json={**body, "writeKey": TOKEN}, timeout=10)
        requests.get(f"{base}/v1/projects/{TOKEN}/settings", timeout=10)
        requests.post(f"{base}/analytics/{TOKEN}?writeKey={TOKEN}", json=[body], timeout=10)
        requests.post(
            f"{base}/dimensiondata/{TOKEN}",
            json={},
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=10,
        )
    finally:
        stop(proc)
    text = log.read_text()
    assert '"POST /dock/segment HTTP/1.1" 401' in text  # the access log is there…
    assert "/analytics/[redacted]" in text and "/v1/projects/[redacted]/settings" in text
    assert TOKEN not in text  # …without the token in any form
    assert base64.b64encode(f"{TOKEN}:".encode()).decode() not in text
