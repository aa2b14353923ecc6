"""Area "params": every hyperparameter of every ``__init__`` signature, at its default, its
edges and beyond, each fitted on the small valid data and then used.

Values are derived from the signature (``inspect.signature``): the default decides which
values no sane API may accept (``must_reject``): NaN or a string for a numeric parameter,
a number or an unknown string for a string choice, a string for a flag. Other values may be
accepted or refused with a typed error; when the fit returns, every fitted float attribute
must be finite and every method must give sane results on the data.

Neural fits keep the campaign's ``max_epochs=2`` unless the parameter under test is
``max_epochs``; parameters that only buy more work (``max_iter``, ``max_epochs``, ``n_init``,
``k_steps``, ``iterated_power``) do not get the huge values, which would be slow by request
rather than by defect.
"""

from __future__ import annotations

import inspect
import os

import numpy as np

from . import checks
from .classify import Wrong
from .inputs import ESTIMATORS, K, base_data, cls, make, methods_of

__all__ = ["descriptors", "run"]

WORK_PARAMS = ("max_iter", "max_epochs", "n_init", "k_steps", "iterated_power")
# hyperparameters that only partial_fit uses: each value is also tried through two
# partial_fit calls from an unfitted model and one on a fitted model
STREAM_PARAMS = ("learning_decay", "learning_offset")
HUGE = ("1e9", "2**63", "1e300", "-1e9")


class _Opaque:
    def __repr__(self):
        return "<object>"


VALUES = {
    "default": None,  # the signature's default
    "none": lambda: None,
    "nan": lambda: float("nan"),
    "inf": lambda: float("inf"),
    "-inf": lambda: float("-inf"),
    "-1": lambda: -1,
    "0": lambda: 0,
    "1": lambda: 1,
    "2": lambda: 2,
    "0.5": lambda: 0.5,
    "1.5": lambda: 1.5,
    "-0.5": lambda: -0.5,
    "1e-300": lambda: 1e-300,
    "1e9": lambda: 10**9,
    "-1e9": lambda: -(10**9),
    "2**63": lambda: 2**63,
    "1e300": lambda: 1e300,
    "true": lambda: True,
    "false": lambda: False,
    "np_int64_2": lambda: np.int64(2),
    "np_float32_0.5": lambda: np.float32(0.5),
    "bogus": lambda: "bogus",
    "empty_str": lambda: "",
    "huge_str": lambda: "x" * 100_000,
    "bytes": lambda: b"auto",
    "complex": lambda: 1 + 1j,
    "list": lambda: [1, 2],
    "tuple_empty": lambda: (),
    "tuple_neg": lambda: (-3,),
    "dict": lambda: {"a": 1},
    "object": lambda: _Opaque(),
}


def _kind(default):
    if isinstance(default, bool):
        return "flag"
    if isinstance(default, (int, float)):
        return "number"
    if isinstance(default, str):
        return "choice"
    if isinstance(default, tuple):
        return "sizes"
    return "optional"


ALWAYS_REJECT = ("complex", "object", "dict", "huge_str")
REJECT = {
    "number": ("nan", "bogus", "empty_str", "list", "bytes"),
    "choice": ("nan", "bogus", "empty_str", "-inf", "bytes"),  # 'auto' choices may take numbers
    "flag": ("nan", "bogus", "empty_str", "list", "bytes"),
    "sizes": ("nan", "bogus", "tuple_neg", "-1", "-inf", "bytes"),
    "optional": (),
}
RANDOM_STATE_REJECT = ("nan", "-1", "1.5", "bogus", "2**63", "-1e9", "1e300", "inf", "-inf",
                       "list", "bytes")


def must_reject(param: str, default, value_name: str) -> bool:
    """Whether no sane API may accept this value for a parameter with this default."""
    if value_name in ALWAYS_REJECT:
        return True
    if param == "random_state":
        return value_name in RANDOM_STATE_REJECT
    return value_name in REJECT[_kind(default)]


