"""The Triton kernels: on CPU tensors through Triton's interpreter (``TRITON_INTERPRET=1``, which conftest.py
sets before triton is imported), or on a CUDA device when ``ACTADAPT_TEST_DEVICE=cuda`` (as
``benchmarks/gpu_check.py`` runs them).

The same checks as the C++ kernel's: the accuracy contract against the mpmath reference on the hard-region
grid, every layout against eager float64, half precision computed in float32, memory formats and extreme
inputs. The interpreter runs the kernels' own arithmetic (no GPU approximations are involved: every
transcendental is built from FMAs), so it checks the formulas; gpu_check.py checks them on the GPU too.
"""

from __future__ import annotations

import os

import pytest
import torch

import actadapt
from actadapt import functional as AF

from . import test_functional as TF
from .test_kernels import FN_IDS, FNS, check_channels_last, check_extremes

pytest.importorskip("triton")
# inf and NaN arithmetic in the interpreter's numpy warns; on a GPU it is silent, and the results are checked here
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning:triton.runtime.interpreter")

DEVICE = os.environ.get("ACTADAPT_TEST_DEVICE", "cpu")


@pytest.fixture(scope="module", autouse=True)
def triton_backend():
    """Backend "triton" for every test here; on CPU, Triton's interpreter (decided when the kernels load)."""
    if DEVICE != "cpu" and not torch.cuda.is_available():
        pytest.skip(f"ACTADAPT_TEST_DEVICE={DEVICE}, but no CUDA device is available")
    from actadapt.kernels import gpu

    problem = gpu.unavailable(DEVICE)
    if problem is not None:  # conftest.py sets TRITON_INTERPRET=1 for CPU runs, before triton is imported
        pytest.skip(problem)
    previous = actadapt.get_backend()
    actadapt.set_backend("triton")
    try:
        yield
    finally:
        actadapt.set_backend(previous)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("family,form", TF.MAIN, ids=[f"{f}-{g}" for f, g in TF.MAIN])
def test_contract_triton(family, form, dtype):
    TF.check_contract(family, form, dtype, DEVICE)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("family,form", TF.MAIN, ids=[f"{f}-{g}" for f, g in TF.MAIN])
def test_triton_contract_at_the_underflow_edges(family, form, dtype):
    TF.check_contract(family, form, dtype, DEVICE, grid=TF.underflow_grid)


@pytest.mark.skipif(DEVICE != "cpu", reason="emulates a GPU's flush-to-zero in the interpreter")
@pytest.mark.parametrize("grid", [TF.make_grid, TF.underflow_grid], ids=["grid", "underflow-edges"])
@pytest.mark.parametrize("family,form", TF.MAIN, ids=[f"{f}-{g}" for f, g in TF.MAIN])
def test_triton_float32_contract_with_subnormals_flushed(family, form, grid):
    """GPUs flush float32 subnormals in many operations; the interpreter (numpy) does too under FTZ and DAZ. The
    float32 contract must hold either way (float64 is never flushed on a GPU)."""
    TF.check_contract(family, form, torch.float32, DEVICE, grid=grid, flush=True)


@pytest.mark.parametrize("layout", list(TF.LAYOUTS))
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
def test_triton_layouts_match_eager(layout, dtype):
    TF.check_layout_matches_eager(layout, dtype, "triton", DEVICE)


@pytest.mark.slow
@pytest.mark.parametrize("family,form", TF.MAIN, ids=[f"{f}-{g}" for f, g in TF.MAIN])
def test_triton_float32_dense_random_points(family, form):
    TF.check_float32_dense_random_points(family, form, "triton", n=200_000 if DEVICE == "cuda" else 15_000,
                                         device=DEVICE)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=["f16", "bf16"])
@pytest.mark.parametrize("name,fn", FNS, ids=FN_IDS)
def test_triton_half_precision_is_computed_in_float32(name, fn, dtype):
    g = torch.Generator().manual_seed(4)
    x = (torch.randn(6, 4, 9, generator=g) * 4).to(dtype)
    a = torch.rand(4, 1, generator=g) + 0.2  # float32 alpha beside half x, as under autocast
    gy = torch.randn(6, 4, 9, generator=g).to(dtype)
    x_d, a_d = x.to(DEVICE).requires_grad_(), a.to(DEVICE).requires_grad_()
    y = fn(x_d, a_d)
    gx, ga = torch.autograd.grad(y, (x_d, a_d), gy.to(DEVICE))
    assert y.dtype == gx.dtype == dtype and ga.dtype == torch.float32
    x32, a32 = x.float().requires_grad_(), a.clone().requires_grad_()
    y32 = fn(x32, a32)
    gx32, ga32 = torch.autograd.grad(y32, (x32, a32), gy.float())
    eps = torch.finfo(dtype).eps
    for got, exact in ((y, y32), (gx, gx32)):  # float32 results, rounded once to the half dtype
        err = (got.cpu().float() - exact.to(dtype).float()).abs()
        assert (err <= eps * exact.abs() + torch.finfo(dtype).tiny).all()
    torch.testing.assert_close(ga.cpu(), ga32, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name,fn", FNS, ids=FN_IDS)
def test_triton_channels_last_in_channels_last_out(name, fn):
    check_channels_last(fn, DEVICE)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("name,fn", FNS, ids=FN_IDS)
def test_triton_extreme_inputs_stay_finite_where_eager_does(name, fn, dtype):
    check_extremes(name, fn, dtype, DEVICE)


def test_triton_tiny_alpha_takes_the_two_regime_form():
    """alpha below 1e-7 (down to 0, the Gumbel cdf) in float64: the kernels' other branch, continuous in alpha."""
    x = torch.linspace(-30, 3.5, 301, dtype=torch.float64)
    gumbel = -torch.expm1(-torch.exp(x))
    for a in [1e-8, 1e-12, 1e-300, 0.0]:
        got = AF.adaptive_gumbel(x.to(DEVICE), torch.tensor(a, dtype=torch.float64, device=DEVICE)).cpu()
        assert ((got - gumbel).abs() / gumbel).max() <= max(5 * a * 33.2, 1e-14), a
