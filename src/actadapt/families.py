r"""The cdf families: every adaptive activation is a distribution function :math:`F_\alpha`.

An activation is used in one of three *forms*:

.. math::
    \text{bounded:}\quad \sigma_\alpha(x) = F_\alpha(x) \qquad
    \text{gated:}\quad \sigma_\alpha(x) = x\,F_\alpha(x) \qquad
    \text{centred:}\quad \sigma_\alpha(x) = 2F_\alpha(2x) - 1

The first two are the paper's (PAPER.md §1). The centred form is the bounded one moved to the range
(-1, 1), the shape of ``tanh``: ``tanh(x) = 2 sigmoid(2x) - 1``, so the centred Gumbel and logistic
families are ``tanh`` at alpha = 1.

Each built-in family supplies two pure, elementwise functions of ``x`` and ``alpha`` (any broadcastable
shapes, floating point, ``alpha > 0``):

* ``cdf(x, alpha) -> F``
* ``cdf_and_grads(x, alpha) -> (F, dF/dx, dF/dalpha)``, the analytic derivatives (the paper's "one further
  equation" per neuron), written so that no intermediate overflows or cancels (see each function's notes).

The bounded and gated forms are applied in :mod:`actadapt._autograd`, the centred form on top of the
bounded one in :func:`actadapt.functional.adaptive_activation`. A user can register a new family from a plain
function of ``(x, alpha)``; autograd then supplies its derivatives.

The formulas here avoid ``torch.expm1``: ``torch.compile`` on CPU lowers ``expm1(v)`` to ``exp(v) - 1``,
which loses all relative accuracy for small ``v``. ``1 - exp(-L)`` is written as ``2 tanh(L/2) / (1 + tanh(L/2))``,
which both the eager and the compiled paths evaluate to a few ulp.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Mapping, Optional, Tuple

import torch
from torch import Tensor

__all__ = [
    "CdfFamily",
    "FORMS",
    "register_family",
    "get_family",
    "available_families",
    "implied_form",
    "resolve_form",
    "family_aliases",
    "one_minus_exp_neg",
]

FORMS = ("bounded", "gated", "centred")

CdfFn = Callable[[Tensor, Tensor], Tensor]
CdfGradsFn = Callable[[Tensor, Tensor], Tuple[Tensor, Tensor, Tensor]]


@dataclass(frozen=True)
class CdfFamily:
    """A registered cdf family.

    Attributes:
        name: registry key (lower case).
        cdf: ``F_alpha(x)``, elementwise and differentiable by autograd.
        cdf_and_grads: ``(F, dF/dx, dF/dalpha)`` computed analytically, or ``None`` for a user family, whose
            derivatives then come from autograd through ``cdf``.
        description: one line shown by :func:`available_families`.
    """

    name: str
    cdf: CdfFn
    cdf_and_grads: Optional[CdfGradsFn] = None
    description: str = ""

    @property
    def analytic(self) -> bool:
        """True when the family has analytic derivatives (and so the fused, memory-lean autograd path)."""
        return self.cdf_and_grads is not None


# --------------------------------------------------------------------------------------------- helpers
def one_minus_exp_neg(L: Tensor) -> Tensor:
    r""":math:`1 - e^{-L}` for :math:`L \ge 0`, accurate to a few ulp for tiny and huge ``L``.

    Uses :math:`1 - e^{-L} = 2\tau / (1 + \tau)` with :math:`\tau = \tanh(L/2)`. Unlike ``-expm1(-L)`` this
    survives ``torch.compile`` on CPU (which rewrites ``expm1`` as ``exp - 1``). ``L = inf`` gives 1.
    """
    tau = torch.tanh(0.5 * L)
    return 2.0 * tau / (1.0 + tau)


def _safe_log(alpha: Tensor) -> Tensor:
    # log(alpha), with alpha = 0 giving -inf (the Gumbel limit) rather than a warning or NaN downstream.
    return torch.log(alpha)


# ------------------------------------------------------------------------------ Box-Cox-Gumbel (eq. 1)
# Series coefficients of chi(w) = psi / w^2 = sum_{k>=2} w^(k-2) / k, used for w < _CHI_SWITCH.
_CHI_COEFFS = tuple(1.0 / k for k in range(2, 16))  # truncation error < 0.05**14/16 ~ 4e-20
_CHI_SWITCH = 0.05


def _chi(w: Tensor) -> Tensor:
    r""":math:`\chi(w) = \sum_{k\ge2} w^{k-2}/k = (-\log(1-w) - w)/w^2`, by Horner's rule (for small ``w``)."""
    acc = torch.full_like(w, _CHI_COEFFS[-1])
    for c in reversed(_CHI_COEFFS[:-1]):
        acc = acc * w + c
    return acc


