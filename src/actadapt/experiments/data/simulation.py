r"""Teacher networks and their labelled data for the simulation of PAPER.md §2.1 (Table 1).

A teacher is a fully connected network, ``n_features`` inputs, ``depth`` hidden layers of ``width`` neurons
with a fixed activation (sigmoid or ReLU) and one output unit. Its parameters are

* weights from the equal mixture :math:`\tfrac12 N(-1, s^2) + \tfrac12 N(+1, s^2)`,
* biases from :math:`N(0, s_b^2)`,

with :math:`s = s_b = 0.5` read as a standard deviation by default (``spread_is="variance"`` reads 0.5 as
:math:`s^2`). The paper is silent on three things, each an option here (the defaults are stated in the
report):

* ``input_dist``: ``"normal"`` (default, :math:`x \sim N(0, I)`) or ``"uniform"`` (:math:`U(-1, 1)^{10}`);
* ``spread_is``: ``"sd"`` (default) or ``"variance"``;
* ``label_rule``: how the binary label comes from the teacher's output logit :math:`t(x)`:

  - ``"sign"`` (default): :math:`y = 1\{t(x) > 0\}`, i.e. the teacher's sigmoid output rounded;
  - ``"bernoulli"``: :math:`y \sim \mathrm{Bernoulli}(\mathrm{sigmoid}(t(x)))`, a noisy teacher;
  - ``"median"``: :math:`y = 1\{t(x) > \mathrm{median}(t)\}`, balanced classes whatever the draw.

Everything is drawn from a ``torch.Generator`` seeded by the caller, in a fixed order, so a teacher and its
data are a pure function of the seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Dict, List, Tuple

import torch
from torch import Tensor

from ..config import option

__all__ = [
    "INPUT_DISTS",
    "SPREAD_KINDS",
    "LABEL_RULES",
    "TEACHER_ACTIVATIONS",
    "Teacher",
    "make_teacher",
    "sample_inputs",
    "make_labels",
    "make_dataset",
    "redraw_dataset",
    "TeacherKeys",
]

INPUT_DISTS = ("normal", "uniform")
SPREAD_KINDS = ("sd", "variance")
LABEL_RULES = ("sign", "bernoulli", "median")
TEACHER_ACTIVATIONS = {"Sig": torch.sigmoid, "ReLU": torch.relu}


def _choice(name: str, value: str, valid) -> str:
    if value not in valid:
        raise ValueError(f"unknown {name} {value!r}; valid choices: {', '.join(valid)}")
    return value


@dataclass
class Teacher:
    """A drawn teacher: ``weights[l]`` is ``(fan_in, fan_out)``, ``biases[l]`` is ``(fan_out,)``.

    The last entry of each list is the output layer (``width -> 1``).
    """

    weights: List[Tensor]
    biases: List[Tensor]
    activation: str

    @property
    def depth(self) -> int:
        return len(self.weights) - 1

    def logit(self, x: Tensor) -> Tensor:
        """The output before the sigmoid, :math:`t(x)`, shape ``(n,)`` for ``x`` of shape ``(n, n_features)``."""
        act = TEACHER_ACTIVATIONS[self.activation]
        h = x
        for W, b in zip(self.weights[:-1], self.biases[:-1]):
            h = act(h @ W + b)  # (n, width)
        return (h @ self.weights[-1] + self.biases[-1]).squeeze(-1)


def _sd(spread: float, spread_is: str) -> float:
    return spread if _choice("spread_is", spread_is, SPREAD_KINDS) == "sd" else math.sqrt(spread)


def make_teacher(
    generator: torch.Generator,
    *,
    depth: int,
    activation: str,
    n_features: int = 10,
    width: int = 10,
    weight_spread: float = 0.5,
    bias_spread: float = 0.5,
    spread_is: str = "sd",
    dtype: torch.dtype = torch.float64,
) -> Teacher:
    """Draw a teacher (PAPER.md §2.1): mixture-of-normals weights, normal biases."""
    _choice("teacher activation", activation, tuple(TEACHER_ACTIVATIONS))
    w_sd, b_sd = _sd(weight_spread, spread_is), _sd(bias_spread, spread_is)
    sizes = [n_features] + [width] * depth + [1]
    weights, biases = [], []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        # equal mixture of N(-1, s^2) and N(+1, s^2): a random sign for the mean, then the normal noise
        sign = torch.randint(0, 2, (fan_in, fan_out), generator=generator).to(dtype) * 2.0 - 1.0
        noise = torch.randn(fan_in, fan_out, generator=generator, dtype=dtype)
        weights.append(sign + w_sd * noise)
        biases.append(b_sd * torch.randn(fan_out, generator=generator, dtype=dtype))
    return Teacher(weights, biases, activation)


def sample_inputs(
    generator: torch.Generator, n: int, n_features: int = 10, input_dist: str = "normal",
    dtype: torch.dtype = torch.float64,
) -> Tensor:
    """``n`` input rows, ``(n, n_features)``: standard normal or uniform on [-1, 1]."""
    if _choice("input_dist", input_dist, INPUT_DISTS) == "normal":
        return torch.randn(n, n_features, generator=generator, dtype=dtype)
    return torch.rand(n, n_features, generator=generator, dtype=dtype) * 2.0 - 1.0


def make_labels(generator: torch.Generator, logit: Tensor, label_rule: str = "sign") -> Tensor:
    """Binary labels (0/1, int64) from the teacher's output logit ``(n,)``; see the module notes."""
    rule = _choice("label_rule", label_rule, LABEL_RULES)
    if rule == "sign":
        return (logit > 0).long()
    if rule == "median":
        return (logit > logit.median()).long()
    return torch.bernoulli(torch.sigmoid(logit), generator=generator).long()


