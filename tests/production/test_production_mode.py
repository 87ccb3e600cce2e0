"""Production mode end to end, from the checkout, as README's production start runs it.

``DJANGO_DEBUG=false`` with a ``SECRET_KEY`` and an https ``PUBLIC_BASE_URL``:
``check --deploy`` is clean, ``collectstatic`` fills a temporary ``STATIC_ROOT`` with the
manifest storage, the Procfile's ``web`` (gunicorn) serves it behind a pretend TLS proxy
(``X-Forwarded-Proto: https``), static files come from whitenoise, and every admin page —
found from the admin site's registry and URL patterns, so a new page is covered without
editing this test — renders for a signed-in user.

The server and the seed (tests/production/seed.py) are subprocesses, so they need a database
that other processes see: the suite's PostgreSQL test database, or a SQLite file.
"""

from __future__ import annotations

import json
import re
import secrets
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from django.contrib import admin
from django.urls import URLResolver, reverse

from .support import (
    ROOT,
    free_port,
    manage,
    port_open,
    postgres_test_database_url,
    process_env,
    procfile_command,
    start,
    stop,
    suite_redis_url,
    transactional_test_database,
    wait_for,
)

pytestmark = pytest.mark.timeout(280)

PUBLIC_HOST = "segment.example.test"
USERNAME = "production-admin"

# Admin URLs that are not pages a person opens (each with the reason).
NOT_PAGES = {
    "autocomplete": "the autocomplete widgets' JSON endpoint (needs a field to complete)",
    "view_on_site": "a redirect to an object's public URL",
    "login": "checked signed out (a signed-in user is redirected to the index)",
    "health_alert_acknowledge": "a POST-only button on an alert (tests/health covers it)",
    "health_alert_resolve": "a POST-only button on an alert (tests/health covers it)",
}


@dataclass
class Server:
    base: str
    env: dict[str, str]
    log: Path
    seed: dict
    password: str


