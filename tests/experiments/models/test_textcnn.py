"""Kim's text CNN of Table 3 (src/actadapt/experiments/models/textcnn.py): shapes, the projection trick, padding, and
its training through the shared loop."""

import numpy as np
import pytest
import torch

from actadapt import AdaptiveGumbel, AdaptiveReLU
from actadapt.experiments.models.textcnn import KimCNN, TrainSettings, batch_tokens, train_textcnn


# ----------------------------------------------------------------------------------------------- model
def _model(conv="AReLU", fc="AGumb", hidden=7, static=True, dim=6, vocab=20, maps=5):
    torch.manual_seed(0)
    emb = torch.randn(vocab + 1, dim)
    emb[0] = 0
    m = KimCNN(emb, (3, 4, 5), maps, hidden, 2, conv, fc, dropout=0.5, static=static)
    m.reset_parameters(torch.Generator().manual_seed(1))
    return m


def test_shapes_and_per_channel_alphas():
    m = _model()
    out = m(batch_tokens([[1, 2, 3], [4, 5, 6, 7, 8, 9]], 5))
    assert out.shape == (2, 2)
    assert all(isinstance(a, AdaptiveReLU) and a.alpha.shape == (5,) and a.dim == 1 for a in m.conv_acts)
    assert isinstance(m.fc_act, AdaptiveGumbel) and m.fc_act.alpha.shape == (7,)
    assert m.fc.in_features == 15 and m.out.in_features == 7


def test_kim_original_without_hidden_layer():
    m = _model(hidden=0)
    assert m.fc is None and m.out.in_features == 15 and m.linear_layers() == [m.out]
    assert m(batch_tokens([[1, 2]], 5)).shape == (1, 2)


def test_unknown_activation_names_fail_with_the_factorys_list():
    with pytest.raises(ValueError, match="unknown activation 'Tanhh'; valid names"):
        _model(conv="Tanhh")


@pytest.mark.parametrize("static, conv1d", [(True, False), (False, False), (True, True)])
def test_conv_features_equal_conv1d(static, conv1d):
    # the distinct-word projection is the same linear map as nn.Conv1d, values and gradients
    m = _model(static=static)
    if conv1d:
        m.max_projection = 0  # the long-document path: Conv1d itself
    with torch.no_grad():
        for c in m.convs:
            c.bias.uniform_(-0.5, 0.5)
    tokens = batch_tokens([[3, 1, 4, 1, 5], [9, 2, 6], [5, 3, 5, 8, 9, 7, 9]], 5)
    x = m.embedding(tokens).transpose(1, 2)  # (N, D, L)
    ref = [conv(x) for conv in m.convs]
    got = m.conv_features(tokens)
    for r, g in zip(ref, got):
        torch.testing.assert_close(g, r, rtol=1e-5, atol=1e-6)
    params = [c.weight for c in m.convs] + [m.convs[0].bias] + ([] if static else [m.embedding.weight])
    g_ref = torch.autograd.grad(sum((r.tanh() * (i + 1)).sum() for i, r in enumerate(ref)), params)
    g_got = torch.autograd.grad(sum((g.tanh() * (i + 1)).sum() for i, g in enumerate(m.conv_features(tokens))), params)
    for a, b in zip(g_got, g_ref):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_batch_tokens_layout():
    t = batch_tokens([[7, 8], [1, 2, 3, 4]], 5)
    assert t.shape == (2, 4 + 4 + 5)
    assert t[0].tolist() == [0, 0, 0, 0, 7, 8] + [0] * 7
    assert t[1, 4:8].tolist() == [1, 2, 3, 4] and t[1, 8:].eq(0).all()