def make_dataset(
    seed: int,
    *,
    n_samples: int,
    depth: int,
    activation: str,
    n_features: int = 10,
    width: int = 10,
    weight_spread: float = 0.5,
    bias_spread: float = 0.5,
    spread_is: str = "sd",
    input_dist: str = "normal",
    label_rule: str = "sign",
) -> Tuple[Tensor, Tensor, Teacher]:
    """Draw a teacher and ``n_samples`` labelled examples from it: ``(X (n, n_features) float64, y (n,) int64, teacher)``.

    The teacher is drawn first, then the inputs, then (for ``"bernoulli"``) the label noise, all from one
    generator seeded with ``seed``; computed in float64 so that labels do not depend on the students' dtype.
    """
    g = torch.Generator().manual_seed(int(seed))
    teacher = make_teacher(
        g, depth=depth, activation=activation, n_features=n_features, width=width,
        weight_spread=weight_spread, bias_spread=bias_spread, spread_is=spread_is,
    )
    X = sample_inputs(g, n_samples, n_features, input_dist)
    y = make_labels(g, teacher.logit(X), label_rule)
    return X, y, teacher


@dataclass
class TeacherKeys:
    """The config keys of the teachers and their data (a table's config subclasses it; defaults: the paper's)."""

    n_samples: int = option(100_000, min=10, help="examples per teacher draw (paper: 100,000)")
    n_features: int = option(10, min=1, help="inputs")
    width: int = option(10, min=1, help="neurons per hidden layer")
    weight_spread: float = option(0.5, min=0.0, help="teacher weight spread around -1/+1 (paper: 0.5)")
    bias_spread: float = option(0.5, min=0.0, help="teacher bias spread around 0 (paper: 0.5)")
    spread_is: str = option("sd", choices=SPREAD_KINDS, help="read the spreads as standard deviations or variances")
    input_dist: str = option("normal", choices=INPUT_DISTS, help="inputs N(0, I) or U(-1, 1)")
    max_majority: float = option(1.0, min=0.5, help="redraw a teacher whose labels' majority-class rate is above this, "
                                 "up to max_redraws times, keeping the least one-sided draw (1.0: never redraw)")
    max_redraws: int = option(50, min=0, help="redraws allowed per teacher draw (see max_majority); an 8-layer "
                              "sigmoid teacher labels more than 95% one class in about 99 of 100 draws")
    label_rule: str = option("sign", choices=LABEL_RULES,
                             help="label from the teacher logit t: 1{t>0}, Bernoulli(sigmoid t), 1{t>median}")

    def teacher_data(self, seed_for: Callable[[int], int], depth: int, activation: str) -> Tuple[Tensor, Tensor, int]:
        """A teacher's data under these keys, redrawn while too one-sided: ``(X, y, attempt)``; see
        :func:`redraw_dataset`."""
        return redraw_dataset(seed_for, self.max_majority, self.max_redraws, n_samples=self.n_samples, depth=depth,
                              activation=activation, n_features=self.n_features, width=self.width,
                              weight_spread=self.weight_spread, bias_spread=self.bias_spread,
                              spread_is=self.spread_is, input_dist=self.input_dist, label_rule=self.label_rule)

    def teacher_choices(self) -> Dict[str, str]:
        """What the simulation does where the paper is silent (a report's choices section)."""
        return {
            "input distribution": {"normal": "x ~ N(0, I_10)", "uniform": "x ~ U(-1, 1)^10"}[self.input_dist],
            "spread 0.5": f"read as a {'standard deviation' if self.spread_is == 'sd' else 'variance'}: weights "
            f"~ 1/2 N(-1, s^2) + 1/2 N(+1, s^2), biases ~ N(0, s_b^2) (spread_is={self.spread_is})",
            "label": {
                "sign": "y = 1{teacher logit > 0}: the teacher's sigmoid output rounded (deterministic)",
                "bernoulli": "y ~ Bernoulli(sigmoid(teacher logit)) (noisy)",
                "median": "y = 1{teacher logit > its median over the sample} (balanced classes)",
            }[self.label_rule],
        }


def redraw_dataset(seed_for: Callable[[int], int], max_majority: float = 1.0, max_redraws: int = 50,
                   **kwargs) -> Tuple[Tensor, Tensor, int]:
    """:func:`make_dataset` with seed ``seed_for(0)``, drawn again with ``seed_for(1)``, ``seed_for(2)``, ...
    while its labels' majority-class rate is above ``max_majority`` (a teacher that labels (almost) everything
    one class), at most ``max_redraws`` times; the least one-sided draw is kept (the first of equals).

    Returns ``(X, y, attempt)``, ``attempt`` the kept draw (0: the first).
    """
    best = None
    for attempt in range(max_redraws + 1):
        X, y, _ = make_dataset(seed_for(attempt), **kwargs)
        pos = float(y.double().mean())
        rate = max(pos, 1.0 - pos)
        if best is None or rate < best[0]:
            best = (rate, X, y, attempt)
        if rate <= max_majority:
            break
    return best[1], best[2], best[3]
