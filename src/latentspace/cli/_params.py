"""Model names on the command line, and ``--flags`` generated from estimator signatures.

A model is found in the registry of :class:`latentspace.base.LatentModel` subclasses, so a new
model appears on the command line without touching this package. Each ``__init__`` parameter
becomes a flag (``n_components`` -> ``--n-components``) typed from its default value, with
the first sentence of its numpydoc description as help, its allowed values (a numpydoc set
``{"full", "tied", ...}`` or a ``Literal`` hint) listed and checked, and array parameters
(``means_init``, KMeans' ``init``, ...) read from ``.npy`` files. The flags come from
:mod:`latentspace.cli._spec`, which can describe the library's models without importing them.
"""

from __future__ import annotations

import argparse
import difflib
import json
import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from ._errors import UsageError
from ._spec import ModelSpec, ParamSpec, model_specs, spec_from_class

__all__ = ["model_classes", "resolve_model", "resolve_spec", "add_param_flags",
           "collect_params", "parse_auto", "did_you_mean", "ArrayFile", "RESERVED"]

# short names that are not derived from the class name
ALIASES = {"gmm": "gaussianmixture", "bmm": "bernoullimixture", "ae": "autoencoder",
           "mppca": "ppcamixture"}
# parameters the command sets through its own options
RESERVED = {"random_state": "--seed", "device": "--device", "verbose": "--verbose"}
_OWN_OPTIONS = {"out", "seed", "debug", "help", "data_home", "model", "data", "ks", "criterion",
                "cv", "json"}
SKIPPED = frozenset(RESERVED) | frozenset(_OWN_OPTIONS)  # parameters that never get a flag
_PREFIX = "param_"


def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _closest(word: str, options: list[str]) -> list[str]:
    """The close matches of ``word`` that are as close as the closest one (within 0.05)."""
    close = difflib.get_close_matches(word, options, n=3, cutoff=0.6)
    ratio = {c: difflib.SequenceMatcher(None, word, c).ratio() for c in close}
    return [c for c in close if ratio[c] >= max(ratio.values()) - 0.05]


def did_you_mean(word: str, options: Collection[str]) -> str:
    """``" (did you mean 'fit'?)"`` for the closest of ``options``, or ``""``.

    Parameters
    ----------
    word : str
        What the user typed.
    options : collection of str
        The valid spellings.

    Returns
    -------
    hint : str
        Starts with a space, to follow the word it corrects; empty when nothing is close.
    """
    close = _closest(word, list(options))
    if not close:  # also try ignoring case and separators (GMM, Gaussian-Mixture)
        keyed = {_key(o): o for o in options}
        close = [keyed[k] for k in _closest(_key(word), list(keyed))]
    if not close:
        return ""
    return " (did you mean " + " or ".join(repr(c) for c in close) + "?)"


