"""The full quick digits tour, run once per session and shared by the report tests."""

import pytest

from latentspace.report.tour import run_tour


@pytest.fixture(scope="session")
def quick_digits_tour(tmp_path_factory):
    """(folder, summary) of ``latentspace tour --quick`` on digits with every chapter."""
    out = tmp_path_factory.mktemp("quick_tour")
    summary = run_tour("digits", out=out, quick=True, progress=False)
    return out, summary