def descriptors():
    out = []
    for est in ESTIMATORS:
        sig = inspect.signature(cls(est).__init__)
        for p in list(sig.parameters.values())[1:]:
            for v in VALUES:
                if p.name in WORK_PARAMS and v in HUGE:
                    continue
                out.append(dict(area="params", est=est, param=p.name, value=v))
                if p.name in STREAM_PARAMS:
                    out.append(dict(area="params", est=est, param=p.name, value=v,
                                    via="partial_fit"))
        out.append(dict(area="params", est=est, param="set_params", value="unknown_name"))
        out.append(dict(area="params", est=est, param="get_params", value="roundtrip"))
        out.append(dict(area="params", est=est, param="clone", value="fitted"))
        out.append(dict(area="params", est=est, param="random_state", value="RandomState"))
    out.append(dict(area="params", est="PCA", param="svd_solver", value="gram_30000x60"))
    out.append(dict(area="params", est="PCA", param="svd_solver", value="full_30000x60"))
    for est in ("Autoencoder", "VAE", "GAN"):
        out.append(dict(area="params", est=est, param="latent_dim", value="1e9_direct"))
        out.append(dict(area="params", est=est, param="learning_rate", value="1e30_diverge"))
    out.append(dict(area="params", est="Autoencoder", param="hidden_sizes", value="(1e9,)"))
    # what a PyTorch user brings: their networks (right and wrong shapes), optimizer classes
    # and callables, a stopping callback, a warm start, and the files of such models
    for est in ("Autoencoder", "VAE", "GAN"):
        for value in USER_CASES:
            out.append(dict(area="params", est=est, param="user", value=value))
    out.append(dict(area="params", est="KMeans", param="n_clusters", value="1e9_direct"))
    out.append(dict(area="params", est="GaussianMixture", param="n_components",
                    value="1e9_direct"))
    for est in ("GaussianMixture", "BernoulliMixture"):
        for t in (("full", "tied", "diag", "spherical") if est == "GaussianMixture" else ("",)):
            out.append(dict(area="params", est=est, param="missing",
                            value="marginalize_nan" + (f"_{t}" if t else "")))
        out.append(dict(area="params", est=est, param="missing", value="raise_nan"))
    for param in ("n_components", "n_latent"):
        out.append(dict(area="params", est="PPCAMixture", param=param, value="1e9_direct"))
    for est in MISSING_ESTIMATORS:
        for case in MISSING_CASES:
            out.append(dict(area="params", est=est, param="missing", value=case))
    return out


USER_CASES = ("modules", "modules_bad_shape", "modules_raise", "modules_saved",
              "optimizer_AdamW", "optimizer_callable", "optimizer_bad_kwargs",
              "callback_stop", "callback_raises", "warm_start_refit", "warm_start_width",
              "checkpoint_resume", "checkpoint_pickle", "checkpoint_flipped",
              "checkpoint_is_model")
_MODULE_NAMES = {"GAN": ("generator", "discriminator")}


def _user_modules(est_name, d, latent, width_off=0):
    """Small user networks for ``est_name`` on ``d`` features (``width_off`` breaks one)."""
    from torch import nn

    if est_name == "GAN":
        return {"generator": nn.Sequential(nn.Linear(latent, 8), nn.Tanh(), nn.Linear(8, d)),
                "discriminator": nn.Linear(d, 1 + width_off)}
    out = 2 * latent if est_name == "VAE" else latent
    return {"encoder": nn.Sequential(nn.Linear(d, 8), nn.Tanh(), nn.Linear(8, out + width_off)),
            "decoder": nn.Linear(latent, d)}


