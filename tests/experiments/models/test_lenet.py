"""LeNet5 of Table 2 (src/actadapt/experiments/models/lenet.py): shapes, alphas from the activation factory, and the
pool-first rewrite."""

import pytest
import torch
import torch.nn.functional as F

from actadapt import AdaptiveActivation, activation_spec
from actadapt.experiments.grid import GRID_ACTIVATIONS
from actadapt.experiments.models.lenet import LeNet5

GRID = ["ReLU", "AReLU", "AGumb"]


# ------------------------------------------------------------------------------------------ the model
@pytest.mark.parametrize("conv", list(GRID_ACTIVATIONS))
@pytest.mark.parametrize("fc", GRID)
def test_lenet_shapes_and_alphas(conv, fc):
    m = LeNet5(conv, fc)
    x = torch.rand(3, 1, 28, 28)
    assert m(x).shape == (3, 10)
    assert m.fc1.in_features == 50 * 4 * 4 and m.fc1.out_features == 1000
    for act, n, name in ((m.act1, 20, conv), (m.act2, 50, conv), (m.act3, 1000, fc)):
        adaptive = activation_spec(name).adaptive
        assert isinstance(act, AdaptiveActivation) == adaptive
        if adaptive:
            assert act.alpha.shape == (n,) and act.dim == 1  # per channel (conv) / per neuron (fc)


def test_lenet_other_image_size_and_classes():
    m = LeNet5("AReLU", "AGumb", image_size=(32, 36), num_classes=7, in_channels=3)
    assert m(torch.rand(2, 3, 32, 36)).shape == (2, 7)
    assert m.fc1.in_features == 50 * 5 * 6


def test_lenet_bad_arguments():
    with pytest.raises(ValueError, match="unknown activation 'Tanhh'; valid names: .*arelu"):  # the factory's error
        LeNet5("Tanhh", "ReLU")
    with pytest.raises(ValueError, match="too small"):
        LeNet5(image_size=12)


def _reference_forward(m: LeNet5, x):
    """conv -> BN -> act -> pool, literally (the model may pool first where that is exact)."""
    x = m.pool(m.act1(m.bn1(m.conv1(x))))
    x = m.pool(m.act2(m.bn2(m.conv2(x))))
    return m.fc2(m.act3(m.bn3(m.fc1(x.flatten(1)))))


@pytest.mark.parametrize("conv", list(GRID_ACTIVATIONS))
def test_pool_first_is_exact(conv):
    torch.manual_seed(0)
    m = LeNet5(conv, "AGumb", dtype=torch.float64)
    with torch.no_grad():  # alphas away from 1 and different per channel
        for act in (m.act1, m.act2):
            if isinstance(act, AdaptiveActivation):
                act.rho.copy_(torch.linspace(-1.5, 1.5, act.rho.numel(), dtype=torch.float64))
    x = torch.rand(4, 1, 28, 28, dtype=torch.float64)
    y = torch.tensor([0, 3, 5, 9])
    grads = []
    for fwd in (m, lambda t: _reference_forward(m, t)):
        m.zero_grad()
        out = fwd(x)
        F.cross_entropy(out, y).backward()
        grads.append((out.detach(), {n: p.grad.clone() for n, p in m.named_parameters()}))
    (o1, g1), (o2, g2) = grads
    assert m.pool_first == (conv != "Swish")
    torch.testing.assert_close(o1, o2, rtol=1e-12, atol=1e-12)
    for name in g1:  # weights, BN and alpha gradients alike
        torch.testing.assert_close(g1[name], g2[name], rtol=1e-10, atol=1e-12, msg=name)


def test_any_factory_name_builds_and_pools_first_only_where_monotone():
    m = LeNet5("normal_gated", "tanh")  # GELU-shaped conv units (not monotone), a fixed tanh FC layer
    assert m(torch.rand(2, 1, 28, 28)).shape == (2, 10)
    assert not m.pool_first and isinstance(m.act3, torch.nn.Tanh)
    assert LeNet5("Sig", "ReLU").pool_first
