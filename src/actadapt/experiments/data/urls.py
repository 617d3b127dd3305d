r"""URL sessions for Table 4 (PAPER.md §2.4): tokeniser, readers, load report, dedup, sampling.

The paper classifies web *sessions* (up to 50 URLs) into four intents; each URL is read as a sentence whose
words are separated by "/". Its data are private; the public stand-in is ISCX-URL-2016 (four classes of
single URLs). Both are held here as a :class:`UrlDataset`: a list of sessions (each a list of URL strings)
with integer labels indexing ``classes``. A single URL is a session of length 1.

**Tokeniser** (:func:`tokenize_url`). Decisions, each chosen so that a word means the same thing wherever it
occurs and so that the defaults do not hand the model per-URL identifiers:

* *scheme*: dropped by default (``http`` vs ``https`` says little about intent, and ISCX is nearly all
  ``http``); ``scheme=True`` keeps it as a first word ``"http:"``. URLs without a scheme
  (``www.x.com/a``, 223 of ISCX's malware rows) are read as if they had one, so they tokenise the same.
* *host*: one word, lower-cased, port and ``user:password@`` removed, and a leading ``www.`` removed
  (``www.shop.com`` and ``shop.com`` are one site). Not split on dots: the host is the URL's first
  "/"-word, as in the paper's reading. ``host=False`` drops it (intent without the site's identity).
* *path*: split on a literal "/" first; ``;name=value`` path parameters (``;jsessionid=...``) are cut off
  each word, as session state like query values; then each word is percent-decoded (UTF-8, invalid bytes
  replaced), so an encoded ``%2F`` stays inside its word (RFC 3986: it is data, not a delimiter) and ``New%20folder``
  and ``New folder`` (ISCX has raw spaces) are one word. Empty words (``//``, a trailing ``/``) and ``.``
  are dropped. Case is folded (``lower=True``): path case is rarely meaningful for intent (on ISCX folding
  merges few word types, 61,659 -> 61,207, as most paths are lower case already).
* *query*: ``query="keys"`` (default) keeps each parameter *name* as a word ``"?name"`` and drops values
  (mostly ids and tokens, unique per URL); ``"full"`` keeps ``"?name=value"``; ``"drop"`` drops the query.
  HTML-escaped separators (``&amp;``, common in ISCX) are read as ``&``. The ``?`` prefix keeps a query word
  apart from a path word of the same spelling.
* *fragment*: dropped by default (it never reaches the server and is client-side state);
  ``fragment=True`` keeps it as one word ``"#frag"``.
* *malformed*: a URL that is empty, holds control characters, cannot be parsed (e.g. ``http://[::1``) or
  gives no word at all. Readers count these (:class:`LoadReport`); they never vanish silently.

**Readers.** Format (a), sessions (:func:`read_sessions`): a ``.jsonl`` file of objects
``{"urls": [...], "label": ...}``; a "wide" ``.csv`` with columns ``label`` and ``urls`` (a JSON array, or
URLs separated by white space), one session per row; or a "long" ``.csv`` with columns ``session``, ``url``
and ``label``, one visit per row in order. Format (b), one CSV per class (:func:`read_class_folder`): the
ISCX layout, header ``URLs`` and CRLF line endings, one URL (a session of one) per row; the class is the
file's stem (ISCX's four names map to ``benign``, ``malware``, ``phishing``, ``spam``). Sessions longer than
``max_len`` (50, the paper's cap) keep their first 50 URLs and are counted.

**Leakage.** :func:`deduplicate` runs before any split: sessions with the same key (by default the token
sequence, so two URLs that differ only in dropped parts count as one) are kept once; a key seen under two
labels is dropped entirely and counted as conflicting. The stratified folds come after it
(:func:`actadapt.experiments.folds.stratified_folds`), and :func:`leaked_urls` checks that no test session also sits in training.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import io
import json
import os
import random
import re
import sys
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional, Sequence, Tuple
from urllib.parse import unquote, urlsplit

from ..config import ConfigError, DataError, check_usable_share, option, read_plain_bytes

__all__ = [
    "DataError",
    "MAX_SESSION",
    "QUERY_MODES",
    "ISCX_CLASSES",
    "Tokenizer",
    "tokenize_url",
    "is_malformed",
    "LoadReport",
    "UrlDataset",
    "read_sessions",
    "read_class_folder",
    "load_iscx",
    "deduplicate",
    "balanced_sample",
    "leaked_urls",
    "PAPER_SIZE",
    "SessionKeys",
    "prepare_sessions",
]

MAX_SESSION = 50  # the paper: "each at most 50 page visits"
QUERY_MODES = ("keys", "full", "drop")
# ISCX-URL-2016 file stems -> class names (any other file's class is its stem)
ISCX_CLASSES = {
    "benign_list_big_final": "benign",
    "malware_dataset": "malware",
    "phishing_dataset": "phishing",
    "spam_dataset": "spam",
}
ISCX_DIR = "url-iscx2016"


# ------------------------------------------------------------------------------------------ tokeniser
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_HAS_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")
_AMP = re.compile(r"&(?:amp;)+", re.IGNORECASE)


@dataclass(frozen=True)
class Tokenizer:
    """The URL tokeniser's settings (see the module notes for each decision); call it on a URL."""

    scheme: bool = False
    host: bool = True
    query: str = "keys"
    fragment: bool = False
    lower: bool = True

    def __post_init__(self) -> None:
        if self.query not in QUERY_MODES:
            raise ConfigError(f"URL tokeniser 'query': got {self.query!r}; expected one of {', '.join(QUERY_MODES)}")

    def __call__(self, url: str) -> List[str]:
        return tokenize_url(url, self.scheme, self.host, self.query, self.fragment, self.lower)