def _user_case(d, ctx):
    """The ``param="user"`` cases: fits that must work, and ones that must be typed errors."""
    import torch

    est_name, value = d["est"], d["value"]
    X = base_data(est_name)
    if value == "modules":
        est = make(est_name, **_user_modules(est_name, X.shape[1], K)).fit(X)
        checks.check_fitted(est_name, est)
        _use(est_name, est, X)
        return "user modules trained"
    if value == "modules_bad_shape":
        make(est_name, **_user_modules(est_name, X.shape[1], K, width_off=1)).fit(X)
        raise Wrong("user modules of the wrong output width were accepted")
    if value == "modules_raise":
        mods = _user_modules(est_name, X.shape[1] + 1, K)  # the first layer takes d + 1
        make(est_name, **mods).fit(X)
        raise Wrong("user modules that cannot take the data were accepted")
    if value == "modules_saved":
        import latentspace

        est = make(est_name, **_user_modules(est_name, X.shape[1], K)).fit(X)
        path = os.path.join(ctx.tmp, f"{est_name}_user.safetensors")
        est.save(path)
        try:
            latentspace.load(path)
        except latentspace.exceptions.ModelFormatError:
            pass
        else:
            raise Wrong("a file of user modules loaded without them")
        back = latentspace.load(path, modules=_user_modules(est_name, X.shape[1], K))
        checks.same("user modules after load", probe_abs(est_name, back, X),
                    probe_abs(est_name, est, X), 1e-6)
        return "user modules saved and loaded"
    if value == "optimizer_AdamW":
        est = make(est_name, optimizer=torch.optim.AdamW, optimizer_kwargs={"amsgrad": True})
        est.fit(X)
        checks.check_fitted(est_name, est)
        _use(est_name, est, X)
        return None
    if value == "optimizer_callable":
        est = make(est_name, optimizer=lambda p: torch.optim.RMSprop(p, lr=1e-3)).fit(X)
        checks.check_fitted(est_name, est)
        return None
    if value == "optimizer_bad_kwargs":
        make(est_name, optimizer=torch.optim.AdamW, optimizer_kwargs={"betas": "x"}).fit(X)
        raise Wrong("optimizer_kwargs torch cannot take were accepted")
    if value == "callback_stop":
        class Stop:
            def on_epoch_end(self, est, record):
                return record["epoch"] == 1

        est = make(est_name, max_epochs=5, callbacks=[Stop()]).fit(X)
        if est.n_iter_ != 1 or est.stop_reason_ != "callback":
            raise Wrong(f"a callback stopping at epoch 1 left n_iter_={est.n_iter_}, "
                        f"stop_reason_={est.stop_reason_!r}")
        _use(est_name, est, X)
        return None
    if value == "callback_raises":
        class Boom:
            def on_epoch_end(self, est, record):
                raise ValueError("the user's callback refuses")

        est = ctx.fitted(est_name)
        before = probe_abs(est_name, est, X)
        try:
            est.set_params(callbacks=[Boom()]).fit(X)
        except ValueError:
            pass
        finally:
            est.set_params(callbacks=None)
        checks.same("fit after a failed refit", probe_abs(est_name, est, X), before, 0)
        return "the earlier fit is intact"
    if value == "warm_start_refit":
        est = make(est_name).fit(X)
        est.set_params(warm_start=True).fit(X)
        checks.check_fitted(est_name, est)
        _use(est_name, est, X)
        return None
    if value == "warm_start_width":
        est = make(est_name).fit(X)
        est.set_params(warm_start=True).fit(X[:, :-1])
        raise Wrong("warm_start accepted data of another width")
    if value.startswith("checkpoint_"):
        return _checkpoint_case(est_name, value, X, ctx)
    raise KeyError(value)


