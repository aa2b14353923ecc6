"""Saving and loading models: one safetensors file, a JSON manifest, no pickle.

File layout (format version 2): a plain safetensors file -- an 8-byte little-endian header
length, a JSON header padded with spaces, then the raw tensor bytes, which tile the payload
exactly. The header's ``__metadata__`` holds ``{"latentspace": <manifest JSON>,
"latentspace_seal": <SHA-256>}``. The manifest gives the format version, library version,
class name, hyperparameters, non-array fitted attributes and the SHA-256 of every tensor; the
seal is the SHA-256 of the exact manifest text and of a canonical form of the tensor table.
So every byte of the file is covered: a flipped byte in the length field, the header, its
padding or the payload is a :class:`~latentspace.exceptions.ChecksumError` or
:class:`~latentspace.exceptions.ModelFormatError`, never a loaded model. Version-1 files (the
same layout without the seal) are still read.

Loading never trusts the header: it is parsed without NaN/Infinity constants or deep nesting,
checked against a schema (:mod:`latentspace._schema`) -- field types, tensor sizes against
offsets, names against the class's hyperparameters and declared fitted attributes, shapes
against the declared symbolic shapes, a network's state against the freshly built module --
before anything is allocated from it. Pickle-based files are refused without being
unpickled, and only classes registered by latentspace itself are rebuilt.

Writes are atomic (:func:`latentspace._atomic.atomic_write_bytes`): a crash at any moment
leaves the previous file intact.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import re
import os
import struct
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import _schema
from ._atomic import atomic_write_bytes
from .base import LatentModel, registered_models
from .exceptions import (
    ChecksumError,
    ModelFormatError,
    UnsafeFormatError,
)

__all__ = ["save", "load", "read_manifest", "read_header", "describe",
           "import_model_families", "FORMAT_VERSION", "CHECKPOINT_FORMAT"]

FORMAT_VERSION = 2
CHECKPOINT_FORMAT = "latentspace-checkpoint"  # the manifest's format in training checkpoints
_SEAL_KEY = "latentspace_seal"
_MAX_HEADER = 64 * 1024 * 1024  # a larger header is a lie or garbage
_MODEL_MODULES = (
    "latentspace.decomposition",
    "latentspace.cluster",
    "latentspace.mixture",
    "latentspace.neural",
)
_DTYPES = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
    "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8,
    "U8": torch.uint8, "BOOL": torch.bool,
}
_DTYPE_NAMES = {v: k for k, v in _DTYPES.items()}
_DEVICE = re.compile(r"(cpu|cuda|auto|mps|cuda:[0-9]+)\Z")


# ----------------------------------------------------------------------------- encoding
def _encode(value):
    """JSON-safe encoding of hyperparameters and scalar attributes (tuples kept as tuples)."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        v = float(value)
        return v if np.isfinite(v) else {"__float__": repr(v)}
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(v) for v in value]}
    if isinstance(value, list):
        return [_encode(v) for v in value]
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {"__dict__": {k: _encode(v) for k, v in value.items()}}
    if isinstance(value, np.ndarray) and value.dtype.kind in "OUS":
        return {"__strarray__": [str(v) for v in value.tolist()]}
    raise TypeError(f"cannot store a value of type {type(value).__name__}")


def _decode(value, path="the model file"):
    """Inverse of :func:`_encode`; anything it never writes is a ``ModelFormatError``."""
    if isinstance(value, list):
        return [_decode(v, path) for v in value]
    if isinstance(value, dict):
        if len(value) == 1:
            ((tag, inner),) = value.items()
            if tag == "__tuple__" and isinstance(inner, list):
                return tuple(_decode(v, path) for v in inner)
            if tag == "__float__" and inner in ("nan", "inf", "-inf"):
                return float(inner)
            if tag == "__dict__" and isinstance(inner, dict):
                return {k: _decode(v, path) for k, v in inner.items()}
            if tag == "__strarray__" and isinstance(inner, list) and all(
                isinstance(v, str) for v in inner
            ):
                return np.asarray(inner, dtype=object)
        raise ModelFormatError(
            f"{path}: unknown encoded value {json.dumps(value)[:80]} in the manifest; the file "
            "is corrupted."
        )
    return value


