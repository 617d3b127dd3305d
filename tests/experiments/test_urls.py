"""URL sessions for Table 4: tokeniser, both input formats, load reports, dedup / no-leak split, sampling,
and the synthetic four-intent generator (src/actadapt/experiments/urls.py, url_sessions.py)."""

from __future__ import annotations

import json
import os

import pytest

from actadapt.experiments.config import ConfigError
from actadapt.experiments.url_sessions import INTENTS, generate_sessions, write_sessions
from actadapt.experiments.urls import (
    MAX_SESSION,
    DataError,
    Tokenizer,
    UrlDataset,
    balanced_sample,
    deduplicate,
    is_malformed,
    leaked_urls,
    load_iscx,
    read_class_folder,
    read_sessions,
    tokenize_url,
    url_folds,
)


# ------------------------------------------------------------------------------------------ tokeniser
@pytest.mark.parametrize("url, kwargs, words", [
    ("http://shop.com/a/b/c", {}, ["shop.com", "a", "b", "c"]),
    # scheme: dropped by default, kept as "scheme:" on request; a URL without scheme reads the same
    ("https://shop.com/a", {"scheme": True}, ["https:", "shop.com", "a"]),
    ("shop.com/a", {}, ["shop.com", "a"]),
    ("//shop.com/a", {}, ["shop.com", "a"]),
    # host: lower-cased, www., port and user info removed; or dropped
    ("http://user:pw@WWW.Shop.COM:8080/a", {}, ["shop.com", "a"]),
    ("http://www.shop.com/a", {"host": False}, ["a"]),
    ("http://www./a", {}, ["www.", "a"]),
    # empty segments, "." and a trailing slash give no word
    ("http://shop.com//a///b/./", {}, ["shop.com", "a", "b"]),
    ("http://shop.com/", {}, ["shop.com"]),
    # percent-decoding after the split: %2F stays inside its word; %20 and a raw space are the same word
    ("http://shop.com/New%20Folder/x%2Fy", {}, ["shop.com", "new folder", "x/y"]),
    ("http://shop.com/New Folder", {}, ["shop.com", "new folder"]),
    ("http://shop.com/caf%C3%A9/100%", {}, ["shop.com", "café", "100%"]),
    ("http://shop.com/%FF", {}, ["shop.com", "\ufffd"]),
    # case folding is optional for the path (the host is always lower-cased)
    ("http://Shop.com/Cart/ID", {"lower": False}, ["shop.com", "Cart", "ID"]),
    # path parameters (;jsessionid=...) are cut off
    ("http://shop.com/cn.css;jsessionid=A77C/b", {}, ["shop.com", "cn.css", "b"]),
    # query: names only (default), name=value, or nothing; &amp; separators; + is a space
    ("http://shop.com/s?q=red+shoes&page=2", {}, ["shop.com", "s", "?q", "?page"]),
    ("http://shop.com/s?q=red+shoes&page=2", {"query": "full"}, ["shop.com", "s", "?q=red shoes", "?page=2"]),
    ("http://shop.com/s?q=red+shoes&page=2", {"query": "drop"}, ["shop.com", "s"]),
    ("http://shop.com/s?a=1&amp;b=2&amp;amp;c=3&&", {}, ["shop.com", "s", "?a", "?b", "?c"]),
    # fragment: dropped by default, kept as "#frag" on request
    ("http://shop.com/a#Top", {}, ["shop.com", "a"]),
    ("http://shop.com/a#Top", {"fragment": True}, ["shop.com", "a", "#top"]),
    # a query word never collides with a path word of the same spelling
    ("http://shop.com/q?q=1", {}, ["shop.com", "q", "?q"]),
])
def test_tokenize_url(url, kwargs, words):
    assert tokenize_url(url, **kwargs) == words
    assert Tokenizer(**kwargs)(url) == words


def test_tokenizer_docstring_example():
    assert tokenize_url("https://www.Shop.com:8080/Cart//Check%20Out/?id=7&amp;step=2#top") == [
        "shop.com", "cart", "check out", "?id", "?step"]


