"""Area "data": every method of every estimator on every bad or edge input.

Post-fit methods run on a copy of the estimator fitted on the base data; after a typed
error the copy must still give what it gave before (an earlier fit stays usable). Fits run
on a fitted copy too, so that a refit that fails validation is checked to leave the earlier
fit unchanged.
"""

from __future__ import annotations


import numpy as np

from . import checks
from .classify import TYPED, Wrong, classify_exception
from .inputs import (CLUSTERINGS, FIT_METHODS, K, MISSING_ESTIMATORS, MISSING_VARIANTS, NEURAL,
                     STOCHASTIC, VARIANTS, W_COUNTS, W_LABEL_ORACLE,
                     W_VARIANTS, WEIGHT_METHODS, WEIGHTED, X_METHODS, base_data, blob_labels,
                     make, methods_of, variant)

__all__ = ["descriptors", "run"]

# latent codes for inverse_transform: name -> (kind, builder(Z) -> input)
Z_VARIANTS = {
    "valid": ("numeric", lambda Z: Z),
    "float32": ("numeric", lambda Z: Z.astype(np.float32)),
    "list": ("numeric", lambda Z: Z.tolist()),
    "torch": ("numeric", lambda Z: __import__("torch").tensor(Z)),
    "one_row": ("edge", lambda Z: Z[:1]),
    "huge_1e300": ("edge", lambda Z: Z * 1e300),
    "nan": ("reject", lambda Z: np.where(np.arange(Z.size).reshape(Z.shape) == 1, np.nan, Z)),
    "inf": ("reject", lambda Z: np.where(np.arange(Z.size).reshape(Z.shape) == 1, np.inf, Z)),
    "complex": ("reject", lambda Z: Z + 1j),
    "strings": ("reject", lambda Z: np.full(Z.shape, "a")),
    "empty_rows": ("reject", lambda Z: Z[:0]),
    "wrong_width": ("reject", lambda Z: np.c_[Z, Z]),
    "three_d": ("reject", lambda Z: Z[:, :, None]),
    "none": ("reject", lambda Z: None),
    "scalar": ("reject", lambda Z: 1.5),
}
# sample counts: name -> (kind, value)
N_VARIANTS = {
    "3": ("valid", 3),
    "np_int64_3": ("valid", np.int64(3)),
    "0": ("edge", 0),
    "true": ("edge", True),
    "-1": ("reject", -1),
    "1.5": ("reject", 1.5),
    "str_3": ("reject", "3"),
    "none": ("reject", None),
    "nan": ("reject", float("nan")),
    "1e12": ("reject", 10**12),
    "2**63": ("reject", 2**63),
    "list": ("reject", [3]),
}


def descriptors():
    from .inputs import ESTIMATORS

    out = []
    for est in ESTIMATORS:
        methods = methods_of(est)
        for m in methods:
            out.append(dict(area="data", est=est, method=m, variant="unfitted"))
            if m in X_METHODS:
                for v in VARIANTS:
                    out.append(dict(area="data", est=est, method=m, variant=v))
            elif m == "inverse_transform":
                for v in Z_VARIANTS:
                    out.append(dict(area="data", est=est, method=m, variant="Z_" + v))
            elif m == "sample":
                for v in N_VARIANTS:
                    out.append(dict(area="data", est=est, method=m, variant="n_" + v))
        if "partial_fit" in methods:
            for v in ("posinf", "scale_1e300", "scale_1e-300", "shift_1e16"):
                out.append(dict(area="data", est=est, method="partial_fit_then_predict",
                                variant=v))
        if est in MISSING_ESTIMATORS:  # missing="marginalize": NaN entries are valid input
            for m in methods:
                if m in X_METHODS:
                    for v in MISSING_VARIANTS:
                        out.append(dict(area="data", est=est, method=m,
                                        variant="marginalize_" + v))
    for est in WEIGHTED:
        for m in WEIGHT_METHODS:
            for v, (kind, _, _) in W_VARIANTS.items():
                if kind in ("chunked", "dask") and m != "fit":
                    continue
                out.append(dict(area="data", est=est, method=m, variant="w_" + v))
    return out