def _collect(est: LatentModel):
    """Split an estimator into (tensors, manifest) without pickling anything."""
    tensors: dict[str, torch.Tensor] = {}
    params, attrs = {}, {}
    persisted = getattr(est, "_persisted_param", None)
    for name, value in est.get_params(deep=False).items():
        if persisted is not None:
            stored = persisted(name, value)
            if stored is not NotImplemented:
                params[name] = stored
                continue
        if isinstance(value, (np.ndarray, torch.Tensor)) and not (
            isinstance(value, np.ndarray) and value.dtype.kind in "OUS"
        ):
            tensors[f"param.{name}"] = torch.as_tensor(np.asarray(value)).cpu()
            params[name] = {"__tensor__": f"param.{name}"}
            continue
        try:
            params[name] = _encode(value)
        except TypeError:
            if isinstance(value, np.random.RandomState):
                params[name] = None  # a live generator cannot be stored; the fit is already done
            else:
                raise TypeError(
                    f"hyperparameter {name}={value!r} cannot be saved; use plain numbers, "
                    "strings, tuples or arrays."
                ) from None
    for name, value in vars(est).items():
        if not name.endswith("_") or name.startswith("_"):
            continue
        if isinstance(value, torch.Tensor) or (
            isinstance(value, np.ndarray) and value.dtype.kind not in "OUS"
        ):
            tensors[f"attr.{name}"] = torch.as_tensor(np.asarray(to_cpu(value))).contiguous()
        else:
            try:
                attrs[name] = _encode(value)
            except TypeError:
                continue  # live objects (networks, optimisers) travel via _state_tensors
    for name, t in est._state_tensors().items():
        tensors[f"state.{name}"] = t.detach().cpu().contiguous()
    return tensors, params, attrs


def to_cpu(value):
    return value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else value


# ----------------------------------------------------------------------------- writing
def _seal(manifest_text: str, table: dict) -> str:
    """SHA-256 over the exact manifest text and the canonical tensor table (sorted keys, no
    whitespace): every field of the header but the seal itself."""
    m = manifest_text.encode("utf-8", "surrogatepass")
    t = json.dumps(table, sort_keys=True, separators=(",", ":")).encode("utf-8")
    h = hashlib.sha256(b"latentspace header seal\0")
    for part in (m, t):
        h.update(len(part).to_bytes(8, "little"))
        h.update(part)
    return h.hexdigest()


def _assemble(tensors: dict[str, torch.Tensor], manifest: dict, *,
              sort_keys: bool = True) -> bytes:
    """The bytes of a model file holding ``tensors`` and ``manifest``.

    Parameters
    ----------
    tensors : dict of str -> torch.Tensor
        Named tensors (``param.X``, ``attr.X``, ``state.X``).
    manifest : dict
        The manifest without checksums; ``format`` and ``format_version`` default to this
        format. Its ``sha256`` is filled in from the tensors, and the header is sealed.
    sort_keys : bool
        Write the manifest's keys sorted (model files); False keeps their order (training
        checkpoints, whose state dicts are ordered).

    Returns
    -------
    bytes
        A safetensors file: tensors laid out by decreasing element size (aligned), the header
        padded with spaces to a multiple of 8 bytes.
    """
    manifest = {"format": "latentspace", "format_version": FORMAT_VERSION, **manifest}
    table, chunks, digests, at = {}, [], {}, 0
    for name in sorted(tensors, key=lambda k: (-tensors[k].element_size(), k)):
        t = tensors[name].detach().cpu().contiguous()
        # a view (a memoryview of the tensor's bytes): the file is the one copy
        raw = t.reshape(-1).view(torch.uint8).numpy().data
        table[name] = {"dtype": _DTYPE_NAMES[t.dtype], "shape": list(t.shape),
                       "data_offsets": [at, at + len(raw)]}
        digests[name] = hashlib.sha256(raw).hexdigest()
        chunks.append(raw)
        at += len(raw)
    manifest["sha256"] = digests
    text = json.dumps(manifest, sort_keys=sort_keys)
    header = {"__metadata__": {"latentspace": text, _SEAL_KEY: _seal(text, table)}, **table}
    body = json.dumps(header, separators=(",", ":")).encode("utf-8")
    body += b" " * (-len(body) % 8)
    return b"".join([struct.pack("<Q", len(body)), body, *chunks])


