"""Table 3 (src/actadapt/experiments/tables/table3.py) on tiny synthetic data and the real data."""

import json
import os

import numpy as np
import pytest

from actadapt.cli import main

from .resume import resumed_equals_uninterrupted

FAST = ["--set", "backend=eager", "--set", "maps=4", "--set", "hidden=4", "--set", "epochs=2", "--workers", "1"]


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
        ("fc_init=he", "'fc_init': unknown value 'he'; valid choices: glorot, lecun, torch"),
        ("dropout_at=conv", "'dropout_at': unknown value 'conv'; valid choices: linear, pooled, output"),
    ]:
        code = main(["reproduce", "table3", "--preset", "smoke", "--out", str(tmp_path / "r"), "--set", setting])
        err = capsys.readouterr().err
        assert code == 2 and message in err, err


def test_vectors_std_auto_rescales_only_the_google_news_subset():
    from actadapt.experiments.data.wordvectors import KIM_VECTORS_STD
    from actadapt.experiments.tables.table3 import Table3Config

    assert KIM_VECTORS_STD == pytest.approx(0.25 / 3**0.5, abs=1e-4)
    assert Table3Config().effective_vectors_std() == KIM_VECTORS_STD  # the unit-normalised subset
    assert Table3Config(vectors="glove").effective_vectors_std() == 0.0  # its own scale
    assert Table3Config(vectors_file="full.bin").effective_vectors_std() == 0.0
    assert Table3Config(vectors="glove", vectors_std=0.3).effective_vectors_std() == 0.3
    assert Table3Config(vectors_std=0.0).effective_vectors_std() == 0.0


@pytest.mark.parametrize("fc_init, dropout_at, init_text, dropout_text", [
    ("lecun", "pooled", "N(0, 1/fan_in)", "on the pooled features only"),
    ("torch", "linear", "PyTorch's nn.Linear default", "before each linear layer"),
])
def test_readings_of_init_and_dropout_reach_the_model_and_run(tmp_path, fc_init, dropout_at, init_text, dropout_text):
    import torch

    from actadapt.experiments.config import resolve_config, run_hash
    from actadapt.experiments.tables.table3 import Table3, Table3Config

    cfg = resolve_config(Table3Config, {"fc_init": fc_init, "dropout_at": dropout_at})
    m = cfg.kim_model(torch.zeros(5, 4), "AGumb", "AReLU", 1.0)
    assert (m.fc_init, m.dropout_at) == (fc_init, dropout_at)
    assert isinstance(m.pooled_dropout, torch.nn.Dropout) is (dropout_at in ("pooled", "linear"))
    assert isinstance(m.output_dropout, torch.nn.Dropout) is (dropout_at in ("output", "linear"))
    choices = Table3().choices(cfg)
    assert init_text in choices["initialisation"] and dropout_text in choices["model"]
    # a non-default reading is a different run
    assert run_hash(cfg) != run_hash(resolve_config(Table3Config))
    out = tmp_path / "run"
    assert main(["reproduce", "table3", "--preset", "smoke", "--out", str(out), "--data-dir", _synthetic_root(tmp_path),
                 "--set", "conv_acts=AGumb", "--set", "fc_acts=AReLU", "--set", "folds=2", "--set", f"fc_init={fc_init}",
                 "--set", f"dropout_at={dropout_at}", *FAST]) == 0
    res = json.loads((out / "results.json").read_text())
    assert res["complete"] and all(0 <= c["mean"] <= 100 for c in res["cells"])
    assert json.loads((out / "config.json").read_text())["config"]["fc_init"] == fc_init
    assert init_text in (out / "report.md").read_text()


def test_dropout_defaults_to_the_penultimate_layer_and_old_folders_read_as_before(tmp_path, capsys):
    import torch

    from actadapt.experiments.config import config_to_dict, resolve_config, run_hash
    from actadapt.experiments.tables.table3 import Table3Config

    cfg = resolve_config(Table3Config)
    m = cfg.kim_model(torch.zeros(5, 4), "AGumb", "AReLU", 1.0)
    assert isinstance(m.output_dropout, torch.nn.Dropout) and isinstance(m.pooled_dropout, torch.nn.Identity)
    # today's default is a run of its own: it hashes apart from the former default (and the folders made with it)
    linear = resolve_config(Table3Config, {"dropout_at": "linear"})
    former = {k: v for k, v in config_to_dict(linear).items() if k not in ("dropout_at", "fc_init")}
    assert run_hash(cfg) != run_hash(linear) == run_hash(resolve_config(Table3Config, former, {"dropout_at": "linear"}))

    # a run folder written before dropout_at existed: its config.json has no such key
    root, out = _synthetic_root(tmp_path), tmp_path / "run"
    argv = ["reproduce", "table3", "--preset", "smoke", "--out", str(out), "--data-dir", root,
            "--set", "conv_acts=AGumb", "--set", "fc_acts=AReLU", "--set", "folds=2", *FAST]
    assert main(argv + ["--set", "dropout_at=linear"]) == 0
    meta = json.loads((out / "config.json").read_text())
    for key in ("dropout_at", "fc_init"):
        del meta["config"][key]
    (out / "config.json").write_text(json.dumps(meta))
    capsys.readouterr()
    # it reports as dropout before each linear layer, and resumes with nothing to train
    assert main(["report", str(out)]) == 0
    assert "before each linear layer" in (out / "report.md").read_text()
    assert main(argv + ["--set", "dropout_at=linear"]) == 0
    assert "2 of 2 tasks already done" in capsys.readouterr().out
    # today's default on that folder is another run: refused, naming the key, the folder untouched
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert main(argv) != 0
    assert "keys differ: dropout_at" in capsys.readouterr().err
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


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

def test_a_fold_resumes_from_its_checkpoint(tmp_path):
    from actadapt.experiments.config import resolve_config
    from actadapt.experiments.tables.table3 import PRESETS, Table3, Table3Config

    cfg = resolve_config(Table3Config, PRESETS["smoke"], {
        "data_dir": _synthetic_root(tmp_path), "epochs": 3, "maps": 4, "hidden": 4, "folds": 3, "max_examples": 0,
        "conv_acts": "AGumb", "fc_acts": "AReLU", "backend": "eager"})
    resumed_equals_uninterrupted(Table3(), cfg, tmp_path)  # dropout and the batch order continue exactly
