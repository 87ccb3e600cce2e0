"""Admin: the company list's health columns (sort, filter, search), the company page's
panel, the profile editor and the recompute button."""

import datetime as dt
import re

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from health.models import HealthProfile, HealthScore
from health.services import health_defaults_ensure, health_scores_recompute
from tests.factories import CompanyFactory, EndUserFactory, LicenseFactory
from tests.usage.rollup_factories import usage_add
from usage.models import Activity
from usage.rollup_selectors import utc_today

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:planhat_segment_company_changelist"


def _world():
    """Green, amber-ish and red companies plus one never used, scored for today."""
    health_defaults_ensure()
    today = utc_today()
    green = CompanyFactory(name="Green Co")
    for enduser in EndUserFactory.create_batch(10, company=green):
        for n in range(1, 61):
            usage_add(enduser=enduser, day=today - dt.timedelta(days=n))
    red = CompanyFactory(name="Red Co")
    falling = EndUserFactory(company=red, email="Pat@Red.example")
    for n in range(31, 61):
        usage_add(enduser=falling, day=today - dt.timedelta(days=n), count=10)
    usage_add(enduser=falling, day=today - dt.timedelta(days=25))
    never = CompanyFactory(name="Never Co")
    LicenseFactory(company=green, mrr=500)
    for company, days in ((green, 1), (red, 25)):
        # The precise last activity comes from the activities themselves.
        when = dt.datetime.combine(today - dt.timedelta(days=days), dt.time(12), tzinfo=dt.UTC)
        Activity.objects.create(
            enduser=company.endusers.first(),
            company=company,
            action="Logged in",
            occurred_at=when,
            received_at=when,
            message_id=f"last-{company.pk}",
        )
    health_scores_recompute()
    return green, red, never


def _names(html: str) -> list[str]:
    return re.findall(r'<th class="field-name"><a href="[^"]+">([^<]+)</a>', html)


def test_company_list_shows_health_columns(admin_client_logged_in):
    _world()
    html = admin_client_logged_in.get(reverse(CHANGELIST)).content.decode()
    for header in ("Health", "Last activity", "Active endusers (30 d)", "Activity vs prev. 30 d"):
        assert header in html
    assert 'data-band="green"' in html
    assert 'data-band="red"' in html
    assert "no score" in html
    assert "500.00 USD" in html


@pytest.mark.parametrize(
    ("column", "expected"),
    [
        ("health", ["Red Co", "Green Co", "Never Co"]),
        ("active_endusers", ["Never Co", "Red Co", "Green Co"]),
        ("activity_change", ["Red Co", "Green Co", "Never Co"]),
    ],
)
def test_company_list_sorts_by_health_columns(admin_client_logged_in, column, expected):
    _world()
    from health.admin.companies import HealthCompanyAdmin

    if column != "active_endusers":
        # Never Co's value is null: PostgreSQL sorts nulls last ascending, SQLite first.
        expected = [n for n in expected if n != "Never Co"]
    index = HealthCompanyAdmin.list_display.index(column) + 1  # admin columns count from 1
    html = admin_client_logged_in.get(reverse(CHANGELIST), {"o": str(index)}).content.decode()
    assert [n for n in _names(html) if n in expected] == expected
    descending = admin_client_logged_in.get(reverse(CHANGELIST), {"o": f"-{index}"})
    assert [n for n in _names(descending.content.decode()) if n in expected] == expected[::-1]


def test_company_list_sorts_by_last_activity(admin_client_logged_in):
    green, red, _never = _world()
    HealthScore.objects.filter(company=green).update(
        last_activity_at=dt.datetime(2026, 1, 2, tzinfo=dt.UTC)
    )
    HealthScore.objects.filter(company=red).update(
        last_activity_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    )
    from health.admin.companies import HealthCompanyAdmin

    index = HealthCompanyAdmin.list_display.index("last_activity") + 1
    html = admin_client_logged_in.get(reverse(CHANGELIST), {"o": f"-{index}"}).content.decode()
    assert [n for n in _names(html) if n != "Never Co"] == ["Green Co", "Red Co"]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"health": "green"}, {"Green Co"}),
        ({"health": "red"}, {"Red Co"}),
        ({"health": "none"}, {"Never Co"}),
        ({"last_activity": "never"}, {"Never Co"}),
        ({"last_activity": "7"}, {"Green Co"}),
        ({"last_activity": "30"}, {"Red Co"}),
        ({"activity_change": "down50"}, {"Red Co"}),
        ({"activity_change": "steady"}, {"Green Co"}),
        ({"activity_change": "none"}, {"Never Co"}),
        ({"active_endusers": "6-20"}, {"Green Co"}),
        ({"active_endusers": "0"}, {"Never Co"}),
    ],
)
def test_company_list_filters(admin_client_logged_in, params, expected):
    _world()
    html = admin_client_logged_in.get(reverse(CHANGELIST), params).content.decode()
    assert set(_names(html)) == expected


