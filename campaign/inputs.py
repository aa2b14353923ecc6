"""The estimators under test, their small valid data, and the grid of bad and edge inputs.

Everything here is rebuilt from names inside a worker: a case descriptor says
``("KMeans", "predict", "nan")`` and this module makes the estimator, the data and the input.
"""

from __future__ import annotations

import numpy as np

__all__ = ["ESTIMATORS", "METHODS", "X_METHODS", "VARIANTS", "base_data", "make", "variant"]

N, D, K = 40, 4, 2  # rows, features, clusters / components / latent dimensions of the base fit
_NEURAL_SMALL = dict(max_epochs=2, batch_size=16, random_state=0)

# name -> (constructor kwargs of the base fit, data kind, output width of transform)
ESTIMATORS = {
    "PCA": (dict(n_components=K, random_state=0), "blobs"),
    "KMeans": (dict(n_clusters=K, n_init=1, random_state=0), "blobs"),
    "GaussianMixture": (dict(n_components=K, random_state=0), "blobs"),
    "BernoulliMixture": (dict(n_components=K, random_state=0), "binary"),
    "Autoencoder": (dict(latent_dim=K, hidden_sizes=(8,), **_NEURAL_SMALL), "blobs"),
    "VAE": (dict(latent_dim=K, hidden_sizes=(8,), likelihood="gaussian", **_NEURAL_SMALL),
            "blobs"),
    "GAN": (dict(latent_dim=K, generator_sizes=(8,), discriminator_sizes=(8,), **_NEURAL_SMALL),
            "blobs"),
}
NEURAL = ("Autoencoder", "VAE", "GAN")
CLUSTERINGS = ("KMeans", "GaussianMixture", "BernoulliMixture")

# every public method the campaign calls, in the order it reports them
METHODS = ("fit", "partial_fit", "fit_predict", "fit_transform", "transform",
           "inverse_transform", "predict", "predict_proba", "score_samples", "score", "sample",
           "bic", "aic", "impute")
X_METHODS = ("fit", "partial_fit", "fit_predict", "fit_transform", "transform", "predict",
             "predict_proba", "score_samples", "score", "bic", "aic", "impute")
FIT_METHODS = ("fit", "partial_fit", "fit_predict", "fit_transform")
# methods whose result is random for a fixed model (no comparison between two calls)
STOCHASTIC = {"VAE": ("score_samples", "score")}


def cls(name: str):
    import latentspace

    return getattr(latentspace, name)


def methods_of(name: str) -> list[str]:
    """The public methods an instance offers (``available_if`` hides some per instance)."""
    est = make(name)
    return [m for m in METHODS if callable(getattr(est, m, None))]


def make(name: str, **overrides):
    """A fresh estimator with the campaign's small settings (``overrides`` win)."""
    kwargs, _ = ESTIMATORS[name]
    return cls(name)(**{**kwargs, **overrides})


def base_data(name: str, n: int = N, d: int = D, seed: int = 0) -> np.ndarray:
    """Two well-separated blobs (or their binarisation for the Bernoulli mixture), float64."""
    rng = np.random.RandomState(seed)
    half = n // 2
    X = np.r_[rng.randn(half, d), rng.randn(n - half, d) + 10.0]
    if ESTIMATORS[name][1] == "binary":
        X = (X > 5).astype(np.float64)
        flip = rng.rand(*X.shape) < 0.1
        X[flip] = 1.0 - X[flip]
    return X


def blob_labels(n: int = N) -> np.ndarray:
    return np.r_[np.zeros(n // 2, int), np.ones(n - n // 2, int)]


# ----------------------------------------------------------------------------- variants
# kind: "reject" -> every method must raise a typed error;
#       "numeric" -> convertible: OK (equal to the float64 reference) or a typed error;
#       "edge" -> a legal but awkward input: OK with every check, or a typed error;
#       "scale" -> X * factor + shift: the fit must be the same up to scale, or "rescale";
#       "width" -> another number of features: legal for fits, must be rejected after one.
def _nan(X):
    X = X.copy(); X[3, 1] = np.nan; return X


def _set(X, value, where=(5, 2)):
    X = X.copy(); X[where] = value; return X


def _df(X, **kw):
    import pandas as pd

    return pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])], **kw)


