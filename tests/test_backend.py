"""Backend selection and the fallbacks: a missing compiler never breaks an activation, it only slows it."""

from __future__ import annotations

import warnings

import pytest
import torch

import actadapt
from actadapt import _backend
from actadapt.kernels import cpu, layout
from actadapt import functional as AF


def test_unknown_backend_lists_the_valid_ones(monkeypatch):
    with pytest.raises(ValueError, match="auto, native, triton, compile, eager"):
        actadapt.set_backend("fast")
    monkeypatch.setattr(_backend, "_state", {"backend": None, "compile_failed": False})
    monkeypatch.setenv("ACTADAPT_BACKEND", "turbo")
    with pytest.raises(ValueError, match="ACTADAPT_BACKEND.*'turbo'"):
        actadapt.get_backend()


def _expected(fn, x, a):
    actadapt.set_backend("eager")
    y = fn(x, a)
    gx, ga = torch.autograd.grad(y.sum(), (x, a))
    return y.detach(), gx, ga


def test_compile_failure_warns_once_and_falls_back_to_eager(monkeypatch):
    x = torch.randn(6, 4, dtype=torch.float64, requires_grad=True)
    a = torch.rand(4, dtype=torch.float64).add(0.5).requires_grad_()
    y_ref, gx_ref, ga_ref = _expected(lambda x, a: AF.adaptive_activation(x, a, "normal", "gated"), x, a)

    def broken_compile(*args, **kwargs):
        def run(*a, **k):
            raise RuntimeError("no C++ compiler found")
        return run

    monkeypatch.setattr(torch, "compile", broken_compile)
    monkeypatch.setattr(_backend, "_compiled", {})
    actadapt.set_backend("auto")
    try:
        with pytest.warns(RuntimeWarning, match="torch.compile failed.*falling back"):
            y = AF.adaptive_activation(x, a, "normal", "gated")
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # only once
            y = AF.adaptive_activation(x, a, "normal", "gated")
            gx, ga = torch.autograd.grad(y.sum(), (x, a))
        torch.testing.assert_close((y.detach(), gx, ga), (y_ref, gx_ref, ga_ref))
        actadapt.set_backend("compile")
        with pytest.raises(RuntimeError, match="no C\\+\\+ compiler"):
            AF.adaptive_activation(x, a, "laplace", "gated")
    finally:
        actadapt.set_backend("eager")


def test_native_build_failure_falls_back_or_raises_when_forced(monkeypatch):
    x = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    a = torch.rand(3, dtype=torch.float64).add(0.5).requires_grad_()
    y_ref, gx_ref, ga_ref = _expected(AF.adaptive_gumbel, x, a)
    monkeypatch.setattr(cpu, "_state", {"module": None, "failed": True})
    try:
        actadapt.set_backend("auto")
        monkeypatch.setattr(_backend, "_state", {"backend": "auto", "compile_failed": True})  # no compile either
        y = AF.adaptive_gumbel(x, a)
        gx, ga = torch.autograd.grad(y.sum(), (x, a))
        torch.testing.assert_close((y.detach(), gx, ga), (y_ref, gx_ref, ga_ref))
        actadapt.set_backend("native")
        with pytest.raises(RuntimeError, match="C\\+\\+ kernel could not be built"):
            AF.adaptive_gumbel(x, a)
    finally:
        actadapt.set_backend("eager")


@pytest.mark.parametrize(
    "x_shape,a_shape,expected",
    [((5, 3), (), (1, 1, 1, 15)), ((2, 3, 4, 4), (3, 1, 1), (1, 1, 3, 16)), ((2, 3, 4, 4), (1, 3, 1, 1), (1, 1, 3, 16)),
     ((7, 9), (9,), (1, 1, 9, 1)), ((2, 5, 6), (5, 6), (1, 1, 30, 1)), ((4, 6), (1, 1), (1, 1, 1, 24)),
     ((20, 8, 10), (8, 10), (1, 1, 80, 1)), ((8, 20, 10), (8, 1, 10), (8, 20, 10, 1)),
     ((2, 3, 1, 5), (3, 1, 5), (1, 1, 15, 1)), ((2, 3, 4, 5), (3, 4, 1), (1, 1, 12, 5)),
     ((3, 4, 5, 6, 7), (3, 1, 5, 1, 1), (3, 4, 5, 42)), ((3, 4, 5), (3, 1, 1), (1, 1, 3, 20)),
     ((2, 3, 4, 5), (2, 1, 4, 1), (2, 3, 4, 5)), ((2, 3, 4, 5, 6), (2, 1, 4, 1, 6), None),
     ((2, 3, 4, 5), (2, 3, 1, 5), (6, 4, 5, 1)), ((4, 5), (4, 1, 5), None), ((4, 1), (1, 5), None)],
)
def test_native_layout(x_shape, a_shape, expected):
    assert layout.layout(x_shape, a_shape) == expected
