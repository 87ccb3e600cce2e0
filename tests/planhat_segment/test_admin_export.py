"""CSV export of the filtered lists (companies, endusers, activities, events), streamed."""

from __future__ import annotations

import csv
import io

import pytest
from django.contrib.admin.models import LogEntry
from django.http import StreamingHttpResponse
from django.urls import reverse
from django.utils import timezone

from planhat_segment.models import Company, EndUser
from tests.factories import CompanyFactory, EndUserFactory
from usage.models import Activity, InboxEvent

pytestmark = pytest.mark.django_db


def _rows(answer) -> list[dict]:
    assert answer.status_code == 200, answer
    assert isinstance(answer, StreamingHttpResponse)  # never the whole list in memory
    assert answer["Content-Type"].startswith("text/csv")
    assert answer["Content-Disposition"].startswith('attachment; filename="')
    return list(csv.DictReader(io.StringIO(b"".join(answer.streaming_content).decode())))


def test_companies_export_follows_the_search_and_filters(client_in_role):
    CompanyFactory(name="Acme Corp", external_id="ACME")
    CompanyFactory(name="Acme Labs", external_id="ACME-LABS", is_test=True)
    CompanyFactory(name="Globex", external_id="GLOBEX")
    client = client_in_role("CS manager")
    url = reverse("admin:planhat_segment_company_export")
    rows = _rows(client.get(url, {"q": "acme", "is_test__exact": "0"}))
    assert [r["external_id"] for r in rows] == ["ACME"]
    assert {"id", "name", "created_at", "enduser_total", "license_total"} <= set(rows[0])
    assert rows[0]["created_at"].endswith("+00:00")  # ISO 8601 in UTC
    assert len(_rows(client.get(url))) == 3
    assert LogEntry.objects.latest("pk").change_message == "Exported as CSV (filtered list)."


def test_endusers_export_by_company(client_in_role):
    acme, globex = CompanyFactory(external_id="ACME"), CompanyFactory(external_id="GLOBEX")
    EndUserFactory(company=acme, email="ana@acme.example")
    EndUserFactory(company=globex, email="bob@globex.example")
    rows = _rows(
        client_in_role("Integration admin").get(
            reverse("admin:planhat_segment_enduser_export"), {"company__id__exact": acme.pk}
        )
    )
    assert [(r["email"], r["company__external_id"]) for r in rows] == [("ana@acme.example", "ACME")]


def test_activities_and_events_export_follow_their_filters(client_in_role):
    company = CompanyFactory(external_id="ACME")
    enduser = EndUserFactory(company=company, external_id="U-1")
    now = timezone.now()
    for n, action in enumerate(["Signed In", "Signed In", "Exported"]):
        Activity.objects.create(
            enduser=enduser,
            company=company,
            action=action,
            occurred_at=now,
            received_at=now,
            message_id=f"a-{n}",
        )
    for n, status in enumerate(["processed", "dropped", "dropped"]):
        InboxEvent.objects.create(
            message_id=f"e-{n}",
            request_id="00000000-0000-0000-0000-000000000009",
            type="track",
            payload={"type": "track", "event": f"Clicked {n}", "userId": "U-1"},
            status=status,
            reason="unknown_company" if status == "dropped" else "",
        )
    client = client_in_role("CS manager")
    rows = _rows(client.get(reverse("admin:usage_activity_export"), {"action": "Signed In"}))
    assert [(r["action"], r["enduser__external_id"]) for r in rows] == [("Signed In", "U-1")] * 2
    rows = _rows(client.get(reverse("admin:usage_inboxevent_export"), {"status__exact": "dropped"}))
    assert sorted(r["event_name"] for r in rows) == ["Clicked 1", "Clicked 2"]
    assert "payload" not in rows[0]  # personal data stays on the event's page


def test_export_button_only_for_those_who_may_export(client_in_role):
    Company.objects.create(name="Acme", external_id="ACME")
    url = reverse("admin:planhat_segment_company_changelist")
    assert 'data-testid="export-csv"' not in client_in_role("Viewer").get(url).content.decode()
    html = client_in_role("CS manager").get(url + "?q=acme").content.decode()
    assert 'href="/admin/planhat_segment/company/export/?q=acme"' in html
    viewer = client_in_role("Viewer").get(reverse("admin:planhat_segment_company_export"))
    assert viewer.status_code == 403


def test_bad_filter_goes_back_to_the_list(client_in_role):
    answer = client_in_role("CS manager").get(
        reverse("admin:planhat_segment_enduser_export"), {"nonsense__exact": "1"}
    )
    assert answer.status_code == 302
    assert answer["Location"].endswith("/admin/planhat_segment/enduser/?e=1")
    assert not EndUser.objects.exists()
