"""``latentspace select-k``: the curve as an image, the chosen K equal to ``choose_k``'s own."""

import json
import re

import numpy as np
import pytest
from sklearn.datasets import make_blobs

from latentspace.cli import main
from latentspace.cli._commands import parse_ks
from latentspace.cluster import KMeans
from latentspace.decomposition import PCA
from latentspace.mixture import GaussianMixture
from latentspace.selection import choose_k

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def blobs(tmp_path_factory):
    d = tmp_path_factory.mktemp("selectk")
    X, _ = make_blobs(240, n_features=3, centers=[[0, 0, 0], [0, 9, 0], [9, 0, 0], [9, 9, 9]],
                      cluster_std=1.0, random_state=0)
    np.save(d / "X.npy", X)
    return d, X


def run(capsys, *argv):
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def chosen(out: str) -> int:
    m = re.search(r"^chosen K \((\w+)\): (\d+)$", out, flags=re.M)
    assert m, out
    return int(m.group(2))


def assert_png(path):
    raw = path.read_bytes()
    assert raw.startswith(PNG_SIGNATURE)
    import matplotlib.image as mpimg

    img = mpimg.imread(path)  # decodes the whole image
    assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 100
    assert float(img[..., :3].std()) > 0.01  # something was drawn, not a blank canvas


@pytest.mark.parametrize("model, criterion, flags, template", [
    ("kmeans", "elbow", ["--n-init", "2"], KMeans(n_init=2, random_state=3)),
    ("gmm", "bic", ["--covariance-type", "diag"],
     GaussianMixture(covariance_type="diag", random_state=3)),
    ("gmm", "aic", ["--covariance-type", "full", "--max-iter", "50"],
     GaussianMixture(covariance_type="full", max_iter=50, random_state=3)),
    ("kmeans", "heldout", ["--n-init", "1"], KMeans(n_init=1, random_state=3)),
    ("pca", "heldout", [], PCA(random_state=3)),
])
def test_chosen_k_and_scores_equal_choose_k(blobs, tmp_path, capsys, model, criterion, flags,
                                            template):
    d, X = blobs
    ks = [1, 2, 3] if model == "pca" else [1, 2, 3, 4, 5, 6]
    rc, out, err = run(capsys, "select-k", model, d / "X.npy", "--ks", ",".join(map(str, ks)),
                       "--criterion", criterion, "--cv", 3, "--seed", 3, *flags,
                       "--out", tmp_path / "curve.png", "--json", tmp_path / "scores.json")
    assert rc == 0, err
    ref = choose_k(template, X, ks, criterion=criterion, cv=3, random_state=3)
    assert chosen(out) == ref.best_k
    assert_png(tmp_path / "curve.png")
    doc = json.loads((tmp_path / "scores.json").read_text())
    assert doc["best_k"] == ref.best_k and doc["ks"] == ks and doc["criterion"] == criterion
    np.testing.assert_allclose(doc["scores"], ref.scores, rtol=1e-9)
    if criterion == "heldout":
        np.testing.assert_allclose(doc["scores_std"], ref.scores_std, rtol=1e-9, atol=1e-12)
    else:
        assert doc["scores_std"] is None
    # one printed line per K, the chosen one marked
    lines = [ln for ln in out.splitlines() if ln.startswith("K=")]
    assert len(lines) == len(ks)
    assert [ln for ln in lines if ln.endswith("<- chosen")] == [
        ln for ln in lines if ln.startswith(f"K={ref.best_k} ")]


def test_four_blobs_give_four_clusters(blobs, tmp_path, capsys):
    # an oracle independent of choose_k: the data were drawn from four separated blobs
    d, _ = blobs
    for criterion in ("elbow", "bic"):
        model = "kmeans" if criterion == "elbow" else "gmm"
        rc, out, err = run(capsys, "select-k", model, d / "X.npy", "--ks", "1-8",
                           "--criterion", criterion, "--seed", 0, "--out", tmp_path / "c.svg")
        assert rc == 0, err
        assert chosen(out) == 4, (criterion, out)
        assert (tmp_path / "c.svg").read_text().lstrip().startswith(("<?xml", "<svg"))


@pytest.mark.parametrize("argv, needle", [
    (["kmeans", "{X}", "--ks", "2-4", "--criterion", "bic"], "needs a mixture"),
    (["pca", "{X}", "--ks", "2-3", "--criterion", "elbow"], "no predict"),
    (["gan", "{X}", "--ks", "2-3", "--criterion", "heldout"], "no number of clusters"),
    (["kmeans", "{X}", "--ks", "3-2"], "empty range"),
    (["kmeans", "{X}", "--ks", "0,2"], "at least 1"),
    (["kmeans", "{X}", "--ks", "2,2"], "twice"),
    (["kmeans", "{X}", "--ks", "two"], "expected integers"),
    (["kmeans", "{X}", "--ks", "2,500"], "largest K (500)"),
    (["kmeans", "{X}", "--ks", "2,3", "--criterion", "heldout", "--cv", "1"], "--cv"),
    (["kmeans", "{X}", "--ks", "2,3", "--criterion", "nope"], "invalid choice"),
    (["kmeans", "{X}", "--ks", "2,3", "--n-init", "0"], "n_init"),
    (["kmeans", "{X}", "--ks", "2,3", "--n-clusters", "4"], "unrecognized arguments"),
])
def test_usage_errors_exit_2(blobs, tmp_path, capsys, argv, needle):
    d, _ = blobs
    argv = [a.format(X=d / "X.npy") for a in argv]
    out_file = "curve.png"
    rc, _, err = run(capsys, "select-k", *argv, "--out", tmp_path / out_file)
    assert rc == 2, err
    assert len(err.strip().splitlines()) == 1 and needle in err, err
    assert not (tmp_path / out_file).exists()


def test_bad_output_suffix_and_data_errors(blobs, tmp_path, capsys):
    d, X = blobs
    rc, _, err = run(capsys, "select-k", "kmeans", d / "X.npy", "--ks", "2,3",
                     "--out", tmp_path / "curve.txt")
    assert rc == 2 and ".png" in err
    bad = X.copy()
    bad[0, 0] = np.nan
    np.save(tmp_path / "nan.npy", bad)
    rc, _, err = run(capsys, "select-k", "kmeans", tmp_path / "nan.npy", "--ks", "2,3",
                     "--out", tmp_path / "curve.png")
    assert rc == 3 and "NaN" in err
    assert not (tmp_path / "curve.png").exists()


def test_parse_ks():
    assert parse_ks("2,3,5") == [2, 3, 5]
    assert parse_ks("2-5") == [2, 3, 4, 5]
    assert parse_ks("50-200:50") == [50, 100, 150, 200]
    assert parse_ks("10, 1-3") == [1, 2, 3, 10]
