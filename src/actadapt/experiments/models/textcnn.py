r"""Kim's (2014) sentence CNN with the paper's changes (PAPER.md §2.3), and its training loop.

::

    tokens (N, L) -> embedding (N, L, D), static or fine-tuned
      -> for each width w in (3, 4, 5): Conv1d(D, 100, w) -> conv activation -> max over time  # (N, 100)
      -> concat (N, 300) -> [dropout 0.5] -> Linear(300, 100) -> FC activation                  # paper's FC
      -> [dropout 0.5] -> Linear(100, 2) -> softmax (in the cross-entropy)

The bracketed dropouts are where ``dropout_at`` puts them: ``"output"`` (the default) the second only,
``"pooled"`` the first only, ``"linear"`` both (before each linear layer). Kim applies dropout "on the
penultimate layer", the one feeding the softmax: in his network (no hidden layer) the pooled features, in the
paper's the hidden FC layer's output, hence the default. With dropout at both places the AGumb conv / AReLU FC
cell of Table 3 stays at chance for all 50 epochs (docs/REPRODUCTION.md).

``hidden=0`` gives Kim's original (pooled features straight to the softmax). The conv and FC activations are
named independently and built by the package's one factory, :func:`actadapt.get_activation`; the adaptive
ones carry one alpha per feature map (dim 1 of the conv output ``(N, C, L)``) or per hidden neuron.

Padding (:func:`batch_tokens`): Kim pads every sentence with ``max(widths) - 1`` zero vectors in front and
pads the back up to the longest sentence of the data set. Here the back is padded only up to the longest
sentence of the minibatch plus ``max(widths)``. Every window that touches a word is the same as Kim's, and
every sentence keeps at least one all-zero window per width, whose feature ``act(bias)`` Kim's max-pooling
also sees, so the pooled features equal Kim's (for all but the data set's longest sentences) at a fraction
of the cost.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...activations import get_activation
from ..config import ConfigError, option
from .weight_init import LINEAR_INITS, glorot_uniform_, init_linear_

__all__ = ["DROPOUT_PLACES", "KimCNN", "KimCNNKeys", "training_memory", "batch_tokens", "TrainSettings", "FoldResult",
           "train_textcnn"]

# where KimCNN's dropout acts: before each linear layer, before the hidden FC layer only, before the output only
DROPOUT_PLACES = ("linear", "pooled", "output")


class KimCNN(nn.Module):
    r"""Kim's CNN for sentence classification with a fully connected hidden layer (PAPER.md §2.3).

    Args:
        embeddings (Tensor): ``(V + 1, D)`` word vectors, row 0 the padding vector.
        widths (sequence of int): filter widths. Default: ``(3, 4, 5)``
        maps (int): feature maps per width. Default: ``100``
        hidden (int): neurons of the FC hidden layer; 0 for Kim's original (no hidden layer). Default: ``100``
        num_classes (int): outputs. Default: ``2``
        conv_act (str): activation after each convolution, a name of :func:`actadapt.get_activation`.
            Default: ``"ReLU"``
        fc_act (str): activation of the hidden layer. Default: ``"ReLU"``
        dropout (float): dropout rate, at the places ``dropout_at`` names. Default: ``0.5``
        static (bool): freeze the embeddings (CNN-static) or fine-tune them (CNN-non-static). Default: ``True``
        alpha_init (float): initial alpha of the adaptive activations. Default: ``1.0``
        fc_init (str): initialisation of the fully connected layers (hidden FC and output) by
            :meth:`reset_parameters`, one of :data:`.weight_init.LINEAR_INITS`: ``"glorot"`` (Kim's code:
            :math:`U(\pm\sqrt{6/(\text{fan\_in}+\text{fan\_out})})`, zero biases), ``"lecun"`` (the paper's Table 1
            students: weights and biases :math:`\sim \mathcal N(0, 1/\text{fan\_in})`) or ``"torch"`` (``nn.Linear``'s
            default: weights and biases :math:`\sim U(\pm 1/\sqrt{\text{fan\_in}})`). The convolutions are
            Glorot-initialised (Kim's) whatever ``fc_init``. Default: ``"glorot"``
        dropout_at (str): where dropout acts, one of :data:`DROPOUT_PLACES`: ``"linear"`` (before each linear layer:
            on the pooled features ``(N, maps * len(widths))`` and on the FC output ``(N, hidden)``), ``"pooled"``
            (on the pooled features only) or ``"output"`` (before the output layer only). With
            ``hidden=0`` the pooled features are the output layer's input, and every place means dropout there
            once. Default: ``"output"`` (Kim's "dropout on the penultimate layer": in the paper's network, with
            its hidden FC layer, that layer's output)

    Shape:
        - Input: ``(N, L)`` int64 word indices, 0 = padding, ``L >= max(widths)`` (see :func:`batch_tokens`).
        - Output: ``(N, num_classes)`` logits.
    """

    max_projection = 1 << 25  # elements of the (N, L, sum_w w * maps) projection above which Conv1d is used

    def __init__(self, embeddings: Tensor, widths: Sequence[int] = (3, 4, 5), maps: int = 100, hidden: int = 100,
                 num_classes: int = 2, conv_act: str = "ReLU", fc_act: str = "ReLU", dropout: float = 0.5,
                 static: bool = True, alpha_init: float = 1.0, fc_init: str = "glorot",
                 dropout_at: str = "output") -> None:
        super().__init__()
        if fc_init not in LINEAR_INITS:
            raise ValueError(f"unknown fc_init {fc_init!r}; valid: {', '.join(LINEAR_INITS)}")
        if dropout_at not in DROPOUT_PLACES:
            raise ValueError(f"unknown dropout_at {dropout_at!r}; valid: {', '.join(DROPOUT_PLACES)}")
        self.fc_init, self.dropout_at = fc_init, dropout_at
        dim = embeddings.shape[1]
        self.widths = tuple(int(w) for w in widths)
        self.static = bool(static)
        self.embedding = nn.Embedding.from_pretrained(embeddings.float(), freeze=static, padding_idx=0)
        self.convs = nn.ModuleList(nn.Conv1d(dim, maps, w) for w in self.widths)
        self.conv_acts = nn.ModuleList(get_activation(conv_act, num_parameters=maps, dim=1, init=alpha_init)
                                       for _ in self.widths)
        # before the hidden FC layer (on the pooled features) and before the output layer; nn.Identity where off
        on_pooled = hidden > 0 and dropout_at in ("linear", "pooled")
        on_output = hidden == 0 or dropout_at in ("linear", "output")
        self.pooled_dropout: nn.Module = nn.Dropout(dropout) if on_pooled else nn.Identity()
        self.output_dropout: nn.Module = nn.Dropout(dropout) if on_output else nn.Identity()
        pooled = maps * len(self.widths)
        if hidden > 0:
            self.fc: Optional[nn.Linear] = nn.Linear(pooled, hidden)
            self.fc_act: nn.Module = get_activation(fc_act, num_parameters=hidden, dim=1, init=alpha_init)
        else:
            self.fc, self.fc_act = None, nn.Identity()
        self.out = nn.Linear(hidden if hidden > 0 else pooled, num_classes)
        self.conv_act_name, self.fc_act_name = conv_act, fc_act

    def reset_parameters(self, generator: Optional[torch.Generator] = None) -> None:
        """Draw the weights from ``generator``, in a fixed order: the convolutions Glorot-uniform with zero biases
        (Kim's), then the hidden FC layer and the output layer by ``fc_init`` (:func:`.weight_init.init_linear_`).
        The same generator state gives the same convolutions whatever ``fc_init``."""
        for conv in self.convs:
            glorot_uniform_(conv, generator)
        for m in self.linear_layers():
            init_linear_(m, self.fc_init, generator)

    def linear_layers(self) -> List[nn.Linear]:
        """The fully connected layers, whose weight rows Kim's max-norm constraint bounds."""
        return [m for m in (self.fc, self.out) if m is not None]

    def conv_features(self, tokens: Tensor) -> List[Tensor]:
        r"""The convolutions' pre-activations, ``(N, maps, L - w + 1)`` per width ``w``.

        A convolution is linear in the word vectors: :math:`c_t = b + \sum_{k<w} W_k e_{t+k}`. So each *distinct*
        word of the batch is projected once by every :math:`W_k` (one matrix product over the ~600 distinct
        words of a batch instead of the ~1,500-2,700 positions, padding included) and the products are
        gathered and shifted into place. Equal to ``Conv1d`` up to rounding (tested), 2-3x faster on CPU for
        sentences. Batches whose projection would exceed :attr:`max_projection` elements (long reviews of
        polarity v2.0) use ``Conv1d`` itself.
        """
        # every (width, offset k) block of every conv: (sum_w w * maps, D)
        weight = torch.cat([conv.weight.permute(2, 0, 1).reshape(-1, conv.weight.shape[1]) for conv in self.convs])
        if tokens.numel() * weight.shape[0] > self.max_projection:  # long documents: Conv1d needs less memory
            x = self.embedding(tokens).transpose(1, 2)  # (N, D, L)
            return [conv(x) for conv in self.convs]
        uniq, inv = torch.unique(tokens, return_inverse=True)  # (U,), (N, L)
        x = self.embedding(uniq)  # (U, D)
        # F.embedding rather than proj[inv]: its backward is a fast sorted scatter, not index_put
        proj = F.embedding(inv, x @ weight.t())  # (N, L, sum_w w * maps)
        # split (one backward cat for all blocks) before slicing in time (each slice's backward is then small)
        blocks = iter(proj.split(self.convs[0].out_channels, dim=2))  # (N, L, maps) each
        length, out = tokens.shape[1], []
        for conv, w in zip(self.convs, self.widths):
            steps = length - w + 1
            c = conv.bias
            for k in range(w):  # c_t += W_k e_{t+k}
                c = c + next(blocks)[:, k:k + steps]
            out.append(c.transpose(1, 2))  # (N, maps, L - w + 1)
        return out

    def forward(self, tokens: Tensor) -> Tensor:
        # max over time of each activated feature map  # (N, maps) per width
        pooled = [act(c).amax(dim=2) for c, act in zip(self.conv_features(tokens), self.conv_acts)]
        h = torch.cat(pooled, dim=1)  # (N, maps * len(widths))
        if self.fc is not None:
            h = self.fc_act(self.fc(self.pooled_dropout(h)))  # (N, hidden)
        return self.out(self.output_dropout(h))  # (N, num_classes)


def training_memory(dim: int, widths: Sequence[int], maps: int, hidden: int, batch_size: int, tokens: int,
                    static: bool, types: int = 50_000, eval_batch: int = 500) -> int:
    """Peak bytes of training a :class:`KimCNN` (float32): the embedding matrix of up to ``types`` words x
    ``dim``, x2 (numpy and torch), x4 when fine-tuned (gradient, two Adadelta states); the parameters x4; a
    training batch's activations (``12 batch L (D + maps widths)``, the word projection capped at
    :attr:`KimCNN.max_projection`) and an evaluation batch (``4 eval_batch L (D + 2 maps widths)``), ``L`` =
    ``tokens`` per document plus the padding of :func:`batch_tokens`."""
    L = tokens + 2 * max(widths)
    conv, pooled = maps * sum(widths), maps * len(widths)
    params = dim * conv + pooled * max(hidden, 1) + 2 * max(hidden, pooled)
    cap = 4 * KimCNN.max_projection
    train = 12 * batch_size * L * (dim + pooled) + 3 * min(4 * batch_size * L * conv, cap)
    evaluate = 4 * eval_batch * L * (dim + 2 * pooled) + min(4 * eval_batch * L * conv, cap)
    return types * dim * 4 * (2 if static else 4) + 16 * params + train + evaluate


def batch_tokens(seqs: Sequence[Sequence[int]], max_width: int) -> Tensor:
    """``(N, L)`` int64: ``max_width - 1`` zeros, the words, zeros up to the batch's longest + ``max_width``."""
    left = max_width - 1
    length = left + max((len(s) for s in seqs), default=0) + max_width
    out = torch.zeros(len(seqs), length, dtype=torch.long)
    for i, s in enumerate(seqs):
        if len(s):
            out[i, left:left + len(s)] = torch.as_tensor(s, dtype=torch.long)
    return out


# ------------------------------------------------------------------------------------------ training
@dataclass
class TrainSettings:
    epochs: int = 50
    batch_size: int = 50
    optimizer: str = "sgd"  # "sgd" (plain steps, the paper's eqs. 4-6) or "adadelta" (Kim)
    lr: float = 0.05
    momentum: float = 0.0
    adadelta_rho: float = 0.95
    adadelta_eps: float = 1e-6
    max_norm: float = 3.0  # 0: off
    bucket: bool = False
    eval_batch: int = 500


@dataclass
class FoldResult:
    """Per-epoch curves (errors as fractions) and the final state of one trained model."""

    epochs: List[int] = field(default_factory=list)
    train_loss: List[float] = field(default_factory=list)
    train_error: List[float] = field(default_factory=list)
    dev_error: List[float] = field(default_factory=list)
    test_error: List[float] = field(default_factory=list)
    seconds: float = 0.0
    diverged_epoch: Optional[int] = None  # first epoch with a non-finite loss (or weights), see ..divergence


def _make_optimizer(model: nn.Module, s: TrainSettings) -> torch.optim.Optimizer:
    from ...training import param_groups

    groups = param_groups(model, lr=s.lr)
    if s.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=s.lr, momentum=s.momentum)
    if s.optimizer == "adadelta":
        return torch.optim.Adadelta(groups, lr=s.lr, rho=s.adadelta_rho, eps=s.adadelta_eps)
    raise ValueError(f"unknown optimizer {s.optimizer!r}; valid: sgd, adadelta")


def _batches(n: int, lengths: Sequence[int], s: TrainSettings, gen: torch.Generator) -> List[Tensor]:
    """Minibatch index lists for one epoch: a random permutation cut into batches (the last one kept).

    With ``bucket``, each chunk of 20 batches of the permutation is sorted by length before cutting, so a
    batch holds sentences of similar length (less padding); the batch order is then shuffled.
    """
    perm = torch.randperm(n, generator=gen)
    if s.bucket:
        chunk = 20 * s.batch_size
        parts = []
        for i in range(0, n, chunk):
            c = perm[i:i + chunk]
            c = c[torch.argsort(torch.as_tensor([lengths[j] for j in c.tolist()]), stable=True)]
            parts.append(c)
        perm = torch.cat(parts)
        batches = list(perm.split(s.batch_size))
        order = torch.randperm(len(batches), generator=gen).tolist()
        return [batches[i] for i in order]
    return list(perm.split(s.batch_size))


@torch.no_grad()
def _error(model: KimCNN, seqs: Sequence[Sequence[int]], labels: Tensor, batch: int) -> float:
    if len(seqs) == 0:
        return math.nan
    model.eval()
    wrong = 0
    order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]))  # length-sorted: less padding, same result
    for i in range(0, len(order), batch):
        idx = order[i:i + batch]
        logits = model(batch_tokens([seqs[j] for j in idx], max(model.widths)))
        wrong += int((logits.argmax(1) != labels[idx]).sum())
    return wrong / len(seqs)