def _decode(word: str) -> str:
    return unquote(word, encoding="utf-8", errors="replace")


def tokenize_url(url: str, scheme: bool = False, host: bool = True, query: str = "keys",
                 fragment: bool = False, lower: bool = True) -> List[str]:
    """The words of ``url`` (an empty list if it is malformed; see :func:`is_malformed`).

    Example::

        >>> tokenize_url("https://www.Shop.com:8080/Cart//Check%20Out/?id=7&amp;step=2#top")
        ['shop.com', 'cart', 'check out', '?id', '?step']
    """
    if query not in QUERY_MODES:
        raise ConfigError(f"URL tokeniser 'query': got {query!r}; expected one of {', '.join(QUERY_MODES)}")
    url = url.strip()
    if not url or _CONTROL.search(url):
        return []
    text = url if _HAS_SCHEME.match(url) else "//" + url.lstrip("/")  # no scheme: the first word is the host
    try:
        parts = urlsplit(text)
        hostname = parts.hostname or ""  # lower-cased, without user info and port
        parts.port  # noqa: B018 -- raises ValueError on a non-numeric port
    except ValueError:
        return []
    words: List[str] = []
    if scheme and parts.scheme:
        words.append(parts.scheme.lower() + ":")
    if host and hostname:
        words.append(hostname[4:] if hostname.startswith("www.") and len(hostname) > 4 else hostname)
    for w in parts.path.split("/"):
        w = _decode(w.split(";", 1)[0])  # ";jsessionid=..." path parameters are session state, like query values
        if w and w != ".":
            words.append(w.lower() if lower else w)
    if parts.query and query != "drop":
        for item in _AMP.sub("&", parts.query).split("&"):
            if not item:
                continue
            name, sep, value = item.partition("=")
            name = _decode(name.replace("+", " "))
            word = "?" + (name if query == "keys" else name + sep + _decode(value.replace("+", " ")))
            words.append(word.lower() if lower else word)
    if fragment and parts.fragment:
        w = "#" + _decode(parts.fragment)
        words.append(w.lower() if lower else w)
    if not hostname and not parts.path.strip("/"):
        return []  # "http://" or "?" alone: nothing that names a page
    return words


def is_malformed(url: str) -> bool:
    """True if ``url`` gives no words under the default tokeniser (empty, control characters, unparsable)."""
    return not tokenize_url(url, host=True, query="drop")


# ------------------------------------------------------------------------------------------ report
PROBLEMS = ("empty", "malformed", "mislabelled")


