"""Cross-validation folds: the one stratified splitter every table uses (scikit-learn's StratifiedKFold).

Folds are shuffled and fixed by a seed (see :mod:`.seeds`). Stratified ``k``-fold CV needs ``k`` examples of
every class; a data set short of that is a :class:`.config.DataError` naming the short class and where its
data came from (a nearly empty data file is the likely cause, not the config), unless the caller accepts
plain shuffled folds for it (Table 1's simulated teachers, which may label (almost) everything one class).
"""

from __future__ import annotations

from typing import List, Mapping, Optional, Sequence, Tuple, Union

from .config import ConfigError, check_folds_fit

__all__ = ["stratified_folds"]


def stratified_folds(labels: Sequence[int], folds: int, seed: int, *, classes: Optional[Sequence[str]] = None,
                     unit: str = "example(s)", source: Union[str, Mapping[str, str]] = "",
                     short_class: str = "error") -> List[Tuple["object", "object"]]:
    """``folds`` stratified, shuffled ``(train_idx, test_idx)`` pairs of numpy index arrays, fixed by ``seed``.

    Args:
        labels: class labels ``0 .. C-1``, one per example.
        folds: the number of folds, at least 2.
        seed: any integer; scikit-learn's ``random_state`` is ``seed mod 2**32``.
        classes: the class names, ``classes[c]`` naming label ``c`` (default: the labels as text), used in
            the error for a short class.
        unit: what an example is, for that error (``"session(s)"``).
        source: where the data came from, one description or one per class name, for that error.
        short_class: ``"error"`` (a class with fewer than ``folds`` examples is a :class:`.config.DataError`)
            or ``"plain"`` (plain shuffled ``KFold`` folds for such data). Default: ``"error"``
    """
    import numpy as np
    from sklearn.model_selection import KFold, StratifiedKFold

    if folds < 2:
        raise ConfigError(f"config key 'folds': got {folds}; expected at least 2")
    y = np.asarray(labels, dtype=np.int64)
    counts = np.bincount(y, minlength=len(classes) if classes else 2)
    names = list(classes) if classes else [str(c) for c in range(len(counts))]
    random_state = seed % (2**32)
    if short_class == "plain" and counts.min() < folds:  # (nearly) one class: stratification is impossible
        splitter = KFold(folds, shuffle=True, random_state=random_state)
    else:
        check_folds_fit({names[c]: int(n) for c, n in enumerate(counts)}, folds, unit, source)
        splitter = StratifiedKFold(folds, shuffle=True, random_state=random_state)
    return list(splitter.split(np.zeros(len(y)), y))
