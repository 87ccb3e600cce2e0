"""Each rule kind's condition, judged for every company in scope at once (set-based).

A condition function reads its figures with one or two queries for all companies (through
``usage`` selectors, or the health score rows) and returns a :class:`Verdict` per company
it could judge. A company it cannot judge yet — not enough history, or no data (no metric
value, no score row) — is absent: its active alert, if any, is left as it is.

History: a company is judged once its history starts at least the rule's span ago, where
its history starts at its first day with activity or, if earlier, the day it was created
(so a company created long ago that never had any activity is judged, and a company created
yesterday is not). Spans: usage drop N × (M + 1) days; inactivity N; active endusers N.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from enum import Enum

from django.db.models import OuterRef, Subquery

from planhat_segment.models import Company
from usage import rollup_selectors as usage
from usage import window_selectors as windows

from ..figures import mrr_by_currency, mrr_converted
from ..models import HealthProfile, HealthScore
from ..models_alerts import AlertRule, Operator, RuleKind


class State(Enum):
    MET = "met"  # the condition holds: open an alert (unless one is active, or in cooldown)
    HOLDING = "holding"  # keep an active alert, open none (a band-change alert still in band)
    CLEAR = "clear"  # the condition does not hold: resolve an active alert


@dataclass(frozen=True)
class Verdict:
    state: State
    facts: dict
    summary: str


@dataclass(frozen=True)
class CompanyRow:
    name: str
    external_id: str | None
    owner_email: str
    created_day: dt.date


@dataclass
class Context:
    """What every rule of one evaluation shares (fetched once, lazily)."""

    day: dt.date
    now: dt.datetime
    companies: dict[int, CompanyRow]
    first_activity: dict[int, dt.date]
    default_profile: HealthProfile | None
    _memo: dict = field(default_factory=dict)

    def memo(self, key, compute: Callable):
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]

    def history_start(self, company_id: int) -> dt.date:
        created = self.companies[company_id].created_day
        first = self.first_activity.get(company_id)
        return min(first, created) if first else created

    def has_history(self, company_id: int, span_days: int) -> bool:
        return self.history_start(company_id) <= self.day - dt.timedelta(days=span_days)

    def mrr(self) -> dict[int, float | None]:
        """MRR of active licenses in the default profile's currency (converted with its rates;
        None when no license could be converted)."""

        def compute():
            per_company = mrr_by_currency(company_ids=None)
            if self.default_profile is None:
                return {pk: float(sum(v.values(), Decimal(0))) for pk, v in per_company.items()}
            return {pk: mrr_converted(v, self.default_profile)[0] for pk, v in per_company.items()}

        return self.memo("mrr", compute)

    def last_activity(self) -> dict[int, dt.date]:
        return self.memo(
            "last_activity",
            lambda: windows.last_activity_days_before(company_ids=None, today=self.day),
        )


def context_build(*, day: dt.date, now: dt.datetime) -> Context:
    """The non-test companies (one query) and their first day with activity (one query)."""
    companies = {
        pk: CompanyRow(name, external_id, owner_email or "", created.astimezone(dt.UTC).date())
        for pk, name, external_id, owner_email, created in Company.objects.filter(
            is_test=False
        ).values_list("pk", "name", "external_id", "owner_email", "created_at")
    }
    return Context(
        day=day,
        now=now,
        companies=companies,
        first_activity=windows.first_activity_days(company_ids=None),
        default_profile=HealthProfile.objects.filter(is_default=True).first(),
    )


def scope_of(rule: AlertRule, ctx: Context) -> set[int]:
    """The companies a rule watches: every non-test company, or those with MRR ≥ min_mrr."""
    if rule.min_mrr is None:
        return set(ctx.companies)
    floor = float(rule.min_mrr)
    mrr = ctx.mrr()
    # No license: MRR 0. Licenses in currencies without a rate: unknown, so out of scope.
    return {
        pk for pk in ctx.companies if (value := mrr.get(pk, 0.0)) is not None and value >= floor
    }


def _window(first: dt.date, last: dt.date) -> list[str]:
    return [first.isoformat(), last.isoformat()]


def _fmt(number: float) -> str:
    return f"{number:,.1f}".rstrip("0").rstrip(".") if number != int(number) else f"{number:,.0f}"


# --- usage_drop ------------------------------------------------------------------------------


def usage_drop(rule: AlertRule, ctx: Context, scope: set[int]) -> dict[int, Verdict]:
    n, m = rule.window_days, rule.baseline_periods
    action = rule.action or None
    totals = ctx.memo(
        ("periods", n, m, action),
        lambda: windows.activity_period_totals(
            company_ids=None, days=n, periods=m, action=action, today=ctx.day
        ),
    )
    bounds = windows.period_bounds(days=n, periods=m, today=ctx.day)
    zeros = [0] * (m + 1)
    what = f"'{action}' activities" if action else "activities"
    result = {}
    for pk in scope:
        if not ctx.has_history(pk, n * (m + 1)):
            continue
        current, *baseline = totals.get(pk, zeros)
        average = sum(baseline) / m
        facts = {
            "window": _window(*bounds[0]),
            "baseline_window": [bounds[-1][0].isoformat(), bounds[1][1].isoformat()],
            "current": current,
            "baseline_periods": baseline,
            "baseline_average": round(average, 2),
            "threshold_percent": rule.drop_percent,
            "action": action,
        }
        if average == 0:
            # A zero baseline is never a drop (nothing to drop from).
            facts["drop_percent"] = None
            result[pk] = Verdict(State.CLEAR, facts, "no activity in the baseline periods")
            continue
        drop = (average - current) * 100.0 / average
        facts["drop_percent"] = round(drop, 1)
        summary = (
            f"{what} {'down' if drop >= 0 else 'up'} {abs(drop):.1f} %: {current:,} in the "
            f"last {n} days vs an average of {_fmt(average)} over the {m} periods before"
        )
        met = drop >= rule.drop_percent - 1e-9
        result[pk] = Verdict(State.MET if met else State.CLEAR, facts, summary)
    return result


# --- inactivity -------------------------------------------------------------------------------


def inactivity(rule: AlertRule, ctx: Context, scope: set[int]) -> dict[int, Verdict]:
    n = rule.days
    first, last = usage.window_days(days=n, today=ctx.day)
    last_days = ctx.last_activity()
    result = {}
    for pk in scope:
        if not ctx.has_history(pk, n):
            continue
        last_day = last_days.get(pk)
        quiet = (last - last_day).days if last_day else None
        facts = {
            "window": _window(first, last),
            "days": n,
            "last_activity_day": last_day.isoformat() if last_day else None,
            "days_without_activity": quiet,
        }
        if last_day is None:
            summary = f"no activity ever (company created {ctx.companies[pk].created_day})"
        else:
            summary = f"no activity for {quiet} complete days (last on {last_day})"
        met = last_day is None or last_day < first
        result[pk] = Verdict(State.MET if met else State.CLEAR, facts, summary)
    return result


# --- active_endusers_below -------------------------------------------------------------------


def active_endusers_below(rule: AlertRule, ctx: Context, scope: set[int]) -> dict[int, Verdict]:
    n, threshold = rule.window_days, rule.threshold
    first, last = usage.window_days(days=n, today=ctx.day)
    counts = ctx.memo(
        ("active", n),
        lambda: usage.active_enduser_counts(company_ids=None, days=n, today=ctx.day),
    )
    result = {}
    for pk in scope:
        if not ctx.has_history(pk, n):
            continue
        active = int(counts.get(pk, 0))
        facts = {"window": _window(first, last), "active_endusers": active, "threshold": threshold}
        summary = f"{active} active enduser{'s' if active != 1 else ''} in the last {n} days"
        state = State.MET if active < threshold else State.CLEAR
        result[pk] = Verdict(state, facts, summary + f" (alert below {_fmt(threshold)})")
    return result


# --- metric_threshold ------------------------------------------------------------------------


def metric_threshold(rule: AlertRule, ctx: Context, scope: set[int]) -> dict[int, Verdict]:
    metric = rule.metric
    values = ctx.memo(
        ("metric", metric.pk),
        lambda: usage.metric_latest_values(
            company_ids=None, metric_id=metric.pk, before=usage.day_start(ctx.day)
        ),
    )
    words = "below" if rule.operator == Operator.LT else "above"
    result = {}
    for pk in scope & values.keys():
        value = values[pk]
        met = value < rule.threshold if rule.operator == Operator.LT else value > rule.threshold
        facts = {
            "metric": metric.key,
            "value": value,
            "operator": rule.operator,
            "threshold": rule.threshold,
        }
        summary = (
            f"{metric.label or metric.key} is {_fmt(value)} (alert {words} {_fmt(rule.threshold)})"
        )
        result[pk] = Verdict(State.MET if met else State.CLEAR, facts, summary)
    return result


# --- health_band_change ----------------------------------------------------------------------


def _latest_scores(on_or_before: dt.date) -> dict[int, tuple[dt.date, float | None, str | None]]:
    """Each non-test company's latest score row on or before a day: (day, score, band)."""
    latest = HealthScore.objects.filter(company=OuterRef("pk"), day__lte=on_or_before).order_by(
        "-day"
    )
    ids = (
        Company.objects.filter(is_test=False)
        .annotate(sid=Subquery(latest.values("id")[:1]))
        .filter(sid__isnull=False)
        .values("sid")
    )
    return {
        company_id: (day, score, band)
        for company_id, day, score, band in HealthScore.objects.filter(pk__in=ids).values_list(
            "company_id", "day", "score", "band"
        )
    }