def _df_string_col(X):
    df = _df(X).astype(object)
    df["f1"] = ["a"] * len(df)
    return df


def _df_dup(X):
    df = _df(X)
    df.columns = ["f0", "f0"] + list(df.columns[2:])
    return df


def _df_nullable(X, dtype):
    df = _df(np.round(X) if dtype == "Int64" else X).astype(dtype)
    return df


def _df_na(X):
    df = _df(X).astype("Float64")
    import pandas as pd

    df.iloc[2, 1] = pd.NA
    return df


def _df_mixed(X):
    df = _df(X)
    df["f0"] = np.round(X[:, 0]).astype(np.int64)
    df["f1"] = X[:, 1].astype(np.float32)
    return df


def _df_datetime(X):
    import pandas as pd

    df = _df(X)
    df["f1"] = pd.date_range("2020-01-01", periods=len(df))
    return df


def _torch(X, **kw):
    import torch

    return torch.tensor(X, **kw)


def _torch_grad(X):
    import torch

    return torch.tensor(X, requires_grad=True)


def _torch_noncontig(X):
    import torch

    wide = torch.zeros((X.shape[0], 2 * X.shape[1]), dtype=torch.float64)
    wide[:, ::2] = torch.tensor(X)
    return wide[:, ::2]


def _torch_meta(X):
    import torch

    return torch.empty(X.shape, device="meta")


def _readonly(X):
    X = X.copy(); X.setflags(write=False); return X


def _noncontig(X):
    wide = np.zeros((X.shape[0], 2 * X.shape[1])); wide[:, ::2] = X
    return wide[:, ::2]


def _sparse(X, fmt):
    import scipy.sparse as sp

    return getattr(sp, f"{fmt}_matrix")(X)


def _ragged(X):
    rows = X.tolist()
    rows[1] = rows[1][:-1]
    return rows


def _gen(X):
    return (row for row in X.tolist())


def _memmap(X):
    import os
    import tempfile

    fd, path = tempfile.mkstemp(suffix=".dat")
    os.close(fd)
    m = np.memmap(path, dtype=np.float64, mode="w+", shape=X.shape)
    m[:] = X
    m.flush()
    return np.memmap(path, dtype=np.float64, mode="r", shape=X.shape)


def _masked(X):
    return np.ma.masked_array(X, mask=np.zeros_like(X, dtype=bool))


