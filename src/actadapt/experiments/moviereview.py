r"""The movie-review data of Table 3 (PAPER.md §2.3): loaders, Kim-style tokenisation, vocabulary, folds.

Two data sets, read from ``<data root>/movie-review/``:

* ``polarity-v1`` (default): sentence polarity data v1.0 (Pang & Lee 2005), Kim's (2014) "MR":
  ``rt-polarity.pos`` and ``rt-polarity.neg``, 5331 snippets each, one per line, Latin-1. The text holds
  0x85 bytes (Windows-1252's ellipsis, Latin-1's NEL control character), which ``str.splitlines`` takes for
  line breaks: the files are split on ``b"\n"`` only, then decoded.
* ``polarity-v2``: polarity data v2.0 (Pang & Lee 2004), 1000 positive and 1000 negative full reviews, the
  set the paper's text names, as the NLTK ``movie_reviews`` zip (``movie_reviews/pos/*.txt``,
  ``movie_reviews/neg/*.txt``).

Tokenisation follows Kim's ``clean_str`` (his ``process_data.py``), re-implemented here: every character
other than ASCII letters, digits and ``( ) , ! ? ' `` ` is replaced by a space (so accented letters and the
0x85 byte split words); the clitics ``'s 've n't 're 'd 'll`` are split off; ``, ! ( ) ?`` become tokens of
their own; the text is lower-cased and split on white space. One deliberate difference: Kim's replacement
strings ``" \( "``, ``" \) "`` and ``" \? "`` leave a backslash in the token (``\(``, ``\?``), an artefact of
Python's ``re.sub``; here the tokens are ``(``, ``)`` and ``?``. Neither spelling has a word vector, so this
changes only the tokens' names.
"""

from __future__ import annotations

import os
import re
import zipfile
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

from .config import DataError, check_folds_fit, check_usable_share, read_plain_bytes

__all__ = [
    "DataError",
    "DATASETS",
    "TextDataset",
    "clean_str",
    "tokenize",
    "read_lines",
    "load_polarity_v1",
    "load_polarity_v2",
    "load_movie_reviews",
    "build_vocab",
    "encode",
    "stratified_folds",
]

DATASETS = ("polarity-v1", "polarity-v2")
MAX_EMPTY_SHARE = 0.1  # documents with no word after tokenisation; the real data sets hold none
V1_FILES = {1: "rt-polarity.pos", 0: "rt-polarity.neg"}
V2_FILE = "movie_reviews.zip"


# ------------------------------------------------------------------------------------------ tokeniser
_NOT_KEPT = re.compile(r"[^A-Za-z0-9(),!?'`]")
_CLITICS = re.compile(r"('s|'ve|n't|'re|'d|'ll)")
_PUNCT = re.compile(r"([,!()?])")
_SPACES = re.compile(r"\s{2,}")


def clean_str(text: str, lower: bool = True) -> str:
    """Kim's (2014) cleaning of one sentence; tokens separated by single spaces (see the module notes).

    Example::

        >>> clean_str("It's not (quite) a \\x85 masterpiece, isn't it?")
        "it 's not ( quite ) a masterpiece , is n't it ?"
    """
    text = _NOT_KEPT.sub(" ", text)
    text = _CLITICS.sub(r" \1", text)  # "isn't" -> "is n't", "it's" -> "it 's"
    text = _PUNCT.sub(r" \1 ", text)
    text = _SPACES.sub(" ", text).strip()
    return text.lower() if lower else text


def tokenize(text: str, lower: bool = True) -> List[str]:
    """The tokens of ``text`` after :func:`clean_str`."""
    return clean_str(text, lower).split()


# ------------------------------------------------------------------------------------------ loaders
@dataclass
class TextDataset:
    """Tokenised documents with binary labels (1 positive, 0 negative)."""

    name: str
    docs: List[List[str]]
    labels: List[int]
    sources: List[str] = field(default_factory=list)  # the files read
    class_files: Dict[int, str] = field(default_factory=dict)  # label -> the file its documents came from

    def __len__(self) -> int:
        return len(self.docs)

    def counts(self) -> Dict[int, int]:
        return {c: sum(1 for y in self.labels if y == c) for c in (0, 1)}


def _missing(path: str, what: str) -> DataError:
    return DataError(f"data file {path!r} not found; expected {what} (give the data root with --data-dir or $ACTADAPT_DATA)")


def read_lines(path: str, encoding: str = "latin-1") -> List[str]:
    r"""The lines of a text file split on ``b"\n"`` only (a final empty line dropped), then decoded.

    ``str.splitlines`` would also break at ``\x85``, ``\x0b``, ``\x0c``, ``\x1c``-``\x1e``, ``\u2028``...,
    which occur inside the snippets of sentence polarity v1.0. A trailing ``\r`` is removed.
    """
    what = "a plain-text file with one snippet per line (Latin-1)"
    if not os.path.isfile(path):
        raise _missing(path, what)
    raw = read_plain_bytes(path, what)
    lines = raw.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    if not lines:
        raise DataError(f"data file {path!r} is empty; expected {what}")
    return [line.rstrip(b"\r").decode(encoding) for line in lines]


def load_polarity_v1(root: str) -> TextDataset:
    """Sentence polarity v1.0 from ``<root>/movie-review/rt-polarity.{pos,neg}`` (10,662 snippets)."""
    folder = os.path.join(root, "movie-review")
    docs: List[List[str]] = []
    labels: List[int] = []
    sources = []
    for label in (1, 0):
        path = os.path.join(folder, V1_FILES[label])
        mine = [tokenize(line) for line in read_lines(path)]
        _check_empty(path, mine, "lines", lambda i: f"line {i + 1}")
        docs += mine
        labels += [label] * len(mine)
        sources.append(path)
    return TextDataset("polarity-v1", docs, labels, sources, {1: sources[0], 0: sources[1]})


