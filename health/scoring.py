"""From figures to impacts to a score: pure functions, no database.

- less than / more than / equal to / not equal to: the fixed impact when the condition
  holds, 0 when it does not (the factor has data, so its weight still counts);
- linear: the impact scaled across [range_min, range_max] from impact_at_min to
  impact_at_max, clamped at the range's ends;
- linear bounded: as linear inside the range, 0 outside it ("no impact");
- a factor without data is left out of both sums.

score = 5 + Σ(weight × impact) / Σ(weight), clamped to 0–10 and rounded to one decimal.
Each factor's ``contribution`` is weight × impact / Σ(weight), so 5 + Σ contributions is
the score before rounding.
"""

from __future__ import annotations

from dataclasses import dataclass

from .models import IMPACT_MAX, IMPACT_MIN, Condition

EQUAL_TOLERANCE = 1e-9
BASE = 5.0


def _fmt(value: float) -> str:
    return f"{value:,.2f}".rstrip("0").rstrip(".") if value != int(value) else f"{value:,.0f}"


def _signed(value: float) -> str:
    return f"{value:+.2f}".rstrip("0").rstrip(".")


@dataclass(frozen=True)
class Rule:
    """The condition part of a factor (a HealthFactor satisfies it)."""

    condition: str
    threshold: float | None = None
    impact: float | None = None
    range_min: float | None = None
    range_max: float | None = None
    impact_at_min: float | None = None
    impact_at_max: float | None = None


def impact_of(rule, value: float) -> tuple[float, str]:
    """The impact of one figure under a factor's condition, and why, in words."""
    condition = rule.condition
    if condition in (Condition.LT, Condition.GT, Condition.EQ, Condition.NE):
        threshold = float(rule.threshold)
        holds = {
            Condition.LT: value < threshold,
            Condition.GT: value > threshold,
            Condition.EQ: abs(value - threshold) <= EQUAL_TOLERANCE,
            Condition.NE: abs(value - threshold) > EQUAL_TOLERANCE,
        }[condition]
        words = Condition(condition).label
        if holds:
            impact = float(rule.impact)
            return impact, f"{words} {_fmt(threshold)}: impact {_signed(impact)}"
        return 0.0, f"not {words} {_fmt(threshold)}: no impact"
    low, high = float(rule.range_min), float(rule.range_max)
    at_low, at_high = float(rule.impact_at_min), float(rule.impact_at_max)
    span = f"{_fmt(low)}…{_fmt(high)} → {_signed(at_low)}…{_signed(at_high)}"
    if condition == Condition.LINEAR_BOUNDED and not low <= value <= high:
        return 0.0, f"outside {_fmt(low)}…{_fmt(high)}: no impact"
    clamped = min(max(value, low), high)
    fraction = (clamped - low) / (high - low)
    impact = at_low + fraction * (at_high - at_low)
    impact = min(max(impact, IMPACT_MIN), IMPACT_MAX)
    note = " (clamped)" if clamped != value else ""
    return impact, f"linear {span}{note}: impact {_signed(round(impact, 2))}"


@dataclass(frozen=True)
class FactorResult:
    factor_id: int | None
    label: str
    figure: str
    value: float | None
    impact: float | None
    weight: float
    why: str


@dataclass(frozen=True)
class ScoreResult:
    score: float | None
    entries: list[dict]
    note: str


def score_of(results: list[FactorResult]) -> ScoreResult:
    """The score and its breakdown from each factor's figure and impact."""
    with_data = [r for r in results if r.impact is not None]
    total_weight = sum(r.weight for r in with_data)
    entries = []
    for r in results:
        contribution = None
        if r.impact is not None and total_weight:
            contribution = round(r.weight * r.impact / total_weight, 4)
        entries.append(
            {
                "factor_id": r.factor_id,
                "label": r.label,
                "figure": r.figure,
                "value": None if r.value is None else round(r.value, 4),
                "impact": None if r.impact is None else round(r.impact, 4),
                "weight": r.weight,
                "contribution": contribution,
                "why": r.why,
            }
        )
    if not with_data or not total_weight:
        reason = "no factor has data" if results else "the profile has no factors"
        return ScoreResult(None, entries, f"No score: {reason}.")
    raw = BASE + sum(r.weight * r.impact for r in with_data) / total_weight
    score = round(min(max(raw, 0.0), 10.0), 1)
    return ScoreResult(score, entries, "")
