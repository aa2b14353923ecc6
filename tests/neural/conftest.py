"""The neural tests run single-threaded: their networks are small, and on a shared machine
intra-op threads mostly spin. The previous setting is restored afterwards."""

import pytest
import torch


@pytest.fixture(autouse=True, scope="module")  # before module-scoped fits, too
def _one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
