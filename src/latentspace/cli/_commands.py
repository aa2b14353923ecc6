"""What each ``latentspace`` subcommand does, once its arguments are parsed.

Importing this module stays cheap (the parser refers to its handlers): numpy, torch and the
models are imported inside the handlers.
"""

from __future__ import annotations

import argparse
import inspect
import json
import sys
import time
from collections.abc import Collection
from pathlib import Path
from typing import Any

from ._errors import EXIT_DATA, CLIError, UsageError, check_finite, stage
from ._params import ArrayFile, collect_params, did_you_mean

# the suffixes latentspace.data.write_data knows (a test checks them against it)
OUTPUT_SUFFIXES = (".npy", ".npz", ".csv", ".parquet")


# ----------------------------------------------------------------------------- helpers
def check_output_path(path: str | Path, suffixes: Collection[str] | None = OUTPUT_SUFFIXES
                      ) -> Path:
    """Refuse an output path before any work is done, rather than after a long fit.

    Parameters
    ----------
    path : str or pathlib.Path
    suffixes : collection of str or None
        The allowed file name endings (None: any).

    Returns
    -------
    path : pathlib.Path
        With ``~`` expanded.
    """
    path = Path(path).expanduser()
    if suffixes is not None and path.suffix.lower() not in suffixes:
        raise UsageError(f"--out {str(path)!r}: the file name must end in {', '.join(suffixes)}.")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise UsageError(f"--out {str(path)!r}: folder {str(folder)!r} does not exist.")
    if path.is_dir():
        raise UsageError(f"--out {str(path)!r} is a folder; give a file name.")
    return path


def check_device(device: str | None) -> None:
    """A ``--device`` that cannot be used is a usage error, found before any work.

    Parameters
    ----------
    device : str or None
    """
    if device is None:
        return
    from .._backend import resolve_device

    try:
        resolve_device(device)
    except ValueError as exc:
        raise UsageError(f"--device: {exc}") from None


def _read(args: argparse.Namespace) -> Any:
    from ..data import read_data

    _check_dataset_name(args.data)
    with stage("data", "cannot read data", path=args.data):
        X, _ = read_data(args.data, data_home=getattr(args, "data_home", None))
    return X


def _check_dataset_name(data: str) -> None:
    """A DATA that is neither a file nor a dataset name but close to one: a data error
    (3, as for any missing data) that says which name was meant."""
    from . import DATASETS

    if Path(data).suffix or Path(data).exists():
        return
    key = data.strip().lower().replace("-", "_")
    aliases = ("fashion", "lfw", "frey", "olivetti")
    if key in DATASETS or key in aliases:
        return
    hint = did_you_mean(key, DATASETS + aliases)
    if hint:
        raise CLIError(EXIT_DATA, f"cannot read data {data!r}: no such file, and no dataset of "
                       f"that name{hint}; 'latentspace datasets' lists them.")


def check_model_path(path: str | Path) -> None:
    """Raise ``OSError`` (a model-file error, 4, in the "model" stage) with a plain message
    when the model file is missing or a folder.

    Parameters
    ----------
    path : str or pathlib.Path
    """
    p = Path(path).expanduser()
    if p.is_dir():
        raise IsADirectoryError(f"{str(path)!r} is a folder, not a model file; give the file "
                                "written by 'latentspace fit'.")
    if not p.exists():
        raise FileNotFoundError(f"no model file at {str(path)!r}; give the file written by "
                                "'latentspace fit'.")


def _load(args: argparse.Namespace) -> Any:
    from ..io import load

    check_device(getattr(args, "device", None))
    with stage("model", "cannot load model file", path=args.model_file):
        est = load(args.model_file)
    device = getattr(args, "device", None)
    if device is not None and "device" in est.get_params(deep=False):
        est.set_params(device=device)
    return est


def _need(est: Any, method: str, hint: str = "") -> None:
    if not callable(getattr(est, method, None)):
        raise UsageError(
            f"{type(est).__name__} models have no {method}(){'; ' + hint if hint else ''}."
        )


def _write(path: str | Path, array: Any, what: str) -> None:
    from ..data import write_data

    with stage("output", f"cannot write {what} to", path=path):
        write_data(path, array)


def _shape(a: Any) -> str:
    import numpy as np

    return "×".join(str(s) for s in np.shape(a))


# ----------------------------------------------------------------------------- fit
def _model_class(args: argparse.Namespace) -> type:
    """The estimator class of the parsed ``fit`` / ``select-k`` command (imported now)."""
    spec = args.model_spec
    with stage("fit", f"cannot load the model {spec.name!r}"):
        return spec.load_class()


def _read_arrays(params: dict) -> dict:
    """Replace each ``.npy`` file given for an array parameter by its array.

    The file is read with ``allow_pickle=False``; a missing or unreadable file is a data
    error (3) naming the flag and the file.
    """
    import numpy as np

    out = dict(params)
    for name, value in params.items():
        if not isinstance(value, ArrayFile):
            continue
        flag = "--" + name.replace("_", "-")
        path = Path(value.path).expanduser()
        if not path.is_file():
            raise CLIError(EXIT_DATA, f"{flag}: no .npy file at {value.path!r}"
                           + ("; it is a folder" if path.is_dir() else "") + ".")
        try:
            out[name] = np.load(path, allow_pickle=False)
        except Exception as exc:  # numpy raises ValueError, OSError, EOFError... for bad files
            raise CLIError(EXIT_DATA, f"{flag}: cannot read {value.path!r} as a .npy array "
                           f"({type(exc).__name__}: {' '.join(str(exc).split())}); write it "
                           "with numpy.save (object arrays are refused).") from exc
    return out


