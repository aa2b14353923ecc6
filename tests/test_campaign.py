"""The adversarial campaign: its fast subset must find nothing, and its classifier must be
able to say crash, silent-wrong and hang (see campaign/run.py for the rules)."""

import json
import os
import subprocess
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from campaign import classify  # noqa: E402
from campaign.classify import CRASH, HANG, OK, SILENT, TYPED, run_case  # noqa: E402


# ----------------------------------------------------------------------------- the classifier
def test_an_error_raised_in_a_numpy_frame_is_a_crash():
    outcome, evidence = run_case(lambda: np.split(np.arange(5), 2))
    assert outcome == CRASH, evidence
    assert "third-party frame" in evidence


def test_a_linalg_error_is_a_crash():
    outcome, evidence = run_case(lambda: np.linalg.cholesky(-np.eye(2)))
    assert outcome == CRASH and "LinAlgError" in evidence


def test_a_value_error_from_latentspace_is_typed():
    from latentspace._validation import check_int

    outcome, evidence = run_case(lambda: check_int("n_components", -1, low=1))
    assert outcome == TYPED, evidence


def test_not_fitted_from_sklearn_validation_is_typed():
    from latentspace import KMeans

    outcome, evidence = run_case(lambda: KMeans().predict(np.zeros((2, 2))))
    assert outcome == TYPED and "NotFittedError" in evidence


def test_a_third_party_message_from_our_frame_is_a_crash(monkeypatch):
    monkeypatch.setattr(classify, "_ours", lambda filename: True)

    def numpy_words():
        raise ValueError("could not convert string to float: 'a'")

    def our_words():
        raise ValueError("n_components=0 is out of range; it must be in [1, 4].")

    assert run_case(numpy_words)[0] == CRASH
    assert run_case(our_words)[0] == TYPED


def test_an_unpromised_type_is_a_crash_even_from_our_code(monkeypatch):
    monkeypatch.setattr(classify, "_ours", lambda filename: True)

    def key_error():
        raise KeyError("weights_")

    assert run_case(key_error)[0] == CRASH


def test_a_nan_result_is_silent_wrong_and_a_good_one_ok():
    from campaign.checks import check_result

    X = np.zeros((3, 4))
    bad = run_case(lambda: check_result("PCA", "transform", X, np.full((3, 2), np.nan), d=2))
    good = run_case(lambda: check_result("PCA", "transform", X, np.zeros((3, 2)), d=2))
    assert bad[0] == SILENT and "NaN" in bad[1]
    assert good[0] == OK


def test_float32_in_float64_out_is_silent_wrong():
    from campaign.checks import check_result

    X = np.zeros((3, 4), np.float32)
    outcome, evidence = run_case(lambda: check_result("PCA", "transform", X, np.zeros((3, 2)),
                                                      d=2))
    assert outcome == SILENT and "float32" in evidence


def test_labels_up_to_permutation():
    from campaign.checks import same_labels

    assert run_case(same_labels, "x", [0, 0, 1], [1, 1, 0])[0] == OK
    assert run_case(same_labels, "x", [0, 0, 0], [1, 1, 0])[0] == SILENT


def test_a_sleeping_case_is_a_hang_and_a_dead_worker_a_crash():
    from campaign.run import run_cases

    cases = [dict(area="selftest", est="-", kind="sleep", id="sleep"),
             dict(area="selftest", est="-", kind="exit", id="exit"),
             dict(area="selftest", est="-", kind="nan_result", id="nan"),
             dict(area="selftest", est="-", kind="numpy_error", id="numpy")]
    results = run_cases(cases, jobs=1, timeout=5, progress=False, warm=False)
    assert results["sleep"]["outcome"] == HANG
    assert results["exit"]["outcome"] == CRASH and "died" in results["exit"]["evidence"]
    assert results["nan"]["outcome"] == SILENT
    assert results["numpy"]["outcome"] == CRASH


# ----------------------------------------------------------------------------- the grid
def test_the_grid_is_large_deterministic_and_the_fast_subset_stratified():
    from campaign.run import all_cases, fast_subset

    cases = all_cases()
    assert len(cases) >= 5000
    assert [d["id"] for d in cases] == [d["id"] for d in all_cases()]
    fast = fast_subset(cases)
    assert 0.03 * len(cases) <= len(fast) <= 0.08 * len(cases)
    strata = {(d["area"], d["est"]) for d in cases}
    assert strata == {(d["area"], d["est"]) for d in fast}
    assert [d["id"] for d in fast] == [d["id"] for d in fast_subset(all_cases())]


# ----------------------------------------------------------------------------- the campaign
def test_the_fast_campaign_finds_no_crash_silent_wrong_or_hang(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-m", "campaign", "--fast", "--out", str(tmp_path)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    path = tmp_path / "results.json"
    assert path.exists(), proc.stderr[-3000:]
    results = json.loads(path.read_text())["results"]
    bad = [r for r in results if r["outcome"] in (CRASH, SILENT, HANG)]
    listing = "\n".join(f"[{r['outcome']}] {r['repro']}\n    {r['evidence'][:300]}"
                        for r in bad)
    assert not bad, f"{len(bad)} of {len(results)} cases failed:\n{listing}"
    assert proc.returncode == 0, proc.stdout[-2000:]
