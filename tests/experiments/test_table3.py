"""Table 3: Kim's text CNN (textcnn.py) and the experiment (table3.py), on tiny synthetic data and the real data."""

import json
import os

import numpy as np
import pytest
import torch

from actadapt import AdaptiveGumbel, AdaptiveReLU
from actadapt.cli import main
from actadapt.experiments.textcnn import KimCNN, TrainSettings, batch_tokens, make_activation, train_textcnn

FAST = ["--set", "backend=eager", "--set", "maps=4", "--set", "hidden=4", "--set", "epochs=2", "--workers", "1"]


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


def test_make_activation_rejects_unknown():
    with pytest.raises(ValueError, match="unknown activation 'Tanh'; valid activations: ReLU, AReLU, AGumb"):
        make_activation("Tanh", 3)


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


# ------------------------------------------------------------------------------------- the experiment
def _synthetic_root(tmp_path, n=40):
    from gensim.models import KeyedVectors

    root = tmp_path / "data"
    (root / "movie-review").mkdir(parents=True)
    (root / "word-vectors").mkdir()
    rng = np.random.default_rng(0)
    good, bad, filler = ["great", "moving", "fine"], ["dull", "awful", "boring"], ["film", "the", "a", "plot", "caf\xe9"]
    for name, words in (("rt-polarity.pos", good), ("rt-polarity.neg", bad)):
        lines = [" ".join(rng.choice(filler + words, size=6)) for _ in range(n)]
        lines[0] += " so\x85 so"  # the 0x85 byte must not split the line
        (root / "movie-review" / name).write_bytes("\n".join(lines).encode("latin-1") + b"\n")
    kv = KeyedVectors(10)
    known = good + bad + ["film", "the"]
    kv.add_vectors(known, rng.normal(0, 0.3, (len(known), 10)).astype(np.float32))
    kv.save_word2vec_format(str(root / "word-vectors" / "GoogleNews-vectors-negative300-bolukbasi.bin"), binary=True)
    with open(root / "word-vectors" / "glove.6B.50d.top100k.txt", "w") as fh:
        for w in known:
            fh.write(w + " " + " ".join(f"{v:.5f}" for v in kv[w]) + "\n")
    return str(root)


def test_reproduce_smoke_on_synthetic_data(tmp_path, capsys):
    root = _synthetic_root(tmp_path)
    out = tmp_path / "run"
    argv = ["reproduce", "table3", "--preset", "smoke", "--out", str(out), "--data-dir", root,
            "--set", "conv_acts=ReLU,AGumb", "--set", "fc_acts=AReLU", "--set", "folds=3", *FAST]
    assert main(argv) == 0
    res = json.loads((out / "results.json").read_text())
    assert res["complete"] and res["rows"] == ["ReLU", "AGumb"] and res["columns"] == ["AReLU"]
    assert all(c["n_folds"] == 3 and 0 <= c["mean"] <= 100 for c in res["cells"])
    assert res["cells"][0]["paper"] == 79.1 and res["kim_cnn_static_mr"] == 81.0
    cov = res["coverage"]
    # no vector: 'plot', 'a', 'caf' ('café' cut at the é) and 'so' (twice on one line, around the 0x85 byte)
    assert cov["types"] == 12 and cov["known_types"] == 8
    assert res["data"]["documents"] == 80  # 40 lines per file: the 0x85 byte did not split a line
    rec = json.loads((out / "folds" / "AGumb-AReLU__fold0.json").read_text())
    assert len(rec["test_error"]) == 2 and rec["n_train"] + rec["n_dev"] + rec["n_test"] == 80
    assert set(rec["alphas"]) == {"conv_acts.0", "conv_acts.1", "conv_acts.2", "fc_act"}
    report = (out / "report.md").read_text()
    assert "word types" in report and "81.0" in report and "Adadelta" in report
    assert os.path.isfile(out / "figures" / "fig8_error_curves.png")
    # the same command resumes: nothing left to train
    assert main(argv) == 0
    assert "6 of 6 tasks already done" in capsys.readouterr().out


def test_glove_and_paired_cells(tmp_path):
    root = _synthetic_root(tmp_path)
    out = tmp_path / "run"
    argv = ["reproduce", "table3", "--preset", "smoke", "--out", str(out), "--data-dir", root,
            "--set", "vectors=glove", "--set", "vectors_file=glove.6B.50d.top100k.txt", "--set", "conv_acts=ReLU",
            "--set", "fc_acts=ReLU,AReLU", "--set", "folds=2", "--set", "dropout=0", *FAST]
    assert main(argv) == 0
    res = json.loads((out / "results.json").read_text())
    assert res["coverage"]["dim"] == 10 and res["coverage"]["known_types"] == 8
    a = json.loads((out / "folds" / "ReLU-ReLU__fold1.json").read_text())
    b = json.loads((out / "folds" / "ReLU-AReLU__fold1.json").read_text())
    assert a["n_test"] == b["n_test"] and a["majority_rate"] == b["majority_rate"]  # same split for every cell


