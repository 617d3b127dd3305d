r"""The movie-review data of Table 3 (PAPER.md §2.3): loaders, Kim-style tokenisation, vocabulary, and
:func:`prepare_reviews`, which makes of them (and the word vectors) what Table 3 trains on.

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

import functools
import os
import re
import zipfile
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

from ..config import ConfigError, DataError, check_usable_share, option, read_plain_bytes

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
    "stratified_subset",
    "prepare_reviews",
    "describe_data",
    "ReviewKeys",
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


# ---------------------------------------------------------------------------------- vocabulary, subsets
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


def stratified_subset(labels: Sequence[int], n: int, seed: int) -> Optional["object"]:
    """Sorted indices of a stratified random subset of ``n`` examples (``None`` if ``n`` covers all)."""
    import numpy as np
    from sklearn.model_selection import train_test_split

    y = np.asarray(labels)
    if n <= 0 or n >= len(y):
        return None
    idx, _ = train_test_split(np.arange(len(y)), train_size=n, stratify=y, random_state=seed % (2**32))
    return np.sort(idx)


# ---------------------------------------------------------------------------------- Table 3's data
@functools.lru_cache(maxsize=2)
def prepare_reviews(root: str, dataset: str, max_examples: int, max_len: int, vectors: str, vectors_file: str,
                    vectors_format: str, unknown_range: float, vectors_std: float, folds: int, dev_fraction: float,
                    seed: int) -> Dict:
    """Everything Table 3 trains on, kept per worker process: the tokenised documents (a stratified subset of
    ``max_examples``, cut to ``max_len`` tokens), the vocabulary's embedding matrix and its coverage
    (:func:`.wordvectors.load_embeddings`), and the stratified folds, each with a stratified ``dev_fraction``
    of its training part held out (Kim). Every random choice derives from ``seed`` (:mod:`..seeds`).

    Returns ``{"seqs", "labels", "matrix", "coverage", "splits", "data"}``: ``splits`` holds one sorted
    ``(train_idx, dev_idx, test_idx)`` per fold; ``data`` describes the data set (:func:`describe_data`).
    """
    import numpy as np
    from sklearn.model_selection import train_test_split

    from ..folds import stratified_folds
    from ..seeds import stable_seed
    from .wordvectors import load_embeddings

    data = load_movie_reviews(root, dataset)
    docs, labels = data.docs, data.labels
    sub = stratified_subset(labels, max_examples, stable_seed(seed, "subset"))
    if sub is not None:
        docs, labels = [docs[i] for i in sub], [labels[i] for i in sub]
    index, counts = build_vocab(docs)
    matrix, coverage = load_embeddings(root, index, counts, vectors, vectors_file, vectors_format,
                                       seed=stable_seed(seed, "unknown-words") % (2**32), unknown_range=unknown_range,
                                       target_std=vectors_std)
    seqs = encode(docs, index, max_len)
    lengths = np.array([len(s) for s in seqs])
    y = np.asarray(labels, dtype=np.int64)
    where = {("negative", "positive")[c]: os.path.basename(p) for c, p in data.class_files.items() if c < 2}
    splits = []
    for k, (tr, te) in enumerate(stratified_folds(labels, folds, stable_seed(seed, "folds"),
                                                  classes=("negative", "positive"), source=where)):
        if dev_fraction <= 0:
            splits.append((tr, np.zeros(0, dtype=np.int64), te))
            continue
        tr, dv = train_test_split(tr, test_size=dev_fraction, stratify=y[tr],
                                  random_state=stable_seed(seed, "dev", k) % (2**32))
        splits.append((np.sort(tr), np.sort(dv), te))
    return {
        "seqs": seqs,
        "labels": y,
        "matrix": matrix,
        "coverage": coverage,
        "splits": splits,
        "data": {
            "dataset": dataset, "documents": len(seqs), "positive": int(sum(labels)),
            "sources": [os.path.basename(p) for p in data.sources],
            "mean_tokens": float(lengths.mean()), "max_tokens": int(lengths.max()),
            "empty_documents": int((lengths == 0).sum()),
        },
    }


def describe_data(data: Dict) -> str:
    """One line on the data set, from :func:`prepare_reviews`'s ``data``."""
    from ..report import fmt_num

    return (f"{data.get('dataset', 'n/a')}, {data.get('documents', 'n/a')} documents ({data.get('positive', 'n/a')} "
            f"positive), {fmt_num(data.get('mean_tokens'))} tokens on average, longest {data.get('max_tokens', 'n/a')}; "
            f"files {', '.join(data.get('sources', []))}")


