r"""Student networks for the simulation: many small MLPs trained together as one batched computation.

With batch 20 and 10-neuron layers every step is a few microseconds of arithmetic and a lot of per-call
overhead, so all the students of a grid (activations x teachers x folds) are stacked along a leading model
axis ``B`` and trained in lock-step with batched matmuls (``torch.baddbmm``):

* the models are grouped by activation; a group of ``Bg`` models holds, per hidden layer ``l``,
  ``W[l]`` ``(Bg, fan_in, width)``, ``b[l]`` ``(Bg, 1, width)`` and, for an adaptive activation,
  ``rho[l]`` ``(Bg, 1, width)`` with the per-neuron shape :math:`\alpha = e^\rho` (the paper's
  parametrisation, alpha stays positive), passed to the activation's ``function(x, alpha)`` from the
  package's factory (:func:`actadapt.activation_spec`; no per-call value check, see :func:`student_activation`);
* a step is one forward and backward of every group (a few batched calls per layer, whatever ``B``), the
  penalty gradients are added analytically and the SGD update is one ``torch._foreach_add_``.

Every model keeps its own initialisation, data, minibatch order and loss, so the result equals training the
models one at a time (:func:`train_single`, the reference, checked by the tests within float tolerance).

Training (PAPER.md §2.1, eqs. 4-6): per model, loss = mean binary cross-entropy over its minibatch
+ ``l1`` :math:`\sum|\theta|` + ``l2`` :math:`\sum\theta^2` over all weights and biases (and over the alphas
of adaptive students when ``penalize_alpha``), plain SGD with learning rate ``lr``. The last, shorter
minibatch of an epoch is kept (no drop-last); a model whose epoch has fewer steps than another's simply
makes no update on the extra steps.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from ...activations import activation_spec
from .. import probe
from ..config import option
from ..divergence import nonfinite_rows
from .weight_init import lecun_init  # the students' initialisation (re-exported)

__all__ = [
    "STUDENT_ACTIVATIONS",
    "student_activation",
    "batched_memory",
    "StudentKeys",
    "StudentSpec",
    "TrainSettings",
    "TrainResult",
    "train_batched",
    "train_single",
    "lecun_init",
]

# the student activations, in the order their groups are stacked; each name is resolved by the package's one
# factory (actadapt.activation_spec), whose function(x, alpha) ignores alpha for the fixed ones
STUDENT_ACTIVATIONS = ("Sig", "AGumb", "ReLU", "AReLU", "Swish")


def student_activation(name: str) -> Callable[[Tensor, Tensor], Tensor]:
    """``f(x, alpha)`` of the student activation ``name``. alpha = exp(rho) is positive by construction, so
    there is no per-call value check (``check_alpha=False``): a NaN rho is a diverged student, which the
    trainer reports."""
    return functools.partial(activation_spec(name).function, check_alpha=False)


@dataclass
class StudentSpec:
    """One student: its activation, seeds and its own train/test data.

    ``X_*`` are ``(n, n_features)`` floats, ``y_*`` are ``(n,)`` 0/1 labels.
    """

    activation: str
    init_seed: int
    shuffle_seed: int
    X_train: Tensor
    y_train: Tensor
    X_test: Tensor
    y_test: Tensor


@dataclass
class TrainSettings:
    depth: int = 1
    width: int = 10
    epochs: int = 10
    batch_size: int = 20
    lr: float = 0.01
    l1: float = 0.001
    l2: float = 0.001
    penalize_alpha: bool = True
    alpha_init: float = 1.0
    eval_every: int = 1
    dtype: torch.dtype = torch.float32


@dataclass
class TrainResult:
    """Per model (same order as the specs): final test accuracy, curves and fitted alphas.

    ``alphas[m]`` is a list over hidden layers of per-neuron alpha lists, or ``None`` for a fixed activation.
    ``curve_epochs`` are the epochs (1-based) at which ``test_acc``/``train_loss`` were recorded.
    ``diverged_epoch[m]`` is the first epoch whose loss was non-finite (or the last epoch, when only the
    final weights are), ``None`` for a model that trained finitely (:mod:`..divergence`).
    """

    accuracy: List[float]
    train_loss: List[List[float]]
    test_acc: List[List[float]]
    curve_epochs: List[int]
    alphas: List[Optional[List[List[float]]]] = field(default_factory=list)
    diverged_epoch: List[Optional[int]] = field(default_factory=list)


def batched_memory(models: int, n: int, features: int, width: int, depth: int, dtype_bytes: int, batch_size: int,
                   test_size: int, evaluations: int) -> int:
    """Peak bytes of :func:`train_batched` for ``models`` students of ``depth`` hidden layers of ``width`` on
    ``n`` examples of ``features`` inputs each (``s = dtype_bytes``): each model's float64 train/test slices
    (``8 M n (F + 1)``); their padded stacks (``s M n (F + 1)``); one epoch's permuted copy and index
    (``M n (s F + 2 s + 8)``); evaluation activations of ``test_size`` examples (``6 s M test W``); a step's
    saved activations (``8 s M batch W D``); parameters with gradients and penalty temporaries (``6 s M P``,
    ``P = F W + (D - 1) W^2 + (2 D + 1) W + 1``); the curves (``64 M evaluations``)."""
    M, F, W, D, s = models, features, width, depth, dtype_bytes
    P = F * W + (D - 1) * W * W + (2 * D + 1) * W + 1
    return (8 * M * n * (F + 1) + s * M * n * (F + 1) + M * n * (s * F + 2 * s + 8) + 6 * s * M * test_size * W
            + 8 * s * M * min(batch_size, n) * W * D + 6 * s * M * P + 64 * M * evaluations)


def _init_model(seed: int, sizes: Sequence[int], dtype: torch.dtype):
    g = torch.Generator().manual_seed(int(seed))
    return [lecun_init(g, a, b, dtype) for a, b in zip(sizes[:-1], sizes[1:])]


def _epoch_perm(generator: torch.Generator, n: int) -> Tensor:
    return torch.randperm(n, generator=generator)


def _penalty(params: Sequence[Tensor], l1: float, l2: float) -> Tensor:
    return sum(l1 * p.abs().sum() + l2 * (p * p).sum() for p in params)


# ------------------------------------------------------------------------------------------ batched
@dataclass
class _Group:
    """The models ``start:stop`` (after sorting) that share one activation, and their stacked parameters."""

    activation: str
    start: int
    stop: int
    Ws: List[Tensor] = field(default_factory=list)
    bs: List[Tensor] = field(default_factory=list)
    rhos: List[Tensor] = field(default_factory=list)
    adaptive: bool = field(init=False)
    function: Callable[[Tensor, Tensor], Tensor] = field(init=False)  # f(x, alpha), resolved once

    def __post_init__(self) -> None:
        self.adaptive = activation_spec(self.activation).adaptive
        self.function = student_activation(self.activation)


def _pad_stack(tensors: Sequence[Tensor], dtype=None):
    """Stack ``(n_m, ...)`` tensors into ``(B, n_max, ...)`` with zero padding, and the lengths ``(B,)``."""
    n_max = max(t.shape[0] for t in tensors)
    out = tensors[0].new_zeros((len(tensors), n_max, *tensors[0].shape[1:]), dtype=dtype)
    for m, t in enumerate(tensors):
        out[m, : t.shape[0]] = t.to(out.dtype)
    return out, torch.tensor([t.shape[0] for t in tensors])


def train_batched(specs: Sequence[StudentSpec], settings: TrainSettings, progress: Optional[Callable] = None) -> TrainResult:
    """Train every student of ``specs`` together; see the module notes. ``progress(epoch)`` is called per epoch;
    every step reports to :mod:`..probe` (``actadapt plan`` times a task's first steps that way)."""
    s = settings
    dt = s.dtype
    order = sorted(range(len(specs)), key=lambda m: STUDENT_ACTIVATIONS.index(specs[m].activation))
    sp = [specs[m] for m in order]  # contiguous activation groups
    B = len(sp)
    sizes = [sp[0].X_train.shape[1]] + [s.width] * s.depth + [1]
    L = len(sizes) - 1
    groups: List[_Group] = []
    for m, spec in enumerate(sp):
        if groups and groups[-1].activation == spec.activation:
            groups[-1].stop = m + 1
        else:
            groups.append(_Group(spec.activation, m, m + 1))
    inits = [_init_model(m.init_seed, sizes, dt) for m in sp]
    for g in groups:
        members = range(g.start, g.stop)
        g.Ws = [torch.stack([inits[m][l][0] for m in members]).requires_grad_() for l in range(L)]  # (Bg, in, out)
        g.bs = [torch.stack([inits[m][l][1] for m in members]).unsqueeze(1).requires_grad_() for l in range(L)]
        if g.adaptive:  # per-neuron rho, alpha = exp(rho): (Bg, 1, width)
            g.rhos = [torch.full((g.stop - g.start, 1, s.width), math.log(s.alpha_init), dtype=dt, requires_grad=True)
                      for _ in range(s.depth)]

    def forward(X: Tensor) -> List[Tensor]:  # X (B, n, n_features) -> per group logits (Bg, n)
        out = []
        for g in groups:
            h = X[g.start : g.stop]
            for l in range(s.depth):
                pre = torch.baddbmm(g.bs[l], h, g.Ws[l])  # (Bg, n, width)
                h = g.function(pre, torch.exp(g.rhos[l]) if g.adaptive else pre)
            out.append(torch.baddbmm(g.bs[-1], h, g.Ws[-1]).squeeze(-1))
        return out

    Xtr, n_tr = _pad_stack([m.X_train for m in sp], dt)  # (B, N, F)
    ytr, _ = _pad_stack([m.y_train for m in sp], dt)  # (B, N)
    Xte, n_te = _pad_stack([m.X_test for m in sp], dt)
    yte, _ = _pad_stack([m.y_test for m in sp], dt)
    te_mask = (torch.arange(Xte.shape[1]) < n_te[:, None]).to(dt)  # (B, N_test)
    bsz = s.batch_size
    steps_m = (n_tr + bsz - 1) // bsz  # (B,) steps per epoch of each model
    steps = int(steps_m.max())
    N_pad = steps * bsz
    gens = [torch.Generator().manual_seed(int(m.shuffle_seed)) for m in sp]
    wb = [p for g in groups for p in g.Ws + g.bs]
    rho_groups = [g for g in groups if g.adaptive]

    def evaluate() -> Tensor:
        with torch.no_grad():
            pred = (torch.cat(forward(Xte), 0) > 0).to(dt)
            return ((pred == yte).to(dt) * te_mask).sum(1) / n_te.to(dt)

    losses: List[List[float]] = [[] for _ in range(B)]
    accs: List[List[float]] = [[] for _ in range(B)]
    curve_epochs: List[int] = []
    diverged_at: List[Optional[int]] = [None] * B
    for epoch in range(1, s.epochs + 1):
        # each model's own permutation of its own training rows, padded to steps * bsz
        perm = torch.zeros(B, N_pad, dtype=torch.long)
        for m in range(B):
            perm[m, : int(n_tr[m])] = _epoch_perm(gens[m], int(n_tr[m]))
        valid = (torch.arange(N_pad) < n_tr[:, None]).to(dt)  # (B, N_pad)
        Xp = torch.take_along_dim(Xtr, perm.unsqueeze(-1), dim=1)  # (B, N_pad, F)
        yp = torch.take_along_dim(ytr, perm, dim=1)
        epoch_loss = torch.zeros(B, dtype=dt)
        probe.epoch_started(steps, s.epochs)
        for step in range(steps):
            sl = slice(step * bsz, (step + 1) * bsz)
            mask = valid[:, sl]  # (B, bsz)
            count = mask.sum(1)  # (B,)
            all_active = bool(count.min() > 0)
            logits = torch.cat(forward(Xp[:, sl]), 0)  # (B, bsz)
            bce = F.binary_cross_entropy_with_logits(logits, yp[:, sl], reduction="none")
            data_loss = (bce * mask).sum(1) / count.clamp(min=1)  # (B,) per-model minibatch mean
            for p in wb:
                p.grad = None
            for g in rho_groups:
                for r in g.rhos:
                    r.grad = None
            data_loss.sum().backward()  # models are independent: the sum's gradient is each model's own
            with torch.no_grad():
                # eqs. 4-6: penalty gradients added analytically (l1 sign(p) + 2 l2 p), then the SGD step
                grads = [p.grad for p in wb]
                if all_active:
                    torch._foreach_add_(grads, torch._foreach_sign(wb), alpha=s.l1)
                    torch._foreach_add_(grads, wb, alpha=2.0 * s.l2)
                else:  # a model past the end of its (shorter) epoch makes no update at all
                    on = (count > 0).to(dt)
                    for g in groups:
                        gon = on[g.start : g.stop].view(-1, 1, 1)
                        for p in g.Ws + g.bs:
                            p.grad.add_(gon * (s.l1 * torch.sign(p) + 2.0 * s.l2 * p))
                torch._foreach_add_(wb, grads, alpha=-s.lr)
                for g in rho_groups:
                    gon = None if all_active else (count[g.start : g.stop] > 0).to(dt).view(-1, 1, 1)
                    for r in g.rhos:
                        if s.penalize_alpha:  # d/drho of l1 alpha + l2 alpha^2, alpha = e^rho > 0
                            a = torch.exp(r)
                            pen = a * (s.l1 + 2.0 * s.l2 * a)
                            r.grad.add_(pen if gon is None else pen * gon)
                        r.sub_(s.lr * r.grad)
            epoch_loss += data_loss.detach()
            if probe.step_done():  # a planner's probe: on to this epoch's end (..probe)
                break
        for m in torch.nonzero(nonfinite_rows([epoch_loss])).flatten().tolist():  # once per epoch: (B,) flags
            diverged_at[m] = diverged_at[m] or epoch
        if epoch % s.eval_every == 0 or epoch == s.epochs:
            acc = evaluate()
            mean_loss = epoch_loss / steps_m.to(dt)
            curve_epochs.append(epoch)
            for m in range(B):
                losses[m].append(float(mean_loss[m]))
                accs[m].append(float(acc[m]))
        if progress is not None:
            progress(epoch)

    final = [a[-1] for a in accs]
    for g in groups:  # weights that went bad in the very last step
        bad = nonfinite_rows(g.Ws + g.bs + g.rhos)
        for i in torch.nonzero(bad).flatten().tolist():
            diverged_at[g.start + i] = diverged_at[g.start + i] or s.epochs
    alphas: List[Optional[List[List[float]]]] = [None] * B
    for g in rho_groups:
        for i in range(g.stop - g.start):
            alphas[g.start + i] = [torch.exp(r[i, 0]).tolist() for r in g.rhos]
    # back to the caller's order
    back = {orig: pos for pos, orig in enumerate(order)}
    pick = [back[i] for i in range(B)]
    return TrainResult(
        accuracy=[final[p] for p in pick],
        train_loss=[losses[p] for p in pick],
        test_acc=[accs[p] for p in pick],
        curve_epochs=curve_epochs,
        alphas=[alphas[p] for p in pick],
        diverged_epoch=[diverged_at[p] for p in pick],
    )


# ------------------------------------------------------------------------------------ single model
class _MLP(torch.nn.Module):
    """The reference student, one model: nn.Linear layers and a per-neuron ``rho`` per hidden layer."""

    def __init__(self, sizes: Sequence[int], activation: str, init_seed: int, alpha_init: float, dtype):
        super().__init__()
        self.activation = activation
        self.function = student_activation(activation)
        self.linears = torch.nn.ModuleList(torch.nn.Linear(a, b, dtype=dtype) for a, b in zip(sizes[:-1], sizes[1:]))
        with torch.no_grad():
            for lin, (W, b) in zip(self.linears, _init_model(init_seed, sizes, dtype)):
                lin.weight.copy_(W.T)
                lin.bias.copy_(b)
        self.rhos = torch.nn.ParameterList(
            torch.nn.Parameter(torch.full((n,), math.log(alpha_init), dtype=dtype)) for n in sizes[1:-1]
        )

    def forward(self, x: Tensor) -> Tensor:
        for lin, rho in zip(self.linears[:-1], self.rhos):
            x = self.function(lin(x), torch.exp(rho))
        return self.linears[-1](x).squeeze(-1)


def train_single(spec: StudentSpec, settings: TrainSettings) -> TrainResult:
    """Train one student with ``nn.Linear`` layers and ``torch.optim.SGD``: the reference for :func:`train_batched`."""
    s = settings
    sizes = [spec.X_train.shape[1]] + [s.width] * s.depth + [1]
    model = _MLP(sizes, spec.activation, spec.init_seed, s.alpha_init, s.dtype)
    opt = torch.optim.SGD(model.parameters(), lr=s.lr)
    g = torch.Generator().manual_seed(int(spec.shuffle_seed))
    X, y = spec.X_train.to(s.dtype), spec.y_train.to(s.dtype)
    Xt, yt = spec.X_test.to(s.dtype), spec.y_test.to(s.dtype)
    adaptive = activation_spec(spec.activation).adaptive
    n = X.shape[0]
    losses, accs, curve_epochs = [], [], []
    for epoch in range(1, s.epochs + 1):
        perm = _epoch_perm(g, n)
        total, steps = 0.0, 0
        for start in range(0, n, s.batch_size):
            idx = perm[start : start + s.batch_size]
            data_loss = F.binary_cross_entropy_with_logits(model(X[idx]), y[idx])
            loss = data_loss + _penalty([p for lin in model.linears for p in lin.parameters()], s.l1, s.l2)
            if s.penalize_alpha and adaptive:
                loss = loss + _penalty([torch.exp(r) for r in model.rhos], s.l1, s.l2)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(data_loss.detach())
            steps += 1
        if epoch % s.eval_every == 0 or epoch == s.epochs:
            with torch.no_grad():
                acc = float(((model(Xt) > 0).to(s.dtype) == yt).to(s.dtype).mean())
            curve_epochs.append(epoch)
            losses.append(total / steps)
            accs.append(acc)
    alphas = [torch.exp(r.detach()).tolist() for r in model.rhos] if adaptive else None
    return TrainResult([accs[-1]], [losses], [accs], curve_epochs, [alphas])


@dataclass
class StudentKeys:
    """The config keys of the students' training (a table's config subclasses it; defaults: the paper's)."""

    batch_size: int = option(20, min=1, help="minibatch size (paper: 20)")
    lr: float = option(0.01, min=0.0, help="SGD learning rate (paper: 0.01)")
    l1: float = option(0.001, min=0.0, help="L1 penalty (paper: 0.001)")
    l2: float = option(0.001, min=0.0, help="L2 penalty (paper: 0.001)")
    penalize_alpha: bool = option(True, help="include alpha in the L1/L2 penalties (eqs. 4-6 penalise theta = "
                                             "[alpha, w0, w])")
    eval_every: int = option(1, min=1, help="epochs between test-accuracy evaluations (training curves)")
    dtype: str = option("float32", choices=("float32", "float64"), help="student arithmetic")

    def student_settings(self, depth: int, width: int, epochs: int, alpha_init: float) -> TrainSettings:
        return TrainSettings(depth=depth, width=width, epochs=epochs, batch_size=self.batch_size, lr=self.lr,
                             l1=self.l1, l2=self.l2, penalize_alpha=self.penalize_alpha, alpha_init=alpha_init,
                             eval_every=self.eval_every, dtype=getattr(torch, self.dtype))

    def student_choices(self, alpha_init: float) -> Dict[str, str]:
        """What the students' training does where the paper is silent (a report's choices section)."""
        return {
            "penalty": f"L1 {self.l1} + L2 {self.l2} on all weights and biases"
            + (" and on alpha (adaptive students)" if self.penalize_alpha else "; alpha not penalised")
            + "; alpha = exp(rho), rho trained by SGD",
            "initialisation": f"LeCun: weights and biases ~ N(0, 1/fan_in); alpha = {alpha_init:g} (rho = log alpha)",
            "loss": "binary cross-entropy on the single output logit, mean over the minibatch",
            "last minibatch": "kept (no drop-last)",
            "accuracy": "on the held-out fold after the last epoch (no early stopping)",
        }