@dataclass
class LoadReport:
    """What a reader saw and did. ``problems`` counts the rows left out, by kind:

    * ``empty``: a blank row, or a session with no URL;
    * ``malformed``: a row that cannot be read as expected (bad JSON, missing column), or a session whose
      URLs are all malformed (single malformed URLs inside an otherwise good session are dropped from it and
      counted in ``bad_urls``);
    * ``mislabelled``: no label, a label outside the classes given, or a long-format session whose rows
      disagree on the label.

    ``examples`` keeps the first few locations (``file:row``) of each kind. ``steps`` lists what was done
    afterwards (dedup, sampling), one line each.
    """

    files: List[str] = field(default_factory=list)
    rows: int = 0  # data rows read (header excluded)
    sessions: int = 0  # sessions kept
    problems: Dict[str, int] = field(default_factory=lambda: {k: 0 for k in PROBLEMS})
    examples: Dict[str, List[str]] = field(default_factory=lambda: {k: [] for k in PROBLEMS})
    bad_urls: int = 0
    truncated: int = 0  # sessions cut to max_len
    decoded_latin1: List[str] = field(default_factory=list)  # files that were not UTF-8
    steps: List[str] = field(default_factory=list)

    MAX_EXAMPLES = 5

    def problem(self, kind: str, where: str, detail: str) -> None:
        self.problems[kind] += 1
        if len(self.examples[kind]) < self.MAX_EXAMPLES:
            self.examples[kind].append(f"{where}: {detail}")

    @property
    def dropped(self) -> int:
        return sum(self.problems.values())

    def summary(self) -> str:
        """A few lines for the console and the report."""
        lines = [f"read {self.rows} rows from {len(self.files)} file(s); kept {self.sessions} sessions"]
        for kind in PROBLEMS:
            if self.problems[kind]:
                lines.append(f"left out {self.problems[kind]} {kind} row(s), e.g. " + "; ".join(self.examples[kind][:3]))
        if self.bad_urls:
            lines.append(f"dropped {self.bad_urls} malformed URL(s) inside otherwise good sessions")
        if self.truncated:
            lines.append(f"cut {self.truncated} session(s) to their first {MAX_SESSION} URLs")
        if self.decoded_latin1:
            lines.append("read as Latin-1 (not valid UTF-8): " + ", ".join(os.path.basename(f) for f in self.decoded_latin1))
        lines.extend(self.steps)
        return "\n".join(lines)

    def to_dict(self) -> Dict:
        return {"files": list(self.files), "rows": self.rows, "sessions": self.sessions,
                "problems": dict(self.problems), "examples": {k: list(v) for k, v in self.examples.items()},
                "bad_urls": self.bad_urls, "truncated": self.truncated, "decoded_latin1": list(self.decoded_latin1),
                "steps": list(self.steps)}


@dataclass
class UrlDataset:
    """Sessions of URLs with labels ``0..len(classes)-1``; ``where[i]`` is session i's ``file:row``."""

    sessions: List[List[str]]
    labels: List[int]
    classes: List[str]
    where: List[str] = field(default_factory=list)
    report: LoadReport = field(default_factory=LoadReport)

    def __len__(self) -> int:
        return len(self.sessions)

    def counts(self) -> Dict[str, int]:
        c = Counter(self.labels)
        return {name: c.get(i, 0) for i, name in enumerate(self.classes)}

    def subset(self, idx: Iterable[int], step: Optional[str] = None) -> "UrlDataset":
        """The sessions at ``idx`` (same classes); ``step`` is added to a copy of the report."""
        idx = [int(i) for i in idx]
        rep = LoadReport(**{k: (v.copy() if hasattr(v, "copy") else v) for k, v in vars(self.report).items()})
        rep.examples = {k: list(v) for k, v in self.report.examples.items()}
        rep.sessions = len(idx)
        if step:
            rep.steps.append(step)
        where = [self.where[i] for i in idx] if self.where else []
        return UrlDataset([self.sessions[i] for i in idx], [self.labels[i] for i in idx], list(self.classes), where, rep)


# ------------------------------------------------------------------------------------------ readers
MAX_BLANK_SHARE = 0.5  # blank rows of a file (or a class file) above which it is broken, not noisy