class _Marker:
    """A pickle payload that would create a marker file when unpickled."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def _checkpoint_case(est_name, value, X, ctx):
    """Training checkpoints: an interrupted run resumes exactly; a pickle, a damaged file or a
    model file in a checkpoint's place is a ``ModelFormatError`` and never runs anything."""
    import pickle

    import torch

    from latentspace.exceptions import ModelFormatError

    ckpt = os.path.join(ctx.tmp, f"{est_name}_ckpt.safetensors")
    if os.path.exists(ckpt):
        os.remove(ckpt)
    if value == "checkpoint_resume":
        straight = make(est_name, max_epochs=3).fit(X)
        make(est_name, max_epochs=2, checkpoint_path=ckpt).fit(X)
        resumed = make(est_name, max_epochs=3, checkpoint_path=ckpt).fit(X, resume=ckpt)
        for a, b in zip(straight.network_.state_dict().values(),
                        resumed.network_.state_dict().values()):
            if not torch.equal(a, b):
                raise Wrong("a resumed run differs from the uninterrupted one on the CPU")
        return "resumed bit for bit"
    if value == "checkpoint_pickle":
        marker = os.path.join(ctx.tmp, f"{est_name}_PWNED")
        with open(ckpt, "wb") as f:
            f.write(pickle.dumps({"format": "latentspace-checkpoint", "x": _Marker(marker)}))
        try:
            make(est_name, max_epochs=3).fit(X, resume=ckpt)
        except ModelFormatError:
            if os.path.exists(marker):
                raise Wrong("a pickle payload in place of a checkpoint ran") from None
            raise
        raise Wrong("a pickle in place of a checkpoint was resumed from")
    make(est_name, max_epochs=1, checkpoint_path=ckpt).fit(X)
    if value == "checkpoint_flipped":
        with open(ckpt, "r+b") as f:
            size = f.seek(0, 2)
            f.seek(size // 2)
            byte = f.read(1)
            f.seek(size // 2)
            f.write(bytes([byte[0] ^ 0x10]))
        make(est_name, max_epochs=3).fit(X, resume=ckpt)
        raise Wrong("a checkpoint with a flipped byte was resumed from")
    if value == "checkpoint_is_model":
        model = os.path.join(ctx.tmp, f"{est_name}_model.safetensors")
        ctx.fitted(est_name).save(model)
        make(est_name, max_epochs=3).fit(X, resume=model)
        raise Wrong("a model file was resumed from as a checkpoint")
    raise KeyError(value)


# missing="marginalize" on data with NaN holes: the estimators covered and the cases
MISSING_ESTIMATORS = ("PCA", "GaussianMixture", "BernoulliMixture")
MISSING_CASES = ("marginalize_holes", "marginalize_holes_float32", "marginalize_empty_row",
                 "marginalize_inf", "marginalize_refit_fails", "marginalize_chunked",
                 "marginalize_partial_fit", "marginalize_save_load")


def _holes(X, rate=0.15, seed=1):
    """X with a seeded share of entries set to NaN, every row keeping an observed entry."""
    rng = np.random.RandomState(seed)
    mask = rng.rand(*X.shape) < rate
    mask[np.arange(X.shape[0]), rng.randint(0, X.shape[1], X.shape[0])] = False
    X = X.copy()
    X[mask] = np.nan
    return X


def _missing_case(est_name, value, ctx):
    """One ``missing="marginalize"`` case: NaN are missing entries, the rest as before."""
    X = _holes(base_data(est_name))
    if value == "marginalize_holes_float32":
        X = X.astype(np.float32)
    est = make(est_name, missing="marginalize")
    if value in ("marginalize_empty_row", "marginalize_inf"):
        bad = X.copy()
        bad[7] = np.nan if value == "marginalize_empty_row" else bad[7]
        if value == "marginalize_inf":
            bad[7, 0] = np.inf
        est.fit(bad)
        what = "with nothing observed" if "empty" in value else "with inf"
        raise Wrong(f"fit accepted a row {what}")
    if value == "marginalize_chunked":
        from latentspace.data import ChunkedSource

        est.fit(ChunkedSource.from_array(X, 10))
        checks.check_fitted(est_name, est)
        return "fitted chunked input with NaN"
    if value == "marginalize_partial_fit":
        est.partial_fit(X)
        checks.check_fitted(est_name, est)
        return "partial_fit took NaN"
    est.fit(X)
    checks.check_fitted(est_name, est)
    _use(est_name, est, X)
    filled = checks.as_array(est.impute(X))
    observed = ~np.isnan(X)
    if np.isnan(filled).any() or not np.array_equal(filled[observed], X[observed]):
        raise Wrong("impute left NaN or changed an observed entry")
    lb = getattr(est, "lower_bounds_", None)
    if lb is not None and len(lb) > 1 and np.min(np.diff(lb)) < -1e-9 * np.max(np.abs(lb)):
        raise Wrong(f"lower_bounds_ decreased by {-np.min(np.diff(lb)):.3g}")
    if value == "marginalize_refit_fails":
        before = checks.as_array(est.impute(X))
        bad = X.copy()
        bad[3] = np.nan
        try:
            est.fit(bad)
        except ValueError:
            checks.same("impute after a failed refit", est.impute(X), before, 0.0)
            return "refit refused, earlier fit intact"
        raise Wrong("fit accepted a row with nothing observed")
    if value == "marginalize_save_load":
        import os
        import tempfile

        import latentspace

        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "m.safetensors")
            est.save(path)
            back = latentspace.load(path)
        if back.get_params().get("missing") != "marginalize":
            raise Wrong("the loaded model lost missing='marginalize'")
        checks.same("impute after save/load", back.impute(X), est.impute(X), 0.0)
        checks.same("score_samples after save/load", back.score_samples(X),
                    est.score_samples(X), 0.0)
    return None


def repro(d) -> str:
    if d["param"] == "user":
        return f"{d['est']}(<{d['value']}>, ...small settings...).fit(X_small)"
    return f"{d['est']}({d['param']}=<{d['value']}>, ...small settings...).fit(X_small)"


def _use(est_name, est, X):
    """Every post-fit method on the training data must give a sane result."""
    for m in methods_of(est_name):
        if m in ("fit", "partial_fit", "fit_predict", "fit_transform", "bic", "aic"):
            continue
        if m == "sample":
            out = est.sample(3, random_state=0)
            checks.check_result(est_name, m, None, out, d=X.shape[1], est=est)
        elif m == "inverse_transform":
            Z = est.transform(X)
            checks.check_result(est_name, m, Z, est.inverse_transform(Z), d=X.shape[1])
        elif m == "impute":
            checks.check_result(est_name, m, X, est.impute(X), est=est, d=X.shape[1])
        else:
            out = getattr(est, m)(X)
            width = getattr(est, "n_components_", None)  # PCA may keep 0 components
            if width is None:
                width = getattr(est, "latent_dim", None) or getattr(est, "n_latent", None) \
                    or getattr(est, "n_clusters", K)
            checks.check_result(est_name, m, X, out, est=est, d=width)


def _special(d, ctx):
    est_name, param, value = d["est"], d["param"], d["value"]
    if param == "user":
        return _user_case(d, ctx)
    X = base_data(est_name)
    if param == "missing" and value in MISSING_CASES:
        return _missing_case(est_name, value, ctx)
    if param == "set_params":
        make(est_name).set_params(bogus_parameter=1)
        raise Wrong("set_params accepted an unknown parameter name")
    if param == "get_params":
        kwargs = ESTIMATORS[est_name][0]
        got = make(est_name).get_params()
        bad = {k: v for k, v in kwargs.items() if got.get(k) != v}
        if bad:
            raise Wrong(f"get_params lost {bad}")
        return None
    if param == "clone":
        from sklearn.base import clone

        est = ctx.fitted(est_name)
        c = clone(est).fit(X)
        checks.same("clone refit", probe_abs(est_name, c, X), probe_abs(est_name, est, X), 1e-6)
        return None
    if value == "RandomState":
        est = make(est_name, random_state=np.random.RandomState(0)).fit(X)
        checks.check_fitted(est_name, est)
        _use(est_name, est, X)
        return None
    if value.endswith("_30000x60"):
        rng = np.random.RandomState(0)
        Xb = rng.randn(30000, 60)
        est = cls("PCA")(n_components=5, svd_solver=value.split("_")[0]).fit(Xb)
        checks.check_fitted("PCA", est)
        return None
    if value.startswith("marginalize_nan"):  # NaN entries missing at random: a sane fit
        from .inputs import _mcar

        t = value[len("marginalize_nan_"):]
        Xm = _mcar(X, 0.3)
        est = make(est_name, missing="marginalize", **({"covariance_type": t} if t else {}))
        est.fit(Xm)
        checks.check_fitted(est_name, est)
        _use(est_name, est, Xm)
        return None
    if value == "raise_nan":  # the default refuses NaN, naming the alternative
        from .inputs import _mcar

        try:
            make(est_name).fit(_mcar(X))
        except ValueError as exc:
            if "marginalize" not in str(exc):
                raise Wrong(f"the NaN error does not mention missing='marginalize': {exc}")
            raise
        raise Wrong("missing='raise' accepted NaN entries")
    if value == "1e9_direct":
        est = make(est_name, **{param: 10**9})
        est.fit(X)
        raise Wrong(f"{param}=10**9 fitted on {X.shape} data without an error")
    if value == "(1e9,)":
        make(est_name, hidden_sizes=(10**9,)).fit(X)
        raise Wrong("hidden_sizes=(10**9,) fitted without an error")
    if value == "1e30_diverge":
        est = make(est_name, learning_rate=1e30, max_epochs=3)
        est.fit(X)
        checks.check_fitted(est_name, est)
        _use(est_name, est, X)
        return "trained to finite outputs"
    raise KeyError(value)


def probe_abs(est_name, est, X):
    from .area_data import probe

    return np.abs(probe(est_name, est, X))


def run(d, ctx):
    est_name, param, vname = d["est"], d["param"], d["value"]
    if vname not in VALUES or param in ("set_params", "get_params", "clone"):
        return _special(d, ctx)
    default = inspect.signature(cls(est_name).__init__).parameters[param].default
    value = default if vname == "default" else VALUES[vname]()
    X = base_data(est_name)
    overrides = {param: value}
    est = make(est_name, **overrides)
    if d.get("via") == "partial_fit":
        return _run_partial_fit(d, est_name, param, vname, default, value, X)
    out = est.fit(X)
    if out is not est:
        raise Wrong("fit did not return the estimator")
    if must_reject(param, default, vname):
        raise Wrong(f"{param}={_show(value)} was accepted by fit (default {default!r})")
    checks.check_fitted(est_name, est)
    _use(est_name, est, X)
    return None


def _run_partial_fit(d, est_name, param, vname, default, value, X):
    """Two partial_fit calls from scratch (interleaved rows: both blobs in each), then one
    more on a model fitted with the default value and then given this one."""
    est = make(est_name, **{param: value})
    out = est.partial_fit(X[::2])
    est.partial_fit(X[1::2])
    if out is not est:
        raise Wrong("partial_fit did not return the estimator")
    if must_reject(param, default, vname):
        raise Wrong(f"{param}={_show(value)} was accepted by partial_fit (default {default!r})")
    checks.check_fitted(est_name, est)
    _use(est_name, est, X)
    fitted = make(est_name).fit(X).set_params(**{param: value})
    fitted.partial_fit(X[::3])
    checks.check_fitted(est_name, fitted)
    _use(est_name, fitted, X)
    return None


def _show(value):
    text = repr(value)
    return text if len(text) < 40 else text[:37] + "..."
