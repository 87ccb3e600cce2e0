"""The admin home and sidebar lead with a CS team's daily work; View site → integration page."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


def _groups(html: str) -> list[str]:
    return re.findall(r'<div class="app-([a-z_]+) module', html)


def test_home_leads_with_workspace_and_usage_and_ends_with_infrastructure(admin_client_logged_in):
    html = admin_client_logged_in.get(reverse("admin:index")).content.decode()
    groups = _groups(html)
    daily = [g for g in groups if g != "health"]  # health sits between, once installed
    assert daily[:4] == ["planhat_segment", "usage", "integrations", "warehouse_sync"]
    assert groups[-1] == "infrastructure"
    infrastructure = html.split('class="app-infrastructure module', 1)[1]
    for name in ("Periodic tasks", "Tokens", "Tombstones", "Log entries", "Users"):
        assert name in infrastructure
    workspace = html.split('class="app-planhat_segment module', 1)[1].split("</table>", 1)[0]
    assert "Tombstones" not in workspace
    assert workspace.index("Companies") < workspace.index("Endusers") < workspace.index("Licenses")


def test_home_links_the_integration_page_and_unassigned_users(admin_client_logged_in):
    html = admin_client_logged_in.get(reverse("admin:index")).content.decode()
    assert reverse("admin:segment_integration") in html
    assert reverse("admin:usage_inboxevent_unassigned") in html


def test_view_site_leads_to_the_integration_page(admin_client_logged_in):
    html = admin_client_logged_in.get(reverse("admin:index")).content.decode()
    assert f'<a href="{reverse("admin:segment_integration")}">View site</a>' in html


def test_app_index_pages_keep_their_own_models(admin_client_logged_in):
    answer = admin_client_logged_in.get(reverse("admin:app_list", args=["planhat_segment"]))
    assert answer.status_code == 200
    assert "Tombstones" in answer.content.decode()  # its own app's page lists it still