@contextlib.contextmanager
def _fields_of_any_length():
    """Lift the csv module's 128 KiB field limit while a reader runs (a URL with a long query string is data);
    the previous limit is restored afterwards."""
    old, limit = csv.field_size_limit(), sys.maxsize
    while True:
        try:
            csv.field_size_limit(limit)
            break
        except OverflowError:  # a C long of 32 bits (Windows)
            limit //= 2
    try:
        yield
    finally:
        csv.field_size_limit(old)


def _any_field_length(reader_fn):
    @functools.wraps(reader_fn)
    def wrapped(*args, **kwargs):
        with _fields_of_any_length():
            return reader_fn(*args, **kwargs)
    return wrapped


def _records(reader):
    """``(line, fields)`` of each CSV record after the header, ``line`` the record's first line (1-based)."""
    prev = reader.line_num
    for rec in reader:
        yield prev + 1, rec
        prev = reader.line_num


def _row_problem(rec, n_fields: int) -> Optional[Tuple[str, str]]:
    """``(kind, detail)`` of a CSV record that cannot be a row of ``n_fields`` fields, else ``None``."""
    if not rec or not any(c.strip() for c in rec):
        return "empty", "blank row"
    lines = max(c.count("\n") + c.count("\r") - c.count("\r\n") for c in rec)
    if lines:
        return "malformed", f"a quoted field holds {lines} line break(s) (a stray '\"'?)"
    if len(rec) != n_fields:
        return "malformed", (f"{len(rec)} fields, expected {n_fields} as in the header" if n_fields > 1 else
                             f"{len(rec)} fields; expected one URL (quote a URL holding commas)")
    return None


def _complete_rows(reader, n_fields: int, name: str, report: LoadReport):
    """``(line, where, fields)`` for each CSV row after the header with ``n_fields`` fields (``where`` =
    ``name:line``); blank, short/long and multi-line rows are counted in ``report`` (as empty/malformed,
    with their ``name:line``) and skipped."""
    for row, rec in _records(reader):
        where = f"{name}:{row}"
        report.rows += 1
        problem = _row_problem(rec, n_fields)
        if problem:
            report.problem(problem[0], where, problem[1])
        else:
            yield row, where, rec


def _check_blank_share(path: str, report: LoadReport, rows_before: int = 0, blank_before: int = 0) -> None:
    """More than :data:`MAX_BLANK_SHARE` of the rows this file added to ``report`` (since the counts
    ``*_before``) blank: a :class:`DataError` naming the file (a few are counted and reported)."""
    name = os.path.basename(path) + ":"
    first = next((e.split(": ", 1)[0] for e in report.examples["empty"] if e.startswith(name)), "")
    check_usable_share(path, report.problems["empty"] - blank_before, report.rows - rows_before,
                       "blank rows or sessions without a URL", MAX_BLANK_SHARE, first)


def _read_text(path: str, report: LoadReport, what: str) -> str:
    if not os.path.isfile(path):
        raise DataError(f"data file {path!r} not found; expected {what}")
    raw = read_plain_bytes(path, what)
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        report.decoded_latin1.append(path)
        return raw.decode("latin-1")  # never fails; ISCX holds a few such bytes


class _Builder:
    """Collects sessions, resolving labels to class indices and applying the session cap."""

    def __init__(self, classes: Optional[Sequence[str]], max_len: int, report: LoadReport) -> None:
        if max_len < 1:
            raise ConfigError(f"session cap 'max_len': got {max_len}; expected at least 1")
        self.fixed = classes is not None
        self.classes: List[str] = [str(c) for c in classes] if classes is not None else []
        self.index = {c: i for i, c in enumerate(self.classes)}
        self.max_len = max_len
        self.report = report
        self.sessions: List[List[str]] = []
        self.labels: List[int] = []
        self.where: List[str] = []

    def add(self, urls, label, where: str) -> None:
        rep = self.report
        if label is None or (isinstance(label, str) and not label.strip()) or isinstance(label, (list, dict, bool)):
            rep.problem("mislabelled", where, f"no usable label (got {label!r})")
            return
        name = str(label).strip()
        if self.fixed and name not in self.index:
            rep.problem("mislabelled", where, f"label {name!r} is not one of {', '.join(self.classes)}")
            return
        if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
            rep.problem("malformed", where, f"expected a list of URL strings, got {type(urls).__name__}")
            return
        urls = [u.strip() for u in urls if u.strip()]
        if not urls:
            rep.problem("empty", where, "no URL")
            return
        good = [u for u in urls if not is_malformed(u)]
        if not good:
            rep.problem("malformed", where, f"no well-formed URL (first: {urls[0][:60]!r})")
            return
        rep.bad_urls += len(urls) - len(good)
        if len(good) > self.max_len:
            rep.truncated += 1
            good = good[: self.max_len]
        if name not in self.index:  # classes in order of first appearance (only sessions kept count)
            self.index[name] = len(self.classes)
            self.classes.append(name)
        self.sessions.append(good)
        self.labels.append(self.index[name])
        self.where.append(where)

    def dataset(self) -> UrlDataset:
        if len(self.report.files) == 1:
            _check_blank_share(self.report.files[0], self.report)
        self.report.sessions = len(self.sessions)
        if not self.sessions:
            raise DataError(f"no usable session in {', '.join(map(repr, self.report.files))}:\n{self.report.summary()}")
        return UrlDataset(self.sessions, self.labels, self.classes, self.where, self.report)


