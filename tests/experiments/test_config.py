"""Config resolution: presets, overrides, files, and errors that name the key and the valid choices."""

import pytest

from actadapt.experiments.config import ConfigError, config_hash, load_config_file, parse_overrides, resolve_config
from actadapt.experiments.registry import get_experiment, get_preset
from actadapt.experiments.table1 import PRESETS, Table1Config


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
    with pytest.raises(ConfigError, match=r"unknown preset 'fast' for table1; valid presets: smoke, quick, paper"):
        get_preset(get_experiment("table1"), "fast")


def test_hash_leaves_out_default_values():
    from actadapt.experiments.runner import hashed_config

    cfg = resolve_config(Table1Config, {"epochs": 3})
    assert hashed_config(cfg) == {"epochs": [3]}  # a key added later at its default keeps old hashes valid
    assert config_hash(hashed_config(cfg)) != config_hash(hashed_config(resolve_config(Table1Config, {"epochs": 4})))
