"""convert(): model surgery on existing models (issue 2, item 7)."""

from __future__ import annotations

import re

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from actadapt import AdaptiveActivation, AdaptiveGumbel, AdaptiveReLU, AdaptiveSwish, Conversion, convert
from actadapt.convert import DEFAULT_TYPES


# ---------------------------------------------------------------- a torchvision-style nested model
class BasicBlock(nn.Module):
    """As torchvision.models.resnet.BasicBlock: one ReLU module reused twice in forward."""

    def __init__(self, cin, cout, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = (
            nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)) if stride != 1 or cin != cout else None
        )

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class TinyResNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(4)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = nn.Sequential(BasicBlock(4, 4), BasicBlock(4, 4))
        self.layer2 = nn.Sequential(BasicBlock(4, 6, stride=2))
        self.heads = nn.ModuleDict(
            {"cls": nn.Sequential(nn.Linear(6, 5), nn.GELU(), nn.Linear(5, 3)), "gate": nn.Sequential(nn.Linear(6, 2), nn.Sigmoid())}
        )
        self.extra = nn.ModuleList([nn.SiLU(), nn.Tanh()])
        self.softmax = nn.Softmax(dim=1)  # not elementwise: never replaced

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer2(self.layer1(x))
        x = x.mean(dim=(2, 3))  # (N, 6)
        x = self.extra[1](self.extra[0](x))
        return self.softmax(self.heads["cls"](x)), self.heads["gate"](x)


ACT_NAMES = [
    ("relu", "ReLU", 4),
    ("layer1.0.relu", "ReLU", 4),
    ("layer1.1.relu", "ReLU", 4),
    ("layer2.0.relu", "ReLU", 6),
    ("heads.cls.1", "GELU", 5),
    ("heads.gate.1", "Sigmoid", 2),
    ("extra.0", "SiLU", 6),
    ("extra.1", "Tanh", 6),
]
AUTO_NEW = {"ReLU": AdaptiveReLU, "GELU": AdaptiveActivation, "Sigmoid": AdaptiveGumbel, "SiLU": AdaptiveSwish, "Tanh": AdaptiveGumbel}


@pytest.fixture
def resnet():
    torch.manual_seed(0)
    return TinyResNet().eval()


X = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(1))


def test_auto_converts_every_activation_of_a_nested_model(resnet):
    result = convert(resnet, "auto", example_inputs=X)
    assert isinstance(result, Conversion)
    model, replaced = result
    assert [(r.name, r.old_type, r.num_parameters) for r in replaced] == ACT_NAMES
    for r in replaced:
        module = model.get_submodule(r.name)
        assert type(module) is AUTO_NEW[r.old_type] and r.module is module
        assert r.new_type == type(module).__name__
    assert model.get_submodule("heads.cls.1").family == "normal"
    assert isinstance(model.softmax, nn.Softmax)
    assert not any(isinstance(m, DEFAULT_TYPES) for m in model.modules())
    out = model(X)
    assert [o.shape for o in out] == [(2, 3), (2, 2)]
    assert "convert: replaced 8 module(s)" in result.summary() and "heads.gate.1: Sigmoid -> AdaptiveGumbel" in result.summary()


@pytest.mark.parametrize("activation,cls", [("gumbel", AdaptiveGumbel), ("relu", AdaptiveReLU), ("swish", AdaptiveSwish),
                                            ("AReLU", AdaptiveReLU), (AdaptiveSwish, AdaptiveSwish)])
def test_single_activation_everywhere(resnet, activation, cls):
    model, replaced = convert(resnet, activation)
    assert len(replaced) == len(ACT_NAMES)
    assert all(isinstance(model.get_submodule(r.name), cls) and r.new_type == f"Lazy{cls.__name__}" for r in replaced)
    model(X)
    assert all(type(model.get_submodule(n)) is cls for n, _, _ in ACT_NAMES)


def test_per_neuron_sizes_alpha_from_the_first_input_without_example_inputs(resnet):
    model, replaced = convert(resnet, "relu")
    assert all(r.num_parameters is None and r.new_type == "LazyAdaptiveReLU" for r in replaced)
    model(X)
    for name, _, n in ACT_NAMES:
        assert model.get_submodule(name).rho.shape == (n,)


def test_shared_module_called_with_different_sizes_fails_clearly():
    act = nn.Sigmoid()
    model, _ = convert(nn.Sequential(nn.Linear(4, 6), act, nn.Linear(6, 3), act), "gumbel")
    with pytest.raises(ValueError, match=r"num_parameters=6 .*shape \(5, 3\) has size 3"):
        model(torch.randn(5, 4))
    model, _ = convert(nn.Sequential(nn.Linear(4, 6), act, nn.Linear(6, 3), act), "gumbel", per_neuron=False)
    assert model(torch.randn(5, 4)).shape == (5, 3)


