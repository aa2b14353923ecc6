"""What each ``latentspace`` subcommand does, once its arguments are parsed."""

from __future__ import annotations

import inspect
import json
import sys
import time
from pathlib import Path

import numpy as np

from ..data import SUPPORTED_SUFFIXES as OUTPUT_SUFFIXES
from ._errors import UsageError, check_finite, stage
from ._params import collect_params, estimator_params


# ----------------------------------------------------------------------------- helpers
def check_output_path(path, suffixes=OUTPUT_SUFFIXES) -> Path:
    """Refuse an output path before any work is done, rather than after a long fit."""
    path = Path(path).expanduser()
    if suffixes is not None and path.suffix.lower() not in suffixes:
        raise UsageError(f"--out {str(path)!r}: the file name must end in {', '.join(suffixes)}.")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise UsageError(f"--out {str(path)!r}: folder {str(folder)!r} does not exist.")
    if path.is_dir():
        raise UsageError(f"--out {str(path)!r} is a folder; give a file name.")
    return path


def check_device(device) -> None:
    """A ``--device`` that cannot be used is a usage error, found before any work."""
    if device is None:
        return
    from .._backend import resolve_device

    try:
        resolve_device(device)
    except ValueError as exc:
        raise UsageError(f"--device: {exc}") from None


def _read(args):
    from ..data import read_data

    with stage("data", "cannot read data", path=args.data):
        X, _ = read_data(args.data, data_home=getattr(args, "data_home", None))
    return X


def check_model_path(path) -> None:
    """Raise ``OSError`` (a model-file error, 4, in the "model" stage) with a plain message
    when the model file is missing or a folder."""
    p = Path(path).expanduser()
    if p.is_dir():
        raise IsADirectoryError(f"{str(path)!r} is a folder, not a model file; give the file "
                                "written by 'latentspace fit'.")
    if not p.exists():
        raise FileNotFoundError(f"no model file at {str(path)!r}; give the file written by "
                                "'latentspace fit'.")


def _load(args):
    from ..io import load

    check_device(getattr(args, "device", None))
    with stage("model", "cannot load model file", path=args.model_file):
        est = load(args.model_file)
    device = getattr(args, "device", None)
    if device is not None and "device" in est.get_params(deep=False):
        est.set_params(device=device)
    return est


def _need(est, method: str, hint: str = ""):
    if not callable(getattr(est, method, None)):
        raise UsageError(
            f"{type(est).__name__} models have no {method}(){'; ' + hint if hint else ''}."
        )


def _write(path, array, what: str) -> None:
    from ..data import write_data

    with stage("output", f"cannot write {what} to", path=path):
        write_data(path, array)


def _shape(a) -> str:
    return "×".join(str(s) for s in np.shape(a))


# ----------------------------------------------------------------------------- fit
def cmd_fit(args) -> int:
    cls = args.model_cls
    names = {p.name for p in estimator_params(cls)}
    params = collect_params(args)
    if args.device is not None and "device" in names:
        params["device"] = args.device
    if args.seed is not None and "random_state" in names:
        params["random_state"] = args.seed
    if args.verbose and "verbose" in names:
        default = inspect.signature(cls.__init__).parameters["verbose"].default
        params["verbose"] = True if isinstance(default, bool) else int(args.verbose)
    check_device(args.device)
    out = check_output_path(args.out, suffixes=None)
    X = _read(args)
    with stage("fit", f"invalid hyperparameters for {cls.__name__}", names):
        est = cls(**params)
    t0 = time.perf_counter()
    with stage("fit", f"fitting {cls.__name__} on {args.data!r} failed", names):
        est.fit(X)
    seconds = time.perf_counter() - t0
    with stage("output", "cannot save the model to", path=out):
        est.save(out)
    print(f"fitted {cls.__name__} on {_shape(X)} data in {seconds:.2f} s; saved to {out}")
    return 0


# ----------------------------------------------------------------------------- apply
def _apply(args, method: str, what: str, hint: str = "") -> int:
    out = check_output_path(args.out)
    est = _load(args)
    _need(est, method, hint)
    X = _read(args)
    with stage("compute", f"{type(est).__name__}.{method} failed on {args.data!r}"):
        result = getattr(est, method)(X)
        check_finite(what, result)
    _write(out, result, what)
    print(f"wrote {what} of shape {_shape(result)} to {out}")
    return 0


