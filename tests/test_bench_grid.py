"""The pure helpers of the speed grid (bench/grid.py): work counts and floors, agreement
figures, the RESULTS.md marker rewrite, the tables and the heatmap writer."""

import importlib.util
import sys
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.distance import cdist

BENCH = Path(__file__).resolve().parents[1] / "bench"


@pytest.fixture(scope="module")
def grid():
    sys.path.insert(0, str(BENCH))
    spec = importlib.util.spec_from_file_location("bench_grid", BENCH / "grid.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_work_counts_follow_the_stated_formulas(grid):
    assert grid.cell_work("pca", 1000, 64, 0, 8) == (1000 * 64 * 64, 1000 * 64 * 8)
    # a wide matrix: the Gram product is n×n
    assert grid.cell_work("pca", 500, 50_000, 0, 4) == (500 * 500 * 50_000, 500 * 50_000 * 4)
    assert grid.cell_work("kmeans_iter", 100, 16, 8, 4) == (2 * 100 * 16 * 8, 100 * 16 * 4)
    assert grid.cell_work("gmm", 10, 4, 3, 8, "full") == (2 * 10 * 16 * 3, 10 * 4 * 8)
    assert grid.cell_work("gmm", 10, 4, 3, 8, "diag") == (6 * 10 * 4 * 3, 10 * 4 * 8)
    with pytest.raises(ValueError, match="cov='full' or 'diag'"):
        grid.cell_work("gmm", 10, 4, 3, 8)
    with pytest.raises(ValueError, match="unknown part 'svd'"):
        grid.cell_work("svd", 10, 4, 3, 8)


def test_floor_is_the_larger_of_compute_and_memory_time(grid):
    peak, bandwidth = 1e11, 1e10
    # compute bound: 1e12 flops take 10 s, 1e9 bytes 0.1 s
    assert grid.floor_seconds(1e12, 1e9, peak, bandwidth) == pytest.approx(10.0, rel=1e-15)
    # memory bound: 1e9 flops take 0.01 s, 1e10 bytes 1 s
    assert grid.floor_seconds(1e9, 1e10, peak, bandwidth) == pytest.approx(1.0, rel=1e-15)
    with pytest.raises(ValueError, match="positive"):
        grid.floor_seconds(1.0, 1.0, 0.0, bandwidth)


def test_per_iteration_time_is_the_difference_over_the_extra_iterations(grid):
    assert grid.per_iteration(0.5, 2.5, 4) == pytest.approx(0.5, rel=1e-15)
    with pytest.raises(ValueError, match="at least 1"):
        grid.per_iteration(0.5, 2.5, 0)


def test_agreement_functions(grid):
    assert grid.max_relative_difference([1.1, 2.0, 2.9], [1.0, 2.0, 3.0]) == pytest.approx(
        0.1, rel=1e-14)
    assert grid.max_relative_difference(np.float32([1, 2]), [1.0, 2.0]) == 0.0
    with pytest.raises(ValueError, match="shape"):
        grid.max_relative_difference([1.0], [1.0, 2.0])
    assert grid.relative_difference(-99.0, -100.0) == pytest.approx(0.01, rel=1e-14)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_inertia_matches_brute_force_distances(grid, dtype):
    rng = np.random.default_rng(0)
    X = (rng.standard_normal((1000, 5)) + 3.0).astype(dtype)
    C = rng.standard_normal((7, 5)) + 3.0
    expected = cdist(X.astype(np.float64), C, "sqeuclidean").min(1).sum()
    # blocks of 128 rows: the blocked sum must add up every row once; the expansion
    # ‖x‖² − 2xᵀc + ‖c‖² loses about (‖x‖² / d²) · eps per term, far below 1e-12 here
    assert grid.inertia_float64(X, C, rows=128) == pytest.approx(expected, rel=1e-12)


def test_marker_rewrite_touches_only_the_section(grid):
    head = "# Results\n\nsome table\n"
    once = grid.rewrite_between_markers(head, "first")
    assert once.startswith(head)
    assert once.endswith(f"{grid.MARK_BEGIN}\nfirst\n{grid.MARK_END}\n")
    tail = "\n## later section\n"
    twice = grid.rewrite_between_markers(once.rstrip("\n") + tail, "second\nline")
    assert twice == head + f"\n{grid.MARK_BEGIN}\nsecond\nline\n{grid.MARK_END}" + tail
    assert grid.rewrite_between_markers(twice, "second\nline") == twice
    with pytest.raises(ValueError, match="no <!-- grid:end -->"):
        grid.rewrite_between_markers(f"x\n{grid.MARK_BEGIN}\nbody\n", "new")


def test_constraints_pin_the_installed_versions(grid):
    lines = grid.pinned_constraints(["numpy", "scikit-learn"])
    assert lines == [f"numpy=={np.__version__}", f"scikit-learn=={version('scikit-learn')}"]


def test_intelex_code_path_from_its_log_messages(grid):
    acc = "sklearn.cluster.KMeans.fit: running accelerated version on CPU"
    back = "sklearn.decomposition.PCA.fit: fallback to original Scikit-learn"
    assert grid.path_of([acc]) == "oneDAL"
    assert grid.path_of([acc, back]) == "fallback"
    assert grid.path_of([]) == "unknown"


def test_pca_solver_rule(grid):
    cells = grid.grid_cells("pca", quick=False)
    assert {(c["n"], c["d"]) for c in cells} >= {(200_000, 100), (1_000_000, 1024)}
    for c in cells:
        assert c["solver"] == ("covariance_eigh" if c["n"] >= 10 * c["d"] else "full")
        assert c["k"] == min(10, c["d"] // 2)


def fake_cells():
    """Three PCA cells: two in float64 (one where intelex fell back), one in float32 whose
    scikit-learn ratio is missing."""
    def cell(n, d, dtype, ours, sk, ex, **extra):
        ratio = {"scikit-learn": sk / ours, "intelex": ex / ours} if sk else {"intelex": ex / ours}
        return dict(part="pca", shape=f"{n}×{d}", dtype=dtype, row=f"n={n}", row_order=n,
                    col=f"d={d}", col_order=d, seconds={"latentspace": ours, "scikit-learn": sk,
                                                        "intelex": ex},
                    ratio=ratio, agreement_text="1e-15", floor_s=ours / 4, **extra)

    return [cell(1000, 16, "float64", 0.01, 0.02, 0.005),
            cell(100, 64, "float64", 0.02, 0.01, 0.04, intelex_path="fallback"),
            cell(1000, 16, "float32", 0.01, None, 0.01,
                 missing={"scikit-learn": "below timing noise"})]


def test_heatmap_matrix_places_each_ratio(grid):
    rows, cols, M = grid.heatmap_matrix(fake_cells(), "float64", "scikit-learn")
    assert rows == ["n=100", "n=1000"] and cols == ["d=16", "d=64"]
    expected = np.array([[np.nan, 0.5], [2.0, np.nan]])
    np.testing.assert_allclose(M, expected, rtol=1e-15)
    _, _, M32 = grid.heatmap_matrix(fake_cells(), "float32", "scikit-learn")
    assert np.isnan(M32).all()


def test_markdown_table_rows(grid):
    table = grid.markdown_table(fake_cells()).splitlines()
    assert len(table) == 2 + 3
    assert table[2].startswith("| 100×64 | float64 | 20.0 | 10.0 | 0.50 | 2.00 (fallback) |")
    assert "| 4.0 |" in table[2]  # ours / floor
    assert "below timing noise" in table[4]


def test_render_writes_pngs_and_the_section(grid, tmp_path):
    out = tmp_path / "grid"
    out.mkdir()
    md = tmp_path / "RESULTS.md"
    md.write_text("# Results\n")
    results = {"cells": {str(i): c for i, c in enumerate(fake_cells())}, "machine": "m",
               "floors_text": {"float64 GEMM": "1 GFLOP/s"}}
    grid.render(results, out, md)
    png = (out / "pca.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    import matplotlib.image

    height, width, _ = matplotlib.image.imread(out / "pca.png").shape
    assert width > 300 and height > 200
    text = md.read_text()
    assert text.startswith("# Results\n")
    assert "![PCA fit](grid/pca.png)" in text
    assert text.count(grid.MARK_BEGIN) == 1 and text.rstrip().endswith(grid.MARK_END)
    assert not (out / "gmm.png").exists()  # no cells, no picture


def test_repeats_by_call_length(grid):
    assert [grid.repeats_for(t) for t in (0.01, 0.05, 1.0, 15.0, 15.1)] == [5, 3, 3, 3, 1]
