r"""Pre-trained word vectors for Table 3: reading them with gensim, the embedding matrix, coverage.

Formats (read by gensim's ``KeyedVectors.load_word2vec_format``, never by hand):

* ``word2vec-binary``: a header line ``COUNT DIM``, then per word the word, a space and ``DIM`` float32
  values (the Google News vectors; default file ``GoogleNews-vectors-negative300-bolukbasi.bin``).
* ``word2vec-text``: the same header, then one line per word: the word and ``DIM`` numbers.
* ``glove``: one line per word, the word and its numbers, no header (``glove.6B.50d.top100k.txt.gz``).
  Plain or gzip-compressed.

Words of the data without a vector get random vectors as in Kim (2014): each component uniform on
:math:`[-a, a]` with :math:`a = \sqrt{3 s^2}`, :math:`s^2` the variance of the components of the known
vectors, so random and pre-trained vectors have the same variance (Kim's code fixes :math:`a = 0.25`, which
matches the full Google News file; the unit-normalised subset here has :math:`a \approx 0.1`). Row 0 of the
matrix is the zero padding vector.

The known vectors can first be rescaled to a given per-component standard deviation (``target_std``). Table 3
rescales to Kim's :math:`0.25/\sqrt{3} = 0.144`, the scale of the full Google News vectors the paper used: the
unit-normalised subset (std 0.058) shrinks every pre-activation 2.5-fold, and the adaptive ReLU, which is
:math:`\approx \alpha x^2` near 0, then hardly learns in the first epochs.
"""

from __future__ import annotations

import gzip
import math
import os
import warnings
from typing import Dict, List, Tuple

from .moviereview import DataError

__all__ = [
    "KIM_VECTORS_STD",
    "describe_coverage",
    "vector_choices",
    "reading_memory",
    "VECTOR_FORMATS",
    "DEFAULT_VECTORS",
    "vectors_path",
    "detect_format",
    "load_vectors",
    "embedding_matrix",
    "load_embeddings",
]

# Kim's unknown-word range a = 0.25 was chosen to match the variance of the (full) Google News vectors:
# a per-component standard deviation of a / sqrt(3).
KIM_VECTORS_STD = round(0.25 / 3 ** 0.5, 4)
VECTOR_FORMATS = ("auto", "word2vec-binary", "word2vec-text", "glove")
# name -> (file under <root>/word-vectors/, format)
DEFAULT_VECTORS = {
    "word2vec": ("GoogleNews-vectors-negative300-bolukbasi.bin", "word2vec-binary"),
    "glove": ("glove.6B.50d.top100k.txt.gz", "glove"),
}
_EXPECT = {
    "word2vec-binary": "word2vec binary format (a header line 'COUNT DIM', then per word: the word, a space, "
    "DIM float32 values)",
    "word2vec-text": "word2vec text format (a header line 'COUNT DIM', then one line per word: the word and DIM numbers)",
    "glove": "GloVe text format (one line per word: the word and its numbers, no header; plain or .gz)",
}


def vectors_path(root: str, vectors: str, vectors_file: str = "") -> Tuple[str, str]:
    """``(path, format)`` of the named vectors (``word2vec``/``glove``) or of ``vectors_file`` (absolute, or
    relative to ``<root>/word-vectors/``); the format is ``auto`` for a file given explicitly."""
    if vectors_file:
        path = vectors_file if os.path.isabs(vectors_file) else os.path.join(root, "word-vectors", vectors_file)
        return path, "auto"
    if vectors not in DEFAULT_VECTORS:
        raise DataError(f"unknown word vectors {vectors!r}; valid: {', '.join(DEFAULT_VECTORS)}")
    name, fmt = DEFAULT_VECTORS[vectors]
    return os.path.join(root, "word-vectors", name), fmt


