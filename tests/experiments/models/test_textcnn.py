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


# ------------------------------------------------------------------------ FC initialisation (fc_init)
def _big(fc_init, seed=0, hidden=500, maps=200):
    # FC weight (500, 600): 300,000 draws; output weight (2, 500)
    m = KimCNN(torch.zeros(4, 3), (3, 4, 5), maps, hidden, 2, "ReLU", "ReLU", fc_init=fc_init)
    m.reset_parameters(torch.Generator().manual_seed(seed))
    return m


def _assert_uniform(t, bound):
    t = t.detach().double().flatten()
    assert t.abs().max() <= bound * (1 + 1e-6) and t.abs().max() > 0.9 * bound  # fills (-bound, bound)
    std = bound / 3**0.5
    assert abs(float(t.mean())) < 5 * std / t.numel() ** 0.5
    rel = 0.02 if t.numel() > 10_000 else 0.2
    assert float(t.std()) == pytest.approx(std, rel=rel)


def _assert_normal(t, std):
    t = t.detach().double().flatten()
    assert abs(float(t.mean())) < 5 * std / t.numel() ** 0.5
    rel = 0.02 if t.numel() > 10_000 else 0.2
    assert float(t.std()) == pytest.approx(std, rel=rel)
    if t.numel() > 10_000:  # a normal's tails, not a uniform's: P(|x| > 2 std) = 4.55% (SE 0.04% here)
        assert 0.040 < float((t.abs() > 2 * std).double().mean()) < 0.051


def test_fc_init_glorot_is_kims_draw():
    # the default draws exactly what Kim's initialisation drew before fc_init existed: convs, FC and output
    # layer in turn, each U(+-sqrt(6 / (fan_in + fan_out))), fan = channels x width for a convolution
    m = _model(hidden=7, maps=5, dim=6)
    g = torch.Generator().manual_seed(1)
    convs = [(c, 6 * w, 5 * w) for c, w in zip(m.convs, (3, 4, 5))]
    for layer, fan_in, fan_out in [*convs, (m.fc, 15, 7), (m.out, 7, 2)]:
        b = (6 / (fan_in + fan_out)) ** 0.5
        assert torch.equal(layer.weight, torch.empty_like(layer.weight).uniform_(-b, b, generator=g))
        assert not layer.bias.any()
    big = _big("glorot")
    _assert_uniform(big.fc.weight, (6 / (600 + 500)) ** 0.5)
    _assert_uniform(big.out.weight, (6 / (500 + 2)) ** 0.5)
    assert not big.fc.bias.any() and not big.out.bias.any()


def test_fc_init_lecun_draws_weights_and_biases_from_n_0_1_over_fan_in():
    m = _big("lecun")
    _assert_normal(m.fc.weight, 600 ** -0.5)
    _assert_normal(m.fc.bias, 600 ** -0.5)
    _assert_normal(m.out.weight, 500 ** -0.5)


def test_fc_init_torch_is_nn_linears_default_from_the_given_generator():
    m = _big("torch")
    _assert_uniform(m.fc.weight, 600 ** -0.5)
    _assert_uniform(m.fc.bias, 600 ** -0.5)
    _assert_uniform(m.out.weight, 500 ** -0.5)
    # the same numbers torch's own nn.Linear draws from the global generator seeded alike
    lin = torch.nn.Linear(30, 7)
    from actadapt.experiments.models.weight_init import torch_linear_init_

    torch_linear_init_(lin, torch.Generator().manual_seed(3))
    torch.manual_seed(3)
    ref = torch.nn.Linear(30, 7)
    assert torch.equal(lin.weight, ref.weight) and torch.equal(lin.bias, ref.bias)


@pytest.mark.parametrize("fc_init", ["glorot", "lecun", "torch"])
def test_fc_init_seeded_and_convolutions_always_glorot(fc_init):
    a, b, c, kim = (_big(rule, seed, maps=20, hidden=30) for rule, seed in
                    ((fc_init, 4), (fc_init, 4), (fc_init, 5), ("glorot", 4)))
    for (name, pa), pb, pc, pk in zip(a.named_parameters(), b.parameters(), c.parameters(), kim.parameters()):
        assert torch.equal(pa, pb), name  # same seed, same weights
        if name.startswith("convs"):
            assert torch.equal(pa, pk), name  # Kim's Glorot convolutions whatever fc_init
            assert name.endswith("bias") or not torch.equal(pa, pc), name
        elif name.startswith(("fc.", "out.")) and (fc_init != "glorot" or name.endswith("weight")):
            assert not torch.equal(pa, pc), name
            assert (fc_init == "glorot") is torch.equal(pa, pk), name


def test_unknown_fc_init_or_dropout_place_is_refused():
    with pytest.raises(ValueError, match="unknown fc_init 'he'; valid: glorot, lecun, torch"):
        KimCNN(torch.zeros(4, 3), fc_init="he")
    with pytest.raises(ValueError, match="unknown dropout_at 'conv'; valid: linear, pooled, output"):
        KimCNN(torch.zeros(4, 3), dropout_at="conv")


# ---------------------------------------------------------------------------- dropout place (dropout_at)
def _inputs_seen(m, tokens):
    """The inputs of the FC and output layers in one forward: ``{"fc": (N, pooled), "out": (N, hidden)}``."""
    seen = {}
    hooks = [layer.register_forward_pre_hook(lambda mod, args, name=name: seen.__setitem__(name, args[0]))
             for name, layer in (("fc", m.fc), ("out", m.out)) if layer is not None]
    m(tokens)
    for h in hooks:
        h.remove()
    return seen


@pytest.mark.parametrize("place, dropped", [("linear", {"fc", "out"}), ("pooled", {"fc"}), ("output", {"out"})])
def test_dropout_acts_exactly_where_dropout_at_says(place, dropped):
    # AGumb conv and FC outputs lie in (0, 1): a zero in a layer's input is dropout's doing, and at rate 0.999
    # dropout zeroes nearly all of it
    emb = torch.randn(21, 6, generator=torch.Generator().manual_seed(0))
    m = KimCNN(emb, (3, 4, 5), 5, 7, 2, "AGumb", "AGumb", dropout=0.999, dropout_at=place)
    m.reset_parameters(torch.Generator().manual_seed(1))
    tokens = batch_tokens([[1, 2, 3], [4, 5, 6, 7, 8, 9], [10, 11], [12, 13, 14, 15]], 5)
    torch.manual_seed(0)
    seen = _inputs_seen(m.train(), tokens)
    for name, x in seen.items():
        zeros = float((x == 0).double().mean())
        assert (zeros > 0.9) if name in dropped else (zeros == 0.0), (name, zeros)
    # evaluation: no dropout anywhere, the same logits whatever the place
    ref = KimCNN(emb, (3, 4, 5), 5, 7, 2, "AGumb", "AGumb", dropout=0.999)
    ref.reset_parameters(torch.Generator().manual_seed(1))
    torch.testing.assert_close(m.eval()(tokens), ref.eval()(tokens), rtol=0, atol=0)


@pytest.mark.parametrize("place", ["linear", "pooled", "output"])
def test_without_hidden_layer_every_place_drops_the_pooled_features_once(place):
    m = KimCNN(torch.randn(21, 6), (3, 4, 5), 5, 0, 2, "AGumb", "AGumb", dropout=0.999, dropout_at=place)
    assert isinstance(m.output_dropout, torch.nn.Dropout) and isinstance(m.pooled_dropout, torch.nn.Identity)
    x = _inputs_seen(m.train(), batch_tokens([[1, 2, 3], [4, 5]], 5))["out"]
    assert float((x == 0).double().mean()) > 0.9
