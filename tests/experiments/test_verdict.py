"""Verdicts (src/actadapt/experiments/verdict.py): every rule, in its order, and the rules' text."""

import re

import pytest

from actadapt.experiments.verdict import (
    MIN_UNITS,
    NOT_DECIDABLE,
    NOT_REPRODUCED,
    REPRODUCED,
    RULES_MARKDOWN,
    SMALL,
    SMALLER,
    verdict,
)


def ours(mean, lo, hi, n=5, at_chance=None, a=("AGumb", "AReLU"), b=("ReLU", "ReLU")):
    return {"n": n, "mean": mean, "ci_low": lo, "ci_high": hi,
            "at_chance": {"a": 0, "b": 0, "both": 0, **(at_chance or {})},
            "a": {"row": a[0], "column": a[1]}, "b": {"row": b[0], "column": b[1]}}


@pytest.mark.parametrize("paper, result, expected, rule", [
    # 1: a cell not in the run
    (1.7, None, NOT_DECIDABLE, "rule 1"),
    # 2: too few units
    (1.7, {"n": 1, "mean": 2.0, "ci_low": None, "ci_high": None}, NOT_DECIDABLE, "rule 2"),
    (1.7, {"n": 0, "mean": None, "ci_low": None, "ci_high": None}, NOT_DECIDABLE, "rule 2"),
    # 3: both at chance in every unit, whatever the interval says
    (26.4, ours(0.0, 0.0, 0.0, at_chance={"a": 5, "b": 5, "both": 5}), NOT_DECIDABLE, "rule 3"),
    # 4-6: the paper reports about the same
    (0.1, ours(0.05, -0.2, 0.3), REPRODUCED, "rule 4"),
    (0.0, ours(-0.1, -0.3, 0.1), REPRODUCED, "rule 4"),
    (-0.2, ours(1.0, 0.5, 1.5), NOT_REPRODUCED, "rule 5"),
    (-0.2, ours(-1.85, -3.32, -0.38), NOT_REPRODUCED, "rule 5"),  # same sign, but far beyond "about the same"
    (0.3, ours(0.2, -1.0, 1.4), NOT_DECIDABLE, "rule 6"),
    (-0.1, ours(-0.84, -1.66, -0.03), NOT_DECIDABLE, "rule 6"),  # excludes 0, not beyond T
    # 7: a claimed difference, interval excluding 0
    (1.3, ours(1.5, 0.9, 2.1), REPRODUCED, "rule 7"),
    (1.3, ours(0.21, 0.06, 0.37), REPRODUCED, "rule 7"),  # smaller, but the direction established
    (-1.7, ours(-24.8, -27.3, -22.3), REPRODUCED, "rule 7"),
    (0.6, ours(-6.9, -12.6, -1.25), NOT_REPRODUCED, "rule 7"),
    # 8: includes 0, excludes p
    (1.7, ours(0.08, -0.03, 0.19), SMALLER, "rule 8"),
    (1.7, ours(-0.1, -0.5, 0.3), NOT_REPRODUCED, "rule 8"),
    (-0.6, ours(0.0, -0.2, 0.2), NOT_REPRODUCED, "rule 8"),  # m = 0 has no sign: not the paper's
    # 9: includes both
    (-0.4, ours(-0.11, -2.42, 2.19), NOT_DECIDABLE, "rule 9"),
    (0.4, ours(-0.92, -3.2, 1.36), NOT_DECIDABLE, "rule 9"),
])
def test_each_rule(paper, result, expected, rule):
    got, reason = verdict(paper, result, "cell ReLU/ReLU")
    assert got == expected and reason.startswith(rule + ":")


def test_boundaries_are_inclusive():
    assert verdict(SMALL, ours(SMALL, -SMALL, SMALL))[0] == REPRODUCED  # |p| = T is small; [-T, T] is within
    assert verdict(0.31, ours(0.2, 0.0, 0.4))[1].startswith("rule 9")  # lo = 0: the interval includes 0
    assert verdict(1.0, ours(0.5, 0.1, 1.0))[1] == "rule 7: interval excludes 0, on the side of the paper's +1.00"


def test_reasons_say_what_qualifies_the_verdict():
    assert verdict(0.0, None, "cell ReLU/ReLU")[1] == "rule 1: cell ReLU/ReLU not in this run"
    assert verdict(1.3, ours(0.21, 0.06, 0.37))[1].endswith("; ours smaller")
    assert verdict(-1.7, ours(-24.8, -27.3, -22.3))[1].endswith("; ours larger")
    reason = verdict(-26.8, ours(-25.5, -27.8, -23.2, at_chance={"a": 5}))[1]
    assert reason.endswith("; AGumb/AReLU at chance level in every unit")
    assert "at chance" not in verdict(-26.8, ours(-25.5, -27.8, -23.2, at_chance={"a": 4}))[1]


def test_the_rules_text_is_the_docstring_and_names_the_constants():
    numbered = re.findall(r"^(\d)\. ", RULES_MARKDOWN, re.M)
    assert numbered == [str(i) for i in range(1, 10)]
    assert f"*T* = {SMALL} points" in RULES_MARKDOWN and f"fewer than {MIN_UNITS} paired units" in RULES_MARKDOWN
    assert ":func:" not in RULES_MARKDOWN  # the document shows plain markdown
