"""The one stratified fold splitter (src/actadapt/experiments/folds.py)."""

import numpy as np
import pytest

from actadapt.experiments.config import ConfigError, DataError
from actadapt.experiments.folds import stratified_folds


def test_folds_are_stratified_seeded_and_checked():
    labels = [0] * 50 + [1] * 30 + [2] * 20
    folds = stratified_folds(labels, 5, seed=3)
    assert len(folds) == 5
    for _, te in folds:
        assert sorted([labels[i] for i in te].count(c) for c in range(3)) == [4, 6, 10]
    assert [list(te) for _, te in folds] == [list(te) for _, te in stratified_folds(labels, 5, seed=3)]
    with pytest.raises(ConfigError, match=r"class '0' has only 2 session\(s\), but 5-fold cross-validation needs at least 5"):
        stratified_folds([0, 0, 1, 1, 1, 1, 1], 5, seed=0, unit="session(s)")
    # a class that (nearly) vanished in reading is named, with the data it came from, not blamed on the config
    with pytest.raises(DataError, match=r"^class 'spam' has only 0 session\(s\) in data/x\.csv, but 2-fold"):
        stratified_folds([0, 0, 0], 2, seed=0, classes=["benign", "spam"], unit="session(s)", source="data/x.csv")


def test_one_class_data_gets_plain_folds_only_when_asked():
    labels = [0] * 9 + [1]  # one class has fewer examples than folds
    with pytest.raises(DataError, match="class '1' has only 1 example"):
        stratified_folds(labels, 5, seed=1)
    folds = stratified_folds(labels, 5, seed=1, short_class="plain")
    assert sorted(int(i) for _, te in folds for i in te) == list(range(10))  # every example tested once
    assert all(len(te) == 2 for _, te in folds)


def test_the_seed_is_taken_mod_2_to_the_32():
    labels = np.arange(40) % 2
    a = stratified_folds(labels, 4, seed=7)
    b = stratified_folds(labels, 4, seed=7 + 2**32)
    assert all((x[1] == y[1]).all() for x, y in zip(a, b))
    with pytest.raises(ConfigError, match="expected at least 2"):
        stratified_folds(labels, 1, seed=0)


def test_stratified_folds_partition_balanced_and_seeded():
    y = np.array([0] * 50 + [1] * 30)
    folds = stratified_folds(y, 5, seed=7)
    tests = np.concatenate([te for _, te in folds])
    assert sorted(tests.tolist()) == list(range(80))
    for tr, te in folds:
        assert set(tr).isdisjoint(te)
        assert np.bincount(y[te]).tolist() == [10, 6]
    again = stratified_folds(y, 5, seed=7)
    assert all((a[1] == b[1]).all() for a, b in zip(folds, again))
    other = stratified_folds(y, 5, seed=8)
    assert any((a[1] != b[1]).any() for a, b in zip(folds, other))
    with pytest.raises(ValueError, match=r"class 'positive' has only 3 example\(s\), but 5-fold cross-validation "
                                         "needs at least 5 of every class"):
        stratified_folds([0] * 10 + [1] * 3, 5, 0, classes=("negative", "positive"))