@dataclass
class ReviewKeys:
    """The config keys of Table 3's data: the reviews, the word vectors, the dev split (a table's config
    subclasses it; see :func:`prepare_reviews`)."""

    dataset: str = option("polarity-v1", choices=DATASETS,
                          help="sentence polarity v1.0 (Kim's MR, 10,662 snippets) or polarity v2.0 (2,000 reviews)")
    max_examples: int = option(0, min=0, help="use a stratified random subset of this many documents (0: all)")
    max_len: int = option(0, min=0, help="cut documents to this many tokens (0: no cut; useful for polarity-v2)")
    vectors: str = option("word2vec", choices=("word2vec", "glove"),
                          help="word2vec: Google News 300-d (Bolukbasi subset, binary); glove: GloVe 6B 50-d (text)")
    vectors_file: str = option("", help="another vectors file (absolute, or under <data root>/word-vectors/)")
    vectors_format: str = option("auto", choices=("auto", "word2vec-binary", "word2vec-text", "glove"),
                                 help="format of the vectors file (auto: from the first line and the .bin suffix)")
    vectors_std: float = option(-1.0, min=-1.0,
                                help="rescale the known vectors to this component std before use; 0: as in the file; "
                                     "-1 (auto): 0.144 (Kim's U[-0.25, 0.25], the full Google News vectors' scale) "
                                     "for the default Google News subset, which is unit-normalised (0.058), and "
                                     "the file's own scale for any other vectors")
    unknown_range: float = option(0.0, min=0.0, help="unknown words ~ U[-a, a]; 0: a matches the known vectors' variance (Kim)")
    dev_fraction: float = option(0.1, min=0.0, help="share of each training fold held out for validation (Kim: 0.1)")

    def validate(self) -> None:
        super().validate()  # type: ignore[misc]
        if self.dev_fraction >= 0.5:
            raise ConfigError(f"config key 'dev_fraction': expected a share in [0, 0.5), got {self.dev_fraction}")
        if self.vectors_std < 0 and self.vectors_std != -1.0:
            raise ConfigError(f"config key 'vectors_std': expected -1 (auto), 0 (as in the file) or a positive std, "
                              f"got {self.vectors_std}")

    def effective_vectors_std(self) -> float:
        """The component std the known vectors are rescaled to (0: none); resolves -1 (auto)."""
        from .wordvectors import KIM_VECTORS_STD

        if self.vectors_std != -1.0:
            return self.vectors_std
        return KIM_VECTORS_STD if self.vectors == "word2vec" and not self.vectors_file else 0.0

    def reviews(self, root: str, folds: int, seed: int) -> Dict:
        """:func:`prepare_reviews` under these keys."""
        return prepare_reviews(root, self.dataset, self.max_examples, self.max_len, self.vectors, self.vectors_file,
                               self.vectors_format, self.unknown_range, self.effective_vectors_std(), folds,
                               self.dev_fraction, seed)

    def data_choices(self, static: bool) -> Dict[str, str]:
        """What the data are where the paper is silent (a report's choices section); ``static``: frozen vectors."""
        from .wordvectors import vector_choices

        return {
            "data": {"polarity-v1": "sentence polarity v1.0 (Kim's MR: 10,662 snippets, 5,331 per class), as the paper "
                                    "says it uses Kim's data",
                     "polarity-v2": "polarity v2.0 (2,000 full reviews), the set the paper's text names"}[self.dataset]
            + (f"; a stratified subset of {self.max_examples}" if self.max_examples else "")
            + (f"; documents cut to {self.max_len} tokens" if self.max_len else ""),
            "pre-processing": "Kim's clean_str re-implemented (ASCII letters/digits and ( ) , ! ? ' ` kept, clitics "
                              "split, lower case); vocabulary over the whole data set (min count 1), as Kim",
            **vector_choices(self.vectors, self.vectors_file, static, self.effective_vectors_std(), self.unknown_range),
        }
