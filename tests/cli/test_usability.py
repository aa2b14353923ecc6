"""What a new user meets: choice lists, did-you-mean, full messages, dataset availability,
optional packages, ``select-k`` without files, ``.npy`` array flags and a fast ``--help``."""

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Literal

import numpy as np
import pytest
from sklearn.cluster import KMeans as SkKMeans
from sklearn.mixture import BayesianGaussianMixture as SkBGM
from sklearn.mixture import GaussianMixture as SkGMM

import latentspace
from latentspace.cli import DATASETS, main
from latentspace.cli._commands import OUTPUT_SUFFIXES
from latentspace.cli._errors import stage
from latentspace.cli._spec import (
    _from_table,
    live_specs,
    parse_type,
    render_table,
    spec_from_class,
    strip_rst,
)
from latentspace.cluster import KMeans
from latentspace.data import SUPPORTED_SUFFIXES, list_datasets, load_dataset
from latentspace.decomposition import PCA
from latentspace.exceptions import DatasetNotFoundError
from latentspace.mixture import GaussianMixture

SRC = Path(latentspace.__file__).resolve().parents[1]
TABLE = SRC / "latentspace" / "cli" / "_table.py"


def run(capsys, *argv):
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("usability")
    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 0.0], [6.0, 0.0], [0.0, 6.0]])
    X = np.concatenate([c + rng.normal(size=(40, 2)) for c in centres])
    np.save(d / "X.npy", X)
    return d, X


# ----------------------------------------------------------------------------- the flag table
def test_flag_table_matches_the_classes():
    """The static table the parser uses is what the classes' signatures and docstrings give
    today (regenerate it with ``python -m latentspace.cli._spec`` when this fails)."""
    assert TABLE.read_text(encoding="utf-8") == render_table(), (
        "latentspace/cli/_table.py is stale: run python -m latentspace.cli._spec")
    table = _from_table()
    assert table is not None  # its digest matches the sources
    assert table == live_specs()


def test_static_names_match_the_library():
    assert DATASETS == tuple(list_datasets())
    assert tuple(OUTPUT_SUFFIXES) == tuple(SUPPORTED_SUFFIXES)


# ----------------------------------------------------------------------------- choices
def _listed(help_text: str, flag: str) -> set[str]:
    m = re.search(rf"{flag} \{{([^}}]*)\}}", help_text)
    assert m, help_text
    return set(m.group(1).split(","))


def _sk_options(cls, name):
    (constraint,) = [c for c in cls._parameter_constraints[name] if hasattr(c, "options")]
    return set(constraint.options)


def test_help_lists_the_choices_scikit_learn_also_accepts(capsys):
    # scikit-learn's GaussianMixture takes the same strings: an independent list to match
    rc, out, _ = run(capsys, "fit", "gmm", "--help")
    assert rc == 0
    assert _listed(out, "--covariance-type") == _sk_options(SkGMM, "covariance_type")
    assert _listed(out, "--init-params") == _sk_options(SkGMM, "init_params")
    assert _sk_options(SkBGM, "init_params") == _listed(out, "--init-params")
    rc, out, _ = run(capsys, "fit", "kmeans", "--help")
    init = re.search(r"^\s+--init VALUE(.*?)^\s+--n-init", out, flags=re.S | re.M).group(1)
    init = " ".join(init.split())
    # KMeans' init: the strings sklearn accepts, or an array given as a file
    for word in _sk_options(SkKMeans, "init"):
        assert word in init
    assert ".npy" in init


def test_every_closed_choice_is_accepted_by_the_estimator(data, tmp_path, capsys):
    d, X = data
    for value in ("full", "tied", "diag", "spherical"):
        rc, _, err = run(capsys, "fit", "gmm", d / "X.npy", "--out", tmp_path / "g.safetensors",
                         "--n-components", 2, "--covariance-type", value, "--max-iter", 5)
        assert rc == 0, err
        assert latentspace.load(tmp_path / "g.safetensors").covariance_type == value


@pytest.mark.parametrize("argv, hint", [
    (["--covariance-type", "ful"], "did you mean 'full'?"),
    (["--init-params", "random-from-data"], "did you mean 'random_from_data'"),
    (["--missing", "marginalise"], "did you mean 'marginalize'?"),
])
def test_a_wrong_choice_is_a_usage_error_with_a_suggestion(data, tmp_path, capsys, argv, hint):
    d, _ = data
    rc, _, err = run(capsys, "fit", "gmm", d / "X.npy", "--out", tmp_path / "g.safetensors",
                     *argv)
    assert rc == 2 and hint in err and "choose one of" in err, err
    assert not (tmp_path / "g.safetensors").exists()


