"""Conditions, impacts and scores (pure functions, table-tested)."""

import pytest

from health.models import Condition
from health.scoring import FactorResult, Rule, impact_of, score_of


@pytest.mark.parametrize(
    ("rule", "value", "impact"),
    [
        # less than / more than: the fixed impact when true, 0 when not.
        (Rule(Condition.LT, threshold=10, impact=-3), 9.99, -3),
        (Rule(Condition.LT, threshold=10, impact=-3), 10, 0),
        (Rule(Condition.LT, threshold=10, impact=-3), 11, 0),
        (Rule(Condition.GT, threshold=10, impact=4), 10.5, 4),
        (Rule(Condition.GT, threshold=10, impact=4), 10, 0),
        (Rule(Condition.GT, threshold=-5, impact=-1), 0, -1),
        # equal / not equal
        (Rule(Condition.EQ, threshold=0, impact=-5), 0, -5),
        (Rule(Condition.EQ, threshold=0, impact=-5), 0.1, 0),
        (Rule(Condition.NE, threshold=0, impact=2), 3, 2),
        (Rule(Condition.NE, threshold=0, impact=2), 0, 0),
        # linear: scaled across the range, clamped at its ends
        (
            Rule(Condition.LINEAR, range_min=0, range_max=10, impact_at_min=-4, impact_at_max=4),
            5,
            0,
        ),
        (
            Rule(Condition.LINEAR, range_min=0, range_max=10, impact_at_min=-4, impact_at_max=4),
            0,
            -4,
        ),
        (
            Rule(Condition.LINEAR, range_min=0, range_max=10, impact_at_min=-4, impact_at_max=4),
            7.5,
            2,
        ),
        (
            Rule(Condition.LINEAR, range_min=0, range_max=10, impact_at_min=-4, impact_at_max=4),
            -20,
            -4,
        ),
        (
            Rule(Condition.LINEAR, range_min=0, range_max=10, impact_at_min=-4, impact_at_max=4),
            99,
            4,
        ),
        # decreasing linear (days since last activity: more days, worse)
        (
            Rule(Condition.LINEAR, range_min=1, range_max=30, impact_at_min=3, impact_at_max=-5),
            1,
            3,
        ),
        (
            Rule(Condition.LINEAR, range_min=1, range_max=30, impact_at_min=3, impact_at_max=-5),
            60,
            -5,
        ),
        # linear bounded: as linear inside (ends included), no impact outside
        (
            Rule(
                Condition.LINEAR_BOUNDED,
                range_min=-50,
                range_max=50,
                impact_at_min=-5,
                impact_at_max=5,
            ),
            -25,
            -2.5,
        ),
        (
            Rule(
                Condition.LINEAR_BOUNDED,
                range_min=-50,
                range_max=50,
                impact_at_min=-5,
                impact_at_max=5,
            ),
            50,
            5,
        ),
        (
            Rule(
                Condition.LINEAR_BOUNDED,
                range_min=-50,
                range_max=50,
                impact_at_min=-5,
                impact_at_max=5,
            ),
            -50,
            -5,
        ),
        (
            Rule(
                Condition.LINEAR_BOUNDED,
                range_min=-50,
                range_max=50,
                impact_at_min=-5,
                impact_at_max=5,
            ),
            50.01,
            0,
        ),
        (
            Rule(
                Condition.LINEAR_BOUNDED,
                range_min=-50,
                range_max=50,
                impact_at_min=-5,
                impact_at_max=5,
            ),
            -80,
            0,
        ),
    ],
)
def test_impact_of_each_condition(rule, value, impact):
    got, why = impact_of(rule, value)
    assert got == pytest.approx(impact)
    assert why  # every impact says why, in words


def test_impact_words_say_what_happened():
    assert impact_of(Rule(Condition.LT, threshold=10, impact=-3), 2)[1] == "less than 10: impact -3"
    assert "no impact" in impact_of(Rule(Condition.GT, threshold=10, impact=4), 1)[1]
    bounded = Rule(
        Condition.LINEAR_BOUNDED, range_min=0, range_max=1, impact_at_min=0, impact_at_max=1
    )
    assert impact_of(bounded, 3)[1].startswith("outside 0…1")
    clamped = Rule(Condition.LINEAR, range_min=0, range_max=1, impact_at_min=0, impact_at_max=1)
    assert "(clamped)" in impact_of(clamped, 3)[1]


def _result(impact, weight=1.0, value=1.0):
    return FactorResult(
        None, "f", "activity_count", None if impact is None else value, impact, weight, ""
    )


@pytest.mark.parametrize(
    ("results", "score"),
    [
        ([_result(0)], 5.0),
        ([_result(5)], 10.0),
        ([_result(-5)], 0.0),
        ([_result(4, weight=3), _result(-2, weight=1)], 7.5),  # 5 + (12 - 2) / 4
        ([_result(2.5, weight=2), _result(None, weight=10)], 7.5),  # no-data factor left out
        ([_result(1, weight=1), _result(1, weight=1), _result(-1, weight=1)], 5.3),  # 5.333 → 5.3
        ([_result(-3, weight=0.5), _result(5, weight=0.25)], 4.7),  # 5 + (-1.5+1.25)/0.75
    ],
)
def test_score_is_five_plus_weighted_mean_of_impacts(results, score):
    outcome = score_of(results)
    assert outcome.score == score
    contributions = [e["contribution"] for e in outcome.entries if e["impact"] is not None]
    # The breakdown adds up to the score (to its one-decimal rounding).
    assert round(5 + sum(contributions), 1) == score
    assert all(e["contribution"] is None for e in outcome.entries if e["impact"] is None)


def test_no_factor_with_data_gives_no_score_and_says_so():
    outcome = score_of([_result(None), _result(None, weight=3)])
    assert outcome.score is None
    assert outcome.note == "No score: no factor has data."
    assert score_of([]).note == "No score: the profile has no factors."
