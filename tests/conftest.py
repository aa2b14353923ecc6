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
