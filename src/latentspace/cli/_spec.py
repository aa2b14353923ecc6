"""What the command line knows about each model's hyperparameters, without importing it.

A :class:`ParamSpec` says how one ``__init__`` parameter becomes a flag: its kind (read from
the default value), its help (the numpydoc description, RST markup stripped), its allowed
values (a numpydoc set such as ``{"full", "tied"}`` or a ``Literal`` type hint) and whether it
takes an array (given as a ``.npy`` file).

Building these specs needs the estimator classes, and importing them pulls in torch and
scikit-learn (seconds). So the specs of the library's own models are kept in the generated
table :mod:`latentspace.cli._table` together with a digest of the source files they were read
from. :func:`model_specs` uses the table while those files are unchanged, and reads the
classes themselves otherwise (always right, only slower). Regenerate the table with
``python -m latentspace.cli._spec``; a test checks that it matches the classes.
"""

from __future__ import annotations

import hashlib
import inspect
import re
import sys
import typing
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["ParamSpec", "ModelSpec", "strip_rst", "spec_from_class", "model_specs",
           "live_specs", "render_table"]

# the kinds of flag, chosen from the default value (see _params.add_param_flags)
KINDS = ("bool", "int", "float", "tuple", "list", "json", "auto")
_PACKAGE = Path(__file__).resolve().parents[1]  # src/latentspace


@dataclass(frozen=True)
class ParamSpec:
    """One hyperparameter as a command-line flag.

    Attributes
    ----------
    name : str
        The ``__init__`` parameter (``n_components``; the flag is ``--n-components``).
    kind : str
        One of :data:`KINDS`, from the type of the default.
    default : object
        The default value (a literal: number, str, None, bool, tuple, list or dict).
    help : str
        The first sentence of its numpydoc description, plain text.
    choices : tuple of str
        The allowed string values; with ``closed`` only these (plus None when ``none_ok``).
    closed : bool
        Whether ``choices`` are all the values the parameter takes.
    none_ok : bool
        Whether ``none`` is accepted.
    array : bool
        Whether the parameter takes an array, given on the command line as a ``.npy`` file.
    """

    name: str
    kind: str
    default: Any
    help: str = ""
    choices: tuple[str, ...] = ()
    closed: bool = False
    none_ok: bool = False
    array: bool = False


@dataclass(frozen=True)
class ModelSpec:
    """A model as the command line sees it.

    Attributes
    ----------
    name : str
        Its command-line name (``gaussian_mixture``).
    target : str
        ``"module:ClassName"``, imported only when the model is used.
    params : tuple of ParamSpec
        The hyperparameters that become flags, in signature order.
    all_params : tuple of str
        Every ``__init__`` parameter name (also those without a flag).
    """

    name: str
    target: str
    params: tuple[ParamSpec, ...] = field(default=())
    all_params: tuple[str, ...] = field(default=())

    def load_class(self) -> type:
        """Import and return the estimator class.

        Returns
        -------
        cls : type
        """
        import importlib

        module, _, qualname = self.target.partition(":")
        obj: Any = importlib.import_module(module)
        for part in qualname.split("."):
            obj = getattr(obj, part)
        return typing.cast(type, obj)


# ----------------------------------------------------------------------------- RST -> text
_ROLE = re.compile(r":[a-z]+(?::[a-z]+)?:`~?([^`<]*?)(?:\s*<[^>]*>)?`")
_LINK = re.compile(r"`([^`<]+?)\s*<[^>]+>`_{1,2}")


def strip_rst(text: str) -> str:
    """Plain text from reStructuredText markup, for ``--help``.

    ``:class:`~a.b.C``` -> ``C``, ``:func:`f``` -> ``f``, double and single backticks and
    ``**bold**`` / ``*emphasis*`` lose their markers, ```text <url>`_`` keeps the text and
    ``::`` at the end of a sentence becomes ``:``.

    Parameters
    ----------
    text : str

    Returns
    -------
    plain : str
    """
    def role(m: re.Match) -> str:
        target = m.group(1).strip()
        # ~a.b.C shows only the last part, as Sphinx does
        return target.rsplit(".", 1)[-1] if m.group(0).split("`")[1].startswith("~") else target

    text = _ROLE.sub(role, text)
    text = _LINK.sub(r"\1", text)
    text = re.sub(r"``(.+?)``", r"\1", text)
    text = re.sub(r"(?<![\w`])`([^`]+)`(?![\w`])", r"\1", text)
    text = re.sub(r"\*\*(\S(?:.*?\S)?)\*\*", r"\1", text)
    text = re.sub(r"(?<![\w*])\*(\S(?:[^*]*?\S)?)\*(?![\w*])", r"\1", text)
    text = re.sub(r"(?<=\w)::(?=\s|$)", ":", text)
    text = re.sub(r"(?<=\s)::(?=\s|$)", "", text)
    return " ".join(text.split())


