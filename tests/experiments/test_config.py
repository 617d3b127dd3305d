"""Config resolution: presets, overrides, files, and errors that name the key and the valid choices."""

import os

import pytest

from actadapt.experiments.config import (
    ConfigError,
    config_hash,
    load_config_file,
    parse_overrides,
    resolve_config,
)
from actadapt.experiments.registry import get_experiment, get_preset
from actadapt.experiments.tables.table1 import PRESETS, Table1Config


def test_defaults_are_the_papers():
    cfg = resolve_config(Table1Config)
    assert (cfg.n_samples, cfg.epochs, cfg.batch_size, cfg.lr, cfg.l1, cfg.l2, cfg.folds) == (100_000, [2000], 20, 0.01, 0.001, 0.001, 5)
    assert cfg.depths == [1, 8] and cfg.teachers == ["Sig", "ReLU"] and cfg.students == ["Sig", "AGumb", "ReLU", "AReLU"]


def test_layers_override_in_order():
    cfg = resolve_config(Table1Config, PRESETS["quick"], {"epochs": "7"}, {"students": "Sig,AGumb", "penalize_alpha": "false"})
    assert cfg.epochs == [7] and cfg.epochs_for(8) == 7 and cfg.n_samples == PRESETS["quick"]["n_samples"]
    assert cfg.students == ["Sig", "AGumb"] and cfg.penalize_alpha is False


def test_typo_names_the_key_and_the_valid_ones():
    with pytest.raises(ConfigError, match=r"unknown config key 'epcohs'; valid keys: .*epochs"):
        resolve_config(Table1Config, {"epcohs": 3})


@pytest.mark.parametrize("key, value, match", [
    ("n_samples", -5, r"'n_samples': expected a value >= 10, got -5"),
    ("epochs", "ten", r"'epochs': expected an integer, got 'ten'"),
    ("students", "Sig,Tanh", r"'students': unknown value 'Tanh'; valid choices: Sig, AGumb, ReLU, AReLU, Swish"),
    ("label_rule", "coin", r"valid choices: sign, bernoulli, median"),
    ("lr", "fast", r"'lr': expected a number"),
    ("penalize_alpha", "maybe", r"expected true or false"),
    ("depths", "", r"'depths': expected at least one item"),
])
def test_bad_values(key, value, match):
    with pytest.raises(ConfigError, match=match):
        resolve_config(Table1Config, {key: value})


def test_cross_field_checks():
    with pytest.raises(ConfigError, match="n_samples"):
        resolve_config(Table1Config, {"n_samples": 12, "folds": 10})
    with pytest.raises(ConfigError, match=r"'epochs': expected one value or one per depth \(2\), got \[1, 2, 3\]"):
        resolve_config(Table1Config, {"epochs": "1,2,3"})
    cfg = resolve_config(Table1Config, {"epochs": "30,5", "depths": "1,8"})
    assert (cfg.epochs_for(1), cfg.epochs_for(8)) == (30, 5)


def test_hash_ignores_key_order_but_not_values():
    a = {"x": 1, "y": [1, 2]}
    assert config_hash(a) == config_hash({"y": [1, 2], "x": 1})
    assert config_hash(a) != config_hash({"x": 2, "y": [1, 2]})


def test_config_files(tmp_path):
    y = tmp_path / "c.yaml"
    y.write_text("epochs: 3\nstudents: [Sig, AReLU]\n")
    cfg = resolve_config(Table1Config, load_config_file(str(y)))
    assert cfg.epochs == [3] and cfg.students == ["Sig", "AReLU"]
    bad = tmp_path / "bad.yaml"
    bad.write_text("epohcs: 3\n")
    with pytest.raises(ConfigError, match="unknown config key 'epohcs'"):
        resolve_config(Table1Config, load_config_file(str(bad)))
    with pytest.raises(ConfigError, match="does not exist"):
        load_config_file(str(tmp_path / "missing.yaml"))
    j = tmp_path / "c.json"
    j.write_text("[1, 2]")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_config_file(str(j))


def test_overrides_and_registry_errors():
    assert parse_overrides(["a=1", " b = x,y "]) == {"a": "1", "b": "x,y"}
    with pytest.raises(ConfigError, match="key=value"):
        parse_overrides(["epochs"])
    with pytest.raises(ConfigError, match=r"unknown table 'table9'; valid tables: .*table1"):
        get_experiment("table9")
    with pytest.raises(ConfigError, match=r"unknown preset 'fast' for table1; valid presets: smoke, quick, study, paper"):
        get_preset(get_experiment("table1"), "fast")