def train_textcnn(
    model: KimCNN,
    train: tuple,
    dev: tuple,
    test: tuple,
    settings: TrainSettings,
    shuffle_seed: int,
    progress: Optional[Callable[[int], None]] = None,
    checkpoint=None,
) -> FoldResult:
    """Train ``model`` on ``train = (seqs, labels)`` with :func:`..loop.train_epochs`; after every epoch record
    the running training loss and error (dropout on, over the epoch's minibatches) and the dev and test
    errors (dropout off). Each step ends with Kim's max-norm: every FC unit's incoming weight vector is
    rescaled to L2 norm at most ``max_norm``.

    Dropout masks come from torch's global generator (seed it before); minibatch order from ``shuffle_seed``.
    ``checkpoint`` (a :class:`..loop.Checkpoint`) saves both after every epoch, so a resumed fold continues
    them.
    """
    from ..loop import train_epochs

    s = settings
    seqs, y = train[0], torch.as_tensor(train[1], dtype=torch.long)
    dev_y, test_y = torch.as_tensor(dev[1], dtype=torch.long), torch.as_tensor(test[1], dtype=torch.long)
    lengths = [len(q) for q in seqs]
    opt = _make_optimizer(model, s)
    gen = torch.Generator().manual_seed(shuffle_seed)
    linear = model.linear_layers()
    width = max(model.widths)

    def max_norm() -> None:
        with torch.no_grad():  # Kim: each unit's incoming weight vector has L2 norm <= max_norm
            for m in linear:
                m.weight.copy_(torch.renorm(m.weight, 2, 0, s.max_norm))

    t0 = time.perf_counter()
    hist, diverged_epoch = train_epochs(
        model, opt, lambda epoch: _batches(len(seqs), lengths, s, gen),
        lambda idx: (batch_tokens([seqs[j] for j in idx.tolist()], width), y[idx]),
        epochs=s.epochs, after_step=max_norm if s.max_norm > 0 else None, generators=(gen,),
        evaluate=lambda m: {"dev_error": _error(m, dev[0], dev_y, s.eval_batch),
                            "test_error": _error(m, test[0], test_y, s.eval_batch)},
        checkpoint=checkpoint, progress=progress)
    return FoldResult(hist["epochs"], hist["train_loss"], hist["train_error"], hist.get("dev_error", []),
                      hist.get("test_error", []), time.perf_counter() - t0, diverged_epoch)


