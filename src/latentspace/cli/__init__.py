"""The ``latentspace`` command.

::

    latentspace fit MODEL DATA --out model.safetensors [--n-components 10 ...]
    latentspace transform | inverse-transform | predict MODEL_FILE DATA --out out.npy
    latentspace score MODEL_FILE DATA [--per-sample --out scores.npy] [--n-importance K]
    latentspace sample MODEL_FILE -n 100 --out samples.npy [--seed 0]
    latentspace info MODEL_FILE [--json]
    latentspace select-k MODEL DATA --ks 2-12 --criterion bic [--out curve.png] [--json scores.json]
    latentspace tour [--dataset digits] [--out tour_out] [--quick] [--chapters pca,kmeans]
                     [--threads 1]
    latentspace datasets

Errors are one line on stderr (``latentspace: error: ...``; the traceback only with
``--debug``), so are warnings (``latentspace: warning: ...``), and the exit code says what
went wrong: 0 ok, 1 unexpected, 2 usage (bad options or hyperparameters, a request larger
than the memory, a missing optional package), 3 data (also a reader's missing package, such
as pyarrow for ``.parquet``), 4 model file, 5 numerical failure, 130 interrupted (the table is in :mod:`latentspace.cli._errors`).
"""

from __future__ import annotations

import argparse
import sys
import traceback
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from ._errors import (
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    CLIError,
    UsageError,
    one_line,
)
from ._params import did_you_mean

if TYPE_CHECKING:
    from ._spec import ModelSpec

# Nothing heavy (torch, scikit-learn, matplotlib, the models) is imported to build the parser:
# the models' flags come from the table of latentspace.cli._spec, the dataset names from the
# tuple below (a test checks both against the library), and each command imports what it
# needs when it runs.
DATASETS = ("digits", "mnist", "fashion_mnist", "lfw_people", "frey_faces", "olivetti_faces")

__all__ = ["main", "build_parser"]

_PROG = "latentspace"
_EXIT_CODES = (
    "exit codes: 0 ok, 1 unexpected error, 2 usage (bad options or hyperparameter values, "
    "a request larger than the memory, a missing optional package), "
    "3 data (missing, unreadable or invalid, or a missing package to read it), 4 model file (missing, corrupt, unsafe, too new, "
    "unfitted), 5 numerical failure (divergence, failed factorisation, NaN/inf results), "
    "130 interrupted"
)