def _split_urls(cell: str):
    cell = cell.strip()
    if cell.startswith("["):
        try:
            return json.loads(cell)
        except json.JSONDecodeError as err:
            return ValueError(f"the urls cell starts with '[' but is not a JSON array ({err.msg})")
    return cell.split()


def _norm(name: str) -> str:
    return name.strip().lower().lstrip("\ufeff")


@_any_field_length
def read_sessions(path: str, classes: Optional[Sequence[str]] = None, max_len: int = MAX_SESSION) -> UrlDataset:
    """Format (a): sessions from a ``.jsonl`` or ``.csv`` file (layouts in the module notes).

    ``classes`` fixes the label set and its order (other labels are counted as mislabelled); without it the
    classes are the labels met, in order of first appearance. Bad rows are counted in the dataset's
    ``report``; a file with no usable session, or a CSV without the needed columns, raises
    :class:`DataError`.
    """
    report = LoadReport(files=[path])
    builder = _Builder(classes, max_len, report)
    ext = os.path.splitext(path)[1].lower()
    name = os.path.basename(path)
    if ext in (".jsonl", ".ndjson"):
        text = _read_text(path, report, 'JSON lines, one {"urls": [...], "label": ...} object per line')
        for row, line in enumerate(text.splitlines(), start=1):
            where = f"{name}:{row}"
            if not line.strip():
                report.rows += 1
                report.problem("empty", where, "blank line")
                continue
            report.rows += 1
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as err:
                report.problem("malformed", where, f"not JSON ({err.msg})")
                continue
            if not isinstance(obj, dict) or "urls" not in obj or "label" not in obj:
                report.problem("malformed", where, 'expected an object with keys "urls" and "label"')
                continue
            builder.add(obj["urls"], obj["label"], where)
        return builder.dataset()
    if ext not in (".csv", ".tsv"):
        raise DataError(f"sessions file {path!r}: unknown extension {ext!r}; expected .csv, .tsv or .jsonl "
                        "(JSON lines: one session object per line)")
    what = "a CSV with columns label,urls (one session per row) or session,url,label (one visit per row)"
    text = _read_text(path, report, what)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter="\t" if ext == ".tsv" else ",")
    header = next(reader, None)
    if header is None:
        raise DataError(f"sessions file {path!r} is empty; expected {what}")
    cols = {_norm(h): i for i, h in enumerate(header)}
    if "label" not in cols:
        raise DataError(f"sessions file {path!r}: header {header!r} has no 'label' column; expected {what}")
    lab = cols["label"]
    if "urls" in cols:  # wide: one session per row
        uc = cols["urls"]
        for _, where, rec in _complete_rows(reader, len(header), name, report):
            urls = _split_urls(rec[uc])
            if isinstance(urls, ValueError):
                report.problem("malformed", where, str(urls))
                continue
            builder.add(urls, rec[lab], where)
        return builder.dataset()
    sess_col = cols.get("session", cols.get("session_id"))
    if sess_col is None or "url" not in cols:
        raise DataError(f"sessions file {path!r}: header {header!r} has neither a 'urls' column nor "
                        f"'session' and 'url' columns; expected {what}")
    uc = cols["url"]
    groups: "OrderedDict[str, Tuple[List[str], List[str], int]]" = OrderedDict()
    for row, where, rec in _complete_rows(reader, len(header), name, report):
        sid = rec[sess_col].strip()
        if not sid:
            report.problem("malformed", where, "no session id")
            continue
        urls, labels, first = groups.setdefault(sid, ([], [], row))
        urls.append(rec[uc])
        labels.append(rec[lab].strip())
    for sid, (urls, labels, first) in groups.items():
        where = f"{name}:{first} (session {sid})"
        distinct = sorted(set(lb for lb in labels if lb))
        if len(distinct) > 1:
            report.problem("mislabelled", where, f"its rows disagree on the label: {', '.join(distinct)}")
            continue
        builder.add(urls, distinct[0] if distinct else None, where)
    return builder.dataset()