@pytest.mark.parametrize("url", ["", "   ", "http://", "http://[::1/a", "http://shop.com:port/a", "http://a.com/b\x00c",
                                 "http://a.com/\tb", "?x=1", "http:///"])
def test_malformed_urls_give_no_words(url):
    assert tokenize_url(url) == []
    assert is_malformed(url)


def test_tokenizer_rejects_unknown_query_mode():
    with pytest.raises(ConfigError, match="'query'.*keys, full, drop"):
        Tokenizer(query="values")
    with pytest.raises(ConfigError, match="'query'"):
        tokenize_url("http://a.com/b", query="values")


# ------------------------------------------------------------------------------------------ format (a)
def _write(path, text: str, newline: str = "\n"):
    with open(path, "w", encoding="utf-8", newline="") as fh:
        fh.write(text.replace("\n", newline))
    return str(path)


def test_jsonl_sessions_counts_every_bad_row(tmp_path):
    long_session = [f"http://a.com/p/{i}" for i in range(60)]
    rows = [
        json.dumps({"urls": ["http://a.com/x", "http://a.com/y"], "label": "buy"}),  # 1 good
        "",  # 2 empty
        "{not json",  # 3 malformed
        json.dumps({"urls": ["http://a.com/x"]}),  # 4 malformed (no label key)
        json.dumps({"urls": ["http://a.com/x"], "label": ""}),  # 5 mislabelled
        json.dumps({"urls": ["http://a.com/x"], "label": "nap"}),  # 6 mislabelled (not in classes)
        json.dumps({"urls": [], "label": "buy"}),  # 7 empty
        json.dumps({"urls": ["http://", "\x01"], "label": "buy"}),  # 8 malformed: no good URL
        json.dumps({"urls": "http://a.com/x", "label": "buy"}),  # 9 malformed: not a list
        json.dumps({"urls": ["http://b.com/", "http://[::1", "http://b.com/z"], "label": "look"}),  # 10 good, 1 bad URL
        json.dumps({"urls": long_session, "label": "look"}),  # 11 good, cut to 50
    ]
    path = _write(tmp_path / "s.jsonl", "\n".join(rows) + "\n")
    ds = read_sessions(path, classes=["look", "buy"])
    rep = ds.report
    assert rep.rows == 11 and rep.sessions == len(ds) == 3
    assert rep.problems == {"empty": 2, "malformed": 4, "mislabelled": 2}
    assert rep.bad_urls == 1 and rep.truncated == 1
    assert ds.classes == ["look", "buy"] and ds.labels == [1, 0, 0]
    assert ds.sessions[1] == ["http://b.com/", "http://b.com/z"]
    assert ds.sessions[2] == long_session[:MAX_SESSION]
    assert ds.where == ["s.jsonl:1", "s.jsonl:10", "s.jsonl:11"]
    assert any(e.startswith("s.jsonl:6: label 'nap'") for e in rep.examples["mislabelled"])
    summary = rep.summary()
    assert "left out 2 empty" in summary and "left out 4 malformed" in summary and "cut 1 session" in summary
    assert json.loads(json.dumps(rep.to_dict()))["problems"]["malformed"] == 4


