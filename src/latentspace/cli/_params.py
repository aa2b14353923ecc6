"""Model names on the command line, and ``--flags`` generated from estimator signatures.

A model is found in the registry of :class:`latentspace.base.LatentModel` subclasses, so a new
model appears on the command line without touching this package. Each ``__init__`` parameter
becomes a flag (``n_components`` -> ``--n-components``) typed from its default value, with
the first sentence of its numpydoc description as help.
"""

from __future__ import annotations

import argparse
import inspect
import json
import re

from ._errors import UsageError

__all__ = ["model_classes", "resolve_model", "add_param_flags", "collect_params",
           "parse_auto", "RESERVED"]

# short names that are not derived from the class name
ALIASES = {"gmm": "gaussianmixture", "bmm": "bernoullimixture", "ae": "autoencoder",
           "mppca": "ppcamixture"}
# parameters the command sets through its own options
RESERVED = {"random_state": "--seed", "device": "--device", "verbose": "--verbose"}
_OWN_OPTIONS = {"out", "seed", "debug", "help", "data_home", "model", "data", "ks", "criterion",
                "cv", "json"}
_PREFIX = "param_"


def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def cli_name(class_name: str) -> str:
    """``GaussianMixture`` -> ``gaussian_mixture``, ``PCA`` -> ``pca``, ``KMeans`` -> ``kmeans``."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", class_name).lower()


def model_classes() -> dict[str, type]:
    """Command-line name -> class of every registered model, sorted by name.

    Shared base classes (named ``...Base`` or ``Base...``) are not models one can fit.
    """
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


def model_list() -> str:
    """'pca, kmeans, gaussian_mixture (gmm), ...' for messages and help."""
    parts = []
    for name in model_classes():
        al = _aliases_of(name)
        parts.append(f"{name} ({', '.join(al)})" if al else name)
    return ", ".join(parts) or "(none installed)"


def resolve_model(name: str) -> type:
    """The class for a command-line model name (case, ``-`` and ``_`` do not matter)."""
    key = _key(name)
    key = ALIASES.get(key, key)
    for cli, cls in model_classes().items():
        if _key(cli) == key:
            return cls
    raise UsageError(f"unknown model {name!r}; choose one of: {model_list()}.")


# ----------------------------------------------------------------------------- value parsing
def _parse_scalar(text: str):
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


def parse_auto(text: str):
    """A value for a parameter whose default is None or a string.

    "none" -> None, "true"/"false" -> bool, "10" -> 10, "0.95" -> 0.95, "200,200" ->
    (200, 200), anything else stays a string ("mle", "k-means++").
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


def _parse_json(text: str):
    try:
        return json.loads(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected JSON, got {text!r}") from None


# ----------------------------------------------------------------------------- signatures
def _param_docs(cls) -> dict[str, str]:
    """Each parameter's numpydoc description: its first sentence, or all of it when several
    parameters share one entry (``max_epochs, batch_size`` + a description of both)."""
    doc = inspect.getdoc(cls) or ""
    lines = doc.splitlines()
    out: dict[str, str] = {}
    in_params, names, text = False, [], []

    def flush():
        joined = " ".join(" ".join(text).split())
        first = re.split(r"(?<=\.)\s", joined, maxsplit=1)[0]
        for i, name in enumerate(names):  # a shared entry is printed once, at its first flag
            out[name] = first if len(names) == 1 else (
                joined if i == 0 else f"See --{names[0].replace('_', '-')}.")

    for i, line in enumerate(lines):
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        if re.fullmatch(r"-{3,}", nxt.strip()) and line.strip():  # a section title
            flush()
            names, text = [], []
            in_params = line.strip() == "Parameters"
            continue
        if not in_params or re.fullmatch(r"-{3,}", line.strip()):
            continue
        m = re.match(r"^([A-Za-z_]\w*(?:\s*,\s*[A-Za-z_]\w*)*)\s*(:.*)?$", line)
        if m and not line.startswith(" "):
            flush()
            names, text = [n.strip() for n in m.group(1).split(",")], []
        elif names:
            text.append(line.strip())
    flush()
    return out


def estimator_params(cls) -> list[inspect.Parameter]:
    """``__init__`` parameters that can be set by name."""
    sig = inspect.signature(cls.__init__)
    return [p for name, p in sig.parameters.items() if name != "self"
            and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]


def _help(doc: str, default) -> str:
    text = f"{doc} " if doc else ""
    return (text + f"(default: {default!r})").replace("%", "%%")


def add_param_flags(parser: argparse.ArgumentParser, cls, skip=()) -> list[str]:
    """Add one flag per hyperparameter of ``cls`` to ``parser``; returns the names added.

    Parameters named in ``skip`` get no flag (``select-k`` sets K itself).

    Typing follows the default: bool -> ``--flag``/``--no-flag``; int ->
    integer; float -> number; tuple/list -> comma list; dict -> JSON; None or str -> the
    sensible reading of :func:`parse_auto`. Parameters with other defaults are not exposed.
    """
    docs = _param_docs(cls)
    group = parser.add_argument_group(f"{cls.__name__} hyperparameters")
    added = []
    for p in estimator_params(cls):
        name, default = p.name, p.default
        if (name in RESERVED or name in _OWN_OPTIONS or name in skip
                or default is inspect.Parameter.empty):
            continue
        flag = "--" + name.replace("_", "-")
        dest = _PREFIX + name
        help_ = _help(docs.get(name, ""), default)
        if isinstance(default, bool):
            # a flag pair takes no value, so it can never swallow a following positional
            group.add_argument(flag, dest=dest, action="store_true", default=argparse.SUPPRESS,
                               help=help_ + f"; --no-{name.replace('_', '-')} turns it off")
            group.add_argument("--no-" + name.replace("_", "-"), dest=dest,
                               action="store_false", default=argparse.SUPPRESS,
                               help=argparse.SUPPRESS)
        elif isinstance(default, int):
            group.add_argument(flag, dest=dest, type=_parse_int, default=argparse.SUPPRESS,
                               metavar="INT", help=help_)
        elif isinstance(default, float):
            group.add_argument(flag, dest=dest, type=_parse_float, default=argparse.SUPPRESS,
                               metavar="FLOAT", help=help_)
        elif isinstance(default, (tuple, list)):
            conv = _parse_seq if isinstance(default, tuple) else (lambda t: list(_parse_seq(t)))
            group.add_argument(flag, dest=dest, type=conv, default=argparse.SUPPRESS,
                               metavar="A,B,...", help=help_)
        elif isinstance(default, dict):
            group.add_argument(flag, dest=dest, type=_parse_json, default=argparse.SUPPRESS,
                               metavar="JSON", help=help_)
        elif default is None or isinstance(default, str):
            group.add_argument(flag, dest=dest, type=parse_auto, default=argparse.SUPPRESS,
                               metavar="VALUE", help=help_)
        else:
            continue
        added.append(name)
    return added


def collect_params(args: argparse.Namespace) -> dict:
    """The hyperparameters given on the command line (only those given)."""
    return {k[len(_PREFIX):]: v for k, v in vars(args).items() if k.startswith(_PREFIX)}
