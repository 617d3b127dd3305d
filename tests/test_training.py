"""Training helpers (issue 2, item 6): alpha selection, optimizer groups, the paper's L1/L2 penalties (eqs. 4-6)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import actadapt
from actadapt import (
    AdaptiveActivation,
    AdaptiveGumbel,
    AdaptiveReLU,
    AdaptiveSwish,
    alpha_parameters,
    l1_penalty,
    l2_penalty,
    named_alpha_parameters,
    param_groups,
    penalty,
)


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, padding=1)
        self.act = AdaptiveReLU(c, init=0.5)

    def forward(self, x):
        return self.act(self.conv(x)) + x


class Net(nn.Module):
    """Nested: Sequential, ModuleList, ModuleDict, a shared module, an untrainable one."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), AdaptiveSwish(3, init=2.0))
        self.blocks = nn.ModuleList([Block(3), Block(3)])
        shared = AdaptiveGumbel(1, init=0.3)
        self.heads = nn.ModuleDict({"a": nn.Sequential(nn.Flatten(), nn.Linear(48, 5), shared), "b": shared})
        self.frozen = AdaptiveActivation("normal", "gated", num_parameters=5, trainable=False)

    def forward(self, x):
        x = self.stem(x)
        for b in self.blocks:
            x = b(x)
        return self.frozen(self.heads["b"](self.heads["a"](x)))


EXPECTED_ALPHA_NAMES = ["stem.1.rho", "blocks.0.act.rho", "blocks.1.act.rho", "heads.a.2.rho"]


@pytest.fixture
def net():
    torch.manual_seed(0)
    return Net()


def test_named_alpha_parameters_finds_each_trainable_rho_once(net):
    named = list(named_alpha_parameters(net))
    assert [n for n, _ in named] == EXPECTED_ALPHA_NAMES
    params = dict(net.named_parameters())
    for name, p in named:
        assert p is params[name]
    assert [p for p in alpha_parameters(net)] == [p for _, p in named]


def test_alpha_parameters_of_a_bare_module_and_of_a_model_without_any():
    m = AdaptiveGumbel(4)
    assert list(alpha_parameters(m)) == [m.rho]
    assert list(named_alpha_parameters(m)) == [("rho", m.rho)]
    assert list(alpha_parameters(nn.Sequential(nn.Linear(2, 2), nn.ReLU()))) == []


def test_alpha_parameters_rejects_non_modules():
    with pytest.raises(TypeError, match="model must be an nn.Module, got list"):
        list(alpha_parameters([1, 2]))


@pytest.mark.parametrize("alpha_lr,expected_alpha_lr", [(None, 0.1), (0.01, 0.01)])
@pytest.mark.parametrize("wd,alpha_wd", [(0.0, 0.0), (1e-4, 0.0), (1e-4, 1e-3)])
def test_param_groups_partition_the_trainable_parameters(net, alpha_lr, expected_alpha_lr, wd, alpha_wd):
    groups = param_groups(net, lr=0.1, alpha_lr=alpha_lr, weight_decay=wd, alpha_weight_decay=alpha_wd)
    assert [g["name"] for g in groups] == ["weights", "alpha"]
    weights, alpha = groups
    assert (weights["lr"], weights["weight_decay"]) == (0.1, wd)
    assert (alpha["lr"], alpha["weight_decay"]) == (expected_alpha_lr, alpha_wd)
    assert [id(p) for p in alpha["params"]] == [id(p) for p in alpha_parameters(net)]
    all_ids = sorted(id(p) for p in net.parameters())
    grouped = sorted(id(p) for g in groups for p in g["params"])
    assert grouped == all_ids  # every parameter exactly once
    torch.optim.SGD(groups, lr=1.0)  # accepted by an optimizer


def test_param_groups_default_no_weight_decay_on_alpha(net):
    # zero gradients: an SGD step changes parameters only through weight decay
    opt = torch.optim.SGD(param_groups(net, lr=0.1, weight_decay=0.5), lr=0.1)
    for p in net.parameters():
        p.grad = torch.zeros_like(p)
    before = {n: p.detach().clone() for n, p in net.named_parameters()}
    opt.step()
    for n, p in net.named_parameters():
        if n in EXPECTED_ALPHA_NAMES:
            assert torch.equal(p, before[n]), n
        else:
            torch.testing.assert_close(p, before[n] * (1 - 0.1 * 0.5))


def test_param_groups_alpha_learning_rate_is_used(net):
    opt = torch.optim.SGD(param_groups(net, lr=0.0, alpha_lr=0.1), lr=0.0)
    x = torch.randn(2, 1, 4, 4)
    net(x).sum().backward()
    before = {n: p.detach().clone() for n, p in net.named_parameters()}
    opt.step()
    for n, p in net.named_parameters():
        if n in EXPECTED_ALPHA_NAMES:
            torch.testing.assert_close(p, before[n] - 0.1 * p.grad)
        else:
            assert torch.equal(p, before[n]), n


def test_param_groups_skip_frozen_and_empty_groups():
    m = nn.Sequential(nn.Linear(2, 3), nn.ReLU())
    assert [g["name"] for g in param_groups(m, lr=0.1)] == ["weights"]
    m[0].weight.requires_grad_(False)
    assert param_groups(m, lr=0.1)[0]["params"] == [m[0].bias]
    assert [g["name"] for g in param_groups(AdaptiveGumbel(3), lr=0.1)] == ["alpha"]