def save(est: LatentModel, path: str | os.PathLike[str]) -> None:
    """Save a fitted (or unfitted) latentspace estimator to ``path``.

    Parameters
    ----------
    est : LatentModel
        Any latentspace estimator.
    path : str or Path
        Target file, conventionally ``*.safetensors``. An existing file is replaced
        atomically: if anything fails, it stays as it was.
    """
    if not isinstance(est, LatentModel):
        raise TypeError(f"save() takes a latentspace model, got {type(est).__name__}")
    from . import __version__

    tensors, params, attrs = _collect(est)
    declared = _schema.fitted_schema(type(est))
    stored = {n[5:] for n in tensors if n.startswith("attr.")} | set(attrs)
    undeclared = [] if declared is None else sorted(stored - set(declared))
    if undeclared:  # a file that load() would refuse must not be written
        raise TypeError(
            f"{type(est).__name__} has fitted attributes {undeclared} that its _fitted_schema "
            "does not declare; declare them so that the saved file can be loaded."
        )
    manifest = {
        "library_version": __version__,
        "class": type(est).__name__,
        "params": params,
        "attrs": attrs,
    }
    atomic_write_bytes(path, _assemble(tensors, manifest))


# ----------------------------------------------------------------------------- reading
_PICKLE_HINT = (
    "latentspace never unpickles files, because unpickling runs arbitrary code. "
    "Re-create the model and save it with est.save(path)."
)


def _sniff_unsafe(path: Path, head: bytes) -> None:
    """Refuse pickle-based formats by their first bytes, before reading anything else."""
    if len(head) > 8 and head[8:9] == b"{":
        return  # the safetensors layout: length, then the JSON header; checked further on
    if head[:1] == b"\x80" and len(head) > 1 and head[1] <= 5:
        raise UnsafeFormatError(f"{path} is a Python pickle. {_PICKLE_HINT}")
    if head[:4] == b"PK\x03\x04":
        raise UnsafeFormatError(
            f"{path} is a zip archive (the torch.save / .pt format, which embeds a pickle). "
            f"{_PICKLE_HINT}"
        )
    zlib = len(head) > 1 and head[0] & 0x0F == 8 and (head[0] * 256 + head[1]) % 31 == 0
    if zlib or head[:2] in (b"\x1f\x8b", b"BZ") or head[:6] == b"\xfd7zXZ\x00" or head[:4] in (
        b"\x28\xb5\x2f\xfd",
        b"\x04\x22\x4d\x18",
    ):
        raise UnsafeFormatError(
            f"{path} is a compressed stream (as written by joblib.dump), not a latentspace "
            f"model. {_PICKLE_HINT}"
        )
    if head[:1] in (b"(", b"c", b"]", b"}", b"N", b"I", b"S"):
        # protocol-0/1 pickles start with an opcode such as '(' (MARK) or 'c' (GLOBAL);
        # a safetensors file has its JSON header ('{') right after the 8-byte length
        raise UnsafeFormatError(f"{path} looks like a protocol-0/1 pickle. {_PICKLE_HINT}")


