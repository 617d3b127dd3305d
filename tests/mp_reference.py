"""High-precision reference values (mpmath) for every built-in family, in both forms.

Independent of the library's formulas: each quantity is the textbook expression evaluated with 60 (or
more) significant digits, using mpmath's own log1p/expm1/erfc, and a short Taylor series only where even
that precision would cancel (alpha * e^x below 1e-20).

``reference(family, form, x, alpha)`` returns three (value, scale) pairs, for sigma, d sigma/dx and
d sigma/dalpha. ``scale`` is what the relative error is measured against: |value|, except for the gated
d/dx = F + x F_x, whose two terms can cancel (Swish's zero crossing); there it is |F| + |x F_x|.
"""

from __future__ import annotations

import mpmath as mp

mp.mp.dps = 60

Pair = tuple  # (value, scale) as mpf


def _gumbel(x, a):
    z = mp.exp(x)
    v = a * z
    L = mp.log1p(v) / a
    F = -mp.expm1(-L)
    S = mp.exp(-L)
    F_x = S * z / (1 + v)
    if abs(v) < mp.mpf("1e-20"):
        psi = v**2 / 2 - 2 * v**3 / 3 + 3 * v**4 / 4  # log1p(v) - v/(1+v)
    else:
        with mp.workdps(120):
            psi = mp.log1p(v) - v / (1 + v)
    F_a = -S * psi / a**2
    return F, F_x, F_a


def _exponential(x, a):
    if x <= 0:
        return mp.mpf(0), mp.mpf(0), mp.mpf(0)
    e = mp.exp(-a * x)
    return -mp.expm1(-a * x), a * e, x * e


def _logistic(x, a):
    t = a * x
    s = 1 / (1 + mp.exp(-t))
    s_neg = 1 / (1 + mp.exp(t))
    return s, a * s * s_neg, x * s * s_neg


def _normal(x, a):
    t = a * x
    phi = mp.exp(-t * t / 2) / mp.sqrt(2 * mp.pi)
    return mp.erfc(-t / mp.sqrt(2)) / 2, a * phi, x * phi


def _laplace(x, a):
    t = a * x
    half = mp.exp(-abs(t)) / 2
    return (half if t < 0 else 1 - half), a * half, x * half


def _cauchy(x, a):
    t = a * x
    with mp.workdps(100):
        F = mp.mpf(1) / 2 + mp.atan(t) / mp.pi
    d = 1 / (mp.pi * (1 + t * t))
    return F, a * d, x * d


CDFS = {
    "gumbel": _gumbel,
    "exponential": _exponential,
    "logistic": _logistic,
    "normal": _normal,
    "laplace": _laplace,
    "cauchy": _cauchy,
}


def reference(family: str, form: str, x: float, alpha: float) -> tuple[Pair, Pair, Pair]:
    """(value, scale) for sigma, d/dx, d/dalpha at the exact binary values of ``x`` and ``alpha``."""
    xm, am = mp.mpf(x), mp.mpf(alpha)
    F, F_x, F_a = CDFS[family](xm, am)
    if form == "bounded":
        return (F, abs(F)), (F_x, abs(F_x)), (F_a, abs(F_a))
    y, dx_terms, da = xm * F, (F, xm * F_x), xm * F_a
    dx = dx_terms[0] + dx_terms[1]
    return (y, abs(y)), (dx, abs(dx_terms[0]) + abs(dx_terms[1])), (da, abs(da))
