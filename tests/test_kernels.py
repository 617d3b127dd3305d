"""The fused operator ``actadapt::cdf_activation`` (issue 10) and the native path's edge cases (issue 14).

Registration (opcheck), torch.compile with the operator in the graph, torch.export, torch.func, checkpointing,
autocast, memory formats, extreme inputs, double backward, and the per-instruction-set C++ builds. The
accuracy contract itself is checked in test_functional.py (every backend) and test_kernels_triton.py.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import warnings
from types import SimpleNamespace

import pytest
import torch
from torch import nn

import actadapt
from actadapt import functional as AF
from actadapt.kernels import FUSED, cpu, dispatch

FNS = [("gumbel", AF.adaptive_gumbel), ("relu", AF.adaptive_relu), ("swish", AF.swish)]
FN_IDS = [name for name, _ in FNS]
OP = torch.ops.actadapt.cdf_activation.default
OP_BACKWARD = torch.ops.actadapt.cdf_activation_backward.default


def _grads(fn, x, a, gy=None):
    x, a = x.detach().clone().requires_grad_(), a.detach().clone().requires_grad_()
    y = fn(x, a)
    gx, ga = torch.autograd.grad(y, (x, a), torch.ones_like(y) if gy is None else gy)
    return y.detach(), gx, ga


def _eager(fn, x, a, gy=None):
    previous = actadapt.get_backend()
    actadapt.set_backend("eager")
    try:
        return _grads(fn, x, a, gy)
    finally:
        actadapt.set_backend(previous)


# ------------------------------------------------------------------------------------ registration
@pytest.mark.parametrize("kind", range(len(FUSED)), ids=FN_IDS)
def test_opcheck(kind, native_backend):
    """Schema, fake kernel, autograd registration and AOT dispatch, as torch.library's own checker sees them."""
    g = torch.Generator().manual_seed(kind)
    x = torch.randn(4, 3, 5, generator=g, dtype=torch.float64, requires_grad=True)
    a = torch.rand(3, 1, generator=g, dtype=torch.float64).add(0.3).requires_grad_()
    torch.library.opcheck(OP, (x, a, kind))
    torch.library.opcheck(OP_BACKWARD, (torch.randn(4, 3, 5, dtype=torch.float64), x.detach(), a.detach(), kind))


def test_operator_rejects_bad_arguments_by_name(native_backend):
    with pytest.raises(ValueError, match="kind must be 0..2, got 7"):
        OP(torch.zeros(3), torch.ones(()), 7)
    with pytest.raises(ValueError, match=r"alpha of shape \(4,\) must broadcast to x of shape \(2, 3\)"):
        OP(torch.zeros(2, 3), torch.ones(4), 0)


def test_only_the_builtin_formulas_take_the_fused_path(native_backend):
    fam = actadapt.get_family("gumbel")
    assert dispatch.fused_kind(fam, gated=False) == 0
    assert dispatch.fused_kind(fam, gated=True) is None  # gated Gumbel: not one of the paper's three
    own = actadapt.register_family("my_gumbel_copy", fam.cdf, lambda x, a: fam.cdf_and_grads(x, a), overwrite=True)
    assert dispatch.fused_kind(own, gated=False) is None  # same name or not, other formulas go the generic way


# ------------------------------------------------------------------------------------ torch.compile
def _net():
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(2, 3, 3), actadapt.AdaptiveReLU(3, init=0.7), nn.Flatten(),  # per channel
        nn.Linear(48, 6), actadapt.AdaptiveGumbel(6, init=0.5),  # per feature
        nn.Linear(6, 4), actadapt.AdaptiveSwish(init=1.5),  # shared
    )


