"""What a model file's header may say, checked before anything is allocated from it.

Each check raises :class:`~latentspace.exceptions.ModelFormatError` naming the file and the
part that is wrong:

* :func:`parse_json` -- JSON without ``NaN``/``Infinity`` constants, duplicate keys or deep
  nesting (measured before parsing: no ``RecursionError`` from a hostile file);
* :func:`check_table` -- the safetensors tensor table: known dtypes, shapes of non-negative
  Python ints, byte sizes computed exactly (Python ints never overflow) and matching the
  offsets, which tile the payload with no gap, overlap or trailing bytes;
* :func:`check_version` and :func:`check_manifest` -- the manifest's fields and their types;
* :func:`check_against_class`, :func:`check_array_specs`, :func:`check_scalar` and
  :func:`check_finite_arrays` -- names, kinds, shapes and finiteness against what the
  estimator class declares.

A class declares its fitted attributes in ``_fitted_schema``: name -> ``(kind, shape)`` or
``(kind, shape, flags)``. ``kind`` is ``"float"``, ``"int"`` (for scalars: a count, >= 0) or
``"bool"`` for arrays and scalars, and ``"str"``, ``"str?"`` (a string or None),
``"records"`` (a list of dicts, e.g. ``history_``) or ``"strarray"`` for scalars. ``shape``
is None for a scalar kept in the manifest, else a tuple of ints, symbols (a hyperparameter
or a scalar fitted attribute) and ``"*"`` (any length), or ``{hyperparameter: {value:
tuple}}`` when it depends on one. ``flags`` holds ``"optional"`` (not every fit produces it)
and ``"nonfinite"`` (NaN or infinity allowed, as in a history). ``n_features_in_`` and
``feature_names_in_`` are shared by every class. A class without a declaration (a user's
subclass) has its attribute names checked only not to shadow a method or property.
"""

from __future__ import annotations

import inspect
import json
import math
import re

import numpy as np

from .exceptions import ModelFormatError, UnsupportedFormatVersionError

__all__ = ["DTYPE_SIZES", "MAX_DEPTH", "check_against_class", "check_array_specs",
           "check_finite_arrays", "check_manifest", "check_scalar", "check_table",
           "check_version", "fitted_schema", "parse_json"]

MAX_DEPTH = 32  # a manifest nests about 6 deep; far deeper is garbage or an attack
MAX_NDIM = 16
DTYPE_SIZES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2,
               "I8": 1, "U8": 1, "BOOL": 1}
_DTYPE_KIND = {"F64": "float", "F32": "float", "F16": "float", "BF16": "float", "I64": "int",
               "I32": "int", "I16": "int", "I8": "int", "U8": "int", "BOOL": "bool"}
_HEX64 = re.compile(r"[0-9a-f]{64}\Z")
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.S)
_MANIFEST_KEYS = {"format", "format_version", "library_version", "class", "params", "attrs",
                  "sha256"}
_PREFIXES = ("param.", "attr.", "state.")
# fitted attributes every estimator may carry (set by the shared input validation)
_COMMON = {"n_features_in_": ("int", None), "feature_names_in_": ("strarray", None, "optional")}


def _fail(path, msg: str):
    raise ModelFormatError(f"{path}: {msg}")


def _is_int(v) -> bool:
    return type(v) is int  # bools and floats are not sizes


# ----------------------------------------------------------------------------- JSON
def _reject_constant(name):
    raise ValueError(f"the constant {name} is not allowed")


def _unique_pairs(pairs):
    d = dict(pairs)
    if len(d) != len(pairs):
        seen = set()
        dup = next(k for k, _ in pairs if k in seen or seen.add(k))
        raise ValueError(f"the key {dup!r} appears twice in one object")
    return d


