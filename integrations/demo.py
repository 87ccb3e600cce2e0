"""A small demo workspace, so a newcomer sees something at once (`make run DEMO=1`).

Idempotent: objects are keyed by external id. Usage is fed through the real ingest path
(events stored in the inbox, processed by the worker), so the demo exercises the pipeline.
"""

from __future__ import annotations

import datetime as dt
import random
import uuid
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from planhat_segment.models import Asset, Company, CompanyDomain, EndUser, License, Project

from .models import MetricDefinition

DEMO_COMPANIES = [
    ("ACME-001", "Acme Corp", "acme.example", "Enterprise", Decimal("4200")),
    ("GLOBEX", "Globex", "globex.example", "Growth", Decimal("1500")),
    ("INITECH", "Initech", "initech.example", "Starter", Decimal("390")),
]
DEMO_PEOPLE = ["Ana Lima", "Peter Gibbons", "Milton Waddams", "Samir Nagheenanajar"]
DEMO_ACTIONS = ["Report Downloaded", "Dashboard Viewed", "Invite Sent", "Export Created"]
DEMO_METRICS = [
    ("active_users", "Active users"),
    ("seats", "Seats"),
    ("storage_gb", "Storage (GB)"),
]


@transaction.atomic
def demo_workspace_load(*, days: int = 30, seed: int = 7) -> str:
    """Create the demo objects and queue ~a month of usage and metrics as Segment events."""
    rng = random.Random(seed)
    for key, label in DEMO_METRICS:
        MetricDefinition.objects.get_or_create(key=key, defaults={"label": label})
    start = timezone.now().date() - dt.timedelta(days=days)
    messages: list[dict] = []
    for ext_id, name, domain, plan, mrr in DEMO_COMPANIES:
        company, _ = Company.objects.get_or_create(external_id=ext_id, defaults={"name": name})
        CompanyDomain.objects.get_or_create(domain=domain, defaults={"company": company})
        License.objects.get_or_create(
            external_id=f"{ext_id}-LIC",
            defaults={"company": company, "product": plan, "mrr": mrr, "start_date": start},
        )
        Asset.objects.get_or_create(
            external_id=f"{ext_id}-APP", defaults={"company": company, "name": f"{name} app"}
        )
        Project.objects.get_or_create(
            external_id=f"{ext_id}-ONB", defaults={"company": company, "name": "Onboarding"}
        )
        for i, person in enumerate(DEMO_PEOPLE):
            first, last = person.split(" ", 1)
            EndUser.objects.get_or_create(
                external_id=f"{ext_id}-u{i}",
                defaults={
                    "company": company,
                    "email": f"{first.lower()}@{domain}",
                    "first_name": first,
                    "last_name": last,
                    "name": person,
                },
            )
        messages += _demo_events(rng, ext_id, days)
    accepted = _queue(messages)
    return (
        f"{len(DEMO_COMPANIES)} companies, {len(DEMO_COMPANIES) * len(DEMO_PEOPLE)} endusers, "
        f"{accepted} events queued for the worker"
    )


def _demo_events(rng: random.Random, company_id: str, days: int) -> list[dict]:
    events = []
    now = timezone.now()
    for day in range(days + 1):
        when = now - dt.timedelta(days=days - day, hours=1)  # never in the future
        for i in range(len(DEMO_PEOPLE)):
            for _ in range(rng.randint(0, 3)):
                events.append(
                    {
                        "type": "track",
                        "userId": f"{company_id}-u{i}",
                        "event": rng.choice(DEMO_ACTIONS),
                        "properties": {"asset_id": f"{company_id}-APP"},
                        "timestamp": (when - dt.timedelta(minutes=rng.randint(0, 600))).isoformat(),
                        "messageId": f"demo-{uuid.uuid5(uuid.NAMESPACE_URL, f'{company_id}{day}{i}{len(events)}')}",
                    }
                )
        events.append(
            {
                "type": "group",
                "userId": f"{company_id}-u0",
                "groupId": company_id,
                "traits": {
                    "active_users": rng.randint(2, 4),
                    "seats": 5,
                    "storage_gb": round(rng.uniform(1, 50), 1),
                },
                "timestamp": when.isoformat(),
                "messageId": f"demo-{company_id}-group-{day}",
            }
        )
    return events


def _queue(messages: list[dict]) -> int:
    from usage.ingest.services import messages_ingest

    return messages_ingest(items=messages).accepted  # nudges a drain once committed
