"""Triton kernels (placeholder while the CPU path is brought up)."""
from __future__ import annotations


def unavailable():
    return "not written yet"
