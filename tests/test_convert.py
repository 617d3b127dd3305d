"""convert(): every activation call site of a model, each with its own alphas, starting from the function it
replaces (issue 12, items 1, 2 and 4). The transformers models are in test_convert_zoo.py."""

from __future__ import annotations

import copy
import io
import re

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import actadapt
from actadapt import (
    AdaptiveActivation, AdaptiveGumbel, AdaptiveReLU, AdaptiveSwish, AdaptiveTanh, CallSiteActivation, CallSiteScope,
    Conversion, UnknownCallSite, convert,
)

from .activation_calls import activation_calls
from .replicas import BasicBlock, Bottleneck, InvertedResidual, TinyResNet, calibrate

X = torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(1))


@pytest.fixture
def resnet():
    torch.manual_seed(0)
    return calibrate(TinyResNet(), X)


# ------------------------------------------------------------------------ torchvision blocks
def test_bottleneck_relu_called_at_two_widths_gets_one_alpha_set_per_call_site():
    torch.manual_seed(0)
    block = calibrate(Bottleneck(32, 8), torch.randn(4, 32, 5, 5))
    x = torch.randn(4, 32, 5, 5)
    new, replaced = convert(block, example_inputs=x)
    assert [(r.name, r.num_parameters, r.new_type) for r in replaced] == [
        ("relu#0", 8, "AdaptiveReLU"), ("relu#1", 8, "AdaptiveReLU"), ("relu#2", 32, "AdaptiveReLU")
    ]
    assert type(new) is Bottleneck and isinstance(new.relu, CallSiteActivation) and isinstance(new.actadapt_sites, CallSiteScope)
    assert [r.location.split(" ")[0] for r in replaced] == [f"replicas.py:{n}" for n in (75, 79, 88)]
    assert activation_calls(new, x) == (3, 0)
    torch.testing.assert_close(new(x), block(x), rtol=0, atol=0.02)


def test_basic_block_and_inverted_residual():
    torch.manual_seed(0)
    x = torch.randn(4, 8, 6, 6)
    basic = calibrate(BasicBlock(8, 8), x)
    _, replaced = convert(basic, example_inputs=x)
    assert [(r.name, r.num_parameters) for r in replaced] == [("relu#0", 8), ("relu#1", 8)]
    inv = calibrate(InvertedResidual(8, 8, 1, 6), x)
    new, replaced = convert(inv, example_inputs=x)
    assert [(r.name, r.old_type, r.num_parameters) for r in replaced] == [("conv.0.2", "ReLU6", 48), ("conv.1.2", "ReLU6", 48)]
    assert all(isinstance(new.get_submodule(r.name), AdaptiveReLU) and new.get_submodule(r.name).max_value == 6.0 for r in replaced)


@pytest.mark.parametrize("method", ["modules", "fx"])
def test_tiny_resnet_every_site_its_own_alphas_trains_and_round_trips(resnet, method):
    result = convert(resnet, example_inputs=X, method=method)
    model, replaced = result
    # stem + 2 BasicBlocks x 2 + 2 Bottlenecks x 3 + 2 ReLU6
    assert len(replaced) == 1 + 4 + 6 + 2 and all(r.num_parameters for r in replaced)
    assert activation_calls(model, X) == (13, 0)
    if method == "modules":
        assert type(model) is TinyResNet
    else:
        assert isinstance(model, torch.fx.GraphModule)
    assert result.output_change < 1e-2
    # one optimiser step: finite, and every alpha moves
    model.train()
    opt = torch.optim.SGD(actadapt.param_groups(model, lr=0.01, alpha_lr=0.1), lr=0.01)
    before = [p.detach().clone() for p in actadapt.alpha_parameters(model)]
    loss = model(X).square().mean()
    loss.backward()
    assert torch.isfinite(loss) and all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in actadapt.alpha_parameters(model))
    opt.step()
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert any(not torch.equal(b, p) for b, p in zip(before, actadapt.alpha_parameters(model)))
    # state_dict into a fresh conversion, deepcopy and torch.save
    model.eval()
    fresh = convert(resnet, example_inputs=X, method=method).model.eval()
    fresh.load_state_dict(model.state_dict())
    torch.testing.assert_close(fresh(X), model(X))
    torch.testing.assert_close(copy.deepcopy(model)(X), model(X))
    buf = io.BytesIO()
    torch.save(model, buf)
    buf.seek(0)
    torch.testing.assert_close(torch.load(buf, weights_only=False)(X), model(X))