def _class_name(stem: str) -> str:
    return ISCX_CLASSES.get(stem.lower(), stem)


@_any_field_length
def read_class_folder(folder: str, classes: Optional[Sequence[str]] = None, max_len: int = MAX_SESSION) -> UrlDataset:
    """Format (b): one ``.csv`` per class in ``folder`` (ISCX layout), each URL a session of one.

    Each file has a header naming the column (``URLs`` or ``url``, any case) and one URL per row; CRLF or LF
    line endings; a quoted field may hold commas. The class is the file's stem (ISCX's names are mapped,
    :data:`ISCX_CLASSES`); classes are in sorted file order unless ``classes`` is given (then exactly those
    files must be present). A row with several fields is malformed (a URL with a comma must be quoted).
    """
    what = "a folder with one CSV of URLs per class (header 'URLs', one URL per row)"
    if not os.path.isdir(folder):
        raise DataError(f"class folder {folder!r} not found or not a folder; expected {what}")
    files = sorted(f for f in os.listdir(folder) if f.lower().endswith(".csv"))
    by_class: Dict[str, str] = {}
    for f in files:
        cname = _class_name(os.path.splitext(f)[0])
        if cname in by_class:
            raise DataError(f"class folder {folder!r}: {by_class[cname]!r} and {f!r} both give class {cname!r}")
        by_class[cname] = f
    if classes is not None:
        missing = [c for c in classes if c not in by_class]
        if missing:
            raise DataError(f"class folder {folder!r}: no CSV for class(es) {', '.join(missing)}; "
                            f"found {', '.join(files) or 'no .csv file'}")
        order = [str(c) for c in classes]
    else:
        order = list(by_class)
    if len(order) < 2:
        raise DataError(f"class folder {folder!r} holds {len(order)} CSV file(s); expected {what}, at least two classes")
    report = LoadReport(files=[os.path.join(folder, by_class[c]) for c in order])
    builder = _Builder(order, max_len, report)
    for cname in order:
        path = os.path.join(folder, by_class[cname])
        text = _read_text(path, report, what)
        reader = csv.reader(io.StringIO(text, newline=""))
        header = next(reader, None)
        if header is None or len(header) != 1 or _norm(header[0]) not in ("urls", "url"):
            raise DataError(f"class file {path!r}: first line {header!r}; expected the header 'URLs' "
                            "(one column of URLs)")
        rows_before, blank_before = report.rows, report.problems["empty"]
        for _, where, rec in _complete_rows(reader, 1, by_class[cname], report):
            builder.add([rec[0]], cname, where)
        _check_blank_share(path, report, rows_before, blank_before)
    return builder.dataset()


def load_iscx(root: str, max_len: int = MAX_SESSION) -> UrlDataset:
    """ISCX-URL-2016 from ``<root>/url-iscx2016/`` (classes benign, malware, phishing, spam)."""
    if not root or not os.path.isdir(root):
        raise DataError(f"data root {root!r} is not a folder; give --data-dir or $ACTADAPT_DATA "
                        f"(the folder holding {ISCX_DIR}/)")
    return read_class_folder(os.path.join(root, ISCX_DIR), classes=sorted(ISCX_CLASSES.values()), max_len=max_len)


# ------------------------------------------------------------------------------------------ dedup, sampling, leakage
DEDUP_KEYS = ("tokens", "url")