@pytest.mark.parametrize(
    "kwargs,match",
    [({"lr": -1.0}, r"lr must be a non-negative number, got -1\.0"), ({"lr": 0.1, "alpha_lr": "x"}, "alpha_lr"),
     ({"lr": 0.1, "weight_decay": -0.1}, "weight_decay"), ({"lr": 0.1, "alpha_weight_decay": None}, "alpha_weight_decay")],
)
def test_param_groups_validates(kwargs, match):
    with pytest.raises(ValueError, match=match):
        param_groups(nn.Linear(2, 2), **kwargs)


# ------------------------------------------------------------------------------------ penalties
@pytest.mark.parametrize("shapes", [[(3,)], [(2, 3), (4,)], [(5, 1, 2), (1,), (3, 3)]])
def test_l1_l2_penalties_are_sums_over_every_element(shapes):
    torch.manual_seed(1)
    params = [torch.randn(s, dtype=torch.float64) for s in shapes]
    flat = torch.cat([p.reshape(-1) for p in params]).tolist()
    assert l1_penalty(params).item() == pytest.approx(sum(abs(v) for v in flat), rel=1e-14)
    assert l2_penalty(params).item() == pytest.approx(sum(v * v for v in flat), rel=1e-14)


def test_penalties_of_nothing_are_zero():
    assert l1_penalty([]).item() == 0.0 and l2_penalty(iter([])).item() == 0.0
    assert penalty(nn.Sequential(nn.ReLU()), l1=1.0, l2=1.0).item() == 0.0


def test_penalty_gradients():
    w = torch.tensor([-2.0, 0.5, 3.0], requires_grad=True)
    (l1_penalty([w]) + l2_penalty([w])).backward()
    torch.testing.assert_close(w.grad, torch.sign(w.detach()) + 2 * w.detach())


def _manual(net, on, alpha_space):
    alpha_ids = {id(p) for p in alpha_parameters(net)}
    tensors = []
    if on in ("all", "weights"):
        tensors += [p for p in net.parameters() if id(p) not in alpha_ids]
    if on in ("all", "alpha"):
        for m in [net.stem[1], net.blocks[0].act, net.blocks[1].act, net.heads["b"]]:
            tensors.append(m.alpha if alpha_space == "alpha" else m.rho)
    return sum(t.abs().sum() for t in tensors), sum(t.square().sum() for t in tensors)


@pytest.mark.parametrize("on", ["all", "weights", "alpha"])
@pytest.mark.parametrize("alpha_space", ["alpha", "rho"])
@pytest.mark.parametrize("l1,l2", [(1e-3, 0.0), (0.0, 1e-3), (1e-3, 1e-3), (0.5, 2.0)])
def test_penalty_selects_the_requested_group(net, on, alpha_space, l1, l2):
    m1, m2 = _manual(net, on, alpha_space)
    got = penalty(net, l1=l1, l2=l2, on=on, alpha_space=alpha_space)
    torch.testing.assert_close(got, l1 * m1 + l2 * m2)


def test_alpha_penalty_acts_on_alpha_not_rho():
    # with alpha = exp(rho), d/d rho of alpha^2 is 2 alpha^2; of rho^2 it is 2 rho
    m = AdaptiveGumbel(3, init=2.0, dtype=torch.float64)
    penalty(m, l2=1.0, on="alpha").backward()
    torch.testing.assert_close(m.rho.grad, torch.full((3,), 8.0, dtype=torch.float64))
    m.rho.grad = None
    penalty(m, l2=1.0, on="alpha", alpha_space="rho").backward()
    torch.testing.assert_close(m.rho.grad, 2 * m.rho.detach())


def test_penalty_skips_frozen_and_lazy_parameters():
    m = nn.Sequential(nn.Linear(2, 3), AdaptiveReLU(None), AdaptiveGumbel(3, trainable=False), nn.LazyLinear(2))
    m[0].bias.requires_grad_(False)
    expected = m[0].weight.detach().abs().sum()
    torch.testing.assert_close(penalty(m, l1=1.0).detach(), expected)


@pytest.mark.parametrize(
    "kwargs,match",
    [({"on": "bias"}, r"on='bias'; valid targets: all, weights, alpha"), ({"l1": -1.0}, r"l1 .*got -1\.0"),
     ({"alpha_space": "log"}, r"alpha_space must be 'alpha' or 'rho', got 'log'")],
)
def test_penalty_validates(kwargs, match):
    with pytest.raises(ValueError, match=match):
        penalty(nn.Linear(2, 2), **kwargs)


def test_training_step_with_groups_and_penalty_moves_alpha():
    # eqs. 4-6: alpha trained beside weights, by its own learning rate, with L1 + L2 on theta
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), AdaptiveGumbel(8), nn.Linear(8, 1))
    opt = torch.optim.SGD(param_groups(model, lr=0.05, alpha_lr=0.5), lr=0.05)
    x, y = torch.randn(64, 4), torch.randn(64, 1)
    start = model[1].alpha.detach().clone()
    for _ in range(5):
        opt.zero_grad()
        loss = nn.functional.mse_loss(model(x), y) + penalty(model, l1=1e-3, l2=1e-3)
        loss.backward()
        opt.step()
    moved = (model[1].alpha.detach() - start).abs()
    assert (moved > 0).all() and torch.isfinite(model[1].alpha).all()
    assert actadapt.alpha_parameters is alpha_parameters