def cmd_transform(args) -> int:
    return _apply(args, "transform", "latent codes")


def cmd_inverse_transform(args) -> int:
    return _apply(args, "inverse_transform", "reconstructions")


def cmd_predict(args) -> int:
    if args.proba:
        return _apply(args, "predict_proba", "probabilities", "it is not a clustering model")
    return _apply(args, "predict", "labels", "it is not a clustering model")


def cmd_score(args) -> int:
    if args.out is not None and not args.per_sample:
        raise UsageError("--out is only used with --per-sample.")
    k = args.n_importance
    if k is not None and k < 1:
        raise UsageError(f"--n-importance must be at least 1, got {k}.")
    out = check_output_path(args.out) if args.out is not None else None
    est = _load(args)
    _need(est, "score")
    if args.per_sample or k is not None:
        _need(est, "score_samples")
    if k is not None and "n_importance" not in inspect.signature(est.score_samples).parameters:
        raise UsageError(f"--n-importance: {type(est).__name__} has no importance-weighted "
                         "bound (only VAE models do).")
    X = _read(args)
    with stage("compute", f"{type(est).__name__}.score failed on {args.data!r}"):
        per = None
        if k is not None:  # the mean of the per-sample bound is the score with K samples
            per = np.asarray(est.score_samples(X, n_importance=k))
            mean = float(np.mean(per))
        else:
            mean = float(est.score(X))
        check_finite("mean score", mean)
        if args.per_sample and per is None:
            per = np.asarray(est.score_samples(X))
        if per is not None:
            check_finite("per-sample scores", per)
        if not args.per_sample:
            per = None
    if per is not None and out is not None:
        _write(out, per, "per-sample scores")
    elif per is not None:
        print("\n".join(repr(float(v)) for v in per))
        return 0
    print(repr(mean))
    return 0


def cmd_sample(args) -> int:
    out = check_output_path(args.out)
    if args.n_samples < 1:
        raise UsageError(f"-n/--n-samples must be at least 1, got {args.n_samples}.")
    est = _load(args)
    _need(est, "sample", "it is not a generative model")
    _check_sample_memory(est, args.n_samples, getattr(args, "device", None))
    kwargs = {}
    if args.seed is not None:
        if "random_state" not in inspect.signature(est.sample).parameters:
            raise UsageError(f"{type(est).__name__}.sample() takes no seed.")
        kwargs["random_state"] = args.seed
    with stage("compute", f"{type(est).__name__}.sample failed"):
        result = est.sample(args.n_samples, **kwargs)
        if isinstance(result, tuple):  # mixtures also return the component of each draw
            result = result[0]
        check_finite("samples", result)
    _write(out, result, "samples")
    print(f"wrote {args.n_samples} samples of shape {_shape(result)} to {out}")
    return 0


def _check_sample_memory(est, n: int, device) -> None:
    """Refuse ``-n`` draws whose result cannot fit in memory, before drawing any: each row
    takes ``n_features_in_`` values of 8 bytes (float64 at most) for the result, and as
    much again for the draw's working arrays (noise, component labels, a float32 copy)."""
    from .._memory import check_allocation

    d = int(getattr(est, "n_features_in_", 1))
    where = "cpu" if device in (None, "auto") else device
    try:
        check_allocation(2.0 * 8 * float(n) * d, f"-n {n}: {n} samples of {d} feature(s)",
                         "ask for fewer samples (-n) and run several times with --seed",
                         device=where)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


# ----------------------------------------------------------------------------- info
def model_info(path) -> dict:
    """What ``latentspace info`` shows: :func:`latentspace.io.describe` of the file."""
    from ..io import describe

    return describe(path)


def _jsonable(value):
    from ..report import json_safe

    return json_safe(value)


