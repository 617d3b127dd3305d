r"""The training loop of the grid tables (Tables 2-4), with per-epoch checkpoints and resume.

:func:`train_epochs` trains one model for one cell of a table. Per epoch ``e`` (1-based):

1. ``model.train()``; for each minibatch of ``batches(e)`` (a sequence of index tensors):
   ``inputs, targets = load(idx)``, ``logits = model(inputs)`` ``(N, C)``, the mean cross-entropy, one step
   of ``optimizer``, then ``after_step()`` (Table 3's max-norm). The epoch's running training loss (summed in
   ``loss_dtype``) and error are counted as the epoch goes (dropout and batch norm in training mode);
2. ``evaluate(model)`` gives ``{name: value}`` (dev and test error, ...), appended to the history;
3. a non-finite epoch loss (:func:`.divergence.nonfinite`) stops the training there: the weights are NaN from
   then on; the history ends with that epoch and ``diverged_epoch`` names it. After the last epoch the model
   itself is checked (a step can break the weights without a non-finite loss);
4. the :class:`Checkpoint`: model, optimiser, history and random-number states (torch's global generator,
   which dropout draws from, and the ``generators`` that order the minibatches), so a task killed mid-way
   resumes after its last finished epoch and ends with the numbers of an uninterrupted run. Not after the
   last epoch: the task's record follows at once, and then the checkpoint is deleted;
5. ``progress(e)``.

Each step also reports to :mod:`.probe` (``actadapt plan`` times a task's first steps that way).

What differs between the tables is an argument: the minibatch order (``batches``: one seeded permutation per
epoch, or one generator across epochs, length-bucketed), how a batch is made (``load``: pixels scaled to
[0, 1], token windows, URL word ids), the optimiser, ``after_step`` and ``evaluate``.
:func:`best_epoch` is the model selection (Kim's early stopping on the dev error).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import probe
from .divergence import nonfinite

__all__ = ["Checkpoint", "train_epochs", "best_epoch"]

History = Dict[str, List]


@dataclass(frozen=True)
class Checkpoint:
    """One task's training state on disk: ``path`` inside ``run_dir``, valid for ``config_hash`` only.

    Saved atomically (:func:`.rundir.atomic_write`) and loaded with ``torch.load(weights_only=True)`` (no
    pickled code runs). A missing, partial or foreign file (another config's, another model's) is ignored:
    the task starts afresh. Parameters that do not train (frozen word vectors) are not saved: the task rebuilds
    them from the data, as it did the first time.
    """

    path: str
    run_dir: str
    config_hash: str

    def save(self, state: Dict) -> None:
        from .rundir import atomic_write

        atomic_write(self.path, lambda fh: torch.save({**state, "config_hash": self.config_hash}, fh),
                     binary=True, root=self.run_dir)

    def load(self) -> Optional[Dict]:
        try:
            state = torch.load(self.path, map_location="cpu", weights_only=True)
        except Exception:  # missing, partial or foreign: start afresh
            return None
        return state if isinstance(state, dict) and state.get("config_hash") == self.config_hash else None

    def remove(self) -> None:
        from .rundir import remove_file

        remove_file(self.path, self.run_dir)


def _trained_state(model: nn.Module) -> Dict[str, Tensor]:
    frozen = {name for name, p in model.named_parameters() if not p.requires_grad}
    return {k: v for k, v in model.state_dict().items() if k not in frozen}


def _restore(state: Dict, model: nn.Module, optimizer, generators: Sequence[torch.Generator]) -> bool:
    """Load a checkpoint's states; ``False`` (nothing changed) unless it fits this model exactly."""
    ours = _trained_state(model)
    saved = state.get("model")
    rng = state.get("rng")
    if not isinstance(saved, dict) or set(saved) != set(ours) or any(
            not isinstance(saved[k], Tensor) or saved[k].shape != v.shape for k, v in ours.items()):
        return False
    if generators and (not isinstance(rng, dict) or len(rng.get("generators", ())) != len(generators)):
        return False  # the minibatch order cannot be continued
    model.load_state_dict(saved, strict=False)
    optimizer.load_state_dict(state["optimizer"])
    if isinstance(rng, dict):
        torch.set_rng_state(rng["torch"])
        for gen, s in zip(generators, rng.get("generators", ())):
            gen.set_state(s)
    return True