def test_hash_leaves_out_default_values():
    from actadapt.experiments.runner import hashed_config

    cfg = resolve_config(Table1Config, {"epochs": 3})
    assert hashed_config(cfg) == {"epochs": [3]}  # a key added later at its default keeps old hashes valid
    assert config_hash(hashed_config(cfg)) != config_hash(hashed_config(resolve_config(Table1Config, {"epochs": 4})))


def test_keys_added_at_their_default_keep_an_old_run_folders_hash():
    # the resolved config of a Table 3 quick run made before fc_init and dropout_at existed, and its stored hash
    from actadapt.experiments.config import run_hash, saved_config_values
    from actadapt.experiments.tables.table3 import Table3Config

    old = {"seed": 0, "alpha_init": 1.0, "backend": "env", "threads": 1, "data_dir": "/work/shared/data",
           "conv_acts": ["ReLU", "AReLU", "AGumb"], "fc_acts": ["ReLU", "AReLU", "AGumb"], "dataset": "polarity-v1",
           "max_examples": 0, "max_len": 0, "vectors": "word2vec", "vectors_file": "", "vectors_format": "auto",
           "vectors_std": -1.0, "unknown_range": 0.0, "dev_fraction": 0.1, "static": True, "epochs": 3,
           "batch_size": 50, "optimizer": "adadelta", "lr": 1.0, "momentum": 0.0, "max_norm": 3.0, "dropout": 0.5,
           "widths": [3, 4, 5], "maps": 100, "hidden": 100, "bucket": True, "folds": 5, "select": "best_dev"}
    # read as a run folder's config.json is read: dropout_at, whose default changed since, takes its former default
    assert run_hash(resolve_config(Table3Config, saved_config_values(Table3Config, old))) == "c97e52968aa36eeb"
    assert run_hash(resolve_config(Table3Config, old, {"dropout_at": "linear"})) == "c97e52968aa36eeb"
    assert run_hash(resolve_config(Table3Config, old)) != "c97e52968aa36eeb"  # today's default: another run
    assert run_hash(resolve_config(Table3Config, saved_config_values(Table3Config, old), {"fc_init": "lecun"})) \
        != "c97e52968aa36eeb"
    # a saved value wins over the former default
    assert saved_config_values(Table3Config, {"dropout_at": "pooled"}) == {"dropout_at": "pooled"}


@pytest.mark.parametrize("table", ["table1", "table2", "table3", "table4"])
def test_backend_defaults_to_env_everywhere_and_old_auto_folders_keep_their_hash(table, monkeypatch):
    # Tables 1, 3 and 4 defaulted to backend=auto, which env is when $ACTADAPT_BACKEND is unset: a config.json
    # written then (backend "auto") hashes like today's default, so those run folders still report and resume
    from actadapt.experiments.config import run_hash

    cls = get_experiment(table).config_class
    assert resolve_config(cls).backend == "env"
    old = resolve_config(cls, {"backend": "auto"})
    assert (run_hash(old) == run_hash(resolve_config(cls))) is (table != "table2")  # table2 always defaulted to env
    assert run_hash(resolve_config(cls, {"backend": "eager"})) != run_hash(resolve_config(cls))


def test_env_backend_leaves_the_workers_backend_to_the_environment(monkeypatch):
    import actadapt
    from actadapt import _backend

    exp = get_experiment("table1")
    saved = _backend._state["backend"]
    try:
        for env, expected in ((None, "auto"), ("eager", "eager")):
            if env is None:
                monkeypatch.delenv("ACTADAPT_BACKEND", raising=False)
            else:
                monkeypatch.setenv("ACTADAPT_BACKEND", env)
            _backend._state["backend"] = None  # a fresh worker process
            exp.worker_setup(resolve_config(Table1Config))
            assert actadapt.get_backend() == expected
    finally:
        _backend._state["backend"] = saved


# ------------------------------------------------------------------------------------- values, not only types
@pytest.mark.parametrize("key, value", [
    ("lr", "nan"), ("lr", "inf"), ("lr", "-inf"), ("lr", "1e400"), ("lr", float("nan")), ("l1", float("inf")),
    ("alpha_init", "nan"), ("max_majority", "nan"), ("weight_spread", "Infinity"), ("epochs", "inf"),
])
def test_non_finite_values_are_refused(key, value):
    with pytest.raises(ConfigError, match=rf"config key '{key}': expected (a finite number|an integer), got "):
        resolve_config(Table1Config, {key: value})


