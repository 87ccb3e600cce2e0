"""The figures factors read, fetched for a whole set of companies: one query per figure.

Usage figures come from ``usage.rollup_selectors`` (never from the activities themselves);
MRR and enduser counts from the workspace's objects. "No data" is ``None``:

- activity counts and active endusers are 0 for a company that has had activity before
  (a quiet month is data), and no data for a company that never had any tracked activity
  (nothing to judge yet);
- activity change is no data when the previous period had no activity;
- days since the last activity, a metric's latest value or change: no data when missing;
- MRR and enduser count are always data (0 when there is none), except converted MRR whose
  every license is in a currency without a rate.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import QuerySet, Sum

from planhat_segment.models import License
from usage import rollup_selectors as usage

from .models import Figure, HealthFactor, HealthProfile

WINDOW_LABELS = {
    Figure.ACTIVITY_COUNT: "Activities over the last {n} days",
    Figure.ACTIVE_ENDUSERS: "Active endusers over the last {n} days",
    Figure.ACTIVITY_CHANGE: "Activity change vs the previous {n} days (%)",
    Figure.METRIC_CHANGE: "Change of {metric} over the last {n} days",
}


def figure_label(factor: HealthFactor) -> str:
    """A readable name for what a factor reads, e.g. "Activities over the last 30 days"."""
    metric = factor.metric.label if factor.metric_id and factor.metric else "a metric"
    if factor.figure in WINDOW_LABELS:
        text = WINDOW_LABELS[factor.figure].format(n=factor.window_days or "N", metric=metric)
    elif factor.figure == Figure.METRIC_LATEST:
        text = f"Latest {metric}"
    elif factor.figure == Figure.MRR:
        text = f"MRR ({factor.currency})" if factor.currency else "MRR"
    else:
        text = Figure(factor.figure).label if factor.figure in Figure.values else factor.figure
    if factor.action and factor.figure in (Figure.ACTIVITY_COUNT, Figure.ACTIVITY_CHANGE):
        text += f" · {factor.action}"
    if factor.weighted and factor.figure == Figure.ACTIVITY_COUNT:
        text += " (weighted)"
    return text


@dataclass(frozen=True)
class FigureSpec:
    """What one query fetches: factors reading the same thing share it."""

    figure: str
    window_days: int | None = None
    action: str = ""
    weighted: bool = False
    metric_id: int | None = None

    @classmethod
    def of(cls, factor: HealthFactor) -> FigureSpec:
        return cls(
            figure=factor.figure,
            window_days=factor.window_days,
            action=factor.action or "",
            weighted=factor.weighted,
            metric_id=factor.metric_id,
        )


@dataclass
class CompanyFigures:
    """Everything fetched for a set of companies, keyed by company id."""

    today: dt.date
    last_active_day: dict[int, dt.date]
    by_spec: dict[FigureSpec, dict[int, float | None]]
    mrr: dict[int, dict[str, Decimal]]  # company -> currency -> MRR of active licenses
    enduser_counts: dict[int, int]

    def has_usage(self, company_id: int) -> bool:
        return company_id in self.last_active_day


def mrr_by_currency(*, company_ids: Iterable[int] | QuerySet | None) -> dict[int, dict]:
    """MRR of each company's active licenses, per currency. One query."""
    qs = usage.scoped(License.objects.filter(status=License.Status.ACTIVE), company_ids)
    result: dict[int, dict[str, Decimal]] = defaultdict(dict)
    for company_id, currency, total in (
        qs.order_by().values_list("company_id", "currency").annotate(total=Sum("mrr"))
    ):
        result[company_id][currency.upper()] = total or Decimal("0")
    return dict(result)


def mrr_converted(
    per_currency: dict[str, Decimal], profile: HealthProfile
) -> tuple[float | None, list[str]]:
    """Total MRR in the profile's currency, and the currencies left out for want of a rate.

    None when there are licenses but none could be converted; 0.0 when there are none.
    """
    base = profile.currency.upper()
    rates = {code.upper(): rate for code, rate in (profile.currency_rates or {}).items()}
    total = 0.0
    converted = False
    missing: list[str] = []
    for currency, amount in sorted(per_currency.items()):
        if currency == base:
            rate = 1.0
        elif currency in rates:
            rate = float(rates[currency])
        else:
            missing.append(currency)
            continue
        total += float(amount) * rate
        converted = True
    if per_currency and not converted:
        return None, missing
    return round(total, 2), missing


