"""The two modes' settings, each read from a fresh process with only its environment."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Variables of the suite that would change what a fresh process reads.
_SUITE_ONLY = ("DJANGO_", "SECRET_KEY", "PUBLIC_BASE_URL", "ALLOWED_HOSTS", "CSRF_TRUSTED")


def _manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith(_SUITE_ONLY)}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def _settings(*names: str, **env: str) -> dict:
    """The named settings as a fresh process with ``env`` reads them (JSON-able values)."""
    code = (
        "import json; from django.conf import settings as s;"
        f"print(json.dumps({{n: getattr(s, n, None) for n in {list(names)!r}}}, default=str))"
    )
    result = _manage("shell", "-c", code, **env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


PRODUCTION = {
    "DJANGO_DEBUG": "false",
    "SECRET_KEY": "x" * 64 + "-production-secret-for-the-deploy-check",
    "PUBLIC_BASE_URL": "https://cs.example.com",
}


def test_check_deploy_is_clean_in_production_mode():
    result = _manage("check", "--deploy", "--fail-level", "WARNING", **PRODUCTION)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


def test_production_refuses_to_start_without_secret_key():
    result = _manage("check", **{**PRODUCTION, "SECRET_KEY": ""})
    assert result.returncode != 0
    assert "ImproperlyConfigured: SECRET_KEY must be set when DJANGO_DEBUG=false" in result.stderr


def test_production_hosts_follow_public_base_url():
    found = _settings("ALLOWED_HOSTS", "CSRF_TRUSTED_ORIGINS", **PRODUCTION)
    assert found == {
        "ALLOWED_HOSTS": ["cs.example.com"],
        "CSRF_TRUSTED_ORIGINS": ["https://cs.example.com"],
    }
    extra = _settings(
        "ALLOWED_HOSTS",
        "CSRF_TRUSTED_ORIGINS",
        **PRODUCTION,
        ALLOWED_HOSTS="internal.example.com",
        CSRF_TRUSTED_ORIGINS="https://admin.example.com",
    )
    assert extra == {
        "ALLOWED_HOSTS": ["cs.example.com", "internal.example.com"],
        "CSRF_TRUSTED_ORIGINS": ["https://cs.example.com", "https://admin.example.com"],
    }


def test_production_https_redirect_exempts_the_ingest_routes():
    found = _settings(
        "SECURE_SSL_REDIRECT",
        "SECURE_REDIRECT_EXEMPT",
        "SECURE_PROXY_SSL_HEADER",
        "SESSION_COOKIE_SECURE",
        "CSRF_COOKIE_SECURE",
        **PRODUCTION,
    )
    assert found == {
        "SECURE_SSL_REDIRECT": True,
        "SECURE_REDIRECT_EXEMPT": ["^dock/", "^v1/", "^analytics(?:/|$)", "^dimensiondata(?:/|$)"],
        "SECURE_PROXY_SSL_HEADER": ["HTTP_X_FORWARDED_PROTO", "https"],
        "SESSION_COOKIE_SECURE": True,
        "CSRF_COOKIE_SECURE": True,
    }


def test_production_serves_static_files_from_the_manifest_storage():
    production = _settings("STORAGES", "DEBUG", **PRODUCTION)
    assert production["DEBUG"] is False
    assert (
        production["STORAGES"]["staticfiles"]["BACKEND"]
        == "whitenoise.storage.CompressedManifestStaticFilesStorage"
    )
    local = _settings("STORAGES", "DEBUG")
    assert local["DEBUG"] is True
    assert (
        local["STORAGES"]["staticfiles"]["BACKEND"]
        == "django.contrib.staticfiles.storage.StaticFilesStorage"
    )


def test_postgres_connections_are_named_by_program():
    found = _settings(
        "DATABASES", DATABASE_URL="postgres://someone@127.0.0.1:5432/somewhere", **PRODUCTION
    )
    database = found["DATABASES"]["default"]
    assert database["OPTIONS"]["application_name"] == "planhat-segment:manage.py"
    assert database["CONN_MAX_AGE"] == 60
    assert database["CONN_HEALTH_CHECKS"] is True