def read_header(path: str | os.PathLike[str], *, sealed: bool = False
                ) -> tuple[str, dict[str, Any], dict[str, Any], int]:
    """Read and check the safetensors header of a latentspace file.

    Shared by model files and training checkpoints (whose manifest has ``format``
    ``"latentspace-checkpoint"``): pickles are refused by their first bytes, the length, the
    JSON, the metadata keys, the tensor table against the file's size and the seal are
    checked; nothing but the header is read.

    Parameters
    ----------
    path : str or path-like
        The file.
    sealed : bool, default=False
        Demand the header's seal whatever the manifest's version says (checkpoints always
        carry one).

    Returns
    -------
    text : str
        The manifest's JSON text.
    manifest : dict
        The parsed manifest.
    table : dict
        Tensor name -> ``{"dtype", "shape", "data_offsets"}``.
    offset : int
        Where the tensor payload starts in the file, in bytes.
    """
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(16)
        _sniff_unsafe(path, head)
        if size < 8:
            raise ModelFormatError(f"{path} is too short ({size} bytes) to be a model file.")
        (hlen,) = struct.unpack("<Q", head[:8])
        if hlen > _MAX_HEADER or 8 + hlen > size:
            raise ModelFormatError(
                f"{path}: header length field says {hlen} bytes but the file has {size}; the "
                "file is truncated or not a latentspace model."
            )
        f.seek(8)
        raw = f.read(hlen)
    # the header is one JSON object, padded with spaces only; any other byte around it is damage
    text = raw.rstrip(b" ")
    if not (text.startswith(b"{") and text.endswith(b"}")):
        raise ModelFormatError(
            f"{path}: the header is not one JSON object padded with spaces; the file is "
            "corrupted."
        )
    header = _schema.parse_json(text, path, "header")
    if not isinstance(header, dict):
        raise ModelFormatError(f"{path}: the header is not a JSON object; the file is corrupted.")
    meta = header.get("__metadata__")
    if not isinstance(meta, dict) or not isinstance(meta.get("latentspace"), str):
        raise ModelFormatError(
            f"{path}: no latentspace manifest in the header; not a latentspace model."
        )
    if set(meta) - {"latentspace", _SEAL_KEY}:
        raise ModelFormatError(
            f"{path}: unknown header metadata {sorted(set(meta) - {'latentspace', _SEAL_KEY})}; "
            "the file is corrupted."
        )
    table = {k: v for k, v in header.items() if k != "__metadata__"}
    manifest = _schema.parse_json(meta["latentspace"], path, "manifest")
    if not isinstance(manifest, dict):
        raise ModelFormatError(f"{path}: the manifest is not a JSON object; the file is corrupted.")
    sealed = sealed or manifest.get("format") == CHECKPOINT_FORMAT
    if not sealed:
        _schema.check_version(manifest, path, FORMAT_VERSION)
    _schema.check_table(table, size - 8 - hlen, path)
    seal = meta.get(_SEAL_KEY)
    if sealed or manifest["format_version"] >= 2:
        if seal is None:
            raise ModelFormatError(f"{path}: the header has no seal; the file is corrupted.")
        if seal != _seal(meta["latentspace"], table):
            raise ChecksumError(
                f"{path}: the header (manifest or tensor table) does not match its recorded "
                "SHA-256 seal; the file is corrupted. Restore it from a backup or re-fit the "
                "model."
            )
    elif seal is not None:
        raise ModelFormatError(f"{path}: a version-1 header carries a seal; the file is corrupted.")
    return meta["latentspace"], manifest, table, 8 + hlen


def is_checkpoint(manifest) -> bool:
    """Whether a parsed manifest is a training checkpoint's (see :mod:`latentspace.neural`)."""
    return isinstance(manifest, dict) and manifest.get("format") == CHECKPOINT_FORMAT


def read_manifest(path: str | os.PathLike[str]
                  ) -> tuple[dict[str, Any], dict[str, Any], int]:
    """Read and check a model file's header.

    Never reads more than the header; raises ``ModelFormatError`` (or a subclass) naming the
    file and the part that is wrong. Checks everything that does not depend on the class:
    the JSON, the manifest's field types, the tensor table against the file's size, and (from
    version 2 on) the header's seal. A training checkpoint is refused with a message that
    says how to continue from it.

    Parameters
    ----------
    path : str or path-like
        The model file.

    Returns
    -------
    manifest : dict
        The parsed, checked manifest.
    header : dict
        The tensor table (name -> ``{"dtype", "shape", "data_offsets"}``) and a
        ``"__metadata__"`` key.
    offset : int
        Where the tensor payload starts in the file, in bytes.
    """
    _, manifest, table, offset = read_header(path)
    if is_checkpoint(manifest):
        raise ModelFormatError(
            f"{path} is a training checkpoint (written by checkpoint_path=...), not a saved "
            "model: continue training from it with est.fit(X, resume=path), est configured as "
            "when it was written; `latentspace info` describes it."
        )
    _schema.check_manifest(manifest, table, path)
    return manifest, {"__metadata__": None, **table}, offset


