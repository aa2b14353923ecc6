"""The full quick digits tour, run once per session and shared by the report tests; and one
torch thread for these tests (the tour's own default, see ``run_tour(threads=1)``)."""

import pytest
import torch

from latentspace.report.tour import run_tour


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def quick_digits_tour(tmp_path_factory):
    """(folder, summary) of ``latentspace tour --quick`` on digits with every chapter."""
    out = tmp_path_factory.mktemp("quick_tour")
    summary = run_tour("digits", out=out, quick=True, progress=False)
    return out, summary