def test_fx_and_modules_give_the_same_function(resnet):
    a = convert(resnet, example_inputs=X).model
    b = convert(resnet, example_inputs=X, method="fx").model
    torch.testing.assert_close(a(X), b(X))


# ------------------------------------------------------------------------ functional calls
class Functional(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2, self.fc3 = nn.Linear(4, 6), nn.Linear(6, 5), nn.Linear(5, 3)

    def forward(self, x):
        h = F.relu(self.fc1(x))
        h = torch.sigmoid(self.fc2(h)) * self.fc2(h).tanh()
        return F.gelu(self.fc3(h), approximate="tanh") + self.fc3(h).relu()


def test_functional_calls_each_get_their_own_adaptive_module():
    torch.manual_seed(0)
    model, x = Functional(), torch.randn(8, 4)
    new, replaced = convert(model, example_inputs=x)
    assert [(r.name, r.old_type, r.kind, r.new_type, r.num_parameters) for r in replaced] == [
        ("F.relu#0", "F.relu", "relu", "AdaptiveReLU", 6),
        ("torch.sigmoid#0", "torch.sigmoid", "sigmoid", "AdaptiveGumbel", 5),
        ("Tensor.tanh#0", "Tensor.tanh", "tanh", "AdaptiveTanh", 5),
        ("F.gelu#0", "F.gelu", "gelu_tanh", "AdaptiveSwish", 3),
        ("Tensor.relu#0", "Tensor.relu", "relu", "AdaptiveReLU", 3),
    ]
    assert type(new) is Functional and len(new.actadapt_sites.sites) == 5
    assert activation_calls(new, x) == (5, 0)
    torch.testing.assert_close(new(x), model(x), rtol=0, atol=0.05)
    new(x).sum().backward()
    assert all(p.grad is not None for p in actadapt.alpha_parameters(new))


def test_in_place_functional_call_still_writes_its_input():
    class InPlace(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 4)

        def forward(self, x):
            h = self.fc(x)
            h.relu_()  # the result is not used: h itself must hold it
            return h

    torch.manual_seed(0)
    model, x = InPlace(), torch.randn(5, 3)
    new, replaced = convert(model, init=1.0, example_inputs=x)
    assert replaced[0].old_type == "Tensor.relu_"
    h = model.fc(x)
    torch.testing.assert_close(new(x), h * -torch.expm1(-h.clamp(min=0)))  # AReLU at alpha 1
    new(x).sum().backward()
    assert new.actadapt_sites.sites["Tensor_relu__0"].rho.grad is not None


def test_a_loop_gives_each_iteration_its_own_site():
    class Loop(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = nn.ModuleList([nn.Linear(3, 5), nn.Linear(5, 7), nn.Linear(7, 2)])

        def forward(self, x):
            for layer in self.layers:
                x = F.silu(layer(x))
            return x

    new, replaced = convert(Loop(), example_inputs=torch.randn(2, 3))
    assert [r.num_parameters for r in replaced] == [5, 7, 2] and len({r.location for r in replaced}) == 1
    assert new(torch.randn(6, 3)).shape == (6, 2)


def test_data_dependent_path_not_seen_by_convert_fails_clearly():
    class Branch(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 3)

        def forward(self, x):
            h = self.fc(x)
            if x.sum() > 0:
                h = F.relu(h)
            return torch.sigmoid(h)

    x = torch.ones(2, 3)
    with pytest.raises(ValueError, match="does not trace with torch.fx .*use method='modules'"):
        convert(Branch(), example_inputs=x, method="fx")
    new, replaced = convert(Branch(), example_inputs=x)
    assert [r.name for r in replaced] == ["F.relu#0", "torch.sigmoid#0"]
    new(-x)  # the other branch skips F.relu: fine
    unseen = convert(Branch(), example_inputs=-x).model  # F.relu never ran
    with pytest.raises(UnknownCallSite, match=r"relu called at test_convert.py:\d+ \(.*Branch.forward\).*example_inputs that take this path"):
        unseen(x)


# ------------------------------------------------------------------------ modules without example_inputs
def test_without_example_inputs_modules_are_replaced_lazily(resnet):
    model, replaced = convert(resnet)
    assert len(replaced) == 1 + 2 + 2 + 2 and all(r.num_parameters is None for r in replaced)
    assert all(r.new_type.startswith("Lazy") for r in replaced)
    assert "no example_inputs" in Conversion(model, replaced).summary()


def test_module_reused_at_different_widths_without_example_inputs_names_the_module_and_the_fix(resnet):
    model, _ = convert(resnet)
    with pytest.raises(ValueError, match=r"replaced 'layer2\.0\.relu'.*convert\(model, example_inputs=\.\.\.\) gives each call site"):
        model(X)


def test_per_neuron_false_and_a_number_for_init(resnet):
    model, replaced = convert(resnet, "gumbel", init=0.5, per_neuron=False, example_inputs=X)
    assert all(r.num_parameters == 1 and r.init == 0.5 and r.max_error is None for r in replaced)
    assert all(m.init == 0.5 for m in model.modules() if isinstance(m, AdaptiveGumbel))


# ------------------------------------------------------------------------ init="match"
@pytest.mark.parametrize(
    "act,new_cls",
    [(nn.SiLU, AdaptiveSwish), (nn.Sigmoid, AdaptiveGumbel), (nn.Tanh, AdaptiveTanh)],
)
def test_match_is_exact_where_the_family_contains_the_function(act, new_cls):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 6), act(), nn.Linear(6, 3), act()).double()
    x = torch.randn(50, 4, dtype=torch.float64)
    result = convert(model, example_inputs=x)
    assert [type(m) for m in result.model if isinstance(m, AdaptiveActivation)] == [new_cls, new_cls]
    assert all(r.init == 1.0 and r.max_error == 0.0 for r in result.replaced)
    torch.testing.assert_close(result.model(x), model(x), rtol=1e-13, atol=1e-14)
    assert result.output_change < 1e-13