def repro(d) -> str:
    if d["variant"].startswith("w_"):
        return (f"{d['est']}(...small settings...).{d['method']}(X, "
                f"sample_weight=<{d['variant'][2:]}>)")
    return f"{d['est']}(...small settings...).{d['method']}(<{d['variant']}>)"


# ----------------------------------------------------------------------------- helpers
def probe(est_name: str, est, X):
    """The fitted model's deterministic outputs on the base data."""
    if est_name == "GAN":
        return checks.as_array(est.sample(5, random_state=0))
    if est_name in ("GaussianMixture", "BernoulliMixture", "PPCAMixture"):
        return checks.as_array(est.predict_proba(X))
    return checks.as_array(est.transform(X))


def call(est, method, arg):
    return getattr(est, method)(arg)


def width(est_name, method, d):
    if method in ("transform", "fit_transform"):
        return K
    return d


def _unchanged(est_name, est, X, before, exc):
    try:
        after = probe(est_name, est, X)
    except Exception as e2:
        raise Wrong(f"after the typed error ({checks.short_exc(exc)}) the earlier fit is no "
                    f"longer usable: {type(e2).__name__}: {e2}") from None
    if not np.array_equal(np.asarray(after), np.asarray(before), equal_nan=True):
        raise Wrong(f"after the typed error ({checks.short_exc(exc)}) the earlier fit's "
                    f"outputs changed (max diff {np.nanmax(np.abs(after - before)):.3g})")


def _call_checked_state(ctx, est_name, est, method, arg, X):
    """Call; on a typed error check that the earlier fit is unchanged, then re-raise."""
    before = probe(est_name, est, X)
    try:
        return call(est, method, arg)
    except Exception as exc:
        if classify_exception(exc)[0] == TYPED:
            _unchanged(est_name, est, X, before, exc)
        raise


# ----------------------------------------------------------------------------- oracles
def _scale_oracle(est_name, est, method, out, Xv, scale_lossy=False):
    """Same clustering / components as on the unscaled data (components only where float64
    still holds the data: not after a shift by 1e16, which rounds it to multiples of 2)."""
    if est_name in ("KMeans", "GaussianMixture", "PPCAMixture"):
        labels = out if method == "fit_predict" else est.predict(Xv)
        checks.same_labels(f"labels after {method} on scaled data", labels, blob_labels())
        if hasattr(est, "labels_"):
            checks.same_labels("labels_ on scaled data", est.labels_, blob_labels())
    elif est_name == "PCA" and not scale_lossy:
        ref = make("PCA").fit(base_data("PCA"))
        checks.same("explained_variance_ratio_ on scaled data", est.explained_variance_ratio_,
                    ref.explained_variance_ratio_, rtol=1e-3)
        cos = np.abs(np.sum(np.asarray(est.components_) * ref.components_, axis=1))
        if not np.all(np.abs(cos - 1) < 1e-3):
            raise Wrong(f"components_ on scaled data differ from those on the data (|cos| {cos})")


def _edge_oracle(est_name, est, method, out, Xv, variant_name):
    if est_name == "PCA" and variant_name in ("all_constant", "duplicates", "all_zero") and \
            hasattr(est, "explained_variance_ratio_"):
        evr = np.asarray(est.explained_variance_ratio_)
        if not np.all(evr == 0):
            raise Wrong(f"explained_variance_ratio_ on identical rows is {evr}, not 0")
    if est_name in CLUSTERINGS and method in ("fit", "fit_predict"):
        labels = out if method == "fit_predict" else getattr(est, "labels_", None)
        if labels is not None:
            pred = est.predict(Xv)
            if not np.array_equal(checks.as_array(labels), checks.as_array(pred)):
                raise Wrong(f"{method}'s labels differ from predict(X) on the same data "
                            f"({int(np.sum(checks.as_array(labels) != checks.as_array(pred)))}"
                            " rows)")


