"""Each person's time zone: picked in the admin, stored per user, display only (issue 12)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse

from integrations.models import UserPreference
from planhat_segment.models import Company

pytestmark = pytest.mark.django_db
PICK = "admin:time_zone"


def _enduser_created_at(when: dt.datetime) -> None:
    from planhat_segment.models import EndUser

    company = Company.objects.create(name="Acme", external_id="ACME")
    enduser = EndUser.objects.create(company=company, external_id="U-1")
    EndUser.objects.filter(pk=enduser.pk).update(created_at=when)


def test_default_is_utc_and_every_time_names_its_zone(admin_client_logged_in):
    _enduser_created_at(dt.datetime(2026, 1, 15, 12, 30, 5, tzinfo=dt.UTC))
    html = admin_client_logged_in.get(reverse("admin:planhat_segment_enduser_changelist"))
    html = html.content.decode()
    assert "2026-01-15 12:30:05 UTC" in html
    assert 'data-testid="time-zone-link"' in html and "Time zone: UTC" in html


def test_a_picked_zone_is_stored_and_shown(admin_client_logged_in, staff_user):
    _enduser_created_at(dt.datetime(2026, 1, 15, 12, 30, 5, tzinfo=dt.UTC))
    changelist = reverse("admin:planhat_segment_enduser_changelist")
    answer = admin_client_logged_in.post(
        reverse(PICK), {"time_zone": "Europe/Paris", "next": changelist}
    )
    assert answer.status_code == 302 and answer["Location"] == changelist
    assert UserPreference.objects.get(user=staff_user).time_zone == "Europe/Paris"
    html = admin_client_logged_in.get(changelist).content.decode()
    assert "2026-01-15 13:30:05 CET" in html  # display only: the stored time is unchanged
    assert "Time zone: Europe/Paris" in html
    # A new session (a sign-in elsewhere) gets the stored zone at sign-in.
    admin_client_logged_in.logout()
    admin_client_logged_in.force_login(staff_user)
    assert "13:30:05 CET" in admin_client_logged_in.get(changelist).content.decode()


def test_unknown_zone_is_refused_in_words(admin_client_logged_in, staff_user):
    answer = admin_client_logged_in.post(reverse(PICK), {"time_zone": "Mars/Olympus"})
    assert answer.status_code == 400
    assert "is not a time zone name" in answer.content.decode()
    assert not UserPreference.objects.exists()


def test_next_must_stay_on_this_site(admin_client_logged_in):
    answer = admin_client_logged_in.post(
        reverse(PICK), {"time_zone": "Asia/Tokyo", "next": "https://evil.example/"}
    )
    assert answer["Location"] == reverse(PICK)


def test_api_times_stay_utc_whatever_the_zone(admin_client_logged_in, api_client, staff_user):
    UserPreference.objects.create(user=staff_user, time_zone="Asia/Tokyo")
    Company.objects.create(name="Acme", external_id="ACME")
    body = api_client.get("/api/companies/").json()
    assert (
        body["results"][0]["created_at"].endswith("Z")
        or "+00:00" in body["results"][0]["created_at"]
    )


def test_every_staff_member_may_pick_theirs(client_in_role):
    for role in (None, "Viewer"):
        client = client_in_role(role)
        assert client.post(reverse(PICK), {"time_zone": "America/New_York"}).status_code == 302
