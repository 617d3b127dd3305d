"""Teachers and labels of the Table 1 simulation: the documented choices, checked numerically."""

import math

import pytest
import torch

from actadapt.experiments.data.simulation import make_dataset, make_labels, make_teacher, sample_inputs


def _weights(spread_is, n=200_000):
    g = torch.Generator().manual_seed(0)
    t = make_teacher(g, depth=1, activation="Sig", n_features=n // 10, width=10, spread_is=spread_is)
    return t.weights[0].reshape(-1), t.biases[0]


@pytest.mark.parametrize("spread_is, sd", [("sd", 0.5), ("variance", math.sqrt(0.5))])
def test_teacher_weights_are_the_two_normal_mixture(spread_is, sd):
    w, _ = _weights(spread_is)
    pos, neg = w[w > 0], w[w < 0]
    # equal mixture: half the mass on each side (apart from the small overlap of the two normals)
    assert abs(pos.numel() / w.numel() - 0.5) < 0.01
    # E w = 0, Var w = 1 + sd^2 for the mixture of N(-1, sd^2) and N(+1, sd^2)
    assert abs(float(w.mean())) < 0.01
    assert float(w.var()) == pytest.approx(1 + sd**2, rel=0.02)


def test_teacher_bias_spread():
    g = torch.Generator().manual_seed(1)
    t = make_teacher(g, depth=1, activation="ReLU", width=100_000, spread_is="sd")
    assert float(t.biases[0].std()) == pytest.approx(0.5, rel=0.02)
    t2 = make_teacher(torch.Generator().manual_seed(1), depth=1, activation="ReLU", width=100_000, spread_is="variance")
    assert float(t2.biases[0].std()) == pytest.approx(math.sqrt(0.5), rel=0.02)


def test_teacher_shapes_and_forward():
    t = make_teacher(torch.Generator().manual_seed(2), depth=8, activation="ReLU")
    assert t.depth == 8 and len(t.weights) == 9
    assert t.weights[0].shape == (10, 10) and t.weights[-1].shape == (10, 1)
    x = torch.randn(7, 10, dtype=torch.float64)
    h = x
    for W, b in zip(t.weights[:-1], t.biases[:-1]):
        h = torch.relu(h @ W + b)
    assert torch.allclose(t.logit(x), (h @ t.weights[-1] + t.biases[-1])[:, 0])


def test_input_distributions():
    g = torch.Generator().manual_seed(3)
    xn = sample_inputs(g, 50_000, input_dist="normal")
    xu = sample_inputs(g, 50_000, input_dist="uniform")
    assert float(xn.std()) == pytest.approx(1.0, rel=0.02)
    assert float(xu.min()) >= -1 and float(xu.max()) <= 1 and float(xu.var()) == pytest.approx(1 / 3, rel=0.03)


def test_label_rules():
    g = torch.Generator().manual_seed(4)
    logit = torch.randn(100_000, dtype=torch.float64) * 2 + 0.7
    assert torch.equal(make_labels(g, logit, "sign"), (logit > 0).long())
    med = make_labels(g, logit, "median")
    assert abs(float(med.float().mean()) - 0.5) < 1e-3
    bern = make_labels(g, logit, "bernoulli")
    # Bernoulli(sigmoid(t)): the positive rate matches the mean probability, and labels are noisy
    assert float(bern.float().mean()) == pytest.approx(float(torch.sigmoid(logit).mean()), abs=0.01)
    assert 0.05 < float((bern != (logit > 0).long()).float().mean()) < 0.5


def test_dataset_is_a_function_of_the_seed():
    a = make_dataset(11, n_samples=300, depth=1, activation="Sig")
    b = make_dataset(11, n_samples=300, depth=1, activation="Sig")
    c = make_dataset(12, n_samples=300, depth=1, activation="Sig")
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])
    assert torch.equal(a[1], (a[2].logit(a[0]) > 0).long())


@pytest.mark.parametrize("kw, word", [({"input_dist": "cauchy"}, "input_dist"), ({"label_rule": "coin"}, "label_rule"),
                                      ({"spread_is": "iqr"}, "spread_is"), ({"activation": "Tanh"}, "teacher activation")])
def test_bad_choices_name_the_valid_ones(kw, word):
    args = {"n_samples": 10, "depth": 1, "activation": "Sig", **kw}
    with pytest.raises(ValueError, match=f"unknown {word}.*valid choices"):
        make_dataset(0, **args)
