"""The training loop of Tables 2-4 (src/actadapt/experiments/loop.py) and the step probe (probe.py)."""

import math
import os

import pytest
import torch
from torch import nn

from actadapt import AdaptiveGumbel
from actadapt.experiments.loop import Checkpoint, best_epoch, train_epochs
from actadapt.experiments.probe import probe_steps


def _task(frozen=False):
    """A tiny classifier with dropout (torch's global generator), a frozen embedding-like first layer (if
    ``frozen``) and minibatches drawn from one generator across epochs: everything a checkpoint must carry."""
    torch.manual_seed(0)
    x, y = torch.randn(90, 6), torch.randint(0, 3, (90,))
    model = nn.Sequential(nn.Linear(6, 16), AdaptiveGumbel(16), nn.Dropout(0.3), nn.Linear(16, 3))
    model[0].weight.requires_grad_(not frozen)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=0.01)
    gen = torch.Generator().manual_seed(3)
    torch.manual_seed(5)  # dropout masks from here on

    def evaluate(m):
        m.eval()
        with torch.no_grad():
            return {"test_error": float((m(x[60:]).argmax(1) != y[60:]).float().mean())}

    kwargs = dict(evaluate=evaluate, generators=(gen,))
    return model, opt, lambda epoch: torch.randperm(60, generator=gen).split(16), lambda i: (x[i], y[i]), kwargs


class Stop(Exception):
    pass


@pytest.mark.parametrize("frozen", [False, True])
def test_a_resumed_run_ends_with_the_numbers_of_an_uninterrupted_one(tmp_path, frozen):
    model, opt, batches, load, kw = _task(frozen)
    full, _ = train_epochs(model, opt, batches, load, epochs=4, **kw)
    weights = {k: v.clone() for k, v in model.state_dict().items()}

    def stop_after_2(epoch):
        if epoch == 2:
            raise Stop

    ckpt = Checkpoint(str(tmp_path / "checkpoints" / "t.pt"), str(tmp_path), "hash1")
    model, opt, batches, load, kw = _task(frozen)
    with pytest.raises(Stop):
        train_epochs(model, opt, batches, load, epochs=4, checkpoint=ckpt, progress=stop_after_2, **kw)
    saved = torch.load(ckpt.path, weights_only=True)
    assert saved["epoch"] == 2 and ("0.weight" in saved["model"]) is not frozen  # frozen weights are not saved
    model, opt, batches, load, kw = _task(frozen)  # seeds dropout afresh: only the checkpoint's RNG states continue it
    seen = []
    resumed, _ = train_epochs(model, opt, batches, load, epochs=4, checkpoint=ckpt, progress=seen.append, **kw)
    assert seen == [3, 4]  # epochs 1-2 were not trained again
    for key in ("epochs", "train_loss", "train_error", "test_error"):
        assert resumed[key] == full[key]  # bit for bit
    for k, v in model.state_dict().items():
        assert torch.equal(v, weights[k]), k


def test_a_foreign_or_broken_checkpoint_is_ignored(tmp_path):
    model, opt, batches, load, kw = _task()
    ckpt = Checkpoint(str(tmp_path / "c.pt"), str(tmp_path), "mine")
    Checkpoint(ckpt.path, str(tmp_path), "another config").save({"epoch": 3, "model": {}, "optimizer": {}, "history": {}})
    seen = []
    train_epochs(model, opt, batches, load, epochs=2, checkpoint=ckpt, progress=seen.append, **kw)
    assert seen == [1, 2]
    with open(ckpt.path, "wb") as fh:
        fh.write(b"not a checkpoint")
    seen.clear()
    train_epochs(*_task()[:4], epochs=1, checkpoint=ckpt, progress=seen.append, **_task()[4])
    assert seen == [1]
    ckpt.remove()
    assert not os.path.exists(ckpt.path)


def test_history_and_divergence():
    model, opt, batches, load, kw = _task()
    hist, diverged = train_epochs(model, opt, batches, load, epochs=2, **kw)
    assert hist["epochs"] == [1, 2] and diverged is None
    assert all(0 <= e <= 1 for e in hist["train_error"] + hist["test_error"]) and len(hist["train_seconds"]) == 2
    model, _, batches, load, kw = _task()
    hist, diverged = train_epochs(model, torch.optim.SGD(model.parameters(), lr=1e30), batches, load, epochs=5, **kw)
    assert diverged == hist["epochs"][-1] and diverged < 5  # stopped at the first non-finite epoch


def test_best_epoch_is_the_earliest_lowest_finite_value():
    assert best_epoch([0.3, 0.2, 0.2, 0.4]) == 1
    assert best_epoch([math.nan, None, 0.5]) == 2
    assert best_epoch([math.nan, math.nan]) is None and best_epoch([]) is None


def test_the_probe_times_the_first_steps_and_stops_the_task():
    model, opt, batches, load, kw = _task()
    with probe_steps(6) as probe:
        train_epochs(model, opt, batches, load, epochs=50, **kw)
        raise AssertionError("not reached: the probe stops the loop")  # pragma: no cover
    assert probe.stopped and len(probe.step_seconds) == 6 and all(t >= 0 for t in probe.step_seconds)
    assert (probe.steps_per_epoch, probe.epochs) == (4, 50)  # 60 examples in batches of 16
    assert probe.setup_seconds >= 0 and len(probe.epoch_end_seconds) == 1  # one epoch ended (evaluation timed)
    with probe_steps(1000) as probe:  # a task shorter than the probe runs to its end
        hist, _ = train_epochs(*_task()[:4], epochs=2, **_task()[4])
    assert not probe.stopped and hist["epochs"] == [1, 2] and len(probe.step_seconds) == 8
    train_epochs(*_task()[:4], epochs=1, **_task()[4])  # no probe: nothing is timed, nothing stops


def test_a_probe_done_inside_the_first_epoch_skips_to_its_end_and_times_it():
    from actadapt.experiments import probe as hooks

    model, opt, batches, load, kw = _task()
    evaluated = []
    kw["evaluate"] = lambda m: evaluated.append(1) or {}
    with probe_steps(2) as probe:  # 4 steps per epoch: the epoch is cut after 2, evaluated, then stopped
        train_epochs(model, opt, batches, load, epochs=50, **kw)
    assert probe.stopped and probe.cut_epoch and len(probe.step_seconds) == 2 and evaluated == [1]
    assert len(probe.epoch_end_seconds) == 1 and probe.seconds >= probe.epoch_end_seconds[0]
    with probe_steps(2) as probe:  # a one-epoch task runs on to its end after the cut: stopped all the same
        hist, _ = train_epochs(*_task()[:4], epochs=1, **_task()[4])
    assert hist["epochs"] == [1] and probe.stopped and len(probe.epoch_end_seconds) == 1
    with probe_steps(1) as probe:  # a loop that does not leave its epoch when asked is stopped at its next step
        hooks.epoch_started(4, 10)
        assert hooks.step_done() is True
        hooks.step_done()
        raise AssertionError("not reached")  # pragma: no cover
    assert probe.stopped and len(probe.step_seconds) == 2 and not probe.epoch_end_seconds
    assert hooks.step_done() is False  # outside a probe