def test_choices_come_from_the_docstring_alone():
    class Doc:
        """A model.

        Parameters
        ----------
        kind : {"a", "b"}, default="a"
            Which one, see ``kind`` and :class:`~x.y.Thing`.
        mode : int or "auto", default="auto"
            How many.
        start : {"s", "t"} or array of shape (k, d), default="s"
            Start.
        w_init, m_init : array of shape (k,) or None
        p_init : array or None
            User values.
        """

        def __init__(self, kind="a", mode="auto", start="s", w_init=None, m_init=None,
                     p_init=None):
            pass

    spec = {p.name: p for p in spec_from_class(Doc, "doc").params}
    assert spec["kind"].choices == ("a", "b") and spec["kind"].closed
    assert spec["kind"].help == "Which one, see kind and Thing."
    assert spec["mode"].choices == ("auto",) and not spec["mode"].closed
    assert spec["start"].choices == ("s", "t") and spec["start"].closed and spec["start"].array
    for name in ("w_init", "m_init", "p_init"):  # undescribed entries share the next text
        assert spec[name].array and spec[name].help == "User values."


def test_literal_hints_give_the_choices():
    class Hinted:
        """No parameter section."""

        def __init__(self, solver: Literal["x", "y", "z"] = "x",
                     other: Literal["p", "q"] | None = None):
            pass

    spec = {p.name: p for p in spec_from_class(Hinted, "hinted").params}
    assert spec["solver"].choices == ("x", "y", "z") and spec["solver"].closed
    assert spec["other"].choices == ("p", "q") and spec["other"].none_ok


@pytest.mark.parametrize("text, expected", [
    ('{"full", "tied"}, default="full"', (("full", "tied"), True, False, False)),
    ('int or "auto", default="auto"', (("auto",), False, False, False)),
    ('{"k-means++", "random"} or array of shape (n_clusters, n_features), default="k-means++"',
     (("k-means++", "random"), True, False, True)),
    ('array of shape (n_components,) or None', ((), False, True, True)),
    ('"shared", "feature" or float, default="shared"', (("shared", "feature"), False, False,
                                                        False)),
])
def test_parse_type(text, expected):
    assert parse_type(text) == expected


# ----------------------------------------------------------------------------- RST in help
@pytest.mark.parametrize("text, plain", [
    ("the ``latentspace`` command", "the latentspace command"),
    (":class:`~latentspace.mixture.GaussianMixture` and :func:`load`", "GaussianMixture and load"),
    ("see `the paper <https://example.org>`_ here", "see the paper here"),
    ("**very** *much* h * w", "very much h * w"),
    ("as follows::", "as follows:"),
])
def test_strip_rst(text, plain):
    assert strip_rst(text) == plain


def test_no_rst_markup_in_any_help(capsys):
    commands = ["fit", "transform", "inverse-transform", "predict", "score", "sample", "info",
                "select-k", "tour", "datasets"]
    helps = [run(capsys, "--help")[1]] + [run(capsys, c, "--help")[1] for c in commands]
    helps += [run(capsys, "fit", m, "--help")[1] for m in live_specs()]
    for text in helps:
        assert "``" not in text and not re.search(r":[a-z]+:`", text), text


# ----------------------------------------------------------------------------- did you mean
@pytest.mark.parametrize("argv, hint, code", [
    (["fitt"], "did you mean 'fit'?", 2),
    (["selectk", "kmeans"], "did you mean 'select-k'?", 2),
    (["fit", "gausian_mixture", "{X}", "--out", "{d}/m.safetensors"],
     "did you mean 'gaussian_mixture'?", 2),
    (["fit", "kmean", "{X}", "--out", "{d}/m.safetensors"], "did you mean 'kmeans'", 2),
    (["fit", "pca", "{X}", "--out", "{d}/m.safetensors", "--n-componets", "2"],
     "--n-componets (did you mean '--n-components'?)", 2),
    (["select-k", "kmeans", "{X}", "--ks", "2-3", "--critrion", "elbow"],
     "did you mean '--criterion'?", 2),
    (["tour", "--dataset", "fashion_mnst"], "did you mean 'fashion_mnist'?", 2),
    # a DATA that is no file: a data error (3) as before, now with the name meant
    (["fit", "pca", "mnsit", "--out", "{d}/m.safetensors"], "did you mean 'mnist'?", 3),
])
def test_did_you_mean(data, capsys, argv, hint, code):
    d, _ = data
    argv = [a.format(X=d / "X.npy", d=d) for a in argv]
    rc, _, err = run(capsys, *argv)
    assert rc == code and hint in err, err
    assert len(err.strip().splitlines()) == 1


