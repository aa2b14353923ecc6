"""Save/load: round trips, corrupted files, pickle payloads, crashes and full disks.

RELIABILITY.md rows 11-14, driven with real files and real subprocesses.
"""

import json
import os
import pickle
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

import latentspace
from latentspace import PCA, load
from latentspace.exceptions import (
    ChecksumError,
    ModelFormatError,
    UnsafeFormatError,
    UnsupportedFormatVersionError,
)
from latentspace.io import FORMAT_VERSION, _seal, read_manifest

SRC = str(Path(latentspace.__file__).resolve().parents[1])


@pytest.fixture(scope="module")
def data():
    return np.random.default_rng(0).standard_normal((200, 12)) @ np.diag(np.linspace(3, 0.2, 12))


@pytest.fixture
def model_file(tmp_path, data):
    path = tmp_path / "model.safetensors"
    PCA(4).fit(data).save(path)
    return path


def test_round_trip(model_file, data):
    ref = PCA(4).fit(data)
    m = load(model_file)
    assert isinstance(m, PCA) and m.get_params() == ref.get_params()
    for name in ["components_", "explained_variance_", "mean_", "singular_values_"]:
        np.testing.assert_array_equal(getattr(m, name), getattr(ref, name))
    assert m.noise_variance_ == ref.noise_variance_ and m.n_components_ == 4
    np.testing.assert_array_equal(m.transform(data), ref.transform(data))
    np.testing.assert_array_equal(m.score_samples(data), ref.score_samples(data))
    manifest, _, _ = read_manifest(model_file)
    assert manifest["class"] == "PCA" and manifest["format_version"] == FORMAT_VERSION
    assert manifest["library_version"] == latentspace.__version__
    assert set(manifest["sha256"]) >= {"attr.components_", "attr.mean_"}


def test_round_trip_partial_fit_and_unfitted(tmp_path, data):
    inc = PCA(3).partial_fit(data[:100])
    inc.save(tmp_path / "inc.safetensors")
    back = load(tmp_path / "inc.safetensors")
    back.partial_fit(data[100:])
    inc.partial_fit(data[100:])
    np.testing.assert_allclose(back.components_, inc.components_)
    PCA(2, whiten=True).save(tmp_path / "raw.safetensors")
    raw = load(tmp_path / "raw.safetensors")
    assert raw.get_params()["whiten"] is True and not hasattr(raw, "components_")


def _flip(path: Path, offset: int):
    b = bytearray(path.read_bytes())
    b[offset] ^= 0xFF
    path.write_bytes(bytes(b))


def test_flipped_payload_byte_is_a_checksum_error(model_file):
    size = model_file.stat().st_size
    _flip(model_file, size - 5)
    with pytest.raises(ChecksumError, match="model.safetensors.*attr\\."):
        load(model_file)


@pytest.mark.parametrize("where", range(0, 64, 7))
def test_flipped_header_bytes_are_format_errors(model_file, where):
    _flip(model_file, where)
    with pytest.raises(ModelFormatError, match="model.safetensors"):
        load(model_file)


@pytest.mark.parametrize("keep", [0, 3, 8, 20, 200, -1])
def test_truncated_and_empty_files(model_file, keep):
    data = model_file.read_bytes()
    model_file.write_bytes(data[:keep] if keep >= 0 else data[:-1])
    with pytest.raises(ModelFormatError, match="model.safetensors"):
        load(model_file)


def test_garbage_and_lying_headers(tmp_path, model_file):
    g = tmp_path / "garbage.safetensors"
    g.write_bytes(os.urandom(4096))
    with pytest.raises(ModelFormatError):
        load(g)
    # a header that claims to be huge is refused before any large allocation
    lie = tmp_path / "lie.safetensors"
    lie.write_bytes(struct.pack("<Q", 2**60) + b"{}")
    with pytest.raises(ModelFormatError, match="header length"):
        load(lie)
    # a tensor entry pointing outside the payload
    raw = model_file.read_bytes()
    (hlen,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + hlen])
    name = next(k for k in header if k != "__metadata__")
    header[name]["data_offsets"][1] += 10**6
    body = json.dumps(header).encode()
    lie.write_bytes(struct.pack("<Q", len(body)) + body + raw[8 + hlen :])
    with pytest.raises(ModelFormatError, match="inconsistent"):
        load(lie)
    # a class the library does not know is never imported
    header[name]["data_offsets"][1] -= 10**6
    manifest = json.loads(header["__metadata__"]["latentspace"])
    manifest["class"] = "os.system"
    header["__metadata__"]["latentspace"] = json.dumps(manifest)
    # reseal, so that the lie reaches the class lookup rather than the header's checksum
    table = {k: v for k, v in header.items() if k != "__metadata__"}
    header["__metadata__"]["latentspace_seal"] = _seal(header["__metadata__"]["latentspace"], table)
    body = json.dumps(header).encode()
    lie.write_bytes(struct.pack("<Q", len(body)) + body + raw[8 + hlen :])
    with pytest.raises(ModelFormatError, match="unknown model class"):
        load(lie)


def test_newer_format_version(model_file, tmp_path):
    raw = model_file.read_bytes()
    (hlen,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + hlen])
    manifest = json.loads(header["__metadata__"]["latentspace"])
    manifest["format_version"] = FORMAT_VERSION + 1
    header["__metadata__"]["latentspace"] = json.dumps(manifest)
    body = json.dumps(header).encode()
    newer = tmp_path / "newer.safetensors"
    newer.write_bytes(struct.pack("<Q", len(body)) + body + raw[8 + hlen :])
    with pytest.raises(UnsupportedFormatVersionError, match=f"version {FORMAT_VERSION + 1}.*up to version {FORMAT_VERSION}"):
        load(newer)