def describe(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Class, versions, hyperparameters and fitted attributes of a model file, from its
    header alone (nothing is unpickled, imported or loaded).

    Parameters
    ----------
    path : str or path-like
        A model file or a training checkpoint.

    Returns
    -------
    info : dict
        ``file``, ``bytes``, ``class``, ``format_version``, ``library_version``, ``params``
        (array-valued ones as ``"<array dtype shape>"``), ``fitted_arrays`` and
        ``state_tensors`` (name -> ``{"dtype", "shape"}``) and ``fitted_scalars``. For a
        training checkpoint, ``kind == "checkpoint"`` and what
        :func:`latentspace.neural._checkpoint.describe_checkpoint` gives.

    Raises
    ------
    ModelFormatError
        As :func:`read_manifest`: the file is not a valid latentspace model.
    """

    _, manifest, _, _ = read_header(path)
    if is_checkpoint(manifest):
        from .neural._checkpoint import describe_checkpoint

        return describe_checkpoint(path)
    manifest, header, _ = read_manifest(path)
    params = {}
    for k, v in manifest["params"].items():
        if isinstance(v, dict) and "__tensor__" in v:
            info = header[v["__tensor__"]]
            params[k] = f"<array {info['dtype']} {tuple(info['shape'])}>"
        elif isinstance(v, dict) and set(v) == {"__module__"} and isinstance(v["__module__"], str):
            params[k] = f"<user's {v['__module__']}: pass it to load(path, modules=...)>"
        elif isinstance(v, dict) and set(v) == {"__optimizer__"} and isinstance(
                v["__optimizer__"], str):
            params[k] = f"<torch.optim.{v['__optimizer__']}>"
        else:
            params[k] = _decode(v, path)
    arrays = {
        name[5:]: {"dtype": info["dtype"], "shape": list(info["shape"])}
        for name, info in sorted(header.items()) if name.startswith("attr.")
    }
    state = {
        name[6:]: {"dtype": info["dtype"], "shape": list(info["shape"])}
        for name, info in sorted(header.items()) if name.startswith("state.")
    }
    scalars = {k: _decode(v, path) for k, v in sorted(manifest["attrs"].items())}
    return {
        "file": str(path),
        "bytes": Path(path).stat().st_size,
        "class": manifest["class"],
        "format_version": manifest["format_version"],
        "library_version": manifest.get("library_version"),
        "params": params,
        "fitted_arrays": arrays,
        "fitted_scalars": scalars,
        "state_tensors": state,
    }


def import_model_families() -> None:
    """Import every model family, so that each registered class is known by name.

    A family whose optional dependency is missing is skipped; any other import error is a bug
    and propagates.
    """
    import importlib

    for mod in _MODEL_MODULES:
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as exc:  # a family not built yet, or an optional extra
            if exc.name is None or not mod.startswith(exc.name):
                raise


def _read_tensors(path: Path, table: dict, digests: dict, offset: int) -> dict:
    """The payload's tensors, each checked against its SHA-256; the table is already known to
    tile the payload exactly, so the read is bounded by the file's real size."""
    with open(path, "rb") as f:
        f.seek(offset)
        payload = memoryview(f.read())
    tensors = {}
    for name, info in table.items():
        start, end = info["data_offsets"]
        chunk = payload[start:end]
        if hashlib.sha256(chunk).hexdigest() != digests[name]:
            raise ChecksumError(
                f"{path}: tensor {name!r} does not match its recorded SHA-256; the file is "
                "corrupted. Restore it from a backup or re-fit the model."
            )
        dtype = _DTYPES[info["dtype"]]
        t = torch.frombuffer(bytearray(chunk), dtype=dtype) if end > start else torch.empty(
            0, dtype=dtype)
        tensors[name] = t.reshape(info["shape"])
    return tensors


def _check_hyperparameters(est) -> None:
    """The device, then the estimator's own parameter checks. A check that takes the data's
    size (PCA's ``n``, ``d``, ``solver``) gets the fitted one, or no bound before a fit."""
    device = getattr(est, "device", "cpu")
    if not isinstance(device, str) or not _DEVICE.match(device):
        raise ValueError(
            f"hyperparameter device={device!r} is not a device; expected 'cpu', 'cuda', "
            "'cuda:N', 'mps' or 'auto'."
        )
    unbounded = 2**62
    sizes = {"n": getattr(est, "n_samples_", unbounded),
             "d": getattr(est, "n_features_in_", unbounded),
             "solver": getattr(est, "fit_svd_solver_", getattr(est, "svd_solver", None))}
    for name in ("_check_common_params", "_check_params"):
        check = getattr(est, name, None)
        if check is None:
            continue
        needed = [p.name for p in inspect.signature(check).parameters.values()
                  if p.default is p.empty]
        if all(n in sizes for n in needed):
            check(**{n: sizes[n] for n in needed})


def _rebuild(cls, params: dict, attrs: dict, path: Path):
    """``cls(**params)`` with its scalar fitted attributes, hyperparameters checked."""
    try:
        est = cls(**params)
        for k, v in attrs.items():
            setattr(est, k, v)
        _check_hyperparameters(est)
    except (TypeError, ValueError) as exc:
        raise ModelFormatError(
            f"{path}: the hyperparameters do not fit {cls.__name__}: {exc}"
        ) from None
    return est


def _check_state(est, state: dict, fitted: bool, path: Path) -> None:
    """Network state against the freshly built module's names, shapes and dtypes (built on
    the meta device: nothing is allocated), before any of it is loaded. A fitted model with
    a network must have its state."""
    spec_of = getattr(est, "_state_spec", None)
    if not state and not (fitted and spec_of is not None):
        return
    if spec_of is None:
        raise ModelFormatError(f"{path}: {type(est).__name__} has no network state, but the "
                               f"file holds {sorted(state)[:3]}.")
    try:
        spec = spec_of()
    except (TypeError, ValueError, KeyError, RuntimeError) as exc:  # names or sizes that
        # the network builders cannot take
        raise ModelFormatError(f"{path}: the network of {type(est).__name__} cannot be rebuilt "
                               f"from the file's hyperparameters: {exc}") from None
    extra = sorted(set(state) - set(spec))
    lost = sorted(k for k, (_, _, required) in spec.items() if required and k not in state)
    given: dict[str, Any] = getattr(est, "_user_modules", dict)()
    mismatch = [k for k, t in state.items() if k in spec and tuple(t.shape) != spec[k][1]]
    if given and (extra or lost or mismatch):
        raise ModelFormatError(
            f"{path}: the modules passed as {sorted(given)} do not match the saved weights "
            f"(unexpected {extra[:5]}, missing {lost[:5]}, other shapes {mismatch[:5]}); pass "
            "the modules built as when the model was saved."
        )
    if extra or lost:
        raise ModelFormatError(
            f"{path}: the network state does not match {type(est).__name__}'s network "
            f"(unexpected {extra[:5]}, missing {lost[:5]}); the file is corrupted."
        )
    for name, t in state.items():
        dtype, shape, _ = spec[name]
        if t.dtype != dtype or tuple(t.shape) != shape:
            raise ModelFormatError(
                f"{path}: network tensor {name!r} is {_DTYPE_NAMES.get(t.dtype)} {tuple(t.shape)},"
                f" but the network built from the file's hyperparameters has "
                f"{_DTYPE_NAMES.get(dtype)} {shape}; the file is corrupted."
            )
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise ModelFormatError(f"{path}: network tensor {name!r} holds NaN or infinity; "
                                   "the file is corrupted.")


def _is_ref(value) -> bool:
    """A hyperparameter stored as a tensor: ``{"__tensor__": "param.X"}``."""
    return isinstance(value, dict) and "__tensor__" in value


def _user_params(manifest: dict, modules, path: Path) -> dict:
    """The hyperparameters a file stores by reference -- a user's network
    (``{"__module__": class name}``), a custom optimizer, a ``torch.optim`` class
    (``{"__optimizer__": name}``) -- resolved: the first two from ``modules``, the last from
    ``torch.optim`` by its name (nothing is imported or unpickled)."""
    modules = {} if modules is None else modules
    if not isinstance(modules, dict) or not all(isinstance(k, str) for k in modules):
        raise TypeError(f"modules must be a dict of parameter name -> object, got "
                        f"{type(modules).__name__}.")
    out, wanted, missing = {}, set(), {}
    for key, value in manifest["params"].items():
        if not (isinstance(value, dict) and len(value) == 1):
            continue
        ((tag, name),) = value.items()
        if tag == "__optimizer__" and isinstance(name, str):
            cls = getattr(torch.optim, name, None) if name.isidentifier() else None
            if not (isinstance(cls, type) and issubclass(cls, torch.optim.Optimizer)):
                raise ModelFormatError(f"{path}: optimizer {name!r} is not a torch.optim "
                                       "optimizer; the file is corrupted or from a newer torch.")
            out[key] = modules.get(key, cls)
        elif tag == "__module__" and isinstance(name, str):
            wanted.add(key)
            if key in modules:
                out[key] = modules[key]
            else:
                missing[key] = name
    if missing:
        asked = ", ".join(f"{k!r}: {v}(...)" for k, v in missing.items())
        raise ModelFormatError(
            f"{path}: the model was saved with your own {' and '.join(missing)}; files hold "
            f"their weights, never their code. Pass them again, built as when the model was "
            f"saved: latentspace.load(path, modules={{{asked}}})."
        )
    extra = sorted(set(modules) - wanted - set(out))
    if extra:
        raise ValueError(
            f"modules names {extra}, which {path} does not store as user modules "
            f"(it has {sorted(wanted) or 'none'}); pass only those."
        )
    return out


def load(path: str | os.PathLike[str], *, device: str | None = None,
         modules: dict[str, Any] | None = None) -> LatentModel:
    """Load a model written by :func:`save` (or ``est.save``).

    Parameters
    ----------
    path : str or Path
        The model file.
    device : str or None, default None
        Where the loaded model computes (``'cpu'``, ``'cuda'``, ``'cuda:N'``, ``'auto'``),
        replacing the ``device`` it was saved with: a model fitted on a GPU loads on a
        machine without one with ``device='cpu'``. None keeps the saved device.
    modules : dict or None, default None
        The user's own networks of a neural model saved with them (e.g. ``{"encoder": Enc(),
        "decoder": Dec()}``, or ``generator``/``discriminator``, and a custom ``optimizer``
        callable): files store their weights, never their code, so they are asked for again,
        built as when the model was saved; the weights are then loaded into copies of them.
        ``callbacks`` are not stored (they are ``None`` after loading).

    Returns
    -------
    est : LatentModel
        The estimator, of the class the file names, fitted as when it was saved.

    Raises
    ------
    UnsafeFormatError
        The file is a pickle, joblib or ``torch.save`` file; it is not unpickled.
    ModelFormatError, ChecksumError, UnsupportedFormatVersionError
        The file is corrupted, truncated, lies about its contents, or is too new.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no model file at {path}")
    manifest, header, offset = read_manifest(path)
    table = {k: v for k, v in header.items() if k != "__metadata__"}
    import_model_families()
    cls = registered_models().get(manifest["class"])
    if cls is None:
        raise ModelFormatError(
            f"{path}: unknown model class {manifest['class']!r}; it may come from a newer "
            "latentspace."
        )
    # everything the header says is checked against the class before the payload is read
    _schema.check_against_class(cls, manifest, table, path)
    user = _user_params(manifest, modules, path)
    params = {k: _decode(v, path) for k, v in manifest["params"].items()
              if not _is_ref(v) and k not in user}
    params.update(user)
    if device is not None:
        if "device" not in params:
            raise TypeError(f"{cls.__name__} has no device to choose; call load(path) without it.")
        from ._backend import resolve_device

        resolve_device(device)  # a ValueError naming the device when it is not usable here
        params["device"] = device
    attrs = {k: _decode(v, path) for k, v in manifest["attrs"].items()}
    for k, v in attrs.items():
        _schema.check_scalar(cls, k, v, path)
    _schema.check_array_specs(cls, table, {**params, **attrs}, path)

    tensors = _read_tensors(path, table, manifest["sha256"], offset)
    for k, v in manifest["params"].items():
        if _is_ref(v):
            params[k] = tensors[v["__tensor__"]].numpy()
    est = _rebuild(cls, params, attrs, path)
    arrays = {k[5:]: t for k, t in tensors.items() if k.startswith("attr.")}
    _schema.check_finite_arrays(cls, arrays, path)
    for k, t in arrays.items():
        setattr(est, k, t.numpy())
    state = {k[6:]: t for k, t in tensors.items() if k.startswith("state.")}
    _check_state(est, state, bool(attrs or arrays), path)
    est._load_state_tensors(state)
    return est