def test_compile_fullgraph_calls_the_fused_operator_forward_and_backward(native_backend):
    from functorch.compile import make_boxed_func
    from torch._dynamo.backends.common import aot_autograd

    graphs = {"forward": [], "backward": []}

    def recorder(kind):
        def compiler(gm, example_inputs):
            graphs[kind].append(gm)
            return make_boxed_func(gm.forward)
        return compiler

    torch._dynamo.reset()
    eager_net, net = _net(), _net()
    compiled = torch.compile(net, fullgraph=True,
                             backend=aot_autograd(fw_compiler=recorder("forward"), bw_compiler=recorder("backward")))
    x = torch.randn(5, 2, 6, 6)
    out = compiled(x)
    out.square().sum().backward()
    eager_net(x).square().sum().backward()
    targets = {kind: [str(n.target) for gm in gms for n in gm.graph.nodes] for kind, gms in graphs.items()}
    assert targets["forward"].count("actadapt.cdf_activation.default") == 3
    assert targets["backward"].count("actadapt.cdf_activation_backward.default") == 3
    torch.testing.assert_close(out, eager_net(x))
    for (name, p_e), (_, p_c) in zip(eager_net.named_parameters(), net.named_parameters()):
        torch.testing.assert_close(p_c.grad, p_e.grad, msg=name)


@pytest.mark.slow
def test_inductor_code_calls_the_fused_operator(native_backend):
    """Default torch.compile (inductor): the generated code calls the operator, and matches eager."""
    from torch._inductor.utils import run_and_get_code

    torch._dynamo.reset()
    eager_net, net = _net(), _net()
    compiled = torch.compile(net, fullgraph=True)
    x = torch.randn(5, 2, 6, 6)
    out, codes = run_and_get_code(lambda: compiled(x))
    assert any("torch.ops.actadapt.cdf_activation.default" in code for code in codes), codes
    torch.testing.assert_close(out, eager_net(x))
    out.sum().backward()
    eager_net(x).sum().backward()
    for (name, p_e), (_, p_c) in zip(eager_net.named_parameters(), net.named_parameters()):
        torch.testing.assert_close(p_c.grad, p_e.grad, msg=name)


def test_export_keeps_the_operator_and_runs_any_batch(native_backend):
    net = _net().eval()
    x = torch.randn(5, 2, 6, 6)
    program = torch.export.export(net, (x,), dynamic_shapes=({0: torch.export.Dim("batch", min=1, max=64)},))
    ops = [str(n.target) for n in program.graph.nodes]
    assert ops.count("actadapt.cdf_activation.default") == 3
    decomposed = [str(n.target) for n in program.run_decompositions().graph.nodes]
    assert decomposed.count("actadapt.cdf_activation.default") == 3  # kept, not decomposed
    for n in (5, 2, 17):
        xi = torch.randn(n, 2, 6, 6)
        torch.testing.assert_close(program.module()(xi), net(xi))


# ---------------------------------------------------------------------------- torch.func, checkpoint
@pytest.mark.parametrize("name,fn", FNS, ids=FN_IDS)
def test_torch_func_grad_vmap_and_per_example_gradients(name, fn, native_backend):
    g = torch.Generator().manual_seed(5)
    x = torch.randn(6, 4, 3, generator=g, dtype=torch.float64) * 2
    a = torch.rand(4, 1, generator=g, dtype=torch.float64) + 0.2
    _, gx, ga = _eager(fn, x, a)
    got_ga = torch.func.grad(lambda a: fn(x, a).sum())(a)
    got_gx = torch.func.grad(lambda x: fn(x, a).sum())(x)
    torch.testing.assert_close(got_ga, ga)
    torch.testing.assert_close(got_gx, gx)
    torch.testing.assert_close(torch.func.vmap(lambda xi: fn(xi, a))(x), fn(x, a))
    # alpha batched too: one alpha per example
    a_batch = torch.rand(6, 4, 1, generator=g, dtype=torch.float64) + 0.2
    torch.testing.assert_close(torch.func.vmap(fn)(x, a_batch), torch.stack([fn(xi, ai) for xi, ai in zip(x, a_batch)]))
    per_example = torch.func.vmap(torch.func.grad(lambda a, xi: fn(xi, a).sum()), in_dims=(None, 0))(a, x)
    loop = torch.stack([torch.func.grad(lambda a, xi=xi: fn(xi, a).sum())(a) for xi in x])
    torch.testing.assert_close(per_example, loop)
    torch.testing.assert_close(per_example.sum(0), ga)


