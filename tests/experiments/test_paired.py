"""Paired differences (src/actadapt/experiments/paired.py): a textbook example, an exact reference, edge cases."""

import math
import random
from decimal import Decimal, getcontext
from fractions import Fraction

import pytest
from scipy import stats

from actadapt.experiments.paired import (
    CHANCE_MARGIN,
    Comparison,
    compare,
    format_comparison,
    paired_difference,
    unit_values,
)

# Student's sleep data (Cushny & Peebles 1905; R's datasets::sleep): extra hours of sleep of 10 patients under
# two drugs. R 4.x: t.test(extra ~ group, data = sleep, paired = TRUE) -> t = -4.0621, df = 9,
# 95 percent confidence interval -2.4598858 -0.7001142, mean difference -1.58 (group 1 - group 2).
SLEEP_1 = [0.7, -1.6, -0.2, -1.2, -0.1, 3.4, 3.7, 0.8, 0.0, 2.0]
SLEEP_2 = [1.9, 0.8, 1.1, 0.1, -0.1, 4.4, 5.5, 1.6, 4.6, 3.4]


def _units(values):
    return dict(enumerate(values))


def test_textbook_sleep_data_matches_r():
    res = paired_difference(_units(SLEEP_2), _units(SLEEP_1))
    assert res["n"] == 10 and res["df"] == 9
    assert res["mean"] == pytest.approx(1.58, abs=1e-12)
    # the differences 1.2 2.4 1.3 1.3 0 1 1.8 0.8 4.6 1.4: sd 1.229995 (by hand: sum of squares 13.616)
    assert res["sd"] == pytest.approx(math.sqrt(13.616 / 9), rel=1e-12)
    assert res["mean"] / res["se"] == pytest.approx(4.0621, abs=5e-5)
    assert res["ci_low"] == pytest.approx(0.7001142, abs=5e-8) and res["ci_high"] == pytest.approx(2.4598858, abs=5e-8)
    assert (res["favour_a"], res["favour_b"], res["ties"]) == (9, 0, 1)  # patient 5: -0.1 under both
    assert res["excluded"] == res["only_a"] == res["only_b"] == 0 and res["note"] is None


@pytest.mark.parametrize("n", [2, 3, 7, 25])
def test_against_an_exact_reference_and_scipy(n):
    rng = random.Random(n)
    a = [rng.uniform(50, 100) for _ in range(n)]
    b = [x - rng.gauss(0.5, 2.0) for x in a]
    res = paired_difference(_units(a), _units(b))
    # exact rational mean and variance of the float differences, square root in 40 digits
    d = [Fraction(x) - Fraction(y) for x, y in zip(a, b)]
    mean = sum(d) / n
    var = sum((x - mean) ** 2 for x in d) / (n - 1)
    getcontext().prec = 40
    se = float((Decimal(var.numerator) / Decimal(var.denominator) / n).sqrt())
    half = stats.t.ppf(0.975, n - 1) * se
    assert res["mean"] == pytest.approx(float(mean), rel=1e-13, abs=1e-13)
    assert res["se"] == pytest.approx(se, rel=1e-12)
    assert res["ci_low"] == pytest.approx(float(mean) - half, rel=1e-12, abs=1e-12)
    assert res["ci_high"] == pytest.approx(float(mean) + half, rel=1e-12, abs=1e-12)
    ci = stats.ttest_rel(a, b).confidence_interval(0.95)  # an independent routine
    assert (res["ci_low"], res["ci_high"]) == pytest.approx((ci.low, ci.high), rel=1e-9, abs=1e-9)


def test_other_confidence():
    res = paired_difference(_units(SLEEP_2), _units(SLEEP_1), confidence=0.9)
    ci = stats.ttest_rel(SLEEP_2, SLEEP_1).confidence_interval(0.9)
    assert res["confidence"] == 0.9 and (res["ci_low"], res["ci_high"]) == pytest.approx((ci.low, ci.high))


def test_one_unit_has_no_interval():
    res = paired_difference({0: 98.0}, {0: 97.5})
    assert res["n"] == 1 and res["mean"] == pytest.approx(0.5) and res["favour_a"] == 1
    assert res["se"] is res["ci_low"] is res["ci_high"] is res["df"] is None
    assert "one paired unit" in res["note"]
    assert format_comparison({**res, "paper": -0.4}) == {"paper": "-0.40", "ours": "+0.50",
                                                          "interval": "none (1 unit)", "units": "1 / 0 / 0"}


def test_no_shared_unit():
    res = paired_difference({0: 1.0, 1: 2.0}, {2: 1.0})
    assert res["n"] == 0 and res["mean"] is None and res["only_a"] == 2 and res["only_b"] == 1
    assert "no unit" in res["note"]
    assert format_comparison({**res, "paper": None})["ours"] == "n/a"


