"""Movie-review loaders and Kim-style tokenisation (actadapt.experiments.data.moviereview)."""

import gzip
import os
import zipfile

import numpy as np
import pytest

from actadapt.experiments.data.moviereview import (
    DataError,
    build_vocab,
    clean_str,
    encode,
    load_movie_reviews,
    read_lines,
    stratified_subset,
    tokenize,
)


# ------------------------------------------------------------------------------------------ tokeniser
@pytest.mark.parametrize("text, expected", [
    ("It's good", "it 's good"),
    ("isn't, wasn't", "is n't , was n't"),
    ("we've they're he'd you'll", "we 've they 're he 'd you 'll"),
    ("Wow! Really? (yes)", "wow ! really ? ( yes )"),
    ("a  b \t c\n", "a b c"),
    ("the `scene' -- a mess ; ok .", "the `scene' a mess ok"),  # '-', ';', '.' are not kept (Kim)
    ("café naïve", "caf na ve"),  # non-ASCII letters split words, as in Kim's clean_str
    ("interwoven\x85 [the film] addresses", "interwoven the film addresses"),
    ("A 10/10 film", "a 10 10 film"),
    ("", ""),
])
def test_clean_str(text, expected):
    assert clean_str(text) == expected
    assert tokenize(text) == expected.split()


def test_clean_str_keeps_case_on_request():
    assert clean_str("It's NOT", lower=False) == "It 's NOT"


def test_tokens_never_hold_spaces_or_backslashes():
    # Kim's replacement strings leave '\(' and '\?' tokens (a re.sub artefact); ours are plain
    toks = tokenize("why (again)? no!")
    assert toks == ["why", "(", "again", ")", "?", "no", "!"]
    assert all(" " not in t and "\\" not in t for t in toks)


# ------------------------------------------------------------------------------------------ loaders
def _write_v1(root, pos: bytes, neg: bytes):
    d = root / "movie-review"
    d.mkdir(parents=True, exist_ok=True)
    (d / "rt-polarity.pos").write_bytes(pos)
    (d / "rt-polarity.neg").write_bytes(neg)
    return str(root)


def test_read_lines_splits_on_newline_only(tmp_path):
    # 0x85 (NEL in Latin-1), 0x0c (form feed) and 0x1c are line breaks for str.splitlines, not for the data
    raw = b"first \x85 still first\nsecond \x0c and \x1c\nthird caf\xe9\r\n"
    p = tmp_path / "f.txt"
    p.write_bytes(raw)
    lines = read_lines(str(p))
    assert len(lines) == 3
    assert len(raw.decode("latin-1").splitlines()) > 3  # the trap the loader avoids
    assert lines[0] == "first \x85 still first"
    assert lines[2] == "third caf\u00e9"  # Latin-1 decoded, CR removed


def test_read_lines_without_final_newline(tmp_path):
    p = tmp_path / "f.txt"
    p.write_bytes(b"a\nb")
    assert read_lines(str(p)) == ["a", "b"]


def test_load_polarity_v1_synthetic(tmp_path):
    root = _write_v1(tmp_path, b"a fine film\x85 truly\nit's great !\n", b"dull\nworst ever\nno .\n")
    data = load_movie_reviews(root)
    assert len(data) == 5 and data.counts() == {0: 3, 1: 2}
    assert data.labels == [1, 1, 0, 0, 0]
    assert data.docs[0] == ["a", "fine", "film", "truly"]
    assert data.docs[1] == ["it", "'s", "great", "!"]


@pytest.mark.parametrize("content, message", [
    (None, "not found; expected a plain-text file with one snippet per line (Latin-1)"),
    (gzip.compress(b"a\nb\n"), "is compressed (gzip/zip); expected a plain-text file"),
    (b"\x00\x01\x02binary", "holds NUL bytes"),
    (b"", "is empty"),
])
def test_load_polarity_v1_bad_files(tmp_path, content, message):
    d = tmp_path / "movie-review"
    d.mkdir()
    (d / "rt-polarity.pos").write_bytes(b"good\n")
    if content is not None:
        (d / "rt-polarity.neg").write_bytes(content)
    with pytest.raises(DataError) as err:
        load_movie_reviews(str(tmp_path))
    assert str(d / "rt-polarity.neg") in str(err.value) and message in str(err.value)


