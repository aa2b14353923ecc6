"""One torch thread for the command-line tests.

Their models are tiny: on a machine whose cores are shared, torch's worker threads mostly wait
on each other (measured: the same fits ran many times slower with two threads than with one).
"""

import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
