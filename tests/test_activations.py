"""The activation factory (get_activation, activation_layer, activation_spec) and the table of fixed
activations with the adaptive ones convert starts from (issue 12, items 2 and 3)."""

from __future__ import annotations

import functools
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import actadapt
from actadapt import AdaptiveActivation, AdaptiveGumbel, AdaptiveReLU, AdaptiveSwish, AdaptiveTanh
from actadapt.activations import (
    ALPHA_MAX,
    FIXED,
    activation_layer,
    activation_spec,
    available_activations,
    get_activation,
)
from actadapt.discover import recognise_call, recognise_module
from actadapt.matching import fit_alpha, matched_init, max_error


# ------------------------------------------------------------------------ the paper's names
@pytest.mark.parametrize(
    "name,cls,adaptive",
    [("ReLU", nn.ReLU, False), ("AReLU", AdaptiveReLU, True), ("AGumb", AdaptiveGumbel, True), ("Sig", nn.Sigmoid, False),
     ("Swish", AdaptiveSwish, True), ("relu", nn.ReLU, False), ("arelu", AdaptiveReLU, True), ("adaptive_relu", AdaptiveReLU, True),
     ("gumbel", AdaptiveGumbel, True), ("agumb", AdaptiveGumbel, True), ("sigmoid", nn.Sigmoid, False), ("silu", nn.SiLU, False),
     ("aswish", AdaptiveSwish, True), ("adaptive_tanh", AdaptiveTanh, True), ("Tanh", nn.Tanh, False)],
)
def test_names_of_the_paper_and_aliases(name, cls, adaptive):
    m = get_activation(name, num_parameters=6, init=0.5, dim=1, device="cpu", dtype=torch.float64)
    assert type(m) is cls and activation_spec(name).adaptive is adaptive
    if adaptive:
        assert m.num_parameters == 6 and m.dim == 1 and m.init == 0.5 and m.rho.dtype == torch.float64


def test_the_experiments_resolve_their_names_through_the_factory():
    """Every experiment model builds its activations with get_activation, and Table 1's batched students use
    activation_spec(name).function: the same modules and, bit for bit, the functional formulas."""
    from actadapt import functional
    from actadapt.experiments.grid import GRID_ACTIVATIONS
    from actadapt.experiments.models.lenet import LeNet5
    from actadapt.experiments.models.students import STUDENT_ACTIVATIONS, student_activation
    from actadapt.experiments.models.textcnn import KimCNN
    from actadapt.experiments.models.urlcnn import UrlCNN

    for name in GRID_ACTIVATIONS:
        ref = get_activation(name, num_parameters=20, init=0.3, dim=1)
        lenet = LeNet5(name, name, alpha_init=0.3)
        kim = KimCNN(torch.zeros(5, 4), (3,), 20, 20, 2, name, name, alpha_init=0.3)
        url = UrlCNN(5, 8, 2, dim=4, conv_act=name, fc_act=name, channels=(20, 20), hidden=20, alpha_init=0.3)
        for m in (lenet.act1, kim.conv_acts[0], kim.fc_act, url.act1, url.act2, url.act3):
            assert type(m) is type(ref) and repr(m) == repr(ref)
        assert lenet.pool_first is activation_spec(name).monotone
    x = torch.linspace(-5, 5, 101, dtype=torch.float64)
    a = torch.tensor(0.7, dtype=torch.float64)
    formulas = {"Sig": lambda x, a: torch.sigmoid(x), "ReLU": lambda x, a: torch.relu(x),
                "AGumb": functional.adaptive_gumbel, "AReLU": functional.adaptive_relu, "Swish": functional.swish}
    assert set(STUDENT_ACTIVATIONS) == set(formulas)
    for name in STUDENT_ACTIVATIONS:
        assert torch.equal(student_activation(name)(x, a), formulas[name](x, a))  # bit for bit
    # alpha = exp(rho) > 0 by construction: the students skip the value check the functional API makes
    with pytest.raises(ValueError):
        functional.adaptive_gumbel(x, torch.tensor(-1.0, dtype=torch.float64))
    student_activation("AGumb")(x, torch.tensor(-1.0, dtype=torch.float64))


def test_fixed_activations_ignore_the_alpha_arguments_and_take_their_own():
    assert get_activation("leaky_relu", negative_slope=0.2, num_parameters=3, init=2.0).negative_slope == 0.2
    with pytest.raises(TypeError):
        get_activation("relu", bogus=1)
    with pytest.raises(ValueError, match="has no torch module"):
        get_activation("quick_gelu")


def test_unknown_names_list_the_valid_ones():
    with pytest.raises(ValueError, match=r"unknown activation 'relu7'; valid names: .*arelu.*sig.*swish"):
        get_activation("relu7")
    with pytest.raises(ValueError, match=r"unknown adaptive activation 'relu6'"):
        activation_spec("relu6", adaptive=True)
    with pytest.raises(TypeError):
        activation_spec(3)