def parse_json(raw: bytes, path, what: str):
    """``raw`` (UTF-8 JSON) -> Python value, refusing constants, duplicate keys and nesting
    deeper than :data:`MAX_DEPTH`; the depth is measured before the parser recurses."""
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "surrogatepass")
    outside = _STRING.sub(b"", raw)  # brackets inside strings do not nest
    arr = np.frombuffer(outside, dtype=np.uint8)
    if arr.size:
        step = np.isin(arr, (0x7B, 0x5B)).astype(np.int32) - np.isin(arr, (0x7D, 0x5D))
        if int(np.cumsum(step).max()) > MAX_DEPTH:
            _fail(path, f"the {what} nests deeper than {MAX_DEPTH} levels; the file is "
                        "corrupted or forged.")
    try:
        return json.loads(raw.decode("utf-8"), parse_constant=_reject_constant,
                          object_pairs_hook=_unique_pairs)
    except UnicodeDecodeError as exc:
        _fail(path, f"the {what} is not UTF-8 text (byte {exc.start} of it); the file is "
                    "corrupted.")
    except json.JSONDecodeError as exc:
        _fail(path, f"the {what} is not valid JSON (it breaks at character {exc.pos} of "
                    f"{len(raw)}); the file is corrupted.")
    except (ValueError, RecursionError) as exc:  # a refused constant or a duplicate key
        _fail(path, f"the {what} is not valid JSON for a model file ({exc}); the file is "
                    "corrupted or forged.")


# ----------------------------------------------------------------------------- table
def check_table(table: dict, payload: int, path) -> None:
    """Check every tensor entry of the safetensors header against a payload of ``payload``
    bytes: nothing here allocates, and sizes are exact Python integers."""
    spans = []
    for name, info in table.items():
        if not any(name.startswith(p) and len(name) > len(p) for p in _PREFIXES):
            _fail(path, f"tensor {name!r} has no param./attr./state. prefix; the file is "
                        "corrupted or forged.")
        if not isinstance(info, dict) or set(info) != {"dtype", "shape", "data_offsets"}:
            _fail(path, f"tensor {name!r} has a malformed header entry.")
        dtype, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
        if not isinstance(dtype, str) or dtype not in DTYPE_SIZES:
            _fail(path, f"tensor {name!r} has an unknown dtype {dtype!r}; expected one of "
                        f"{sorted(DTYPE_SIZES)}.")
        if not isinstance(shape, list) or len(shape) > MAX_NDIM or not all(
            _is_int(s) and s >= 0 for s in shape
        ):
            _fail(path, f"tensor {name!r} has an invalid shape {shape!r}; a shape is a list of "
                        "non-negative integers.")
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(
            _is_int(o) for o in offsets
        )):
            _fail(path, f"tensor {name!r} has invalid data_offsets {offsets!r}; expected two "
                        "integers.")
        start, end = offsets
        nbytes = math.prod(shape) * DTYPE_SIZES[dtype]
        if not (0 <= start <= end <= payload) or end - start != nbytes:
            _fail(path, f"tensor {name!r} has an inconsistent header entry (dtype {dtype}, shape "
                        f"{shape}, bytes {start}..{end} of {payload}); the file is corrupted "
                        "or truncated.")
        spans.append((start, end, name))
    at = 0
    for start, end, name in sorted(spans):
        if start != at:
            _fail(path, f"tensor {name!r} starts at byte {start} of the payload, but the "
                        f"previous tensor ends at {at}; the tensors overlap or leave a gap.")
        at = end
    if at != payload:
        _fail(path, f"the payload has {payload} bytes but its tensors account for {at}; the "
                    "file is truncated or has bytes appended.")


# ----------------------------------------------------------------------------- manifest
def check_version(manifest, path, newest: int) -> None:
    """``format_version`` first: a newer file may follow a schema this one cannot check."""
    if not isinstance(manifest, dict):
        _fail(path, "the manifest is not a JSON object; the file is corrupted.")
    version = manifest.get("format_version")
    if not _is_int(version) or version < 1:
        _fail(path, f"format_version {version!r} is not a positive integer; the file is "
                    "corrupted.")
    if version > newest:
        raise UnsupportedFormatVersionError(
            f"{path} has format version {version}, but this latentspace reads up to version "
            f"{newest}; upgrade latentspace (pip install -U latentspace)."
        )