def cmd_info(args) -> int:
    with stage("model", "cannot read model file", path=args.model_file):
        check_model_path(args.model_file)
        info = model_info(args.model_file)
    if args.json:
        print(json.dumps(_jsonable(info), indent=2))
        return 0
    if info.get("kind") == "checkpoint":
        print("\n".join(_checkpoint_lines(info)))
        return 0
    lines = [
        f"file: {info['file']} ({info['bytes']} bytes)",
        f"class: {info['class']}",
        f"format version: {info['format_version']} (written by latentspace "
        f"{info['library_version']})",
        "hyperparameters:",
        *(f"  {k} = {v!r}" for k, v in info["params"].items()),
    ]
    fitted = info["fitted_arrays"] or info["fitted_scalars"]
    lines.append("fitted attributes:" if fitted else "fitted attributes: none (not fitted)")
    lines += [f"  {k}: {v['dtype']} {tuple(v['shape'])}" for k, v in info["fitted_arrays"].items()]
    lines += [f"  {k} = {v!r}" for k, v in info["fitted_scalars"].items()]
    if info["state_tensors"]:
        lines.append("state tensors:")
        lines += [f"  {k}: {v['dtype']} {tuple(v['shape'])}"
                  for k, v in info["state_tensors"].items()]
    print("\n".join(lines))
    return 0


def _checkpoint_lines(info: dict) -> list[str]:
    """``latentspace info`` of a training checkpoint."""
    last = ", ".join(f"{k} {v:.6g}" if isinstance(v, float) else f"{k} {v}"
                     for k, v in info["last_epoch"].items())
    return [
        f"file: {info['file']} ({info['bytes']} bytes)",
        f"training checkpoint, version {info['format_version']} (written by latentspace "
        f"{info['library_version']})",
        f"class: {info['class'] or 'unknown (written by train() directly)'}",
        f"epochs done: {info['epoch']} ({info['step']} steps)"
        + ("; training had stopped" if info["stopped_early"] else ""),
        f"last epoch: {last or 'none'}",
        "hyperparameters:",
        *(f"  {k} = {v!r}" for k, v in info["params"].items()),
        f"continue with: {info['resume']}",
    ]


# ----------------------------------------------------------------------------- select-k
CRITERIA = ("elbow", "bic", "aic", "heldout")
K_PARAMS = ("n_clusters", "n_components")  # the parameter select-k varies
FIGURE_SUFFIXES = (".png", ".svg", ".pdf")
_CRITERION_LABELS = {"elbow": "E(K)", "bic": "BIC", "aic": "AIC", "heldout": "held-out NLL"}


def parse_ks(text: str) -> list[int]:
    """``"2,3,5"``, ``"2-12"`` (inclusive) or ``"50-200:10"``, or a mix of them -> sorted K.

    Raises ``argparse.ArgumentTypeError`` (a usage error) for anything else, for K < 1, and
    for a value given twice.
    """
    import argparse
    import re

    ks: list[int] = []
    for part in (p.strip() for p in text.split(",")):
        m = re.fullmatch(r"(\d+)(?:-(\d+)(?::(\d+))?)?", part)
        if not m:
            raise argparse.ArgumentTypeError(
                f"expected integers and ranges such as '2,3,4' or '2-12' or '50-200:10', got "
                f"{text!r}")
        lo = int(m.group(1))
        hi = int(m.group(2)) if m.group(2) else lo
        step = int(m.group(3)) if m.group(3) else 1
        if hi < lo or step < 1:
            raise argparse.ArgumentTypeError(f"empty range {part!r} in --ks")
        ks.extend(range(lo, hi + 1, step))
    if min(ks) < 1:
        raise argparse.ArgumentTypeError(f"every K must be at least 1, got {text!r}")
    if len(set(ks)) != len(ks):
        raise argparse.ArgumentTypeError(f"a K appears twice in {text!r}")
    return sorted(ks)


def _save_figure(fig, path: Path) -> None:
    """Render ``fig`` in memory, then write it atomically (and close it)."""
    import io as _io

    from matplotlib import pyplot as plt  # loaded already: the figure exists

    from .._atomic import atomic_write_bytes

    buf = _io.BytesIO()
    try:
        fig.savefig(buf, format=path.suffix[1:].lower(), dpi=120)
    finally:
        plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


