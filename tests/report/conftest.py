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
def _quick_digits_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("quick_tour")
    results = {}
    summary = run_tour("digits", out=out, quick=True, progress=False, results=results)
    return out, summary, results


@pytest.fixture(scope="session")
def quick_digits_tour(_quick_digits_run):
    """(folder, summary) of ``latentspace tour --quick`` on digits with every chapter."""
    return _quick_digits_run[:2]


@pytest.fixture(scope="session")
def quick_digits_models(_quick_digits_run):
    """The fitted estimators that run's chapters shared (``pca``, ``ppca``, ``vae``, ...)."""
    return _quick_digits_run[2]