# ----------------------------------------------------------------------------- numpydoc
def param_docs(cls: type) -> dict[str, tuple[str, str]]:
    """Each parameter's numpydoc entry: ``name -> (type text, description)``.

    The description is the first sentence, or all of it when several parameters share one
    entry (``max_epochs, batch_size`` and a description of both; the later names get
    "See --first-name.").

    Parameters
    ----------
    cls : type

    Returns
    -------
    docs : dict of str to (str, str)
        Raw type text (RST kept) and plain description.
    """
    doc = inspect.getdoc(cls) or ""
    lines = doc.splitlines()
    out: dict[str, tuple[str, str]] = {}
    in_params = False
    names: list[str] = []
    kind = ""
    text: list[str] = []

    pending: list[tuple[str, str]] = []  # entries without a text: they share the next one's

    def flush() -> None:
        joined = strip_rst(" ".join(text))
        if not joined and names:
            pending.extend((n, kind) for n in names)
            return
        first = re.split(r"(?<=\.)\s", joined, maxsplit=1)[0]
        for n, k in pending:
            out[n] = (k, first)
        pending.clear()
        for i, name in enumerate(names):  # a shared entry is printed once, at its first flag
            desc = first if len(names) == 1 else (
                joined if i == 0 else f"See --{names[0].replace('_', '-')}.")
            out[name] = (kind, desc)

    for i, line in enumerate(lines):
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        if re.fullmatch(r"-{3,}", nxt.strip()) and line.strip():  # a section title
            flush()
            names, text = [], []
            in_params = line.strip() == "Parameters"
            pending.clear()
            continue
        if not in_params or re.fullmatch(r"-{3,}", line.strip()):
            continue
        m = re.match(r"^([A-Za-z_]\w*(?:\s*,\s*[A-Za-z_]\w*)*)\s*(?::(.*))?$", line)
        if m and not line.startswith(" "):
            flush()
            names, text = [n.strip() for n in m.group(1).split(",")], []
            kind = (m.group(2) or "").strip()
        elif names:
            text.append(line.strip())
    flush()
    for n, k in pending:  # undescribed entries at the end of the section
        out[n] = (k, "")
    return out


_QUOTED = re.compile(r"""["']([^"']*)["']""")
_ARRAY = re.compile(r"\b(array|array-like|ndarray)\b")


def parse_type(kind: str) -> tuple[tuple[str, ...], bool, bool, bool]:
    """Allowed strings, closedness, None and arrays from a numpydoc type text.

    ``{"full", "tied"}, default="full"`` -> (("full", "tied"), closed, no None, no array);
    ``int or "auto"`` -> (("auto",), open); ``{"k-means++", "random"} or array of shape
    (n, d)`` -> the two strings, closed over strings, and an array.

    Parameters
    ----------
    kind : str
        The text after ``name :`` in the Parameters section.

    Returns
    -------
    choices : tuple of str
    closed : bool
        True when the type is a set of strings (optionally "or None" / "or array ...").
    none_ok : bool
    array : bool
    """
    kind = re.split(r",?\s*\bdefault\b", kind, maxsplit=1)[0].strip().rstrip(",")
    sets = re.findall(r"\{([^}]*)\}", kind)
    rest = re.sub(r"\{[^}]*\}", " ", kind)
    array = bool(_ARRAY.search(rest))
    if array:  # "array of shape (n_components, n_features)" says nothing more
        rest = re.sub(r"\b(array-like|ndarray|array)\b(\s+of\s+shape\s*\([^)]*\))?", " ", rest)
    none_ok = bool(re.search(r"\bNone\b", kind))
    rest_words = _QUOTED.findall(rest)
    choices: list[str] = []
    for s in sets:
        choices += _QUOTED.findall(s)
    choices += [w for w in rest_words if w not in choices]
    leftover = re.sub(r"""["'][^"']*["']|\bNone\b|\bor\b|,""", " ", rest).strip()
    closed = bool(sets) and not rest_words and not leftover
    return tuple(choices), closed, none_ok, array


def _literal_choices(cls: type, name: str) -> tuple[tuple[str, ...], bool] | None:
    """Strings of a ``Literal[...]`` (or ``Literal[...] | None``) hint of ``name``, if any."""
    try:
        hints = typing.get_type_hints(getattr(cls, "__init__"))
    except Exception:  # unresolvable forward references: the docstring is the fallback
        return None
    hint = hints.get(name)
    if hint is None:
        return None
    args = [hint]
    if typing.get_origin(hint) in (typing.Union, getattr(__import__("types"), "UnionType", ())):
        args = list(typing.get_args(hint))
    values: list[str] = []
    none_ok = False
    for a in args:
        if a is type(None):
            none_ok = True
        elif typing.get_origin(a) is typing.Literal:
            values += [v for v in typing.get_args(a) if isinstance(v, str)]
        else:
            return None  # Literal mixed with other types: not a closed set
    return (tuple(values), none_ok) if values else None


def _kind_of(default: Any) -> str | None:
    if isinstance(default, bool):
        return "bool"
    if isinstance(default, int):
        return "int"
    if isinstance(default, float):
        return "float"
    if isinstance(default, tuple):
        return "tuple"
    if isinstance(default, list):
        return "list"
    if isinstance(default, dict):
        return "json"
    if default is None or isinstance(default, str):
        return "auto"
    return None