def test_shared_module_stays_shared(resnet):
    # torchvision's BasicBlock calls self.relu twice; the stem's relu is a separate module
    model, _ = convert(resnet, "relu", example_inputs=X)
    block = model.layer1[0]
    assert isinstance(block.relu, AdaptiveReLU) and block.relu.num_parameters == 4
    shared = nn.ReLU()
    seq = nn.Sequential(nn.Linear(3, 3), shared, nn.Linear(3, 3), shared)
    new, replaced = convert(seq, "gumbel", per_neuron=False)
    assert new[1] is new[3] and [r.name for r in replaced] == ["1", "3"]


def test_per_neuron_false_shares_one_alpha(resnet):
    model, replaced = convert(resnet, "auto", per_neuron=False)
    assert all(r.num_parameters == 1 for r in replaced)
    assert all(model.get_submodule(r.name).rho.shape == (1,) for r in replaced)


@pytest.mark.parametrize(
    "act,old_types,factory",
    [
        (nn.Sigmoid, (nn.Sigmoid,), "gumbel"),  # alpha = 1 is the sigmoid
        (nn.SiLU, (nn.SiLU,), "swish"),  # alpha = 1 is SiLU
        (nn.GELU, (nn.GELU,), "gelu"),  # the gated normal cdf with alpha = 1 is exact GELU
    ],
)
@pytest.mark.parametrize("per_neuron", [True, False])
def test_conversion_at_alpha_one_preserves_the_function(act, old_types, factory, per_neuron):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 6), act(), nn.Linear(6, 3), act()).double()
    x = torch.randn(5, 4, dtype=torch.float64)
    new, replaced = convert(model, factory, types=old_types, per_neuron=per_neuron, dtype=torch.float64)
    assert len(replaced) == 2
    torch.testing.assert_close(new(x), model(x), rtol=1e-12, atol=1e-14)


def test_original_untouched_unless_inplace(resnet):
    model, _ = convert(resnet, "relu")
    assert model is not resnet and isinstance(resnet.relu, nn.ReLU)
    same, _ = convert(resnet, "relu", inplace=True)
    assert same is resnet and isinstance(resnet.relu, AdaptiveReLU)


@pytest.mark.parametrize(
    "names,exclude,expected",
    [
        ("layer1.*", None, ["layer1.0.relu", "layer1.1.relu"]),
        (["heads.*", "extra.0"], None, ["heads.cls.1", "heads.gate.1", "extra.0"]),
        (re.compile(r"layer\d\.0\.relu"), None, ["layer1.0.relu", "layer2.0.relu"]),
        (re.compile(r"layer"), None, []),  # a regex must match the whole name
        ("*relu", "layer*", ["relu"]),
        (None, ["layer*", "heads.*", "extra.*"], ["relu"]),
    ],
)
def test_select_by_name_patterns(resnet, names, exclude, expected):
    with pytest.warns(UserWarning, match="no activation module matched") if not expected else _nothing():
        _, replaced = convert(resnet, "relu", names=names, exclude=exclude)
    assert [r.name for r in replaced] == expected


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


@pytest.mark.parametrize(
    "old,new",
    [(nn.ReLU(), AdaptiveReLU), (nn.ReLU6(), AdaptiveReLU), (nn.LeakyReLU(), AdaptiveReLU), (nn.ELU(), AdaptiveReLU),
     (nn.Softplus(), AdaptiveReLU), (nn.Sigmoid(), AdaptiveGumbel), (nn.Hardsigmoid(), AdaptiveGumbel),
     (nn.Tanh(), AdaptiveGumbel), (nn.Hardtanh(), AdaptiveGumbel), (nn.SiLU(), AdaptiveSwish),
     (nn.Hardswish(), AdaptiveSwish), (nn.Mish(), AdaptiveSwish), (nn.GELU(), AdaptiveActivation)],
)
def test_auto_mapping_like_for_like(old, new):
    model, replaced = convert(nn.Sequential(nn.Linear(2, 3), old), "auto", example_inputs=torch.randn(1, 2))
    assert type(model[1]) is new and replaced[0].old_type == type(old).__name__ and replaced[0].num_parameters == 3


def test_select_by_type(resnet):
    _, replaced = convert(resnet, "gumbel", types=(nn.Sigmoid, nn.Tanh))
    assert [r.name for r in replaced] == ["heads.gate.1", "extra.1"]


