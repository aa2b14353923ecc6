"""Shared fixtures: the real-datasets folder and small data sets."""

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def shared_data_path() -> Path:
    return Path(os.environ.get("LATENTSPACE_TEST_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data():
    """Folder with the real datasets (.npz); skips the test when it is absent."""
    path = shared_data_path()
    if not path.is_dir():
        pytest.skip(f"real datasets not found at {path}; set LATENTSPACE_TEST_DATA")
    return path


@pytest.fixture
def no_huge_network(monkeypatch):
    """Fail, rather than allocate, a network over 10**8 parameters: a size check that let one
    through would otherwise exhaust the machine's memory instead of failing the test."""
    from latentspace.neural import _nets

    real = _nets.materialize

    def guarded(module, *args, **kwargs):
        if sum(p.numel() for p in module.parameters()) > 10**8:
            raise AssertionError("a huge network was about to be allocated")
        return real(module, *args, **kwargs)

    monkeypatch.setattr(_nets, "materialize", guarded)