def test_classes_in_order_of_first_kept_session(tmp_path):
    rows = [{"urls": [], "label": "z"}, {"urls": ["http://a.com/1"], "label": "b"},
            {"urls": ["http://a.com/2"], "label": "a"}, {"urls": ["http://a.com/3"], "label": 7}]
    path = _write(tmp_path / "s.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    ds = read_sessions(path)
    assert ds.classes == ["b", "a", "7"] and ds.labels == [0, 1, 2]
    assert ds.report.problems["empty"] == 1


def test_wide_csv_sessions(tmp_path):
    text = ('id,label,urls\n'
            '1,buy,"[""http://a.com/cart"", ""http://a.com/pay""]"\n'  # JSON array
            '2,look,http://a.com/p/1   http://a.com/p/2\n'  # white-space separated
            '3,look\n'  # malformed: missing field
            '4,look,"[""http://a.com/x"""\n'  # malformed: broken JSON array
            ',,\n'  # empty
            '6,,http://a.com/x\n')  # mislabelled
    ds = read_sessions(_write(tmp_path / "s.csv", text, "\r\n"))
    assert ds.sessions == [["http://a.com/cart", "http://a.com/pay"], ["http://a.com/p/1", "http://a.com/p/2"]]
    assert ds.classes == ["buy", "look"]
    assert ds.report.problems == {"empty": 1, "malformed": 2, "mislabelled": 1}
    assert "s.csv:5: the urls cell starts with '['" in ds.report.examples["malformed"][1]


def test_long_csv_sessions_group_rows_in_order(tmp_path):
    text = "session,url,label\n" + "".join(f"s1,http://a.com/{i},buy\n" for i in range(55))
    text += "s2,http://b.com/x,look\ns3,http://b.com/y,look\ns2,http://b.com/z,look\n"
    text += "s4,http://c.com/1,look\ns4,http://c.com/2,buy\n"  # rows disagree: mislabelled
    text += ",http://c.com/3,look\n\n"  # no session id: malformed; blank row
    ds = read_sessions(_write(tmp_path / "long.csv", text))
    assert [s[:2] for s in ds.sessions] == [["http://a.com/0", "http://a.com/1"],
                                            ["http://b.com/x", "http://b.com/z"], ["http://b.com/y"]]
    assert len(ds.sessions[0]) == MAX_SESSION and ds.report.truncated == 1
    assert ds.labels == [0, 1, 1] and ds.classes == ["buy", "look"]
    assert ds.report.problems == {"empty": 1, "malformed": 1, "mislabelled": 1}
    assert "session s4" in ds.report.examples["mislabelled"][0] and "buy, look" in ds.report.examples["mislabelled"][0]


def test_session_cap_is_configurable(tmp_path):
    path = _write(tmp_path / "s.jsonl", json.dumps({"urls": [f"http://a.com/{i}" for i in range(9)], "label": "x"}))
    assert read_sessions(path, max_len=4).sessions == [[f"http://a.com/{i}" for i in range(4)]]
    with pytest.raises(ConfigError, match="max_len"):
        read_sessions(path, max_len=0)


@pytest.mark.parametrize("name, text, match", [
    ("s.csv", "label,pages\nx,http://a.com/\n", r"s\.csv.*neither a 'urls' column.*expected"),
    ("s.csv", "urls\nhttp://a.com/\n", r"no 'label' column"),
    ("s.csv", "", r"s\.csv.* is empty"),
    ("s.txt", "x", r"unknown extension '\.txt'.*\.jsonl"),
    ("s.jsonl", "{bad\n\n", r"(?s)no usable session.*left out 1 malformed"),
])
def test_sessions_file_errors_name_file_and_expectation(tmp_path, name, text, match):
    with pytest.raises(DataError, match=match):
        read_sessions(_write(tmp_path / name, text))


def test_missing_and_binary_files(tmp_path):
    with pytest.raises(DataError, match="not found"):
        read_sessions(str(tmp_path / "nope.jsonl"))
    gz = tmp_path / "s.csv"
    gz.write_bytes(b"\x1f\x8b\x08\x00rest")
    with pytest.raises(DataError, match="compressed"):
        read_sessions(str(gz))


# ------------------------------------------------------------------------------------------ format (b)
def _class_folder(tmp_path):
    folder = tmp_path / "iscx"
    folder.mkdir()
    _write(folder / "Benign_list_big_final.csv", "URLs\nhttp://good.com/a\nhttp://good.com/b\n\nhttp://dup.com/x\n", "\r\n")
    _write(folder / "Malware_dataset.csv",
           'URLs\nhttp://bad.com/a\nhttp://bad.com/a\nwww.bad.com/a\n"http://bad.com/q?x=1,2"\nhttp://bad.com/a,b\n'
           "http://\n", "\r\n")
    _write(folder / "phishing_dataset.csv", "URLs\nhttp://phish.com/login\nhttp://dup.com/x\n", "\r\n")
    (folder / "spam_dataset.csv").write_bytes(b"URLs\r\nhttp://spam.com/caf\xe9\r\nhttp://spam.com/b\r\n")  # Latin-1
    (folder / "notes.txt").write_text("not a class")
    return str(folder)


def test_class_folder_iscx_layout(tmp_path):
    folder = _class_folder(tmp_path)
    ds = read_class_folder(folder)
    assert ds.classes == ["benign", "malware", "phishing", "spam"]  # ISCX stems mapped, sorted by file name
    assert ds.counts() == {"benign": 3, "malware": 4, "phishing": 2, "spam": 2}
    assert all(len(s) == 1 for s in ds.sessions)
    assert "http://bad.com/q?x=1,2" in [s[0] for s in ds.sessions]  # a quoted comma is fine
    assert ["http://spam.com/café"] in ds.sessions
    rep = ds.report
    assert rep.problems == {"empty": 1, "malformed": 2, "mislabelled": 0}
    assert rep.rows == 14 and [os.path.basename(f) for f in rep.decoded_latin1] == ["spam_dataset.csv"]
    assert "Malware_dataset.csv:6: 2 fields" in rep.examples["malformed"][0]
    assert "Malware_dataset.csv:7" in rep.examples["malformed"][1]
    assert "Benign_list_big_final.csv:4: blank row" in rep.examples["empty"][0]
    # classes given: their order, and only those files
    ds2 = read_class_folder(folder, classes=["spam", "benign"])
    assert ds2.classes == ["spam", "benign"] and ds2.counts() == {"spam": 2, "benign": 3}


@pytest.mark.parametrize("files, kwargs, match", [
    ({"a.csv": "URL\nhttp://a.com/\n", "b.csv": "address\nhttp://b.com/\n"}, {}, r"b\.csv.*expected the header 'URLs'"),
    ({"a.csv": "URLs\nhttp://a.com/\n"}, {}, r"1 CSV file.*at least two classes"),
    ({"a.csv": "URLs\nhttp://a.com/\n", "b.csv": "URLs\nhttp://b.com/\n"}, {"classes": ["a", "c"]}, r"no CSV for class\(es\) c"),
    ({"Spam_dataset.csv": "URLs\nx.com/\n", "spam.csv": "URLs\nx.com/\n", "x.csv": "URLs\ny.com/\n"}, {}, r"both give class 'spam'"),
])
def test_class_folder_errors(tmp_path, files, kwargs, match):
    for name, text in files.items():
        _write(tmp_path / name, text)
    with pytest.raises(DataError, match=match):
        read_class_folder(str(tmp_path), **kwargs)


def test_class_folder_missing(tmp_path):
    with pytest.raises(DataError, match="not found or not a folder"):
        read_class_folder(str(tmp_path / "nope"))
    with pytest.raises(DataError, match="ACTADAPT_DATA"):
        load_iscx(str(tmp_path / "nope"))


# ------------------------------------------------------------------------------------------ hostile files
def _two_classes(tmp_path, spam_text):
    folder = tmp_path / "urls"
    folder.mkdir()
    _write(folder / "benign.csv", "URLs\n" + "".join(f"http://good.com/{i}\n" for i in range(6)), "\r\n")
    _write(folder / "spam.csv", spam_text, "\r\n")
    return folder


@pytest.mark.parametrize("spam, message", [
    ("URLs\n" + "\n" * 300, r"spam\.csv': 300 of its 300 entries are unusable \(blank rows or sessions without a URL\), "
                               r"the first at spam\.csv:2"),
    ("URLs\nhttp://s.com/1\nhttp://s.com/2\n\n\n\n", r"spam\.csv': 3 of its 5 entries are unusable"),
])
def test_a_class_file_of_blank_lines_is_an_error(tmp_path, spam, message):
    with pytest.raises(DataError, match=message):
        read_class_folder(str(_two_classes(tmp_path, spam)))


def test_a_few_blank_rows_are_counted_not_fatal(tmp_path):
    ds = read_class_folder(str(_two_classes(tmp_path, "URLs\nhttp://s.com/1\nhttp://s.com/2\n\nhttp://s.com/3\n")))
    assert ds.counts() == {"benign": 6, "spam": 3} and ds.report.problems["empty"] == 1


def test_a_nearly_empty_class_names_its_file_not_the_config(tmp_path):
    from actadapt.experiments.runner import reproduce

    folder = _two_classes(tmp_path, "URLs\nhttp://s.com/only\n")
    with pytest.raises(DataError, match=r"^class 'spam' has only 1 session\(s\) in .*spam\.csv, but 2-fold cross-validation"):
        reproduce("table4", "smoke", str(tmp_path / "run"), overrides={"input": str(folder), "sample": 0},
                  progress=False, log=lambda *a: None)
    assert not (tmp_path / "run").exists()


def test_fields_of_any_length(tmp_path):
    import csv

    long_url = "http://shop.com/search?q=" + "x" * (1 << 20) + "&page=2"  # a 1 MiB field
    limit = csv.field_size_limit()
    ds = read_class_folder(str(_two_classes(tmp_path, f"URLs\n\"{long_url}\"\nhttp://s.com/2\n")))
    assert [long_url] in ds.sessions and ds.report.problems == {"empty": 0, "malformed": 0, "mislabelled": 0}
    wide = _write(tmp_path / "s.csv", f"label,urls\nbuy,{long_url} http://a.com/cart\nlook,http://a.com/p\n")
    assert read_sessions(wide).sessions[0] == [long_url, "http://a.com/cart"]
    assert csv.field_size_limit() == limit  # the module-wide limit is put back


def test_a_stray_quote_is_reported_with_the_lines_it_swallowed(tmp_path):
    spam = 'URLs\nhttp://s.com/1\n"http://s.com/2\nhttp://s.com/3\nhttp://s.com/4\n'
    ds = read_class_folder(str(_two_classes(tmp_path, spam)))
    assert ds.counts()["spam"] == 1
    assert ds.report.examples["malformed"] == ["spam.csv:3: a quoted field holds 3 line break(s) (a stray '\"'?)"]


# ------------------------------------------------------------------------------------------ dedup, no-leak split
def test_dedup_by_url_and_by_tokens(tmp_path):
    ds = read_class_folder(_class_folder(tmp_path))
    by_url = deduplicate(ds, by="url")
    urls = [s[0] for s in by_url.sessions]
    assert len(urls) == len(set(urls))
    assert "http://dup.com/x" not in urls  # under benign and phishing: dropped in both
    assert urls.count("http://bad.com/a") == 1 and "www.bad.com/a" in urls
    by_tok = deduplicate(ds)  # www.bad.com/a reads as bad.com/a
    assert "www.bad.com/a" not in [s[0] for s in by_tok.sessions]
    assert by_tok.counts()["malware"] == 2
    assert "dropped 2 session(s) of 1 key(s) found under several labels" in by_tok.report.steps[-1]
    assert "malware 4->2" in by_tok.report.summary()
    with pytest.raises(ConfigError, match="dedup key"):
        deduplicate(ds, by="host")


def _duplicated_dataset(n=200, copies=3):
    sessions, labels = [], []
    for i in range(n):
        for _ in range(copies):
            sessions.append([f"http://site{i % 7}.com/page/{i}?id={i * copies}"])
            labels.append(i % 4)
    return UrlDataset(sessions, labels, ["a", "b", "c", "d"])


def test_no_url_in_both_train_and_test_after_dedup():
    ds = _duplicated_dataset()
    # without dedup, folds leak (so this test can fail)
    tr, te = url_folds(ds.labels, 5, seed=0)[0]
    assert leaked_urls(ds, tr, te)
    clean = deduplicate(ds)
    assert len(clean) == 200
    for tr, te in url_folds(clean.labels, 5, seed=0):
        assert not leaked_urls(clean, tr, te)
        train_urls = {u for i in tr for u in clean.sessions[i]}
        assert not train_urls & {u for i in te for u in clean.sessions[i]}
        assert sorted(list(tr) + list(te)) == list(range(len(clean)))


def test_url_folds_stratified_and_checked():
    labels = [0] * 50 + [1] * 30 + [2] * 20
    folds = url_folds(labels, 5, seed=3)
    assert len(folds) == 5
    for _, te in folds:
        assert sorted([labels[i] for i in te].count(c) for c in range(3)) == [4, 6, 10]
    assert [list(te) for _, te in folds] == [list(te) for _, te in url_folds(labels, 5, seed=3)]
    with pytest.raises(ConfigError, match=r"class '0' has only 2 session\(s\), but 5-fold cross-validation needs at least 5"):
        url_folds([0, 0, 1, 1, 1, 1, 1], 5)
    # a class that (nearly) vanished in reading is named, with the data it came from, not blamed on the config
    with pytest.raises(DataError, match=r"^class 'spam' has only 0 session\(s\) in data/x\.csv, but 2-fold"):
        url_folds([0, 0, 0], 2, classes=["benign", "spam"], source="data/x.csv")


def test_balanced_sample():
    ds = UrlDataset([[f"http://a.com/{i}"] for i in range(100)], [0] * 60 + [1] * 30 + [2] * 10, ["x", "y", "z"])
    b = balanced_sample(ds, 45, seed=1)
    assert b.counts() == {"x": 15, "y": 15, "z": 10}
    assert "short of the per-class quota 15: z (10 available)" in b.report.steps[-1]
    assert b.sessions == balanced_sample(ds, 45, seed=1).sessions != balanced_sample(ds, 45, seed=2).sessions
    f = balanced_sample(ds, 45, seed=1, fill=True)
    assert len(f) == 45 and f.counts()["z"] == 10 and f.counts()["x"] + f.counts()["y"] == 35
    assert balanced_sample(ds, 0) is ds
    assert ds.report.steps == []  # the input's report is not touched


@pytest.mark.slow
def test_iscx_real_data(data_root):
    ds = load_iscx(data_root)
    assert ds.counts() == {"benign": 35378, "malware": 11566, "phishing": 9965, "spam": 12000}
    assert ds.report.dropped == 0
    assert deduplicate(ds, by="url").counts()["malware"] == 2691  # data/README.md: 2,691 unique
    sample = balanced_sample(deduplicate(ds), 13500, seed=0)
    assert max(sample.counts().values()) == 13500 // 4
    tr, te = url_folds(sample.labels, 5, seed=0)[0]
    assert not leaked_urls(sample, tr, te)


# ------------------------------------------------------------------------------------------ generator
def test_generator_is_seeded_balanced_and_bounded():
    s = generate_sessions(400, seed=5)
    assert s == generate_sessions(400, seed=5) and s != generate_sessions(400, seed=6)
    labels = [lab for _, lab in s]
    assert {lab: labels.count(lab) for lab in INTENTS} == {lab: 100 for lab in INTENTS}
    lengths = [len(u) for u, _ in s]
    assert min(lengths) >= 1 and max(lengths) <= 60 and any(n > MAX_SESSION for n in lengths)
    assert all(tokenize_url(u) for urls, _ in s for u in urls)
    with pytest.raises(ValueError, match="unknown intent"):
        generate_sessions(3, intents=("browse", "sleep"))
    with pytest.raises(ValueError, match="noise=2"):
        generate_sessions(3, noise=2)


def test_generator_intents_differ_in_their_pages():
    # each intent's own pages are its most frequent path words (so the labels are learnable)
    own = {"browse": "c", "purchase": "checkout", "support": "help", "other": "blog"}
    s = generate_sessions(800, seed=0, noise=0.1)
    for intent, word in own.items():
        share = {lab: 0 for lab in INTENTS}
        for urls, lab in s:
            share[lab] += sum(word in tokenize_url(u) for u in urls)
        assert max(share, key=share.get) == intent


@pytest.mark.parametrize("name, layout", [("s.jsonl", "wide"), ("s.csv", "wide"), ("s.csv", "long")])
def test_generator_round_trips_through_format_a(tmp_path, name, layout):
    s = generate_sessions(120, seed=2)
    ds = read_sessions(write_sessions(str(tmp_path / name), s, layout), classes=INTENTS)
    assert ds.report.dropped == 0 and ds.report.truncated == sum(len(u) > MAX_SESSION for u, _ in s)
    assert ds.sessions == [u[:MAX_SESSION] for u, _ in s]
    assert [ds.classes[y] for y in ds.labels] == [lab for _, lab in s]
    clean = deduplicate(ds)
    for tr, te in url_folds(clean.labels, 5, seed=0):
        assert not leaked_urls(clean, tr, te)


# ------------------------------------------------------------------------------------------ model (urlcnn.py)
def _intent_dataset(n=160, seed=0):
    s = generate_sessions(n, seed=seed, mean_len=8)
    return UrlDataset([u[:MAX_SESSION] for u, _ in s], [INTENTS.index(lab) for _, lab in s], list(INTENTS))


def test_metrics_match_sklearn():
    np = pytest.importorskip("numpy")
    from sklearn.metrics import accuracy_score, confusion_matrix, precision_score, recall_score

    from actadapt.experiments.urlcnn import metrics

    rng = np.random.default_rng(0)
    y, p = rng.integers(0, 4, 300), rng.integers(0, 3, 300)  # class 3 is never predicted
    m = metrics(y.tolist(), p.tolist(), 4)
    assert m["accuracy"] == pytest.approx(100 * accuracy_score(y, p))
    assert m["precision"] == pytest.approx(100 * precision_score(y, p, average="macro", zero_division=0))
    assert m["recall"] == pytest.approx(100 * recall_score(y, p, average="macro", zero_division=0))
    assert m["confusion"] == confusion_matrix(y, p, labels=range(4)).tolist()


def test_encode_sessions_rows_and_unknown_words():
    from actadapt.experiments.urlcnn import encode_sessions

    tok = Tokenizer()
    index = {"a.com": 2, "x": 3}
    sessions = [["http://a.com/x/y", "http://b.com/x"], ["http://a.com/"]]
    by_url = encode_sessions(sessions, tok, index, "urls", max_urls=4, max_words=2)
    assert by_url.shape == (2, 4, 2)
    assert by_url[0].tolist() == [[2, 3], [1, 3], [0, 0], [0, 0]]  # y cut by max_words; b.com unknown
    by_word = encode_sessions(sessions, tok, index, "words", max_words=5)
    assert by_word.shape == (2, 5, 1) and by_word[0, :, 0].tolist() == [2, 3, 1, 1, 3]
    with pytest.raises(ConfigError, match="'rows'"):
        encode_sessions(sessions, tok, index, "pages")


@pytest.mark.parametrize("conv", ["ReLU", "AReLU", "AGumb"])
@pytest.mark.parametrize("fc", ["ReLU", "AReLU", "AGumb"])
def test_urlcnn_grid_shapes_and_alphas(conv, fc):
    import torch

    from actadapt.experiments.urlcnn import UrlCNN
    from actadapt.training import alpha_parameters

    model = UrlCNN(num_words=30, seq_len=50, num_classes=4, dim=8, conv_act=conv, fc_act=fc, hidden=16)
    ids = torch.randint(0, 30, (3, 50, 4))
    out = model(ids)
    assert out.shape == (3, 4)
    out.sum().backward()
    n_alpha = sum(p.numel() for p in alpha_parameters(model))
    assert n_alpha == (20 + 50) * (conv != "ReLU") + 16 * (fc != "ReLU")


def test_word2vec_is_trained_on_training_folds_only(monkeypatch):
    from actadapt.experiments import urlcnn

    seen = []
    real = urlcnn.train_word2vec

    def spy(sentences, *args, **kwargs):
        seen.extend(sentences)
        return real(sentences, *args, **kwargs)

    monkeypatch.setattr(urlcnn, "train_word2vec", spy)
    ds = deduplicate(_intent_dataset())
    tr, te = url_folds(ds.labels, 5, seed=0)[0]
    s = urlcnn.UrlCNNSettings(epochs=1, dim=8, hidden=16, w2v_epochs=1)
    out = urlcnn.fit_evaluate(ds, tr, te, s)
    train_sentences = [Tokenizer()(u) for i in tr for u in ds.sessions[i]]
    assert seen == train_sentences
    assert out["rows"] == "urls" and out["seq_len"] == MAX_SESSION
    assert len(out["train_loss"]) == 1 and sum(map(sum, out["confusion"])) == len(te)


def test_learned_embeddings_learn_the_synthetic_intents():
    from actadapt.experiments.urlcnn import UrlCNNSettings, fit_evaluate

    ds = deduplicate(_intent_dataset(240, seed=3))
    tr, te = url_folds(ds.labels, 4, seed=0)[0]
    out = fit_evaluate(ds, tr, te, UrlCNNSettings(embedding="learned", epochs=8, dim=16, hidden=32, seed=1, lr=1e-2))
    assert out["train_loss"][-1] < out["train_loss"][0]
    assert out["accuracy"] > 40 and out["train_accuracy"] > 70  # chance is 25; the test part is 60 sessions


def test_a_diverging_fold_stops_and_says_so():
    from actadapt.experiments.urlcnn import UrlCNNSettings, fit_evaluate

    ds = deduplicate(_intent_dataset(120, seed=3))
    tr, te = url_folds(ds.labels, 4, seed=0)[0]
    settings = dict(embedding="learned", epochs=3, dim=8, hidden=16, seed=1)
    assert fit_evaluate(ds, tr, te, UrlCNNSettings(**settings))["diverged_epoch"] is None
    out = fit_evaluate(ds, tr, te, UrlCNNSettings(**settings, lr=1e30))
    assert out["diverged_epoch"] == len(out["train_loss"]) and out["diverged_epoch"] <= 3


# ------------------------------------------------------------------------------------------ table4 (user data)
def test_table4_runs_on_a_synthetic_sessions_file(tmp_path):
    from actadapt.experiments.runner import reproduce

    path = write_sessions(str(tmp_path / "s.jsonl"), generate_sessions(200, seed=4))
    out = str(tmp_path / "run")
    overrides = {"input": path, "sample": 0, "folds": 2, "epochs": 1, "conv_acts": "AGumb", "fc_acts": "AReLU",
                 "embedding": "learned"}
    res = reproduce("table4", "smoke", out, overrides=overrides, progress=False, log=lambda *a: None)
    (cell,) = res["cells"]
    assert (cell["row"], cell["column"], cell["n_folds"]) == ("AGumb", "AReLU", 2)
    assert 0 <= cell["mean"] <= 100 and cell["paper"] == 68.2
    assert res["cells_recall"][0]["paper"] == 68.1
    conf = res["confusion"]["AGumb-AReLU"]
    assert sum(map(sum, conf)) == sum(res["data"]["counts"].values())  # every session tested once
    report = open(os.path.join(out, "report.md")).read()
    assert "The data differ" in report and "Confusion matrix" in report and "deduplicated by tokens" in report


def test_table4_bad_input_is_one_clear_error(tmp_path):
    from actadapt.cli import main

    bad = _write(tmp_path / "s.csv", "label,pages\nx,http://a.com/\n")
    assert main(["reproduce", "table4", "--preset", "smoke", "--out", str(tmp_path / "r"), "--set", f"input={bad}"]) == 2
