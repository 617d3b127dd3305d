"""Convert a model to adaptive activations, fine-tune it on MNIST beside the original, plot what it learned.

    python examples/convert_finetune.py --data-dir DATA [--model resnet|convnext] [--steps 300] [--out DIR]

1. Build a model (here a transformers ResNet or ConvNeXt from a small config; put your own in `build_model`).
2. `actadapt.convert(model, example_inputs=batch)`: every activation call site gets its own adaptive
   activation, sized now, starting from the function it replaces (ReLU -> AReLU, GELU -> Swish, ...).
3. Fine-tune the original and the converted model side by side on the same batches (AdamW; the alphas get
   their own learning rate and no weight decay), and time their steps in the same loop.
4. Write into the run folder: `results.json` (test accuracy and median step time of both), `conversion.txt`
   (every replaced call site), `alpha_histogram.png` and `learned_curves.png`.

The data root holds `mnist/` in the IDX layout (or is that folder itself): `--data-dir` or `$ACTADAPT_DATA`.
Nothing is downloaded. Bad input ends with one line `convert_finetune: error: ...` and exit code 2.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

MARKER = ".actadapt-example"  # a run folder made by this script: its own files may be replaced on a rerun
OUTPUTS = ("results.json", "conversion.txt", "alpha_histogram.png", "learned_curves.png")


class UsageError(Exception):
    pass


def build_model(name: str):
    """A small image classifier for 28x28 grey images, 10 classes, from a transformers config (no weights)."""
    import transformers as T

    if name == "resnet":  # ReLU everywhere; BasicBlocks in three stages
        return T.ResNetForImageClassification(T.ResNetConfig(
            num_channels=1, embedding_size=16, hidden_sizes=[16, 32, 64], depths=[1, 1, 1], layer_type="basic",
            num_labels=10))
    if name == "convnext":  # GELU in every block; LayerNorm; patchify stem
        return T.ConvNextForImageClassification(T.ConvNextConfig(
            num_channels=1, patch_size=2, num_stages=3, hidden_sizes=[16, 32, 64], depths=[1, 1, 1], num_labels=10))
    raise UsageError(f"unknown --model {name!r}; expected resnet or convnext")


def load_data(data_dir: str):
    from actadapt.experiments.data.mnist import load_mnist  # checks every file; raises DataError naming the problem

    data = load_mnist(data_dir)

    def as_float(split):  # (N, 1, 28, 28), standardised with the training set's mean and std
        return ((split.images.float() / 255.0 - 0.1307) / 0.3081).unsqueeze(1), split.labels

    return as_float(data["train"]), as_float(data["test"])


def accuracy(model, images, labels, batch: int = 1000) -> float:
    import torch

    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(labels), batch):
            correct += int((model(images[i:i + batch]).logits.argmax(-1) == labels[i:i + batch]).sum())
    model.train()
    return correct / len(labels)


def prepare_out(out: str) -> None:
    """Use ``out`` if it is new, empty or made by this script; never touch a folder of someone else's files."""
    if os.path.islink(out):
        raise UsageError(f"--out {out!r} is a symbolic link; give a plain folder")
    if os.path.isdir(out) and os.listdir(out) and not os.path.isfile(os.path.join(out, MARKER)):
        raise UsageError(f"--out {out!r} exists and was not made by this script; choose a new or empty folder")
    os.makedirs(out, exist_ok=True)
    open(os.path.join(out, MARKER), "w").close()


def write_atomic(path: str, text: str) -> None:
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def plot(model, out: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    import actadapt

    alphas = actadapt.alpha_dict(model)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    actadapt.plot.plot_alpha_histogram(torch_cat(alphas), ax=ax, log_x=True)
    ax.set_title(f"fitted alpha, {sum(a.numel() for a in alphas.values())} channels in {len(alphas)} call sites")
    fig.tight_layout()
    fig.savefig(os.path.join(out, "alpha_histogram.png"), dpi=120)
    plt.close(fig)

    sites = [(n, m) for n, m in model.named_modules() if isinstance(m, actadapt.AdaptiveActivation)]
    cols = min(3, len(sites))
    rows = (len(sites) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3 * rows), squeeze=False)
    for ax, (name, m) in zip(axes.flat, sites):
        a = m.alpha.detach()
        scale = 4.0 / float(a.median()) if m.family == "exponential" else 4.0  # AReLU bends within a few 1/alpha
        actadapt.plot.plot_learned_curves(a[:8], m.family, m.form, x_range=(-0.25 * scale, scale), ax=ax)
        ax.set_title(name.replace("actadapt_sites.", ""), fontsize=8)
    for ax in list(axes.flat)[len(sites):]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(os.path.join(out, "learned_curves.png"), dpi=110)
    plt.close(fig)