def train_epochs(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    batches: Callable[[int], Iterable[Tensor]],
    load: Callable[[Tensor], Tuple[Tensor, Tensor]],
    *,
    epochs: int,
    evaluate: Optional[Callable[[nn.Module], Dict[str, object]]] = None,
    after_step: Optional[Callable[[], None]] = None,
    loss_dtype: torch.dtype = torch.float64,
    generators: Sequence[torch.Generator] = (),
    checkpoint: Optional[Checkpoint] = None,
    progress: Optional[Callable[[int], None]] = None,
) -> Tuple[History, Optional[int]]:
    """Train ``model`` for ``epochs`` epochs (see the module notes); returns ``(history, diverged_epoch)``.

    Args:
        batches: ``epoch -> index tensors``, one per minibatch of that epoch (1-based epochs).
        load: ``indices -> (inputs, targets)``; ``targets`` ``(N,)`` class indices.
        evaluate: ``model -> {name: value}`` after every epoch (it sets eval mode itself). Default: none
        after_step: called after every optimiser step (a weight constraint). Default: none
        loss_dtype: the dtype the epoch's loss is summed in. Default: ``torch.float64``
        generators: the generators ``batches`` draws from across epochs, saved in the checkpoint.
        checkpoint: where the state is saved after every epoch but the last, and resumed from. Default: none
        progress: called with the epoch number after every finished epoch. Default: none

    Returns:
        ``history``: lists over the epochs done, ``epochs``, ``train_loss`` (mean over the epoch's examples),
        ``train_error`` (fraction), ``train_seconds``, ``eval_seconds``, and one per key of ``evaluate``;
        ``diverged_epoch``: the epoch whose loss (or, at the end, whose weights) became non-finite, else ``None``.
    """
    history: History = {"epochs": [], "train_loss": [], "train_error": [], "train_seconds": [], "eval_seconds": []}
    start = 0
    state = checkpoint.load() if checkpoint is not None else None
    if state is not None and _restore(state, model, optimizer, generators):
        history, start = state["history"], int(state["epoch"])
    diverged_epoch = None
    for epoch in range(start + 1, epochs + 1):
        t0 = time.perf_counter()
        model.train()
        minibatches = list(batches(epoch))
        probe.epoch_started(len(minibatches), epochs)
        loss_sum = torch.zeros((), dtype=loss_dtype)
        wrong = torch.zeros((), dtype=torch.long)
        seen = 0
        for idx in minibatches:
            inputs, targets = load(idx)
            logits = model(inputs)  # (N, C)
            loss = F.cross_entropy(logits, targets)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if after_step is not None:
                after_step()
            with torch.no_grad():  # the running training loss and error, as the epoch goes
                loss_sum += loss.detach().to(loss_dtype) * len(targets)
                wrong += (logits.argmax(1) != targets).sum()
            seen += len(targets)
            if probe.step_done():  # a planner's probe: on to this epoch's end (probe.py)
                break
        t1 = time.perf_counter()
        scores = evaluate(model) if evaluate is not None else {}
        for key, value in (("epochs", epoch), ("train_loss", float(loss_sum) / max(seen, 1)),
                           ("train_error", int(wrong) / max(seen, 1)), ("train_seconds", t1 - t0),
                           ("eval_seconds", time.perf_counter() - t1), *scores.items()):
            history.setdefault(key, []).append(value)
        if nonfinite(loss_sum):  # the weights are NaN from here on: stop, the record says so
            diverged_epoch = epoch
            break
        if checkpoint is not None and epoch < epochs:
            checkpoint.save({"epoch": epoch, "model": _trained_state(model), "optimizer": optimizer.state_dict(),
                             "history": history, "rng": {"torch": torch.get_rng_state(),
                                                         "generators": [g.get_state() for g in generators]}})
        if progress is not None:
            progress(epoch)
    if diverged_epoch is None and nonfinite(model):  # went bad in the very last step
        diverged_epoch = history["epochs"][-1] if history["epochs"] else epochs
    return history, diverged_epoch


def best_epoch(values: Sequence) -> Optional[int]:
    """The index of the earliest lowest finite value (``None`` and NaN left out), or ``None`` if there is none:
    the epoch a model is selected at by its dev error."""
    finite = [(v, i) for i, v in enumerate(values) if v is not None and not math.isnan(v)]
    return min(finite)[1] if finite else None