def check_manifest(manifest: dict, table: dict, path) -> None:
    """Types of every manifest field (after :func:`check_version`)."""
    missing = {"format_version", "class", "params", "attrs", "sha256"} - set(manifest)
    extra = set(manifest) - _MANIFEST_KEYS
    if missing or extra:
        _fail(path, f"the manifest lacks {sorted(missing)} or has unknown fields "
                    f"{sorted(extra)}; the file is corrupted.")
    if manifest.get("format", "latentspace") != "latentspace":
        _fail(path, f"format {manifest['format']!r} is not 'latentspace'.")
    if not isinstance(manifest.get("library_version", ""), str):
        _fail(path, "library_version is not a string.")
    if not isinstance(manifest["class"], str):
        _fail(path, f"class {manifest['class']!r} is not a class name.")
    for field in ("params", "attrs", "sha256"):
        if not isinstance(manifest[field], dict):
            _fail(path, f"the manifest's {field} is a {type(manifest[field]).__name__}, not an "
                        "object; the file is corrupted.")
    for key, value in manifest["params"].items():
        if isinstance(value, dict) and "__tensor__" in value and (
            value != {"__tensor__": f"param.{key}"} or f"param.{key}" not in table
        ):
            _fail(path, f"hyperparameter {key!r} refers to a tensor {value!r} that the file "
                        f"does not hold as param.{key}.")
    for name, info in table.items():
        if name.startswith("param.") and manifest["params"].get(name[6:]) != {"__tensor__": name}:
            _fail(path, f"tensor {name!r} is not referenced by a hyperparameter.")
        if name.startswith("param.") and info["dtype"] == "BF16":
            _fail(path, f"hyperparameter {name[6:]!r} is a bfloat16 array; no hyperparameter is.")
    digests = manifest["sha256"]
    if set(digests) != set(table):
        _fail(path, "the manifest's checksums and the tensor table name different tensors "
                    f"({sorted(set(digests) ^ set(table))[:5]}); the file is corrupted.")
    for name, d in digests.items():
        if not isinstance(d, str) or not _HEX64.match(d):
            _fail(path, f"the checksum of tensor {name!r} is not a SHA-256 hex digest.")


# ----------------------------------------------------------------------------- class
def fitted_schema(cls) -> dict | None:
    """The class's declared fitted attributes with the shared ones, normalised to
    name -> (kind, shape, flags); None for a class that declares none (a user's subclass:
    its names are then only checked not to shadow anything)."""
    declared = getattr(cls, "_fitted_schema", None)
    if declared is None:
        return None
    out = {}
    for name, spec in {**_COMMON, **declared}.items():
        kind, shape, *rest = spec
        out[name] = (kind, shape, rest[0] if rest else "")
    return out


def init_params(cls) -> set:
    return {p.name for p in inspect.signature(cls.__init__).parameters.values()
            if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}


def check_against_class(cls, manifest: dict, table: dict, path) -> None:
    """Names against ``cls``: params only for ``__init__`` arguments, ``attr.X`` and scalar
    attributes only for declared fitted attributes (stored as declared: array or scalar),
    none shadowing a method or property; every required declared attribute present once any
    fitted attribute is."""
    allowed = init_params(cls)
    for key in manifest["params"]:
        if key not in allowed:
            _fail(path, f"hyperparameter {key!r} is not an argument of {cls.__name__}; the file "
                        "is corrupted or from another class.")
    schema = fitted_schema(cls)
    arrays = {n[5:] for n in table if n.startswith("attr.")}
    members = set(dir(cls))
    for name in [*arrays, *manifest["attrs"]]:
        if name in members or not name.endswith("_") or name.startswith("_"):
            _fail(path, f"fitted attribute {name!r} would replace a method or property of "
                        f"{cls.__name__}, or is not a fitted attribute's name; the file is "
                        "forged.")
        if name in arrays and name in manifest["attrs"]:
            _fail(path, f"fitted attribute {name!r} is stored twice.")
        if schema is None:
            continue
        if name not in schema:
            _fail(path, f"{name!r} is not a fitted attribute of {cls.__name__} (it declares "
                        f"{sorted(schema)}).")
        if (name in arrays) != (schema[name][1] is not None):
            _fail(path, f"fitted attribute {name!r} is stored as "
                        f"{'an array' if name in arrays else 'a scalar'}, but {cls.__name__} "
                        "declares otherwise.")
    if schema is None:
        return
    present = arrays | set(manifest["attrs"])
    fitted = present or any(n.startswith("state.") for n in table)
    lost = sorted(n for n, s in schema.items() if "optional" not in s[2] and n not in present)
    if fitted and lost:
        _fail(path, f"fitted attributes {lost} of {cls.__name__} are missing; the file is "
                    "corrupted. Re-fit and save the model.")