def test_relu_alpha_grows_until_the_outputs_are_within_tolerance():
    """Inputs of scale 1e-2: AReLU at alpha 100 is far from ReLU there (the error is largest at x = 1/alpha),
    so convert raises alpha until the outputs are within tolerance."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16, bias=False), nn.ReLU(), nn.Linear(16, 16, bias=False), nn.ReLU(),
                          nn.Linear(16, 2, bias=False))
    x = 1e-2 * torch.randn(64, 8)
    result = convert(model, example_inputs=x)
    assert result.output_change <= 1e-2 and all(r.init > 100 for r in result.replaced)
    assert result.replaced[0].max_error == pytest.approx(1 / (result.replaced[0].init * 2.718281828459045))
    loose = convert(model, example_inputs=x, tolerance=1.0)
    assert all(r.init == 100 for r in loose.replaced) and loose.output_change > result.output_change
    assert all(m.init == r.init for m, r in zip([result.model[1], result.model[3]], result.replaced))


def test_gelu_starts_from_the_best_swish_and_exact_gelu_is_one_name_away():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.GELU(), nn.Linear(8, 3))
    x = torch.randn(32, 6)
    swish = convert(model, example_inputs=x)
    assert type(swish.model[1]) is AdaptiveSwish and swish.replaced[0].init == pytest.approx(1.772935)
    assert 0 < swish.output_change < 2 * 0.0139  # one site: at most its max pointwise error, relative to O(1) outputs
    exact = convert(model, {"gelu": "normal_gated"}, example_inputs=x)
    assert exact.model[1].family == "normal" and exact.replaced[0].init == 1.0 and exact.output_change < 1e-6


# ------------------------------------------------------------------------ channel axis
def test_channel_axis_is_followed_from_the_layers():
    class Mixed(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1d = nn.Conv1d(4, 6, 3)
            self.proj = nn.Linear(6, 10)
            self.dw = nn.Conv2d(5, 5, 3, padding=1, groups=5)
            self.pw = nn.Linear(5, 12)

        def forward(self, seq, img):
            a = F.gelu(self.conv1d(seq))  # (N, 6, L): channels on axis 1
            b = F.gelu(self.proj(a.transpose(1, 2)))  # (N, L, 10): the last axis
            c = self.dw(img).permute(0, 2, 3, 1)  # ConvNeXt: (N, H, W, C)
            d = F.gelu(self.pw(c))  # (N, H, W, 12)
            e = torch.sigmoid(c + 1.0)  # elementwise after the permute: still the last axis
            return b.sum() + d.sum() + e.sum()

    seq, img = torch.randn(2, 4, 9), torch.randn(2, 5, 4, 4)
    new, replaced = convert(Mixed(), example_inputs=(seq, img))
    assert [(r.num_parameters, r.dim) for r in replaced] == [(6, 1), (10, -1), (12, -1), (5, -1)]
    new(torch.randn(3, 4, 11), torch.randn(1, 5, 7, 7))  # other batch and spatial sizes


def test_dim_can_be_forced_and_example_inputs_can_be_keywords():
    class KW(nn.Module):
        def __init__(self):
            super().__init__()
            self.act = nn.Tanh()

        def forward(self, a, b=None):
            return self.act(a + b)

    _, replaced = convert(KW(), example_inputs={"a": torch.randn(2, 7, 3), "b": torch.randn(2, 7, 3)}, dim=1)
    assert (replaced[0].num_parameters, replaced[0].dim) == (7, 1)


# ------------------------------------------------------------------------ selection and targets
def test_select_by_name_patterns_types_and_mapping(resnet):
    _, replaced = convert(resnet, names="layer2.*", example_inputs=X)
    assert [r.name for r in replaced] == [f"layer2.{b}.relu#{k}" for b in (0, 1) for k in range(3)]
    _, replaced = convert(resnet, names=re.compile(r"layer1\.\d\.relu#1"), example_inputs=X)
    assert [r.name for r in replaced] == ["layer1.0.relu#1", "layer1.1.relu#1"]
    result = convert(resnet, exclude=["layer1.*", "layer2.*"], example_inputs=X)
    assert [r.name for r in result.replaced] == ["relu", "layer3.conv.0.2", "layer3.conv.1.2"]
    assert "layer1.0.relu#0" in result.skipped
    model, replaced = convert(resnet, types=(nn.ReLU6,), example_inputs=X)
    assert [r.old_type for r in replaced] == ["ReLU6", "ReLU6"] and isinstance(model.relu, nn.ReLU)
    model, replaced = convert(resnet, {"relu6": "swish", nn.ReLU: "auto"}, example_inputs=X)
    assert {r.new_type for r in replaced} == {"AdaptiveSwish", "AdaptiveReLU"} and len(replaced) == 13


def test_a_site_left_alone_in_a_reused_module_keeps_the_original():
    torch.manual_seed(0)
    block = calibrate(Bottleneck(32, 8), torch.randn(4, 32, 5, 5))
    x = torch.randn(4, 32, 5, 5)
    new, replaced = convert(block, names="relu#2", example_inputs=x)
    assert [r.name for r in replaced] == ["relu#2"]
    assert isinstance(new.relu.sites[0], nn.ReLU) and isinstance(new.relu.sites[2], AdaptiveReLU)
    assert activation_calls(new, x) == (1, 2)


def test_factories_classes_and_kwargs(resnet):
    calls = []

    def factory(**kwargs):
        calls.append(kwargs)
        return AdaptiveActivation("laplace", "gated", **kwargs)

    model, replaced = convert(resnet, factory, example_inputs=X, parametrization="softplus")
    assert len(calls) == 13 and all(c["init"] == 1.0 and c["parametrization"] == "softplus" for c in calls)
    model, replaced = convert(resnet, AdaptiveSwish, trainable=False, example_inputs=X)
    assert all(r.new_type == "AdaptiveSwish" for r in replaced) and list(actadapt.alpha_parameters(model)) == []
    assert replaced[0].init == pytest.approx(100.0)  # ReLU from Swish: fitted, the steepest allowed


def test_root_activation_and_adaptive_modules_are_not_replaced_again():
    new, replaced = convert(nn.ReLU(), example_inputs=torch.randn(2, 3))
    assert isinstance(new, AdaptiveReLU) and replaced[0].name == "" and str(replaced[0]).startswith("(root): ReLU -> AdaptiveReLU")
    with pytest.warns(UserWarning, match="no activation was replaced"):
        again, replaced = convert(new, example_inputs=torch.randn(2, 3))
    assert replaced == []


def test_nothing_found_warns_and_mentions_example_inputs():
    with pytest.warns(UserWarning, match="none was found.*pass example_inputs"):
        convert(Functional())


def test_bad_arguments_name_the_problem(resnet):
    with pytest.raises(ValueError, match="unknown adaptive activation 'relu6'"):
        convert(resnet, "relu6")
    with pytest.raises(ValueError, match="unknown method 'trace'; valid methods: modules, fx"):
        convert(resnet, method="trace")
    with pytest.raises(ValueError, match="init must be 'match' or"):
        convert(resnet, init="best")
    with pytest.raises(ValueError, match="init must be 'match' or a finite number > 0, got -1"):
        convert(resnet, init=-1)
    with pytest.raises(TypeError, match="model must be an nn.Module"):
        convert("model")


def test_example_run_restores_training_flags_and_batchnorm_stats(resnet):
    resnet.train()
    resnet.layer1[0].eval()
    stats = resnet.bn1.running_mean.clone()
    model, _ = convert(resnet, example_inputs=X)
    assert model.training and not model.layer1[0].training and model.layer1[1].training
    assert torch.equal(model.bn1.running_mean, stats) and all(p.grad is None for p in model.parameters())


def test_original_untouched_unless_inplace(resnet):
    model, _ = convert(resnet, example_inputs=X)
    assert model is not resnet and isinstance(resnet.relu, nn.ReLU)
    same, _ = convert(resnet, example_inputs=X, inplace=True)
    assert same is resnet and isinstance(resnet.relu, AdaptiveReLU)


def test_report_lists_every_site(resnet):
    result = convert(resnet, example_inputs=X)
    text = result.summary()
    assert text.startswith("convert: replaced 13 call site(s) (modules)")
    assert "layer2.0.relu#2: ReLU -> AdaptiveReLU (alphas=16, init=100, max error 0.00368) at replicas.py:88" in text
    assert "relative output change on example_inputs" in text


def test_routed_call_sites_run_under_torch_compile():
    """Dynamo runs the rest of a function after a graph break in a resume function: the routing still finds
    each call site (backend="eager": dynamo's tracing without code generation)."""
    torch.manual_seed(0)
    x = torch.randn(4, 32, 5, 5)
    block = calibrate(Bottleneck(32, 8), x)
    for model, inputs in ((block, x), (Functional(), torch.randn(8, 4))):
        new = convert(model, example_inputs=inputs).model
        torch._dynamo.reset()
        torch.testing.assert_close(torch.compile(new, backend="eager")(inputs), new(inputs))
