"""URL sessions for Table 4 (src/actadapt/experiments/data/urls.py): tokeniser, both input formats, load
reports, dedup and the no-leak split, sampling."""

from __future__ import annotations

import json
import os

import pytest

from actadapt.experiments.config import ConfigError
from actadapt.experiments.data.urls import (
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
)
from actadapt.experiments.folds import stratified_folds


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
    tr, te = stratified_folds(ds.labels, 5, seed=0)[0]
    assert leaked_urls(ds, tr, te)
    clean = deduplicate(ds)
    assert len(clean) == 200
    for tr, te in stratified_folds(clean.labels, 5, seed=0):
        assert not leaked_urls(clean, tr, te)
        train_urls = {u for i in tr for u in clean.sessions[i]}
        assert not train_urls & {u for i in te for u in clean.sessions[i]}
        assert sorted(list(tr) + list(te)) == list(range(len(clean)))


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
    tr, te = stratified_folds(sample.labels, 5, seed=0)[0]
    assert not leaked_urls(sample, tr, te)
