"""The accuracy contract of issue 2, checked against the mpmath reference (tests/mp_reference.py).

For x in [-1e4, 1e4], alpha in [1e-6, 1e3], for the value, d/dx and d/dalpha:
  float64: relative error <= 1e-10 where |exact| >= 1e-300, absolute <= 1e-310 below;
  float32: relative error <= 1e-4 where |exact| >= 1e-30;
  never inf or NaN.
The grid covers the hard places (x << 0, overflowing alpha e^x, tiny alpha, small alpha x, large |alpha x|,
each formula's switch points, the under/overflow edges of both dtypes) plus seeded random points.
Both backends are checked: eager, and the torch.compile path that runs by default.
"""

from __future__ import annotations

import contextlib
import math

import mpmath as mp
import numpy as np
import pytest
import torch

import actadapt
from actadapt import functional as AF
from actadapt.families import available_families

from .mp_reference import reference

X_MAX, ALPHA_MIN, ALPHA_MAX = 1e4, 1e-6, 1e3
ALPHAS = [1e-6, 3.7e-6, 1e-4, 0.01, 0.05, 0.3, 0.999, 1.0, 1.5, 7.0, 50.0, 333.0, 1e3]
X_BASE = [0.0, 1e-300, 1e-30, 1e-12, 1e-7, 1e-4, 0.01, 0.1, 0.5, 1, 2, 5, 10, 20, 35, 50, 88, 100, 300,
          700, 709, 745, 800, 1e3, 3e3, 1e4]
RULES = {  # dtype: (rtol, threshold below which the error is absolute, atol there)
    torch.float64: (1e-10, 1e-300, 1e-310),
    torch.float32: (1e-4, 1e-30, 1e-34),
}
MAIN = [("gumbel", "bounded"), ("exponential", "gated"), ("logistic", "gated")]
ALL = [(f, form) for f in ["gumbel", "exponential", "logistic", "normal", "laplace", "cauchy"]
       for form in ("bounded", "gated")]


def _alpha_specific_x(a: float) -> list[float]:
    """Points where a formula switches or a quantity under/overflows, for this alpha."""
    pts = [-math.log(a) + d for d in (-1e-9, 0.0, 1e-9, -0.5, 0.5)]  # Gumbel: alpha e^x = 1
    pts += [math.log((0.05 / 0.95) / a) + d for d in (-1e-9, 0.0, 1e-9)]  # Gumbel: series switch
    pts += [-1.2784645427610738 / a]  # Swish' zero crossing
    pts += [t / a for t in (1e-9, 1e-6, 1e-3, 0.5, 30, 87, 100, 700, 740)]
    pts += [-math.log(a) - t for t in (40, 100, 700)]  # Gumbel lower tail around the edges
    return pts + [-p for p in pts]


