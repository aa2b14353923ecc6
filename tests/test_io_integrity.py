"""Model-file integrity: every byte covered, the header checked against a schema before any
allocation, names checked against each class's declarations, kills during save.

RELIABILITY.md rows 11, 14 and 20. Lying files are forged with ``latentspace.io._assemble``
(or resealed with ``_seal``), so that their checksums are valid and only the schema can
refuse them.
"""

import hashlib
import json
import os
import random
import signal
import struct
import time
import warnings

import numpy as np
import pytest
import torch

from latentspace import (
    GAN,
    PCA,
    VAE,
    Autoencoder,
    BernoulliMixture,
    GaussianMixture,
    KMeans,
    load,
)
from latentspace import io as io_mod
from latentspace.exceptions import ChecksumError, ModelFormatError, UnsupportedFormatVersionError
from latentspace.io import FORMAT_VERSION, _collect, describe

try:
    from latentspace import _schema
except ImportError:  # a library without a manifest schema: the tests below show its faults
    _schema = None


def _digests(tensors):
    return {k: hashlib.sha256(v.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
            .hexdigest() for k, v in tensors.items()}


def _assemble_v1(tensors, manifest):
    """The version-1 layout: safetensors with the manifest and tensor checksums, no seal."""
    from safetensors.torch import save as st_save

    manifest = {"format": "latentspace", "format_version": 1, **manifest,
                "sha256": _digests(tensors)}
    return st_save({k: v.contiguous() for k, v in tensors.items()},
                   metadata={"latentspace": json.dumps(manifest, sort_keys=True)})


_assemble = getattr(io_mod, "_assemble", _assemble_v1)
_seal = getattr(io_mod, "_seal", lambda text, table: "")

torch.set_num_threads(1)

_rng = np.random.default_rng(0)
X = _rng.standard_normal((60, 5)) * np.array([3.0, 2.0, 1.0, 0.5, 0.2])
U = 1.0 / (1.0 + np.exp(-X))  # values in (0, 1) for the Bernoulli decoders
B = (X > 0).astype(float)
_NEURAL = dict(max_epochs=2, batch_size=16, random_state=0)


def _make(name):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {
            "PCA": lambda: PCA(2).fit(X),
            "KMeans": lambda: KMeans(3, n_init=1, random_state=0).fit(X),
            "GaussianMixture": lambda: GaussianMixture(2, random_state=0).fit(X),
            "BernoulliMixture": lambda: BernoulliMixture(2, random_state=0).fit(B),
            "Autoencoder": lambda: Autoencoder(latent_dim=2, hidden_sizes=(4,), **_NEURAL).fit(X),
            "VAE": lambda: VAE(latent_dim=2, hidden_sizes=(4,), **_NEURAL).fit(U),
            "GAN": lambda: GAN(latent_dim=2, generator_sizes=(4,), discriminator_sizes=(4,),
                               **_NEURAL).fit(U),
        }[name]()


NAMES = ["PCA", "KMeans", "GaussianMixture", "BernoulliMixture", "Autoencoder", "VAE", "GAN"]
_FITTED: dict = {}


def fitted(name):
    if name not in _FITTED:
        _FITTED[name] = _make(name)
    return _FITTED[name]


def _reference(est):
    """A method's output that depends on every fitted part of the model."""
    if isinstance(est, GAN):
        return est.sample(5, random_state=0)
    if isinstance(est, KMeans):
        return est.transform(X)
    return est.score_samples(B if isinstance(est, BernoulliMixture) else
                             U if isinstance(est, VAE) else X)


def _parts(est):
    """(tensors, manifest without checksums) as save() would write them."""
    tensors, params, attrs = _collect(est)
    return tensors, {"library_version": "0", "class": type(est).__name__, "params": params,
                     "attrs": attrs}


def _split(raw: bytes):
    (hlen,) = struct.unpack("<Q", raw[:8])
    return hlen, json.loads(raw[8:8 + hlen]), raw[8 + hlen:]


def _reseal(raw: bytes, edit, *, manifest_text=None, pad=b" ") -> bytes:
    """Apply ``edit(table, manifest)`` to a file's header, then re-seal it validly."""
    _, header, payload = _split(raw)
    meta = header.pop("__metadata__")
    manifest = json.loads(meta["latentspace"])
    edit(header, manifest)
    text = manifest_text if manifest_text is not None else json.dumps(manifest, sort_keys=True)
    meta = {"latentspace": text, "latentspace_seal": _seal(text, header)}
    body = json.dumps({"__metadata__": meta, **header}, separators=(",", ":")).encode()
    body += pad * (-len(body) % 8)
    return struct.pack("<Q", len(body)) + body + payload


def _refused(path, match=None, cls=ModelFormatError):
    t0 = time.perf_counter()
    with pytest.raises(cls, match=match) as info:
        load(path)
    elapsed = time.perf_counter() - t0
    assert str(path) in str(info.value)  # the message names the file
    return elapsed


@pytest.fixture(params=NAMES)
def est(request):
    return fitted(request.param)


# ----------------------------------------------------------------------------- round trips
def test_round_trip_is_exact_and_a_plain_safetensors_file(est, tmp_path):
    from safetensors import safe_open

    path = tmp_path / "m.safetensors"
    est.save(path)
    back = load(path)
    np.testing.assert_array_equal(_reference(back), _reference(est))
    tensors, _ = _parts(est)
    with safe_open(str(path), "pt") as f:
        assert set(f.keys()) == set(tensors)
        for k in f.keys():
            assert torch.equal(f.get_tensor(k), tensors[k])
        assert set(f.metadata()) == {"latentspace", "latentspace_seal"}
    info = describe(path)
    assert info["format_version"] == FORMAT_VERSION == 2 and info["class"] == type(est).__name__


def test_version_1_files_still_load(est, tmp_path):
    """The old layout (tensor checksums only, no seal), as the version-1 save wrote it."""
    path = tmp_path / "v1.safetensors"
    path.write_bytes(_assemble_v1(*_parts(est)))
    back = load(path)
    np.testing.assert_array_equal(_reference(back), _reference(est))
    assert describe(path)["format_version"] == 1


# ----------------------------------------------------------------------------- the declarations
_CONFIGS = {
    PCA: [lambda: PCA(2).fit(X), lambda: PCA(2).partial_fit(X), lambda: PCA(0.9).fit(X),
          lambda: PCA(2, missing="marginalize").fit(np.where(np.eye(60, 5) > 0, np.nan, X))],
    KMeans: [lambda: KMeans(3, n_init=1).fit(X), lambda: KMeans(3).partial_fit(X)],
    GaussianMixture: [lambda c=c: GaussianMixture(2, covariance_type=c).fit(X)
                      for c in ("full", "tied", "diag", "spherical")],
    BernoulliMixture: [lambda: BernoulliMixture(2).fit(B)],
    Autoencoder: [lambda: Autoencoder(latent_dim=2, hidden_sizes=(4,), **_NEURAL).fit(X),
                  lambda: Autoencoder(latent_dim=2, code_activation="sigmoid",
                                      sparsity_target=0.05, sparsity_weight=0.1,
                                      **_NEURAL).fit(X)],
    VAE: [lambda: VAE(latent_dim=2, hidden_sizes=(4,), **_NEURAL).fit(U),
          lambda: VAE(latent_dim=2, likelihood="gaussian", **_NEURAL).fit(X)],
    GAN: [lambda: GAN(latent_dim=2, generator_sizes=(4,), discriminator_sizes=(4,),
                      **_NEURAL).fit(U),
          lambda: GAN(latent_dim=2, generator_sizes=(4,), discriminator_sizes=(4,),
                      **_NEURAL).fit(X)],
}


@pytest.mark.parametrize("cls", list(_CONFIGS), ids=lambda c: c.__name__)
def test_declaration_covers_exactly_what_fit_produces(cls, tmp_path):
    """Every saved fitted attribute is declared, every required one is saved by every fit,
    and every declared one is saved by some fit: the declaration cannot drift."""
    schema = _schema.fitted_schema(cls)
    required = {n for n, s in schema.items() if "optional" not in s[2]}
    seen = set()
    for make in _CONFIGS[cls]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = make()
        model.save(tmp_path / "m.safetensors")
        manifest = describe(tmp_path / "m.safetensors")
        saved = set(manifest["fitted_arrays"]) | set(manifest["fitted_scalars"])
        assert saved <= set(schema), saved - set(schema)
        assert required <= saved, required - saved
        seen |= saved
        load(tmp_path / "m.safetensors")
    seen.add("feature_names_in_")  # shared by every class: set when fit on a DataFrame
    assert seen == set(schema), set(schema) - seen


def test_feature_names_round_trip(tmp_path):
    import pandas as pd

    model = GaussianMixture(2, random_state=0).fit(pd.DataFrame(X, columns=list("abcde")))
    model.save(tmp_path / "m.safetensors")
    assert list(load(tmp_path / "m.safetensors").feature_names_in_) == list("abcde")


def test_save_refuses_an_undeclared_attribute(tmp_path):
    model = PCA(2).fit(X)
    model.extra_ = np.ones(3)
    with pytest.raises(TypeError, match="extra_.*_fitted_schema"):
        model.save(tmp_path / "m.safetensors")


# ----------------------------------------------------------------------------- bit flips
def _regions(raw: bytes):
    hlen = struct.unpack("<Q", raw[:8])[0]
    body = raw[8:8 + hlen]
    end_json = len(body.rstrip(b" "))
    return {"length": range(0, 8), "header": range(8, 8 + end_json),
            "padding": range(8 + end_json, 8 + hlen), "payload": range(8 + hlen, len(raw))}


def test_every_single_bit_flip_is_refused(est, tmp_path):
    """>= 200 flips per model, in every region; not one loads."""
    path = tmp_path / "m.safetensors"
    est.save(path)
    raw = path.read_bytes()
    regions = _regions(raw)
    rng = random.Random(0)
    flips = [(i, b) for i in regions["length"] for b in range(8)]  # all 64 bits
    flips += [(i, rng.randrange(8)) for i in regions["padding"]]  # every padding byte
    for name in ("header", "payload"):
        r = regions[name]
        flips += [(rng.choice(r), rng.randrange(8)) for _ in range(90)]
        flips += [(r[0], 0), (r[-1], 7)]
    assert len(flips) >= 200 and all(len(regions[k]) for k in ("header", "payload"))
    worst = 0.0
    for i, bit in flips:
        bad = bytearray(raw)
        bad[i] ^= 1 << bit
        path.write_bytes(bytes(bad))
        worst = max(worst, _refused(path))
    assert worst < 0.1, f"the slowest refusal took {worst:.3f} s"


def test_flipped_payload_is_a_checksum_error_and_flipped_header_too(tmp_path):
    path = tmp_path / "m.safetensors"
    fitted("GaussianMixture").save(path)
    raw = path.read_bytes()
    regions = _regions(raw)
    for i in (regions["payload"][5], regions["header"][len(regions["header"]) // 2]):
        bad = bytearray(raw)
        bad[i] ^= 0x01
        path.write_bytes(bytes(bad))
        _refused(path)
    # a flipped digit inside the manifest's text keeps valid JSON: only the seal sees it
    hlen = struct.unpack("<Q", raw[:8])[0]
    at = raw.index(b'n_iter_\\": ', 8) + len(b'n_iter_\\": ')
    assert raw[at:at + 1].isdigit() and at < 8 + hlen
    bad = bytearray(raw)
    bad[at] ^= 0x01
    path.write_bytes(bytes(bad))
    _refused(path, "seal", ChecksumError)


@pytest.mark.parametrize("name", ["GaussianMixture", "VAE"])
def test_truncated_and_extended_files(name, tmp_path):
    path = tmp_path / "m.safetensors"
    fitted(name).save(path)
    raw = path.read_bytes()
    hlen = struct.unpack("<Q", raw[:8])[0]
    cuts = sorted({*range(0, 17), *np.linspace(17, len(raw) - 1, 60).astype(int), 8 + hlen - 1,
                   8 + hlen, 8 + hlen + 1, len(raw) - 1})
    for keep in cuts:
        path.write_bytes(raw[:keep])
        _refused(path)
    for extra in (b"\x00", b" ", b"\x00" * 4096):
        path.write_bytes(raw + extra)
        _refused(path, "payload")


# ----------------------------------------------------------------------------- lying files
def _write(tmp_path, data: bytes):
    path = tmp_path / "forged.safetensors"
    path.write_bytes(data)
    return path


def test_forged_honest_file_loads(tmp_path):
    """The forging helper itself writes loadable files: the refusals below are the lies'."""
    model = fitted("GaussianMixture")
    back = load(_write(tmp_path, _assemble(*_parts(model))))
    np.testing.assert_array_equal(back.score_samples(X), model.score_samples(X))


def test_wrong_shape(tmp_path):
    tensors, manifest = _parts(fitted("GaussianMixture"))
    tensors["attr.means_"] = tensors["attr.means_"].T.contiguous()  # (5, 2) for (2, 5)
    _refused(_write(tmp_path, _assemble(tensors, manifest)), "means_.*shape")


def test_wrong_shape_of_a_covariance_type(tmp_path):
    tensors, manifest = _parts(fitted("GaussianMixture"))
    manifest["params"]["covariance_type"] = "diag"  # full (2, 5, 5) arrays under 'diag'
    _refused(_write(tmp_path, _assemble(tensors, manifest)), "covariances_.*shape")


def test_wrong_dtype(tmp_path):
    tensors, manifest = _parts(fitted("KMeans"))
    tensors["attr.cluster_centers_"] = tensors["attr.cluster_centers_"].to(torch.int64)
    _refused(_write(tmp_path, _assemble(tensors, manifest)), "cluster_centers_.*dtype")
    tensors, manifest = _parts(fitted("KMeans"))
    tensors["attr.labels_"] = tensors["attr.labels_"].to(torch.float64)
    _refused(_write(tmp_path, _assemble(tensors, manifest)), "labels_.*dtype")


@pytest.mark.parametrize("name,attr", [("GaussianMixture", "means_"),
                                       ("GaussianMixture", "covariances_"),
                                       ("PCA", "components_"), ("KMeans", "cluster_centers_"),
                                       ("BernoulliMixture", "weights_")])
def test_all_nan_tensor(tmp_path, name, attr):
    tensors, manifest = _parts(fitted(name))
    tensors[f"attr.{attr}"] = torch.full_like(tensors[f"attr.{attr}"], float("nan"))
    _refused(_write(tmp_path, _assemble(tensors, manifest)), f"{attr}.*NaN")


def test_nan_in_a_history_is_allowed(tmp_path):
    tensors, manifest = _parts(fitted("GaussianMixture"))
    tensors["attr.lower_bounds_"][0] = float("nan")
    load(_write(tmp_path, _assemble(tensors, manifest)))


@pytest.mark.parametrize("value,match", [({"__float__": "nan"}, "not finite"),
                                         ({"__float__": "-inf"}, "not finite"),
                                         (10**400, "float range"), ("0.5", "kind float")])
def test_non_finite_or_wrong_scalar(tmp_path, value, match):
    tensors, manifest = _parts(fitted("PCA"))
    manifest["attrs"]["noise_variance_"] = value
    _refused(_write(tmp_path, _assemble(tensors, manifest)), f"noise_variance_.*{match}")


def test_attribute_named_after_a_method(tmp_path):
    tensors, manifest = _parts(fitted("PCA"))
    tensors["attr.fit"] = torch.zeros(3)
    _refused(_write(tmp_path, _assemble(tensors, manifest)), "'fit'.*method")
    tensors, manifest = _parts(fitted("PCA"))
    manifest["attrs"]["transform"] = 1
    _refused(_write(tmp_path, _assemble(tensors, manifest)), "'transform'.*method")


def test_undeclared_attribute(tmp_path):
    tensors, manifest = _parts(fitted("PCA"))
    tensors["attr.secret_"] = torch.zeros(3)
    _refused(_write(tmp_path, _assemble(tensors, manifest)), "secret_.*not a fitted attribute")


def test_lost_attribute(tmp_path):
    tensors, manifest = _parts(fitted("GaussianMixture"))
    del tensors["attr.precisions_cholesky_"]
    _refused(_write(tmp_path, _assemble(tensors, manifest)), "precisions_cholesky_.*missing")
    tensors, manifest = _parts(fitted("PCA"))
    del manifest["attrs"]["n_components_"]
    _refused(_write(tmp_path, _assemble(tensors, manifest)), "n_components_.*missing")


def test_scalar_attribute_of_the_wrong_kind(tmp_path):
    tensors, manifest = _parts(fitted("KMeans"))
    manifest["attrs"]["n_iter_"] = "many"
    _refused(_write(tmp_path, _assemble(tensors, manifest)), "n_iter_.*kind int")
    tensors, manifest = _parts(fitted("KMeans"))
    manifest["attrs"]["converged_"] = 1
    _refused(_write(tmp_path, _assemble(tensors, manifest)), "converged_.*kind bool")


@pytest.mark.parametrize("name", ["PCA", "VAE"])
def test_unknown_device(tmp_path, name):
    tensors, manifest = _parts(fitted(name))
    manifest["params"]["device"] = "cpw"
    _refused(_write(tmp_path, _assemble(tensors, manifest)), "device='cpw'")


@pytest.mark.parametrize("name,param,value,match", [
    ("KMeans", "n_clusters", "three", "n_clusters"),
    ("GaussianMixture", "tol", -1.0, "tol"),
    ("VAE", "optimizer", "lbfgs", "optimizer"),
    ("GaussianMixture", "no_such_param", 1, "no_such_param"),
    ("PCA", "svd_solver", "x", "svd_solver"),
    ("PCA", "whiten", 3, "whiten"),
    ("PCA", "n_components", 7, "n_components"),
])
def test_invalid_hyperparameters(tmp_path, name, param, value, match):
    tensors, manifest = _parts(fitted(name))
    manifest["params"][param] = value
    _refused(_write(tmp_path, _assemble(tensors, manifest)), match)


def test_tensor_hyperparameter_references(tmp_path):
    model = KMeans(2, init=X[:2].copy(), n_init=1).fit(X)
    tensors, manifest = _parts(model)
    assert manifest["params"]["init"] == {"__tensor__": "param.init"}
    load(_write(tmp_path, _assemble(tensors, manifest)))
    manifest["params"]["init"] = {"__tensor__": "attr.labels_"}
    _refused(_write(tmp_path, _assemble(tensors, manifest)), "refers to a tensor")
    tensors, manifest = _parts(fitted("KMeans"))
    tensors["param.tol"] = torch.zeros(1)  # a tensor no hyperparameter refers to
    _refused(_write(tmp_path, _assemble(tensors, manifest)), "not referenced")


@pytest.mark.parametrize("value", [float("inf"), float("nan"), 2.0, True, "2", None, 0, -1,
                                   10**400])
def test_format_version_of_the_wrong_kind(tmp_path, value):
    tensors, manifest = _parts(fitted("PCA"))
    manifest["format_version"] = value
    cls = UnsupportedFormatVersionError if value == 10**400 else ModelFormatError
    _refused(_write(tmp_path, _assemble(tensors, manifest)), "version|constant", cls)


@pytest.mark.parametrize("field", ["params", "attrs", "sha256"])
@pytest.mark.parametrize("value", [[], "abc", 3, None])
def test_manifest_fields_of_the_wrong_type(tmp_path, field, value):
    raw = _assemble(*_parts(fitted("PCA")))
    forged = _reseal(raw, lambda table, m: m.__setitem__(field, value))
    _refused(_write(tmp_path, forged), field)


def test_manifest_not_an_object_and_unknown_fields(tmp_path):
    raw = _assemble(*_parts(fitted("PCA")))
    _refused(_write(tmp_path, _reseal(raw, lambda t, m: None, manifest_text="[1, 2]")),
             "not a JSON object")
    _refused(_write(tmp_path, _reseal(raw, lambda t, m: m.__setitem__("extra", 1))),
             "unknown fields")
    _refused(_write(tmp_path, _reseal(raw, lambda t, m: m["sha256"].__setitem__(
        next(iter(m["sha256"])), "0" * 63))), "SHA-256")


def _set_entry(key, value, which=0):
    def edit(table, manifest):
        name = sorted(table)[which]
        table[name][key] = value
    return edit


@pytest.mark.parametrize("key,value,match", [
    ("shape", [2**70], "inconsistent"),
    ("shape", [2**35, 2**35], "inconsistent"),
    ("shape", [-1, 5], "invalid shape"),
    ("shape", [2.0, 5], "invalid shape"),
    ("shape", [True, 5], "invalid shape"),
    ("shape", "25", "invalid shape"),
    ("shape", [1] * 40, "invalid shape"),
    ("data_offsets", [0.0, 80.0], "data_offsets"),
    ("data_offsets", [-8, 72], "inconsistent"),
    ("data_offsets", [0, 2**70], "inconsistent"),
    ("data_offsets", [0], "data_offsets"),
    ("dtype", "F128", "unknown dtype"),
    ("dtype", 8, "unknown dtype"),
])
def test_lying_tensor_table(tmp_path, key, value, match):
    raw = _assemble(*_parts(fitted("GaussianMixture")))
    t0 = time.perf_counter()
    _refused(_write(tmp_path, _reseal(raw, _set_entry(key, value))), match)
    assert time.perf_counter() - t0 < 0.1  # nothing was allocated from the lie


def test_overlapping_and_gapped_offsets(tmp_path):
    raw = _assemble(*_parts(fitted("GaussianMixture")))

    def overlap(table, manifest):
        a, b = sorted(table, key=lambda k: table[k]["data_offsets"])[:2]
        size = table[b]["data_offsets"][1] - table[b]["data_offsets"][0]
        start = table[a]["data_offsets"][0]
        if size <= table[a]["data_offsets"][1] - start:
            table[b]["data_offsets"] = [start, start + size]

    _refused(_write(tmp_path, _reseal(raw, overlap)), "overlap|gap|account")

    def extra_entry(table, manifest):
        table["attr.means_2"] = dict(table["attr.means_"])
        manifest["sha256"]["attr.means_2"] = manifest["sha256"]["attr.means_"]

    _refused(_write(tmp_path, _reseal(raw, extra_entry)), "overlap|gap")


def test_header_padding_must_be_spaces(tmp_path):
    raw = _assemble(*_parts(fitted("PCA")))
    forged = _reseal(raw, lambda t, m: None, pad=b"\n")
    if forged == _reseal(raw, lambda t, m: None):  # no padding needed: force some
        pytest.skip("this header needs no padding")
    _refused(_write(tmp_path, forged), "header")


def test_unknown_metadata_and_missing_seal(tmp_path):
    raw = _assemble(*_parts(fitted("PCA")))
    hlen, header, payload = _split(raw)

    def pack(h):
        body = json.dumps(h).encode()
        return struct.pack("<Q", len(body)) + body + payload

    h = json.loads(json.dumps(header))
    h["__metadata__"]["other"] = "x"
    _refused(_write(tmp_path, pack(h)), "unknown header metadata")
    h = json.loads(json.dumps(header))
    del h["__metadata__"]["latentspace_seal"]
    _refused(_write(tmp_path, pack(h)), "no seal")


@pytest.mark.parametrize("where", ["manifest", "header"])
def test_deep_nesting(tmp_path, where):
    raw = _assemble(*_parts(fitted("PCA")))
    deep = "[" * 100_000 + "]" * 100_000
    if where == "manifest":
        text = json.dumps(json.loads(_split(raw)[1]["__metadata__"]["latentspace"]))
        text = text[:-1] + ', "deep": ' + deep + "}"
        forged = _reseal(raw, lambda t, m: None, manifest_text=text)
    else:
        hlen, header, payload = _split(raw)
        body = json.dumps(header).encode()[:-1] + b', "x": ' + deep.encode() + b"}"
        forged = struct.pack("<Q", len(body)) + body + payload
    _refused(_write(tmp_path, forged), "nests deeper")


def test_constants_and_duplicate_keys_in_json(tmp_path):
    raw = _assemble(*_parts(fitted("PCA")))
    text = json.dumps(json.loads(_split(raw)[1]["__metadata__"]["latentspace"]))
    nan = text.replace('"n_samples_": 60', '"n_samples_": NaN')
    assert nan != text
    _refused(_write(tmp_path, _reseal(raw, lambda t, m: None, manifest_text=nan)), "constant")
    dup = text[:-1] + ', "class": "PCA"}'
    _refused(_write(tmp_path, _reseal(raw, lambda t, m: None, manifest_text=dup)), "duplicate")


@pytest.mark.parametrize("value", [{"__tuple__": 5}, {"__float__": "abc"}, {"__dict__": []},
                                   {"__strarray__": [1]}, {"__what__": 1},
                                   {"__tuple__": [], "x": 1}])
def test_malformed_encoded_values(tmp_path, value):
    tensors, manifest = _parts(fitted("GaussianMixture"))
    manifest["params"]["tol"] = value
    _refused(_write(tmp_path, _assemble(tensors, manifest)), "encoded value")


# ----------------------------------------------------------------------------- network state
def _state_lie(name, edit):
    tensors, manifest = _parts(fitted(name))
    edit(tensors)
    return _assemble(tensors, manifest)


_W = "state.network.encoder.0.weight"


@pytest.mark.parametrize("lie,match", [
    (lambda t: t.__setitem__(_W, torch.zeros(3, 3)), "encoder.0.weight.*\\(3, 3\\)"),
    (lambda t: t.__setitem__(_W, t[_W].double()), "encoder.0.weight.*F64"),
    (lambda t: t.pop(_W), "missing.*encoder.0.weight"),
    (lambda t: t.__setitem__("state.network.extra", torch.zeros(2)), "unexpected.*extra"),
    (lambda t: t.__setitem__("state.optimizer", torch.zeros(2)), "unexpected.*optimizer"),
    (lambda t: t.__setitem__(_W, torch.full_like(t[_W], float("inf"))), "NaN or infinity"),
])
@pytest.mark.parametrize("name", ["Autoencoder", "VAE"])
def test_network_state_lies(tmp_path, name, lie, match):
    _refused(_write(tmp_path, _state_lie(name, lie)), match)


def test_fitted_network_without_its_state(tmp_path):
    tensors, manifest = _parts(fitted("VAE"))
    tensors = {k: v for k, v in tensors.items() if not k.startswith("state.")}
    _refused(_write(tmp_path, _assemble(tensors, manifest)), "missing")


@pytest.mark.parametrize("value", [-3, 10**12])
def test_network_built_from_a_lying_size(tmp_path, value):
    tensors, manifest = _parts(fitted("Autoencoder"))
    manifest["attrs"]["n_features_in_"] = value
    _refused(_write(tmp_path, _assemble(tensors, manifest)), "n_features_in_|network")


def test_gan_state_with_another_architecture(tmp_path):
    tensors, manifest = _parts(fitted("GAN"))
    manifest["params"]["generator_sizes"] = {"__tuple__": [8]}
    _refused(_write(tmp_path, _assemble(tensors, manifest)), "generator")


def test_gan_with_an_unknown_output_activation(tmp_path):
    tensors, manifest = _parts(fitted("GAN"))
    manifest["attrs"]["output_activation_"] = "cpu"
    _refused(_write(tmp_path, _assemble(tensors, manifest)), "network")


def test_state_on_a_model_without_a_network(tmp_path):
    tensors, manifest = _parts(fitted("PCA"))
    tensors["state.network.w"] = torch.zeros(2)
    _refused(_write(tmp_path, _assemble(tensors, manifest)), "no network state")


def test_old_neural_files_without_buffers_load(tmp_path):
    model = fitted("Autoencoder")
    tensors, manifest = _parts(model)
    for k in ("state.network.shift", "state.network.scale"):
        tensors.pop(k)
    back = load(_write(tmp_path, _assemble(tensors, manifest)))
    assert back.transform(X).shape == (len(X), 2)


# ----------------------------------------------------------------------------- kills during save
@pytest.mark.parametrize("window", ["natural", "widened"])
def test_random_kills_during_repeated_saves_leave_a_loadable_file_and_no_temp(tmp_path, window):
    """Forked savers, each SIGKILLed at a random moment of a loop of saves. ``widened``
    stretches the microseconds between naming the new file and renaming it over the target
    to 2 ms, so that many kills land there."""
    import latentspace._atomic as atomic

    model = GaussianMixture(3, random_state=0).fit(X)
    path = tmp_path / "gmm.safetensors"
    model.save(path)
    expected = model.score_samples(X)
    rng = random.Random(1)
    savers = []
    for _ in range(30 if window == "natural" else 15):
        pid = os.fork()
        if pid == 0:  # the saver: replace the file until killed
            try:
                if window == "widened":
                    replace = os.replace
                    atomic.os.replace = lambda a, b: (time.sleep(0.002), replace(a, b))
                while True:
                    model.save(path)
            finally:
                os._exit(1)
        time.sleep(rng.uniform(0.0, 0.03))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        savers.append(pid)
        np.testing.assert_array_equal(load(path).score_samples(X), expected)
        others = [p.name for p in tmp_path.iterdir() if p.name != path.name]
        # only a kill between naming and renaming leaves a temp, named after the dead saver
        assert all(n.endswith(".tmp") and int(n.split(".")[3]) in savers for n in others), others
    model.save(path)  # removes what the dead savers left
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


def test_a_save_removes_temp_files_of_dead_processes_only(tmp_path):
    path = tmp_path / "m.safetensors"
    child = os.fork()
    if child == 0:
        os._exit(0)
    os.waitpid(child, 0)  # a pid that no longer exists
    dead = tmp_path / f".m.safetensors.{child}.abcd.tmp"
    alive = tmp_path / f".m.safetensors.{os.getppid()}.abcd.tmp"
    unrelated = tmp_path / f".other.safetensors.{child}.abcd.tmp"
    for p in (dead, alive, unrelated):
        p.write_bytes(b"x")
    PCA(2).fit(X).save(path)
    assert not dead.exists() and alive.exists() and unrelated.exists()
    load(path)