@pytest.mark.parametrize("setup, message", [
    ("no-data", "rt-polarity.pos' not found; expected a plain-text file with one snippet per line"),
    ("no-vectors", "GoogleNews-vectors-negative300-bolukbasi.bin' not found; expected word vectors in word2vec binary"),
    ("glove-as-w2v", "is not in word2vec binary format (a header line 'COUNT DIM'"),
    ("no-root", "no data root: give --data-dir or set $ACTADAPT_DATA"),
    ("nan-vector", "GoogleNews-vectors-negative300-bolukbasi.bin': 1 vector(s) hold NaN, an infinity or a number "
                   "beyond float32's range (3.4e38), the first at vector 3 (word 'fine')"),
    ("random-bytes", "rt-polarity.pos' is not text: "),
    ("blank-lines", "rt-polarity.pos': 40 of its 40 entries are unusable (lines without a word after tokenisation "
                    "(blank?)), the first at line 1"),
    ("nearly-empty", "class 'positive' has only 2 example(s) in rt-polarity.pos, but 5-fold cross-validation needs"),
])
def test_bad_data_is_one_clear_line(tmp_path, capsys, monkeypatch, setup, message):
    root = _synthetic_root(tmp_path)
    vec = os.path.join(root, "word-vectors", "GoogleNews-vectors-negative300-bolukbasi.bin")
    pos = os.path.join(root, "movie-review", "rt-polarity.pos")
    if setup == "nan-vector":
        from gensim.models import KeyedVectors

        kv = KeyedVectors.load_word2vec_format(vec, binary=True)
        kv.vectors[2, 4] = np.nan
        kv.save_word2vec_format(vec, binary=True)
    elif setup == "random-bytes":  # binary noise without a NUL byte: decodes as Latin-1 all the same
        data = bytes(b for b in np.random.default_rng(0).integers(0, 256, 20000, dtype=np.uint8).tobytes() if b)
        open(pos, "wb").write(data)
    elif setup == "blank-lines":
        open(pos, "wb").write(b"\n" * 40)
    elif setup == "nearly-empty":
        open(pos, "wb").write(b"great film\nmoving plot\n")
    if setup == "no-data":
        os.remove(os.path.join(root, "movie-review", "rt-polarity.pos"))
    elif setup == "no-vectors":
        os.remove(vec)
    elif setup == "glove-as-w2v":
        os.replace(os.path.join(root, "word-vectors", "glove.6B.50d.top100k.txt"), vec)
    args = ["reproduce", "table3", "--preset", "smoke", "--out", str(tmp_path / "run"), *FAST]
    if setup == "no-root":
        monkeypatch.delenv("ACTADAPT_DATA", raising=False)
    else:
        args += ["--data-dir", root]
    code = main(args)
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("actadapt: error: ") and message in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_config_errors(tmp_path, capsys):
    for setting, message in [
        ("conv_acts=ReLU,Tanh", "'conv_acts': unknown value 'Tanh'; valid choices: ReLU, AReLU, AGumb, Sig, Swish"),
        ("select=best", "'select': unknown value 'best'; valid choices: best_dev, last"),
        ("dropout=1.5", "'dropout': expected a rate in [0, 1), got 1.5"),
        ("vectors=fasttext", "'vectors': unknown value 'fasttext'; valid choices: word2vec, glove"),
        ("vectors_std=-0.5", "'vectors_std': expected -1 (auto), 0 (as in the file) or a positive std, got -0.5"),
    ]:
        code = main(["reproduce", "table3", "--preset", "smoke", "--out", str(tmp_path / "r"), "--set", setting])
        err = capsys.readouterr().err
        assert code == 2 and message in err, err


def test_vectors_std_auto_rescales_only_the_google_news_subset():
    from actadapt.experiments.table3 import KIM_VECTORS_STD, Table3Config

    assert KIM_VECTORS_STD == pytest.approx(0.25 / 3**0.5, abs=1e-4)
    assert Table3Config().effective_vectors_std() == KIM_VECTORS_STD  # the unit-normalised subset
    assert Table3Config(vectors="glove").effective_vectors_std() == 0.0  # its own scale
    assert Table3Config(vectors_file="full.bin").effective_vectors_std() == 0.0
    assert Table3Config(vectors="glove", vectors_std=0.3).effective_vectors_std() == 0.3
    assert Table3Config(vectors_std=0.0).effective_vectors_std() == 0.0


# ------------------------------------------------------------------------------------------ real data
@pytest.mark.slow
def test_real_data_smoke(data_root, tmp_path):
    if not os.path.isdir(os.path.join(data_root, "movie-review")):
        pytest.skip("no movie-review/ in the data root")
    out = tmp_path / "run"
    assert main(["reproduce", "table3", "--preset", "smoke", "--out", str(out), "--data-dir", data_root,
                 "--set", "conv_acts=AGumb", "--set", "fc_acts=AGumb", "--set", "epochs=1", "--set", "backend=eager",
                 "--workers", "1"]) == 0
    res = json.loads((out / "results.json").read_text())
    assert res["data"]["documents"] == 300 and res["coverage"]["dim"] == 300
    assert 0.6 < res["coverage"]["token_coverage"] < 0.85