@pytest.mark.parametrize("family", ["gumbel", "exponential", "logistic", "normal", "laplace", "cauchy"])
@pytest.mark.parametrize("form", ["bounded", "gated", "centred"])
def test_every_family_in_every_form_is_a_name(family, form):
    spec = activation_spec(f"{family}_{form}")
    assert spec.adaptive and (spec.family, spec.form) == (family, form)
    m = spec(num_parameters=3)
    assert isinstance(m, AdaptiveActivation) and (m.family, m.form) == (family, form)
    x = torch.randn(4, 3, dtype=torch.float64)
    alpha = torch.full((3,), 0.8, dtype=torch.float64)
    torch.testing.assert_close(spec.function(x, alpha), actadapt.adaptive_activation(x, alpha, family, form))
    assert f"{family}_{form}" in available_activations()


def test_a_registered_family_becomes_an_activation_name():
    actadapt.register_family("test_act_tanh", lambda x, a: 0.5 * (1 + torch.tanh(a * x)), overwrite=True)
    assert isinstance(get_activation("test_act_tanh_gated", num_parameters=2), AdaptiveActivation)
    assert "test_act_tanh_gated" in available_activations(adaptive_only=True)


@pytest.mark.parametrize(
    "name,expected",
    [("relu", "arelu"), ("ReLU", "arelu"), ("silu", "swish"), ("swish", "swish"), ("gelu", "normal_gated"),
     ("sigmoid", "logistic_bounded"), ("tanh", "adaptive_tanh"), ("AGumb", "agumb"), ("arelu6", "arelu6")],
)
def test_adaptive_reading_of_a_name(name, expected):
    assert activation_spec(name, adaptive=True).name == expected


def test_activation_layer_is_a_timm_style_act_layer():
    layer = activation_layer("arelu", num_parameters=None, init=3.0)
    assert isinstance(layer, functools.partial)
    m = layer(inplace=True)  # timm and torchvision call act_layer(inplace=True)
    assert type(m).__name__ == "LazyAdaptiveReLU" and m.init == 3.0
    assert m(torch.randn(2, 5, 3, 3)).shape == (2, 5, 3, 3) and m.num_parameters == 5
    assert activation_layer("ReLU", num_parameters=4) is nn.ReLU
    assert activation_layer("AGumb") is AdaptiveGumbel
    block = nn.Sequential(nn.Conv2d(3, 4, 1), activation_layer("swish", num_parameters=4)(inplace=True))
    assert block(torch.randn(1, 3, 2, 2)).shape == (1, 4, 2, 2)


def test_arelu6_is_arelu_clamped_at_six():
    m = get_activation("arelu6", num_parameters=2, init=50.0)
    assert type(m) is AdaptiveReLU and m.max_value == 6.0
    x = torch.tensor([[-1.0, 0.5], [7.0, 100.0]])
    torch.testing.assert_close(m(x), torch.clamp(x * -torch.expm1(-50 * x.clamp(min=0)), max=6.0))


# ------------------------------------------------------------------------ the match table
FIXED_IDS = [e.name for e in FIXED]


@pytest.mark.parametrize("entry", FIXED, ids=FIXED_IDS)
def test_documented_max_error_of_each_mapping(entry):
    """The numbers in activations.FIXED are what they say: max |sigma_alpha - f| over the documented range."""
    m = entry.match
    measured = max_error(entry.reference, m.target, m.alpha, m.x_range)
    if m.max_error == 0.0:
        assert measured < 1e-12  # exact: the family contains the function
    else:
        assert measured == pytest.approx(m.max_error, rel=1e-3)


@pytest.mark.parametrize("entry", [e for e in FIXED if "minimax fit" in e.match.note], ids=lambda e: e.name)
def test_fitted_alphas_are_the_minimax_fits(entry):
    alpha, err = fit_alpha(entry.reference, entry.match.target)
    assert alpha == pytest.approx(entry.match.alpha, rel=2e-4) and err == pytest.approx(entry.match.max_error, rel=1e-3)
    for nearby in (0.99 * alpha, 1.01 * alpha):  # a minimum: moving alpha makes the fit worse
        assert max_error(entry.reference, entry.match.target, nearby) > err


@pytest.mark.parametrize("entry", [e for e in FIXED if e.match.grows], ids=lambda e: e.name)
def test_relu_like_error_is_one_over_alpha_e_and_falls_with_alpha(entry):
    for alpha in (100.0, 1000.0, ALPHA_MAX):
        lo, hi = entry.match.x_range
        assert max_error(entry.reference, entry.match.target, alpha, (max(lo, 0.0), hi)) == pytest.approx(
            1 / (alpha * math.e), rel=2e-2
        )