@pytest.mark.parametrize("reentrant", [False, True], ids=["non-reentrant", "reentrant"])
def test_checkpoint_recomputes_through_the_operator(reentrant, native_backend):
    from torch.utils.checkpoint import checkpoint

    net = _net()
    x = torch.randn(4, 2, 6, 6, requires_grad=True)
    checkpoint(net, x, use_reentrant=reentrant).square().sum().backward()
    grads = [p.grad.clone() for p in net.parameters()] + [x.grad.clone()]
    net.zero_grad()
    x.grad = None
    net(x).square().sum().backward()
    for got, expected in zip(grads, [p.grad for p in net.parameters()] + [x.grad]):
        torch.testing.assert_close(got, expected)


def test_autocast_bf16_through_the_operator(native_backend):
    net = nn.Sequential(nn.Conv2d(2, 4, 3), actadapt.AdaptiveReLU(4), actadapt.AdaptiveGumbel(4),
                        actadapt.AdaptiveSwish(4))
    x = torch.randn(3, 2, 8, 8)
    reference = net(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = net(x)
    assert out.dtype == torch.bfloat16  # conv runs in bf16 under autocast; the activations keep its dtype
    torch.testing.assert_close(out.float(), reference, rtol=3e-2, atol=3e-2)
    out.float().sum().backward()
    for name, p in net.named_parameters():
        assert p.grad.dtype == torch.float32 and torch.isfinite(p.grad).all(), name


def test_double_backward_goes_through_the_reference_formulas(native_backend):
    x = torch.randn(3, 4, 5, dtype=torch.float64, requires_grad=True)
    a = (torch.rand(4, 1, dtype=torch.float64) + 0.2).requires_grad_()
    for _, fn in FNS:
        assert torch.autograd.gradgradcheck(fn, (x, a))


def test_operator_saves_only_its_inputs(native_backend):
    x = torch.randn(64, 8, requires_grad=True)
    a = torch.ones(8, requires_grad=True)
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        for _, fn in FNS:
            fn(x, a)
    assert len(saved) == 6 and all(t.data_ptr() in (x.data_ptr(), a.data_ptr()) for t in saved)


# ------------------------------------------------------------------- memory format, extreme inputs
def check_channels_last(fn, device="cpu"):
    g = torch.Generator().manual_seed(2)
    x = (torch.randn(3, 8, 5, 6, generator=g) * 3).to(memory_format=torch.channels_last)
    a = torch.rand(8, 1, 1, generator=g) + 0.3
    gy = torch.randn(3, 8, 5, 6, generator=g).to(memory_format=torch.channels_last)
    y, gx, ga = _grads(fn, x.to(device), a.to(device), gy.to(device))
    assert y.is_contiguous(memory_format=torch.channels_last) and y.stride() == x.stride()
    assert gx.is_contiguous(memory_format=torch.channels_last)
    for got, expected in zip((y, gx, ga), _eager(fn, x.double(), a.double(), gy.double())):
        torch.testing.assert_close(got.cpu().double(), expected, rtol=1e-4, atol=1e-6)
    # a contiguous gradient for a channels-last input, and a transposed (dense, permuted) input
    _, gx2, _ = _grads(fn, x.to(device), a.to(device), gy.contiguous().to(device))
    torch.testing.assert_close(gx2, gx)
    xt = x.contiguous().transpose(2, 3).to(device)
    torch.testing.assert_close(fn(xt, a.to(device)), fn(xt.contiguous(), a.to(device)))
    assert fn(xt, a.to(device)).stride() == xt.stride()


@pytest.mark.parametrize("name,fn", FNS, ids=FN_IDS)
def test_channels_last_in_channels_last_out(name, fn, native_backend):
    """As eager elementwise ops do (issue 14: the native path returned a contiguous tensor)."""
    check_channels_last(fn)


def check_extremes(name, fn, dtype, device="cpu"):
    big = 3e38 if dtype == torch.float32 else 1e308
    values = [float("inf"), -float("inf"), 1e30, -1e30, big, -big, 1.5, -0.5, 0.0, 20.0]
    x = torch.tensor(values, dtype=dtype).repeat(4, 3, 1)  # (4, 3, 10): every channel holds every value
    for c, special in enumerate([float("inf"), 1e30, -1e30]):  # channel c also ends with one more extreme
        x[:, c, -1] = special
    a = torch.tensor([0.5, 2.0, 1e-3], dtype=dtype).reshape(3, 1)
    got, expected = _grads(fn, x.to(device), a.to(device)), _eager(fn, x, a)
    for what, g_, e_ in zip(("value", "d/dx", "d/dalpha"), got, expected):
        g_ = g_.cpu()
        finite = torch.isfinite(e_)
        assert torch.isfinite(g_[finite]).all(), f"{name} {what}: non-finite where eager is finite"
        torch.testing.assert_close(g_[finite], e_[finite], rtol=1e-5, atol=1e-30, msg=f"{name} {what}")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("name,fn", FNS, ids=FN_IDS)
def test_extreme_inputs_stay_finite_where_eager_does(name, fn, dtype, native_backend):
    """x = +-inf, +-1e30, +-3e38 (float32's edge) in channels that also hold ordinary values (issue 14: the
    native path gave NaN alpha gradients for the whole channel where eager stays finite)."""
    check_extremes(name, fn, dtype)


def test_empty_and_zero_dimensional_inputs(native_backend):
    for _, fn in FNS:
        assert fn(torch.empty(0, 3), torch.ones(3)).shape == (0, 3)
        x, a = torch.tensor(0.7, requires_grad=True), torch.tensor(1.3, requires_grad=True)
        y = fn(x, a)
        y.backward()
        torch.testing.assert_close((y.detach(), x.grad, a.grad), _eager(fn, x, a))


# ---------------------------------------------------------------------------------- subnormals
def _subnormal_mode(tiny: float = 1e-300, subnormal: float = 1e-310) -> dict:
    """What this thread's arithmetic and torch's worker threads do with subnormals now (run-time products, which
    Python cannot fold at compile time)."""
    chunks = torch.full((1 << 18,), 1e-30) * 1e-10  # float32 1e-40, split over torch's threads
    return {"FTZ (this thread)": tiny * 1e-10 == 0.0, "DAZ (this thread)": subnormal * 1.0 == 0.0,
            "FTZ (torch's threads)": bool((chunks == 0).any())}


def _run_every_kernel(alpha: float):
    """Forward and backward of the three activations through the C++ kernel, float32, both loop shapes, with
    alpha x up to ~400 (subnormal e^{-alpha x} everywhere)."""
    g = torch.Generator().manual_seed(9)
    out = []
    for x_shape, a_shape in [((8, 16, 32, 32), (16, 1, 1)), ((2048, 64), (64,))]:
        x = torch.randn(x_shape, generator=g).requires_grad_()
        a = torch.full(a_shape, alpha).requires_grad_()
        for _, fn in FNS:
            y = fn(x, a)
            out += [y.detach(), *torch.autograd.grad(y, (x, a), torch.ones_like(y))]
    return out


def test_kernel_leaves_the_callers_subnormal_mode_alone(native_backend):
    """The float32 kernel flushes subnormals (FTZ and DAZ) in each of its chunks, on whichever thread runs it, and
    puts back the caller's mode: off stays off (in the caller's thread and torch's worker threads), on stays on.
    The results do not depend on the caller's mode."""
    module = cpu.load()
    if module is None:
        pytest.skip("no C++ compiler: the reference formulas run instead")
    assert module.flushes_subnormals == (platform.machine().lower() in ("x86_64", "amd64", "i386", "i686"))
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        keeps = dict.fromkeys(_subnormal_mode(), False)
        assert _subnormal_mode() == keeps
        results = _run_every_kernel(100.0)
        assert _subnormal_mode() == keeps, "the kernel left subnormals flushed"
        if not torch.set_flush_denormal(True):
            pytest.skip("this CPU cannot flush subnormals (torch.set_flush_denormal)")
        try:
            results_flushing = _run_every_kernel(100.0)
            mode = _subnormal_mode()
            assert mode["FTZ (this thread)"] and mode["DAZ (this thread)"], "the kernel turned the caller's flush off"
        finally:
            torch.set_flush_denormal(False)
        assert _subnormal_mode() == keeps
    finally:
        torch.set_num_threads(threads)
    for got, expected in zip(results_flushing, results):
        assert torch.equal(got, expected)


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_contract_without_flushing_subnormals(monkeypatch, native_backend):
    """The build for machines where the kernel keeps the floating-point mode as it is (no MXCSR: aarch64 and
    others), made here with -DACTADAPT_KEEP_SUBNORMALS: the same formulas meet the contract with gradual
    underflow too."""
    from . import test_functional as TF

    if cpu.load() is None:
        pytest.skip("no C++ compiler: the reference formulas run instead")
    module = cpu._build("DEFAULT", ("ACTADAPT_KEEP_SUBNORMALS",))
    assert module.capability == "DEFAULT" and not module.flushes_subnormals
    monkeypatch.setitem(cpu._state, "module", module)
    for family, form in TF.MAIN:
        for dtype in (torch.float32, torch.float64):
            for grid in (TF.make_grid, TF.underflow_grid):
                TF.check_contract(family, form, dtype, grid=grid)
        TF.check_float32_dense_random_points(family, form, "native", n=50_000)


# --------------------------------------------------------------------- per-instruction-set builds
def test_kernel_is_built_for_torchs_capability():
    module = cpu.load()
    if module is None:
        pytest.skip("no C++ compiler: the reference formulas run instead")
    assert module.capability == cpu.capability()
    names = {cap: cpu.module_name(cap) for cap in ("AVX512", "AVX2", "DEFAULT")}
    assert len(set(names.values())) == 3 and all(name.startswith(f"actadapt_cpu_{cap.lower()}_")
                                                 for cap, name in names.items())


@pytest.mark.parametrize("machine,reported,expected", [
    ("x86_64", "AVX512", "AVX512"), ("x86_64", "AVX2", "AVX2"), ("x86_64", "DEFAULT", "DEFAULT"),
    ("x86_64", "NO AVX", "DEFAULT"), ("aarch64", "SVE256", "DEFAULT"), ("aarch64", "DEFAULT", "DEFAULT"),
])
def test_capability_follows_torch(monkeypatch, machine, reported, expected):
    monkeypatch.setattr(platform, "machine", lambda: machine)
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: reported)
    assert cpu.capability() == expected


