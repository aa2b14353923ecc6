"""Every registered model from the command line, on every data format.

For each model (tiny settings) and each DATA form (.npy, .npz, .csv, .parquet, a dataset
name): fit -> info -> each of transform, inverse-transform, score, score --per-sample, sample,
predict, predict --proba that the model supports, the others refused with exit code 2. The
oracle is the Python API: the model the command saved equals a direct fit with the same seed,
and every output file equals the loaded model's own method on the same data.
"""

import json

import numpy as np
import pandas as pd
import pytest

import latentspace
from latentspace.cli import main
from latentspace.cli._params import model_classes
from latentspace.data import load_dataset

N_ROWS = 150
# tiny settings: unconverged EM and collapsed 2-epoch VAEs are expected here
pytestmark = [pytest.mark.filterwarnings("ignore:.*did not converge"),
              pytest.mark.filterwarnings("ignore:.*stopped at max_epochs"),
              pytest.mark.filterwarnings("ignore:posterior collapse")]

# name on the command line -> (tiny hyperparameter flags, the same as keyword arguments)
MODELS = {
    "pca": (["--n-components", "4"], {"n_components": 4}),
    "kmeans": (["--n-clusters", "3", "--n-init", "1"], {"n_clusters": 3, "n_init": 1}),
    "gaussian_mixture": (["--n-components", "3", "--covariance-type", "diag", "--max-iter", "20"],
                         {"n_components": 3, "covariance_type": "diag", "max_iter": 20}),
    "bernoulli_mixture": (["--n-components", "3", "--binarize", "0.5", "--max-iter", "20"],
                          {"n_components": 3, "binarize": 0.5, "max_iter": 20}),
    "ppcamixture": (["--n-components", "3", "--n-latent", "2", "--max-iter", "20"],
                    {"n_components": 3, "n_latent": 2, "max_iter": 20}),
    "autoencoder": (["--latent-dim", "3", "--hidden-sizes", "8", "--max-epochs", "2"],
                    {"latent_dim": 3, "hidden_sizes": (8,), "max_epochs": 2}),
    "vae": (["--latent-dim", "2", "--hidden-sizes", "8", "--max-epochs", "2"],
            {"latent_dim": 2, "hidden_sizes": (8,), "max_epochs": 2}),
    "gan": (["--latent-dim", "2", "--generator-sizes", "8", "--discriminator-sizes", "8",
             "--max-epochs", "2"],
            {"latent_dim": 2, "generator_sizes": (8,), "discriminator_sizes": (8,),
             "max_epochs": 2}),
}
# what each model offers on the command line (the rest must be refused with exit code 2)
SUPPORTS = {
    "pca": {"transform", "inverse-transform", "score", "per-sample", "sample"},
    "kmeans": {"transform", "inverse-transform", "score", "predict"},
    "gaussian_mixture": {"score", "per-sample", "sample", "predict", "proba"},
    "bernoulli_mixture": {"score", "per-sample", "sample", "predict", "proba"},
    "ppcamixture": {"transform", "inverse-transform", "score", "per-sample", "sample", "predict",
                    "proba"},
    "autoencoder": {"transform", "inverse-transform", "score", "per-sample"},
    "vae": {"transform", "inverse-transform", "score", "per-sample", "sample", "iwae"},
    "gan": {"sample"},
}
OPERATIONS = ("transform", "inverse-transform", "score", "per-sample", "sample", "predict",
              "proba", "iwae")
FORMATS = ("npy", "npz", "csv", "parquet", "dataset")
# The command and the loaded model compute the same numbers on differently produced inputs
# (a file parsed by the command against the array given in process) and may reduce them in
# other orders, so they agree to the precision of the model's arithmetic, not bit for bit:
# float32 networks to about 1e-6 relative (a few units of float32's 1.2e-7 over the
# feature sums), float64 models to about 1e-12. The tolerances leave a factor of 10.
NEURAL = {"autoencoder", "vae", "gan"}


def rtol_for(model: str) -> float:
    return 1e-5 if model in NEURAL else 1e-9


def assert_close(got, expected, rtol):
    """Elementwise within ``rtol`` of the larger magnitudes (entries near 0 get an absolute
    tolerance of the same relative size)."""
    expected = np.asarray(expected, dtype=np.float64)
    scale = float(np.max(np.abs(expected))) if expected.size else 0.0
    np.testing.assert_allclose(got, expected, rtol=rtol, atol=rtol * scale)


def test_the_table_covers_every_registered_model():
    assert set(model_classes()) == set(MODELS) == set(SUPPORTS)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """The first N_ROWS digits in every file format (and the dataset itself by name)."""
    d = tmp_path_factory.mktemp("parity")
    full = np.asarray(load_dataset("digits").data)  # as the command reads it (float32)
    small = full[:N_ROWS].astype(np.float64)
    np.save(d / "X.npy", small)
    np.savez(d / "X.npz", X=small)
    np.savetxt(d / "X.csv", small, delimiter=",", fmt="%.17g")
    pd.DataFrame(small, columns=[f"p{i}" for i in range(small.shape[1])]).to_parquet(
        d / "X.parquet")
    return d, {"npy": small, "npz": small, "csv": small, "parquet": small,
                "dataset": full}


