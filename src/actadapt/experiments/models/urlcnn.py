r"""The URL-session classifier of Table 4 (PAPER.md §2.4): URL embeddings and a LeNet5-style text CNN.

A session (up to 50 URLs) becomes a sequence of ``L`` rows, each row a bag of word ids (see
:func:`encode_sessions`):

* ``rows="urls"``: one row per URL (``L = 50``), its words (at most ``max_words``); a URL's vector is the
  mean of its word vectors (the paper: each URL is a sentence of "/"-separated words, embedded into a
  vector);
* ``rows="words"``: one row per word of the session's URLs in order (``L = max_words``), for data whose
  sessions are single URLs (ISCX), where a sequence of one URL would leave the CNN nothing to convolve.

``rows="auto"`` picks ``words`` when every session has one URL, else ``urls``. Word vectors come either
from gensim's Word2Vec trained on the *training fold's* URLs only (:func:`train_word2vec`, the paper's
two-step approach; frozen by default) or are learned end to end (``embedding="learned"``). In both, the
vocabulary is built from the training fold alone: test words are unknown (id 1).

The network, LeNet5's layout (:mod:`.lenet`) on a sequence, with batch norm before every hidden activation::

    ids (N, L, W) -> embed (N, L, W, D) -> mean over the W words (N, L, D) -> (N, D, L)
      -> Conv1d(D, 20, 5, same) -> BN -> conv act -> max-pool 2   (N, 20, L/2)
      -> Conv1d(20, 50, 5, same) -> BN -> conv act -> max-pool 2  (N, 50, L/4)
      -> flatten -> Linear(50 L/4, 500) -> BN -> fc act           (N, 500)
      -> Linear(500, classes)                                     (N, classes) logits

The activations are named and built by the package's one factory (:func:`actadapt.get_activation`); adaptive
ones carry one alpha per channel (conv) or neuron (FC), along dim 1.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...activations import get_activation
from ..config import ConfigError, option
from ..data.urls import Tokenizer, UrlDataset

__all__ = ["GRID", "UrlCNN", "UrlCNNSettings", "UrlCNNKeys", "build_vocab", "train_word2vec", "encode_sessions", "metrics",
           "resolve_rows", "fold_vocab", "fit_evaluate"]

GRID = ("ReLU", "AReLU", "AGumb")  # Table 4's rows (conv) and columns (fc)
PAD, UNK = 0, 1


# ------------------------------------------------------------------------------------------ vocabulary, vectors
def build_vocab(sentences: Sequence[Sequence[str]], min_count: int = 1) -> Dict[str, int]:
    """word -> id from 2 (0 padding, 1 unknown) for words seen at least ``min_count`` times, by first
    appearance."""
    counts: Dict[str, int] = {}
    for s in sentences:
        for w in s:
            counts[w] = counts.get(w, 0) + 1
    index: Dict[str, int] = {}
    for w, c in counts.items():
        if c >= min_count:
            index[w] = len(index) + 2
    return index


def train_word2vec(sentences: Sequence[Sequence[str]], dim: int = 50, seed: int = 0, epochs: int = 5,
                   window: int = 5, min_count: int = 1, sg: int = 1) -> Tuple[Dict[str, int], Tensor]:
    """gensim Word2Vec on ``sentences`` (one URL's words each; pass the training fold only).

    Returns ``(index, vectors)``: word -> id from 2, and a ``(len(index) + 2, dim)`` float tensor whose rows
    0 (padding) and 1 (unknown) are zero. One worker thread, so a seed gives the same vectors.
    """
    try:
        from gensim.models import Word2Vec
    except ImportError:  # pragma: no cover - gensim is in the experiments extra
        raise ConfigError("embedding 'word2vec' needs gensim: pip install 'actadapt[experiments]' "
                          "(or use embedding=learned)") from None
    sentences = [list(s) for s in sentences if s]
    if not sentences:
        raise ConfigError("train_word2vec: no training sentence with a word")
    model = Word2Vec(sentences=sentences, vector_size=dim, window=window, min_count=min_count, sg=sg,
                     workers=1, seed=seed, epochs=epochs)
    words = list(model.wv.index_to_key)
    index = {w: i + 2 for i, w in enumerate(words)}
    vectors = torch.zeros(len(words) + 2, dim)
    if words:
        vectors[2:] = torch.from_numpy(model.wv.vectors.copy())
    return index, vectors


def encode_sessions(sessions: Sequence[Sequence[str]], tokenizer: Tokenizer, index: Dict[str, int], rows: str,
                    max_urls: int = 50, max_words: int = 16) -> Tensor:
    """``(N, L, W)`` int64 word ids (0 padding, 1 unknown), see the module notes.

    ``rows="urls"``: ``L = max_urls``, ``W = max_words`` (a URL's first ``max_words`` words);
    ``rows="words"``: ``L = max_words`` (the session's first words, URL after URL), ``W = 1``.
    """
    if rows not in ("urls", "words"):
        raise ConfigError(f"config key 'rows': got {rows!r}; expected urls, words or auto")
    n = len(sessions)
    if rows == "urls":
        out = torch.zeros(n, max_urls, max_words, dtype=torch.long)
        for i, s in enumerate(sessions):
            for j, url in enumerate(s[:max_urls]):
                ids = [index.get(w, UNK) for w in tokenizer(url)[:max_words]]
                if ids:
                    out[i, j, : len(ids)] = torch.tensor(ids)
        return out
    out = torch.zeros(n, max_words, 1, dtype=torch.long)
    for i, s in enumerate(sessions):
        ids: List[int] = []
        for url in s:
            ids.extend(index.get(w, UNK) for w in tokenizer(url))
            if len(ids) >= max_words:
                break
        ids = ids[:max_words]
        if ids:
            out[i, : len(ids), 0] = torch.tensor(ids)
    return out


# ------------------------------------------------------------------------------------------ model
class UrlCNN(nn.Module):
    r"""LeNet5-style CNN over a sequence of URL (or word) vectors; see the module notes.

    Args:
        num_words (int): rows of the embedding table (vocabulary + 2).
        seq_len (int): ``L``, the rows per session (at least 4).
        num_classes (int): outputs.
        dim (int): embedding size. Default: ``50``
        vectors (Tensor, optional): ``(num_words, dim)`` initial vectors (Word2Vec). Default: ``None`` (random)
        static (bool): freeze the embeddings. Default: ``True`` with ``vectors``, else ``False``
        conv_act (str): activation of both conv layers, a name of :func:`actadapt.get_activation`.
            Default: ``"ReLU"``
        fc_act (str): activation of the hidden FC layer. Default: ``"ReLU"``
        channels ((int, int)): feature maps. Default: ``(20, 50)``
        kernel (int): convolution width. Default: ``5``
        hidden (int): FC hidden neurons. Default: ``500``
        alpha_init (float): initial alpha. Default: ``1.0``

    Shape:
        - Input: ``(N, L, W)`` int64 word ids, 0 = padding.
        - Output: ``(N, num_classes)`` logits.
    """

    def __init__(self, num_words: int, seq_len: int, num_classes: int, dim: int = 50, vectors: Optional[Tensor] = None,
                 static: Optional[bool] = None, conv_act: str = "ReLU", fc_act: str = "ReLU",
                 channels: Tuple[int, int] = (20, 50), kernel: int = 5, hidden: int = 500,
                 alpha_init: float = 1.0) -> None:
        super().__init__()
        if seq_len < 4:
            raise ConfigError(f"UrlCNN: seq_len {seq_len} is too short for two 2x pools; expected at least 4")
        if vectors is not None:
            num_words, dim = vectors.shape
        self.embed = nn.Embedding(num_words, dim, padding_idx=PAD)
        if vectors is not None:
            with torch.no_grad():
                self.embed.weight.copy_(vectors)
        self.embed.weight.requires_grad_(not (vectors is not None if static is None else static))
        c1, c2 = channels
        self.conv1 = nn.Conv1d(dim, c1, kernel, padding=kernel // 2, bias=False)
        self.bn1 = nn.BatchNorm1d(c1)
        self.act1 = get_activation(conv_act, num_parameters=c1, dim=1, init=alpha_init)
        self.conv2 = nn.Conv1d(c1, c2, kernel, padding=kernel // 2, bias=False)
        self.bn2 = nn.BatchNorm1d(c2)
        self.act2 = get_activation(conv_act, num_parameters=c2, dim=1, init=alpha_init)
        flat = c2 * ((seq_len // 2) // 2)
        self.fc = nn.Linear(flat, hidden, bias=False)
        self.bn3 = nn.BatchNorm1d(hidden)
        self.act3 = get_activation(fc_act, num_parameters=hidden, dim=1, init=alpha_init)
        self.out = nn.Linear(hidden, num_classes)

    def forward(self, ids: Tensor) -> Tensor:
        mask = (ids != PAD).unsqueeze(-1).to(self.embed.weight.dtype)  # (N, L, W, 1)
        e = self.embed(ids) * mask  # (N, L, W, D)
        x = e.sum(2) / mask.sum(2).clamp_min(1.0)  # (N, L, D): mean word vector of each row
        x = x.transpose(1, 2)  # (N, D, L)
        x = F.max_pool1d(self.act1(self.bn1(self.conv1(x))), 2)  # (N, 20, L/2)
        x = F.max_pool1d(self.act2(self.bn2(self.conv2(x))), 2)  # (N, 50, L/4)
        x = self.act3(self.bn3(self.fc(x.flatten(1))))  # (N, hidden)
        return self.out(x)


# ------------------------------------------------------------------------------------------ training, metrics
@dataclass
class UrlCNNSettings:
    """Everything one fold needs (Table 4's config and the user-data command fill it)."""

    conv_act: str = "ReLU"
    fc_act: str = "ReLU"
    embedding: str = "word2vec"  # or "learned"
    static: bool = True  # freeze Word2Vec vectors (ignored for "learned")
    dim: int = 50
    rows: str = "auto"
    max_urls: int = 50
    max_words: int = 16
    min_count: int = 1
    w2v_epochs: int = 5
    epochs: int = 10
    batch: int = 50
    lr: float = 1e-3
    weight_decay: float = 0.0
    hidden: int = 500
    alpha_init: float = 1.0
    seed: int = 0


@dataclass
class UrlCNNKeys:
    """The config keys of the URL CNN and its training (a table's config subclasses it)."""

    embedding: str = option("word2vec", choices=("word2vec", "learned"),
                            help="Word2Vec on the training fold (the paper's two steps) or learned end to end")
    static: bool = option(True, help="freeze the Word2Vec vectors")
    dim: int = option(50, min=2, help="embedding size")
    rows: str = option("auto", choices=("auto", "urls", "words"),
                       help="CNN sequence: one row per URL (sessions) or per word (single URLs); auto picks")
    max_words: int = option(16, min=1, help="words per URL (rows=urls) or per session (rows=words)")
    min_count: int = option(1, min=1, help="words seen fewer times in the training fold are unknown")
    w2v_epochs: int = option(5, min=1, help="Word2Vec epochs")
    epochs: int = option(10, min=1, help="training epochs")
    batch_size: int = option(50, min=2, help="minibatch size")
    lr: float = option(1e-3, min=0.0, help="Adam learning rate")
    weight_decay: float = option(0.0, min=0.0, help="Adam weight decay")
    hidden: int = option(500, min=1, help="FC hidden neurons")

    def urlcnn_settings(self, conv: str, fc: str, max_urls: int, alpha_init: float, seed: int) -> UrlCNNSettings:
        return UrlCNNSettings(conv_act=conv, fc_act=fc, embedding=self.embedding, static=self.static, dim=self.dim,
                              rows=self.rows, max_urls=max_urls, max_words=self.max_words, min_count=self.min_count,
                              w2v_epochs=self.w2v_epochs, epochs=self.epochs, batch=self.batch_size, lr=self.lr,
                              weight_decay=self.weight_decay, hidden=self.hidden, alpha_init=alpha_init, seed=seed)

    def urlcnn_choices(self) -> Dict[str, str]:
        """What the model's training does where the paper is silent (a report's choices section)."""
        frozen = " (training fold only, frozen)" if self.static and self.embedding == "word2vec" else ""
        return {"embedding": self.embedding + frozen,
                "optimiser": f"Adam lr {self.lr:g}, batch {self.batch_size}, {self.epochs} epochs (the paper gives none)"}


def metrics(y_true: Sequence[int], y_pred: Sequence[int], num_classes: int) -> Dict:
    """Accuracy, macro precision and recall (the paper's P and R; a class never predicted has precision 0),
    per-class P/R and the confusion matrix (rows true, columns predicted), all in percent but the matrix."""
    import numpy as np

    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(cm, (np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)), 1)
    tp = np.diag(cm).astype(float)
    pred = cm.sum(0)
    true = cm.sum(1)
    prec = np.divide(tp, pred, out=np.zeros_like(tp), where=pred > 0)
    rec = np.divide(tp, true, out=np.zeros_like(tp), where=true > 0)
    present = true > 0  # macro averages over the classes present in the test part
    return {
        "accuracy": 100.0 * float(tp.sum()) / max(int(cm.sum()), 1),
        "precision": 100.0 * float(prec[present].mean()) if present.any() else 0.0,
        "recall": 100.0 * float(rec[present].mean()) if present.any() else 0.0,
        "precision_per_class": [100.0 * float(p) for p in prec],
        "recall_per_class": [100.0 * float(r) for r in rec],
        "confusion": cm.tolist(),
    }


def _predict(model: nn.Module, x: Tensor, batch: int = 500) -> Tensor:
    model.eval()
    with torch.no_grad():
        return torch.cat([model(x[i: i + batch]).argmax(1) for i in range(0, len(x), batch)]) if len(x) else x[:0, 0, 0]


def resolve_rows(ds: UrlDataset, rows: str) -> str:
    """``rows``, with ``"auto"`` read as ``"words"`` when every session has one URL, else ``"urls"``."""
    if rows == "auto":
        return "words" if all(len(x) == 1 for x in ds.sessions) else "urls"
    return rows


def fold_vocab(ds: UrlDataset, train_idx: Sequence[int], s: UrlCNNSettings,
               tokenizer: Optional[Tokenizer] = None) -> Tuple[Dict[str, int], Optional[Tensor]]:
    """``(index, vectors)`` from the training sessions only: Word2Vec's, or a plain vocabulary (vectors
    ``None``) for ``embedding="learned"``."""
    tok = tokenizer or Tokenizer()
    sentences = [tok(u) for i in train_idx for u in ds.sessions[i]]  # one URL = one sentence
    if s.embedding == "word2vec":
        return train_word2vec(sentences, s.dim, s.seed, s.w2v_epochs, min_count=s.min_count)
    if s.embedding == "learned":
        return build_vocab(sentences, s.min_count), None
    raise ConfigError(f"config key 'embedding': got {s.embedding!r}; expected word2vec or learned")


def fit_evaluate(ds: UrlDataset, train_idx: Sequence[int], test_idx: Sequence[int], s: UrlCNNSettings,
                 tokenizer: Optional[Tokenizer] = None, progress: Optional[Callable[[int], None]] = None,
                 vocab: Optional[Tuple[Dict[str, int], Optional[Tensor]]] = None, checkpoint=None) -> Dict:
    """Train a :class:`UrlCNN` on ``ds[train_idx]`` with :func:`..loop.train_epochs` (Adam, shuffled batches,
    a last batch of one example skipped for batch norm) and evaluate on ``ds[test_idx]`` (one CV fold).

    The vocabulary and Word2Vec vectors come from the training sessions only (``vocab``: an ``(index,
    vectors)`` pair already made from them, shared by the cells of a fold). ``progress(epoch)`` is called
    after every epoch; ``checkpoint`` (a :class:`..loop.Checkpoint`) saves the state after every epoch, so a
    resumed fold continues it. Returns the test :func:`metrics` plus ``train_loss``, ``train_error`` and
    ``test_error`` per epoch (``curve_epochs``), ``train_accuracy``, ``vocab``, ``rows``, ``seconds``,
    ``diverged_epoch`` (the epoch whose loss, or the final weights, became non-finite; training stops there;
    ``None`` normally) and the settings.
    """
    from ..loop import train_epochs

    start = time.time()
    tok = tokenizer or Tokenizer()
    torch.manual_seed(s.seed)
    train_sessions = [ds.sessions[i] for i in train_idx]
    rows = resolve_rows(ds, s.rows)
    index, vectors = vocab if vocab is not None else fold_vocab(ds, train_idx, s, tok)
    xtr = encode_sessions(train_sessions, tok, index, rows, s.max_urls, s.max_words)
    xte = encode_sessions([ds.sessions[i] for i in test_idx], tok, index, rows, s.max_urls, s.max_words)
    ytr = torch.tensor([ds.labels[i] for i in train_idx])
    yte = [ds.labels[i] for i in test_idx]
    k = len(ds.classes)
    model = UrlCNN(len(index) + 2, xtr.shape[1], k, s.dim, vectors, s.static if vectors is not None else False,
                   s.conv_act, s.fc_act, hidden=s.hidden, alpha_init=s.alpha_init)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=s.lr, weight_decay=s.weight_decay)
    gen = torch.Generator().manual_seed(s.seed)

    def batches(epoch: int) -> List[Tensor]:
        order = torch.randperm(len(xtr), generator=gen).split(s.batch)
        return [idx for idx in order if len(idx) >= 2]  # batch norm needs two examples

    def test_error(m: nn.Module) -> Dict[str, float]:
        return {"test_error": 1.0 - metrics(yte, _predict(m, xte).tolist(), k)["accuracy"] / 100.0}

    hist, diverged_epoch = train_epochs(model, opt, batches, lambda idx: (xtr[idx], ytr[idx]), epochs=s.epochs,
                                        evaluate=test_error, generators=(gen,), checkpoint=checkpoint,
                                        progress=progress)
    out = metrics(yte, _predict(model, xte).tolist(), k)
    out["train_accuracy"] = metrics(ytr.tolist(), _predict(model, xtr).tolist(), k)["accuracy"]
    majority = max(range(k), key=lambda c: int((ytr == c).sum()))
    out["majority_rate"] = 100.0 * sum(y == majority for y in yte) / max(len(yte), 1)
    from ...inspect import alpha_dict

    out["alphas"] = {name: [float(v) for v in t.reshape(-1)] for name, t in alpha_dict(model).items()}
    out.update(train_loss=hist["train_loss"], train_error=hist["train_error"], test_error=hist["test_error"],
               curve_epochs=hist["epochs"], vocab=len(index), rows=rows, seq_len=int(xtr.shape[1]),
               diverged_epoch=diverged_epoch,
               unknown_test_words=float((xte == UNK).sum()) / max(float((xte != PAD).sum()), 1.0),
               seconds=time.time() - start, settings=asdict(s))
    return out
