"""The batched trainer against the one-model-at-a-time reference (nn.Linear + torch.optim.SGD)."""

import math
import random

import pytest
import torch

from actadapt import activation_spec
from actadapt.experiments.data.simulation import make_dataset
from actadapt.experiments.models.students import (
    StudentSpec,
    TrainSettings,
    lecun_init,
    train_batched,
    train_single,
)

ACTS = ["Sig", "AGumb", "ReLU", "AReLU", "Swish"]


def _specs(depth, n=123, folds=3, acts=ACTS):
    X, y, _ = make_dataset(5, n_samples=n, depth=depth, activation="ReLU", label_rule="median")
    specs = []
    for f in range(folds):
        te = torch.arange(f, n, folds)  # fold f: every folds-th row; n not a multiple of folds -> unequal sizes
        tr = torch.tensor([i for i in range(n) if i % folds != f], dtype=torch.long)
        for a in acts:
            specs.append(StudentSpec(a, 100 + f, 200 + f, X[tr], y[tr], X[te], y[te]))
    return specs


@pytest.mark.parametrize("depth, n", [(1, 124), (2, 125)])
def test_batched_equals_single(depth, n):
    # n = 124/125 with batch 20 gives folds of different sizes, different step counts and short last batches
    settings = TrainSettings(depth=depth, width=6, epochs=3, batch_size=20, lr=0.05, l1=0.01, l2=0.01,
                             dtype=torch.float64)
    specs = _specs(depth, n)
    assert len({s.X_train.shape[0] for s in specs}) > 1
    batched = train_batched(specs, settings)
    for m, spec in enumerate(specs):
        ref = train_single(spec, settings)
        assert batched.curve_epochs == ref.curve_epochs
        assert batched.train_loss[m] == pytest.approx(ref.train_loss[0], rel=1e-10, abs=1e-12)
        assert batched.test_acc[m] == pytest.approx(ref.test_acc[0], abs=1e-12)
        if activation_spec(spec.activation).adaptive:
            for la, lb in zip(batched.alphas[m], ref.alphas[0]):
                assert la == pytest.approx(lb, rel=1e-10)
            # alpha has moved from its initial 1: the alpha gradient is wired
            assert any(abs(a - 1) > 1e-6 for layer in batched.alphas[m] for a in layer)
        else:
            assert batched.alphas[m] is None and ref.alphas[0] is None


def test_penalize_alpha_changes_only_adaptive_students():
    specs = _specs(1, 124, folds=2, acts=["AGumb", "ReLU"])[:2]
    on = train_batched(specs, TrainSettings(depth=1, epochs=2, l1=0.05, l2=0.05, dtype=torch.float64, penalize_alpha=True))
    off = train_batched(specs, TrainSettings(depth=1, epochs=2, l1=0.05, l2=0.05, dtype=torch.float64, penalize_alpha=False))
    assert on.train_loss[1] == off.train_loss[1]  # ReLU has no alpha
    # the alpha penalty pulls alpha down
    assert sum(on.alphas[0][0]) < sum(off.alphas[0][0])
    ref = train_single(specs[0], TrainSettings(depth=1, epochs=2, l1=0.05, l2=0.05, dtype=torch.float64, penalize_alpha=False))
    assert off.alphas[0][0] == pytest.approx(ref.alphas[0][0], rel=1e-10)


def test_result_order_does_not_depend_on_spec_order():
    specs = _specs(1, 100, folds=2)
    settings = TrainSettings(depth=1, epochs=2, dtype=torch.float64)
    a = train_batched(specs, settings)
    perm = list(range(len(specs)))
    random.Random(0).shuffle(perm)
    b = train_batched([specs[i] for i in perm], settings)
    for j, i in enumerate(perm):
        assert b.test_acc[j] == pytest.approx(a.test_acc[i], abs=1e-12)
        assert b.train_loss[j] == pytest.approx(a.train_loss[i], rel=1e-10)


def test_float32_close_to_float64():
    specs = _specs(2, 100, folds=2, acts=["AGumb", "AReLU"])[:2]
    a = train_batched(specs, TrainSettings(depth=2, epochs=2, dtype=torch.float32))
    b = train_batched(specs, TrainSettings(depth=2, epochs=2, dtype=torch.float64))
    for m in range(len(specs)):
        assert a.train_loss[m] == pytest.approx(b.train_loss[m], rel=1e-4)


def test_lecun_init_std():
    W, b = lecun_init(torch.Generator().manual_seed(0), 400, 500, torch.float64)
    assert float(W.std()) == pytest.approx(1 / math.sqrt(400), rel=0.02)
    assert float(b.std()) == pytest.approx(1 / math.sqrt(400), rel=0.15)
    assert abs(float(W.mean())) < 0.003


def test_training_learns_a_shallow_teacher():
    # not "the loss went down": a 1-layer student must beat the majority rate clearly on a 1-layer teacher
    X, y, _ = make_dataset(3, n_samples=1000, depth=1, activation="ReLU", label_rule="median")
    spec = StudentSpec("AGumb", 1, 2, X[:800], y[:800], X[800:], y[800:])
    res = train_batched([spec], TrainSettings(depth=1, epochs=10, lr=0.05))
    assert res.accuracy[0] > 0.75  # balanced classes: a student that learns nothing scores ~0.5