def read_back(path):
    """Read an output file with numpy / pandas (not with the library's reader)."""
    suffix = path.suffix
    if suffix == ".npy":
        return np.load(path)
    if suffix == ".npz":
        with np.load(path) as z:
            return z["X"]
    if suffix == ".csv":
        return np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2).squeeze()
    return pd.read_parquet(path).to_numpy().squeeze()


def run(capsys, *argv):
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("model", sorted(MODELS))
def test_fit_info_and_every_supported_command(data, tmp_path, capsys, model, fmt):
    d, arrays = data
    X = arrays[fmt]
    src = "digits" if fmt == "dataset" else d / f"X.{fmt}"
    ext = "npy" if fmt == "dataset" else fmt  # outputs in the input's format
    flags, kwargs = MODELS[model]
    path = tmp_path / "model.safetensors"

    rc, out, err = run(capsys, "fit", model, src, "--out", path, "--seed", 0, *flags)
    assert rc == 0, err
    est = latentspace.load(path)
    cls = model_classes()[model]
    assert type(est) is cls and f"{X.shape[0]}×{X.shape[1]}" in out
    assert est.n_features_in_ == X.shape[1]

    # the saved model is the model the Python API fits with the same settings
    direct = cls(**kwargs, random_state=0).fit(X)
    probe = X[:20]
    if "transform" in SUPPORTS[model]:
        np.testing.assert_allclose(est.transform(probe), direct.transform(probe), atol=1e-5)
    elif "score" in SUPPORTS[model]:
        np.testing.assert_allclose(est.score(probe), direct.score(probe), rtol=1e-6)
    else:
        np.testing.assert_allclose(est.sample(5, random_state=1), direct.sample(5, random_state=1),
                                   atol=1e-5)

    rc, out, err = run(capsys, "info", path, "--json")
    assert rc == 0, err
    info = json.loads(out)
    assert info["class"] == cls.__name__ and info["params"]["random_state"] == 0
    for k, v in kwargs.items():
        assert info["params"][k] == (list(v) if isinstance(v, tuple) else v), k
    assert info["fitted_arrays"] or info["state_tensors"]

    def out_file(name):
        return tmp_path / f"{name}.{ext}"

    supported = SUPPORTS[model]
    for op in OPERATIONS:
        if op == "transform":
            argv = ["transform", path, src, "--out", out_file("Z")]
        elif op == "inverse-transform":
            argv = ["inverse-transform", path, out_file("Z"), "--out", out_file("Xhat")]
        elif op == "score":
            argv = ["score", path, src]
        elif op == "per-sample":
            argv = ["score", path, src, "--per-sample", "--out", out_file("ll")]
        elif op == "iwae":
            argv = ["score", path, src, "--n-importance", 3]
        elif op == "sample":
            argv = ["sample", path, "-n", 7, "--seed", 5, "--out", out_file("S")]
        elif op == "predict":
            argv = ["predict", path, src, "--out", out_file("labels")]
        else:
            argv = ["predict", path, src, "--proba", "--out", out_file("proba")]
        rc, out, err = run(capsys, *argv)
        if op not in supported:
            if op == "inverse-transform":
                continue  # needs the codes of transform, which the model has not
            assert rc == 2, (op, err)
            assert len(err.strip().splitlines()) == 1 and "error:" in err, (op, err)
            continue
        assert rc == 0, (op, err)
        rtol = rtol_for(model)
        if op == "transform":
            assert_close(read_back(out_file("Z")), est.transform(X), max(rtol, 1e-6))
        elif op == "inverse-transform":
            Z = read_back(out_file("Z")).reshape(len(X), -1)
            assert_close(read_back(out_file("Xhat")), est.inverse_transform(Z), max(rtol, 1e-6))
        elif op == "score":
            assert float(out.strip()) == pytest.approx(est.score(X), rel=rtol)
        elif op == "per-sample":
            assert_close(read_back(out_file("ll")), est.score_samples(X), rtol)
        elif op == "iwae":
            assert float(out.strip()) == pytest.approx(
                np.mean(est.score_samples(X, n_importance=3)), rel=rtol)
        elif op == "sample":
            S = est.sample(7, random_state=5)
            S = S[0] if isinstance(S, tuple) else S
            assert_close(read_back(out_file("S")), S, max(rtol, 1e-6))
        elif op == "predict":
            np.testing.assert_array_equal(read_back(out_file("labels")), est.predict(X))
        else:
            P = read_back(out_file("proba"))
            np.testing.assert_allclose(P, est.predict_proba(X), rtol=1e-9, atol=1e-12)
            np.testing.assert_allclose(P.sum(1), 1.0, atol=10 * np.finfo(P.dtype).eps)
