"""Word vectors through gensim, the embedding matrix and its unknown words (actadapt.experiments.data.wordvectors)."""

import gzip
import math
import os

import numpy as np
import pytest

from actadapt.experiments.data.moviereview import DataError
from actadapt.experiments.data.wordvectors import (
    detect_format,
    embedding_matrix,
    load_embeddings,
    load_vectors,
    vectors_path,
)

WORDS = ["good", "bad", "film", "the"]


def _kv(dim=6, seed=0, words=WORDS):
    from gensim.models import KeyedVectors

    kv = KeyedVectors(dim)
    kv.add_vectors(words, np.random.default_rng(seed).normal(0, 0.3, (len(words), dim)).astype(np.float32))
    return kv


def _write_w2v(path, binary=True, **kw):
    kv = _kv(**kw)
    kv.save_word2vec_format(str(path), binary=binary)
    return kv


def _glove_text(kv):
    return "".join(f"{w} " + " ".join(f"{v:.6f}" for v in kv[w]) + "\n" for w in kv.index_to_key)


# -------------------------------------------------------------------------------------------- formats
def test_word2vec_binary_roundtrip(tmp_path):
    path = tmp_path / "v.bin"
    kv = _write_w2v(path)
    got = load_vectors(str(path))  # auto: header + .bin -> binary
    assert detect_format(str(path)) == "word2vec-binary"
    assert got.index_to_key == WORDS and np.allclose(got["film"], kv["film"])


@pytest.mark.parametrize("compress", [False, True])
def test_glove_text(tmp_path, compress):
    kv = _kv()
    text = _glove_text(kv).encode()
    path = tmp_path / ("g.txt.gz" if compress else "g.txt")
    path.write_bytes(gzip.compress(text) if compress else text)
    assert detect_format(str(path)) == "glove"
    got = load_vectors(str(path), "glove")
    assert got.vector_size == 6 and np.allclose(got["bad"], kv["bad"], atol=1e-6)


def test_word2vec_text(tmp_path):
    path = tmp_path / "v.txt"
    kv = _write_w2v(path, binary=False)
    assert detect_format(str(path)) == "word2vec-text"
    assert np.allclose(load_vectors(str(path))["the"], kv["the"], atol=1e-5)


def test_missing_vectors_file(tmp_path):
    with pytest.raises(DataError) as err:
        load_vectors(str(tmp_path / "none.bin"), "word2vec-binary")
    msg = str(err.value)
    assert "none.bin' not found" in msg and "word2vec binary format (a header line 'COUNT DIM'" in msg


def test_glove_file_read_as_word2vec_binary(tmp_path):
    path = tmp_path / "g.txt"
    path.write_text(_glove_text(_kv()))
    with pytest.raises(DataError) as err:
        load_vectors(str(path), "word2vec-binary")
    assert str(path) in str(err.value) and "is not in word2vec binary format" in str(err.value)


def test_word2vec_binary_read_as_glove(tmp_path):
    path = tmp_path / "v.bin"
    _write_w2v(path)
    with pytest.raises(DataError, match="starts with a 'COUNT DIM' header, so it is word2vec, not GloVe text format"):
        load_vectors(str(path), "glove")


def test_truncated_binary(tmp_path):
    path = tmp_path / "v.bin"
    _write_w2v(path)
    path.write_bytes(path.read_bytes()[:40])  # header promises 4 vectors, the bytes stop inside the first
    with pytest.raises(DataError) as err:
        load_vectors(str(path), "word2vec-binary")
    assert "could not be read as word2vec binary format" in str(err.value) and str(path) in str(err.value)


@pytest.mark.parametrize("content", [b"hello world\nfoo bar\n", b"\x89PNG\r\n\x1a\n\x00\x00", b""])
def test_unknown_format(tmp_path, content):
    path = tmp_path / "v.vec"
    path.write_bytes(content)
    with pytest.raises(DataError, match="is in no known format; expected word2vec binary format"):
        load_vectors(str(path))