def reading_memory(root: str, vectors: str, vectors_file: str = "") -> int:
    """Bytes gensim holds while it reads the vectors file (2x its size, 8x for gzip text); 0 if it is missing
    (the loader then says so with one line)."""
    path, _ = vectors_path(root or ".", vectors, vectors_file)
    try:
        with open(path, "rb") as fh:
            return os.path.getsize(path) * (8 if fh.read(2) == b"\x1f\x8b" else 2)
    except OSError:
        return 0


def _open_text(path: str):
    with open(path, "rb") as fh:
        gz = fh.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rb") if gz else open(path, "rb")


def _first_line(path: str, limit: int = 1 << 16) -> bytes:
    try:
        with _open_text(path) as fh:
            return fh.readline(limit)
    except (OSError, EOFError) as err:  # e.g. a truncated gzip
        raise DataError(f"word vectors file {path!r} cannot be read ({err})") from None


def _is_header(line: bytes) -> bool:
    parts = line.split()
    return len(parts) == 2 and all(p.isdigit() for p in parts)


def detect_format(path: str) -> str:
    """Guess the format of ``path`` from its first line: a ``COUNT DIM`` header means word2vec (binary if
    the file name ends in ``.bin``), a word followed by numbers means GloVe."""
    line = _first_line(path)
    if _is_header(line):
        return "word2vec-binary" if path.endswith(".bin") else "word2vec-text"
    parts = line.split()
    if len(parts) >= 2:
        try:
            [float(p) for p in parts[1:]]
            return "glove"
        except ValueError:
            pass
    raise DataError(
        f"word vectors file {path!r} is in no known format; expected {_EXPECT['word2vec-binary']}, "
        f"{_EXPECT['word2vec-text']}, or {_EXPECT['glove']}"
    )


def _check_format(path: str, fmt: str) -> None:
    """Fail early, naming the expected format, when the first line cannot start a file of ``fmt``."""
    line = _first_line(path)
    wrong = DataError(f"word vectors file {path!r} is not in {_EXPECT[fmt]}")
    if fmt in ("word2vec-binary", "word2vec-text"):
        if not _is_header(line):
            raise wrong
    else:  # glove: a word, then numbers
        parts = line.split()
        if _is_header(line):
            raise DataError(f"word vectors file {path!r} starts with a 'COUNT DIM' header, so it is word2vec, "
                            f"not {_EXPECT['glove']}; set vectors_format=word2vec-text (or -binary)")
        try:
            if len(parts) < 2:
                raise ValueError
            [float(p) for p in parts[1:]]
        except ValueError:
            raise wrong from None


def load_vectors(path: str, fmt: str = "auto"):
    """A gensim ``KeyedVectors`` read from ``path`` in ``fmt`` (one of :data:`VECTOR_FORMATS`).

    Any failure (missing file, wrong or damaged format) raises :class:`DataError` naming the file and the
    format expected.
    """
    if fmt not in VECTOR_FORMATS:
        raise DataError(f"unknown word vectors format {fmt!r}; valid formats: {', '.join(VECTOR_FORMATS)}")
    if not os.path.isfile(path):
        expected = "word vectors in " + (_EXPECT[fmt] if fmt != "auto" else "word2vec binary/text or GloVe text format")
        raise DataError(f"word vectors file {path!r} not found; expected {expected} "
                        "(give the data root with --data-dir or $ACTADAPT_DATA)")
    if fmt == "auto":
        fmt = detect_format(path)
    _check_format(path, fmt)
    try:
        from gensim.models import KeyedVectors
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError("reading word vectors needs gensim: pip install 'actadapt[experiments]'") from None
    try:
        with warnings.catch_warnings():  # "overflow encountered in cast" beyond float32: checked below
            warnings.simplefilter("ignore", RuntimeWarning)
            kv = KeyedVectors.load_word2vec_format(
                path, binary=fmt == "word2vec-binary", no_header=fmt == "glove", unicode_errors="replace"
            )
    except Exception as err:  # gensim raises ValueError, EOFError, UnicodeDecodeError, ... on bad files
        msg = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise DataError(f"word vectors file {path!r} could not be read as {_EXPECT[fmt]}: {msg}") from None
    if len(kv) == 0 or kv.vector_size < 1:
        raise DataError(f"word vectors file {path!r} holds no vectors; expected {_EXPECT[fmt]}")
    _check_finite(kv, path, fmt)
    return kv