def test_load_dataset_suggests_a_name():
    with pytest.raises(ValueError, match="did you mean 'olivetti_faces'"):
        load_dataset("olivetti_face")


# ----------------------------------------------------------------------------- full messages
def test_the_missing_dataset_message_is_shown_in_full(tmp_path, capsys, monkeypatch):
    from latentspace.data import _datasets

    def offline(folder, download):
        raise OSError("no network")

    spec = _datasets._SPECS["frey_faces"]
    monkeypatch.setitem(_datasets._SPECS, "frey_faces",
                        type(spec)(**{**spec.__dict__, "fetch": offline}))
    with pytest.raises(DatasetNotFoundError) as info:
        load_dataset("frey_faces", data_home=tmp_path)
    expected = " ".join(str(info.value).split())
    rc, _, err = run(capsys, "fit", "pca", "frey_faces", "--out", tmp_path / "m.safetensors",
                     "--data-home", tmp_path)
    assert rc == 3
    assert "[...]" not in err and expected in err, err
    assert "curl -o" in err and err.rstrip().endswith("that holds these files.")


def test_foreign_long_messages_are_still_shortened():
    long = "x" * 2000
    with pytest.raises(Exception) as info:
        with stage("data", "cannot read data"):
            raise ValueError(long)  # raised here, outside the library: not our wording
    assert len(str(info.value)) < 500 and "--debug shows all" in str(info.value)


# ----------------------------------------------------------------------------- datasets
def test_datasets_shows_what_is_present_and_where(tmp_path, capsys, monkeypatch):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "frey_faces.npz",
             images=rng.integers(0, 256, size=(5, 28, 20), dtype=np.uint8))
    rc, out, err = run(capsys, "datasets", "--data-home", tmp_path, "--json")
    assert rc == 0, err
    rows = {r["name"]: r for r in json.loads(out)}
    assert list(rows) == list_datasets()
    for name, row in rows.items():
        # oracle: what load_dataset finds without downloading
        try:
            load_dataset(name, data_home=tmp_path, download_if_missing=False)
            loadable = True
        except DatasetNotFoundError:
            loadable = False
        assert row["present"] is loadable, name
        if name != "digits":
            assert row["folder"] == str(tmp_path)
    assert rows["frey_faces"]["files"] == [str(tmp_path / "frey_faces.npz")]
    assert rows["mnist"]["download_size"] and rows["mnist"]["files"] == []

    rc, out, _ = run(capsys, "datasets", "--data-home", tmp_path)
    lines = {ln.split()[0]: ln for ln in out.splitlines() if ln and not ln.startswith(" ")}
    assert "present" in lines["frey_faces"] and str(tmp_path / "frey_faces.npz") in out
    assert "absent" in lines["mnist"] and "MB" in lines["mnist"]
    assert f"data folder: {tmp_path}" in out

    monkeypatch.setenv("LATENTSPACE_DATA", str(tmp_path))
    rc, out, _ = run(capsys, "datasets")
    assert rc == 0 and "$LATENTSPACE_DATA" in out and str(tmp_path) in out


# ----------------------------------------------------------------------------- optional packages
def test_missing_pyarrow_is_a_data_error_with_the_pip_command(tmp_path):
    # parquet needs pyarrow; simulate its absence in a fresh interpreter
    (tmp_path / "X.parquet").write_bytes(b"PAR1")
    code = ("import sys; sys.modules['pyarrow'] = None\n"
            "from latentspace.cli import main\n"
            f"sys.exit(main(['fit', 'pca', {str(tmp_path / 'X.parquet')!r}, '--out', "
            f"{str(tmp_path / 'm.safetensors')!r}]))")
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         timeout=120)
    assert res.returncode == 3, res.stderr
    assert 'pip install "latentspace[parquet]"' in res.stderr