def test_vectors_path(tmp_path):
    assert vectors_path("/d", "word2vec") == (os.path.join("/d", "word-vectors", "GoogleNews-vectors-negative300-bolukbasi.bin"), "word2vec-binary")
    assert vectors_path("/d", "glove")[1] == "glove"
    assert vectors_path("/d", "word2vec", "my.txt") == (os.path.join("/d", "word-vectors", "my.txt"), "auto")
    assert vectors_path("/d", "word2vec", "/abs/my.txt") == ("/abs/my.txt", "auto")


# ------------------------------------------------------------------------------------- unknown words
def test_embedding_matrix_known_rows_padding_and_coverage():
    kv = _kv()
    index = {"good": 1, "zzz": 2, "film": 3, "qqq": 4}
    counts = {"good": 5, "zzz": 1, "film": 3, "qqq": 1}
    mat, cov = embedding_matrix(index, counts, kv, seed=0)
    assert mat.shape == (5, 6) and mat.dtype == np.float32
    assert not mat[0].any()  # padding
    assert np.array_equal(mat[1], kv["good"]) and np.array_equal(mat[3], kv["film"])
    a = cov["unknown_range"]
    assert a == pytest.approx(math.sqrt(3 * np.var(np.stack([kv["good"], kv["film"]]).astype(np.float64))))
    assert np.abs(mat[[2, 4]]).max() <= a
    assert cov["types"] == 4 and cov["known_types"] == 2 and cov["type_coverage"] == 0.5
    assert cov["tokens"] == 10 and cov["known_tokens"] == 8 and cov["token_coverage"] == 0.8


def test_unknown_vectors_match_the_known_variance():
    # many unknown words: their component variance is the known vectors' (uniform on [-a, a]: a^2 / 3)
    kv = _kv(dim=50, words=[f"w{i}" for i in range(200)])
    index = {**{f"w{i}": i + 1 for i in range(200)}, **{f"u{i}": 201 + i for i in range(2000)}}
    counts = {w: 1 for w in index}
    mat, cov = embedding_matrix(index, counts, kv, seed=3)
    known_var = np.var(mat[1:201].astype(np.float64))
    unknown = mat[201:].astype(np.float64)
    assert abs(unknown.mean()) < 0.01
    assert np.var(unknown) == pytest.approx(known_var, rel=0.03)
    assert cov["known_variance"] == pytest.approx(known_var)


def test_unknown_vectors_seeded_and_fixed_range():
    kv = _kv()
    index, counts = {"good": 1, "x": 2, "y": 3}, {"good": 1, "x": 1, "y": 1}
    a1, _ = embedding_matrix(index, counts, kv, seed=1)
    a2, _ = embedding_matrix(index, counts, kv, seed=1)
    b, _ = embedding_matrix(index, counts, kv, seed=2)
    assert np.array_equal(a1, a2) and not np.array_equal(a1[2:], b[2:]) and np.array_equal(a1[1], b[1])
    c, cov = embedding_matrix(index, counts, kv, seed=1, unknown_range=0.25)
    assert cov["unknown_range"] == 0.25 and np.abs(c[2:]).max() <= 0.25 and np.abs(c[2:]).max() > 0.1


def test_known_vectors_rescaled_to_a_target_std_and_unknown_ones_follow():
    kv = _kv(dim=50, words=[f"w{i}" for i in range(200)])
    index = {**{f"w{i}": i + 1 for i in range(200)}, **{f"u{i}": 201 + i for i in range(2000)}}
    counts = {w: 1 for w in index}
    plain, cov0 = embedding_matrix(index, counts, kv, seed=3)
    mat, cov = embedding_matrix(index, counts, kv, seed=3, target_std=0.1443)
    known = mat[1:201].astype(np.float64)
    assert np.std(known) == pytest.approx(0.1443, rel=1e-5)
    factor = 0.1443 / np.std(plain[1:201].astype(np.float64))
    np.testing.assert_allclose(known, plain[1:201] * factor, rtol=1e-6)  # one factor: directions kept
    assert cov["file_std"] == pytest.approx(cov0["file_std"]) and cov["rescale"] == pytest.approx(factor)
    assert cov0["rescale"] == 1.0
    assert cov["unknown_range"] == pytest.approx(math.sqrt(3) * 0.1443, rel=1e-5)
    assert np.var(mat[201:].astype(np.float64)) == pytest.approx(0.1443**2, rel=0.03)