def test_company_search_finds_a_company_by_an_enduser_email(admin_client_logged_in):
    _world()
    html = admin_client_logged_in.get(reverse(CHANGELIST), {"q": "pat@red.EXAMPLE"}).content
    assert _names(html.decode()) == ["Red Co"]
    by_name = admin_client_logged_in.get(reverse(CHANGELIST), {"q": "Green"}).content.decode()
    assert _names(by_name) == ["Green Co"]


def test_company_list_query_count_does_not_grow_with_companies(
    admin_client_logged_in, django_assert_max_num_queries
):
    _world()
    for _ in range(15):
        CompanyFactory()
    health_scores_recompute()
    with django_assert_max_num_queries(12):
        assert admin_client_logged_in.get(reverse(CHANGELIST)).status_code == 200


def test_company_page_and_trends_page_show_score_breakdown_and_chart(admin_client_logged_in):
    _, red, _ = _world()
    page = admin_client_logged_in.get(
        reverse("admin:planhat_segment_company_change", args=[red.pk])
    ).content.decode()
    assert 'data-testid="health-breakdown"' in page
    assert "Days since the last activity" in page
    assert 'id="chart-health"' in page
    assert "vendor/chartjs/chart.umd.min.js" in page
    trends = admin_client_logged_in.get(
        reverse("admin:company_trends", args=[red.pk])
    ).content.decode()
    assert 'data-testid="health-panel"' in trends
    assert 'data-band="red"' in trends
    assert trends.count("vendor/chartjs/chart.umd.min.js") == 1


def test_profile_admin_validates_factors_in_plain_words(admin_client_logged_in):
    health_defaults_ensure()
    url = reverse("admin:health_healthprofile_add")
    data = {
        "name": "Big",
        "order": 10,
        "min_mrr": "",
        "custom_field": "",
        "custom_value": "",
        "currency": "USD",
        "currency_rates": "{}",
        "green_min": 7,
        "amber_min": 4,
        "factors-TOTAL_FORMS": 1,
        "factors-INITIAL_FORMS": 0,
        "factors-0-order": 0,
        "factors-0-weight": 1,
        "factors-0-figure": "activity_count",
        "factors-0-condition": "lt",
        "factors-0-threshold": 5,
        "factors-0-impact": "",
        "factors-0-action": "",
        "factors-0-currency": "",
    }
    answer = admin_client_logged_in.post(url, data)
    assert answer.status_code == 200
    html = answer.content.decode()
    assert "needs a filter" in html
    assert "needs window_days" in html
    assert "Give impact" in html
    assert not HealthProfile.objects.filter(name="Big").exists()
    data |= {"min_mrr": "1000", "factors-0-window_days": 30, "factors-0-impact": -2}
    saved = admin_client_logged_in.post(url, data)
    assert saved.status_code == 302
    assert HealthProfile.objects.get(name="Big").factors.get().window_days == 30


def test_recompute_button_needs_permission_and_post(
    admin_client_logged_in, client, django_user_model
):
    health_defaults_ensure()
    url = reverse("admin:health_healthscore_recompute")
    assert admin_client_logged_in.get(url).status_code == 405
    page = admin_client_logged_in.get(reverse("admin:health_healthscore_changelist")).content
    assert b'data-testid="recompute-health"' in page
    answer = admin_client_logged_in.post(url)
    assert answer.status_code == 302
    staff = django_user_model.objects.create_user(
        username="cs", password="pw-123456", is_staff=True
    )
    staff.user_permissions.set(Permission.objects.filter(codename="view_healthscore"))
    client.force_login(staff)
    assert client.post(url).status_code == 403
    listing = client.get(reverse("admin:health_healthscore_changelist")).content
    assert b'data-testid="recompute-health"' not in listing


def test_recompute_action_on_selected_companies(admin_client_logged_in):
    health_defaults_ensure()
    company = CompanyFactory()
    answer = admin_client_logged_in.post(
        reverse(CHANGELIST),
        {"action": "recompute_health", "_selected_action": [company.pk]},
        follow=True,
    )
    assert "1 companies" in answer.content.decode()
    assert HealthScore.objects.filter(company=company).exists()