def make_grid(dtype: torch.dtype, n_random: int = 600, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    xs, alphas = [], []
    for a in ALPHAS:
        for x in [*X_BASE, *(-v for v in X_BASE), *_alpha_specific_x(a)]:
            if abs(x) <= X_MAX:
                xs.append(x)
                alphas.append(a)
    rng = np.random.default_rng(seed)
    xs += list(rng.choice([-1, 1], n_random) * 10 ** rng.uniform(-10, 4, n_random))
    alphas += list(10 ** rng.uniform(-6, 3, n_random))
    x = torch.tensor(xs, dtype=torch.float64).to(dtype)  # round to the dtype first: the reference uses
    a = torch.tensor(alphas, dtype=torch.float64).to(dtype)  # the exact binary values that are fed in
    a = a.clamp(ALPHA_MIN, ALPHA_MAX)
    return x.numpy(), a.numpy()


# Where e^{-t} (t = alpha |x|, Gumbel's |log(alpha) + x| and L) crosses the dtype's smallest normal number
# (float32: t = 87.3; float64: t = 708.4) and its last subnormal (103.3; 744.4). The kernels flush float32
# subnormals for speed, and a judged result can still need a factor from there: the gated forms' d/dalpha,
# x^2 e^{-t} ~ 1e8 e^{-t}, is >= 1e-30 down to e^{-t} = 1e-38, below FLT_MIN.
UNDERFLOW_T = {
    torch.float32: [*np.linspace(80.0, 110.0, 31), *np.arange(86.5, 89.5, 0.125)],
    torch.float64: [*np.linspace(700.0, 760.0, 31), *np.arange(706.0, 712.0, 0.25), *np.arange(740.0, 748.0, 0.5)],
}
UNDERFLOW_X = [1.0, 10.0, 100.0, 1e3, 3e3, 6e3, 9e3, 9.5e3, 1e4]


def underflow_grid(dtype: torch.dtype) -> tuple[np.ndarray, np.ndarray]:
    """Points around the underflow edges (UNDERFLOW_T): alpha |x| = t for |x| up to 1e4 (the gated forms), and
    for each alpha of ALPHAS, Gumbel's u = log(alpha) + x = +-t and L = log(1 + alpha e^x)/alpha = t."""
    xs, alphas = [], []
    for t in UNDERFLOW_T[dtype]:
        for x in UNDERFLOW_X:
            if ALPHA_MIN <= t / x <= ALPHA_MAX:
                xs += [x, -x]
                alphas += [t / x, t / x]
        for a in ALPHAS:
            at = a * t  # L = t: alpha e^x = expm1(alpha t)
            x_of_L = at - math.log(a) + math.log(-math.expm1(-at)) if at > 1e-300 else math.inf
            for x in (-math.log(a) + t, -math.log(a) - t, x_of_L):
                if abs(x) <= X_MAX:
                    xs.append(x)
                    alphas.append(a)
    x = torch.tensor(xs, dtype=torch.float64).to(dtype)
    a = torch.tensor(alphas, dtype=torch.float64).to(dtype).clamp(ALPHA_MIN, ALPHA_MAX)
    return x.numpy(), a.numpy()


_ref_cache: dict = {}


def reference_arrays(family, form, x: np.ndarray, a: np.ndarray):
    key = (family, form, x.dtype.str, x.tobytes(), a.tobytes())
    if key not in _ref_cache:
        vals = [reference(family, form, float(xi), float(ai)) for xi, ai in zip(x, a)]
        _ref_cache[key] = [
            (np.array([mp.mpf(v[k][0]) for v in vals], dtype=object), np.array([float(v[k][1]) for v in vals]))
            for k in range(3)
        ]
    return _ref_cache[key]


def evaluate(family, form, x_np, a_np, dtype, device="cpu"):
    """Value, d/dx and d/dalpha elementwise (one alpha per element, so the alpha gradient is not summed)."""
    x = torch.tensor(x_np, dtype=dtype, device=device, requires_grad=True)
    a = torch.tensor(a_np, dtype=dtype, device=device, requires_grad=True)
    y = AF.adaptive_activation(x, a, family, form)
    y.backward(torch.ones_like(y))
    return [t.detach().to("cpu", torch.float64).numpy() for t in (y, x.grad, a.grad)]


@contextlib.contextmanager
def subnormals_flushed():
    """FTZ and DAZ in this thread's MXCSR for the block (torch.set_flush_denormal), which numpy and so Triton's
    interpreter obey too: the float32 arithmetic of a GPU that flushes subnormals. Skips where unsupported."""
    if not torch.set_flush_denormal(True):
        pytest.skip("this CPU cannot flush subnormals (torch.set_flush_denormal)")
    try:
        yield
    finally:
        torch.set_flush_denormal(False)


def check_contract(family, form, dtype, device="cpu", grid=make_grid, flush=False):
    """The contract on ``grid(dtype)``; ``flush``: with the kernels run under :func:`subnormals_flushed`."""
    x, a = grid(dtype)
    with subnormals_flushed() if flush else contextlib.nullcontext():
        got = evaluate(family, form, x, a, dtype, device)
    ref = reference_arrays(family, form, x, a)
    rtol, threshold, atol = RULES[dtype]
    failures = []
    for name, g, (exact, scale) in zip(("value", "d/dx", "d/dalpha"), got, ref):
        bad_finite = ~np.isfinite(g)
        err = np.array([float(abs(mp.mpf(float(gi)) - e)) for gi, e in zip(g, exact)])
        bound = np.where(scale >= threshold, rtol * scale, atol)
        bad = bad_finite | (err > bound)
        for i in np.flatnonzero(bad)[:5]:
            failures.append(
                f"{family}/{form} {name} x={x[i]!r} alpha={a[i]!r}: got {g[i]!r}, exact {mp.nstr(exact[i], 17)}"
                f" (rel err {err[i] / max(scale[i], 1e-320):.3g})"
            )
        if bad.any():
            failures.append(f"{family}/{form} {name}: {int(bad.sum())} of {len(g)} points outside the contract")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("family,form", ALL, ids=[f"{f}-{g}" for f, g in ALL])
def test_contract_eager(family, form, dtype, eager_backend):
    check_contract(family, form, dtype)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("family,form", MAIN, ids=[f"{f}-{g}" for f, g in MAIN])
def test_contract_compiled(family, form, dtype, compile_backend):
    check_contract(family, form, dtype)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("family,form", MAIN, ids=[f"{f}-{g}" for f, g in MAIN])
def test_contract_native(family, form, dtype, native_backend):
    check_contract(family, form, dtype)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("family,form", MAIN, ids=[f"{f}-{g}" for f, g in MAIN])
def test_contract_native_at_the_underflow_edges(family, form, dtype, native_backend):
    """The C++ kernel flushes float32 subnormals for speed; results that need a factor under FLT_MIN stay exact."""
    check_contract(family, form, dtype, grid=underflow_grid)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("family,form", MAIN, ids=[f"{f}-{g}" for f, g in MAIN])
def test_contract_eager_at_the_underflow_edges(family, form, dtype, eager_backend):
    check_contract(family, form, dtype, grid=underflow_grid)


@pytest.mark.slow
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("family,form", MAIN, ids=[f"{f}-{g}" for f, g in MAIN])
def test_contract_compiled_at_the_underflow_edges(family, form, dtype, compile_backend):
    check_contract(family, form, dtype, grid=underflow_grid)


LAYOUTS = {  # x shape, alpha shape: the kernels' two loop shapes (alpha per row; along the contiguous axis)
    "shared": ((5, 7, 3), ()),
    "per-channel": ((4, 6, 3, 5), (6, 1, 1)),
    "per-feature": ((9, 13), (13,)),
    "tail": ((3, 2, 11), (2, 1)),
    "block": ((4, 3, 5), (3, 5)),  # alpha over two adjacent axes
    "models": ((3, 7, 10), (3, 1, 10)),  # per (model, neuron) for a batch of models: G=3, M=7, C=10
    "models-rows": ((2, 3, 4, 5), (2, 1, 4, 1)),  # G=2, M=3, C=4, rows of 5
    "groups": ((2, 3, 4, 5), (2, 3, 1, 5)),  # G=6, M=4, C=5
    "long-rows": ((3, 4, 37), (4, 1)),  # two vectors per iteration, then one, then a tail
    "wide-features": ((5, 45), (45,)),
    "wide-models": ((2, 3, 45), (2, 1, 45)),
}


def check_layout_matches_eager(layout, dtype, backend, device="cpu"):
    """float64 against eager float64; float32 (the fast exp) against eager float64 at the same inputs."""
    g = torch.Generator().manual_seed(3)
    x_shape, a_shape = LAYOUTS[layout]
    for name, fn in [("gumbel", AF.adaptive_gumbel), ("relu", AF.adaptive_relu), ("swish", AF.swish)]:
        x = (torch.randn(x_shape, generator=g, dtype=torch.float64) * 4).to(dtype)
        a = (torch.rand(a_shape, generator=g, dtype=torch.float64) * 3 + 0.05).to(dtype)
        gy = torch.randn(x_shape, generator=g, dtype=torch.float64).to(dtype)
        x_d, a_d = x.to(device).requires_grad_(), a.to(device).requires_grad_()
        actadapt.set_backend(backend)
        y = fn(x_d, a_d)
        gx, ga = torch.autograd.grad(y, (x_d, a_d), gy.to(device))
        actadapt.set_backend("eager")
        x64, a64 = x.double().requires_grad_(), a.double().requires_grad_()
        y2 = fn(x64, a64)
        gx2, ga2 = torch.autograd.grad(y2, (x64, a64), gy.double())
        actadapt.set_backend(backend)
        tol = dict(rtol=1e-13, atol=1e-15) if dtype == torch.float64 else dict(rtol=1e-4, atol=1e-6)
        torch.testing.assert_close(y.cpu().double(), y2, **tol, msg=name)
        torch.testing.assert_close(gx.cpu().double(), gx2, **tol, msg=name)
        torch.testing.assert_close(ga.cpu().double(), ga2,
                                   **(tol if dtype == torch.float32 else dict(rtol=1e-12, atol=1e-13)), msg=name)


@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
def test_native_kernel_layouts_match_eager(layout, dtype, native_backend):
    """The C++ kernel's two loop shapes (alpha per row; alpha along the contiguous axis) and SIMD tails."""
    check_layout_matches_eager(layout, dtype, "native")


def check_float32_dense_random_points(family, form, backend, n=200_000, device="cpu"):
    """The float32 contract (1e-4, held with a margin of 2) on 3 n points off the fixed grid: log-uniform |x| in
    [1e-10, 1e4] and a linear sweep of [-30, 30] with alpha log-uniform in [1e-6, 1e3], and Gumbel's hard region.
    The reference is the eager float64 path at the same float32 inputs (itself within 1e-10 of mpmath,
    test_contract_eager). The kernels' own float exp and log series are the reason for this check: their error
    bounds are argued in kernels/csrc/activations.cpp."""
    g = torch.Generator().manual_seed(11)
    sign = torch.randint(0, 2, (n,), generator=g).mul(2).sub(1).double()
    # third block, Gumbel's hard region: alpha in [1e-6, 0.1), u = log(alpha) + x in [-12, 2], where
    # S = e^{-L} multiplies L's error by L (up to ~80) and the rounding of u alone would cost ~1e-4
    a_small = (10 ** (torch.rand(n, generator=g, dtype=torch.float64) * 5 - 6)).float()
    u = torch.rand(n, generator=g, dtype=torch.float64) * 14 - 12
    x = torch.cat([sign * 10 ** (torch.rand(n, generator=g, dtype=torch.float64) * 14 - 10),
                   torch.linspace(-30, 30, n, dtype=torch.float64),
                   u - a_small.double().log()]).float()
    a = torch.cat([(10 ** (torch.rand(2 * n, generator=g, dtype=torch.float64) * 9 - 6)).float(), a_small])

    def value_and_grads(x, a):
        x, a = x.clone().requires_grad_(), a.clone().requires_grad_()
        y = AF.adaptive_activation(x, a, family, form)
        y.backward(torch.ones_like(y))
        return [t.detach().cpu().double() for t in (y, x.grad, a.grad)]

    got = value_and_grads(x.to(device), a.to(device))
    actadapt.set_backend("eager")
    ref = value_and_grads(x.double(), a.double())
    actadapt.set_backend(backend)
    for name, g_, r in zip(("value", "d/dx", "d/dalpha"), got, ref):
        scale = r.abs()
        if family == "logistic" and name == "d/dx":  # relative to |s| + |t s (1 - s)| near the zero crossing
            t = a.double() * x.double()
            scale = torch.sigmoid(t) + (t * torch.sigmoid(t) * torch.sigmoid(-t)).abs()
        assert torch.isfinite(g_).all(), f"{family}/{form} {name}: non-finite values"
        judged = scale >= 1e-30
        rel = (g_ - r).abs()[judged] / scale[judged]
        worst = int(rel.argmax())
        # the contract is 1e-4; the kernels keep a margin of 2 (measured: <= 2.5e-5 for the C++ kernel, <= 1.9e-5
        # for Triton on its smaller sample) for points not sampled here
        assert rel.max() <= 5e-5, (f"{family}/{form} {name}: rel err {rel.max():.3g} at "
                                   f"x={x[judged][worst].item()!r}, alpha={a[judged][worst].item()!r}")


@pytest.mark.parametrize("family,form", MAIN, ids=[f"{f}-{g}" for f, g in MAIN])
def test_native_float32_dense_random_points(family, form, native_backend):
    check_float32_dense_random_points(family, form, "native")


@pytest.mark.slow
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("family,form", [p for p in ALL if p not in MAIN], ids=str)
def test_contract_compiled_other_families(family, form, dtype, compile_backend):
    check_contract(family, form, dtype)


# ------------------------------------------------------------------------------------ limits
@pytest.mark.parametrize("x", [-30.0, -3.0, -0.5, 0.0, 0.7, 2.0, 4.0])
def test_gumbel_alpha_one_is_sigmoid(x):
    xt = torch.tensor([x], dtype=torch.float64)
    got = AF.adaptive_gumbel(xt, torch.tensor(1.0, dtype=torch.float64))
    torch.testing.assert_close(got, torch.sigmoid(xt), rtol=1e-14, atol=0)


def test_gumbel_small_alpha_tends_to_gumbel_cdf_continuously():
    x = torch.linspace(-30, 3.5, 301, dtype=torch.float64)
    gumbel = -torch.expm1(-torch.exp(x))
    previous = None
    for a in [1e-2, 1e-4, 1e-6, 1e-9, 1e-12, 1e-300, 0.0]:
        got = AF.adaptive_gumbel(x, torch.tensor(a, dtype=torch.float64))
        gap = ((got - gumbel).abs() / gumbel).max().item()
        assert gap <= max(5 * a * math.exp(3.5), 1e-14), (a, gap)  # O(alpha e^x) from the Taylor series
        if previous is not None:
            assert gap <= previous + 1e-15
        previous = gap


def test_adaptive_relu_large_alpha_tends_to_relu():
    x = torch.linspace(-3, 3, 61, dtype=torch.float64)
    for a in [10.0, 1e3, 1e6]:
        gap = (AF.adaptive_relu(x, torch.tensor(a, dtype=torch.float64)) - torch.relu(x)).abs().max().item()
        assert gap <= 1.0 / (math.e * a) + 1e-15  # max_x x e^{-a x} = 1/(e a)


def test_swish_alpha_one_is_silu_and_gated_normal_is_gelu():
    x = torch.linspace(-8, 8, 101, dtype=torch.float64)
    one = torch.tensor(1.0, dtype=torch.float64)
    torch.testing.assert_close(AF.swish(x, one), torch.nn.functional.silu(x), rtol=1e-14, atol=1e-300)
    gelu = AF.adaptive_activation(x, one, "normal", "gated")
    # F.gelu's 0.5 (1 + erf(x/sqrt 2)) cancels in the lower tail (1.8% off at x = -8): compare with mpmath
    exact = torch.tensor([float(mp.mpf(v) * mp.ncdf(v)) for v in x.tolist()], dtype=torch.float64)
    torch.testing.assert_close(gelu, exact, rtol=1e-13, atol=1e-300)
    torch.testing.assert_close(gelu[x > -3], torch.nn.functional.gelu(x)[x > -3], rtol=1e-13, atol=1e-300)


@pytest.mark.parametrize("family", sorted(available_families()))
def test_every_family_is_a_cdf(family):
    x = torch.linspace(-5000, 5000, 20001, dtype=torch.float64)
    for a in [0.1, 1.0, 30.0]:
        F = AF.adaptive_activation(x, torch.tensor(a, dtype=torch.float64), family, "bounded")
        assert (F >= 0).all() and (F <= 1).all()
        assert (F[1:] >= F[:-1]).all(), "a cdf is non-decreasing"
        assert F[0] < 1e-3 and F[-1] > 1 - 1e-3  # the Cauchy tail at |alpha x| = 500 is 6e-4


# --------------------------------------------------------------------------- autograd checks
def _small_inputs(family, per_neuron: bool):
    g = torch.Generator().manual_seed(1)
    x = (torch.randn(3, 4, 5, generator=g, dtype=torch.float64) * 2).requires_grad_()
    shape = (4, 1) if per_neuron else ()
    a = (torch.rand(shape, generator=g, dtype=torch.float64) * 2 + 0.2).requires_grad_()
    return x, a


@pytest.mark.parametrize("per_neuron", [False, True], ids=["shared", "per-channel"])
@pytest.mark.parametrize("family,form", ALL, ids=[f"{f}-{g}" for f, g in ALL])
def test_gradcheck_and_gradgradcheck(family, form, per_neuron, eager_backend):
    x, a = _small_inputs(family, per_neuron)
    fn = lambda x, a: AF.adaptive_activation(x, a, family, form)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x, a))
    assert torch.autograd.gradgradcheck(fn, (x, a))