class _Parser(argparse.ArgumentParser):
    """An argparse parser whose errors become one-line :class:`UsageError`s, and whose
    help shows plain text (RST markup of the docstrings stripped)."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')")


def _plain(text: str) -> str:
    from ._spec import strip_rst

    return strip_rst(text)


def _dataset_name(text: str) -> str:
    """``--dataset`` of ``tour``: a dataset name (aliases, case and ``-`` allowed)."""
    key = text.strip().lower().replace("-", "_")
    key = {"fashion": "fashion_mnist", "lfw": "lfw_people", "frey": "frey_faces",
           "olivetti": "olivetti_faces"}.get(key, key)
    if key not in DATASETS:
        raise argparse.ArgumentTypeError(
            f"unknown dataset {text!r}{did_you_mean(key, DATASETS)}; choose one of: "
            f"{', '.join(DATASETS)}")
    return key


def _common(p: argparse.ArgumentParser) -> None:
    """``--debug``, accepted after the subcommand too."""
    # --debug is accepted after the subcommand too; SUPPRESS keeps the global value otherwise
    p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                   help="show the full traceback on errors")


def _threads(p: argparse.ArgumentParser) -> None:
    """``--threads N``."""
    p.add_argument("--threads", type=int, metavar="N",
                   help="CPU threads for torch (default: torch's choice, usually one per core)")


def _data_args(p: argparse.ArgumentParser, *,
               data_help: str = "data file (.npy, .npz, .csv, .parquet) or a dataset name",
               ) -> None:
    """MODEL_FILE, DATA, ``--data-home`` and ``--device``."""
    p.add_argument("model_file", metavar="MODEL_FILE", help="a model saved by 'latentspace fit'")
    p.add_argument("data", metavar="DATA", help=data_help)
    p.add_argument("--data-home", metavar="DIR", help="data folder for dataset names")
    p.add_argument("--device", help="run on this device (cpu, cuda, cuda:N, auto)")


def build_parser(model: ModelSpec | type | None = None) -> argparse.ArgumentParser:
    """The argument parser of the ``latentspace`` command.

    Parameters
    ----------
    model : ModelSpec, type or None
        The model named on a ``fit`` or ``select-k`` command line: those commands get its
        hyperparameter flags. A class is read with :func:`latentspace.cli._spec.spec_from_class`.

    Returns
    -------
    parser : argparse.ArgumentParser
        Its subparsers are also in ``parser.subparsers`` (command name -> parser).
    """
    from . import _commands as c
    from ._params import SKIPPED, add_param_flags, cli_name, model_list
    from ._spec import spec_from_class

    spec = (spec_from_class(model, cli_name(model.__name__), SKIPPED)
            if isinstance(model, type) else model)
    parser = _Parser(prog=_PROG, description=_plain(str(__doc__).split("\n\n")[0]),
                     epilog=_EXIT_CODES)
    parser.add_argument("--debug", action="store_true", default=False,
                        help="show the full traceback on errors")
    from .. import __version__

    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers: dict[str, argparse.ArgumentParser] = {}
    parser.set_defaults(subparsers=subparsers)

    # fit
    p = sub.add_parser(
        "fit", help="fit a model and save it",
        description="Fit MODEL on DATA and save it. Every hyperparameter of the model is a "
        "flag: run 'latentspace fit MODEL --help' to list them.",
        epilog=f"models: {model_list()}. {_EXIT_CODES}",
    )
    p.add_argument("model", metavar="MODEL", help="model name, e.g. pca, kmeans, gmm, vae")
    p.add_argument("data", metavar="DATA",
                   help="data file (.npy, .npz, .csv, .parquet) or a dataset name")
    p.add_argument("-o", "--out", required=True, metavar="FILE",
                   help="where to save the model (e.g. model.safetensors)")
    p.add_argument("--device", help="cpu, cuda, cuda:N or auto (default: the model's)")
    p.add_argument("--seed", type=int, help="random seed (the model's random_state)")
    p.add_argument("-v", "--verbose", action="count", default=0,
                   help="progress output, if the model has a verbose option")
    p.add_argument("--data-home", metavar="DIR", help="data folder for dataset names")
    _common(p)
    _threads(p)
    if spec is not None:
        add_param_flags(p, spec)
    p.set_defaults(handler=c.cmd_fit, model_spec=spec)

    # transform / inverse-transform / predict
    for name, handler, what in (
        ("transform", c.cmd_transform, "latent codes of DATA"),
        ("inverse-transform", c.cmd_inverse_transform, "data rebuilt from the latent codes"),
        ("predict", c.cmd_predict, "cluster labels of DATA"),
    ):
        p = sub.add_parser(name, help=f"write the {what}", description=f"Write the {what}.",
                           epilog=_EXIT_CODES)
        _data_args(p, data_help="latent codes Z (.npy, .npz, .csv, .parquet)"
                   if name == "inverse-transform" else
                   "data file (.npy, .npz, .csv, .parquet) or a dataset name")
        p.add_argument("-o", "--out", required=True, metavar="FILE",
                       help="output file (.npy, .npz, .csv or .parquet)")
        if name == "predict":
            p.add_argument("--proba", action="store_true",
                           help="write membership probabilities instead of labels")
        _common(p)
        _threads(p)
        p.set_defaults(handler=handler)

    # score
    p = sub.add_parser("score", help="print the mean score (log-likelihood or its bound)",
                       description="Print the model's mean score on DATA (mean log-likelihood, "
                       "its ELBO bound, or negative inertia for K-means).", epilog=_EXIT_CODES)
    _data_args(p)
    p.add_argument("--per-sample", action="store_true",
                   help="also the score of each sample (to --out, else one per line)")
    p.add_argument("-o", "--out", metavar="FILE", help="file for --per-sample scores")
    p.add_argument("--n-importance", type=int, metavar="K",
                   help="VAE: the importance-weighted bound with K samples instead of the ELBO")
    _common(p)
    _threads(p)
    p.set_defaults(handler=c.cmd_score)

    # sample
    p = sub.add_parser("sample", help="draw samples from a generative model",
                       description="Draw samples from the model's p(x).", epilog=_EXIT_CODES)
    p.add_argument("model_file", metavar="MODEL_FILE", help="a model saved by 'latentspace fit'")
    p.add_argument("-n", "--n-samples", type=int, default=100, help="how many (default: 100)")
    p.add_argument("-o", "--out", required=True, metavar="FILE",
                   help="output file (.npy, .npz, .csv or .parquet)")
    p.add_argument("--seed", type=int, help="random seed (default: the model's random_state)")
    p.add_argument("--device", help="run on this device (cpu, cuda, cuda:N, auto)")
    _common(p)
    _threads(p)
    p.set_defaults(handler=c.cmd_sample)

    # info
    p = sub.add_parser("info", help="describe a model file without loading it",
                       description="Class, format and library versions, hyperparameters and "
                       "fitted attribute shapes, read from the file's header only.",
                       epilog=_EXIT_CODES)
    p.add_argument("model_file", metavar="MODEL_FILE")
    p.add_argument("--json", action="store_true", help="print JSON")
    _common(p)
    p.set_defaults(handler=c.cmd_info)

    # select-k
    p = sub.add_parser(
        "select-k", help="choose K by a criterion (and draw its curve)",
        description="Fit MODEL on DATA for every K in --ks (its n_clusters or n_components) "
        "and print the criterion per K and the chosen K; --out also draws the curve, --json "
        "writes the scores. The model's other hyperparameters are flags, as for "
        "'latentspace fit'.",
        epilog=f"criteria: elbow (knee of the reconstruction error; clusterings), bic and aic "
        f"(mixtures), heldout (mean negative log-likelihood on cross-validation folds). "
        f"{_EXIT_CODES}",
    )
    p.add_argument("model", metavar="MODEL", help="model name, e.g. kmeans, gmm, bmm, pca")
    p.add_argument("data", metavar="DATA",
                   help="data file (.npy, .npz, .csv, .parquet) or a dataset name")
    p.add_argument("--ks", required=True, type=c.parse_ks, metavar="KS",
                   help="candidate K, increasing: '2,3,4,6', a range '2-12' or '50-200:10'")
    p.add_argument("--criterion", default="elbow", choices=c.CRITERIA,
                   help="how K is chosen (default: elbow)")
    p.add_argument("-o", "--out", metavar="FILE",
                   help="also draw the curve to this image (.png, .svg or .pdf)")
    p.add_argument("--json", metavar="FILE", dest="json_out",
                   help="also write K, scores and the chosen K as JSON")
    p.add_argument("--cv", type=int, default=5, help="folds for --criterion heldout (default: 5)")
    p.add_argument("--device", help="cpu, cuda, cuda:N or auto (default: the model's)")
    p.add_argument("--seed", type=int, help="random seed (model's random_state and fold split)")
    p.add_argument("-v", "--verbose", action="count", default=0,
                   help="a progress bar over the fits on stderr (shown on a terminal anyway)")
    p.add_argument("--data-home", metavar="DIR", help="data folder for dataset names")
    _common(p)
    _threads(p)
    if spec is not None:
        add_param_flags(p, spec, skip=c.K_PARAMS)
    p.set_defaults(handler=c.cmd_select_k, model_spec=spec)

    # tour
    p = sub.add_parser("tour", help="run the lecture and write an HTML report",
                       description="Run every chapter on one dataset and write DIR/index.html "
                       "(self-contained) and DIR/summary.json; prints the path of index.html.",
                       epilog=_EXIT_CODES)
    p.add_argument("--dataset", default="digits", type=_dataset_name,
                   metavar="{" + ",".join(DATASETS) + "}",
                   help="dataset (default: digits, which needs no download; "
                   "'latentspace datasets' shows which are present)")
    p.add_argument("--out", default="tour_out", metavar="DIR",
                   help="output folder (default: tour_out)")
    p.add_argument("--quick", action="store_true",
                   help="smoke run: fewer epochs, smaller sizes, at most 2000 samples")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto (default: cpu)")
    p.add_argument("--chapters", metavar="KEYS",
                   help="comma-separated chapter keys, e.g. pca,kmeans (default: all)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--data-home", metavar="DIR", help="data folder for datasets other than digits")
    p.add_argument("--no-progress", action="store_true",
                   help="no progress display (it goes to stderr: a status line on a terminal, "
                   "one line per step otherwise)")
    p.add_argument("--threads", type=int, default=1, metavar="N",
                   help="CPU threads for torch (default: 1, the fastest for the tour's small "
                   "models, above all on a shared machine)")
    _common(p)
    p.set_defaults(handler=c.cmd_tour)

    # datasets
    p = sub.add_parser("datasets", help="list the datasets and whether they are present",
                       description="List the names accepted by --dataset and as DATA, whether "
                       "each is present in the data folder (and which files, or where it was "
                       "looked for), and the download size where known.",
                       epilog="data folder: --data-home, else $LATENTSPACE_DATA, else "
                       "~/latentspace_data. " + _EXIT_CODES)
    p.add_argument("--data-home", metavar="DIR", help="data folder to look in")
    p.add_argument("--json", action="store_true", help="print JSON")
    _common(p)
    p.set_defaults(handler=c.cmd_datasets)
    subparsers.update(sub.choices)
    return parser


_COMMANDS = ("fit", "transform", "inverse-transform", "predict", "score", "sample", "info",
             "select-k", "tour", "datasets")
_MODEL_COMMANDS = ("fit", "select-k")  # commands whose flags depend on the MODEL argument
_FIT_VALUE_OPTIONS = {"-o", "--out", "--device", "--seed", "--data-home", "--ks", "--criterion",
                      "--json", "--cv", "--threads"}


def _fit_model_name(argv: list[str]) -> str | None:
    """The MODEL token of a ``fit`` or ``select-k`` command line, found before parsing (its
    flags depend on it): the first positional after the command that is not the value of a
    known option."""
    tokens = iter(argv)
    for tok in tokens:
        if tok in _MODEL_COMMANDS:
            break
        if not tok.startswith("-"):
            return None  # another subcommand
    else:
        return None
    for tok in tokens:
        if tok == "--":
            return next(tokens, None)
        if tok in _FIT_VALUE_OPTIONS:
            next(tokens, None)
        elif not tok.startswith("-"):
            return tok
    return None


def _print_error(message: str) -> None:
    print(f"{_PROG}: error: {message}", file=sys.stderr)


def _check_command(argv: list[str]) -> None:
    """Refuse an unknown command with a did-you-mean, before anything is built for it."""
    for tok in argv:
        if tok == "--":
            return
        if not tok.startswith("-"):
            if tok not in _COMMANDS:
                raise UsageError(f"unknown command {tok!r}{did_you_mean(tok, _COMMANDS)}; "
                                 f"choose one of: {', '.join(_COMMANDS)} (see '{_PROG} --help')")
            return


def _unknown_flags(parser: argparse.ArgumentParser, args: argparse.Namespace,
                   extras: list[str]) -> UsageError:
    """The error for arguments no option took, with the closest flag for each one."""
    sub = getattr(args, "subparsers", {}).get(getattr(args, "command", None))
    where = sub if sub is not None else parser
    flags = [o for a in where._actions for o in a.option_strings
             if a.help is not argparse.SUPPRESS or o.startswith("--no-")]
    parts = []
    for tok in extras:
        word = tok.split("=", 1)[0]
        parts.append(tok + (did_you_mean(word, flags) if word.startswith("-") else ""))
    return UsageError(f"unrecognized arguments: {' '.join(parts)} (see '{where.prog} --help')")


def _run_handler(args: argparse.Namespace) -> int:
    """Run the command, with ``--threads`` applied for its duration only."""
    threads = getattr(args, "threads", None)
    if threads is None:
        return int(args.handler(args) or 0)
    if threads < 1:
        raise UsageError(f"--threads must be at least 1, got {threads}.")
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return int(args.handler(args) or 0)
    finally:
        torch.set_num_threads(before)


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  file: Any = None, line: str | None = None) -> None:
    # a warning is news for the user, not for a developer: one line, no source location
    print(f"{_PROG}: warning: {' '.join(str(message).split())}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``latentspace`` command line.

    Parameters
    ----------
    argv : sequence of str or None
        The arguments after the program name; None reads ``sys.argv[1:]``.

    Returns
    -------
    code : int
        The exit code: 0 ok, 1 unexpected, 2 usage, 3 data, 4 model file, 5 numerical
        failure, 130 interrupted (see :mod:`latentspace.cli._errors`).
    """
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    with warnings.catch_warnings():
        # every run shows its own warnings, even ones already shown earlier in this process
        # (changing the filters resets Python's record of what was shown)
        warnings.filterwarnings("default", category=UserWarning)
        warnings.filterwarnings("default", category=RuntimeWarning)
        if not debug:
            warnings.showwarning = _show_warning
        return _main(args, debug)