def _numeric_oracle(ctx, est_name, est, method, out, Xv, ref, variant_name):
    """A convertible input gives what its float64 equivalent gives."""
    if est_name in NEURAL and method in FIT_METHODS:
        return  # training in another precision legitimately differs
    if method in STOCHASTIC.get(est_name, ()):
        return
    low = any(s in variant_name for s in ("16", "32", "mixed", "bf16"))
    rtol = 1e-3 if low else 1e-6
    other = ctx.fitted(est_name)  # refitted on the reference by a fit method
    ref_out = call(other, method, ref)
    if method in ("fit", "partial_fit"):
        a, b = probe(est_name, est, base_data(est_name)), probe(est_name, other,
                                                                  base_data(est_name))
        if est_name in CLUSTERINGS:
            checks.same_labels(f"{method} on {variant_name} vs float64",
                               np.argmax(a, 1) if a.ndim == 2 else a,
                               np.argmax(b, 1) if b.ndim == 2 else b)
        else:
            checks.same(f"{method} on {variant_name} vs float64", np.abs(a), np.abs(b), rtol)
        return
    if method in ("predict", "fit_predict"):
        if method == "fit_predict":
            checks.same_labels("fit_predict vs float64", out, ref_out)
        elif not np.array_equal(checks.as_array(out), checks.as_array(ref_out)):
            raise Wrong(f"predict on {variant_name} differs from predict on float64")
        return
    if method in ("score", "bic", "aic"):
        checks.same(f"{method} on {variant_name} vs float64", np.float64(out),
                    np.float64(ref_out), rtol)
        return
    if method == "fit_transform" and est_name == "PCA":
        out, ref_out = np.abs(checks.as_array(out)), np.abs(checks.as_array(ref_out))
    checks.same(f"{method} on {variant_name} vs float64", out, ref_out, rtol)


# ----------------------------------------------------------------------------- weights
def _weighted_call(ctx, est_name, method, X, w):
    """``method(X, sample_weight=w)`` on a fitted copy; on a typed error the earlier fit must
    be unchanged."""
    est = ctx.fitted(est_name)
    before = probe(est_name, est, X)
    try:
        return est, getattr(est, method)(X, sample_weight=w)
    except Exception as exc:
        if classify_exception(exc)[0] == TYPED:
            _unchanged(est_name, est, X, before, exc)
        raise


def _criterion_oracle(est_name, est, method, out, X, wf):
    """score = Σ w ll / Σ w, bic = −2 Σ w ll + p log Σ w, aic = −2 Σ w ll + 2p, with ll the
    model's own score_samples and p read off the unweighted bic."""
    ll = checks.as_array(est.score_samples(X)).astype(np.float64)
    with np.errstate(all="ignore"):
        if method == "score":
            want = np.sum((wf / wf.max()) * ll) / np.sum(wf / wf.max())
        else:
            p = (est.bic(X) + 2 * ll.sum()) / np.log(len(X))
            want = -2 * (wf @ ll) + (p * np.log(wf.sum()) if method == "bic" else 2 * p)
    if np.isfinite(want):
        checks.same(f"{method} with sample_weight vs Σ w log p", np.float64(out),
                    np.float64(want), 1e-8)


def _repetition_oracle(est_name, est, X, wf):
    """From the fitted model's parameters as the initial ones, EM with integer weights and EM
    on the repeated rows give the same fit (the same sums in another order)."""
    init = dict(weights_init=est.weights_, means_init=est.means_, max_iter=5, tol=0.0)
    if est_name == "GaussianMixture":
        init["precisions_init"] = est.precisions_
    counts = np.round(wf).astype(int)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = make(est_name, **init).fit(X, sample_weight=wf)
        b = make(est_name, **init).fit(np.repeat(X, counts, axis=0))
    for name in ("weights_", "means_"):
        checks.same(f"{name} with integer weights vs repeated rows", getattr(a, name),
                    getattr(b, name), 1e-8)


def _run_chunked_weights(ctx, d, X, kind, w, ref):
    from latentspace.data import ChunkedSource

    est_name, vname = d["est"], d["variant"][2:]
    n = len(X)
    if kind == "dask":
        import dask.array as da

        Xv = da.from_array(X, chunks=(16, X.shape[1]))
        wv = da.from_array(w, chunks=16)
        est, out = _weighted_call(ctx, est_name, "fit", Xv, wv)
    else:
        pairs = [(X[i:i + 16], w[i:i + 16]) for i in range(0, n, 16)]
        est = ctx.fitted(est_name)
        before = probe(est_name, est, X)
        try:
            if vname == "chunked_and_argument":
                out = est.fit(ChunkedSource([X[:20], X[20:]]), sample_weight=w)
            else:
                out = est.fit(ChunkedSource(pairs))
        except Exception as exc:
            if classify_exception(exc)[0] == TYPED:
                _unchanged(est_name, est, X, before, exc)
            raise
    if ref is None:
        raise Wrong(f"fit accepted the {vname} weights and returned {type(out).__name__}")
    checks.check_result(est_name, "fit", X, out, est=est)
    other = make(est_name).fit(X, sample_weight=ref(n))
    checks.same(f"{vname} fit vs the in-memory weighted fit", probe(est_name, est, X),
                probe(est_name, other, X), 1e-6)
    return None


