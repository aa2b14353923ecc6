"""Area "files": model-file faults, per estimator and for files of no estimator at all.

* bit flips spread over the whole file: the 8-byte length, the JSON header (manifest,
  tensor table), the header's padding, the payload;
* truncations at many lengths, appended and prepended bytes;
* pickle, joblib and ``torch.save`` files whose payload would create a marker file;
* "lying" files forged with valid checksums (``latentspace.io._assemble`` when the library
  has it, else the per-tensor SHA-256 list of the current format, recomputed here).

Expected: a ``ModelFormatError`` (or subclass) from ``load``, fast -- any other exception,
even a ``ValueError``, is a crash. A faulty file that still loads must give the same outputs
as the original (bit flips, truncations) -- otherwise silent-wrong; a forged file that loads
must give finite, sane outputs from every method -- an error from a method after a lying
file was accepted is silent-wrong (the file should have been refused at load).
"""

from __future__ import annotations

import hashlib
import json
import os
import struct

import numpy as np

from . import checks
from .classify import Crashed, Wrong
from .inputs import ESTIMATORS, NEURAL, base_data

__all__ = ["descriptors", "run"]

N_FLIPS = {"len": 24, "header": 130, "pad": 8, "payload": 60}  # 222 per estimator
N_TRUNC = 30

FORGERIES = (
    "resealed_original", "attr_shape_sliced", "attr_shape_flat", "attr_dtype_f32",
    "attr_dtype_i64", "attr_dtype_bool", "attr_all_nan", "attr_all_inf", "extra_attr_fit",
    "extra_attr_transform", "extra_attr_class", "lost_attr", "lost_all_attrs",
    "param_device_cpw", "param_unknown", "param_bad_value", "param_huge_int",
    "scalar_attr_lie", "n_features_lie", "class_unknown", "class_base", "version_infinity",
    "version_huge_int", "version_float", "version_bool", "version_negative", "version_string",
    "version_null", "shape_2pow70", "shape_negative", "shape_float", "offsets_negative",
    "offsets_float", "offsets_overlap", "params_list", "params_string", "attrs_list",
    "attrs_string", "sha256_list", "deep_nesting", "manifest_not_json", "metadata_not_dict",
    "header_list", "header_len_huge", "dtype_unknown", "float_encoding_bogus",
)
NEURAL_FORGERIES = ("state_wrong_shape", "state_missing_key", "state_extra_key",
                    "state_all_nan")
GENERIC = ("missing", "directory", "empty", "one_byte", "garbage", "zeros_1k", "text",
           "json_only", "npy_file", "plain_safetensors", "pickle_payload", "pickle_proto0",
           "joblib_payload", "joblib_compressed_payload", "torch_save_payload")


def descriptors():
    out = []
    for est in ESTIMATORS:
        out.append(dict(area="files", est=est, fault="roundtrip_fitted"))
        out.append(dict(area="files", est=est, fault="roundtrip_unfitted"))
        for region, n in N_FLIPS.items():
            for i in range(n):
                out.append(dict(area="files", est=est, fault=f"flip_{region}", i=i, n=n))
        for i in range(N_TRUNC):
            out.append(dict(area="files", est=est, fault="truncate", i=i, n=N_TRUNC))
        for f in ("append_zeros", "append_garbage", "prepend_byte"):
            out.append(dict(area="files", est=est, fault=f))
        for f in FORGERIES + (NEURAL_FORGERIES if est in NEURAL else ()):
            out.append(dict(area="files", est=est, fault=f))
    for f in GENERIC:
        out.append(dict(area="files", est="(any)", fault=f))
    return out


def repro(d) -> str:
    what = d["fault"] + (f"#{d['i']}/{d['n']}" if "i" in d else "")
    return f"latentspace.load(<{d['est']} model file with fault {what}>)"


# ----------------------------------------------------------------------------- layout
def layout(blob: bytes):
    """(header length, end of the JSON text, end of the header incl. padding)."""
    (hlen,) = struct.unpack("<Q", blob[:8])
    header = blob[8: 8 + hlen]
    text_end = 8 + len(header.rstrip(b" "))
    return hlen, text_end, 8 + hlen


