"""A check every grid table's tests share: a task stopped after its first epoch resumes from its checkpoint."""

import json
import os

import pytest


def resumed_equals_uninterrupted(exp, cfg, tmp_path):
    """Run a task whole, and again stopped after epoch 1 and resumed from its checkpoint: the same record."""
    task = exp.tasks(cfg)[0]

    class Stop(Exception):
        pass

    def stop_after_1(epoch):
        if epoch == 1:
            raise Stop

    full, cut = str(tmp_path / "full"), str(tmp_path / "cut")
    exp.run_task(cfg, task, full)
    with pytest.raises(Stop):
        exp.run_task(cfg, task, cut, progress=stop_after_1)
    assert os.path.exists(os.path.join(cut, "checkpoints", task.id + ".pt"))
    seen = []
    exp.run_task(cfg, task, cut, progress=seen.append)
    assert seen == list(range(2, cfg.epochs + 1))  # epoch 1 was not trained again
    assert not os.path.exists(os.path.join(cut, "checkpoints", task.id + ".pt"))
    (path,) = task.outputs
    a, b = (json.loads(open(os.path.join(d, path)).read()) for d in (full, cut))
    def results(record):  # all but the timings
        return {k: v for k, v in record.items() if "seconds" not in k and k != "threads"}

    assert results(a) == results(b)  # bit for bit

