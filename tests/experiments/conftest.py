"""Settings for the experiment tests: eager backend (tests/conftest.py) and one torch thread.

The students are tiny (10-neuron layers, batch 20): a second intra-op thread only adds synchronisation,
which on a busy 2-core machine makes every step several times slower.
"""

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(autouse=True)
def _sigint_as_in_a_terminal():
    """SIGINT as a terminal's Ctrl-C finds it: a process started in the background by a shell script (``cmd &``
    without job control), as some CI runners start their jobs, inherits SIGINT ignored, and the runs rightly
    keep it ignored (nohup); the Ctrl-C tests need it live, in this process and in the runs they start (an
    ignored signal survives exec, a handler does not)."""
    import signal

    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        yield
        return
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