@pytest.mark.parametrize("conv", ["ReLU", "AReLU", "AGumb"])
def test_padding_equals_kims_global_padding(conv):
    # the pooled features of a sentence do not depend on how far the batch pads it, as long as one all-zero
    # window remains: ours (batch max + width) and Kim's (data-set max) give the same logits
    m = _model(conv=conv).eval()
    seqs = [[3, 1, 4], [1, 5, 9, 2, 6, 5, 3], [5]]
    ours = torch.cat([m(batch_tokens([s], 5)) for s in seqs])
    kim = torch.zeros(3, 4 + 30 + 4, dtype=torch.long)  # Kim: pad 4 in front, back up to max_l + 2 * 4
    for i, s in enumerate(seqs):
        kim[i, 4:4 + len(s)] = torch.tensor(s)
    torch.testing.assert_close(ours, m(kim))
    torch.testing.assert_close(ours, m(batch_tokens(seqs, 5)))


def _toy_task(n=60, vocab=20, seed=0):
    # label 1 iff the sentence holds word 1: learnable by a width-3 filter
    rng = np.random.default_rng(seed)
    seqs, labels = [], []
    for i in range(n):
        s = rng.integers(2, vocab + 1, size=rng.integers(2, 9)).tolist()
        if i % 2:
            s[rng.integers(len(s))] = 1
        seqs.append(s)
        labels.append(i % 2)
    return seqs, np.array(labels)


def test_training_static_max_norm_and_curves():
    m = _model(conv="ReLU", fc="AReLU")
    emb0 = m.embedding.weight.detach().clone()
    seqs, y = _toy_task()
    res = train_textcnn(m, (seqs[:40], y[:40]), (seqs[40:50], y[40:50]), (seqs[50:], y[50:]),
                        TrainSettings(epochs=3, batch_size=8, optimizer="adadelta", lr=1.0, max_norm=0.5), 0)
    assert res.epochs == [1, 2, 3]
    assert len(res.train_error) == len(res.dev_error) == len(res.test_error) == 3
    assert all(0.0 <= e <= 1.0 for e in res.train_error + res.dev_error + res.test_error)
    assert torch.equal(m.embedding.weight, emb0)  # static: frozen
    for lin in m.linear_layers():
        assert lin.weight.norm(dim=1).max() <= 0.5 + 1e-5  # Kim's max-norm on each unit's weight vector
    assert not torch.allclose(m.fc_act.alpha, torch.ones(7))  # the FC alphas trained


def test_a_diverging_fold_stops_and_says_so():
    seqs, y = _toy_task()
    ok = train_textcnn(_model(), (seqs[:40], y[:40]), (seqs[40:50], y[40:50]), (seqs[50:], y[50:]),
                       TrainSettings(epochs=2, batch_size=8, optimizer="sgd", lr=0.1), 0)
    assert ok.diverged_epoch is None
    m = _model()
    bad = train_textcnn(m, (seqs[:40], y[:40]), (seqs[40:50], y[40:50]), (seqs[50:], y[50:]),
                        TrainSettings(epochs=4, batch_size=8, optimizer="sgd", lr=1e30, max_norm=0), 0)
    assert bad.diverged_epoch is not None and bad.epochs[-1] == bad.diverged_epoch  # the curves end there


def test_non_static_embeddings_train_but_padding_stays_zero():
    m = _model(static=False)
    emb0 = m.embedding.weight.detach().clone()
    seqs, y = _toy_task()
    train_textcnn(m, (seqs, y), ([], y[:0]), ([], y[:0]), TrainSettings(epochs=1, batch_size=10, optimizer="sgd", lr=0.5), 0)
    assert not torch.equal(m.embedding.weight, emb0)
    assert not m.embedding.weight[0].any()


def test_same_seed_same_result_and_bucketing_runs():
    seqs, y = _toy_task()
    s = TrainSettings(epochs=2, batch_size=8, bucket=True)
    runs = []
    for _ in range(2):
        m = _model(conv="AGumb", fc="ReLU")
        torch.manual_seed(5)
        runs.append(train_textcnn(m, (seqs[:40], y[:40]), (seqs[40:50], y[40:50]), (seqs[50:], y[50:]), s, 3).train_loss)
    assert runs[0] == runs[1]