def torch_cat(alphas: dict):
    import torch

    return torch.cat([a.reshape(-1) for a in alphas.values()])


def run(args) -> dict:

    import torch
    import torch.nn.functional as F

    import actadapt

    data_dir = args.data_dir or os.environ.get("ACTADAPT_DATA")
    if not data_dir:
        raise UsageError("no data: pass --data-dir DATA (a folder with mnist/ in the IDX layout) or set $ACTADAPT_DATA")
    (train_x, train_y), (test_x, test_y) = load_data(data_dir)
    if args.threads:
        torch.set_num_threads(args.threads)
    prepare_out(args.out)

    torch.manual_seed(args.seed)
    original = build_model(args.model)
    g = torch.Generator().manual_seed(args.seed)
    first = torch.randint(0, len(train_y), (args.batch,), generator=g)
    conversion = actadapt.convert(original, example_inputs=train_x[first])  # a copy; `original` is unchanged
    converted = conversion.model
    print(conversion.summary())

    models = {"original": original.train(), "converted": converted.train()}
    optims = {
        name: torch.optim.AdamW(actadapt.param_groups(m, lr=args.lr, alpha_lr=args.alpha_lr, weight_decay=0.01), lr=args.lr)
        for name, m in models.items()
    }
    step_times = {name: [] for name in models}
    for step in range(args.steps):
        idx = first if step == 0 else torch.randint(0, len(train_y), (args.batch,), generator=g)
        x, y = train_x[idx], train_y[idx]
        for name, m in models.items():  # the same batch, one after the other: timed under the same load
            t0 = time.perf_counter()
            loss = F.cross_entropy(m(x).logits, y)
            optims[name].zero_grad(set_to_none=True)
            loss.backward()
            optims[name].step()
            step_times[name].append(time.perf_counter() - t0)
            if not torch.isfinite(loss):
                raise RuntimeError(f"the {name} model's loss became {loss.item()} at step {step}")
        if (step + 1) % 50 == 0:
            print(f"step {step + 1}/{args.steps}")

    results = {
        "model": args.model, "steps": args.steps, "batch": args.batch, "seed": args.seed,
        "threads": torch.get_num_threads(), "backend": actadapt.get_backend(),
        "replaced_call_sites": len(conversion.replaced), "output_change_at_conversion": conversion.output_change,
    }
    for name, m in models.items():
        times = step_times[name][5:]  # the first steps warm up allocators and the kernels
        results[name] = {"test_accuracy": accuracy(m, test_x, test_y), "median_step_ms": 1000 * statistics.median(times)}
    results["step_time_ratio"] = results["converted"]["median_step_ms"] / results["original"]["median_step_ms"]
    results["alpha"] = {
        r.name: {"was": r.old_type, "now": r.new_type, "init": r.init, "median_now": float(r.module.alpha.detach().median())}
        for r in conversion.replaced
    }
    write_atomic(os.path.join(args.out, "results.json"), json.dumps(results, indent=2) + "\n")
    write_atomic(os.path.join(args.out, "conversion.txt"), conversion.summary() + "\n")
    plot(converted, args.out)
    for name in models:
        r = results[name]
        print(f"{name:9s}  test accuracy {100 * r['test_accuracy']:.2f}%   median step {r['median_step_ms']:.1f} ms")
    print(f"step time converted / original: {results['step_time_ratio']:.2f}; wrote {', '.join(OUTPUTS)} to {args.out}")
    return results


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="convert_finetune", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="resnet", help="resnet (ReLU) or convnext (GELU); default resnet")
    p.add_argument("--data-dir", default=None, help="data root with mnist/ (default: $ACTADAPT_DATA)")
    p.add_argument("--steps", type=int, default=300, help="optimiser steps (default 300)")
    p.add_argument("--batch", type=int, default=64, help="batch size (default 64)")
    p.add_argument("--lr", type=float, default=2e-3, help="learning rate of the weights (default 2e-3)")
    p.add_argument("--alpha-lr", type=float, default=2e-2, help="learning rate of the alphas (default 2e-2)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    p.add_argument("--out", default=None, help="run folder (default runs/example-convert-MODEL)")
    args = p.parse_args(argv)
    args.out = args.out or os.path.join("runs", f"example-convert-{args.model}")
    try:
        if args.steps < 1 or args.batch < 1:
            raise UsageError("--steps and --batch must be positive")
        run(args)
    except (UsageError, ValueError, OSError) as err:  # DataError is a ValueError
        print(f"convert_finetune: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("convert_finetune: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
