r"""Does a paired difference reproduce the paper's? One verdict per claim, by fixed rules applied in order.

Inputs: the paper's difference *p* (its value of cell a minus its value of cell b, in points) and ours: *n*
paired units, the mean paired difference *m* and its 95% interval [*lo*, *hi*]. *T* = 0.3 points: the paper
rounds its cells to 0.1 and gives standard errors of up to 0.22 per cell (Table 1; 0.17 in Table 3), about 0.3
for a difference of two cells, so a difference |*p*| <= *T* is the paper reporting "about the same" (its sign
is within the paper's own rounding and noise), and a larger one is a claim of a difference in that direction.
"*m* has the sign of *p*" compares signs -1, 0, +1. The first rule that applies gives the verdict:

1. **not decidable here**: a cell of the comparison is not in the run.
2. **not decidable here**: fewer than 2 paired units: no interval.
3. **not decidable here**: in every paired unit both models stayed at chance level (an accuracy at most 1
   point above the majority-class rate): neither learned at this budget.

When the paper reports about the same (|*p*| <= *T*):

4. **reproduced**: [*lo*, *hi*] lies within [-*T*, *T*]: no difference beyond *T*, as in the paper.
5. **not reproduced**: [*lo*, *hi*] lies beyond *T* on one side (*lo* > *T* or *hi* < -*T*): a difference
   larger than *T* where the paper has about none.
6. **not decidable here**: otherwise (the interval reaches beyond *T* but does not lie beyond it).

When the paper reports a difference (|*p*| > *T*):

7. [*lo*, *hi*] excludes 0: **reproduced** if *m* has the sign of *p* (the reason adds "ours smaller" or
   "ours larger" when the interval excludes *p*), else **not reproduced**.
8. [*lo*, *hi*] includes 0 but excludes *p*: **same direction, smaller** if *m* has the sign of *p* (the
   paper's size is excluded, our estimate points its way), else **not reproduced**.
9. **not decidable here**: [*lo*, *hi*] includes both 0 and *p*.

:func:`verdict` applies them to a comparison of :func:`.paired.compare` (*T* is :data:`SMALL`, the 2 units
:data:`MIN_UNITS`, chance level :data:`.paired.CHANCE_MARGIN`) and returns ``(verdict, reason)``, the reason
naming the rule and its numbers; the documents quote the rules above (:data:`RULES_MARKDOWN`, cut from this
docstring).
"""

from __future__ import annotations

from typing import Mapping, Optional, Tuple

__all__ = ["SMALL", "MIN_UNITS", "VERDICTS", "REPRODUCED", "SMALLER", "NOT_REPRODUCED", "NOT_DECIDABLE",
           "verdict", "RULES_MARKDOWN"]

SMALL = 0.3  # points: a paper difference at most this large is "about the same" (module notes)
MIN_UNITS = 2  # paired units needed for an interval
REPRODUCED, SMALLER, NOT_REPRODUCED, NOT_DECIDABLE = (
    "reproduced", "same direction, smaller", "not reproduced", "not decidable here")
VERDICTS = (REPRODUCED, SMALLER, NOT_REPRODUCED, NOT_DECIDABLE)

RULES_MARKDOWN = __doc__.split("\n\n", 1)[1].rsplit("\n\n", 1)[0]  # the rules above, for the documents


def _sign(x: float) -> int:
    return (x > 0) - (x < 0)


def _pts(x: float) -> str:
    return f"{x:+.2f}"


def verdict(paper: float, ours: Optional[Mapping], missing: str = "") -> Tuple[str, str]:
    """``(verdict, reason)`` of our comparison ``ours`` (``n``, ``mean``, ``ci_low``, ``ci_high``, ``at_chance``;
    or ``None``, with ``missing`` naming the cell not in the run) against the paper's difference ``paper``.

    The reason names the rule and adds what qualifies it: a cell whose model stayed at chance level in every
    paired unit."""
    verdict_, reason = _rule(paper, ours, missing)
    if ours is not None and ours["n"] and not reason.startswith(("rule 2", "rule 3")):
        chance = ours.get("at_chance") or {}
        stuck = [_cell(ours[k]) for k in ("a", "b") if k in ours and chance.get(k, 0) >= ours["n"]]
        if stuck:
            reason += f"; {' and '.join(stuck)} at chance level in every unit"
    return verdict_, reason


def _cell(c: Mapping) -> str:
    return f"{c['row']}/{c['column']}"


def _rule(paper: float, ours: Optional[Mapping], missing: str) -> Tuple[str, str]:
    if ours is None:
        return NOT_DECIDABLE, f"rule 1: {missing or 'a cell'} not in this run"
    n = ours["n"]
    if n < MIN_UNITS or ours.get("ci_low") is None:
        return NOT_DECIDABLE, f"rule 2: {n} paired unit{'s' if n != 1 else ''}, no interval"
    if (ours.get("at_chance") or {}).get("both", 0) >= n:
        return NOT_DECIDABLE, f"rule 3: both models at chance level in all {n} units"
    m, lo, hi, p = ours["mean"], ours["ci_low"], ours["ci_high"], paper
    if abs(p) <= SMALL:
        if -SMALL <= lo and hi <= SMALL:
            return REPRODUCED, f"rule 4: interval within ±{SMALL}, paper {_pts(p)}"
        if lo > SMALL or hi < -SMALL:
            return NOT_REPRODUCED, f"rule 5: interval beyond ±{SMALL}, paper {_pts(p)}"
        return NOT_DECIDABLE, f"rule 6: interval neither within nor beyond ±{SMALL}, paper {_pts(p)}"
    same = _sign(m) == _sign(p)
    if lo > 0 or hi < 0:
        if not same:
            return NOT_REPRODUCED, f"rule 7: interval excludes 0, on the other side of the paper's {_pts(p)}"
        size = "" if lo <= p <= hi else "; ours larger" if abs(p) < min(abs(lo), abs(hi)) else "; ours smaller"
        return REPRODUCED, f"rule 7: interval excludes 0, on the side of the paper's {_pts(p)}{size}"
    if not lo <= p <= hi:
        if same:
            return SMALLER, f"rule 8: interval includes 0, excludes the paper's {_pts(p)}, mean on its side"
        return NOT_REPRODUCED, f"rule 8: interval includes 0, excludes the paper's {_pts(p)}, mean not on its side"
    return NOT_DECIDABLE, f"rule 9: interval includes 0 and the paper's {_pts(p)}"