def _resolve(dim, env: dict, name: str, path):
    if _is_int(dim) or dim == "*":
        return dim
    value = env.get(dim)
    if value is None or not _is_int(value) or value < 0:
        _fail(path, f"cannot check the shape of {name!r}: {dim} is {value!r}, not a size.")
    return value


def check_array_specs(cls, table: dict, env: dict, path) -> None:
    """Dtype kind and symbolic shape of every ``attr.X`` entry, from the header alone.
    ``env``: hyperparameters and scalar fitted attributes (decoded)."""
    schema = fitted_schema(cls)
    if schema is None:
        return
    for key, info in table.items():
        if not key.startswith("attr."):
            continue
        name = key[5:]
        kind, shape, _ = schema[name]
        if _DTYPE_KIND[info["dtype"]] != kind or info["dtype"] in ("F16", "BF16"):
            _fail(path, f"fitted attribute {name!r} has dtype {info['dtype']}, but "
                        f"{cls.__name__} declares {kind} values.")
        if isinstance(shape, dict):
            (param, options), = shape.items()
            choice = env.get(param)
            if not isinstance(choice, str) or choice not in options:
                _fail(path, f"{param}={choice!r} is not one of {sorted(options)}.")
            shape = options[choice]
        want = [_resolve(d, env, name, path) for d in shape]
        got = info["shape"]
        if len(got) != len(want) or any(w != "*" and w != g for w, g in zip(want, got)):
            _fail(path, f"fitted attribute {name!r} has shape {tuple(got)}, but "
                        f"{cls.__name__} declares {tuple(shape)} = {tuple(want)}; the file is "
                        "corrupted or forged.")


def check_scalar(cls, name: str, value, path) -> None:
    """A decoded scalar fitted attribute against its declared kind (and finiteness)."""
    schema = fitted_schema(cls)
    if schema is None:
        return
    kind, _, flags = schema[name]
    ok = {
        "int": _is_int(value) and value >= 0,  # counts and sizes
        "float": isinstance(value, (int, float)) and not isinstance(value, bool),
        "bool": isinstance(value, bool),
        "str": isinstance(value, str),
        "str?": value is None or isinstance(value, str),
        "records": isinstance(value, list) and all(isinstance(r, dict) for r in value),
        "strarray": isinstance(value, np.ndarray) and value.dtype == object
        and all(isinstance(v, str) for v in value),
    }.get(kind, False)
    if not ok:
        _fail(path, f"fitted attribute {name}={value!r:.60} is not of the declared kind {kind}.")
    if kind == "float" and isinstance(value, int) and abs(value) > 2**1023:
        _fail(path, f"fitted attribute {name} is an integer beyond the float range.")
    if kind == "float" and "nonfinite" not in flags and not math.isfinite(value):
        _fail(path, f"fitted attribute {name}={value} is not finite; the file is corrupted.")


def check_finite_arrays(cls, arrays: dict, path) -> None:
    """Declared-finite float arrays hold only finite values (``arrays``: name -> tensor)."""
    import torch

    schema = fitted_schema(cls)
    if schema is None:
        return
    for name, t in arrays.items():
        kind, _, flags = schema[name]
        if kind == "float" and "nonfinite" not in flags and not bool(torch.isfinite(t).all()):
            _fail(path, f"fitted attribute {name!r} holds NaN or infinity; the file is "
                        "corrupted. Re-fit and save the model.")