def _check_finite(kv, path: str, fmt: str) -> None:
    """A vector holding NaN, an infinity, or a number beyond float32's range (read as infinity) is a
    :class:`DataError` naming the file, the first such line (or vector) and its word."""
    import numpy as np

    bad = np.flatnonzero(~np.isfinite(kv.vectors).all(axis=1))
    if not len(bad):
        return
    i = int(bad[0])
    header = 1 if fmt == "word2vec-text" else 0
    where = f"vector {i + 1}" if fmt == "word2vec-binary" else f"line {i + 1 + header}"
    raise DataError(f"word vectors file {path!r}: {len(bad)} vector(s) hold NaN, an infinity or a number "
                    f"beyond float32's range (3.4e38), the first at {where} (word {kv.index_to_key[i]!r}); "
                    "expected finite numbers (a damaged file?)")


def embedding_matrix(
    index: Dict[str, int],
    counts: Dict[str, int],
    kv,
    seed: int,
    unknown_range: float = 0.0,
    source: str = "",
    target_std: float = 0.0,
) -> Tuple["object", Dict]:
    r"""The ``(len(index) + 1, dim)`` float32 matrix for a vocabulary, and its coverage.

    Row ``index[w]`` is ``kv[w]`` when ``w`` has a vector, else uniform on :math:`[-a, a]` (drawn in index
    order from ``seed``); row 0 is zeros (padding). ``unknown_range`` :math:`= a`; 0 (default) matches the
    variance of the known vectors (Kim): :math:`a = \sqrt{3\,\mathrm{Var}}` over all components of the
    vectors of the known words. ``target_std`` > 0 first scales the known vectors by one factor so that the
    standard deviation of their components (about 0, as for word vectors) is ``target_std``.

    Returns ``(matrix, coverage)``, coverage a dict: ``dim``, ``types``, ``known_types``, ``type_coverage``,
    ``tokens``, ``known_tokens``, ``token_coverage`` (fractions), ``file_std`` (before rescaling),
    ``rescale`` (the factor, 1 if none), ``known_variance`` (after), ``unknown_range``.
    """
    import numpy as np

    dim = int(kv.vector_size)
    mat = np.zeros((len(index) + 1, dim), dtype=np.float32)
    known = np.zeros(len(index) + 1, dtype=bool)
    for w, i in index.items():
        if w in kv.key_to_index:
            mat[i] = kv[w]
            known[i] = True
    n_known = int(known.sum())
    if n_known == 0:
        raise DataError(
            f"word vectors file {source!r}: none of the data's {len(index)} word types has a vector "
            "(wrong vectors file, or vectors of another language/casing?)"
        )
    var = float(mat[known].astype(np.float64).var())
    file_std, rescale = math.sqrt(var), 1.0
    if target_std > 0 and var > 0:
        rescale = target_std / file_std
        mat[known] *= np.float32(rescale)
        var = float(mat[known].astype(np.float64).var())
    a = float(unknown_range) if unknown_range > 0 else math.sqrt(3.0 * var)
    unknown = np.flatnonzero(~known)[1:]  # row 0 (padding) stays zero
    rng = np.random.default_rng(seed)
    mat[unknown] = rng.uniform(-a, a, size=(len(unknown), dim)).astype(np.float32)
    tokens = sum(counts.values())
    known_tokens = sum(c for w, c in counts.items() if known[index[w]])
    coverage = {
        "vectors": source,
        "dim": dim,
        "vectors_in_file": int(len(kv)),
        "types": len(index),
        "known_types": n_known,
        "type_coverage": n_known / max(len(index), 1),
        "tokens": int(tokens),
        "known_tokens": int(known_tokens),
        "token_coverage": known_tokens / max(tokens, 1),
        "file_std": file_std,
        "rescale": rescale,
        "known_variance": var,
        "unknown_range": a,
    }
    return mat, coverage