def test_a_failed_wide_build_falls_back_to_a_narrower_one(monkeypatch):
    built = []

    def fake_build(cap):
        built.append(cap)
        if cap == "AVX512":
            raise RuntimeError("error: unrecognized command-line option '-mavx512f' in activations.cpp")
        return f"module-{cap}"

    monkeypatch.setattr(cpu, "_state", {"module": None, "failed": False})
    monkeypatch.setattr(cpu, "capability", lambda: "AVX512")
    monkeypatch.setattr(cpu, "_build", fake_build)
    with pytest.warns(RuntimeWarning, match="built the AVX2 kernel instead.*AVX512.*mavx512f"):
        assert cpu.load() == "module-AVX2"
    assert built == ["AVX512", "AVX2"]


def _x86_with_avx2() -> bool:
    return platform.machine().lower() in ("x86_64", "amd64") and cpu.capability() in ("AVX2", "AVX512")


@pytest.mark.slow
@pytest.mark.timeout(1200)
@pytest.mark.parametrize("capability", ["avx2", "default"])
def test_contract_with_aten_cpu_capability(capability, tmp_path):
    """The whole native part of the accuracy contract, in a process where ATEN_CPU_CAPABILITY narrows torch's
    kernels and ours (on an AVX-512 machine, the AVX2 build; everywhere, the portable one). torch.compile's
    disk cache is not keyed by the capability (torch 2.13), so the child gets its own."""
    if capability == "avx2" and not _x86_with_avx2():
        pytest.skip("no AVX2 on this machine")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, ATEN_CPU_CAPABILITY=capability, TORCHINDUCTOR_CACHE_DIR=str(tmp_path / "inductor"))
    check = f"from actadapt.kernels import cpu; m = cpu.load(); assert m.capability == '{capability.upper()}', m.capability"
    subprocess.run([sys.executable, "-c", check], env=env, cwd=root, check=True, timeout=900)
    result = subprocess.run(
        # -k filters the named tests too: "test_kernels" keeps these (it matches their module's name)
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_functional.py",
         "-k", "native or test_kernels", "tests/test_kernels.py::test_extreme_inputs_stay_finite_where_eager_does",
         "tests/test_kernels.py::test_channels_last_in_channels_last_out",
         "tests/test_kernels.py::test_kernel_leaves_the_callers_subnormal_mode_alone"],
        env=env, cwd=root, capture_output=True, text=True, timeout=900, check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