def test_non_finite_values_in_config_files_are_refused(tmp_path):
    for name, text in (("a.yaml", "lr: .nan\n"), ("b.yaml", "l2: 1.0e+400\n"), ("c.json", '{"alpha_init": NaN}'),
                       ("d.json", '{"lr": 1e400}'), ("e.yaml", "epochs: [.inf]\n")):
        path = tmp_path / name
        path.write_text(text)
        with pytest.raises(ConfigError, match="expected (a finite number|an integer)"):
            resolve_config(Table1Config, load_config_file(str(path)))
    with pytest.raises(ConfigError, match=r"'lr': expected a finite number, got '1e400' \(too large for a float"):
        resolve_config(Table1Config, {"lr": "1e400"})
    # finite but beyond float32 arithmetic: the optimisers' first step would overflow with a traceback
    with pytest.raises(ConfigError, match=r"'l1': expected a number between -1e\+30 and 1e\+30 \(training runs in float32\), got"):
        resolve_config(Table1Config, {"l1": 1e35})
    assert resolve_config(Table1Config, {"lr": "1e30"}).lr == 1e30


def test_max_bound_of_an_option():
    import dataclasses

    from actadapt.experiments.config import option

    @dataclasses.dataclass
    class C:
        rate: float = option(0.5, min=0.0, max=1.0, help="a rate")

    assert resolve_config(C, {"rate": "1"}).rate == 1.0
    with pytest.raises(ConfigError, match=r"'rate': expected a value <= 1.0, got 1.5"):
        resolve_config(C, {"rate": 1.5})


# ------------------------------------------------------------------------------------- sizes against the machine
def _paper(table, data_dir=""):
    from actadapt.experiments.registry import get_experiment

    exp = get_experiment(table)
    extra = {"data_dir": data_dir} if exp.needs_data else {}
    return exp, resolve_config(exp.config_class, exp.presets["paper"], extra)


@pytest.mark.parametrize("table", ["table1", "table2", "table3", "table4"])
def test_paper_presets_fit_a_24_gib_machine(table):
    from actadapt.experiments.resources import plan_workers

    root = os.environ.get("ACTADAPT_DATA", "")
    exp, cfg = _paper(table, root)
    tasks = len(exp.tasks(cfg)) if table in ("table1", "table2") else 45  # tasks() of 3-4 reads the data
    available = int(22 * 2**30)  # what a 24 GiB machine has free
    assert plan_workers(exp, cfg, 2, tasks, memory=available, cpus=8) == 2
    assert plan_workers(exp, cfg, None, tasks, memory=available, cpus=8) >= 4


def test_too_many_workers_for_the_memory():
    from actadapt.experiments.resources import WORKER_BASE, plan_workers

    exp, cfg = _paper("table2")
    per = exp.memory_estimate(cfg).bytes
    memory = WORKER_BASE + 3 * (WORKER_BASE + per) + 1  # room for 3 workers
    notes = []
    assert plan_workers(exp, cfg, None, 9, log=notes.append, memory=memory, cpus=8) == 3  # auto: cut to what fits
    assert "using 3" in notes[0]
    with pytest.raises(ConfigError, match=r"not enough memory: .*8 worker\(s\).*at most 3 worker\(s\) fit: pass --workers 3"):
        plan_workers(exp, cfg, 8, 9, memory=memory, cpus=8)
    with pytest.raises(ConfigError, match=r"config key 'threads': 16 threads per worker asked, but this machine has 8"):
        plan_workers(exp, resolve_config(type(cfg), {"threads": 16}), 1, 9, memory=memory, cpus=8)


def test_absurd_sizes_fail_before_anything_is_written(tmp_path, capsys):
    from actadapt.cli import main

    for setting, message in [("n_samples=1000000000000", "not enough memory: 20 students (draws x folds x students) "
                                                          "on 1000000000000 examples"),
                             ("width=10000000", "width 10000000"),
                             ("threads=100000", "'threads': 100000 threads per worker asked")]:
        out = tmp_path / setting.split("=")[0]
        code = main(["reproduce", "table1", "--preset", "smoke", "--out", str(out), "--set", setting])
        err = capsys.readouterr().err
        assert code == 2 and message in err and err.count("\n") == 1 and "Traceback" not in err, err
        assert not out.exists()
    # checked before any data are read: Table 4's tasks() reads its input, which is not even looked at here
    code = main(["reproduce", "table4", "--preset", "smoke", "--out", str(tmp_path / "t4"), "--set",
                 f"input={tmp_path / 'missing.csv'}", "--set", "hidden=1000000000"])
    err = capsys.readouterr().err
    assert code == 2 and "not enough memory" in err and "hidden 1000000000" in err and not (tmp_path / "t4").exists()
    for setting in ("lr=nan", "alpha_init=inf", "max_majority=nan", "lr=1e400"):
        out = tmp_path / "finite"
        code = main(["reproduce", "table1", "--preset", "smoke", "--out", str(out), "--set", setting])
        err = capsys.readouterr().err
        assert code == 2 and "expected a finite number" in err and err.count("\n") == 1
        assert not out.exists()