def cmd_select_k(args) -> int:
    from ..cluster import KMeans
    from ..report import dumps_json, write_text_atomic
    from ..selection import choose_k

    cls = args.model_cls
    names = {p.name for p in estimator_params(cls)}
    k_param = next((k for k in K_PARAMS if k in names), None)
    if k_param is None:
        raise UsageError(f"{cls.__name__} has no number of clusters or components to choose "
                         "(n_clusters / n_components).")
    crit = args.criterion
    if crit in ("bic", "aic") and not callable(getattr(cls, crit, None)):
        raise UsageError(f"--criterion {crit} needs a mixture model (gmm, bmm); "
                         f"{cls.__name__} has no {crit}(). Use elbow or heldout.")
    if crit == "elbow" and not callable(getattr(cls, "predict", None)):
        raise UsageError(f"--criterion elbow needs a clustering model; {cls.__name__} has no "
                         "predict(). Use heldout.")
    if crit == "heldout" and not (callable(getattr(cls, "score_samples", None))
                                  or issubclass(cls, KMeans)):
        raise UsageError(f"--criterion heldout needs a model with a likelihood; "
                         f"{cls.__name__} has none.")
    if args.cv < 2:
        raise UsageError(f"--cv must be at least 2, got {args.cv}.")
    out = check_output_path(args.out, suffixes=FIGURE_SUFFIXES)
    json_out = check_output_path(args.json_out, suffixes=(".json",)) if args.json_out else None
    check_device(args.device)
    params = collect_params(args)
    if args.device is not None and "device" in names:
        params["device"] = args.device
    if args.seed is not None and "random_state" in names:
        params["random_state"] = args.seed
    X = _read(args)
    # KFold's smallest training part leaves out ceil(n / cv) rows
    n_fit = len(X) - -(-len(X) // args.cv) if crit == "heldout" else len(X)
    if args.ks[-1] > n_fit:
        raise UsageError(f"--ks: the largest K ({args.ks[-1]}) exceeds the {n_fit} rows "
                         f"{'of a training fold ' if crit == 'heldout' else ''}of {args.data!r}.")
    with stage("fit", f"invalid hyperparameters for {cls.__name__}", names):
        template = cls(**params)
    t0 = time.perf_counter()
    with stage("fit", f"choosing K for {cls.__name__} on {args.data!r} failed", names):
        # progress on stderr with -v, or whenever stderr is a terminal
        result = choose_k(template, X, args.ks, criterion=crit, cv=args.cv,
                          random_state=args.seed,
                          verbose=int(args.verbose or sys.stderr.isatty()))
        check_finite(f"{crit} scores", result.scores)
    seconds = time.perf_counter() - t0
    with stage("output", "cannot draw the curve to", path=out):
        _save_figure(result.display.plot().figure_, out)
    if json_out is not None:
        doc = {
            "model": cls.__name__, "k_parameter": k_param, "criterion": crit,
            "ks": result.ks, "scores": result.scores, "scores_std": result.scores_std,
            "best_k": result.best_k, "n_samples": len(X), "data": str(args.data),
            "params": {k: v for k, v in template.get_params(deep=False).items()
                       if k != k_param},
            "seconds": seconds,
        }
        with stage("output", "cannot write the scores to", path=json_out):
            write_text_atomic(json_out, dumps_json(doc))
    width = max(len(str(k)) for k in result.ks)
    std = result.scores_std
    for i, (k, v) in enumerate(zip(result.ks, result.scores)):
        extra = f" ± {std[i]:.6g}" if std is not None else ""
        mark = "  <- chosen" if int(k) == result.best_k else ""
        print(f"K={int(k):<{width}}  {_CRITERION_LABELS[crit]} {float(v):.10g}{extra}{mark}")
    print(f"chosen K ({crit}): {result.best_k}")
    print(f"curve written to {out} ({seconds:.1f} s)")
    return 0


# ----------------------------------------------------------------------------- datasets, tour
def cmd_datasets(args) -> int:
    from ..data import list_datasets

    print("\n".join(list_datasets()))
    return 0


def cmd_tour(args) -> int:
    from ..report.tour import run_tour, select_chapters

    check_device(args.device)
    if Path(args.out).exists() and not Path(args.out).is_dir():
        raise UsageError(f"--out {args.out!r} is a file; give a folder for the report.")
    try:
        select_chapters(args.chapters)
    except ValueError as exc:
        raise UsageError(f"--chapters: {exc}") from None
    with stage("compute", f"the tour on {args.dataset!r} failed"):
        summary = run_tour(
            dataset=args.dataset, out=args.out, quick=args.quick, device=args.device,
            chapters=args.chapters, random_state=args.seed, data_home=args.data_home,
            progress=not args.no_progress, threads=args.threads,
        )
    print(summary["index_html"])
    return 0
