"""``sample`` hands its draws back in the container, device and dtype of the data the model
was fitted on (numpy in, numpy out; torch in, torch out), for every classical estimator that
samples; the draws themselves do not depend on it."""

import numpy as np
import pytest
import torch

import latentspace
from latentspace import PCA, BernoulliMixture, GaussianMixture, PPCAMixture


def _data(name):
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(size=(60, 4)), rng.normal(size=(60, 4)) + 5])
    if name == "BernoulliMixture":
        return (X > 2.5).astype(np.float64)
    return X


MODELS = {
    "PCA": lambda: PCA(2, random_state=0),
    "GaussianMixture": lambda: GaussianMixture(2, random_state=0),
    "BernoulliMixture": lambda: BernoulliMixture(2, random_state=0),
    "PPCAMixture": lambda: PPCAMixture(2, n_latent=1, random_state=0),
}


def _rows(out):
    return out if isinstance(out, (np.ndarray, torch.Tensor)) else out[0]


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("container", ["numpy", "torch"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_sample_keeps_the_fits_container_and_dtype(name, container, dtype):
    X = _data(name).astype(dtype)
    Xin = torch.from_numpy(X) if container == "torch" else X
    est = MODELS[name]().fit(Xin)
    out = est.sample(7, random_state=1)
    rows = _rows(out)
    if container == "torch":
        assert isinstance(rows, torch.Tensor) and rows.dtype == getattr(torch, dtype)
    else:
        assert isinstance(rows, np.ndarray) and rows.dtype == np.dtype(dtype)
    assert tuple(rows.shape) == (7, X.shape[1])
    if not isinstance(out, (np.ndarray, torch.Tensor)):  # mixtures: labels in the same kind
        assert type(out[1]) is type(rows) and tuple(out[1].shape) == (7,)
    # the same draws as a float64 numpy fit of the same data, up to the dtype's rounding
    ref = _rows(MODELS[name]().fit(X.astype(np.float64)).sample(7, random_state=1))
    got = rows.numpy() if isinstance(rows, torch.Tensor) else rows
    tol = 1e-4 if dtype == "float32" else 1e-10  # a float32 fit: parameters to ~1e-6 relative
    np.testing.assert_allclose(got.astype(np.float64), ref, rtol=tol, atol=tol * 10)


@pytest.mark.parametrize("name", MODELS)
def test_a_loaded_model_samples_numpy_float64(name, tmp_path):
    est = MODELS[name]().fit(torch.from_numpy(_data(name).astype(np.float32)))
    est.save(tmp_path / "m.safetensors")
    rows = _rows(latentspace.load(tmp_path / "m.safetensors").sample(3, random_state=0))
    assert isinstance(rows, np.ndarray) and rows.dtype == np.float64


def test_a_refit_on_other_data_changes_the_container():
    est = GaussianMixture(2, random_state=0).fit(torch.from_numpy(_data("GaussianMixture")))
    assert isinstance(est.sample(2)[0], torch.Tensor)
    est.fit(_data("GaussianMixture").astype(np.float32))
    X, labels = est.sample(2)
    assert isinstance(X, np.ndarray) and X.dtype == np.float32