def health_band_change(rule: AlertRule, ctx: Context, scope: set[int]) -> dict[int, Verdict]:
    """Met when a company's band is ``to_band`` now and was another band at the rule's
    previous evaluation (or on the day before, for a rule's first one): a change seen even
    when an evaluation was missed. An active alert holds while the band stays, and clears
    when the band leaves ``to_band``. A company without an earlier band is not judged for
    opening (nothing changed yet)."""
    target = rule.to_band
    before = ctx.day - dt.timedelta(days=1)
    if rule.last_evaluated_day is not None:
        before = min(before, rule.last_evaluated_day)
    current = ctx.memo(("scores", ctx.day), lambda: _latest_scores(ctx.day))
    previous = ctx.memo(("scores", before), lambda: _latest_scores(before))
    result = {}
    for pk in scope & current.keys():
        day, score, band = current[pk]
        _, prev_score, prev_band = previous.get(pk, (None, None, None))
        facts = {
            "to_band": target,
            "band": band,
            "score": score,
            "score_day": day.isoformat(),
            "previous_band": prev_band,
            "previous_score": prev_score,
        }
        if band != target:
            result[pk] = Verdict(State.CLEAR, facts, f"health band is {band or 'none'}")
            continue
        changed = prev_band is not None and prev_band != target
        summary = f"health band changed from {prev_band} to {band} (score {score})"
        if not changed:
            summary = f"health band is {band} (score {score})"
        result[pk] = Verdict(State.MET if changed else State.HOLDING, facts, summary)
    return result


CONDITIONS: dict[str, Callable[[AlertRule, Context, set[int]], dict[int, Verdict]]] = {
    RuleKind.USAGE_DROP: usage_drop,
    RuleKind.INACTIVITY: inactivity,
    RuleKind.ACTIVE_ENDUSERS_BELOW: active_endusers_below,
    RuleKind.METRIC_THRESHOLD: metric_threshold,
    RuleKind.HEALTH_BAND_CHANGE: health_band_change,
}
