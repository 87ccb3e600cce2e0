"""Shared fixtures, and the header that says which database and broker the suite used."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.conf import settings

FIXTURES = Path(__file__).parent / "fixtures"


def _redacted(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@")
    return url


def uses_postgres() -> bool:
    return settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"


def uses_redis() -> bool:
    return settings.CELERY_BROKER_URL.startswith(("redis://", "rediss://"))


def pytest_report_header(config):
    db = settings.DATABASES["default"]
    name = db.get("TEST", {}).get("NAME") or f"test_{db['NAME']}"
    return [
        f"database: {db['ENGINE'].rsplit('.', 1)[-1]} (test database {name})",
        f"broker: {_redacted(settings.CELERY_BROKER_URL)}",
    ]


def pytest_configure(config):
    from planhat_segment.celery import app

    if not uses_redis():
        # Without Redis, tests publish to an in-memory broker rather than var/'s folders.
        app.conf.broker_url = "memory://"


def pytest_collection_modifyitems(config, items):
    skip_pg = pytest.mark.skip(reason="needs PostgreSQL: set DATABASE_URL=postgres://...")
    skip_redis = pytest.mark.skip(reason="needs Redis: set CELERY_BROKER_URL=redis://...")
    for item in items:
        if "postgres" in item.keywords and not uses_postgres():
            item.add_marker(skip_pg)
        if "redis" in item.keywords and not uses_redis():
            item.add_marker(skip_redis)


def load_fixture(name: str):
    return json.loads((FIXTURES / name).read_text())


@pytest.fixture
def integration(db):
    from integrations.services import integration_ensure

    return integration_ensure()


@pytest.fixture
def staff_user(db, django_user_model):
    return django_user_model.objects.create_user(
        username="ops", password="correct-horse-battery", is_staff=True, is_superuser=True
    )


@pytest.fixture
def api_client(staff_user):
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    client = APIClient()
    token = Token.objects.create(user=staff_user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


@pytest.fixture
def admin_client_logged_in(client, staff_user):
    client.force_login(staff_user)
    return client
