"""Real Chromium (Debian's package) driven by Playwright against the live test server."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.warehouse_sync.conftest import sink  # noqa: F401  (the local Segment sink)

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
# `make screenshots` sets it: the end-to-end test then saves PNGs of the pages into it.
SCREENSHOTS_DIR = os.environ.get("SCREENSHOTS_DIR", "")


def pytest_collection_modifyitems(config, items):
    reason = None
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        reason = "needs the playwright package (make test installs it)"
    if reason is None and not Path(CHROMIUM).exists():
        reason = "needs Debian's chromium (make test installs it with apt when it may)"
    here = Path(__file__).parent
    for item in items:
        # A conftest's collection hook sees the whole session's items: mark only ours.
        if here not in Path(str(item.fspath)).parents:
            continue
        item.add_marker(pytest.mark.browser)
        if reason:
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session")
def chromium():
    # Playwright's sync API runs an event loop in this thread; the ORM calls the tests make
    # in the same thread are still synchronous and safe.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(chromium, live_server):
    context = chromium.new_context(
        base_url=live_server.url, viewport={"width": 1280, "height": 900}
    )
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


@pytest.fixture
def logged_in_page(page, django_user_model):
    django_user_model.objects.create_superuser(
        username="cs-admin", email="cs@example.com", password="browser-test-pass-42"
    )
    page.goto("/admin/login/")
    page.fill("#id_username", "cs-admin")
    page.fill("#id_password", "browser-test-pass-42")
    page.click("input[type=submit]")
    page.wait_for_url("**/admin/")
    return page


def screenshot(page, name: str) -> None:
    if SCREENSHOTS_DIR:
        Path(SCREENSHOTS_DIR).mkdir(parents=True, exist_ok=True)
        # The content only (no sidebar): smaller files that still show the whole page.
        page.locator("#content").screenshot(path=str(Path(SCREENSHOTS_DIR) / f"{name}.png"))