def _run_weighted(d, ctx):
    est_name, method, vname = d["est"], d["method"], d["variant"][2:]
    X = base_data(est_name)
    n = len(X)
    kind, build, ref = W_VARIANTS[vname]
    w = build(n)
    if kind in ("chunked", "dask"):
        return _run_chunked_weights(ctx, d, X, kind, w, ref)
    est, out = _weighted_call(ctx, est_name, method, X, w)
    if kind == "reject":
        raise Wrong(f"{method} accepted sample_weight {vname} and returned {type(out).__name__}")
    if method == "fit" and vname == "one_positive":
        raise Wrong(f"fit with one row of positive weight and n_components={K} returned")
    checks.check_result(est_name, method, X, out, est=est, d=X.shape[1])
    wf = np.ones(n) if ref is None else np.asarray(ref(n), dtype=np.float64)
    if method in ("score", "bic", "aic"):
        _criterion_oracle(est_name, est, method, out, X, wf)
        return None
    if kind == "numeric":  # the same call with float64 weights (or none)
        other = ctx.fitted(est_name)
        getattr(other, method)(X) if ref is None else getattr(other, method)(X, sample_weight=wf)
        checks.same(f"{method} with {vname} weights vs float64", probe(est_name, est, X),
                    probe(est_name, other, X), 1e-6)
    elif method in ("fit", "fit_predict") and vname in W_LABEL_ORACLE[est_name]:
        labels = out if method == "fit_predict" else est.predict(X)
        checks.same_labels(f"labels after {method} with {vname} weights", labels, blob_labels())
    if method == "fit" and vname in W_COUNTS:
        _repetition_oracle(est_name, est, X, wf)
    if method == "fit_predict":
        checks.same_labels("fit_predict vs predict", out, est.predict(X))
    return None


# ----------------------------------------------------------------------------- missing
def _missing_model(ctx, est_name):
    """A model with missing="marginalize" fitted on the base data with 20% of it missing."""
    from .inputs import _mcar

    return make(est_name, missing="marginalize").fit(_mcar(base_data(est_name)))


def _run_missing(d, ctx):
    """NaN entries for a model with missing="marginalize": valid input, so every method must
    return a sane result, and a fit on well-separated blobs must still find them."""
    est_name, method, vname = d["est"], d["method"], d["variant"][len("marginalize_"):]
    X = base_data(est_name)
    kind, build = MISSING_VARIANTS[vname]
    Xv = build(X)
    est = _missing_model(ctx, est_name)
    # partial_fit of the fitted model is one online-EM update: like a query it keeps the
    # feature count, and it takes a chunk a fresh fit could not start from (one row, a
    # column unobserved in this chunk)
    resets = method in FIT_METHODS and method != "partial_fit"
    if kind in ("reject_fit", "reject_query"):
        kind = "reject" if resets == (kind == "reject_fit") else "valid"
    if kind == "valid" and resets and vname == "one_row_nan":
        kind = "reject"  # one row cannot fit two components
    if kind == "reject":
        before = probe(est_name, est, X)
        try:
            out = call(est, method, Xv)
        except Exception as exc:
            if classify_exception(exc)[0] == TYPED:
                _unchanged(est_name, est, X, before, exc)
            raise
        raise Wrong(f"{method} accepted the {vname} input and returned {type(out).__name__}")
    try:
        out = call(est, method, Xv)
    except Exception as exc:
        if kind == "valid" and classify_exception(exc)[0] == TYPED:
            raise Wrong(f"{method} refused valid input with missing entries ({vname}): "
                        f"{checks.short_exc(exc)}") from None
        raise
    n_feat = np.shape(checks.as_array(Xv))[1]
    checks.check_result(est_name, method, Xv, out, est=est, d=n_feat)
    if method in FIT_METHODS:
        # the fitted model answers for the complete base data and for the input itself
        for m in ("predict_proba", "score_samples", "impute"):
            checks.check_result(est_name, m, Xv, getattr(est, m)(Xv), est=est, d=n_feat)
        if est_name == "GaussianMixture" and resets:  # well-separated blobs: found anyway
            checks.same_labels(f"labels after {method} on {vname}", est.predict(Xv),
                               blob_labels(checks.n_rows(Xv)))
        if method == "fit_predict":
            if not np.array_equal(checks.as_array(out), checks.as_array(est.predict(Xv))):
                raise Wrong("fit_predict's labels differ from predict(X) on the same data")
    elif method == "predict":
        proba = checks.as_array(est.predict_proba(Xv))
        if not np.array_equal(checks.as_array(out), proba.argmax(1)):
            raise Wrong("predict differs from the argmax of predict_proba")
    return None