# name -> (kind, builder(X) -> input, reference(X) -> float64 equivalent or None)
VARIANTS = {
    # missing and non-finite values
    "nan": ("reject", _nan, None),
    "nan_all": ("reject", lambda X: np.full_like(X, np.nan), None),
    "nan_last_row": ("reject", lambda X: _set(X, np.nan, (-1, -1)), None),
    "posinf": ("reject", lambda X: _set(X, np.inf), None),
    "neginf": ("reject", lambda X: _set(X, -np.inf), None),
    "overflow_to_inf": ("reject", lambda X: _set(X, 1e308) * 10, None),
    "float32_nan": ("reject", lambda X: _nan(X).astype(np.float32), None),
    "df_pd_na": ("reject", _df_na, None),
    "torch_nan": ("reject", lambda X: _torch(_nan(X)), None),
    "torch_inf": ("reject", lambda X: _torch(_set(X, np.inf)), None),
    # shapes
    "empty_rows": ("reject", lambda X: X[:0], None),
    "empty_cols": ("reject", lambda X: X[:, :0], None),
    "empty_list": ("reject", lambda X: [], None),
    "one_d": ("reject", lambda X: X[:, 0].copy(), None),
    "three_d": ("reject", lambda X: X[:, :, None], None),
    "scalar": ("reject", lambda X: 3.0, None),
    "zero_d_array": ("reject", lambda X: np.array(3.0), None),
    "none": ("reject", lambda X: None, None),
    "ragged_list": ("reject", _ragged, None),
    "generator": ("reject", _gen, None),
    "dict": ("reject", lambda X: {"a": X[:, 0]}, None),
    "torch_1d": ("reject", lambda X: _torch(X[:, 0].copy()), None),
    "torch_3d": ("reject", lambda X: _torch(X[:, :, None].copy()), None),
    "torch_empty_rows": ("reject", lambda X: _torch(X[:0].copy()), None),
    # element types
    "string": ("reject", lambda X: "abc", None),
    "strings": ("reject", lambda X: np.full(X.shape, "a"), None),
    "bytes": ("reject", lambda X: np.full(X.shape, b"a"), None),
    "object_mixed": ("reject", lambda X: np.array([["a"] + r[1:] for r in X.tolist()],
                                                  dtype=object), None),
    "object_none": ("reject", lambda X: np.array([[None] + r[1:] for r in X.tolist()],
                                                 dtype=object), None),
    "complex": ("reject", lambda X: X + 1j, None),
    "torch_complex": ("reject", lambda X: _torch(X + 1j), None),
    "datetime64": ("reject", lambda X: np.full(X.shape, np.datetime64("2020-01-01")), None),
    "timedelta64": ("numeric", lambda X: np.full(X.shape, np.timedelta64(3, "s")),
                    lambda X: np.full(X.shape, 3.0)),
    "df_string_col": ("reject", _df_string_col, None),
    "df_datetime_col": ("reject", _df_datetime, None),
    "torch_meta": ("reject", _torch_meta, None),
    # numeric, convertible
    "int64": ("numeric", lambda X: np.round(X).astype(np.int64),
              lambda X: np.round(X)),
    "int32": ("numeric", lambda X: np.round(X).astype(np.int32), lambda X: np.round(X)),
    "uint8": ("numeric", lambda X: np.abs(np.round(X)).astype(np.uint8),
              lambda X: np.abs(np.round(X))),
    "bool": ("numeric", lambda X: X > 5, lambda X: (X > 5).astype(float)),
    "float16": ("numeric", lambda X: X.astype(np.float16),
                lambda X: X.astype(np.float16).astype(float)),
    "float32": ("numeric", lambda X: X.astype(np.float32),
                lambda X: X.astype(np.float32).astype(float)),
    "longdouble": ("numeric", lambda X: X.astype(np.longdouble), lambda X: X),
    "list": ("numeric", lambda X: X.tolist(), lambda X: X),
    "tuple": ("numeric", lambda X: tuple(map(tuple, X.tolist())), lambda X: X),
    "object_numeric": ("numeric", lambda X: X.astype(object), lambda X: X),
    "strings_numeric": ("numeric", lambda X: X.astype(str), lambda X: X.astype(str).astype(float)),
    "complex_zero_imag": ("numeric", lambda X: X.astype(complex), lambda X: X),
    "readonly": ("numeric", _readonly, lambda X: X),
    "fortran": ("numeric", np.asfortranarray, lambda X: X),
    "noncontiguous": ("numeric", _noncontig, lambda X: X),
    "memmap_readonly": ("numeric", _memmap, lambda X: X),
    "masked_array": ("numeric", _masked, lambda X: X),
    "matrix": ("numeric", np.asmatrix, lambda X: X),
    "sparse_csr": ("numeric", lambda X: _sparse(X, "csr"), lambda X: X),
    "sparse_coo": ("numeric", lambda X: _sparse(X, "coo"), lambda X: X),
    "df": ("numeric", _df, lambda X: X),
    "df_duplicate_names": ("numeric", _df_dup, lambda X: X),
    "df_int_names": ("numeric", lambda X: __import__("pandas").DataFrame(X), lambda X: X),
    "df_Float64": ("numeric", lambda X: _df_nullable(X, "Float64"), lambda X: X),
    "df_Int64": ("numeric", lambda X: _df_nullable(X, "Int64"), lambda X: np.round(X)),
    "df_mixed": ("numeric", _df_mixed, lambda X: np.c_[np.round(X[:, 0]),
                                                       X[:, 1].astype(np.float32), X[:, 2:]]),
    "df_bool": ("numeric", lambda X: _df(X > 5), lambda X: (X > 5).astype(float)),
    "torch_f64": ("numeric", _torch, lambda X: X),
    "torch_f32": ("numeric", lambda X: _torch(X.astype(np.float32)),
                  lambda X: X.astype(np.float32).astype(float)),
    "torch_f16": ("numeric", lambda X: _torch(X.astype(np.float16)),
                  lambda X: X.astype(np.float16).astype(float)),
    "torch_bf16": ("numeric", lambda X: _torch(X).bfloat16(),
                   lambda X: _torch(X).bfloat16().double().numpy()),
    "torch_int": ("numeric", lambda X: _torch(np.round(X).astype(np.int64)),
                  lambda X: np.round(X)),
    "torch_bool": ("numeric", lambda X: _torch(X > 5), lambda X: (X > 5).astype(float)),
    "torch_requires_grad": ("numeric", _torch_grad, lambda X: X),
    "torch_noncontiguous": ("numeric", _torch_noncontig, lambda X: X),
    # legal but awkward
    "one_row": ("edge", lambda X: X[:1].copy(), None),
    "two_rows": ("edge", lambda X: X[[0, -1]].copy(), None),
    "three_rows": ("edge", lambda X: X[[0, 1, -1]].copy(), None),
    "constant_feature": ("edge", lambda X: _set(X, 5.0, (slice(None), 0)), None),
    "all_constant": ("edge", lambda X: np.full_like(X, 3.0), None),
    "all_zero": ("edge", lambda X: np.zeros_like(X), None),
    "duplicates": ("edge", lambda X: np.repeat(X[:1], len(X), axis=0), None),
    "few_distinct": ("edge", lambda X: np.r_[np.repeat(X[:1], len(X) - 1, axis=0), X[-1:]],
                     None),
    "duplicated_halves": ("edge", lambda X: np.r_[X[: len(X) // 2], X[: len(X) // 2]], None),
    "negative": ("edge", lambda X: -np.abs(X) - 1.0, None),
    "binary": ("edge", lambda X: (X > 5).astype(float), None),
    "mixed_magnitudes": ("edge", lambda X: X * np.array([1e150, 1.0, 1e-150, 1.0])[: X.shape[1]],
                         None),
    "int64_huge": ("edge", lambda X: (np.sign(X) * 2**62).astype(np.int64), None),
    # scale: (factor, shift)
    "shift_1e12": ("scale", (1.0, 1e12), None),
    "shift_1e16": ("scale", (1.0, 1e16), None),
    "scale_1e150": ("scale", (1e150, 0.0), None),
    "scale_1e154": ("scale", (1e154, 0.0), None),
    "scale_1e200": ("scale", (1e200, 0.0), None),
    "scale_1e300": ("scale", (1e300, 0.0), None),
    "scale_1e-150": ("scale", (1e-150, 0.0), None),
    "scale_1e-300": ("scale", (1e-300, 0.0), None),
    "scale_1e-315_subnormal": ("scale", (1e-315, 0.0), None),
    "neg_scale_1e300": ("scale", (-1e300, 0.0), None),
    # another number of features
    "one_feature": ("width", lambda X: X[:, :1].copy(), None),
    "fewer_features": ("width", lambda X: X[:, :-1].copy(), None),
    "more_features": ("width", lambda X: np.c_[X, X[:, :1]], None),
    "wide_few_rows": ("width", lambda X: np.tile(X[:5], (1, 15)), None),
}


def variant(name: str, X: np.ndarray):
    """-> (kind, input, float64 reference or None) of variant ``name`` built on ``X``."""
    kind, build, ref = VARIANTS[name]
    if kind == "scale":
        factor, shift = build
        with np.errstate(all="ignore"):
            return kind, X * factor + shift, None
    with np.errstate(all="ignore"):
        value = build(X)
        return kind, value, None if ref is None else np.asarray(ref(X), dtype=np.float64)