def figures_fetch(
    *,
    specs: Iterable[FigureSpec],
    company_ids: Iterable[int] | QuerySet | None,
    today: dt.date,
) -> CompanyFigures:
    """Fetch every distinct figure once for all the companies (a query or two per figure)."""
    if company_ids is not None and not isinstance(company_ids, QuerySet | range):
        company_ids = list(company_ids)  # iterated once per figure
    last_active = usage.last_activity_days(company_ids=company_ids, today=today)
    by_spec: dict[FigureSpec, dict[int, float | None]] = {}
    needs_mrr = needs_endusers = False
    for spec in set(specs):
        figure = spec.figure
        days = spec.window_days or 1
        if figure == Figure.ACTIVITY_COUNT:
            by_spec[spec] = usage.activity_counts(
                company_ids=company_ids,
                days=days,
                action=spec.action or None,
                weighted=spec.weighted,
                today=today,
            )
        elif figure == Figure.ACTIVE_ENDUSERS:
            by_spec[spec] = usage.active_enduser_counts(
                company_ids=company_ids, days=days, today=today
            )
        elif figure == Figure.ACTIVITY_CHANGE:
            by_spec[spec] = usage.activity_change_percents(
                company_ids=company_ids, days=days, action=spec.action or None, today=today
            )
        elif figure == Figure.DAYS_SINCE_LAST_ACTIVITY:
            by_spec[spec] = {pk: (today - day).days for pk, day in last_active.items()}
        elif figure == Figure.METRIC_LATEST and spec.metric_id:
            by_spec[spec] = usage.metric_latest_values(
                company_ids=company_ids, metric_id=spec.metric_id, before=usage.day_start(today)
            )
        elif figure == Figure.METRIC_CHANGE and spec.metric_id:
            by_spec[spec] = usage.metric_changes(
                company_ids=company_ids, metric_id=spec.metric_id, days=days, today=today
            )
        elif figure == Figure.MRR:
            needs_mrr = True
        elif figure == Figure.ENDUSER_COUNT:
            needs_endusers = True
    return CompanyFigures(
        today=today,
        last_active_day=last_active,
        by_spec=by_spec,
        mrr=mrr_by_currency(company_ids=company_ids) if needs_mrr else {},
        enduser_counts=usage.enduser_counts(company_ids=company_ids) if needs_endusers else {},
    )


def figure_value(
    *, factor: HealthFactor, company_id: int, figures: CompanyFigures, profile: HealthProfile
) -> tuple[float | None, str]:
    """One factor's figure for one company, and a note when it has no data (or a caveat)."""
    figure = factor.figure
    if figure == Figure.MRR:
        per_currency = figures.mrr.get(company_id, {})
        if factor.currency:
            return float(per_currency.get(factor.currency.upper(), 0)), ""
        total, missing = mrr_converted(per_currency, profile)
        note = f"left out (no rate): {', '.join(missing)}" if missing else ""
        if total is None:
            return None, f"no data: no conversion rate for {', '.join(missing)}"
        return total, note
    if figure == Figure.ENDUSER_COUNT:
        return float(figures.enduser_counts.get(company_id, 0)), ""
    values = figures.by_spec.get(FigureSpec.of(factor), {})
    if figure in (Figure.ACTIVITY_COUNT, Figure.ACTIVE_ENDUSERS):
        if not figures.has_usage(company_id):
            return None, "no data: no tracked activity yet"
        return float(values.get(company_id, 0)), ""
    value = values.get(company_id)
    if value is None:
        return None, _no_data_reason(figure)
    return float(value), ""


def _no_data_reason(figure: str) -> str:
    return {
        Figure.ACTIVITY_CHANGE: "no data: no activity in the previous period",
        Figure.DAYS_SINCE_LAST_ACTIVITY: "no data: no activity yet",
        Figure.METRIC_LATEST: "no data: no value of this metric yet",
        Figure.METRIC_CHANGE: "no data: the metric has no value at one end of the window",
    }.get(figure, "no data")