def _production_env(tmp_path: Path, database_url: str, broker_url: str | None) -> dict:
    return process_env(
        DJANGO_DEBUG="false",
        SECRET_KEY=secrets.token_urlsafe(50),
        PUBLIC_BASE_URL=f"https://{PUBLIC_HOST}",
        STATIC_ROOT=str(tmp_path / "static"),
        VAR_DIR=str(tmp_path / "var"),
        DATABASE_URL=database_url,
        CELERY_BROKER_URL=broker_url,
        LOG_LEVEL="WARNING",
    )


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def production_env(request, tmp_path) -> dict[str, str]:
    if request.param == "postgres":
        transactional_test_database(request)  # created and migrated by pytest-django
        return _production_env(tmp_path, postgres_test_database_url(), suite_redis_url())
    env = _production_env(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite3'}", None)
    manage("migrate", "--noinput", env=env)
    return env


@pytest.fixture
def server(production_env, tmp_path):
    """collectstatic, the seed, then the Procfile's web process in production mode."""
    env = production_env
    collected = manage("collectstatic", "--noinput", env=env)
    assert "post-processed" in collected.stdout
    assert (Path(env["STATIC_ROOT"]) / "staticfiles.json").exists()

    password = secrets.token_urlsafe(16)
    seeded = subprocess.run(
        [sys.executable, "-m", "tests.production.seed", USERNAME, password],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert seeded.returncode == 0, seeded.stdout + seeded.stderr
    seed = json.loads(seeded.stdout.strip().splitlines()[-1])

    port = free_port()
    log = tmp_path / "web.log"
    web_env = {**env, "WEB_HOST": "127.0.0.1", "WEB_PORT": str(port)}
    proc = start(["sh", "-c", procfile_command("web")], env=web_env, log=log)
    try:
        wait_for(lambda: port_open(port), proc=proc, log=log, seconds=60, what="gunicorn")
        yield Server(f"http://127.0.0.1:{port}", env, log, seed, password)
    finally:
        stop(proc)


class Browser:
    """requests behind a pretend TLS proxy: the public Host, X-Forwarded-Proto: https, and
    cookies kept by hand (they are Secure, and the hop to gunicorn is plain http)."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.cookies: dict[str, str] = {}
        self.headers = {"Host": PUBLIC_HOST, "X-Forwarded-Proto": "https"}

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        answer = requests.request(
            method,
            self.base + path,
            headers={**self.headers, **kwargs.pop("headers", {})},
            cookies=self.cookies,
            allow_redirects=False,
            timeout=60,
            **kwargs,
        )
        self.cookies.update(answer.cookies.get_dict())
        return answer

    def sign_in(self, username: str, password: str) -> None:
        page = self.request("GET", "/admin/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
        origin = f"https://{PUBLIC_HOST}"
        answer = self.request(
            "POST",
            "/admin/login/?next=/admin/",
            data={"csrfmiddlewaretoken": token, "username": username, "password": password},
            headers={"Origin": origin, "Referer": f"{origin}/admin/login/"},
        )
        assert answer.status_code == 302, answer.text[:2000]
        assert answer.headers["Location"] == "/admin/"
        assert "sessionid" in self.cookies


def _model_prefixes() -> dict[str, str]:
    """URL name prefix ("app_model_") -> model label, longest first."""
    labels = {
        f"{m._meta.app_label}_{m._meta.model_name}_": m._meta.label_lower
        for m in admin.site._registry
    }
    return dict(sorted(labels.items(), key=lambda item: -len(item[0])))


def _named_patterns(patterns):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _named_patterns(pattern.url_patterns)
        elif pattern.name:
            yield pattern


def admin_pages(seed: dict) -> tuple[list[tuple[str, str, int]], list[str]]:
    """Every admin page as (name, path, expected status), and the pages left unopened.

    Parameters are filled from the seed: ``app_label`` with each registered app, an object id
    with the model's seeded object, ``company_id`` / ``enduser_id`` with the seeded ones. A
    new parameter fails here, so it gets a value rather than going untested.
    """
    prefixes = _model_prefixes()
    apps = sorted({m._meta.app_label for m in admin.site._registry})
    pages: list[tuple[str, str, int]] = []
    unopened: list[str] = []
    for pattern in _named_patterns(admin.site.get_urls()):
        name = pattern.name
        if name in NOT_PAGES:
            continue
        prefix = next((p for p in prefixes if name.startswith(p)), None)
        label = prefixes.get(prefix)
        params = set(pattern.pattern.regex.groupindex)
        if not params:
            kwargs_list = [{}]
        elif params == {"app_label"}:
            # One page per app, each with its own expectation: an app where the role may
            # see no model is a 404 (Django's app index), never a 500.
            for app in apps:
                visible = any(
                    may["view"]
                    for model, may in seed["models"].items()
                    if model.startswith(f"{app}.")
                )
                path = reverse(f"admin:{name}", kwargs={"app_label": app})
                pages.append((name, path, 200 if visible else 404))
            continue
        elif params in ({"object_id"}, {"id"}) and label:
            object_id = seed["models"][label]["object_id"]
            if object_id is None:
                unopened.append(f"{name}: no {label} row; add one in tests/production/seed.py")
                continue
            kwargs_list = [{params.pop(): object_id}]
        elif params in ({"company_id"}, {"enduser_id"}):
            key = params.pop()
            kwargs_list = [{key: seed[key]}]
        else:
            pytest.fail(f"admin URL {name!r} takes {sorted(params)}: teach admin_pages to fill it")
        expected = _expected_status(name, prefix, label, seed)
        pages += [(name, reverse(f"admin:{name}", kwargs=kw), expected) for kw in kwargs_list]
    return pages, unopened


def _expected_status(name: str, prefix: str | None, label: str | None, seed: dict) -> int:
    """200 where the admin lets the signed-in user in, 403 where it does not."""
    if label is None:
        return 200
    may = seed["models"][label]
    needs = {"changelist": "view", "change": "view", "history": "view", "add": "add"}
    needs["password_change"] = "change"  # the user admin's set-password page
    needs["delete"] = "delete"
    permission = needs.get(name[len(prefix) :])
    if permission is None:  # a model admin's own page (a report, an action's form)
        return 200
    return 200 if may[permission] else 403


def test_check_deploy_is_clean_in_the_servers_environment(tmp_path):
    env = _production_env(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite3'}", None)
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=env)
    assert "System check identified no issues" in result.stdout


def test_production_mode_serves_static_files_and_every_admin_page(server):
    browser = Browser(server.base)

    # Signed out: the login page and the static files it names (hashed, compressed, cached).
    login = browser.request("GET", "/admin/login/")
    assert login.status_code == 200
    assert login.headers["Strict-Transport-Security"].startswith("max-age=")
    statics = re.findall(r'(?:href|src)="(/static/[^"]+)"', login.text)
    assert statics, login.text[:1000]
    for path in statics:
        assert re.search(r"\.[0-9a-f]{12}\.(css|js)$", path), f"not a manifest name: {path}"
        answer = browser.request("GET", path, headers={"Accept-Encoding": "gzip"})
        assert answer.status_code == 200, path
        assert "immutable" in answer.headers["Cache-Control"]
    # Plain http is sent to https, except the ingest routes (a 301 on a POST loses events).
    plain = requests.get(
        server.base + "/admin/login/", headers={"Host": PUBLIC_HOST}, allow_redirects=False
    )
    assert plain.status_code == 301
    assert plain.headers["Location"] == f"https://{PUBLIC_HOST}/admin/login/"
    ingest = requests.post(server.base + "/v1/batch", headers={"Host": PUBLIC_HOST}, data="{}")
    assert ingest.status_code == 401

    browser.sign_in(USERNAME, server.password)
    pages, unopened = admin_pages(server.seed)
    wrong = []
    for name, path, expected in pages:
        answer = browser.request("GET", path)
        ok = answer.status_code == expected or (
            answer.status_code == 405 and "GET" not in answer.headers.get("Allow", "")
        )  # a POST-only view (e.g. the push button's target) is not a page to open
        if not ok:
            wrong.append(f"{path} ({name}): {answer.status_code}, expected {expected}")
    assert not wrong, "\n".join(wrong) + "\n" + server.log.read_text()[-3000:]

    # Discovery found what the issue names: each changelist and add page, the integration
    # page, the Trends pages and the reports; and the seed left nothing unopened.
    names = {name for name, _, _ in pages}
    for label in server.seed["models"]:
        app, model = label.split(".")
        assert {f"{app}_{model}_changelist", f"{app}_{model}_add"} <= names
    assert {"segment_integration", "company_trends", "enduser_trends"} <= names
    assert "usage_inboxevent_unassigned" in names
    assert not unopened, unopened

    # The Trends page's chart script comes from the manifest, and is served.
    trends = browser.request(
        "GET", reverse("admin:company_trends", args=[server.seed["company_id"]])
    )
    chart = re.search(
        r'src="(/static/vendor/chartjs/chart\.umd\.min\.[0-9a-f]{12}\.js)"', trends.text
    )
    assert chart, trends.text[:2000]
    assert browser.request("GET", chart.group(1)).status_code == 200
