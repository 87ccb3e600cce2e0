"""Every matching rule of DESIGN.md §4.2, table-driven through the real pipeline.

Each case sets up a workspace, stores its messages as one request's inbox rows, drains the
inbox (the same service the worker runs) and checks each row's outcome and the data made.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from integrations.models import MetricDefinition
from integrations.services import integration_ensure
from planhat_segment.models import Asset, Company, CompanyDomain, EndUser, Project
from tests.usage.processing_support import inbox_rows, row
from usage.models import Activity, MetricValue
from usage.services import inbox_drain

pytestmark = pytest.mark.django_db

T0 = "2026-11-05T10:00:00Z"
T1 = "2026-11-05T10:00:01Z"


@dataclass
class Case:
    id: str
    messages: list[dict]
    expect: dict[str, tuple[str, str]]  # message id -> (status, reason)
    companies: tuple[str, ...] = ("ACME",)
    users: tuple[dict, ...] = ()
    domains: dict[str, str] = field(default_factory=dict)
    metrics: tuple[str, ...] = ()
    assets: tuple[str, ...] = ()
    projects: tuple[str, ...] = ()
    integration: dict[str, Any] = field(default_factory=dict)
    received_hours_ago: float = 0
    check: Callable[[dict], None] | None = None


def ident(mid="m1", user="u-1", traits=None, **extra):
    msg = {"type": "identify", "messageId": mid, "userId": user, "timestamp": T0}
    msg["traits"] = traits or {}
    msg.update(extra)
    if user is None:
        del msg["userId"]
    return msg


def track(mid="m1", user="u-1", event="Clicked", **extra):
    msg = {"type": "track", "messageId": mid, "userId": user, "event": event, "timestamp": T1}
    msg.update(extra)
    if user is None:
        del msg["userId"]
    return msg


def enduser(ext):
    return EndUser.objects.get(external_id=ext)


def company_of(ext):
    return enduser(ext).company.external_id


def activity(mid="m1"):
    return Activity.objects.get(message_id=mid)


def _company_is(ext, company):
    def check(world):
        assert company_of(ext) == company

    return check


P, W, D = "processed", "waiting", "dropped"

CASES = [
    # --- company id precedence -------------------------------------------------------------
    Case(
        "company_id_beats_companyId",
        [ident(traits={"company_id": "A", "companyId": "B"})],
        {"m1": (P, "")},
        companies=("A", "B"),
        check=_company_is("u-1", "A"),
    ),
    Case(
        "companyId",
        [ident(traits={"companyId": "B"})],
        {"m1": (P, "")},
        companies=("A", "B"),
        check=_company_is("u-1", "B"),
    ),
    Case(
        "company_object_id",
        [ident(traits={"company": {"id": "B", "name": "Bee"}})],
        {"m1": (P, "")},
        companies=("A", "B"),
        check=_company_is("u-1", "B"),
    ),
    Case(
        "company_string_is_a_name_not_an_id",
        [ident(traits={"company": "A"}, context={"groupId": "B"})],
        {"m1": (P, "")},
        companies=("A", "B"),
        check=_company_is("u-1", "B"),
    ),
    Case(
        "traits_company_beats_context_groupId",
        [ident(traits={"company": {"id": "A"}}, context={"groupId": "B"})],
        {"m1": (P, "")},
        companies=("A", "B"),
        check=_company_is("u-1", "A"),
    ),
    Case(
        "context_groupId",
        [track(context={"groupId": "B"})],
        {"m1": (P, "")},
        companies=("A", "B"),
        check=_company_is("u-1", "B"),
    ),
    Case(
        "context_groupId_beats_context_traits",
        [track(context={"groupId": "A", "traits": {"company_id": "B"}})],
        {"m1": (P, "")},
        companies=("A", "B"),
        check=_company_is("u-1", "A"),
    ),
    Case(
        "context_traits_company_id",
        [track(context={"traits": {"company_id": "B"}})],
        {"m1": (P, "")},
        companies=("A", "B"),
        check=_company_is("u-1", "B"),
    ),
    Case(
        "context_traits_companyId",
        [track(context={"traits": {"companyId": "B"}})],
        {"m1": (P, "")},
        companies=("A", "B"),
        check=_company_is("u-1", "B"),
    ),
    Case(
        "context_traits_beat_properties",
        [track(context={"traits": {"companyId": "A"}}, properties={"company_id": "B"})],
        {"m1": (P, "")},
        companies=("A", "B"),
        check=_company_is("u-1", "A"),
    ),
    Case(
        "properties_company_id",
        [track(properties={"company_id": "B"})],
        {"m1": (P, "")},
        companies=("A", "B"),
        check=_company_is("u-1", "B"),
    ),
    Case(
        "properties_companyId",
        [track(properties={"companyId": "B"})],
        {"m1": (P, "")},
        companies=("A", "B"),
        check=_company_is("u-1", "B"),
    ),
    Case(
        "number_matches_string_id",
        [ident(traits={"company_id": 123})],
        {"m1": (P, "")},
        companies=("123",),
        check=_company_is("u-1", "123"),
    ),
    Case(
        "email_domain_last_resort",
        [ident(traits={"email": "Bob@Acme.io"})],
        {"m1": (P, "")},
        companies=("A",),
        domains={"acme.io": "A"},
        check=_company_is("u-1", "A"),
    ),
    Case(
        "email_domain_off",
        [ident(traits={"email": "bob@acme.io"})],
        {"m1": (W, "")},
        companies=("A",),
        domains={"acme.io": "A"},
        integration={"match_by_email_domain": False},
    ),
    Case(
        "email_domain_not_used_when_an_id_is_given",
        [ident(traits={"email": "bob@acme.io", "company_id": "NOPE"})],
        {"m1": (W, "")},
        companies=("A",),
        domains={"acme.io": "A"},
    ),
    # --- enduser matching ------------------------------------------------------------------
    Case(
        "user_id_matches_external_id",
        [track(user="u-9")],
        {"m1": (P, "")},
        users=({"ext": "u-9", "email": "nine@x.io"},),
        check=lambda w: (activity().enduser.external_id == "u-9") or pytest.fail("wrong user"),
    ),
    Case(
        "traits_user_id",
        [ident(user=None, traits={"user_id": "u-9", "title": "CTO"})],
        {"m1": (P, "")},
        users=({"ext": "u-9", "email": "nine@x.io"},),
        check=lambda w: enduser("u-9").title == "CTO" or pytest.fail("not filled"),
    ),
    Case(
        "traits_userId",
        [ident(user=None, traits={"userId": "u-9", "title": "CTO"})],
        {"m1": (P, "")},
        users=({"ext": "u-9", "email": "nine@x.io"},),
        check=lambda w: enduser("u-9").title == "CTO" or pytest.fail("not filled"),
    ),
    Case(
        "unknown_user_id_falls_back_to_email_case_insensitively",
        [track(user="u-new", context={"traits": {"email": "NINE@X.io"}})],
        {"m1": (P, "")},
        users=({"ext": "u-9", "email": "nine@x.io"},),
        check=lambda w: activity().enduser.external_id == "u-9" or pytest.fail("email"),
    ),
    Case(
        "email_only",
        [ident(user=None, traits={"email": "Nine@x.io"}, anonymousId="a")],
        {"m1": (P, "")},
        users=({"ext": "u-9", "email": "nine@x.io"},),
    ),
    Case(
        "user_id_wins_over_email",
        [track(user="u-9", context={"traits": {"email": "ten@x.io"}})],
        {"m1": (P, "")},
        users=({"ext": "u-9", "email": "nine@x.io"}, {"ext": "u-10", "email": "ten@x.io"}),
        check=lambda w: activity().enduser.external_id == "u-9" or pytest.fail("email won"),
    ),
    Case(
        "created_from_traits",
        [
            ident(
                traits={
                    "firstName": "Ana",
                    "last_name": "Lima",
                    "email": "Ana@Globex.io",
                    "title": "CEO",
                    "company_id": "ACME",
                }
            )
        ],
        {"m1": (P, "")},
        check=lambda w: _created(
            name="Ana Lima",
            email="Ana@globex.io".lower(),
            title="CEO",
            first_name="Ana",
            last_name="Lima",
        ),
    ),
    Case(
        "created_name_beats_first_last",
        [ident(traits={"name": "Full Name", "first_name": "F", "company_id": "ACME"})],
        {"m1": (P, "")},
        check=lambda w: _created(name="Full Name"),
    ),
    Case(
        "create_off_unknown_enduser",
        [ident(traits={"company_id": "ACME"})],
        {"m1": (D, "unknown_enduser")},
        integration={"create_endusers": False},
        check=lambda w: not EndUser.objects.exists() or pytest.fail("created"),
    ),
    Case(
        "no_company_waits",
        [track(user="u-x")],
        {"m1": (W, "")},
        integration={"unassigned_wait_hours": 6},
        check=lambda w: _waits_hours("m1", 6),
    ),
    Case(
        "unknown_company_id_waits",
        [track(user="u-x", context={"groupId": "NOPE"})],
        {"m1": (W, "")},
    ),
    Case(
        "window_over_dropped_unassigned",
        [track(user="u-x")],
        {"m1": (D, "unassigned_user")},
        received_hours_ago=25,
    ),
    Case("no_identity", [track(user=None, anonymousId="anon")], {"m1": (D, "no_identity")}),
    Case(
        "identify_fills_only_empty_fields",
        [ident(user="u-9", traits={"name": "New", "title": "CTO", "email": "other@x.io"})],
        {"m1": (P, "")},
        users=({"ext": "u-9", "email": "nine@x.io", "name": "Old"},),
        check=lambda w: _fields("u-9", name="Old", title="CTO", email="nine@x.io"),
    ),
    Case(
        "identify_sets_missing_email",
        [ident(user="u-9", traits={"email": "Nine@x.io"})],
        {"m1": (P, "")},
        users=({"ext": "u-9", "email": None, "name": "Old"},),
        check=lambda w: _fields("u-9", email="nine@x.io", email_normalized="nine@x.io"),
    ),
    # --- activities ------------------------------------------------------------------------
    Case(
        "track_activity",
        [
            track(
                event="Report Downloaded",
                properties={"format": "pdf"},
                timestamp="2026-11-05T12:00:00+02:00",
            )
        ],
        {"m1": (P, "")},
        users=({"ext": "u-1", "email": "one@x.io"},),
        check=lambda w: _activity(
            action="Report Downloaded",
            count=1,
            properties={"format": "pdf"},
            occurred="2026-11-05T10:00:00+00:00",
        ),
    ),
    Case(
        "original_timestamp",
        [track(timestamp=None, originalTimestamp="2026-11-01T01:02:03Z")],
        {"m1": (P, "")},
        users=({"ext": "u-1", "email": "one@x.io"},),
        check=lambda w: _activity(occurred="2026-11-01T01:02:03+00:00"),
    ),
    Case(
        "count_given",
        [track(properties={"count": 3})],
        {"m1": (P, "")},
        users=({"ext": "u-1", "email": "one@x.io"},),
        check=lambda w: _activity(count=3),
    ),
    *[
        Case(
            f"count_invalid_{label}",
            [track(properties={"count": bad})],
            {"m1": (P, "")},
            users=({"ext": "u-1", "email": "one@x.io"},),
            check=lambda w: (_activity(count=1), _detail_has("m1", "count")),
        )
        for label, bad in [
            ("text", "abc"),
            ("negative", -2),
            ("zero", 0),
            ("bool", True),
            ("fraction", 1.5),
        ]
    ],
    Case(
        "asset_project_snake",
        [track(properties={"asset_id": "AS-1", "project_id": "PR-1"})],
        {"m1": (P, "")},
        users=({"ext": "u-1", "email": "one@x.io"},),
        assets=("AS-1",),
        projects=("PR-1",),
        check=lambda w: _objects("AS-1", "PR-1"),
    ),
    Case(
        "asset_project_camel",
        [track(properties={"assetId": "AS-1", "projectId": "PR-1"})],
        {"m1": (P, "")},
        users=({"ext": "u-1", "email": "one@x.io"},),
        assets=("AS-1",),
        projects=("PR-1",),
        check=lambda w: _objects("AS-1", "PR-1"),
    ),
    Case(
        "asset_unknown_is_none",
        [track(properties={"asset_id": "AS-404"})],
        {"m1": (P, "")},
        users=({"ext": "u-1", "email": "one@x.io"},),
        check=lambda w: _objects(None, None),
    ),
    Case(
        "page_named",
        [{"type": "page", "messageId": "m1", "userId": "u-1", "name": "Home"}],
        {"m1": (P, "")},
        users=({"ext": "u-1", "email": "one@x.io"},),
        check=lambda w: _activity(action="Viewed Home"),
    ),
    Case(
        "page_unnamed",
        [{"type": "page", "messageId": "m1", "userId": "u-1"}],
        {"m1": (P, "")},
        users=({"ext": "u-1", "email": "one@x.io"},),
        check=lambda w: _activity(action="Viewed page"),
    ),
    Case(
        "screen_named",
        [{"type": "screen", "messageId": "m1", "userId": "u-1", "name": "Settings"}],
        {"m1": (P, "")},
        users=({"ext": "u-1", "email": "one@x.io"},),
        check=lambda w: _activity(action="Viewed Settings"),
    ),
    Case(
        "screen_unnamed",
        [{"type": "screen", "messageId": "m1", "userId": "u-1"}],
        {"m1": (P, "")},
        users=({"ext": "u-1", "email": "one@x.io"},),
        check=lambda w: _activity(action="Viewed screen"),
    ),
    Case(
        "alias_unsupported",
        [{"type": "alias", "messageId": "m1", "userId": "u-1", "previousId": "x"}],
        {"m1": (D, "unsupported_call")},
    ),
    # --- group -----------------------------------------------------------------------------
    Case(
        "group_metrics",
        [
            {
                "type": "group",
                "messageId": "m1",
                "groupId": "ACME",
                "timestamp": T0,
                "traits": {
                    "int": 4,
                    "float": 2.5,
                    "text_num": " -3.25 ",
                    "flag": True,
                    "none": None,
                    "word": "many",
                    "undefined": 7,
                },
            }
        ],
        {"m1": (P, "")},
        metrics=("int", "float", "text_num", "flag", "none", "word"),
        check=lambda w: _metrics(
            {"int": 4.0, "float": 2.5, "text_num": -3.25},
            noted=("flag", "word"),
            not_noted=("none", "undefined"),
        ),
    ),
    Case(
        "group_numeric_id",
        [{"type": "group", "messageId": "m1", "groupId": 123, "traits": {"int": 1}}],
        {"m1": (P, "")},
        companies=("123",),
        metrics=("int",),
        check=lambda w: _metrics({"int": 1.0}),
    ),
    Case(
        "group_unknown_company",
        [{"type": "group", "messageId": "m1", "groupId": "NOPE", "traits": {"int": 1}}],
        {"m1": (D, "unknown_company")},
        metrics=("int",),
        check=lambda w: Company.objects.count() == 1 or pytest.fail("made"),
    ),
    Case(
        "group_never_updates_company",
        [{"type": "group", "messageId": "m1", "groupId": "ACME", "traits": {"name": "Renamed"}}],
        {"m1": (P, "")},
        check=lambda w: Company.objects.get().name == "ACME inc" or pytest.fail("renamed"),
    ),
    # --- sections --------------------------------------------------------------------------
    Case(
        "user_tracking_off",
        [
            ident("i", traits={"company_id": "ACME"}),
            track("t"),
            {"type": "page", "messageId": "p", "userId": "u-1"},
            {"type": "screen", "messageId": "s", "userId": "u-1"},
            {"type": "group", "messageId": "g", "groupId": "ACME", "traits": {"int": 1}},
        ],
        {
            "i": (D, "section_disabled"),
            "t": (D, "section_disabled"),
            "p": (D, "section_disabled"),
            "s": (D, "section_disabled"),
            "g": (P, ""),
        },
        metrics=("int",),
        integration={"user_tracking_enabled": False},
    ),
    Case(
        "company_metrics_off",
        [
            {"type": "group", "messageId": "g", "groupId": "ACME", "traits": {"int": 1}},
            track("t", context={"groupId": "ACME"}),
        ],
        {"g": (D, "section_disabled"), "t": (P, "")},
        metrics=("int",),
        integration={"company_metrics_enabled": False},
    ),
    # --- order within a claim --------------------------------------------------------------
    Case(
        "identify_first_by_timestamp_binds_later_track",
        [
            track("t", user="u-5", timestamp="2026-11-05T10:00:09Z"),
            ident("i", user="u-5", traits={"company_id": "ACME"}, timestamp="2026-11-05T10:00:00Z"),
        ],
        {"t": (P, ""), "i": (P, "")},
        check=lambda w: activity("t").enduser.external_id == "u-5" or pytest.fail("unbound"),
    ),
    Case(
        "row_keeps_identity_keys",
        [track(user="u-1", context={"groupId": "ACME", "traits": {"email": "One@X.io"}})],
        {"m1": (P, "")},
        check=lambda w: _keys("m1", "u-1", "one@x.io", "ACME"),
    ),
]


def _created(**fields):
    user = EndUser.objects.get()
    assert user.source == EndUser.Source.SEGMENT
    for name, value in fields.items():
        assert getattr(user, name) == value, name


def _fields(ext, **fields):
    user = enduser(ext)
    for name, value in fields.items():
        assert getattr(user, name) == value, name


def _waits_hours(mid, hours):
    r = row(mid)
    assert r.wait_until == r.received_at + timedelta(hours=hours)


def _activity(mid="m1", **expected):
    act = activity(mid)
    occurred = expected.pop("occurred", None)
    if occurred:
        assert act.occurred_at.isoformat() == occurred
    for name, value in expected.items():
        assert getattr(act, name) == value, name


def _detail_has(mid, text):
    assert text in row(mid).detail


def _objects(asset, project):
    act = activity()
    assert (act.asset.external_id if act.asset else None) == asset
    assert (act.project.external_id if act.project else None) == project


def _metrics(values, noted=(), not_noted=()):
    got = {v.metric.key: v.value for v in MetricValue.objects.select_related("metric")}
    assert got == values
    detail = row("m1").detail
    for key in noted:
        assert repr(key) in detail
    for key in not_noted:
        assert repr(key) not in detail


def _keys(mid, user, email, company):
    r = row(mid)
    assert (r.user_key, r.email_key, r.company_key) == (user, email, company)
    assert r.enduser.external_id == user


def _setup(case: Case) -> None:
    integration = integration_ensure()
    for name, value in case.integration.items():
        setattr(integration, name, value)
    integration.save()
    companies = {
        ext: Company.objects.create(external_id=ext, name=f"{ext} inc") for ext in case.companies
    }
    first = next(iter(companies.values())) if companies else None
    for spec in case.users:
        EndUser.objects.create(
            company=first,
            external_id=spec["ext"],
            email=spec.get("email"),
            name=spec.get("name", ""),
        )
    for domain, ext in case.domains.items():
        CompanyDomain.objects.create(domain=domain, company=companies[ext])
    for key in case.metrics:
        MetricDefinition.objects.create(key=key)
    for ext in case.assets:
        Asset.objects.create(company=first, external_id=ext, name=ext)
    for ext in case.projects:
        Project.objects.create(company=first, external_id=ext, name=ext)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_matching_rule(case: Case):
    _setup(case)
    messages = [{k: v for k, v in m.items() if v is not None} for m in case.messages]
    received = timezone.now() - timedelta(hours=case.received_hours_ago)
    inbox_rows(messages, received_at=received)

    inbox_drain(max_seconds=30)

    got = {mid: (row(mid).status, row(mid).reason) for mid in case.expect}
    assert got == case.expect
    if case.check:
        case.check({})
