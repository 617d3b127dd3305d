"""Session-wide test settings.

Every ``torch.compile`` costs 10-30 s on a small CPU machine, so the tests run the eager backend unless
``ACTADAPT_BACKEND`` is set in the environment (``ACTADAPT_BACKEND=auto pytest`` runs everything through the
compiler). Tests that need a given path ask for the ``eager_backend`` / ``compile_backend`` fixtures, which
restore the previous backend afterwards.
"""

from __future__ import annotations

import os

os.environ.setdefault("ACTADAPT_BACKEND", "eager")  # before actadapt is imported; spawned workers inherit it
if os.environ.get("ACTADAPT_TEST_DEVICE", "cpu") == "cpu":
    # the Triton kernels are tested on CPU tensors by Triton's interpreter, which must be chosen before anything
    # imports triton (torch.compile does); it changes nothing else (inductor's CPU code is C++)
    os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest  # noqa: E402

import actadapt  # noqa: E402


def _use(name: str):
    previous = actadapt.get_backend()
    actadapt.set_backend(name)
    try:
        yield name
    finally:
        actadapt.set_backend(previous)


@pytest.fixture
def eager_backend():
    """Run the test with the eager (uncompiled) backend."""
    yield from _use("eager")


@pytest.fixture
def compile_backend():
    """Run the test with the torch.compile backend (slow: mark the test ``slow``)."""
    yield from _use("compile")


@pytest.fixture
def native_backend():
    """Run the test with the fused C++ kernel where it applies (built on first use, about a minute)."""
    yield from _use("native")


_SHARED_DATA = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "..", "shared", "data")


@pytest.fixture(scope="session")
def data_root() -> str:
    """The real data sets (MNIST, movie reviews, word vectors, ISCX URLs): ``$ACTADAPT_DATA``, else the
    ``shared/data`` folder beside the checkout (as in CI). Tests that need it are skipped without it."""
    root = os.environ.get("ACTADAPT_DATA") or os.path.normpath(_SHARED_DATA)
    if not os.path.isdir(root):
        pytest.skip(f"real data not found at {root}; set ACTADAPT_DATA to a folder laid out like shared/data")
    return root