def _common_params(args: argparse.Namespace, cls: type, names: Collection[str]) -> dict:
    params = collect_params(args)
    if args.device is not None and "device" in names:
        params["device"] = args.device
    if args.seed is not None and "random_state" in names:
        params["random_state"] = args.seed
    return params


def cmd_fit(args: argparse.Namespace) -> int:
    """``latentspace fit``.

    Parameters
    ----------
    args : argparse.Namespace

    Returns
    -------
    code : int
    """
    cls = _model_class(args)
    names = set(args.model_spec.all_params)
    params = _common_params(args, cls, names)
    if args.verbose and "verbose" in names:
        default = inspect.signature(getattr(cls, "__init__")).parameters["verbose"].default
        params["verbose"] = True if isinstance(default, bool) else int(args.verbose)
    check_device(args.device)
    out = check_output_path(args.out, suffixes=None)
    params = _read_arrays(params)
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
def _apply(args: argparse.Namespace, method: str, what: str, hint: str = "") -> int:
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


def cmd_transform(args: argparse.Namespace) -> int:
    """``latentspace transform``; returns the exit code."""
    return _apply(args, "transform", "latent codes")


def cmd_inverse_transform(args: argparse.Namespace) -> int:
    """``latentspace inverse-transform``; returns the exit code."""
    return _apply(args, "inverse_transform", "reconstructions")


def cmd_predict(args: argparse.Namespace) -> int:
    """``latentspace predict``; returns the exit code."""
    if args.proba:
        return _apply(args, "predict_proba", "probabilities", "it is not a clustering model")
    return _apply(args, "predict", "labels", "it is not a clustering model")


def cmd_score(args: argparse.Namespace) -> int:
    """``latentspace score``; returns the exit code."""
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
    import numpy as np

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


def cmd_sample(args: argparse.Namespace) -> int:
    """``latentspace sample``; returns the exit code."""
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


def _check_sample_memory(est: Any, n: int, device: str | None) -> None:
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
def model_info(path: str | Path) -> dict:
    """What ``latentspace info`` shows: :func:`latentspace.io.describe` of the file.

    Parameters
    ----------
    path : str or pathlib.Path

    Returns
    -------
    info : dict
    """
    from ..io import describe

    return describe(path)


def _jsonable(value: Any) -> Any:
    from ..report import json_safe

    return json_safe(value)


def cmd_info(args: argparse.Namespace) -> int:
    """``latentspace info``; returns the exit code."""
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

    Parameters
    ----------
    text : str

    Returns
    -------
    ks : list of int
        Increasing.

    Raises
    ------
    argparse.ArgumentTypeError
        A usage error: anything else, K < 1, or a value given twice.
    """
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


def _save_figure(fig: Any, path: Path) -> None:
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


def cmd_select_k(args: argparse.Namespace) -> int:
    """``latentspace select-k``; returns the exit code."""
    from ..cluster import KMeans
    from ..report import dumps_json, write_text_atomic
    from ..selection import choose_k

    cls = _model_class(args)
    names = set(args.model_spec.all_params)
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
    out = check_output_path(args.out, suffixes=FIGURE_SUFFIXES) if args.out else None
    json_out = check_output_path(args.json_out, suffixes=(".json",)) if args.json_out else None
    check_device(args.device)
    params = _read_arrays(_common_params(args, cls, names))
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
    # the answer first, on stdout; files only when asked for
    width = max(len(str(k)) for k in result.ks)
    std = result.scores_std
    for i, (k, v) in enumerate(zip(result.ks, result.scores)):
        extra = f" ± {std[i]:.6g}" if std is not None else ""
        mark = "  <- chosen" if int(k) == result.best_k else ""
        print(f"K={int(k):<{width}}  {_CRITERION_LABELS[crit]} {float(v):.10g}{extra}{mark}")
    print(f"chosen K ({crit}): {result.best_k}")
    if out is not None:
        with stage("output", "cannot draw the curve to", path=out):
            _save_figure(result.display.plot().figure_, out)
        print(f"curve written to {out} ({seconds:.1f} s)")
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
        print(f"scores written to {json_out}")
    return 0


# ----------------------------------------------------------------------------- datasets, tour
def cmd_datasets(args: argparse.Namespace) -> int:
    """``latentspace datasets``; returns the exit code."""
    from ..data._datasets import dataset_status, list_datasets

    with stage("data", "cannot look at the data folder"):
        rows = [dataset_status(n, data_home=args.data_home) for n in list_datasets()]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    width = max(len(r["name"]) for r in rows)
    for r in rows:
        if r["folder"] is None:
            where = r["folder_from"]
        elif r["present"]:
            where = ", ".join(r["files"])
        else:
            size = f", {r['download_size']}" if r["download_size"] else ""
            how = "downloaded on first use" if r["downloadable"] else "not downloadable"
            where = f"not in {r['folder']} ({how}{size})"
        print(f"{r['name']:<{width}}  {'present' if r['present'] else 'absent '}  {where}")
        if not r["present"] and r["expected"]:
            print(f"{'':<{width}}  expected there: {' '.join(r['expected'])}")
    folders = {r["folder"] for r in rows if r["folder"] is not None}
    for folder in sorted(folders):
        origin = next(r["folder_from"] for r in rows if r["folder"] == folder)
        print(f"data folder: {folder} (from {origin})")
    return 0


def cmd_tour(args: argparse.Namespace) -> int:
    """``latentspace tour``; returns the exit code."""
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