def flip_position(blob: bytes, region: str, i: int, n: int) -> tuple[int, int]:
    hlen, text_end, head_end = layout(blob)
    start, end = {"len": (0, 8), "header": (8, text_end), "pad": (text_end, head_end),
                  "payload": (head_end, len(blob))}[region]
    if end <= start:  # no padding in this file: its last header bytes instead
        start, end = max(8, text_end - 8), text_end
    span = (end - start) * 8
    bit = (i * span) // n + (i * 7919) % max(1, span // n)  # spread, and not always bit 0
    bit = min(bit, span - 1)
    return start + bit // 8, bit % 8


def truncate_length(blob: bytes, i: int, n: int) -> int:
    hlen, text_end, head_end = layout(blob)
    fixed = [0, 1, 7, 8, 9, 16, text_end - 1, head_end - 1, head_end, head_end + 1,
             len(blob) - 1]
    if i < len(fixed):
        return max(0, min(fixed[i], len(blob) - 1))
    j = i - len(fixed)
    return (j + 1) * len(blob) // (n - len(fixed) + 1)


# ----------------------------------------------------------------------------- forging
def _digest(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def parse(blob: bytes):
    """-> (header dict, manifest dict, {name: raw bytes})."""
    hlen, _, head_end = layout(blob)
    header = json.loads(blob[8: 8 + hlen])
    manifest = json.loads(header["__metadata__"]["latentspace"])
    payload = blob[head_end:]
    raws = {k: payload[v["data_offsets"][0]: v["data_offsets"][1]]
            for k, v in header.items() if k != "__metadata__"}
    return header, manifest, raws


def raw_file(entries: dict, raws: dict, manifest, *, reseal=True, meta=None, header_obj=None,
             manifest_text=None) -> bytes:
    """A file written by hand: ``entries`` name -> (dtype, shape), payload bytes in ``raws``.
    With ``reseal`` the manifest's SHA-256 list is recomputed over the bytes given."""
    if reseal and isinstance(manifest, dict) and isinstance(manifest.get("sha256"), dict):
        manifest["sha256"] = {k: _digest(raws[k]) for k in entries}
    header, offset, payload = {}, 0, b""
    for name, (dtype, shape) in entries.items():
        raw = raws[name]
        header[name] = {"dtype": dtype, "shape": shape,
                        "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
        payload += raw
    text = manifest_text if manifest_text is not None else json.dumps(manifest)
    header["__metadata__"] = meta if meta is not None else {"latentspace": text}
    if header_obj is not None:
        header = header_obj
    hbytes = json.dumps(header).encode()
    hbytes += b" " * (-len(hbytes) % 8)
    return struct.pack("<Q", len(hbytes)) + hbytes + payload


def assemble(tensors: dict, manifest: dict) -> bytes:
    """A self-consistent file with valid checksums: the library's ``_assemble`` if present."""
    import latentspace.io as lio

    if hasattr(lio, "_assemble"):
        return lio._assemble(tensors, manifest)
    manifest = dict(manifest)
    manifest["sha256"] = {k: lio._digest(v) for k, v in tensors.items()}
    return lio._serialize(tensors, manifest)


def _tensors(blob):
    import torch

    from latentspace.io import _DTYPES

    header, manifest, raws = parse(blob)
    out = {}
    for k, info in header.items():
        if k == "__metadata__":
            continue
        buf = bytearray(raws[k])
        t = torch.frombuffer(buf, dtype=_DTYPES[info["dtype"]]) if buf else torch.empty(
            0, dtype=_DTYPES[info["dtype"]])
        out[k] = t.reshape(info["shape"]).clone()
    return out, manifest, header, raws


def forge(blob: bytes, fault: str) -> bytes:
    import torch

    tensors, manifest, header, raws = _tensors(blob)
    entries = {k: (v["dtype"], v["shape"]) for k, v in header.items() if k != "__metadata__"}
    attrs = sorted(k for k in tensors if k.startswith("attr.") and tensors[k].is_floating_point()
                   and tensors[k].numel() > 1)
    first = attrs[0] if attrs else sorted(tensors)[0]
    t = dict(tensors)
    m = json.loads(json.dumps(manifest))
    if fault == "resealed_original":
        return assemble(t, m)
    if fault == "attr_shape_sliced":
        x = t[first]
        t[first] = x[..., :-1].contiguous() if x.dim() > 0 and x.shape[-1] > 1 else x[:0]
        return assemble(t, m)
    if fault == "attr_shape_flat":
        t[first] = t[first].reshape(-1)[None, None].contiguous()
        return assemble(t, m)
    if fault.startswith("attr_dtype_"):
        dt = {"f32": torch.float32, "i64": torch.int64, "bool": torch.bool}[fault[11:]]
        t = {k: (v.to(dt) if k.startswith("attr.") and v.is_floating_point() else v)
             for k, v in t.items()}
        return assemble(t, m)
    if fault in ("attr_all_nan", "attr_all_inf"):
        fill = float("nan") if fault == "attr_all_nan" else float("inf")
        t = {k: (torch.full_like(v, fill) if k.startswith("attr.") and v.is_floating_point()
                 else v) for k, v in t.items()}
        return assemble(t, m)
    if fault.startswith("extra_attr_"):
        name = {"fit": "attr.fit", "transform": "attr.transform",
                "class": "attr.__class__"}[fault[11:]]
        t[name] = torch.zeros(3)
        return assemble(t, m)
    if fault == "lost_attr":
        del t[first]
        return assemble(t, m)
    if fault == "lost_all_attrs":
        t = {k: v for k, v in t.items() if not k.startswith("attr.")}
        m["attrs"] = {}
        return assemble(t, m)
    if fault.startswith("param_"):
        key = next(iter(sorted(k for k, v in m["params"].items()
                               if isinstance(v, int) and not isinstance(v, bool))), None)
        if fault == "param_device_cpw":
            m["params"]["device"] = "cpw"
        elif fault == "param_unknown":
            m["params"]["bogus_parameter"] = 1
        elif fault == "param_bad_value":
            m["params"][key or "tol"] = "bogus"
        elif fault == "param_huge_int":
            m["params"][key or "tol"] = 10**30
        return assemble(t, m)
    if fault == "scalar_attr_lie":
        for k, v in m["attrs"].items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                m["attrs"][k] = -(10**12)
        return assemble(t, m)
    if fault == "n_features_lie":
        m["attrs"]["n_features_in_"] = 99
        return assemble(t, m)
    if fault == "class_unknown":
        m["class"] = "EvilModel"
        return assemble(t, m)
    if fault == "class_base":
        m["class"] = "LatentModel"
        return assemble(t, m)
    if fault.startswith("version_") or fault == "float_encoding_bogus":
        text = json.dumps(m)
        version = {"version_infinity": "Infinity", "version_huge_int": str(10**40),
                   "version_float": "1.5", "version_bool": "true", "version_negative": "-1",
                   "version_string": '"1"', "version_null": "null"}.get(fault)
        if version is not None:
            text = text.replace('"format_version": 1', f'"format_version": {version}')
        else:
            m["attrs"]["campaign_value_"] = {"__float__": "__import__('os')"}
            text = json.dumps(m)
        return raw_file(entries, raws, None, reseal=False, manifest_text=text)
    if fault in ("shape_2pow70", "shape_negative", "shape_float"):
        name = first
        shape = {"shape_2pow70": [2**70], "shape_negative": [-1] + list(entries[name][1])[1:],
                 "shape_float": [2.5] + list(entries[name][1])[1:]}[fault]
        entries[name] = (entries[name][0], shape)
        return raw_file(entries, raws, m)
    if fault.startswith("offsets_"):
        data = raw_file(entries, raws, m)
        hdr = json.loads(data[8: 8 + struct.unpack("<Q", data[:8])[0]])
        if fault == "offsets_negative":
            s, e = hdr[first]["data_offsets"]
            hdr[first]["data_offsets"] = [s - 8, e - 8]
        elif fault == "offsets_float":
            s, e = hdr[first]["data_offsets"]
            hdr[first]["data_offsets"] = [s + 0.5, e + 0.5]
        else:  # two tensors of one size over the same bytes
            others = [k for k in entries if k != first and
                      len(raws[k]) == len(raws[first])]
            if others:
                hdr[others[0]]["data_offsets"] = list(hdr[first]["data_offsets"])
            else:
                hdr[first]["data_offsets"] = [0, hdr[first]["data_offsets"][1] -
                                              hdr[first]["data_offsets"][0]]
        hb = json.dumps(hdr).encode()
        hb += b" " * (-len(hb) % 8)
        payload = data[8 + struct.unpack("<Q", data[:8])[0]:]
        return struct.pack("<Q", len(hb)) + hb + payload
    if fault in ("params_list", "params_string", "attrs_list", "attrs_string", "sha256_list"):
        key, val = {"params_list": ("params", []), "params_string": ("params", "abc"),
                    "attrs_list": ("attrs", [1, 2]), "attrs_string": ("attrs", "abc"),
                    "sha256_list": ("sha256", [])}[fault]
        m[key] = val
        return raw_file(entries, raws, m, reseal=False)
    if fault == "deep_nesting":
        depth = 100_000
        m["attrs"]["deep_"] = "@@DEEP@@"
        text = json.dumps(m).replace('"@@DEEP@@"', "[" * depth + "]" * depth)
        return raw_file(entries, raws, m, manifest_text=text)
    if fault == "manifest_not_json":
        return raw_file(entries, raws, m, manifest_text="{not json")
    if fault == "metadata_not_dict":
        return raw_file(entries, raws, m, meta=["latentspace"])
    if fault == "header_list":
        hb = b"[1, 2, 3]     "
        hb += b" " * (-len(hb) % 8)
        return struct.pack("<Q", len(hb)) + hb
    if fault == "header_len_huge":
        return struct.pack("<Q", 60 * 1024 * 1024) + blob[8:] + b" " * (60 * 1024 * 1024)
    if fault == "dtype_unknown":
        entries[first] = ("F128", entries[first][1])
        return raw_file(entries, raws, m)
    if fault.startswith("state_"):
        states = sorted(k for k in t if k.startswith("state.") and t[k].is_floating_point())
        s0 = states[0]
        if fault == "state_wrong_shape":
            t[s0] = torch.zeros(tuple(t[s0].shape) + (2,))
        elif fault == "state_missing_key":
            del t[s0]
        elif fault == "state_extra_key":
            t["state.campaign.extra.weight"] = torch.zeros(3, 3)
        else:
            t = {k: (torch.full_like(v, float("nan")) if k in states else v)
                 for k, v in t.items()}
        return assemble(t, m)
    raise KeyError(fault)


# ----------------------------------------------------------------------------- generic files
class _Payload:
    """Unpickling this creates the marker file: proof that a payload ran."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def generic_file(fault: str, path: str, marker: str):
    import pickle

    if fault == "missing":
        return
    if fault == "directory":
        os.makedirs(path, exist_ok=True)
        return
    data = {"empty": b"", "one_byte": b"\x00", "garbage": bytes(range(256)) * 4,
            "zeros_1k": bytes(1024), "text": b"hello, this is not a model\n",
            "json_only": b'{"__metadata__": {"latentspace": "{}"}}'}.get(fault)
    if data is not None:
        with open(path, "wb") as f:
            f.write(data)
        return
    if fault == "npy_file":
        with open(path, "wb") as f:
            np.save(f, np.zeros((3, 3)))
        return
    if fault == "plain_safetensors":
        import torch
        from safetensors.torch import save

        with open(path, "wb") as f:
            f.write(save({"x": torch.zeros(3)}))
        return
    if fault == "pickle_payload":
        with open(path, "wb") as f:
            pickle.dump(_Payload(marker), f, protocol=4)
        return
    if fault == "pickle_proto0":
        with open(path, "wb") as f:
            pickle.dump(_Payload(marker), f, protocol=0)
        return
    if fault.startswith("joblib"):
        import joblib

        joblib.dump(_Payload(marker), path, compress=3 if "compressed" in fault else 0)
        return
    if fault == "torch_save_payload":
        import torch

        torch.save({"model": _Payload(marker)}, path)
        return
    raise KeyError(fault)


# ----------------------------------------------------------------------------- run
def _outputs(est_name, est, X):
    """Every deterministic output of a loaded model, checked for sanity."""
    from .area_params import _use

    _use(est_name, est, X)
    from .area_data import probe

    return probe(est_name, est, X)


def _load_expecting_refusal(path):
    from latentspace import load
    from latentspace.exceptions import ModelFormatError

    try:
        return load(path)
    except ModelFormatError:
        raise
    except (FileNotFoundError, IsADirectoryError, PermissionError) as exc:
        if os.path.isfile(path):
            raise Crashed(f"{checks.short_exc(exc)} for an existing model file") from None
        raise
    except (ValueError, TypeError) as exc:
        from .classify import classify_exception

        outcome, evidence = classify_exception(exc)
        raise Crashed(f"{evidence} -- a faulty model file must give ModelFormatError")
    # anything else propagates and is classified as a crash


def run(d, ctx):
    est_name, fault = d["est"], d["fault"]
    path = os.path.join(ctx.tmp, "case.safetensors")
    if os.path.isdir(path):
        os.rmdir(path)
    elif os.path.exists(path):
        os.remove(path)
    if est_name == "(any)":
        marker = os.path.join(ctx.tmp, "PAYLOAD_RAN")
        if os.path.exists(marker):
            os.remove(marker)
        generic_file(fault, path, marker)
        try:
            est = _load_expecting_refusal(path)
        finally:
            if os.path.exists(marker):
                raise Wrong(f"loading the {fault} file ran its payload (the marker exists)")
        raise Wrong(f"load accepted the {fault} file and returned {type(est).__name__}")
    X = base_data(est_name)
    if fault == "roundtrip_unfitted":
        from latentspace import load

        from .inputs import make

        est = make(est_name)
        est.save(path)
        back = load(path)
        if back.get_params() != est.get_params():
            raise Wrong("an unfitted model's hyperparameters changed in a save/load")
        from sklearn.exceptions import NotFittedError

        try:
            _outputs(est_name, back, X)
        except NotFittedError:
            return None
        raise Wrong("a loaded unfitted model gave outputs")
    blob, reference = ctx.model_file(est_name)
    if fault == "roundtrip_fitted":
        data = blob
    elif fault.startswith("flip_"):
        pos, bit = flip_position(blob, fault[5:], d["i"], d["n"])
        data = bytearray(blob)
        data[pos] ^= 1 << bit
        d["detail"] = f"byte {pos} bit {bit} of {len(blob)}"
    elif fault == "truncate":
        n = truncate_length(blob, d["i"], d["n"])
        data = blob[:n]
        d["detail"] = f"{n} of {len(blob)} bytes"
    elif fault == "append_zeros":
        data = blob + bytes(64)
    elif fault == "append_garbage":
        data = blob + bytes(range(200))
    elif fault == "prepend_byte":
        data = b"\x00" + blob
    else:
        data = forge(blob, fault)
    with open(path, "wb") as f:
        f.write(bytes(data))
    est = _load_expecting_refusal(path)
    if fault == "lost_all_attrs":
        # a forged file with a valid seal and no fitted attribute at all IS a valid file of an
        # unfitted model (nothing can tell it from one saved before fit): it must load as
        # that, and every method must say NotFittedError
        from sklearn.exceptions import NotFittedError

        try:
            _outputs(est_name, est, X)
        except NotFittedError:
            return "forged file accepted as the unfitted model it describes"
        raise Wrong("a file without fitted attributes loaded into a model that gave outputs")
    try:
        got = _outputs(est_name, est, X)
    except Exception as exc:
        raise Wrong(f"the faulty file loaded, then its model failed: {checks.short_exc(exc)}") \
            from None
    if fault in FORGERIES or fault in NEURAL_FORGERIES:
        return "forged file accepted; outputs sane"
    if not np.array_equal(got, reference, equal_nan=True):
        diff = np.nanmax(np.abs(np.asarray(got, float) - np.asarray(reference, float)))
        raise Wrong(f"the faulty file loaded and its model's outputs differ from the "
                    f"original's (max diff {diff:.3g})")
    return None
