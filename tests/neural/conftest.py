"""The neural tests run single-threaded: their networks are small, and on a shared machine
intra-op threads mostly spin. The previous setting is restored afterwards."""

from pathlib import Path

import pytest
import torch


@pytest.fixture(autouse=True, scope="module")  # before module-scoped fits, too
def _one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# Most tests here train for a few epochs on purpose (the API, faults, files): those fits stop at
# max_epochs unconverged and say so. The tests about convergence catch the warning themselves
# (pytest.warns and catch_warnings record it whatever this filter says).
_UNCONVERGED = "ignore:.*stopped at max_epochs=.*still improving:sklearn.exceptions.ConvergenceWarning"


_HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items):
    for item in items:
        if item.path.is_relative_to(_HERE):
            item.add_marker(pytest.mark.filterwarnings(_UNCONVERGED))