def test_missing_dask_outside_data_is_a_usage_error(data, tmp_path, capsys, monkeypatch):
    d, _ = data

    def fit_with_dask(self, X, y=None):
        import importlib

        importlib.import_module("dask.array")  # absent here: sys.modules["dask"] is None

    # both: an earlier test may have imported dask.array, which import_module then returns
    # from sys.modules without looking at its parent
    monkeypatch.setitem(sys.modules, "dask", None)
    monkeypatch.setitem(sys.modules, "dask.array", None)
    monkeypatch.setattr(PCA, "fit", fit_with_dask)
    rc, _, err = run(capsys, "fit", "pca", d / "X.npy", "--out", tmp_path / "m.safetensors")
    assert rc == 2 and 'pip install "latentspace[dask]"' in err, err


# ----------------------------------------------------------------------------- select-k
def test_select_k_without_out_prints_the_answer_and_writes_nothing(data, tmp_path, capsys,
                                                                  monkeypatch):
    from latentspace.selection import choose_k

    d, X = data
    monkeypatch.chdir(tmp_path)
    rc, out, err = run(capsys, "select-k", "kmeans", d / "X.npy", "--ks", "1-5", "--seed", 0)
    assert rc == 0, err
    assert list(tmp_path.iterdir()) == []
    expected = choose_k(KMeans(random_state=0), X, [1, 2, 3, 4, 5], criterion="elbow",
                        random_state=0)
    assert f"chosen K (elbow): {expected.best_k}" in out
    assert len(re.findall(r"^K=\d", out, flags=re.M)) == 5


# ----------------------------------------------------------------------------- .npy arrays
def test_array_parameters_are_read_from_npy_files(data, tmp_path, capsys):
    d, X = data
    means = np.array([[0.5, 0.5], [5.5, 0.5], [0.5, 5.5]])
    np.save(tmp_path / "means.npy", means)
    rc, _, err = run(capsys, "fit", "gmm", d / "X.npy", "--out", tmp_path / "g.safetensors",
                     "--n-components", 3, "--means-init", tmp_path / "means.npy",
                     "--max-iter", 3, "--seed", 0)
    assert rc == 0, err
    got = latentspace.load(tmp_path / "g.safetensors")
    direct = GaussianMixture(n_components=3, means_init=means, max_iter=3, random_state=0).fit(X)
    np.testing.assert_array_equal(got.means_, direct.means_)
    np.testing.assert_array_equal(got.means_init, means)

    rc, _, err = run(capsys, "fit", "kmeans", d / "X.npy", "--out", tmp_path / "k.safetensors",
                     "--n-clusters", 3, "--init", tmp_path / "means.npy", "--seed", 0)
    assert rc == 0, err
    sk = SkKMeans(n_clusters=3, init=means, n_init=1).fit(X)
    km = latentspace.load(tmp_path / "k.safetensors")
    assert set(km.labels_.tolist()) == {0, 1, 2}
    np.testing.assert_allclose(km.cluster_centers_, sk.cluster_centers_, rtol=1e-9, atol=1e-9)


def test_bad_npy_files_are_data_errors(data, tmp_path, capsys):
    d, _ = data
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    (tmp_path / "junk.npy").write_bytes(b"not a numpy file")
    for name, words in (("missing.npy", "no .npy file"), ("obj.npy", "cannot read"),
                        ("junk.npy", "cannot read")):
        rc, _, err = run(capsys, "fit", "gmm", d / "X.npy", "--out", tmp_path / "g.safetensors",
                         "--n-components", 3, "--means-init", tmp_path / name)
        assert rc == 3 and "--means-init" in err and words in err and name in err, err
    rc, _, err = run(capsys, "fit", "gmm", d / "X.npy", "--out", tmp_path / "g.safetensors",
                     "--means-init", "1,2")
    assert rc == 2 and ".npy" in err


# ----------------------------------------------------------------------------- startup time
def test_help_starts_fast_and_imports_nothing_heavy():
    code = ("import sys, time; t = time.perf_counter()\n"
            "from latentspace.cli import main\n"
            "for argv in (['--help'], ['fit', 'gmm', '--help'], ['select-k', 'kmeans', '--help'],"
            " ['tour', '--help']):\n"
            "    try:\n        main(argv)\n    except SystemExit:\n        pass\n"
            "print('HEAVY', sorted(m for m in ('torch', 'sklearn', 'matplotlib', 'scipy') "
            "if m in sys.modules))")
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    t0 = time.perf_counter()
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         timeout=60)
    seconds = time.perf_counter() - t0
    assert res.returncode == 0, res.stderr
    assert "HEAVY []" in res.stdout
    assert seconds < 1.5, seconds  # measured ~0.1 s; the bound leaves room for a busy machine
