"""Seeds derived from names: every seed of every table comes from :func:`stable_seed`.

A seed is a hash of the config's base seed and of names and numbers (``stable_seed(0, "init", fold)``), not
of a position in a list, so a cell's numbers do not change when other rows, columns or folds are added, and
do not depend on Python's hash randomisation.
"""

from __future__ import annotations

import hashlib

__all__ = ["stable_seed"]


def stable_seed(*parts) -> int:
    """A 63-bit seed from ``parts`` (names and numbers), joined by ``/`` and hashed with SHA-256.

    Example::

        >>> stable_seed(0, "init", 3) == stable_seed("0", "init", "3")  # parts are joined as text
        True
        >>> 0 <= stable_seed(0, "folds") < 2**63
        True
    """
    digest = hashlib.sha256("/".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1