def _key(session: Sequence[str], by: str, tok: Tokenizer):
    if by == "url":
        return tuple(session)
    return tuple(tuple(tok(u)) for u in session)


def deduplicate(ds: UrlDataset, by: str = "tokens", tokenizer: Optional[Tokenizer] = None) -> UrlDataset:
    """``ds`` with each distinct session kept once (its first occurrence), run *before* any split.

    ``by="tokens"`` (default) compares the sessions' word sequences under ``tokenizer`` (so URLs that
    differ only in what the tokeniser drops are duplicates: the model could not tell them apart);
    ``by="url"`` compares the URL strings. A key found under two or more labels is dropped in all its
    copies. What was done is appended to the report's ``steps``.
    """
    if by not in DEDUP_KEYS:
        raise ConfigError(f"dedup key: got {by!r}; expected one of {', '.join(DEDUP_KEYS)}")
    tok = tokenizer or Tokenizer()
    first: Dict = {}
    labels_of: Dict = {}
    keys = [_key(s, by, tok) for s in ds.sessions]
    for i, k in enumerate(keys):
        first.setdefault(k, i)
        labels_of.setdefault(k, set()).add(ds.labels[i])
    conflicting = {k for k, labs in labels_of.items() if len(labs) > 1}
    keep = sorted(i for k, i in first.items() if k not in conflicting)
    n_conf = sum(1 for k in keys if k in conflicting)
    before = ds.counts()
    out = ds.subset(keep)
    after = out.counts()
    per = ", ".join(f"{c} {before[c]}->{after[c]}" for c in ds.classes)
    out.report.steps.append(
        f"deduplicated by {by}: {len(ds)} -> {len(out)} sessions ({per}); dropped {n_conf} session(s) "
        f"of {len(conflicting)} key(s) found under several labels")
    return out