@pytest.mark.parametrize("family,form", ALL, ids=[f"{f}-{g}" for f, g in ALL])
def test_custom_backward_matches_plain_autograd_twin(family, form, eager_backend):
    """The analytic backward against autograd through the very same stable forward formula."""
    fam = actadapt.get_family(family)
    x, a = _small_inputs(family, per_neuron=True)
    y = AF.adaptive_activation(x, a, family, form)
    gy = torch.randn_like(y)
    gx, ga = torch.autograd.grad(y, (x, a), gy)
    twin = fam.cdf(x, a) * (x if form == "gated" else 1)
    tx, ta = torch.autograd.grad(twin, (x, a), gy)
    torch.testing.assert_close(y, twin, rtol=1e-14, atol=1e-300)
    torch.testing.assert_close(gx, tx, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(ga, ta, rtol=1e-12, atol=1e-14)


def test_saves_only_inputs():
    x = torch.randn(64, 8, requires_grad=True)
    a = torch.ones(8, requires_grad=True)
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        for fn in (AF.adaptive_gumbel, AF.adaptive_relu, AF.swish):
            fn(x, a)
    assert len(saved) == 6
    assert all(t.data_ptr() in (x.data_ptr(), a.data_ptr()) for t in saved)


def test_per_channel_alpha_gradient_is_summed_over_broadcast_axes():
    x = torch.randn(2, 3, 4, 4, dtype=torch.float64, requires_grad=True)
    a = torch.rand(3, 1, 1, dtype=torch.float64).add(0.5).requires_grad_()
    AF.adaptive_gumbel(x, a).sum().backward()
    a_full = a.detach().expand(2, 3, 4, 4).clone().requires_grad_()
    AF.adaptive_gumbel(x.detach(), a_full).sum().backward()
    torch.testing.assert_close(a.grad, a_full.grad.sum(dim=(0, 2, 3)).reshape(3, 1, 1), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("backend", ["eager", "native", "compile"])
def test_outer_product_broadcasting_reduces_both_gradients(backend):
    """x of shape (n, 1) against alpha of shape (1, m), as when drawing one curve per neuron."""
    previous = actadapt.get_backend()
    actadapt.set_backend(backend)
    try:
        x = torch.linspace(-3, 3, 7, dtype=torch.float64)[:, None].requires_grad_()
        a = torch.tensor([[0.3, 1.0, 4.0]], dtype=torch.float64, requires_grad=True)
        for fn in (AF.adaptive_gumbel, AF.adaptive_relu, AF.swish):
            y = fn(x, a)
            assert y.shape == (7, 3)
            gx, ga = torch.autograd.grad(y.sum(), (x, a))
            xe, ae = x.detach().expand(7, 3).clone().requires_grad_(), a.detach().expand(7, 3).clone().requires_grad_()
            gxe, gae = torch.autograd.grad(fn(xe, ae).sum(), (xe, ae))
            torch.testing.assert_close(y, fn(xe, ae))
            torch.testing.assert_close(gx, gxe.sum(1, keepdim=True))
            torch.testing.assert_close(ga, gae.sum(0, keepdim=True))
    finally:
        actadapt.set_backend(previous)


# --------------------------------------------------------------------- dtypes and bad input
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=["f16", "bf16"])
@pytest.mark.parametrize("family,form", ALL, ids=[f"{f}-{g}" for f, g in ALL])
def test_half_precision_forward_is_finite_and_close(family, form, dtype, eager_backend):
    x64, a64 = make_grid(torch.float32, n_random=200)
    x = torch.tensor(x64).to(dtype)
    a = torch.tensor(a64).to(dtype).clamp_min(torch.finfo(dtype).tiny)
    y = AF.adaptive_activation(x, a, family, form)
    assert y.dtype == dtype
    assert torch.isfinite(y).all()
    y32 = AF.adaptive_activation(x.float(), a.float(), family, form)
    tol = torch.finfo(dtype).eps
    err = (y.float() - y32.to(dtype).float()).abs()
    assert (err <= tol * y32.abs() + torch.finfo(dtype).tiny).all()


def test_bad_inputs_name_the_problem():
    with pytest.raises(TypeError, match="floating-point"):
        AF.swish(torch.arange(3), torch.tensor(1.0))
    with pytest.raises(TypeError, match="alpha"):
        AF.swish(torch.zeros(3), 1.0)
    with pytest.raises(ValueError, match="valid forms: bounded, gated"):
        AF.adaptive_activation(torch.zeros(3), torch.tensor(1.0), "gumbel", "gate")
    with pytest.raises(ValueError, match="valid families: .*cauchy.*gumbel"):
        AF.adaptive_activation(torch.zeros(3), torch.tensor(1.0), "gumble")