def test_types_none_replaces_any_named_module(resnet):
    model, replaced = convert(resnet, "gumbel", types=None, names="softmax", per_neuron=False)
    assert [(r.name, r.old_type) for r in replaced] == [("softmax", "Softmax")]
    assert isinstance(model.softmax, AdaptiveGumbel)
    with pytest.raises(ValueError, match="give names"):
        convert(resnet, types=None)


def test_mapping_and_factory(resnet):
    calls = []

    def factory(**kwargs):
        calls.append(kwargs)
        return AdaptiveActivation("laplace", "gated", **kwargs)

    model, replaced = convert(resnet, {nn.ReLU: "relu", nn.GELU: factory, nn.Module: AdaptiveGumbel}, init=0.5, dim=1)
    assert [r.new_type for r in replaced] == ["LazyAdaptiveReLU"] * 4 + ["LazyAdaptiveActivation"] + ["LazyAdaptiveGumbel"] * 3
    assert calls == [{"num_parameters": None, "dim": 1, "init": 0.5}]
    model(X)
    assert model.get_submodule("heads.cls.1").family == "laplace"
    torch.testing.assert_close(model.get_submodule("extra.0").alpha, torch.full((6,), 0.5))


def test_mapping_without_an_entry_for_a_selected_type_fails(resnet):
    with pytest.raises(ValueError, match="no activation given for a module of type GELU"):
        convert(resnet, {nn.ReLU: "relu"})


def test_kwargs_are_passed_to_the_new_modules(resnet):
    model, _ = convert(resnet, "swish", parametrization="softplus", trainable=False, init=2.0, example_inputs=X)
    m = model.extra[0]
    assert m.parametrization == "softplus" and not m.trainable and list(m.parameters()) == []
    torch.testing.assert_close(m.alpha, torch.full((6,), 2.0))


def test_dim_minus_one_for_sequence_models():
    model = nn.Sequential(nn.Linear(8, 16), nn.GELU(), nn.Linear(16, 4))
    new, replaced = convert(model, "gelu", dim=-1, example_inputs=torch.randn(2, 5, 8))
    assert replaced[0].num_parameters == 16 and new[1].dim == -1


def test_root_activation_is_replaced():
    new, replaced = convert(nn.ReLU(), "relu", per_neuron=False)
    assert isinstance(new, AdaptiveReLU) and [r.name for r in replaced] == [""]
    assert str(replaced[0]).startswith("(root): ReLU -> AdaptiveReLU")


def test_adaptive_modules_are_not_replaced_again(resnet):
    model, _ = convert(resnet, "auto")
    model(X)  # sized: the modules are no longer lazy
    for kwargs in ({}, {"types": None, "names": "extra.*"}, {"types": (AdaptiveSwish, AdaptiveGumbel)}):
        with pytest.warns(UserWarning, match="no activation module matched"):
            again, replaced = convert(model.extra, "relu", **kwargs)
        assert replaced == [] and isinstance(again[0], AdaptiveSwish)


def test_functional_activations_cannot_be_replaced_and_warn():
    class Functional(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 3)

        def forward(self, x):
            return F.relu(self.fc(x))

    with pytest.warns(UserWarning, match=r"F\.relu.*cannot be replaced"):
        model, replaced = convert(Functional())
    assert replaced == [] and isinstance(model.fc, nn.Linear)


def test_example_inputs_restores_training_flags_and_batchnorm_stats(resnet):
    resnet.train()
    resnet.layer1[0].eval()  # a mixed state must survive the dry run
    stats = resnet.bn1.running_mean.clone()
    model, _ = convert(resnet, "relu", example_inputs=X)
    assert model.training and not model.layer1[0].training and model.layer1[1].training
    assert torch.equal(model.bn1.running_mean, stats)
    assert all(p.grad is None for p in model.parameters())


def test_example_inputs_as_tuple():
    class Two(nn.Module):
        def __init__(self):
            super().__init__()
            self.act = nn.Tanh()

        def forward(self, a, b):
            return self.act(a + b)

    _, replaced = convert(Two(), "gumbel", example_inputs=(torch.randn(2, 7), torch.randn(2, 7)))
    assert replaced[0].num_parameters == 7


def test_converted_model_trains_and_is_picked_by_alpha_parameters(resnet):
    import actadapt

    model, replaced = convert(resnet.train(), "auto", example_inputs=X)
    alphas = list(actadapt.alpha_parameters(model))
    assert len(alphas) == len(replaced) == 8
    opt = torch.optim.SGD(actadapt.param_groups(model, lr=0.01, alpha_lr=0.1), lr=0.01)
    before = [a.detach().clone() for a in alphas]
    cls, gate = model(X)
    (cls[:, 0].sum() + gate.sum()).backward()
    opt.step()
    assert all(not torch.equal(a, b) for a, b in zip(alphas, before))