def _main(argv: list[str], debug: bool) -> int:
    try:
        _check_command(argv)
        spec = None
        name = _fit_model_name(argv)
        if name is not None:
            from ._params import resolve_spec

            spec = resolve_spec(name)
        parser = build_parser(spec)
        args, extras = parser.parse_known_args(argv)
        if extras:
            raise _unknown_flags(parser, args, extras)
        if args.command is None:
            raise UsageError(f"a command is required: {', '.join(_COMMANDS)} "
                             f"(see '{_PROG} --help')")
        return _run_handler(args)
    except SystemExit as exc:  # --help and --version end through argparse's exit
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else EXIT_ERROR)
    except CLIError as exc:
        if debug and exc.__cause__ is not None:
            traceback.print_exception(exc.__cause__, file=sys.stderr)
        _print_error(str(exc))
        return exc.code
    except KeyboardInterrupt:
        _print_error("interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # output piped into e.g. head, which closed early
        return 0
    except Exception as exc:  # a bug: say so in one line, the traceback with --debug
        if debug:
            traceback.print_exc(file=sys.stderr)
        _print_error(
            f"unexpected {type(exc).__name__}: {one_line(exc)}"
            + ("" if debug else " (run again with --debug for the traceback)")
        )
        return EXIT_ERROR


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