# ----------------------------------------------------------------------------- run
def run(d, ctx):
    est_name, method, vname = d["est"], d["method"], d["variant"]
    if vname.startswith("w_"):
        return _run_weighted(d, ctx)
    X = base_data(est_name)
    if vname.startswith("marginalize_"):
        return _run_missing(d, ctx)
    if vname == "unfitted":
        est = make(est_name)
        if method in X_METHODS:
            arg = X
        elif method == "sample":
            arg = 3
        else:
            arg = np.zeros((3, K))
        out = call(est, method, arg)
        if method in FIT_METHODS:
            checks.check_result(est_name, method, X, out, est=est,
                                d=width(est_name, method, X.shape[1]))
            return "fit from scratch"
        raise Wrong(f"{method} on an unfitted model returned {type(out).__name__}")
    if method == "partial_fit_then_predict":
        est = ctx.fitted(est_name)
        _, Xv, _ = variant(vname, X)
        est.partial_fit(Xv)
        out = probe(est_name, est, X)
        checks.check_result(est_name, "transform", X, out, d=K)
        return None
    if method == "sample":
        kind, n = N_VARIANTS[vname[2:]]
        est = ctx.fitted(est_name)
        out = _call_checked_state(ctx, est_name, est, "sample", n, X)
        if kind == "reject":
            raise Wrong(f"sample({n!r}) returned instead of raising")
        checks.check_result(est_name, "sample", None, out, d=X.shape[1])
        got = checks.as_array(out[0] if isinstance(out, tuple) else out).shape[0]
        if got != int(n):
            raise Wrong(f"sample({n!r}) returned {got} rows")
        return None
    if method == "inverse_transform":
        kind, build = Z_VARIANTS[vname[2:]]
        est = ctx.fitted(est_name)
        Z = np.asarray(est.transform(X))
        Zv = build(Z)
        out = _call_checked_state(ctx, est_name, est, method, Zv, X)
        if kind == "reject":
            raise Wrong(f"inverse_transform accepted Z {vname[2:]}")
        checks.check_result(est_name, method, Zv, out, d=X.shape[1])
        if kind == "numeric":
            low = vname[2:] == "float32"
            checks.same("inverse_transform vs float64", out, est.inverse_transform(Z),
                        1e-3 if low else 1e-6)
        return None

    kind, Xv, ref = variant(vname, X)
    est = ctx.fitted(est_name)
    if kind == "width" and method not in FIT_METHODS:
        kind = "reject"
    out = _call_checked_state(ctx, est_name, est, method, Xv, X)
    if kind == "reject":
        raise Wrong(f"{method} accepted the {vname} input and returned {type(out).__name__}")
    d_in = checks.as_array(Xv).shape[1] if method in ("fit", "partial_fit") or kind == "width" \
        else X.shape[1]
    checks.check_result(est_name, method, Xv, out, est=est, d=width(est_name, method, d_in))
    if kind == "numeric":
        _numeric_oracle(ctx, est_name, est, method, out, Xv, ref, vname)
    elif kind == "scale" and method in ("fit", "fit_predict", "fit_transform"):
        _scale_oracle(est_name, est, method, out, Xv, scale_lossy=vname == "shift_1e16")
    elif kind in ("edge", "width") and method in FIT_METHODS:
        _edge_oracle(est_name, est, method, out, Xv, vname)
    return None
