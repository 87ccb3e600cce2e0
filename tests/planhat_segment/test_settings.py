"""Production mode: check --deploy is clean, and a missing SECRET_KEY stops the start."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "SECRET_KEY"))}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


PRODUCTION = {
    "DJANGO_DEBUG": "false",
    "SECRET_KEY": "x" * 64 + "-production-secret-for-the-deploy-check",
    "PUBLIC_BASE_URL": "https://cs.example.com",
}


def test_check_deploy_is_clean_in_production_mode():
    result = _manage("check", "--deploy", "--fail-level", "WARNING", **PRODUCTION)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_refuses_to_start_without_secret_key():
    env = {**PRODUCTION, "SECRET_KEY": ""}
    result = _manage("check", **env)
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_production_hosts_follow_public_base_url():
    code = (
        "from django.conf import settings as s;"
        "print(s.ALLOWED_HOSTS, s.CSRF_TRUSTED_ORIGINS, s.SECURE_SSL_REDIRECT,"
        " s.SECURE_REDIRECT_EXEMPT)"
    )
    result = _manage("shell", "-c", code, **PRODUCTION)
    assert result.returncode == 0, result.stderr
    assert "['cs.example.com']" in result.stdout
    assert "['https://cs.example.com']" in result.stdout
    assert "True" in result.stdout
    assert "'^dock/'" in result.stdout and "'^v1/'" in result.stdout
