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
def _signals_as_in_a_terminal():
    """SIGINT and SIGHUP as a terminal's Ctrl-C and hang-up find them. A process started in the background by a
    shell script (``cmd &`` without job control: SIGINT) or under ``nohup`` (SIGHUP), as some CI runners start
    their jobs, inherits them ignored, and the runs rightly keep an ignored signal ignored; the tests that send
    them need them live in the runs they start (an ignored signal survives exec, a handler does not) and, for
    SIGINT, in this process. A SIGHUP that reaches this process meanwhile is still ignored."""
    import signal

    live = {signal.SIGINT: signal.default_int_handler, signal.SIGHUP: lambda signum, frame: None}
    ignored = [sig for sig in live if signal.getsignal(sig) is signal.SIG_IGN]
    for sig in ignored:
        signal.signal(sig, live[sig])
    try:
        yield
    finally:
        for sig in ignored:
            signal.signal(sig, signal.SIG_IGN)