def _check_empty(path: str, docs: List[List[str]], unit: str, where) -> None:
    """More than :data:`MAX_EMPTY_SHARE` of ``docs`` without a word: a :class:`DataError` naming the file."""
    empty = [i for i, d in enumerate(docs) if not d]
    if empty:
        check_usable_share(path, len(empty), len(docs), f"{unit} without a word after tokenisation (blank?)",
                           MAX_EMPTY_SHARE, where(empty[0]))


def load_polarity_v2(root: str) -> TextDataset:
    """Polarity v2.0 from ``<root>/movie-review/movie_reviews.zip`` (2,000 reviews, files sorted by name)."""
    path = os.path.join(root, "movie-review", V2_FILE)
    what = "a zip of movie_reviews/pos/*.txt and movie_reviews/neg/*.txt (polarity data v2.0, NLTK layout)"
    if not os.path.isfile(path):
        raise _missing(path, what)
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as err:
        raise DataError(f"data file {path!r} is not a readable zip ({err}); expected {what}") from None
    docs: List[List[str]] = []
    labels: List[int] = []
    with zf:
        names = sorted(n for n in zf.namelist() if n.endswith(".txt"))
        by_label = {1: [n for n in names if "/pos/" in f"/{n}"], 0: [n for n in names if "/neg/" in f"/{n}"]}
        if not by_label[0] or not by_label[1]:
            raise DataError(f"data file {path!r} has no pos/*.txt or no neg/*.txt members; expected {what}")
        for label in (1, 0):
            mine = [tokenize(zf.read(name).decode("latin-1").replace("\n", " "))  # ASCII; Latin-1 never fails
                    for name in by_label[label]]
            _check_empty(path, mine, "reviews", lambda i: f"member {by_label[label][i]!r}")
            docs += mine
            labels += [label] * len(mine)
    return TextDataset("polarity-v2", docs, labels, [path], {1: path, 0: path})


def load_movie_reviews(root: str, dataset: str = "polarity-v1") -> TextDataset:
    """One of :data:`DATASETS` from the data root ``root`` (laid out like ``shared/data``)."""
    if not root:
        raise DataError("no data root: give --data-dir or set $ACTADAPT_DATA to the folder holding movie-review/")
    if not os.path.isdir(root):
        raise DataError(f"data root {root!r} is not a folder; expected the folder holding movie-review/ and word-vectors/")
    if dataset == "polarity-v1":
        return load_polarity_v1(root)
    if dataset == "polarity-v2":
        return load_polarity_v2(root)
    raise DataError(f"unknown movie-review data set {dataset!r}; valid data sets: {', '.join(DATASETS)}")


# ---------------------------------------------------------------------------------- vocabulary, folds
def build_vocab(docs: Sequence[Sequence[str]]) -> Tuple[Dict[str, int], Dict[str, int]]:
    """``(index, counts)``: every word type -> an index from 1 (0 is padding), in order of first
    appearance, and each type's token count. As Kim, the vocabulary covers the whole data set (min_df 1)."""
    index: Dict[str, int] = {}
    counts: Dict[str, int] = {}
    for doc in docs:
        for w in doc:
            if w not in index:
                index[w] = len(index) + 1
                counts[w] = 0
            counts[w] += 1
    return index, counts


def encode(docs: Sequence[Sequence[str]], index: Dict[str, int], max_len: int = 0) -> List[List[int]]:
    """Each document as a list of word indices (unknown words dropped), cut to ``max_len`` if > 0."""
    out = []
    for doc in docs:
        ids = [index[w] for w in doc if w in index]
        out.append(ids[:max_len] if max_len > 0 else ids)
    return out


def stratified_folds(labels: Sequence[int], folds: int, seed: int,
                     class_files: Optional[Dict[int, str]] = None) -> List[Tuple["object", "object"]]:
    """``folds`` stratified, shuffled ``(train_idx, test_idx)`` pairs (numpy arrays), fixed by ``seed``.

    A class with fewer than ``folds`` examples is a :class:`DataError` naming it and its file
    (``class_files``: label -> path)."""
    import numpy as np
    from sklearn.model_selection import StratifiedKFold

    y = np.asarray(labels)
    counts = np.bincount(y, minlength=2)
    names = {c: ("negative", "positive")[c] if c < 2 else str(c) for c in range(len(counts))}
    where = {names[c]: os.path.basename(p) for c, p in (class_files or {}).items() if c in names}
    check_folds_fit({names[c]: int(n) for c, n in enumerate(counts)}, folds, "example(s)", where)
    splitter = StratifiedKFold(folds, shuffle=True, random_state=seed % (2**32))
    return list(splitter.split(np.zeros(len(y)), y))


def stratified_subset(labels: Sequence[int], n: int, seed: int) -> Optional["object"]:
    """Sorted indices of a stratified random subset of ``n`` examples (``None`` if ``n`` covers all)."""
    import numpy as np
    from sklearn.model_selection import train_test_split

    y = np.asarray(labels)
    if n <= 0 or n >= len(y):
        return None
    idx, _ = train_test_split(np.arange(len(y)), train_size=n, stratify=y, random_state=seed % (2**32))
    return np.sort(idx)
