"""Shared fixtures, and the header that says which database and broker the suite used."""

from __future__ import annotations

import itertools
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


# --- Roles: staff users who are not superusers, in one of the groups of planhat_segment.roles


@pytest.fixture
def user_in_role(db, django_user_model):
    """Make a staff, non-superuser user in a role: ``user_in_role("Viewer")``; ``None`` gives
    a staff user in no group. Each call makes a new user."""
    from django.contrib.auth.models import Group

    made = itertools.count()

    def make(role: str | None, **fields):
        name = (role or "norole").lower().replace(" ", "-")
        user = django_user_model.objects.create_user(
            username=f"{name}-{next(made)}",
            password=None,  # no hashing (slow on purpose); clients sign in with force_login
            is_staff=fields.pop("is_staff", True),
            **fields,
        )
        if role is not None:
            user.groups.add(Group.objects.get(name=role))
        return user

    return make


@pytest.fixture
def client_in_role(user_in_role):
    """A Django test client signed in as a new user in a role: ``client_in_role("CS manager")``.
    The user is on ``client.user``."""
    from django.test import Client

    def make(role: str | None):
        client = Client()
        client.user = user_in_role(role)
        client.force_login(client.user)
        return client

    return make


@pytest.fixture
def api_client_in_role(user_in_role):
    """A DRF client with the API key of a new user in a role (``client.user`` is the user)."""
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    def make(role: str | None):
        client = APIClient()
        client.user = user_in_role(role)
        token = Token.objects.create(user=client.user)
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
        return client

    return make
