"""The nn.Module layer: AdaptiveActivation and its three named subclasses (issue 2, item 5).

Module outputs are compared with naive textbook formulas evaluated in float64 (independent of the library's
stable formulas, and exact enough on the moderate range used here).
"""

from __future__ import annotations

import copy
import io
import math
import pickle

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call
from torch.nn.parameter import UninitializedBuffer, UninitializedParameter

import actadapt
from actadapt import AdaptiveActivation, AdaptiveGumbel, AdaptiveReLU, AdaptiveSwish
from actadapt.modules import LazyAdaptiveGumbel, LazyAdaptiveReLU, LazyAdaptiveSwish


# ------------------------------------------------------------------------------ naive references
def ref_gumbel(x, a):
    return 1 - (1 + a * torch.exp(x)) ** (-1 / a)


def ref_arelu(x, a):
    return torch.where(x > 0, x * (1 - torch.exp(-a * x)), torch.zeros_like(x))


def ref_swish(x, a):
    return x / (1 + torch.exp(-a * x))


def ref_normal_gated(x, a):
    return x * 0.5 * (1 + torch.erf(a * x / math.sqrt(2)))


def ref_laplace_bounded(x, a):
    t = a * x
    return torch.where(t < 0, 0.5 * torch.exp(t), 1 - 0.5 * torch.exp(-t))


def ref_cauchy_bounded(x, a):
    return 0.5 + torch.atan(a * x) / math.pi


# (constructor taking the shared keyword arguments, reference)
CASES = {
    "gumbel": (AdaptiveGumbel, ref_gumbel),
    "relu": (AdaptiveReLU, ref_arelu),
    "swish": (AdaptiveSwish, ref_swish),
    "normal-gated": (lambda **kw: AdaptiveActivation("normal", "gated", **kw), ref_normal_gated),
    "laplace-bounded": (lambda **kw: AdaptiveActivation("laplace", "bounded", **kw), ref_laplace_bounded),
    "cauchy-bounded": (lambda **kw: AdaptiveActivation("cauchy", **kw), ref_cauchy_bounded),
    "gumbel-general": (lambda **kw: AdaptiveActivation(**kw), ref_gumbel),  # the defaults
}
MAIN = ["gumbel", "relu", "swish"]
CLASSES = [AdaptiveGumbel, AdaptiveReLU, AdaptiveSwish]

# (input shape, dim, index of the neuron axis)
LAYOUTS = [
    ((5, 4), 1, 1),  # (N, F)
    ((3, 4, 5, 6), 1, 1),  # (N, C, H, W)
    ((3, 4, 7), 1, 1),  # (N, C, L)
    ((2, 7, 4), -1, 2),  # (N, L, C)
    ((2, 4, 3, 5), -3, 1),  # negative dim counting to the channel axis
    ((4,), 1, 0),  # one unbatched sample (F,)
    ((4,), -1, 0),
]


def _set_alpha(module: AdaptiveActivation, alpha: torch.Tensor) -> None:
    with torch.no_grad():
        if module.parametrization == "exp":
            module.rho.copy_(alpha.log())
        else:
            module.rho.copy_(alpha + torch.log(-torch.expm1(-alpha)))