def cli_name(class_name: str) -> str:
    """``GaussianMixture`` -> ``gaussian_mixture``, ``PCA`` -> ``pca``, ``KMeans`` -> ``kmeans``."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", class_name).lower()


def model_classes() -> dict[str, type]:
    """Command-line name -> class of every registered model, sorted by name.

    Shared base classes (named ``...Base`` or ``Base...``) are not models one can fit.
    Imports every model family (seconds); :func:`resolve_spec` avoids that.

    Returns
    -------
    models : dict of str to type
    """
    import inspect

    from ..base import registered_models
    from ..io import import_model_families

    import_model_families()
    models = {
        cli_name(n): c for n, c in registered_models().items()
        if hasattr(c, "fit") and not (n.endswith("Base") or n.startswith("Base"))
        and not inspect.isabstract(c)
    }
    return dict(sorted(models.items()))


def _aliases_of(name: str) -> list[str]:
    return [a for a, target in ALIASES.items() if target == _key(name)]


def model_list(names: Collection[str] | None = None) -> str:
    """'pca, kmeans, gaussian_mixture (gmm), ...' for messages and help.

    Parameters
    ----------
    names : collection of str or None
        Command-line names; None means the library's models (from the table, fast).

    Returns
    -------
    text : str
    """
    parts = []
    for name in sorted(model_specs() if names is None else names):
        al = _aliases_of(name)
        parts.append(f"{name} ({', '.join(al)})" if al else name)
    return ", ".join(parts) or "(none installed)"


def _find(name: str, names: Collection[str]) -> str | None:
    key = _key(name)
    key = ALIASES.get(key, key)
    return next((n for n in names if _key(n) == key), None)


def resolve_spec(name: str) -> ModelSpec:
    """The :class:`ModelSpec` for a command-line model name (case, ``-`` and ``_`` do not
    matter), without importing the model when the table knows it.

    Parameters
    ----------
    name : str

    Returns
    -------
    spec : ModelSpec

    Raises
    ------
    UsageError
        Unknown name; the message lists the models and the closest spelling.
    """
    specs = model_specs()
    found = _find(name, specs)
    if found is not None:
        return specs[found]
    classes = model_classes()  # a model registered outside the library, or a typo
    found = _find(name, classes)
    if found is not None:
        return spec_from_class(classes[found], found, SKIPPED)
    spellings = list(classes) + list(ALIASES)
    raise UsageError(f"unknown model {name!r}{did_you_mean(name, spellings)}; choose one of: "
                     f"{model_list(classes)}.")


def resolve_model(name: str) -> type:
    """The class for a command-line model name (imports it).

    Parameters
    ----------
    name : str

    Returns
    -------
    cls : type
    """
    return resolve_spec(name).load_class()


# ----------------------------------------------------------------------------- value parsing
def _parse_scalar(text: str) -> Any:
    t = text.strip()
    low = t.lower()
    if low in ("none", "null"):
        return None
    if low in ("true", "false"):
        return low == "true"
    try:
        return int(t)
    except ValueError:
        pass
    try:
        return float(t)
    except ValueError:
        return t


def parse_auto(text: str) -> Any:
    """A value for a parameter whose default is None or a string.

    Parameters
    ----------
    text : str
        "none" -> None, "true"/"false" -> bool, "10" -> 10, "0.95" -> 0.95, "200,200" ->
        (200, 200), anything else stays a string ("mle", "k-means++").

    Returns
    -------
    value : object
    """
    if "," in text:
        return _parse_seq(text)
    return _parse_scalar(text)


def _parse_seq(text: str) -> tuple:
    return tuple(_parse_scalar(p) for p in text.split(",") if p.strip())


def _parse_int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def _parse_float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


def _parse_json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected JSON, got {text!r}") from None


@dataclass(frozen=True)
class ArrayFile:
    """A ``.npy`` file given for an array parameter; read when the command runs.

    Attributes
    ----------
    path : str
    """

    path: str


def _is_npy(text: str) -> bool:
    return text.strip().lower().endswith(".npy")


def _converter(p: ParamSpec) -> Callable[[str], Any]:
    """The argparse ``type`` of a parameter whose default is None or a string."""
    words = ", ".join(p.choices)

    def convert(text: str) -> Any:
        if p.array and _is_npy(text):
            return ArrayFile(text)
        if p.none_ok and text.strip().lower() in ("none", "null"):
            return None
        if p.closed:
            if text in p.choices:
                return text
            also = " or a .npy file" if p.array else ""
            also += " or none" if p.none_ok else ""
            raise argparse.ArgumentTypeError(
                f"invalid choice {text!r}{did_you_mean(text, p.choices)}; choose one of: "
                f"{words}{also}")
        if p.array and not p.choices:
            raise argparse.ArgumentTypeError(
                f"{p.name} takes an array: give a .npy file holding it (or none), got {text!r}")
        value = parse_auto(text)
        if isinstance(value, str) and p.choices and value not in p.choices:
            hint = did_you_mean(value, p.choices)
            if hint:  # an open set (e.g. int or "auto"): refuse only near-misses of a word
                raise argparse.ArgumentTypeError(f"invalid value {text!r}{hint}")
        return value

    return convert


def _choice_text(p: ParamSpec) -> str:
    parts = []
    if p.choices and not (p.closed and not p.array):  # a closed set is the metavar already
        parts.append(("one of: " if p.closed else "also accepts: ") + ", ".join(p.choices))
    if p.array:
        parts.append("or an array as a .npy file" if parts else "an array as a .npy file")
    if p.none_ok and p.default is not None and (p.choices or p.array):
        parts.append("or none")
    return "; ".join(parts)


def _help(p: ParamSpec) -> str:
    text = f"{p.help} " if p.help else ""
    extra = _choice_text(p)
    extra = f"{extra}; " if extra else ""
    return (text + f"({extra}default: {p.default!r})").replace("%", "%%")


def _metavar(p: ParamSpec) -> str:
    if p.closed and p.choices and not p.array:
        return "{" + ",".join(p.choices) + "}"
    if p.array and not p.choices:
        return "FILE.npy"
    return "VALUE"


def add_param_flags(parser: argparse.ArgumentParser, spec: ModelSpec | type,
                    skip: Collection[str] = ()) -> list[str]:
    """Add one flag per hyperparameter of a model to ``parser``.

    Typing follows the default: bool -> ``--flag``/``--no-flag``; int -> integer; float ->
    number; tuple/list -> comma list; dict -> JSON; None or str -> the allowed strings when
    the docstring or type hints give a closed set (checked, with a did-you-mean), a ``.npy``
    file for array parameters, else the sensible reading of :func:`parse_auto`. Parameters
    with other defaults are not exposed.

    Parameters
    ----------
    parser : argparse.ArgumentParser
    spec : ModelSpec or type
        The model (a class is read with :func:`spec_from_class`).
    skip : collection of str
        Parameter names that get no flag (``select-k`` sets K itself).

    Returns
    -------
    added : list of str
        The parameter names given a flag.
    """
    if isinstance(spec, type):
        spec = spec_from_class(spec, cli_name(spec.__name__), SKIPPED)
    cls_name = spec.target.rpartition(":")[2].rpartition(".")[2]
    group = parser.add_argument_group(f"{cls_name} hyperparameters")
    added = []
    for p in spec.params:
        if p.name in SKIPPED or p.name in skip:
            continue
        flag = "--" + p.name.replace("_", "-")
        dest = _PREFIX + p.name
        help_ = _help(p)
        if p.kind == "bool":
            # a flag pair takes no value, so it can never swallow a following positional
            group.add_argument(flag, dest=dest, action="store_true", default=argparse.SUPPRESS,
                               help=help_ + f"; --no-{p.name.replace('_', '-')} turns it off")
            group.add_argument("--no-" + p.name.replace("_", "-"), dest=dest,
                               action="store_false", default=argparse.SUPPRESS,
                               help=argparse.SUPPRESS)
        elif p.kind == "int":
            group.add_argument(flag, dest=dest, type=_parse_int, default=argparse.SUPPRESS,
                               metavar="INT", help=help_)
        elif p.kind == "float":
            group.add_argument(flag, dest=dest, type=_parse_float, default=argparse.SUPPRESS,
                               metavar="FLOAT", help=help_)
        elif p.kind in ("tuple", "list"):
            conv: Callable[[str], Any] = (_parse_seq if p.kind == "tuple"
                                          else (lambda t: list(_parse_seq(t))))
            group.add_argument(flag, dest=dest, type=conv, default=argparse.SUPPRESS,
                               metavar="A,B,...", help=help_)
        elif p.kind == "json":
            group.add_argument(flag, dest=dest, type=_parse_json, default=argparse.SUPPRESS,
                               metavar="JSON", help=help_)
        else:
            group.add_argument(flag, dest=dest, type=_converter(p), default=argparse.SUPPRESS,
                               metavar=_metavar(p), help=help_)
        added.append(p.name)
    return added


def collect_params(args: argparse.Namespace) -> dict:
    """The hyperparameters given on the command line (only those given).

    Parameters
    ----------
    args : argparse.Namespace

    Returns
    -------
    params : dict
        Array parameters are still :class:`ArrayFile` values here.
    """
    return {k[len(_PREFIX):]: v for k, v in vars(args).items() if k.startswith(_PREFIX)}