def test_exact_mappings_in_float64():
    x = torch.linspace(-30, 30, 2001, dtype=torch.float64)
    one = torch.tensor(1.0, dtype=torch.float64)
    torch.testing.assert_close(activation_spec("swish").function(x, one), F.silu(x), rtol=1e-15, atol=1e-15)
    torch.testing.assert_close(activation_spec("agumb").function(x, one), torch.sigmoid(x), rtol=1e-14, atol=1e-15)
    torch.testing.assert_close(activation_spec("adaptive_tanh").function(x, one), torch.tanh(x), rtol=1e-14, atol=1e-15)
    q = torch.tensor(1.702, dtype=torch.float64)
    torch.testing.assert_close(activation_spec("swish").function(x, q), x * torch.sigmoid(1.702 * x))


def test_match_outside_the_table_is_fitted():
    relu = next(e for e in FIXED if e.name == "relu")
    alpha, err = matched_init(relu, activation_spec("swish"))  # ReLU from Swish: the steepest allowed
    assert alpha == pytest.approx(100.0, rel=1e-6) and err < 0.003
    leaky = nn.LeakyReLU(0.2)
    alpha, err = matched_init(next(e for e in FIXED if e.name == "leaky_relu"), activation_spec("arelu"), leaky.forward)
    assert err == pytest.approx(max_error(leaky.forward, "arelu", alpha), rel=1e-9) and err > 0.2 * 11  # 0.2 |x| at -12


# ------------------------------------------------------------------------ recognition
@pytest.mark.parametrize("entry", [e for e in FIXED if e.layer is not None], ids=lambda e: e.name)
def test_every_fixed_module_is_recognised_by_what_it_computes(entry):
    assert recognise_module(entry.layer()) is entry


@pytest.mark.parametrize(
    "module,kind",
    [(nn.LeakyReLU(0.2), "leaky_relu"), (nn.ELU(alpha=0.5), "elu"), (nn.CELU(), "elu"), (nn.Softplus(beta=2.0), "softplus"),
     (nn.Hardtanh(-2.0, 2.0), "hardtanh"), (nn.Hardtanh(0.0, 6.0), "relu6"), (nn.GELU(approximate="tanh"), "gelu_tanh")],
)
def test_module_arguments(module, kind):
    assert recognise_module(module).name == kind


class Swish(nn.Module):  # as timm.layers.activations.Swish / many research codebases
    def forward(self, x):
        return x * torch.sigmoid(x)


class HardSigmoidOwn(nn.Module):
    def forward(self, x):
        return F.relu6(x + 3.0) / 6.0


@pytest.mark.parametrize(
    "module,kind",
    [(Swish(), "silu"), (HardSigmoidOwn(), "hardsigmoid"), (nn.Softmax(dim=-1), None), (nn.Identity(), None),
     (nn.Dropout(0.5), None), (nn.LayerNorm(4), None), (nn.PReLU(), None), (nn.Sequential(nn.ReLU()), None)],
)
def test_user_classes_are_recognised_and_non_activations_are_not(module, kind):
    found = recognise_module(module)
    assert (found.name if found else None) == kind


@pytest.mark.parametrize(
    "func,args,kwargs,kind",
    [(F.relu, (), {}, "relu"), (F.hardtanh, (0.0, 6.0), {}, "relu6"), (F.gelu, (), {"approximate": "tanh"}, "gelu_tanh"),
     (torch.Tensor.relu_, (), {}, "relu"), (torch.sigmoid, (), {}, "sigmoid"), (F.leaky_relu, (0.3,), {}, "leaky_relu"),
     (torch.special.expit, (), {}, "sigmoid"), (F.relu, (True,), {}, "relu")],
)
def test_torch_calls_are_recognised_with_their_arguments(func, args, kwargs, kind):
    assert recognise_call(func, (torch.zeros(3), *args), kwargs).name == kind
    assert recognise_call(torch.exp, (torch.zeros(3),), {}) is None


def test_transformers_activation_classes_are_recognised():
    acts = pytest.importorskip("transformers.activations")
    expected = {
        "gelu": "gelu", "gelu_new": "gelu_tanh", "gelu_fast": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh",
        "gelu_accurate": "gelu_tanh", "gelu_python": "gelu", "gelu_10": "gelu", "quick_gelu": "quick_gelu",
        "silu": "silu", "swish": "silu", "relu": "relu", "relu6": "relu6", "sigmoid": "sigmoid", "tanh": "tanh",
        "mish": "mish", "leaky_relu": "leaky_relu", "hardswish": "hardswish",
        "linear": None, "relu2": None, "laplace": None, "prelu": None,  # not an activation we adapt
    }
    for name, kind in expected.items():
        found = recognise_module(acts.ACT2FN[name])
        assert (found.name if found else None) == kind, name