def test_data_root_errors(tmp_path):
    with pytest.raises(DataError, match="no data root"):
        load_movie_reviews("")
    with pytest.raises(DataError, match="is not a folder"):
        load_movie_reviews(str(tmp_path / "nope"))
    with pytest.raises(DataError, match="unknown movie-review data set 'mr'; valid data sets: polarity-v1, polarity-v2"):
        load_movie_reviews(str(tmp_path), "mr")


def _write_v2(root, members):
    d = root / "movie-review"
    d.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(d / "movie_reviews.zip", "w") as zf:
        for name, text in members.items():
            zf.writestr(name, text)
    return str(root)


def test_load_polarity_v2_synthetic(tmp_path):
    root = _write_v2(tmp_path, {
        "movie_reviews/README": "not a review",
        "movie_reviews/pos/cv001_1.txt": "a wonderful film .\nit's moving .\n",
        "movie_reviews/pos/cv000_2.txt": "great !\n",
        "movie_reviews/neg/cv000_3.txt": "boring , and long .\n",
    })
    data = load_movie_reviews(root, "polarity-v2")
    assert data.labels == [1, 1, 0]
    assert data.docs[0] == ["great", "!"]  # members sorted by name
    assert data.docs[1] == ["a", "wonderful", "film", "it", "'s", "moving"]


def test_load_polarity_v2_bad_files(tmp_path):
    with pytest.raises(DataError, match="movie_reviews.zip' not found; expected a zip of movie_reviews/pos"):
        load_movie_reviews(str(tmp_path), "polarity-v2")
    d = tmp_path / "movie-review"
    d.mkdir()
    (d / "movie_reviews.zip").write_bytes(b"this is not a zip")
    with pytest.raises(DataError, match="is not a readable zip"):
        load_movie_reviews(str(tmp_path), "polarity-v2")
    root = _write_v2(tmp_path / "other", {"movie_reviews/pos/a.txt": "good"})
    with pytest.raises(DataError, match="no pos/\\*.txt or no neg/\\*.txt members"):
        load_movie_reviews(root, "polarity-v2")


# ---------------------------------------------------------------------------------- vocabulary, folds
def test_build_vocab_and_encode():
    docs = [["a", "b", "a"], ["c"], []]
    index, counts = build_vocab(docs)
    assert index == {"a": 1, "b": 2, "c": 3}  # 0 is padding
    assert counts == {"a": 2, "b": 1, "c": 1}
    assert encode(docs, index) == [[1, 2, 1], [3], []]
    assert encode(docs, index, max_len=2) == [[1, 2], [3], []]


def test_stratified_subset():
    y = [0] * 60 + [1] * 40
    idx = stratified_subset(y, 20, seed=1)
    assert len(idx) == 20 and np.bincount(np.asarray(y)[idx]).tolist() == [12, 8]
    assert stratified_subset(y, 0, 1) is None and stratified_subset(y, 100, 1) is None


# ------------------------------------------------------------------------------------------ real data
def test_real_sentence_polarity(data_root):
    if not os.path.isdir(os.path.join(data_root, "movie-review")):
        pytest.skip("no movie-review/ in the data root")
    data = load_movie_reviews(data_root)
    assert data.counts() == {0: 5331, 1: 5331}
    index, counts = build_vocab(data.docs)
    assert len(index) == 18765  # Kim (2014), Table 1: |V| = 18765 for MR
    assert max(len(d) for d in data.docs) == 56  # Kim: max length 56
    assert sum(counts.values()) == 217353
