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
