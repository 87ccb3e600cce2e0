"""Plain-words validation of profiles and factors, shared by the admin forms and the API.

Each function takes a dict of field values and returns ``{field: message}`` for every
problem (empty when the input is fine), so both surfaces name the same field the same way.
"""

from __future__ import annotations

import math
from typing import Any

from .models import (
    FIGURES_WITH_ACTION,
    FIGURES_WITH_METRIC,
    FIGURES_WITH_WINDOW,
    FIXED_CONDITIONS,
    IMPACT_MAX,
    IMPACT_MIN,
    LINEAR_CONDITIONS,
    Condition,
    Figure,
)

# The profile fields profile_problems reads (the model's clean and the API check these).
PROFILE_CHECKED_FIELDS = (
    "currency",
    "currency_rates",
    "green_min",
    "amber_min",
    "custom_field",
    "custom_value",
    "is_default",
    "min_mrr",
)
CONDITION_WORDS = dict(Condition.choices)
FIGURE_WORDS = dict(Figure.choices)


def _number(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _is_currency(value: Any) -> bool:
    return isinstance(value, str) and len(value) == 3 and value.isalpha()


def _impact_problem(name: str, value: Any, when: str) -> str | None:
    number = _number(value)
    if number is None:
        return f"Give {name} ({when}): a number from {IMPACT_MIN:g} to +{IMPACT_MAX:g}."
    if not IMPACT_MIN <= number <= IMPACT_MAX:
        return f"{name} must lie between {IMPACT_MIN:g} and +{IMPACT_MAX:g}; got {number:g}."
    return None


def factor_problems(data: dict[str, Any]) -> dict[str, str]:
    """Problems of one factor's fields: what its figure and its condition need."""
    problems: dict[str, str] = {}
    figure = data.get("figure")
    condition = data.get("condition")
    if figure not in FIGURE_WORDS:
        problems["figure"] = "Choose what the factor reads: one of " + ", ".join(FIGURE_WORDS)
    if condition not in CONDITION_WORDS:
        problems["condition"] = "Choose a condition: one of " + ", ".join(CONDITION_WORDS)

    window = data.get("window_days")
    if figure in FIGURES_WITH_WINDOW:
        if window in (None, ""):
            problems["window_days"] = (
                f"The figure '{FIGURE_WORDS[figure]}' needs window_days (N days, 1 to 730)."
            )
        elif not isinstance(window, int) or not 1 <= window <= 730:
            problems["window_days"] = "window_days must be a whole number of days from 1 to 730."
    elif window not in (None, "") and figure in FIGURE_WORDS:
        problems["window_days"] = f"The figure '{FIGURE_WORDS[figure]}' takes no window_days."

    if data.get("action") and figure in FIGURE_WORDS and figure not in FIGURES_WITH_ACTION:
        problems["action"] = "Only activity counts and activity changes can name an action."
    if data.get("weighted") and figure != Figure.ACTIVITY_COUNT and figure in FIGURE_WORDS:
        problems["weighted"] = "Only an activity count can be weighted."

    metric = data.get("metric")
    if figure in FIGURES_WITH_METRIC and metric in (None, ""):
        problems["metric"] = f"The figure '{FIGURE_WORDS[figure]}' needs a metric."
    elif figure not in FIGURES_WITH_METRIC and metric not in (None, "") and figure:
        problems["metric"] = "Only metric figures take a metric."

    currency = data.get("currency") or ""
    if currency:
        if figure != Figure.MRR:
            problems["currency"] = "Only the MRR figure takes a currency."
        elif not _is_currency(currency):
            problems["currency"] = "Use a three-letter ISO 4217 code, e.g. USD (or leave blank)."

    if condition in FIXED_CONDITIONS:
        words = CONDITION_WORDS[condition]
        if _number(data.get("threshold")) is None:
            problems["threshold"] = f"The condition '{words}' needs a threshold (a number)."
        problem = _impact_problem("impact", data.get("impact"), f"when '{words}' holds")
        if problem:
            problems["impact"] = problem
        for name in ("range_min", "range_max", "impact_at_min", "impact_at_max"):
            if data.get(name) is not None:
                problems[name] = (
                    f"The condition '{words}' takes no {name}; use threshold and impact."
                )
    elif condition in LINEAR_CONDITIONS:
        low, high = _number(data.get("range_min")), _number(data.get("range_max"))
        if low is None:
            problems["range_min"] = "A linear condition needs range_min (a number)."
        if high is None:
            problems["range_max"] = "A linear condition needs range_max (a number)."
        if low is not None and high is not None and low >= high:
            problems["range_max"] = (
                f"range_max ({high:g}) must be greater than range_min ({low:g})."
            )
        for name in ("impact_at_min", "impact_at_max"):
            problem = _impact_problem(name, data.get(name), "a linear condition")
            if problem:
                problems[name] = problem
        for name in ("threshold", "impact"):
            if data.get(name) is not None:
                problems[name] = (
                    f"A linear condition takes no {name}; use range_min / range_max and "
                    "impact_at_min / impact_at_max."
                )

    weight = _number(data.get("weight", 1.0))
    if weight is None or not 0.01 <= weight <= 1000:
        problems["weight"] = "weight must be a number from 0.01 to 1000."
    return problems


def profile_problems(data: dict[str, Any]) -> dict[str, str]:
    """Problems of a profile's own fields (its factors are checked one by one)."""
    problems: dict[str, str] = {}
    currency = data.get("currency")
    if currency is not None and not _is_currency(currency):
        problems["currency"] = "Use a three-letter ISO 4217 code, e.g. USD."
    rates = data.get("currency_rates")
    if rates is not None:
        if not isinstance(rates, dict):
            problems["currency_rates"] = 'Give rates as an object, e.g. {"EUR": 1.08}.'
        else:
            for code, rate in rates.items():
                number = _number(rate)
                if not _is_currency(code):
                    problems["currency_rates"] = (
                        f"'{code}' is not a three-letter currency code (e.g. EUR)."
                    )
                    break
                if number is None or number <= 0:
                    problems["currency_rates"] = (
                        f"The rate for {code} must be a positive number; got {rate!r}."
                    )
                    break
    green, amber = _number(data.get("green_min")), _number(data.get("amber_min"))
    if "green_min" in data and (green is None or not 0 <= green <= 10):
        problems["green_min"] = "green_min must be a score from 0 to 10."
    if "amber_min" in data and (amber is None or not 0 <= amber <= 10):
        problems["amber_min"] = "amber_min must be a score from 0 to 10."
    if green is not None and amber is not None and amber > green:
        problems["amber_min"] = (
            f"amber_min ({amber:g}) cannot be above green_min ({green:g}): "
            "amber is the band below green."
        )
    if (
        data.get("is_default") is False
        and data.get("min_mrr") in (None, "")
        and not data.get("custom_field")
    ):
        problems["min_mrr"] = (
            "A profile other than the default needs a filter: set min_mrr and/or "
            "custom_field with custom_value (or make it the default profile)."
        )
    if data.get("custom_value") and not data.get("custom_field"):
        problems["custom_field"] = "Name the custom field whose value the filter compares."
    return problems