def _gumbel_core(x: Tensor, alpha: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
    r"""The three stable pieces of eq. 1, with :math:`z = e^x`, :math:`v = \alpha z`:

    * :math:`L = \log(1 + v)/\alpha`, so that :math:`F = 1 - e^{-L}`;
    * :math:`D = \partial L/\partial x = z / (1 + v)`;
    * :math:`w = v / (1 + v) = \alpha D`.

    Two regimes, split at :math:`u = \log\alpha + x = \log v = 0`:

    * :math:`v \le 1`: :math:`L = z \cdot \log(1+v)/v` (continuous as :math:`\alpha \to 0`, where it gives
      the Gumbel cdf's :math:`L = e^x`), :math:`D = z/(1+v)`, and ``z`` cannot overflow because
      :math:`x \le -\log\alpha`;
    * :math:`v > 1`: :math:`L = \mathrm{softplus}(u)/\alpha`, :math:`w = \mathrm{sigmoid}(u)`,
      :math:`D = w/\alpha`, which never forms :math:`e^x` (finite results for :math:`x = 10^4`).

    Each branch is fed clamped inputs (the "double where"), so the unused branch never makes inf or NaN,
    neither in the values nor in autograd's gradients of them.
    """
    log_alpha = _safe_log(alpha)
    u = log_alpha + x
    small = u <= 0.0
    # regime v <= 1
    x_small = torch.minimum(x, -log_alpha)
    z = torch.exp(x_small)
    v = alpha * z
    # log(1+v)/v = 1 - v/2 + ...: exactly 1 in floating point below sqrt(tiny), where a subnormal v would
    # otherwise lose its precision (and v = 0 would give 0/0).
    v_normal = v > math.sqrt(torch.finfo(v.dtype).tiny)
    v_safe = torch.where(v_normal, v, torch.ones_like(v))
    log1p_over_v = torch.where(v_normal, torch.log1p(v_safe) / v_safe, torch.ones_like(v))
    L_small = z * log1p_over_v
    D_small = z / (1.0 + v)
    w_small = v / (1.0 + v)
    # regime v > 1 (alpha > 0 there)
    u_big = torch.clamp(u, min=0.0)
    alpha_big = torch.where(small, torch.ones_like(alpha), alpha)
    w_big = torch.sigmoid(u_big)
    L_big = (u_big + torch.log1p(torch.exp(-u_big))) / alpha_big
    D_big = w_big / alpha_big
    L = torch.where(small, L_small, L_big)
    D = torch.where(small, D_small, D_big)
    w = torch.where(small, w_small, w_big)
    return L, D, w


def gumbel_cdf(x: Tensor, alpha: Tensor) -> Tensor:
    r"""Box-Cox-Gumbel cdf (eq. 1): :math:`F_\alpha(x) = 1 - (1 + \alpha e^x)^{-1/\alpha}`.

    :math:`\alpha = 1` is the logistic sigmoid; :math:`\alpha \to 0` is the Gumbel cdf
    :math:`1 - \exp(-e^x)`. Computed as :math:`1 - e^{-L}` with ``L`` from :func:`_gumbel_core`, so there
    is no cancellation for :math:`x \ll 0` and no overflow for large :math:`\alpha e^x`.
    """
    L, _, _ = _gumbel_core(x, alpha)
    return one_minus_exp_neg(L)


def gumbel_cdf_and_grads(x: Tensor, alpha: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
    r"""Eq. 1 and its derivatives. With :math:`S = 1 - F = e^{-L}`:

    .. math::
        \frac{\partial F}{\partial x} = S\,D, \qquad
        \frac{\partial F}{\partial \alpha} = S\,\frac{\partial L}{\partial \alpha}, \qquad
        \frac{\partial L}{\partial \alpha} = \frac{w - \log(1+v)}{\alpha^2}
        = \begin{cases} -D^2\,\chi(w) & w < 0.05 \\ (D - L)/\alpha & \text{otherwise} \end{cases}

    where :math:`\chi(w) = (-\log(1-w) - w)/w^2 = \sum_{k\ge 2} w^{k-2}/k` removes the cancellation of
    :math:`w - \log(1+v) \approx -v^2/2` for small ``v`` (and gives :math:`-e^{2x}/2` at :math:`\alpha = 0`).
    """
    L, D, w = _gumbel_core(x, alpha)
    F = one_minus_exp_neg(L)
    S = torch.exp(-L)
    series = w < _CHI_SWITCH
    w_series = torch.where(series, w, torch.zeros_like(w))
    alpha_direct = torch.where(series, torch.ones_like(alpha), alpha)
    dL_dalpha = torch.where(series, -(D * D) * _chi(w_series), (D - L) / alpha_direct)
    return F, S * D, S * dL_dalpha


# ---------------------------------------------------------------------------- exponential (eq. 2)
def exponential_cdf(x: Tensor, alpha: Tensor) -> Tensor:
    r"""Exponential cdf (eq. 2): :math:`F_\alpha(x) = (1 - e^{-\alpha x})\,1\{x > 0\}`."""
    return one_minus_exp_neg(alpha * torch.relu(x))


def exponential_cdf_and_grads(x: Tensor, alpha: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
    r""":math:`\partial F/\partial x = \alpha e^{-\alpha x}` and :math:`\partial F/\partial\alpha = x e^{-\alpha x}`
    for :math:`x > 0`, else 0. Every factor is finite for :math:`|x| \le 10^4`, :math:`\alpha \le 10^3`."""
    x_pos = torch.relu(x)
    t = alpha * x_pos
    decay = torch.where(x > 0, torch.exp(-t), torch.zeros_like(t))
    return one_minus_exp_neg(t), alpha * decay, x_pos * decay


# ------------------------------------------------------------------------------- logistic (eq. 3)
def _sigmoid_pair(t: Tensor) -> Tuple[Tensor, Tensor]:
    r""":math:`(s(t), s(-t))` from one :math:`e = e^{-|t|}`: :math:`1/(1+e)` and :math:`e/(1+e)`.

    Unlike ``torch.sigmoid`` (``1/(1 + e^{-t})``, which is 0 once :math:`e^{-t}` overflows), the small side
    keeps full relative accuracy down to the subnormal range, and neither side is formed as ``1 - s``.
    """
    e = torch.exp(-torch.abs(t))
    big = 1.0 / (1.0 + e)
    small = e * big
    positive = t >= 0
    return torch.where(positive, big, small), torch.where(positive, small, big)


def logistic_cdf(x: Tensor, alpha: Tensor) -> Tensor:
    r"""Logistic cdf (eq. 3): :math:`F_\alpha(x) = 1/(1 + e^{-\alpha x})`; gated, this is Swish."""
    return _sigmoid_pair(alpha * x)[0]


def logistic_cdf_and_grads(x: Tensor, alpha: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
    r""":math:`\partial F/\partial t = s(t)\,s(-t)` with :math:`t = \alpha x`, both factors computed directly.

    Autograd's sigmoid rule uses :math:`s(1 - s)` from the rounded output, which loses all accuracy once
    :math:`s` rounds to 1; :math:`s(-t)` does not.
    """
    s, s_neg = _sigmoid_pair(alpha * x)
    density = s * s_neg
    return s, alpha * density, x * density


# --------------------------------------------------------------------------------- normal (GELU)
_INV_SQRT2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def normal_cdf(x: Tensor, alpha: Tensor) -> Tensor:
    r"""Normal cdf :math:`\Phi(\alpha x) = \tfrac12\,\mathrm{erfc}(-\alpha x/\sqrt2)`; gated with
    :math:`\alpha = 1` this is exact GELU. ``erfc`` keeps the lower tail relative-accurate."""
    return 0.5 * torch.special.erfc(-(alpha * x) * _INV_SQRT2)


def normal_cdf_and_grads(x: Tensor, alpha: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
    r""":math:`\partial F/\partial x = \alpha\varphi(\alpha x)`, :math:`\partial F/\partial\alpha = x\varphi(\alpha x)`."""
    t = alpha * x
    density = torch.exp(-0.5 * t * t) * _INV_SQRT_2PI
    return 0.5 * torch.special.erfc(-t * _INV_SQRT2), alpha * density, x * density


# -------------------------------------------------------------------------------- Laplace
def laplace_cdf(x: Tensor, alpha: Tensor) -> Tensor:
    r"""Laplace cdf with scale :math:`1/\alpha`: :math:`\tfrac12 e^{t}` for :math:`t < 0`, else
    :math:`1 - \tfrac12 e^{-t}`, with :math:`t = \alpha x` (exponential tails)."""
    t = alpha * x
    half_tail = 0.5 * torch.exp(-torch.abs(t))
    return torch.where(t < 0, half_tail, 1.0 - half_tail)


def laplace_cdf_and_grads(x: Tensor, alpha: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
    r""":math:`\partial F/\partial x = \tfrac{\alpha}{2} e^{-|\alpha x|}`, :math:`\partial F/\partial\alpha = \tfrac{x}{2} e^{-|\alpha x|}`."""
    t = alpha * x
    half_tail = 0.5 * torch.exp(-torch.abs(t))
    return torch.where(t < 0, half_tail, 1.0 - half_tail), alpha * half_tail, x * half_tail


# -------------------------------------------------------------------------------- Cauchy
def cauchy_cdf(x: Tensor, alpha: Tensor) -> Tensor:
    r"""Cauchy cdf with scale :math:`1/\alpha` (heavy, polynomial tails):
    :math:`\tfrac12 + \arctan(\alpha x)/\pi`, computed as :math:`\mathrm{atan2}(1, -\alpha x)/\pi`, which has
    no cancellation in the lower tail."""
    return torch.atan2(torch.ones_like(x), -(alpha * x)) / math.pi


def cauchy_cdf_and_grads(x: Tensor, alpha: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
    r""":math:`\partial F/\partial x = \alpha/(\pi(1 + t^2))`, :math:`\partial F/\partial\alpha = x/(\pi(1+t^2))`."""
    t = alpha * x
    density = 1.0 / (math.pi * (1.0 + t * t))
    return torch.atan2(torch.ones_like(t), -t) / math.pi, alpha * density, x * density


# ------------------------------------------------------------------------------- the registry
_REGISTRY: dict[str, CdfFamily] = {}
# alias -> (family key, the form the alias implies or None). An activation name such as "relu" names the
# family of its adaptive version and implies the form: adaptive ReLU is the exponential cdf, gated.
_ALIASES: dict[str, Tuple[str, Optional[str]]] = {}


def register_family(
    name: str,
    cdf: CdfFn,
    cdf_and_grads: Optional[CdfGradsFn] = None,
    *,
    description: str = "",
    aliases: "Tuple[str, ...] | Mapping[str, Optional[str]]" = (),
    overwrite: bool = False,
) -> CdfFamily:
    r"""Register a cdf family under ``name`` (case-insensitive) and return it.

    Args:
        name: registry key.
        cdf: ``F(x, alpha) -> Tensor``, an elementwise cdf in ``x`` for each ``alpha > 0``, written with
            differentiable torch operations. Without ``cdf_and_grads`` autograd supplies the derivatives.
        cdf_and_grads: optional analytic ``(F, dF/dx, dF/dalpha)``; enables the fused, input-only-saving path.
        description: shown by :func:`available_families`. Default: ``""``.
        aliases: other names for the family: a tuple of names, or a mapping ``{name: form}`` for names that
            also imply a form (``{"swish": "gated"}``; ``None`` for none). Default: ``()``.
        overwrite: replace an existing family of that name. Default: ``False``.

    Every registered family is also an activation name for :func:`actadapt.get_activation` and
    :func:`actadapt.convert`, in each form: ``"<name>_bounded"``, ``"<name>_gated"``, ``"<name>_centred"``.

    Example::

        >>> import torch, actadapt
        >>> fam = actadapt.register_family("tanh_cdf", lambda x, a: 0.5 * (1 + torch.tanh(a * x)), overwrite=True)
        >>> actadapt.adaptive_activation(torch.zeros(2), torch.ones(()), "tanh_cdf", "gated")
        tensor([0., 0.])
    """
    if not callable(cdf):
        raise TypeError(f"cdf must be a callable F(x, alpha) -> Tensor, got {type(cdf).__name__}")
    if cdf_and_grads is not None and not callable(cdf_and_grads):
        raise TypeError(f"cdf_and_grads must be callable or None, got {type(cdf_and_grads).__name__}")
    alias_forms = dict(aliases) if isinstance(aliases, Mapping) else dict.fromkeys(aliases)
    for form in alias_forms.values():
        if form is not None:
            check_form(form)
    key = name.lower()
    for k in (key, *(a.lower() for a in alias_forms)):
        if not overwrite and (k in _REGISTRY or k in _ALIASES):
            raise ValueError(f"cdf family {k!r} is already registered; pass overwrite=True to replace it")
    family = CdfFamily(key, cdf, cdf_and_grads, description)
    _REGISTRY[key] = family
    _ALIASES.pop(key, None)
    for alias, form in alias_forms.items():
        _ALIASES[alias.lower()] = (key, form)
    return family


def available_families() -> dict[str, str]:
    """Registered family names mapped to their one-line descriptions (aliases not included)."""
    return {name: fam.description for name, fam in sorted(_REGISTRY.items())}


def family_aliases() -> dict[str, Tuple[str, Optional[str]]]:
    """Every alias mapped to ``(family name, implied form or None)``, e.g. ``{"swish": ("logistic", "gated")}``."""
    return dict(sorted(_ALIASES.items()))


def _unknown(family: str) -> ValueError:
    return ValueError(
        f"unknown cdf family {family!r}; valid families: {', '.join(sorted(_REGISTRY))}; aliases: "
        f"{', '.join(sorted(_ALIASES))} (an activation name such as 'relu' or 'swish' names the family of its "
        "adaptive version; see actadapt.available_activations())"
    )


def get_family(family: "str | CdfFamily") -> CdfFamily:
    """Look up a family by name or alias (case-insensitive); a :class:`CdfFamily` passes through.

    Aliases include the names of the adaptive activations built on a family: ``"relu"``/``"arelu"`` give the
    exponential family (adaptive ReLU is its gated form), ``"swish"``/``"silu"`` the logistic one,
    ``"agumb"`` the Gumbel one, ``"gelu"`` the normal one. :func:`implied_form` says which form they imply.

    Raises:
        ValueError: for an unknown name, listing the valid ones.
    """
    if isinstance(family, CdfFamily):
        return family
    if not isinstance(family, str):
        raise TypeError(f"family must be a name or a CdfFamily, got {type(family).__name__}")
    key = family.lower()
    if key in _ALIASES:
        key = _ALIASES[key][0]
    if key not in _REGISTRY:
        raise _unknown(family)
    return _REGISTRY[key]


def implied_form(family: "str | CdfFamily") -> Optional[str]:
    """The form an alias implies (``"gated"`` for ``"relu"`` and ``"swish"``), else ``None``."""
    if isinstance(family, str):
        entry = _ALIASES.get(family.lower())
        if entry is not None:
            return entry[1]
    return None


def resolve_form(family: "str | CdfFamily", form: Optional[str]) -> str:
    """The form to use for ``family``: ``form`` if given, else the one the name implies, else ``"bounded"``.

    Raises:
        ValueError: for an unknown form, or a form that contradicts the name (``("swish", "bounded")``).
    """
    implied = implied_form(family)
    if form is None:
        return implied or "bounded"
    check_form(form)
    if implied is not None and form != implied:
        base = get_family(family).name
        raise ValueError(
            f"{family!r} is the {implied} form of the {base!r} family; for the {form} form name the family {base!r}"
        )
    return form


def check_form(form: str) -> str:
    """Validate a form name ('bounded', 'gated' or 'centred'), failing with the valid choices."""
    if form not in FORMS:
        raise ValueError(f"unknown form {form!r}; valid forms: {', '.join(FORMS)}")
    return form


register_family(
    "gumbel", gumbel_cdf, gumbel_cdf_and_grads,
    description="Box-Cox-Gumbel, eq. 1: 1 - (1 + alpha e^x)^(-1/alpha); alpha=1 sigmoid, alpha->0 Gumbel",
    aliases={"box-cox-gumbel": None, "boxcox_gumbel": None, "agumb": "bounded", "adaptive_gumbel": "bounded",
             "tanh": "centred", "adaptive_tanh": "centred"},
)
register_family(
    "exponential", exponential_cdf, exponential_cdf_and_grads,
    description="exponential, eq. 2: (1 - e^(-alpha x)) 1{x>0}; gated = adaptive ReLU",
    aliases={"exp": None, "relu": "gated", "arelu": "gated", "adaptive_relu": "gated"},
)
register_family(
    "logistic", logistic_cdf, logistic_cdf_and_grads,
    description="logistic, eq. 3: sigmoid(alpha x); gated = Swish, alpha=1 SiLU",
    aliases={"sigmoid": None, "swish": "gated", "silu": "gated", "aswish": "gated", "adaptive_swish": "gated"},
)
register_family(
    "normal", normal_cdf, normal_cdf_and_grads,
    description="normal: Phi(alpha x); gated with alpha=1 = GELU",
    aliases={"gaussian": None, "gelu": "gated"},
)
register_family(
    "laplace", laplace_cdf, laplace_cdf_and_grads,
    description="Laplace with scale 1/alpha (exponential tails)",
)
register_family(
    "cauchy", cauchy_cdf, cauchy_cdf_and_grads,
    description="Cauchy with scale 1/alpha (heavy tails): 1/2 + arctan(alpha x)/pi",
)
