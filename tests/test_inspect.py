"""Inspection of fitted alphas as a dict and a table (issue 2, item 8, the non-plot part)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from torch import nn

from actadapt import AdaptiveActivation, AdaptiveGumbel, AdaptiveReLU, AdaptiveSwish, AlphaRow, alpha_dict, alpha_table, format_alpha_table


def make_model():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(4, 6),
        AdaptiveGumbel(6, parametrization="softplus"),
        nn.Sequential(nn.Linear(6, 5), AdaptiveReLU(5)),
        nn.Linear(5, 3),
        AdaptiveSwish(),  # shared
        AdaptiveActivation("cauchy", "bounded", num_parameters=3, trainable=False, init=3.0),
    )
    with torch.no_grad():  # distinct, known alphas
        model[1].rho.copy_(torch.log(torch.expm1(torch.linspace(0.2, 2.0, 6))))
        model[2][1].rho.copy_(torch.log(torch.tensor([0.5, 1.0, 2.0, 4.0, 8.0])))
    return model


EXPECTED = {
    "1": ("gumbel", "bounded", np.linspace(0.2, 2.0, 6)),
    "2.1": ("exponential", "gated", np.array([0.5, 1.0, 2.0, 4.0, 8.0])),
    "4": ("logistic", "gated", np.array([1.0])),
    "5": ("cauchy", "bounded", np.array([3.0, 3.0, 3.0])),
}


def test_alpha_dict_names_and_values():
    model = make_model()
    d = alpha_dict(model)
    assert list(d) == list(EXPECTED)
    for name, (_, _, values) in EXPECTED.items():
        np.testing.assert_allclose(d[name].numpy(), values, rtol=1e-6)
        assert d[name].shape == (len(values),) and not d[name].requires_grad


def test_alpha_dict_returns_copies():
    model = make_model()
    d = alpha_dict(model)
    d["2.1"].fill_(123.0)
    assert model[2][1].alpha.max().item() == pytest.approx(8.0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_alpha_table_statistics_match_numpy(dtype):
    model = make_model().to(dtype)
    rows = alpha_table(model)
    assert [r.name for r in rows] == list(EXPECTED)
    for row in rows:
        family, form, values = EXPECTED[row.name]
        assert isinstance(row, AlphaRow)
        assert (row.family, row.form, row.n) == (family, form, len(values))
        np.testing.assert_allclose(
            [row.mean, row.std, row.min, row.max], [values.mean(), values.std(), values.min(), values.max()], rtol=1e-6, atol=1e-7
        )
    assert rows[0].as_dict() == {"name": "1", "family": "gumbel", "form": "bounded", "n": 6, "mean": rows[0].mean,
                                 "std": rows[0].std, "min": rows[0].min, "max": rows[0].max}


def test_table_follows_training():
    model = make_model()
    before = {r.name: r.mean for r in alpha_table(model)}
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    model(torch.randn(16, 4)).pow(2).sum().backward()
    opt.step()
    after = {r.name: r.mean for r in alpha_table(model)}
    assert after["2.1"] != before["2.1"] and after["1"] != before["1"]
    assert after["5"] == before["5"]  # trainable=False


def test_lazy_modules_listed_in_table_but_not_in_dict():
    model = nn.Sequential(nn.Linear(3, 4), AdaptiveReLU(None), nn.Linear(4, 2), AdaptiveGumbel(2))
    assert list(alpha_dict(model)) == ["3"]
    rows = alpha_table(model)
    assert [(r.name, r.n, r.mean) for r in rows] == [("1", None, None), ("3", 2, 1.0)]
    assert "-" in format_alpha_table(rows).splitlines()[1]
    model(torch.randn(2, 3))
    assert list(alpha_dict(model)) == ["1", "3"] and alpha_table(model)[0].n == 4


def test_format_alpha_table_text():
    model = make_model()
    text = format_alpha_table(model)
    lines = text.splitlines()
    assert lines[0].split() == ["name", "family", "form", "n", "mean", "std", "min", "max"]
    assert len(lines) == 1 + len(EXPECTED)
    assert lines[2].split()[:4] == ["2.1", "exponential", "gated", "5"]
    assert lines[2].split()[6:] == ["0.5000", "8.0000"]
    # columns are aligned: every row starts its "family" cell at the same offset
    offsets = {line.index(cell) for line, cell in zip(lines, ["family", "gumbel", "exponential", "logistic", "cauchy"])}
    assert len(offsets) == 1
    assert format_alpha_table(alpha_table(model), digits=2).splitlines()[1].split()[4] == "1.10"


def test_format_small_and_root_and_empty():
    m = AdaptiveGumbel(2, init=1e-5)
    line = format_alpha_table(m).splitlines()[1]
    assert line.startswith("(root)") and "1e-05" in line
    assert format_alpha_table(nn.Linear(2, 2)) == "(no adaptive activations)"
    assert alpha_dict(nn.Linear(2, 2)) == {} and alpha_table(nn.Linear(2, 2)) == []


def test_rejects_non_modules():
    with pytest.raises(TypeError, match="model must be an nn.Module, got dict"):
        alpha_dict({})


def test_importing_actadapt_imports_torch_and_numpy_only():
    # in a fresh interpreter: the core (inspect included) never imports matplotlib or other heavy libraries
    code = (
        "import sys, actadapt, actadapt.inspect, actadapt.convert, actadapt.training; "
        "bad = [m for m in ('matplotlib', 'onnx', 'onnxruntime', 'sklearn', 'pandas', 'scipy') if m in sys.modules]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