@dataclass
class KimCNNKeys:
    """The config keys of the text CNN and its training (a table's config subclasses it); defaults: the paper's
    settings after Kim's CNN-static."""

    static: bool = option(True, help="frozen embeddings (CNN-static, the paper) or fine-tuned (CNN-non-static)")
    epochs: int = option(50, min=1, help="training epochs (paper: 50)")
    batch_size: int = option(50, min=1, help="minibatch size (paper, Kim: 50)")
    optimizer: str = option("adadelta", choices=("adadelta", "sgd"),
                            help="adadelta (Kim's; lr scales its step) or plain sgd (the paper's eqs. 4-6)")
    lr: float = option(1.0, min=0.0, help="learning rate (paper: 0.05, read as an SGD step; Kim's Adadelta: 1.0)")
    momentum: float = option(0.0, min=0.0, help="SGD momentum (optimizer=sgd only)")
    max_norm: float = option(3.0, min=0.0, help="Kim's max-norm of each FC unit's weight vector (0: off)")
    dropout: float = option(0.5, min=0.0, help="dropout rate, where dropout_at says (paper, Kim: 0.5)")
    dropout_at: str = option("output", choices=DROPOUT_PLACES,
                             help="where dropout acts: output (before the output layer only: on the FC output, the "
                                  "penultimate layer, where Kim puts it), pooled (on the pooled features only, "
                                  "before the hidden FC layer) or linear (before each linear layer; the default "
                                  "before issue 15)")
    widths: List[int] = option([3, 4, 5], min=1, help="filter widths (paper, Kim: 3, 4, 5)")
    maps: int = option(100, min=1, help="feature maps per width (paper, Kim: 100)")
    hidden: int = option(100, min=0, help="FC hidden neurons (paper: 100; 0: Kim's original, no hidden layer)")
    fc_init: str = option("glorot", choices=LINEAR_INITS,
                          help="initialisation of the FC layers (hidden and output): glorot (Kim's code: Glorot-"
                               "uniform, zero biases), lecun (the paper's Table 1 students: weights and biases "
                               "~ N(0, 1/fan_in)) or torch (nn.Linear's default: U(+-1/sqrt(fan_in)) weights and "
                               "biases); the convolutions are Glorot-uniform (Kim's) in every case")
    bucket: bool = option(False, help="batch sentences of similar length (less padding, faster; Kim: random batches)")

    def validate(self) -> None:
        super().validate()  # type: ignore[misc]
        if self.dropout >= 1.0:
            raise ConfigError(f"config key 'dropout': expected a rate in [0, 1), got {self.dropout}")
        if self.momentum and self.optimizer != "sgd":
            raise ConfigError("config key 'momentum': only used with optimizer=sgd")

    def kim_settings(self) -> TrainSettings:
        return TrainSettings(epochs=self.epochs, batch_size=self.batch_size, optimizer=self.optimizer, lr=self.lr,
                             momentum=self.momentum, max_norm=self.max_norm, bucket=self.bucket)

    def kim_model(self, embeddings: Tensor, conv_act: str, fc_act: str, alpha_init: float) -> KimCNN:
        return KimCNN(embeddings, self.widths, self.maps, self.hidden, 2, conv_act, fc_act, self.dropout, self.static,
                      alpha_init, fc_init=self.fc_init, dropout_at=self.dropout_at)

    def kim_choices(self, alpha_init: float) -> Dict[str, str]:
        """What the model and its training do where the paper is silent (a report's choices section)."""
        s = self.kim_settings()
        where = "on the pooled features" if not self.hidden else {
            "linear": "before each linear layer (on the pooled features and on the FC output)",
            "pooled": "on the pooled features only (before the hidden FC layer)",
            "output": "before the output layer only (on the FC output: Kim's penultimate layer)"}[self.dropout_at]
        return {
            "model": f"widths {', '.join(map(str, self.widths))} x {self.maps} maps, max-over-time pooling, "
            + (f"FC {self.hidden} hidden" if self.hidden else "no hidden layer (Kim's original)")
            + f", dropout {self.dropout:g} {where}, softmax over 2; one alpha per feature map (conv) "
              f"or neuron (FC), alpha_init {alpha_init:g}; 'two convolutional layers' of the paper's text read as "
              "the conv stage + the FC layer (Kim's design has one conv stage)",
            "initialisation": "convolutions: Glorot-uniform weights, zero biases (Kim's code); FC layers: " + {
                "glorot": "the same (Kim's code)",
                "lecun": "weights and biases ~ N(0, 1/fan_in) (LeCun et al. 1998, as the paper's Table 1 students)",
                "torch": "weights and biases ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (PyTorch's nn.Linear default)",
            }[self.fc_init] + "; the same draw for every cell of a fold",
            "optimiser": (
                f"Adadelta (Kim's optimiser: rho 0.95, eps 1e-6, lr {s.lr:g}). The paper gives lr 0.05 and describes "
                "plain gradient steps (eqs. 4-6), but also says it keeps Kim's hyper-parameters, and Kim trains with "
                "Adadelta. Plain SGD at lr 0.05 barely moves this network: on fold 0 (ReLU/ReLU) its test error was "
                "36.5% after 4 epochs where Adadelta's was 23.3%, so the 0.05 is read as a setting of some other "
                "optimiser and the presets use Kim's; `--set optimizer=sgd --set lr=0.05` runs the literal reading"
                if s.optimizer == "adadelta" else f"plain SGD, lr {s.lr:g}"
                + (f", momentum {s.momentum:g}" if s.momentum else "") + " (the paper's lr and eqs. 4-6)"),
            "max-norm": f"each FC unit's incoming weight vector rescaled to L2 norm <= {s.max_norm:g} after every "
                        "step (Kim)" if s.max_norm else "off",
            "batches": f"batch {s.batch_size}, reshuffled every epoch, last partial batch kept" + (
                "; sentences of similar length batched together (chunks of 20 batches sorted by length)"
                if s.bucket else ""),
        }
