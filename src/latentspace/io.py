"""Saving and loading models: one safetensors file, a JSON manifest, no pickle.

File layout: a plain safetensors file (8-byte little-endian header length, JSON header, raw
tensor bytes). The header's ``__metadata__`` holds ``{"latentspace": <manifest JSON>}`` with the
format version, library version, class name, hyperparameters, non-array fitted attributes
and the SHA-256 of every tensor. Loading reads and checks the header before touching the
payload, refuses pickle-based files without unpickling them, verifies each tensor's digest,
and rebuilds only classes registered by latentspace itself.

Writes are atomic (:func:`latentspace._atomic.atomic_write_bytes`): a crash at any moment
leaves the previous file intact.
"""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path

import numpy as np
import torch

from ._atomic import atomic_write_bytes
from .base import LatentModel, registered_models
from .exceptions import (
    ChecksumError,
    ModelFormatError,
    UnsafeFormatError,
    UnsupportedFormatVersionError,
)

__all__ = ["save", "load", "read_manifest", "describe", "import_model_families",
           "FORMAT_VERSION"]

FORMAT_VERSION = 1
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


def _decode(value):
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if isinstance(value, dict):
        if "__tuple__" in value:
            return tuple(_decode(v) for v in value["__tuple__"])
        if "__float__" in value:
            return float(value["__float__"])
        if "__dict__" in value:
            return {k: _decode(v) for k, v in value["__dict__"].items()}
        if "__strarray__" in value:
            return np.asarray(value["__strarray__"], dtype=object)
        raise ModelFormatError(f"unknown encoded value {sorted(value)} in manifest")
    return value


def _digest(t: torch.Tensor) -> str:
    return hashlib.sha256(t.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()).hexdigest()


def _collect(est: LatentModel):
    """Split an estimator into (tensors, manifest) without pickling anything."""
    tensors: dict[str, torch.Tensor] = {}
    params, attrs = {}, {}
    for name, value in est.get_params(deep=False).items():
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
def _serialize(tensors: dict[str, torch.Tensor], manifest: dict) -> bytes:
    from safetensors.torch import save as st_save

    meta = {"latentspace": json.dumps(manifest, sort_keys=True)}
    return st_save({k: v.contiguous() for k, v in tensors.items()}, metadata=meta)


def save(est: LatentModel, path) -> None:
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
    manifest = {
        "format": "latentspace",
        "format_version": FORMAT_VERSION,
        "library_version": __version__,
        "class": type(est).__name__,
        "params": params,
        "attrs": attrs,
        "sha256": {k: _digest(v) for k, v in tensors.items()},
    }
    atomic_write_bytes(path, _serialize(tensors, manifest))


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


