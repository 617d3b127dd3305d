"""``actadapt demo``: a few seconds of training a small network with adaptive activations.

A one-hidden-layer teacher (sigmoid, as in Table 1) labels 2,000 points; a student with an adaptive Gumbel
hidden layer and an adaptive ReLU hidden layer is trained with Adam, and its fitted alphas are printed.
It uses only the public API (:mod:`actadapt.modules`, :mod:`actadapt.inspect`), as a user would.
"""

from __future__ import annotations

import time


def run_demo(seed: int = 0, epochs: int = 20, log=print) -> dict:
    import os

    import torch
    from torch import nn

    from .. import AdaptiveGumbel, AdaptiveReLU, format_alpha_table, set_backend
    from .data.simulation import make_dataset

    if "ACTADAPT_BACKEND" not in os.environ:
        set_backend("eager")  # tiny tensors: compiling would take longer than the whole demo
    torch.set_num_threads(1)  # tiny tensors: a second thread only adds synchronisation (6x slower on 2 busy cores)

    torch.manual_seed(seed)
    X, y, _ = make_dataset(seed, n_samples=2000, depth=1, activation="Sig", label_rule="median")
    X, y = X.float(), y.float()
    Xtr, ytr, Xte, yte = X[:1600], y[:1600], X[1600:], y[1600:]
    model = nn.Sequential(
        nn.Linear(10, 16), AdaptiveGumbel(num_parameters=16),
        nn.Linear(16, 16), AdaptiveReLU(num_parameters=16),
        nn.Linear(16, 1),
    )
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    t0 = time.perf_counter()
    for _ in range(epochs):
        for idx in torch.randperm(1600).split(50):
            loss = nn.functional.binary_cross_entropy_with_logits(model(Xtr[idx]).squeeze(-1), ytr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        acc = float(((model(Xte).squeeze(-1) > 0).float() == yte).float().mean())
    log(f"demo: 10-16-16-1 network (AdaptiveGumbel, AdaptiveReLU), {epochs} epochs in {time.perf_counter() - t0:.1f} s")
    log(f"held-out accuracy: {100 * acc:.1f}% (balanced classes)")
    log("fitted alpha per layer:")
    log(format_alpha_table(model))
    return {"accuracy": acc, "model": model}