def spec_from_class(cls: type, name: str, skip: typing.Collection[str] = ()) -> ModelSpec:
    """Read a model's flags from its signature, docstring and type hints.

    Parameters
    ----------
    cls : type
        The estimator class.
    name : str
        Its command-line name.
    skip : collection of str
        Parameter names that get no flag (the command's own options).

    Returns
    -------
    spec : ModelSpec
    """
    docs = param_docs(cls)
    sig = inspect.signature(getattr(cls, "__init__"))
    params = []
    all_names = []
    for p in sig.parameters.values():
        if p.name == "self" or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        all_names.append(p.name)
        kind = _kind_of(p.default)
        if p.name in skip or p.default is inspect.Parameter.empty or kind is None:
            continue
        type_text, desc = docs.get(p.name, ("", ""))
        choices, closed, none_ok, array = parse_type(type_text)
        lit = _literal_choices(cls, p.name)
        if lit is not None:
            choices, closed, none_ok = lit[0], True, lit[1] or none_ok
        if kind not in ("auto",):  # a number or a sequence: strings are not the flag's values
            closed = False
        params.append(ParamSpec(p.name, kind, p.default, desc, tuple(choices), closed,
                                none_ok or p.default is None, array and kind == "auto"))
    target = f"{cls.__module__}:{cls.__qualname__}"
    return ModelSpec(name, target, tuple(params), tuple(all_names))


# ----------------------------------------------------------------------------- the table
def _source_files(classes: typing.Iterable[type]) -> list[str]:
    """Files (relative to the package) the specs depend on: every latentspace module in the
    classes' MROs, the registry of model families and this module."""
    files = {"base.py", "io.py", "cli/_spec.py", "cli/_params.py"}
    for cls in classes:
        for klass in cls.__mro__:
            mod = sys.modules.get(klass.__module__)
            path = getattr(mod, "__file__", None)
            if path and klass.__module__.startswith("latentspace."):
                try:
                    files.add(Path(path).resolve().relative_to(_PACKAGE).as_posix())
                except ValueError:
                    pass
    return sorted(files)


def digest(files: typing.Iterable[str]) -> str | None:
    """SHA-256 over the named package files (None if one is missing).

    Parameters
    ----------
    files : iterable of str
        Paths relative to the package folder.

    Returns
    -------
    hex : str or None
    """
    h = hashlib.sha256()
    for rel in files:
        try:
            data = (_PACKAGE / rel).read_bytes()
        except OSError:
            return None
        h.update(rel.encode() + b"\0" + data + b"\0")
    return h.hexdigest()


def live_specs() -> dict[str, ModelSpec]:
    """Specs read from the registered classes themselves (imports every model family).

    Returns
    -------
    specs : dict of str to ModelSpec
        Command-line name -> spec, sorted by name.
    """
    from ._params import SKIPPED, model_classes

    return {name: spec_from_class(cls, name, SKIPPED) for name, cls in model_classes().items()}


def render_table() -> str:
    """The source text of :mod:`latentspace.cli._table` for the current classes.

    Returns
    -------
    text : str
    """
    from ._params import model_classes

    specs = live_specs()
    files = _source_files(model_classes().values())
    models = {n: {"target": s.target, "all_params": list(s.all_params),
                  "params": [asdict(p) for p in s.params]} for n, s in specs.items()}
    import pprint

    return (
        '"""Generated by ``python -m latentspace.cli._spec``: the models\' command-line flags.\n\n'
        "Do not edit; regenerate after changing a model's signature or docstring (a test fails\n"
        'until then, and the command reads the classes themselves meanwhile)."""\n\n'
        "from typing import Any\n\n"
        f"FILES = {pprint.pformat(files, width=96)}\n\n"
        f"DIGEST = {digest(files)!r}\n\n"
        f"MODELS: dict[str, Any] = {pprint.pformat(models, width=96, sort_dicts=False)}\n"
    )


def _from_table() -> dict[str, ModelSpec] | None:
    try:
        from . import _table
    except ImportError:
        return None
    if digest(_table.FILES) != _table.DIGEST:
        return None  # the models changed since the table was written: read them instead
    models: dict[str, dict[str, Any]] = _table.MODELS
    return {
        name: ModelSpec(name, m["target"], tuple(ParamSpec(**p) for p in m["params"]),
                        tuple(m["all_params"]))
        for name, m in models.items()
    }


_CACHE: dict[str, dict[str, ModelSpec]] = {}


def model_specs(live: bool = False) -> dict[str, ModelSpec]:
    """Command-line name -> :class:`ModelSpec` of the library's models.

    Parameters
    ----------
    live : bool, default=False
        Read the classes (and every registered model, also ones added at run time) instead
        of the table.

    Returns
    -------
    specs : dict of str to ModelSpec
    """
    if live:
        return live_specs()
    if "table" not in _CACHE:
        _CACHE["table"] = _from_table() or live_specs()
    return _CACHE["table"]


if __name__ == "__main__":  # pragma: no cover - the maintainer's regeneration step
    out = Path(__file__).with_name("_table.py")
    out.write_text(render_table(), encoding="utf-8")
    print(f"wrote {out}")
