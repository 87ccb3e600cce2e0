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
# The two screens every admin page must fit: a laptop and a phone (issue 12).
LAPTOP = {"width": 1440, "height": 900}
PHONE = {"width": 390, "height": 844}
PASSWORD = "browser-test-pass-42"


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
def browser_context(chromium, live_server):
    """Make contexts (a laptop's by default, a phone's with ``viewport=PHONE``)."""
    contexts = []

    def make(viewport: dict | None = None, **options):
        context = chromium.new_context(
            base_url=live_server.url, viewport=viewport or LAPTOP, **options
        )
        context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def page(browser_context):
    page = browser_context().new_page()
    page.set_default_timeout(15_000)
    return page


def sign_in(page, username: str = "cs-admin") -> None:
    page.goto("/admin/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url("**/admin/")


@pytest.fixture
def admin_user(django_user_model):
    return django_user_model.objects.create_superuser(
        username="cs-admin", email="cs@example.com", password=PASSWORD
    )


@pytest.fixture
def logged_in_page(page, admin_user):
    sign_in(page)
    return page


def in_viewport(locator) -> bool:
    """Is the element (its first match) visible inside the window right now, not scrolled
    away? What a person sees without scrolling."""
    return locator.first.evaluate(
        """el => { const r = el.getBoundingClientRect();
                   return r.height > 0 && r.top >= 0 && r.bottom <= window.innerHeight; }"""
    )


def overflow(page) -> dict:
    """The page's width against the window's, and the tables (or change-list boxes) that
    scroll sideways inside it."""
    return page.evaluate(
        """() => ({
            scroll: document.documentElement.scrollWidth,
            inner: window.innerWidth,
            tables: Array.from(document.querySelectorAll('table, .results, .trend-card'))
              .filter(e => e.offsetParent !== null && e.scrollWidth > e.clientWidth + 1)
              .map(e => `${e.tagName.toLowerCase()}.${e.className}#${e.id}: ${e.scrollWidth} > ${e.clientWidth}`),
        })"""
    )


def run_in_thread(target, *args, **kwargs):
    """Start ``target`` in a thread that shares this test's database connection when the
    database is SQLite's in-memory one (which other connections cannot see), as the live
    server's thread does. Returns the thread; join it."""
    import threading

    from django.db import connections

    main = connections["default"]  # the wrapper itself, not the thread-local proxy
    shared = main if main.vendor == "sqlite" else None
    errors: list[BaseException] = []
    if shared is not None:
        shared.inc_thread_sharing()

    def run():
        if shared is not None:
            connections["default"] = shared
        try:
            target(*args, **kwargs)
        except BaseException as exc:  # re-raised by the test through .errors
            errors.append(exc)
        finally:
            if shared is None:
                connections.close_all()
            else:
                shared.dec_thread_sharing()

    thread = threading.Thread(target=run, daemon=True)
    thread.errors = errors
    thread.start()
    return thread


def screenshot(page, name: str, *, full_page: bool = False, max_height: int = 0) -> None:
    """Save a PNG into SCREENSHOTS_DIR: the content only (no sidebar: smaller files that
    still show the page), or the whole page as on a phone; ``max_height`` keeps the top."""
    if not SCREENSHOTS_DIR:
        return
    Path(SCREENSHOTS_DIR).mkdir(parents=True, exist_ok=True)
    path = str(Path(SCREENSHOTS_DIR) / f"{name}.png")
    if full_page:
        box = {"x": 0, "y": 0, "width": page.viewport_size["width"]}
        height = page.evaluate("document.documentElement.scrollHeight")
    else:
        found = page.locator("#content").bounding_box()
        box = {"x": found["x"], "y": found["y"], "width": found["width"]}
        height = found["height"]
    box["height"] = min(height, max_height) if max_height else height
    page.screenshot(path=path, full_page=True, clip=box)
