"""What a notification says: the webhook's JSON body and the email's subject and text.

The webhook body is one a Slack or Microsoft Teams incoming webhook accepts as is: ``text``
(a readable line) plus structured fields — Slack's ``attachments[].fields`` and a
machine-readable ``alert`` object for any other receiver (Teams shows ``text`` and ignores
the rest). It is built at send time from the alert's stored fields (its facts are fixed
when it opens), so every attempt sends the same bytes unless the rule or company is renamed.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import orjson
from django.conf import settings
from django.urls import reverse

from ..models_alerts import RuleKind

BAND_COLOURS = {"green": "#2e7d32", "amber": "#f9a825", "red": "#c62828"}
ALERT_COLOUR = "#c62828"
KIND_TITLES = dict(RuleKind.choices)


def alert_admin_url(alert_id: int) -> str:
    return settings.PUBLIC_BASE_URL + reverse("admin:health_alert_change", args=[alert_id])


def _iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _field(title: str, value: Any, short: bool = True) -> dict:
    return {"title": title, "value": "—" if value in (None, "") else str(value), "short": short}


def _fact_fields(kind: str, facts: dict) -> list[dict]:
    if kind == RuleKind.USAGE_DROP:
        return [
            _field(
                "Drop",
                f"{facts.get('drop_percent')} % (threshold {facts.get('threshold_percent')} %)",
            ),
            _field("Last period", facts.get("current")),
            _field("Baseline average", facts.get("baseline_average")),
            _field("Window", " – ".join(facts.get("window") or [])),
        ]
    if kind == RuleKind.INACTIVITY:
        return [
            _field("Last activity", facts.get("last_activity_day") or "never"),
            _field("Days without activity", facts.get("days_without_activity")),
        ]
    if kind == RuleKind.ACTIVE_ENDUSERS_BELOW:
        return [
            _field("Active endusers", facts.get("active_endusers")),
            _field("Threshold", facts.get("threshold")),
        ]
    if kind == RuleKind.METRIC_THRESHOLD:
        return [
            _field("Metric", facts.get("metric")),
            _field("Value", facts.get("value")),
            _field("Condition", f"{facts.get('operator')} {facts.get('threshold')}"),
        ]
    if kind == RuleKind.HEALTH_BAND_CHANGE:
        return [
            _field("Band", f"{facts.get('previous_band')} → {facts.get('band')}"),
            _field("Score", facts.get("score")),
        ]
    return []


def alert_payload(
    *,
    alert_id: int,
    opened_at: dt.datetime,
    day: dt.date,
    rule: dict,
    company: dict,
    facts: dict,
    event: str = "alert.opened",
) -> dict:
    """The JSON body of a notification (also the source of the email's text).

    ``rule``: id, name, kind; ``company``: id, name, external_id.
    """
    url = alert_admin_url(alert_id)
    title = KIND_TITLES.get(rule["kind"], rule["kind"])
    who = company["name"] + (f" ({company['external_id']})" if company.get("external_id") else "")
    text = f"{title} — {who}: {facts.get('summary', '')}. Rule: {rule['name']}. {url}"
    colour = BAND_COLOURS.get(facts.get("band") or "", ALERT_COLOUR)
    return {
        "text": text,
        "event": event,
        "alert": {
            "id": alert_id,
            "status": "open",
            "opened_at": _iso(opened_at),
            "day": day.isoformat(),
            "url": url,
            "rule": rule,
            "company": company,
            "facts": facts,
        },
        "attachments": [
            {
                "fallback": text,
                "color": colour,
                "title": f"{title}: {company['name']}",
                "title_link": url,
                "text": facts.get("summary", ""),
                "fields": [
                    _field("Company", who),
                    _field("Rule", rule["name"]),
                    *_fact_fields(rule["kind"], facts),
                ],
                "footer": "Planhat · Segment integration alerts",
                "ts": int(opened_at.timestamp()),
            }
        ],
    }


def alert_payload_of(alert, event: str = "alert.opened") -> dict:
    """The body for a stored alert (its rule and company loaded with it)."""
    return alert_payload(
        alert_id=alert.pk,
        opened_at=alert.opened_at,
        day=alert.day,
        rule={"id": alert.rule_id, "name": alert.rule.name, "kind": alert.rule.kind},
        company={
            "id": alert.company_id,
            "name": alert.company.name,
            "external_id": alert.company.external_id,
        },
        facts=alert.facts,
        event=event,
    )


def payload_bytes(payload: dict) -> bytes:
    """The raw body sent (and signed): compact UTF-8 JSON, the same bytes on every attempt."""
    return orjson.dumps(payload)


def email_message(payload: dict) -> tuple[str, str]:
    """(subject, plain text body) of an alert email, from the webhook body."""
    alert = payload["alert"]
    company, rule, facts = alert["company"], alert["rule"], alert["facts"]
    title = KIND_TITLES.get(rule["kind"], rule["kind"])
    subject = f"[Alert] {title}: {company['name']}"
    lines = [
        f"{title} for {company['name']}"
        + (f" ({company['external_id']})" if company.get("external_id") else ""),
        "",
        f"{facts.get('summary', '')}.",
        "",
        f"Rule: {rule['name']}",
        f"Opened: {alert['opened_at']} (figures of the complete UTC days before {alert['day']})",
        "",
        "Figures:",
        *(f"  {key}: {value}" for key, value in facts.items() if key != "summary"),
        "",
        f"Acknowledge or resolve it here: {alert['url']}",
    ]
    return subject, "\n".join(lines)
