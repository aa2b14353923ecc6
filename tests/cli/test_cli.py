"""The ``latentspace`` command, run in-process through ``main([...])`` (one subprocess test)."""

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA as SkPCA

import latentspace
from latentspace import base
from latentspace.cli import main
from latentspace.cli._errors import classify
from latentspace.decomposition import PCA
from latentspace.exceptions import (
    ChecksumError,
    DatasetNotFoundError,
    ModelFormatError,
    NotFittedError,
    TrainingDivergedError,
)

SRC = Path(latentspace.__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """A small data file and a PCA fitted on it through the command line."""
    d = tmp_path_factory.mktemp("cli")
    X = load_digits().data[:240] / 16.0
    np.save(d / "X.npy", X)
    rc = main(["fit", "pca", str(d / "X.npy"), "--out", str(d / "pca.safetensors"),
               "--n-components", "5", "--seed", "7"])
    assert rc == 0
    return d, X


def run(capsys, *argv):
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def assert_one_line_error(err):
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("latentspace: error: ")


# ----------------------------------------------------------------------------- round trip
def test_fit_saves_a_loadable_model_equal_to_a_direct_fit(work):
    d, X = work
    est = latentspace.load(d / "pca.safetensors")
    assert type(est) is PCA and est.n_components == 5 and est.random_state == 7
    direct = PCA(5, random_state=7).fit(X)
    np.testing.assert_allclose(est.components_, direct.components_, atol=1e-12)


def test_transform_inverse_transform_score_round_trip(work, capsys):
    d, X = work
    est = latentspace.load(d / "pca.safetensors")
    rc, out, _ = run(capsys, "transform", d / "pca.safetensors", d / "X.npy", "--out", d / "Z.npy")
    assert rc == 0 and "Z.npy" in out
    Z = np.load(d / "Z.npy")
    np.testing.assert_array_equal(Z, est.transform(X))
    sk = SkPCA(5, svd_solver="full").fit(X)  # an independent oracle, up to component signs
    np.testing.assert_allclose(np.abs(Z), np.abs(sk.transform(X)), atol=1e-9)

    rc, _, _ = run(capsys, "inverse-transform", d / "pca.safetensors", d / "Z.npy",
                   "--out", d / "Xhat.csv")
    assert rc == 0
    Xhat = np.loadtxt(d / "Xhat.csv", delimiter=",", skiprows=1)
    np.testing.assert_allclose(Xhat, sk.inverse_transform(sk.transform(X)), atol=1e-9)

    rc, out, _ = run(capsys, "score", d / "pca.safetensors", d / "X.npy")
    assert rc == 0
    assert float(out.strip()) == est.score(X)
    assert float(out.strip()) == pytest.approx(sk.score(X), rel=1e-9)

    rc, _, _ = run(capsys, "score", d / "pca.safetensors", d / "X.npy", "--per-sample",
                   "--out", d / "ll.npy")
    assert rc == 0
    np.testing.assert_allclose(np.load(d / "ll.npy"), sk.score_samples(X), rtol=1e-9)


def test_sample_is_seeded(work, capsys):
    d, X = work
    for name in ("s1.npy", "s2.npy"):
        rc, _, _ = run(capsys, "sample", d / "pca.safetensors", "-n", 50, "--seed", 3,
                       "--out", d / name)
        assert rc == 0
    s1, s2 = np.load(d / "s1.npy"), np.load(d / "s2.npy")
    assert s1.shape == (50, 64) and np.all(np.isfinite(s1))
    np.testing.assert_array_equal(s1, s2)
    est = latentspace.load(d / "pca.safetensors")
    np.testing.assert_array_equal(s1, est.sample(50, random_state=3))


def test_info_reads_the_header_only(work, capsys):
    d, _ = work
    rc, out, _ = run(capsys, "info", d / "pca.safetensors")
    assert rc == 0
    assert "class: PCA" in out and "components_: F64 (5, 64)" in out
    assert "n_components = 5" in out and "random_state = 7" in out
    rc, out, _ = run(capsys, "info", d / "pca.safetensors", "--json")
    info = json.loads(out)
    est = latentspace.load(d / "pca.safetensors")
    assert info["class"] == "PCA" and info["format_version"] == latentspace.io.FORMAT_VERSION == 2
    assert info["library_version"] == latentspace.__version__
    assert info["params"]["n_components"] == 5
    assert info["fitted_arrays"]["components_"]["shape"] == list(est.components_.shape)
    assert info["fitted_scalars"]["fit_svd_solver_"] == est.fit_svd_solver_


def test_info_never_unpickles(tmp_path, capsys):
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    path = tmp_path / "evil.safetensors"
    path.write_bytes(pickle.dumps(Payload()))
    rc, _, err = run(capsys, "info", path)
    assert rc == 4 and not marker.exists()
    assert_one_line_error(err)
    assert "pickle" in err


def test_datasets_lists_names(capsys):
    rc, out, _ = run(capsys, "datasets")
    assert rc == 0 and out.split()[0] == "digits" and "lfw_people" in out.split()


def test_tour_quick_pca(tmp_path, capsys):
    rc, out, err = run(capsys, "tour", "--quick", "--chapters", "pca", "--out", tmp_path / "t",
                       "--no-progress")
    assert rc == 0, err
    index = Path(out.strip().splitlines()[-1])
    assert index == tmp_path / "t" / "index.html" and index.is_file()
    summary = json.loads((tmp_path / "t" / "summary.json").read_text())
    assert list(summary["chapters"]) == ["pca"] and summary["quick"] is True


# ----------------------------------------------------------------------------- generated flags
class _ToyModel(base.LatentModel):  # leading underscore: not registered by itself
    def __init__(self, n_things=2, *, alpha=1.0, flag=False, mode="a", maybe=None,
                 sizes=(4, 4), random_state=None, device="cpu"):
        self.n_things = n_things
        self.alpha = alpha
        self.flag = flag
        self.mode = mode
        self.maybe = maybe
        self.sizes = sizes
        self.random_state = random_state
        self.device = device

    def fit(self, X, y=None):
        X, _ = self._check_X(X, reset=True)
        self.mean_ = X.mean(0).cpu().numpy()
        return self


@pytest.fixture
def toy(monkeypatch):
    monkeypatch.setitem(base._REGISTRY, "ToyModel", _ToyModel)
    return _ToyModel


@pytest.mark.parametrize("flags, expected", [
    ([], {}),
    (["--n-things", "3", "--alpha", "1e-3"], {"n_things": 3, "alpha": 1e-3}),
    (["--flag"], {"flag": True}),
    (["--flag", "--no-flag"], {"flag": False}),
    (["--mode", "b", "--maybe", "0.5"], {"mode": "b", "maybe": 0.5}),
    (["--maybe", "7"], {"maybe": 7}),
    (["--maybe", "mle"], {"maybe": "mle"}),
    (["--maybe", "none", "--sizes", "200,100,50"], {"maybe": None, "sizes": (200, 100, 50)}),
    (["--seed", "11", "--device", "cpu"], {"random_state": 11, "device": "cpu"}),
])
def test_flags_are_generated_and_typed_from_defaults(toy, work, capsys, flags, expected):
    d, _ = work
    out = d / "toy.safetensors"
    rc, _, err = run(capsys, "fit", "toy_model", d / "X.npy", "--out", out, *flags)
    assert rc == 0, err
    rc, info, _ = run(capsys, "info", out, "--json")
    params = json.loads(info)["params"]
    defaults = {"n_things": 2, "alpha": 1.0, "flag": False, "mode": "a", "maybe": None,
                "sizes": [4, 4], "random_state": None, "device": "cpu"}
    for k, v in {**defaults, **expected}.items():
        assert params[k] == (list(v) if isinstance(v, tuple) else v), k
        assert type(params[k]) is type(list(v) if isinstance(v, tuple) else v), k


@pytest.mark.parametrize("name", ["ToyModel", "toy-model", "TOY_MODEL"])
def test_model_names_are_resolved_loosely(toy, work, capsys, name):
    d, _ = work
    rc, _, _ = run(capsys, "fit", name, d / "X.npy", "--out", d / "toy2.safetensors")
    assert rc == 0


def test_model_list_comes_from_the_registry(toy, monkeypatch):
    from latentspace.cli._params import model_classes, resolve_model

    class _SomethingBase(base.LatentModel):
        def fit(self, X, y=None):
            return self

    monkeypatch.setitem(base._REGISTRY, "SomethingBase", _SomethingBase)
    models = model_classes()
    assert models["pca"] is PCA and models["toy_model"] is _ToyModel
    assert "something_base" not in models  # shared bases are not offered
    for alias, cls_name in (("gmm", "GaussianMixture"), ("bmm", "BernoulliMixture"),
                            ("ae", "Autoencoder")):
        if cls_name in base.registered_models():
            assert resolve_model(alias).__name__ == cls_name


def test_fit_help_lists_the_model_hyperparameters(capsys):
    rc, out, _ = run(capsys, "fit", "pca", "--help")
    assert rc == 0
    for flag in ("--n-components", "--svd-solver", "--whiten", "--iterated-power", "--seed"):
        assert flag in out
    assert "--random-state" not in out  # set through --seed


# ----------------------------------------------------------------------------- exit codes
@pytest.mark.parametrize("argv", [
    [],
    ["frobnicate"],
    ["fit", "no_such_model", "{X}", "--out", "{d}/m.safetensors"],
    ["fit", "pca", "{X}"],  # --out missing
    ["fit", "pca", "{X}", "--out", "{d}/m.safetensors", "--bogus", "1"],
    ["fit", "pca", "{X}", "--out", "{d}/m.safetensors", "--n-oversamples", "ten"],
    ["fit", "pca", "{X}", "--out", "{d}/m.safetensors", "--n-components", "1000"],
    ["fit", "pca", "{X}", "--out", "{d}/no_such_folder/m.safetensors"],
    ["transform", "{d}/pca.safetensors", "{X}", "--out", "{d}/Z.txt"],
    ["predict", "{d}/pca.safetensors", "{X}", "--out", "{d}/labels.npy"],
    ["tour", "--chapters", "pca,nope", "--out", "{d}/t"],
    ["tour", "--dataset", "nope"],
    ["score", "{d}/pca.safetensors", "{X}", "--out", "{d}/s.npy"],  # --out without --per-sample
    ["transform", "{d}/pca.safetensors", "{X}", "--out", "{d}/Z.npy", "--device", "tpu"],
    ["fit", "pca", "{X}", "--out", "{d}/m.safetensors", "--device", "tpu"],
    ["tour", "--device", "tpu", "--out", "{d}/t"],
])
def test_usage_errors_exit_2(work, capsys, argv):
    d, _ = work
    argv = [a.format(d=d, X=d / "X.npy") for a in argv]
    rc, _, err = run(capsys, *argv)
    assert rc == 2
    assert_one_line_error(err)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_a_gpu_is_a_usage_error(work, capsys):
    d, _ = work
    rc, _, err = run(capsys, "transform", d / "pca.safetensors", d / "X.npy", "--out",
                     d / "Z.npy", "--device", "cuda")
    assert rc == 2 and "no CUDA device" in err


def test_fit_accepts_a_dataset_name(tmp_path, capsys):
    rc, out, _ = run(capsys, "fit", "pca", "digits", "--out", tmp_path / "m.safetensors",
                     "--n-components", "0.9")
    assert rc == 0 and "1797×64" in out
    est = latentspace.load(tmp_path / "m.safetensors")
    assert est.n_components_ == SkPCA(0.9, svd_solver="full").fit(
        load_digits().data / 16.0).n_components_


def test_bad_data_exits_3(work, capsys, tmp_path):
    d, X = work
    bad = X.copy()
    bad[3, 4] = np.nan
    np.save(tmp_path / "nan.npy", bad)
    np.save(tmp_path / "narrow.npy", X[:, :10])
    (tmp_path / "text.csv").write_text("a,b\nx,y\n")
    model, z = d / "pca.safetensors", tmp_path / "z.npy"
    cases = [
        (["fit", "pca", tmp_path / "nan.npy", "--out", tmp_path / "m.safetensors"], "NaN"),
        (["transform", model, tmp_path / "nan.npy", "--out", tmp_path / "z.npy"], "NaN"),
        (["score", model, tmp_path / "nan.npy"], "NaN"),
        (["transform", model, tmp_path / "narrow.npy", "--out", z], "10 features"),
        (["transform", model, tmp_path / "missing.npy", "--out", z], "missing.npy"),
        (["fit", "pca", tmp_path / "text.csv", "--out", tmp_path / "m.safetensors"], "text.csv"),
    ]
    for argv, needle in cases:
        rc, _, err = run(capsys, *argv)
        assert rc == 3, (argv, err)
        assert_one_line_error(err)
        assert needle in err
    assert not (tmp_path / "m.safetensors").exists()


def test_model_file_errors_exit_4(work, capsys, tmp_path):
    d, X = work
    good = (d / "pca.safetensors").read_bytes()
    (tmp_path / "truncated.safetensors").write_bytes(good[: len(good) // 2])
    (tmp_path / "garbage.safetensors").write_bytes(os.urandom(300))
    (tmp_path / "empty.safetensors").write_bytes(b"")
    flipped = bytearray(good)
    flipped[-3] ^= 0xFF  # a payload byte: only the checksum can notice
    (tmp_path / "flipped.safetensors").write_bytes(bytes(flipped))
    PCA(3).save(tmp_path / "unfitted.safetensors")
    for name in ("truncated", "garbage", "empty", "flipped", "missing", "unfitted"):
        rc, _, err = run(capsys, "transform", tmp_path / f"{name}.safetensors", d / "X.npy",
                         "--out", tmp_path / "z.npy")
        assert rc == 4, (name, err)
        assert_one_line_error(err)
    rc, _, err = run(capsys, "info", tmp_path / "garbage.safetensors")
    assert rc == 4
    assert not (tmp_path / "z.npy").exists()


def test_non_finite_results_exit_5(work, capsys, tmp_path):
    d, X = work
    est = PCA(3).fit(X)
    est.components_[0, :] = 1e308  # finite, as a model file must hold, but transforms overflow
    est.save(tmp_path / "inf.safetensors")
    rc, _, err = run(capsys, "transform", tmp_path / "inf.safetensors", d / "X.npy",
                     "--out", tmp_path / "z.npy")
    assert rc == 5 and "NaN or infinite" in err
    assert_one_line_error(err)
    rc, _, err = run(capsys, "score", tmp_path / "inf.safetensors", d / "X.npy")
    assert rc == 5
    assert not (tmp_path / "z.npy").exists()


def test_warnings_are_one_line_on_stderr(work, capsys, tmp_path):
    d, _ = work
    rc, _, err = run(capsys, "fit", "gmm", d / "X.npy", "--out", tmp_path / "g.safetensors",
                     "--n-components", 3, "--covariance-type", "diag", "--max-iter", 1,
                     "--seed", 0)
    assert rc == 0
    lines = err.strip().splitlines()
    assert lines and all(ln.startswith("latentspace: warning: ") for ln in lines), err
    assert "did not converge" in err and "Traceback" not in err and ".py:" not in err


def test_score_n_importance_is_checked(work, capsys):
    d, _ = work
    rc, _, err = run(capsys, "score", d / "pca.safetensors", d / "X.npy", "--n-importance", 5)
    assert rc == 2 and "only VAE" in err
    rc, _, err = run(capsys, "score", d / "pca.safetensors", d / "X.npy", "--n-importance", 0)
    assert rc == 2 and "at least 1" in err


def test_threads_apply_to_the_command_only(work, monkeypatch, capsys):
    from latentspace.cli import _commands

    seen = []
    monkeypatch.setattr(_commands, "cmd_fit", lambda args: seen.append(torch.get_num_threads()))
    before = torch.get_num_threads()
    d, _ = work
    target = 2 if before == 1 else 1
    rc, _, err = run(capsys, "fit", "pca", d / "X.npy", "--out", d / "t.safetensors",
                     "--threads", target)
    assert rc == 0, err
    assert seen == [target] and torch.get_num_threads() == before
    rc, _, err = run(capsys, "tour", "--threads", 0)
    assert rc == 2 and "--threads" in err


def test_interrupt_exits_130(monkeypatch, capsys):
    from latentspace.cli import _commands

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(_commands, "cmd_datasets", interrupted)
    rc, _, err = run(capsys, "datasets")
    assert rc == 130 and err.strip() == "latentspace: error: interrupted"


def test_debug_shows_the_traceback(work, capsys, tmp_path):
    d, _ = work
    argv = ["transform", tmp_path / "missing.safetensors", d / "X.npy", "--out", tmp_path / "z.npy"]
    rc, _, err = run(capsys, *argv, "--debug")
    assert rc == 4 and "Traceback" in err and err.strip().endswith(
        "no model file at " + str(tmp_path / "missing.safetensors"))


@pytest.mark.parametrize("stage, exc, params, code", [
    ("model", FileNotFoundError("no model file"), (), 4),
    ("data", FileNotFoundError("no data file"), (), 3),
    ("data", DatasetNotFoundError("mnist not found"), (), 3),
    ("compute", DatasetNotFoundError("mnist not found"), (), 3),
    ("data", ModelFormatError("bad"), (), 4),
    ("model", ChecksumError("bad digest"), (), 4),
    ("compute", NotFittedError("not fitted"), (), 4),
    ("fit", ValueError("n_components=9 must be between 1 and 4"), ("n_components",), 2),
    ("fit", ValueError("Input X contains NaN"), ("n_components",), 3),
    ("compute", TypeError("complex data"), (), 3),
    ("fit", TrainingDivergedError("epoch 3"), (), 5),
    ("compute", torch.linalg.LinAlgError("not positive definite"), (), 5),
    ("data", np.linalg.LinAlgError("singular"), (), 5),
    ("output", ValueError("suffix"), (), 2),
    ("compute", RuntimeError("a bug"), (), 1),
])
def test_exception_to_exit_code_matrix(stage, exc, params, code):
    assert classify(stage, exc, params) == code


# ----------------------------------------------------------------------------- console entry
def test_python_dash_m_exit_codes_and_one_line_stderr(work, tmp_path):
    d, _ = work
    env = dict(os.environ, PYTHONPATH=str(SRC))
    missing = subprocess.run(
        [sys.executable, "-m", "latentspace", "transform", str(tmp_path / "none.safetensors"),
         str(d / "X.npy"), "--out", str(tmp_path / "z.npy")],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert missing.returncode == 4
    assert missing.stdout == ""
    assert_one_line_error(missing.stderr)
    ok = subprocess.run(
        [sys.executable, "-m", "latentspace", "score", str(d / "pca.safetensors"),
         str(d / "X.npy")],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert ok.returncode == 0 and ok.stderr == ""
    assert float(ok.stdout) == latentspace.load(d / "pca.safetensors").score(np.load(d / "X.npy"))