# -------------------------------------------------------------------------------- forward values
@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("shape,dim,axis", LAYOUTS)
@pytest.mark.parametrize("parametrization", ["exp", "softplus"])
def test_per_neuron_forward_matches_reference(case, shape, dim, axis, parametrization):
    make, ref = CASES[case]
    n = shape[axis]
    m = make(num_parameters=n, dim=dim, parametrization=parametrization, dtype=torch.float64)
    alpha = torch.linspace(0.3, 4.0, n, dtype=torch.float64)
    _set_alpha(m, alpha)
    torch.testing.assert_close(m.alpha, alpha, rtol=1e-12, atol=0)
    x = torch.randn(shape, dtype=torch.float64) * 3
    view = [1] * len(shape)
    view[axis] = n
    expected = ref(x, alpha.reshape(view))
    out = m(x)
    assert out.shape == x.shape and out.dtype == x.dtype
    torch.testing.assert_close(out, expected, rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("shape", [(), (7,), (3, 5), (2, 3, 4, 5)])
def test_shared_alpha_broadcasts_to_any_shape(case, shape):
    make, ref = CASES[case]
    m = make(init=0.7, dtype=torch.float64)
    assert m.rho.shape == (1,)
    x = torch.randn(shape, dtype=torch.float64) * 3
    torch.testing.assert_close(m(x), ref(x, torch.tensor(0.7, dtype=torch.float64)), rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize(
    "module,builtin",
    [
        (AdaptiveGumbel(), torch.sigmoid),
        (AdaptiveSwish(), F.silu),
        (AdaptiveReLU(), lambda x: x * -torch.expm1(-x.clamp(min=0))),
        (AdaptiveActivation("normal", "gated"), F.gelu),
        (AdaptiveActivation("logistic", "bounded"), torch.sigmoid),
    ],
    ids=["gumbel=sigmoid", "swish=silu", "arelu=x(1-e^-x)", "normal-gated=gelu", "logistic=sigmoid"],
)
def test_default_init_starts_as_the_classic_activation(module, builtin):
    # float64: torch's own gelu loses relative accuracy in the lower tail in float32 (1 + erf cancels)
    x = torch.linspace(-8, 8, 101, dtype=torch.float64)
    torch.testing.assert_close(module(x), builtin(x), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_output_follows_input_dtype(dtype):
    m = AdaptiveGumbel(3)
    out = m(torch.randn(2, 3, dtype=dtype))
    assert out.dtype == dtype


def test_module_alpha_is_reshaped_not_copied_per_channel():
    # changing one channel's alpha changes that channel only
    m = AdaptiveGumbel(4, dtype=torch.float64)
    x = torch.randn(3, 4, 5, dtype=torch.float64)
    before = m(x)
    with torch.no_grad():
        m.rho[2] = math.log(0.1)
    after = m(x)
    changed = (after - before).abs().amax(dim=(0, 2)) > 0
    assert changed.tolist() == [False, False, True, False]


# ----------------------------------------------------------------------------- parameters, init
@pytest.mark.parametrize("init", [1e-6, 1e-3, 0.5, 1.0, 3.0, 50.0, 1e3])
@pytest.mark.parametrize("parametrization", ["exp", "softplus"])
@pytest.mark.parametrize("dtype,rtol", [(torch.float64, 1e-12), (torch.float32, 1e-6)])
def test_reset_parameters_gives_alpha_equal_to_init(init, parametrization, dtype, rtol):
    m = AdaptiveActivation(num_parameters=3, init=init, parametrization=parametrization, dtype=dtype)
    assert m.rho.dtype == dtype
    expected = torch.full((3,), init, dtype=torch.float64)
    torch.testing.assert_close(m.alpha.double(), expected, rtol=rtol, atol=0)
    with torch.no_grad():
        m.rho.add_(0.3)
    m.reset_parameters()
    torch.testing.assert_close(m.alpha.double(), expected, rtol=rtol, atol=0)


@pytest.mark.parametrize("cls", CLASSES)
@pytest.mark.parametrize("n", [1, 5])
def test_rho_is_a_parameter_named_rho(cls, n):
    m = cls(n)
    params = dict(m.named_parameters())
    assert list(params) == ["rho"]
    assert isinstance(params["rho"], nn.Parameter) and params["rho"].shape == (n,)
    assert list(dict(m.named_buffers())) == []
    assert list(m.state_dict()) == ["rho"]


@pytest.mark.parametrize("cls", CLASSES)
def test_untrainable_rho_is_a_buffer_in_state_dict(cls):
    m = cls(3, trainable=False, init=2.0)
    assert list(m.parameters()) == []
    assert list(dict(m.named_buffers())) == ["rho"]
    assert list(m.state_dict()) == ["rho"]
    out = m(torch.randn(4, 3, requires_grad=True))
    out.sum().backward()  # only x needs a gradient
    torch.testing.assert_close(m.alpha, torch.full((3,), 2.0))


@pytest.mark.parametrize("parametrization", ["exp", "softplus"])
def test_alpha_stays_positive_for_any_rho(parametrization):
    m = AdaptiveGumbel(5, parametrization=parametrization, dtype=torch.float64)
    with torch.no_grad():
        m.rho.copy_(torch.tensor([-30.0, -5.0, 0.0, 5.0, 30.0], dtype=torch.float64))
    assert (m.alpha > 0).all()
    expected = m.rho.exp() if parametrization == "exp" else torch.log1p(m.rho.exp())
    torch.testing.assert_close(m.alpha, expected, rtol=1e-12, atol=0)


def test_factory_device_and_dtype():
    m = AdaptiveReLU(4, device="cpu", dtype=torch.float64)
    assert m.rho.device.type == "cpu" and m.rho.dtype == torch.float64
    m2 = AdaptiveReLU(4).to(torch.float64)
    assert m2.rho.dtype == torch.float64 and isinstance(m2.rho, nn.Parameter)


# ------------------------------------------------------------------------------------ gradients
@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("parametrization", ["exp", "softplus"])
@pytest.mark.parametrize("shape,dim,n", [((3, 4, 2), 1, 4), ((2, 3, 4), -1, 4), ((3, 5), 1, 1)])
def test_gradcheck_through_module_wrt_input_and_rho(case, parametrization, shape, dim, n):
    make, _ = CASES[case]
    m = make(num_parameters=n, dim=dim, parametrization=parametrization, dtype=torch.float64)
    rho = (torch.randn(n, dtype=torch.float64) * 0.5).requires_grad_()
    x = (torch.randn(shape, dtype=torch.float64) * 2).requires_grad_()

    def f(x, rho):
        return functional_call(m, {"rho": rho}, (x,))

    assert torch.autograd.gradcheck(f, (x, rho))


@pytest.mark.parametrize("cls,ref", [(AdaptiveGumbel, ref_gumbel), (AdaptiveReLU, ref_arelu), (AdaptiveSwish, ref_swish)])
def test_rho_gradient_matches_reference_autograd(cls, ref):
    # d loss / d rho through the library's analytic backward == through plain autograd of the naive formula
    m = cls(3, dtype=torch.float64)
    _set_alpha(m, torch.tensor([0.4, 1.0, 2.5], dtype=torch.float64))
    x = torch.randn(6, 3, 5, dtype=torch.float64) * 2
    w = torch.randn_like(x)
    (m(x) * w).sum().backward()
    rho = m.rho.detach().clone().requires_grad_()
    (ref(x, rho.exp().reshape(3, 1)) * w).sum().backward()
    torch.testing.assert_close(m.rho.grad, rho.grad, rtol=1e-9, atol=1e-12)


def test_per_channel_gradient_only_reaches_its_own_alpha():
    m = AdaptiveSwish(4)
    x = torch.randn(3, 4, 5, 5)
    m(x)[:, 1].sum().backward()
    assert (m.rho.grad != 0).tolist() == [False, True, False, False]


# --------------------------------------------------------------------------------------- lazy
@pytest.mark.parametrize(
    "cls,lazy_cls", [(AdaptiveGumbel, LazyAdaptiveGumbel), (AdaptiveReLU, LazyAdaptiveReLU), (AdaptiveSwish, LazyAdaptiveSwish)]
)
@pytest.mark.parametrize("shape,dim,n", [((2, 6), 1, 6), ((2, 5, 3, 3), 1, 5), ((2, 9, 7), -1, 7), ((8,), 1, 8)])
def test_lazy_module_infers_size_at_first_forward(cls, lazy_cls, shape, dim, n):
    m = cls(num_parameters=None, dim=dim, init=0.5)
    assert type(m) is lazy_cls and isinstance(m, cls)
    assert isinstance(m.rho, UninitializedParameter)
    assert m.num_parameters is None
    assert "num_parameters=None" in repr(m)
    with pytest.raises(RuntimeError, match="forward pass"):
        m.alpha
    out = m(torch.randn(shape))
    assert out.shape == shape
    assert type(m) is cls
    assert m.num_parameters == n and isinstance(m.rho, nn.Parameter) and m.rho.shape == (n,)
    torch.testing.assert_close(m.alpha, torch.full((n,), 0.5))
    assert f"num_parameters={n}" in repr(m)


def test_lazy_untrainable_uses_uninitialized_buffer():
    m = AdaptiveReLU(None, trainable=False, init=2.0)
    assert isinstance(m.rho, UninitializedBuffer)
    m(torch.randn(2, 3))
    assert m.rho.shape == (3,) and list(m.parameters()) == []
    torch.testing.assert_close(m.alpha, torch.full((3,), 2.0))


def test_lazy_general_module_and_user_subclass():
    class MyAct(AdaptiveActivation):
        def __init__(self, **kw):
            super().__init__("laplace", "gated", **kw)

    m = MyAct(num_parameters=None)
    assert type(m).__name__ == "LazyMyAct" and isinstance(m, MyAct)
    m(torch.randn(2, 3))
    assert type(m) is MyAct and m.rho.shape == (3,)
    g = AdaptiveActivation("normal", "gated", num_parameters=None, dim=-1)
    g(torch.randn(2, 3, 4))
    assert type(g) is AdaptiveActivation and g.rho.shape == (4,)


def test_lazy_optimizer_created_before_first_forward_updates_alpha():
    m = nn.Sequential(nn.Linear(3, 4), AdaptiveGumbel(None))
    opt = torch.optim.SGD(m.parameters(), lr=0.5)
    m(torch.randn(5, 3)).sum().backward()
    rho = m[1].rho
    assert rho.shape == (4,) and rho.grad is not None
    opt.step()
    assert not torch.equal(m[1].alpha.detach(), torch.ones(4))


def test_lazy_state_dict_loads_into_uninitialized_module():
    src = AdaptiveReLU(6, init=0.25)
    dst = AdaptiveReLU(None)
    dst.load_state_dict(src.state_dict())
    torch.testing.assert_close(dst.alpha, torch.full((6,), 0.25))
    x = torch.randn(3, 6)
    torch.testing.assert_close(dst(x), src(x))
    assert type(dst) is AdaptiveReLU and dst.num_parameters == 6


def test_lazy_module_pickles_and_deepcopies_before_and_after_init():
    m = AdaptiveSwish(None, init=2.0)
    for clone in (copy.deepcopy(m), pickle.loads(pickle.dumps(m))):
        assert type(clone) is LazyAdaptiveSwish
        clone(torch.randn(2, 3))
        assert type(clone) is AdaptiveSwish and clone.rho.shape == (3,)
    assert type(m) is LazyAdaptiveSwish  # the original is untouched
    buf = io.BytesIO()
    m(torch.randn(2, 5))
    torch.save(m, buf)
    buf.seek(0)
    loaded = torch.load(buf, weights_only=False)
    torch.testing.assert_close(loaded.alpha, torch.full((5,), 2.0))


# ---------------------------------------------------------------------------------- validation
@pytest.mark.parametrize(
    "kwargs,exc,match",
    [
        ({"init": 0.0}, ValueError, r"init .*> 0, got 0\.0"),
        ({"init": -1.0}, ValueError, r"init .*> 0, got -1\.0"),
        ({"init": float("nan")}, ValueError, r"init .*got nan"),
        ({"init": float("inf")}, ValueError, r"init .*got inf"),
        ({"init": "big"}, TypeError, r"init .*got 'big'"),
        ({"parametrization": "sigmoid"}, ValueError, r"'sigmoid'; valid parametrizations: exp, softplus"),
        ({"num_parameters": 0}, ValueError, r"positive int or None.*got 0"),
        ({"num_parameters": -3}, ValueError, r"got -3"),
        ({"num_parameters": 2.5}, ValueError, r"got 2\.5"),
        ({"num_parameters": True}, ValueError, r"got True"),
        ({"dim": 1.0}, TypeError, r"dim must be an int, got float"),
        ({"family": "tanhh"}, ValueError, r"unknown cdf family 'tanhh'; valid families: .*gumbel.*logistic"),
        ({"family": 3}, TypeError, r"family must be a name or a CdfFamily, got int"),
        ({"form": "half"}, ValueError, r"unknown form 'half'; valid forms: bounded, gated"),
    ],
)
def test_constructor_rejects_bad_arguments(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        AdaptiveActivation(**kwargs)


@pytest.mark.parametrize("cls", CLASSES)
def test_size_mismatch_error_names_both_sizes(cls):
    m = cls(5)
    with pytest.raises(ValueError, match=r"num_parameters=5 .* shape \(2, 3, 4\) has size 3 .*expected size 5"):
        m(torch.randn(2, 3, 4))


def test_dim_out_of_range_error():
    m = AdaptiveGumbel(4, dim=3)
    with pytest.raises(ValueError, match=r"dim=3 is out of range for an input of shape \(2, 4\)"):
        m(torch.randn(2, 4))


def test_lazy_rejects_zero_dim_input():
    with pytest.raises(ValueError, match="0-dim"):
        AdaptiveGumbel(None)(torch.tensor(1.0))


def test_family_aliases_resolve_and_cdf_family_objects_work():
    assert AdaptiveActivation("AGumb").family == "gumbel"
    fam = actadapt.get_family("logistic")
    m = AdaptiveActivation(fam, "gated")
    x = torch.randn(10)
    torch.testing.assert_close(m(x), F.silu(x))


def test_user_registered_family_goes_through_autograd():
    actadapt.register_family("test_modules_tanh", lambda x, a: 0.5 * (1 + torch.tanh(a * x)), overwrite=True)
    m = AdaptiveActivation("test_modules_tanh", "bounded", num_parameters=2, init=0.5, dtype=torch.float64)
    x = torch.randn(3, 2, dtype=torch.float64, requires_grad=True)
    out = m(x)
    torch.testing.assert_close(out, 0.5 * (1 + torch.tanh(0.5 * x)))
    out.sum().backward()
    assert m.rho.grad is not None and m.rho.grad.shape == (2,)


# --------------------------------------------------------------------------------------- repr
@pytest.mark.parametrize(
    "module,text",
    [
        (AdaptiveGumbel(), "AdaptiveGumbel(num_parameters=1, init=1.0)"),
        (AdaptiveReLU(8, init=0.5), "AdaptiveReLU(num_parameters=8, dim=1, init=0.5)"),
        (AdaptiveSwish(4, dim=-1, parametrization="softplus"), "AdaptiveSwish(num_parameters=4, dim=-1, init=1.0, parametrization='softplus')"),
        (AdaptiveGumbel(2, trainable=False), "AdaptiveGumbel(num_parameters=2, dim=1, init=1.0, trainable=False)"),
        (AdaptiveActivation("gelu", "gated"), "AdaptiveActivation(family='normal', form='gated', num_parameters=1, init=1.0)"),
        (AdaptiveReLU(None), "LazyAdaptiveReLU(num_parameters=None, dim=1, init=1.0)"),
    ],
)
def test_repr(module, text):
    assert repr(module) == text


def test_is_exported_from_package():
    for name in ("AdaptiveActivation", "AdaptiveGumbel", "AdaptiveReLU", "AdaptiveSwish"):
        assert name in actadapt.__all__ and getattr(actadapt, name).__module__ == "actadapt.modules"