def test_ties_and_equal_differences():
    res = paired_difference(_units([90.0, 91.0, 92.0]), _units([90.0, 91.0, 92.0]))
    assert (res["favour_a"], res["favour_b"], res["ties"]) == (0, 0, 3)
    assert res["mean"] == 0 and res["se"] == 0 and (res["ci_low"], res["ci_high"]) == (0, 0)
    # every difference the same: the interval is that point (no spread to widen it)
    res = paired_difference(_units([90.5, 91.5]), _units([90.0, 91.0]))
    assert (res["ci_low"], res["ci_high"]) == (0.5, 0.5) and res["favour_a"] == 2


def test_only_shared_units_are_paired():
    a = {(0, 0): 80.0, (0, 1): 82.0, (1, 0): 84.0, (1, 1): 79.0}
    b = {(0, 0): 79.0, (0, 1): 81.0, (1, 0): 85.0, (2, 0): 70.0}
    res = paired_difference(a, b)
    assert res["n"] == 3 and res["units"] == [[0, 0], [0, 1], [1, 0]]
    assert res["differences"] == [1.0, 1.0, -1.0] and res["mean"] == pytest.approx(1 / 3)
    assert (res["only_a"], res["only_b"], res["excluded"]) == (1, 1, 0)
    assert "only in a 1, only in b 1" in format_comparison({**res, "paper": 0.0})["units"]


@pytest.mark.parametrize("bad", [None, math.nan, math.inf, -math.inf])
def test_non_finite_units_are_excluded_and_counted(bad):
    res = paired_difference({0: 80.0, 1: bad, 2: 82.0, 3: 81.0}, {0: 79.0, 1: 80.0, 2: bad, 3: 80.0})
    assert res["n"] == 2 and res["excluded"] == 2 and res["differences"] == [1.0, 1.0]
    assert format_comparison({**res, "paper": 1.0})["units"] == "2 / 0 / 0 (excluded 2)"


def _rec(row, col, draw, fold, acc, majority=0.5, **extra):
    return {"row": row, "column": col, "draw": draw, "fold": fold, "accuracy": acc, "majority_rate": majority,
            **extra}


def test_diverged_records_are_excluded():
    recs = [_rec("r", "A", 0, 0, 0.9), _rec("r", "A", 0, 1, 0.5, diverged=True), _rec("r", "A", 1, 0, None)]
    assert unit_values(recs, "r", "A", "accuracy") == {(0, 0): 90.0, (0, 1): None, (1, 0): None}


def test_compare_records():
    recs = [_rec("1/Sig", s, d, f, acc) for s, accs in (("AGumb", [0.97, 0.96, 0.98, 0.95]),
                                                        ("Sig", [0.95, 0.96, 0.96, 0.5]))
            for (d, f), acc in zip([(0, 0), (0, 1), (1, 0), (1, 1)], accs)]
    paper = {"AGumb": 97.5, "Sig": 95.8}
    comp = Comparison(("1/Sig", "AGumb"), ("1/Sig", "Sig"), "AGumb vs Sig", "1/Sig: AGumb - Sig")
    [res] = compare(recs, [comp], "accuracy", lambda row, col: paper[col])
    assert res["paper"] == 1.7  # 97.5 - 95.8, rounded: not 1.7000000000000028
    assert res["label"] == "1/Sig: AGumb - Sig" and res["kind"] == "AGumb vs Sig"
    assert res["a"] == {"row": "1/Sig", "column": "AGumb"} and res["metric"] == "accuracy"
    assert res["differences"] == pytest.approx([2.0, 0.0, 2.0, 45.0])
    assert (res["favour_a"], res["favour_b"], res["ties"]) == (3, 0, 1)
    # Sig's last unit (50%, majority 50%) is at chance level, AGumb's never
    assert res["at_chance"] == {"a": 0, "b": 1, "both": 0}
    [res] = compare(recs, [comp], "accuracy")
    assert res["paper"] is None


def test_chance_level_margin():
    assert CHANCE_MARGIN == 1.0  # points: 0.5 above the majority rate is at chance, 2 above is not
    recs = [_rec("r", "A", 0, 0, 0.505, majority=0.5), _rec("r", "B", 0, 0, 0.52),
            _rec("r", "A", 0, 1, 0.5), _rec("r", "B", 0, 1, 0.5)]
    comp = Comparison(("r", "A"), ("r", "B"), "k", "A - B")
    [res] = compare(recs, [comp], "accuracy")
    assert res["at_chance"] == {"a": 2, "b": 1, "both": 1}