def balanced_sample(ds: UrlDataset, total: int, seed: int = 0, fill: bool = False) -> UrlDataset:
    """A class-balanced random subset of about ``total`` sessions: ``total // k`` per class.

    A class with fewer sessions gives all it has; with ``fill=True`` the shortfall is shared among the
    larger classes (so the total is met but the balance is not exact). ``total <= 0`` returns ``ds``.
    The per-class counts are appended to the report's ``steps``.
    """
    if total <= 0:
        return ds
    rng = random.Random(seed)
    pools = {c: [i for i, y in enumerate(ds.labels) if y == c] for c in range(len(ds.classes))}
    k = len(ds.classes)
    quota = {c: min(total // k, len(p)) for c, p in pools.items()}
    if fill:
        left = total - sum(quota.values())
        while left > 0:
            room = [c for c in pools if len(pools[c]) > quota[c]]
            if not room:
                break
            for c in room:
                if left == 0:
                    break
                quota[c] += 1
                left -= 1
    keep: List[int] = []
    for c, p in pools.items():
        keep.extend(rng.sample(p, quota[c]))
    short = [f"{ds.classes[c]} ({len(pools[c])} available)" for c in pools if len(pools[c]) < total // k]
    step = (f"class-balanced sample of {sum(quota.values())} sessions (target {total}, seed {seed}"
            f"{', fill' if fill else ''}): " + ", ".join(f"{ds.classes[c]} {quota[c]}" for c in pools))
    if short:
        step += "; short of the per-class quota " + str(total // k) + ": " + ", ".join(short)
    return ds.subset(sorted(keep), step)


def leaked_urls(ds: UrlDataset, train_idx: Iterable[int], test_idx: Iterable[int],
                tokenizer: Optional[Tokenizer] = None) -> List[Tuple[str, ...]]:
    """Sessions (as URL tuples) of the test part whose token sequence also occurs in the training part.
    Empty after :func:`deduplicate` for any split."""
    tok = tokenizer or Tokenizer()
    train = {_key(ds.sessions[i], "tokens", tok) for i in train_idx}
    return [tuple(ds.sessions[i]) for i in test_idx if _key(ds.sessions[i], "tokens", tok) in train]


# ------------------------------------------------------------------------------------------ Table 4's data
PAPER_SIZE = 13500  # sessions in the paper's data


@dataclass
class SessionKeys:
    """The config keys of the URL sessions (a table's config subclasses it; see :func:`prepare_sessions`)."""

    input: str = option("", help="your data instead of ISCX: a sessions .csv/.jsonl file or a folder of per-class CSVs")
    classes: str = option("", help="comma-separated label set and order for input (default: labels met / file stems)")
    max_session: int = option(50, min=1, help="URLs kept per session (paper: at most 50)")
    dedup: str = option("tokens", choices=("tokens", "url", "none"),
                        help="drop repeated sessions before splitting: same words (tokens), same strings (url)")
    sample: int = option(-1, min=-1, help="class-balanced sample of this many sessions (0: all; -1: 13,500, the "
                         "paper's size, on ISCX and all of a user's input)")
    fill: bool = option(False, help="give a small class's shortfall to the other classes to reach 'sample'")
    scheme: bool = option(False, help="tokeniser: keep the scheme as a word")
    host: bool = option(True, help="tokeniser: keep the host as a word")
    query: str = option("keys", choices=QUERY_MODES, help="tokeniser: query parameter names, name=value, or none")
    fragment: bool = option(False, help="tokeniser: keep the fragment as a word")

    def tokenizer(self) -> Tokenizer:
        return Tokenizer(scheme=self.scheme, host=self.host, query=self.query, fragment=self.fragment)

    def sessions(self, data_dir: str, folds: int, seed: int) -> Dict:
        """:func:`prepare_sessions` under these keys."""
        classes = tuple(c.strip() for c in self.classes.split(",") if c.strip())
        return prepare_sessions(data_dir, self.input, classes, self.max_session, self.dedup, self.sample, self.fill,
                                self.tokenizer(), folds, seed)

    def session_choices(self) -> Dict[str, str]:
        """What the sessions are where the paper is silent (a report's choices section)."""
        everything = self.sample == 0 or (self.sample < 0 and self.input)
        return {
            "data": "ISCX-URL-2016 single URLs (URL type, not user intent)" if not self.input else f"user data {self.input}",
            "dedup": f"by {self.dedup}, before splitting",
            "sample": "all (no sampling)" if everything
            else f"class-balanced, target {self.sample if self.sample > 0 else PAPER_SIZE} in all",
            "tokeniser": f"scheme {self.scheme}, host {self.host}, query {self.query}, fragment {self.fragment}",
        }


@functools.lru_cache(maxsize=2)
def prepare_sessions(data_dir: str, input: str, classes: tuple, max_session: int, dedup: str, sample: int, fill: bool,
                     tok: Tokenizer, folds: int, seed: int) -> Dict:
    """What Table 4 trains on, kept per worker process: the sessions of ``input`` (a sessions file or a folder
    of per-class CSVs) or, without one, of ISCX-URL-2016 under ``data_dir``; deduplicated (``dedup``: by
    ``tokens`` or ``url``, before any split), a class-balanced sample of ``sample`` (0: all; -1: the paper's
    13,500 on ISCX, all of a user's input) and stratified folds. Every random choice derives from ``seed``.

    Returns ``{"ds": UrlDataset, "folds": [(train_idx, test_idx), ...], "source": where the data came from}``.
    """
    from ..folds import stratified_folds
    from ..seeds import stable_seed

    if input:
        read = read_class_folder if os.path.isdir(input) else read_sessions
        ds, source = read(input, list(classes) or None, max_session), input
    else:
        if not data_dir:
            raise ConfigError("no data: give --data-dir or $ACTADAPT_DATA (the folder holding url-iscx2016/), "
                              "or --set input=YOUR_FILE")
        ds, source = load_iscx(data_dir, max_session), os.path.join(data_dir, ISCX_DIR)
    if dedup != "none":
        ds = deduplicate(ds, by=dedup, tokenizer=tok)
    if sample < 0:
        sample = 0 if input else PAPER_SIZE
    ds = balanced_sample(ds, sample, seed=stable_seed(seed, "sample") % (2**32), fill=fill)
    files = ds.report.files  # one per class for a class folder, in class order
    where = dict(zip(ds.classes, files)) if len(files) == len(ds.classes) > 1 else source
    return {"ds": ds, "source": source, "folds": stratified_folds(ds.labels, folds, stable_seed(seed, "folds"),
                                                                  classes=ds.classes, unit="session(s)", source=where)}