def read_manifest(path):
    """Read and check a model file's header -> (manifest dict, header dict, payload offset).

    Never reads more than the header; raises ``ModelFormatError`` (or a subclass) naming the
    file and the part that is wrong.
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
    try:
        header = json.loads(raw.decode("utf-8"))
        if not isinstance(header, dict):
            raise ValueError
    except (UnicodeDecodeError, ValueError):
        raise ModelFormatError(f"{path}: the header is not valid JSON; the file is corrupted.") from None
    meta = header.get("__metadata__") or {}
    if "latentspace" not in meta:
        raise ModelFormatError(f"{path}: no latentspace manifest in the header; not a latentspace model.")
    try:
        manifest = json.loads(meta["latentspace"])
        version = int(manifest["format_version"])
        manifest["class"], manifest["params"], manifest["attrs"], manifest["sha256"]
    except (ValueError, KeyError, TypeError):
        raise ModelFormatError(f"{path}: the manifest is malformed; the file is corrupted.") from None
    if version > FORMAT_VERSION:
        raise UnsupportedFormatVersionError(
            f"{path} has format version {version}, but this latentspace reads up to version "
            f"{FORMAT_VERSION}; upgrade latentspace (pip install -U latentspace)."
        )
    payload = size - 8 - hlen
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            start, end = info["data_offsets"]
            dtype, shape = info["dtype"], info["shape"]
            numel = int(np.prod(shape, dtype=np.int64)) if shape else 1
        except (KeyError, TypeError, ValueError):
            raise ModelFormatError(f"{path}: tensor {name!r} has a malformed header entry.") from None
        if dtype not in _DTYPES or not (0 <= start <= end <= payload) or (
            end - start != numel * torch.empty((), dtype=_DTYPES[dtype]).element_size()
        ):
            raise ModelFormatError(
                f"{path}: tensor {name!r} has an inconsistent header entry (dtype {dtype}, shape "
                f"{shape}, bytes {start}..{end} of {payload}); the file is corrupted or truncated."
            )
    if set(manifest["sha256"]) != {k for k in header if k != "__metadata__"}:
        raise ModelFormatError(f"{path}: the manifest and the tensor table disagree; the file is corrupted.")
    return manifest, header, 8 + hlen


def describe(path) -> dict:
    """Class, versions, hyperparameters and fitted attributes of a model file, from its
    header alone (nothing is unpickled, imported or loaded).

    Returns
    -------
    dict
        ``file``, ``bytes``, ``class``, ``format_version``, ``library_version``, ``params``
        (array-valued ones as ``"<array dtype shape>"``), ``fitted_arrays`` and
        ``state_tensors`` (name -> ``{"dtype", "shape"}``) and ``fitted_scalars``.

    Raises
    ------
    ModelFormatError
        As :func:`read_manifest`: the file is not a valid latentspace model.
    """

    manifest, header, _ = read_manifest(path)
    params = {}
    for k, v in manifest["params"].items():
        if isinstance(v, dict) and "__tensor__" in v:
            info = header[v["__tensor__"]]
            params[k] = f"<array {info['dtype']} {tuple(info['shape'])}>"
        else:
            params[k] = _decode(v)
    arrays = {
        name[5:]: {"dtype": info["dtype"], "shape": list(info["shape"])}
        for name, info in sorted(header.items()) if name.startswith("attr.")
    }
    state = {
        name[6:]: {"dtype": info["dtype"], "shape": list(info["shape"])}
        for name, info in sorted(header.items()) if name.startswith("state.")
    }
    scalars = {k: _decode(v) for k, v in sorted(manifest["attrs"].items())}
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


def load(path) -> LatentModel:
    """Load a model written by :func:`save` (or ``est.save``).

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
    import_model_families()
    cls = registered_models().get(manifest["class"])
    if cls is None:
        raise ModelFormatError(
            f"{path}: unknown model class {manifest['class']!r}; it may come from a newer "
            "latentspace."
        )
    with open(path, "rb") as f:
        f.seek(offset)
        payload = f.read()
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        buf = bytearray(payload[start:end])
        t = torch.frombuffer(buf, dtype=_DTYPES[info["dtype"]]) if buf else torch.empty(
            0, dtype=_DTYPES[info["dtype"]]
        )
        t = t.reshape(info["shape"])
        if _digest(t) != manifest["sha256"][name]:
            raise ChecksumError(
                f"{path}: tensor {name!r} does not match its recorded SHA-256; the file is "
                "corrupted. Restore it from a backup or re-fit the model."
            )
        tensors[name] = t
    try:
        params = {}
        for k, v in manifest["params"].items():
            if isinstance(v, dict) and "__tensor__" in v:
                params[k] = tensors[v["__tensor__"]].numpy()
            else:
                params[k] = _decode(v)
        est = cls(**params)
    except (TypeError, KeyError) as exc:
        raise ModelFormatError(f"{path}: hyperparameters do not fit {cls.__name__}: {exc}") from None
    for k, v in manifest["attrs"].items():
        setattr(est, k, _decode(v))
    for k, t in tensors.items():
        if k.startswith("attr."):
            setattr(est, k[5:], t.numpy())
    est._load_state_tensors({k[6:]: t for k, t in tensors.items() if k.startswith("state.")})
    return est