class _Payload:
    def __init__(self, sentinel):
        self.sentinel = str(sentinel)

    def __reduce__(self):
        return (os.system, (f"touch {self.sentinel}",))


@pytest.mark.parametrize("writer", ["pickle0", "pickle2", "pickle5", "joblib", "joblib_z", "torch"])
def test_pickle_payloads_are_refused_and_never_run(tmp_path, writer):
    sentinel = tmp_path / "PWNED"
    path = tmp_path / f"evil.{writer}"
    payload = _Payload(sentinel)
    if writer.startswith("pickle"):
        path.write_bytes(pickle.dumps(payload, protocol=int(writer[-1])))
    elif writer == "joblib":
        import joblib

        joblib.dump(payload, path)
    elif writer == "joblib_z":
        import joblib

        joblib.dump(payload, path, compress=3)
    else:
        torch.save({"m": payload}, path)
    with pytest.raises(UnsafeFormatError, match="never unpickles"):
        load(path)
    assert not sentinel.exists()


_KILL_SCRIPT = textwrap.dedent(
    """
    import os, signal, sys
    import numpy as np
    sys.path.insert(0, {src!r})
    import latentspace._atomic as atomic
    from latentspace import PCA
    real_write = os.write
    def dying_write(fd, data):
        real_write(fd, bytes(data[: len(data) // 2]))
        os.kill(os.getpid(), signal.SIGKILL)
    X = np.random.default_rng(1).standard_normal((300, 40))
    model = PCA(30).fit(X)
    atomic.os.write = dying_write
    model.save({path!r})
    """
)


@pytest.mark.parametrize("unnamed", [True, False])
def test_kill_during_save_leaves_old_file(tmp_path, model_file, data, unnamed):
    before = model_file.read_bytes()
    script = _KILL_SCRIPT.format(src=SRC, path=str(model_file))
    if not unnamed:  # the named-temporary-file route
        script = script.replace("atomic.os.write = dying_write", "atomic._write_unnamed = lambda *a: False\natomic.os.write = dying_write")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120)
    assert proc.returncode == -9, proc.stderr.decode()
    assert model_file.read_bytes() == before
    np.testing.assert_allclose(load(model_file).transform(data), PCA(4).fit(data).transform(data))
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "model.safetensors"]
    if unnamed:
        assert leftovers == []  # an unnamed temporary file vanishes with the process
    else:
        # a killed process cannot clean up a named temporary; it is hidden and never the target
        assert all(n.startswith(".model.safetensors.") and n.endswith(".tmp") for n in leftovers)


_FULL_SCRIPT = textwrap.dedent(
    """
    import resource, signal, sys
    import numpy as np
    sys.path.insert(0, {src!r})
    import latentspace._atomic as atomic
    from latentspace import PCA
    {route}
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    model = PCA(100).fit(np.random.default_rng(1).standard_normal((300, 200)))
    resource.setrlimit(resource.RLIMIT_FSIZE, (20000, 20000))
    try:
        model.save({path!r})
    except OSError as exc:
        print("OSError", exc.errno)
        sys.exit(0)
    sys.exit(1)
    """
)


@pytest.mark.parametrize("route", ["", "atomic._write_unnamed = lambda *a: False"])
def test_disk_full_during_save(tmp_path, model_file, data, route):
    before = model_file.read_bytes()
    script = _FULL_SCRIPT.format(src=SRC, path=str(model_file), route=route)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120)
    assert proc.returncode == 0 and b"OSError" in proc.stdout, proc.stderr.decode()
    assert model_file.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["model.safetensors"]
    load(model_file)


def test_save_into_missing_folder_is_clear(tmp_path, data):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        PCA(2).fit(data).save(tmp_path / "nope" / "m.safetensors")
    with pytest.raises(FileNotFoundError, match="no model file"):
        load(tmp_path / "missing.safetensors")


def test_describe_reads_the_header_and_matches_the_loaded_model(model_file, data, monkeypatch):
    from latentspace import io as io_mod

    # describe never rebuilds the model: make loading impossible and describe anyway
    monkeypatch.setattr(io_mod, "registered_models", lambda: {})
    info = io_mod.describe(model_file)
    monkeypatch.undo()
    est = load(model_file)
    assert info["class"] == "PCA" and info["bytes"] == model_file.stat().st_size
    assert info["params"] == est.get_params()
    for name, meta in info["fitted_arrays"].items():
        assert meta["shape"] == list(np.shape(getattr(est, name)))
    assert info["fitted_scalars"]["n_components_"] == est.n_components_ == 4
    with pytest.raises(ModelFormatError):
        bad = model_file.with_name("bad.safetensors")
        bad.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all}")
        io_mod.describe(bad)


def test_load_device_overrides_the_saved_device(tmp_path):
    """``load(path, device=...)`` replaces the saved device (a GPU fit loads on a CPU-only
    machine); a device this machine lacks is a ValueError naming it, not a broken model."""
    import torch

    from latentspace import KMeans, load

    X = np.random.RandomState(0).randn(50, 3)
    km = KMeans(2, random_state=0, device="auto").fit(X)
    path = tmp_path / "km.safetensors"
    km.save(path)
    back = load(path, device="cpu")
    assert back.device == "cpu"
    np.testing.assert_array_equal(back.predict(X), km.predict(X))
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="cuda"):
            load(path, device="cuda")
    with pytest.raises(ValueError, match="not supported"):
        load(path, device="tpu")