# ------------------------------------------------------------------------------------------ fallbacks
@pytest.fixture
def triton_forced():
    previous = actadapt.get_backend()
    actadapt.set_backend("triton")
    yield
    actadapt.set_backend(previous)


def test_triton_backend_on_cpu_needs_the_interpreter(monkeypatch, triton_forced):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    with pytest.raises(RuntimeError, match="TRITON_INTERPRET=1"):
        AF.swish(torch.randn(3), torch.ones(()))


def test_missing_triton_fails_clearly_when_forced(monkeypatch, triton_forced):
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    monkeypatch.setitem(sys.modules, "actadapt.kernels.gpu", None)  # import fails as if triton were missing
    monkeypatch.delattr(actadapt.kernels, "gpu", raising=False)
    with pytest.raises(RuntimeError, match="backend 'triton' needs Triton.*cannot be imported"):
        AF.swish(torch.randn(3), torch.ones(()))


def test_reference_fallback_warns_once(monkeypatch):
    monkeypatch.setattr(dispatch, "_warned", set())
    with pytest.warns(RuntimeWarning, match="no Triton kernel for cuda tensors"):
        assert dispatch._fall_back("no Triton kernel for cuda tensors (test)") == "reference"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert dispatch._fall_back("no Triton kernel for cuda tensors (test)") == "reference"


def test_a_failing_triton_kernel_falls_back_under_auto_only(monkeypatch):
    monkeypatch.setattr(dispatch, "_warned", set())
    monkeypatch.setattr(dispatch, "_triton_failure", [])

    def broken(*args):
        raise RuntimeError("PTX assembly failed for sm_42")

    actadapt.set_backend("triton")
    try:
        with pytest.raises(RuntimeError, match="sm_42"):
            dispatch.run_triton(broken)
        actadapt.set_backend("auto")
        with pytest.warns(RuntimeWarning, match="Triton kernel failed: RuntimeError: PTX assembly failed"):
            assert dispatch.run_triton(broken) is None
        cuda_tensor = SimpleNamespace(device=SimpleNamespace(type="cuda"))  # what implementation() reads
        with pytest.warns(RuntimeWarning, match="no Triton kernel for cuda tensors.*PTX assembly failed"):
            assert dispatch.implementation(cuda_tensor) == "reference"  # from then on
    finally:
        actadapt.set_backend("eager")
