"""scikit-learn's own test files, run against ours, end as tests/peer/expected_failures.toml says."""

import subprocess
import sys
from pathlib import Path

import pytest

RUN = Path(__file__).resolve().parent / "run.py"


def test_peer_run_matches_the_expected_failures(tmp_path):
    sklearn = pytest.importorskip("sklearn")
    if not (Path(sklearn.__file__).parent / "mixture" / "tests").is_dir():
        pytest.skip("this scikit-learn ships without its tests")
    proc = subprocess.run(
        [sys.executable, str(RUN), "--build", str(tmp_path / "peer")],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