def load_embeddings(root: str, index: Dict[str, int], counts: Dict[str, int], vectors: str = "word2vec",
                    vectors_file: str = "", vectors_format: str = "auto", seed: int = 0,
                    unknown_range: float = 0.0, target_std: float = 0.0) -> Tuple["object", Dict]:
    """:func:`embedding_matrix` of the vectors named ``vectors`` (or ``vectors_file``) under ``root``."""
    path, fmt = vectors_path(root, vectors, vectors_file)
    if vectors_format != "auto":
        fmt = vectors_format
    kv = load_vectors(path, fmt)
    return embedding_matrix(index, counts, kv, seed, unknown_range, source=path, target_std=target_std)


def describe_coverage(cov: Dict) -> List[str]:
    """Two lines on the word vectors and their coverage of a vocabulary (:func:`embedding_matrix`'s ``coverage``)."""
    from ..report import fmt_num

    if not cov:
        return ["vectors: n/a"]
    return [f"vectors: `{os.path.basename(cov.get('vectors', '') or '')}`, {cov.get('dim', 'n/a')}-d, "
            f"{cov.get('vectors_in_file', 'n/a')} words in the file",
            f"coverage: {cov.get('known_types', 'n/a')} of {cov.get('types', 'n/a')} word types "
            f"(**{fmt_num(100 * cov['type_coverage'])}%**) and {cov.get('known_tokens', 'n/a')} of "
            f"{cov.get('tokens', 'n/a')} tokens (**{fmt_num(100 * cov['token_coverage'])}%**) have a pre-trained "
            f"vector; the others get random vectors, uniform on [-{fmt_num(cov.get('unknown_range'), 3)}, "
            f"{fmt_num(cov.get('unknown_range'), 3)}] (known vectors' component variance "
            f"{fmt_num(cov.get('known_variance'), 5)}; the file's component std {fmt_num(cov.get('file_std'), 4)}, "
            f"rescaled x{fmt_num(cov.get('rescale'), 3)})"]


def vector_choices(vectors: str, vectors_file: str, static: bool, std: float, unknown_range: float) -> Dict[str, str]:
    """What the word vectors are where the paper is silent (a report's choices section): ``vectors`` of
    :data:`DEFAULT_VECTORS` (or ``vectors_file``), frozen or not, rescaled to component std ``std`` (0: not),
    unknown words uniform on [-``unknown_range``, ``unknown_range``] (0: Kim's rule)."""
    return {
        "word vectors": {"word2vec": "Google News word2vec 300-d, the Bolukbasi et al. subset (26,423 words, "
                                     "unit-normalised; the paper used the full 3M-word file)",
                         "glove": "GloVe 6B 50-d, the 100,000 most frequent words"}[vectors]
        + (f" (file {vectors_file})" if vectors_file else "")
        + ("; frozen (CNN-static)" if static else "; fine-tuned (CNN-non-static)")
        + (f"; rescaled to component std {std:g}" + (
            " (Kim's 0.25/sqrt(3), the full Google News vectors' scale; at the subset's unit norm every "
            "pre-activation is 2.5x smaller and the adaptive ReLU, ~alpha x^2 near 0, hardly learns in the first "
            "epochs)" if std == KIM_VECTORS_STD else "") if std else "; at the file's own scale"),
        "unknown words": "uniform on [-a, a], a = sqrt(3 x variance of the known vectors' components) (Kim's rule"
                         "; his code fixes a = 0.25)" if not unknown_range
        else f"uniform on [-{unknown_range:g}, {unknown_range:g}]",
    }