def test_no_known_word_is_an_error():
    with pytest.raises(DataError, match="none of the data's 2 word types has a vector"):
        embedding_matrix({"x": 1, "y": 2}, {"x": 1, "y": 1}, _kv(), seed=0, source="v.bin")


def test_load_embeddings_from_a_data_root(tmp_path):
    (tmp_path / "word-vectors").mkdir()
    kv = _write_w2v(tmp_path / "word-vectors" / "GoogleNews-vectors-negative300-bolukbasi.bin")
    mat, cov = load_embeddings(str(tmp_path), {"good": 1, "odd": 2}, {"good": 2, "odd": 1}, "word2vec", seed=0)
    assert np.array_equal(mat[1], kv["good"]) and cov["token_coverage"] == pytest.approx(2 / 3)
    with pytest.raises(DataError, match="glove.6B.50d.top100k.txt.gz' not found; expected word vectors in GloVe"):
        load_embeddings(str(tmp_path), {"good": 1}, {"good": 1}, "glove")


# ------------------------------------------------------------------------------------------ real data
def test_real_vectors_coverage(data_root):
    from actadapt.experiments.data.moviereview import build_vocab, load_movie_reviews

    path, _ = vectors_path(data_root, "word2vec")
    if not os.path.isfile(path) or not os.path.isdir(os.path.join(data_root, "movie-review")):
        pytest.skip("no movie-review/ or Google News vectors in the data root")
    index, counts = build_vocab(load_movie_reviews(data_root).docs)
    mat, cov = load_embeddings(data_root, index, counts, "word2vec", seed=0)
    assert mat.shape == (18766, 300)
    # shared/data/README.md: about 58% of MR word types and 73% of MR tokens
    assert cov["type_coverage"] == pytest.approx(0.58, abs=0.01)
    assert cov["token_coverage"] == pytest.approx(0.735, abs=0.01)
    assert cov["unknown_range"] == pytest.approx(math.sqrt(3 / 300) * 1.0, rel=0.02)  # unit vectors: var ~ 1/300


# -------------------------------------------------------------------------------------------- non-finite rows
@pytest.mark.parametrize("value, fmt", [("nan", "glove"), ("1e39", "glove"), ("-inf", "word2vec-text"),
                                        ("1e39", "word2vec-text")])
def test_non_finite_numbers_in_a_text_file_name_the_line(tmp_path, value, fmt):
    lines = ["good 0.1 0.2 0.3", f"bad 0.5 {value} 0.1", "film 0.0 0.1 0.2"]
    if fmt == "word2vec-text":
        lines.insert(0, "3 3")
    path = tmp_path / "v.txt"
    path.write_text("\n".join(lines) + "\n")
    line = 3 if fmt == "word2vec-text" else 2
    with pytest.raises(DataError, match=rf"1 vector\(s\) hold NaN, an infinity or a number beyond float32's range "
                                        rf"\(3\.4e38\), the first at line {line} \(word 'bad'\)"):
        load_vectors(str(path), fmt)


def test_non_finite_numbers_in_a_binary_file_name_the_vector(tmp_path):
    path = tmp_path / "v.bin"
    kv = _kv()
    kv.vectors[1:3, 0] = [np.nan, np.inf]
    kv.save_word2vec_format(str(path), binary=True)
    with pytest.raises(DataError, match=r"2 vector\(s\) hold NaN.*the first at vector 2 \(word 'bad'\)"):
        load_vectors(str(path))
