"""load_dataset: real files against their published facts, original formats, offline errors."""

import gzip
import hashlib
import io
import struct
import urllib.error
import urllib.request

import numpy as np
import pytest
import scipy.io
import sklearn.datasets
from sklearn.utils import Bunch

from latentspace.data import get_data_home, list_datasets, load_dataset
from latentspace.data._readers import read_idx
from latentspace.exceptions import DatasetNotFoundError

ALL = ["digits", "mnist", "fashion_mnist", "lfw_people", "frey_faces", "olivetti_faces"]
REMOTE = ALL[1:]


def _u8(x):
    """Back from [0, 1] to the stored 0..255 bytes (exact: x = k / 255 in float32)."""
    return np.rint(np.asarray(x, dtype=np.float64) * 255).astype(np.uint8)


def _idx_sha(header_dims, payload: np.ndarray, code=0x08) -> str:
    head = struct.pack(">BBBB", 0, 0, code, len(header_dims)) + struct.pack(
        f">{len(header_dims)}I", *header_dims
    )
    return hashlib.sha256(head + payload.astype(np.uint8).tobytes()).hexdigest()


# ----------------------------------------------------------------------------- generic
def test_list_datasets():
    assert list_datasets() == ALL


def test_unknown_name_lists_choices():
    with pytest.raises(ValueError, match="unknown dataset 'cifar10'.*mnist"):
        load_dataset("cifar10")
    with pytest.raises(ValueError, match="unknown dataset"):
        load_dataset(3)


def test_digits_needs_no_data_folder(tmp_path, monkeypatch):
    missing = tmp_path / "nowhere"
    monkeypatch.setenv("LATENTSPACE_DATA", str(missing))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    ds = load_dataset("digits")
    ref = sklearn.datasets.load_digits()
    assert ds.data.dtype == np.float32 and ds.data.shape == (1797, 64)
    np.testing.assert_array_equal(ds.data, (ref.data / 16).astype(np.float32))
    np.testing.assert_array_equal(ds.images, ds.data.reshape(-1, 8, 8))
    np.testing.assert_array_equal(ds.target, ref.target)
    assert ds.target.dtype == np.int64
    assert ds.image_shape == (8, 8) and ds.name == "digits"
    assert list(ds.target_names) == [str(i) for i in range(10)]
    assert "Licence" in ds.DESCR and "UCI" in ds.DESCR
    assert not missing.exists() and not (tmp_path / "home").exists()  # nothing created


def test_return_images_false():
    ds = load_dataset("digits", return_images=False)
    assert "images" not in ds and ds.data.shape == (1797, 64)


def test_data_home_lookup_order(tmp_path, monkeypatch):
    monkeypatch.delenv("LATENTSPACE_DATA", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert get_data_home() == tmp_path / "latentspace_data"
    monkeypatch.setenv("LATENTSPACE_DATA", str(tmp_path / "env"))
    assert get_data_home() == tmp_path / "env"
    assert get_data_home(tmp_path / "arg") == tmp_path / "arg"
    assert get_data_home("~/x") == tmp_path / "x"


def _write_frey_npz(folder, n=3, seed=0):
    folder.mkdir(parents=True, exist_ok=True)
    images = np.random.default_rng(seed).integers(0, 256, (n, 28, 20), dtype=np.uint8)
    np.savez_compressed(folder / "frey_faces.npz", images=images)
    return images


def test_folder_resolution_reaches_the_loader(tmp_path, monkeypatch):
    """Argument beats $LATENTSPACE_DATA, which beats ~/latentspace_data."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("LATENTSPACE_DATA", raising=False)
    home = _write_frey_npz(tmp_path / "latentspace_data", n=2, seed=1)
    env = _write_frey_npz(tmp_path / "env", n=3, seed=2)
    arg = _write_frey_npz(tmp_path / "arg", n=4, seed=3)
    assert len(load_dataset("frey_faces").data) == len(home)
    monkeypatch.setenv("LATENTSPACE_DATA", str(tmp_path / "env"))
    assert len(load_dataset("frey_faces").data) == len(env)
    ds = load_dataset("Frey-Faces", data_home=tmp_path / "arg")
    np.testing.assert_array_equal(_u8(ds.images), arg)


# ----------------------------------------------------------------------------- real files
@pytest.fixture(scope="module")
def mnist(shared_data):
    return load_dataset("mnist", data_home=shared_data, download_if_missing=False)


def test_mnist_shapes_and_labels(mnist):
    assert mnist.data.shape == (60000, 784) and mnist.data.dtype == np.float32
    assert mnist.images.shape == (60000, 28, 28) and mnist.image_shape == (28, 28)
    assert mnist.data_test.shape == (10000, 784) and mnist.images_test.shape == (10000, 28, 28)
    assert mnist.target.dtype == np.int64 and mnist.target_test.dtype == np.int64
    assert list(mnist.target[:10]) == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert list(mnist.target_test[:10]) == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert list(np.bincount(mnist.target)) == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265,
                                              5851, 5949]
    assert list(np.bincount(mnist.target_test)) == [980, 1135, 1032, 1010, 982, 892, 958, 1028,
                                                   974, 1009]
    assert mnist.data.min() == 0.0 and mnist.data.max() == 1.0
    assert abs(mnist.data.mean(dtype=np.float64) - 0.1306604762738429) < 1e-8  # float32 k/255
    assert abs(mnist.data.std(dtype=np.float64) - 0.3081078038564626) < 1e-7
    assert "CC BY-SA 3.0" in mnist.DESCR


def test_mnist_pixels_rebuild_the_canonical_idx_files(mnist):
    """Rebuilt IDX bytes hash to the sha256 that the publishers' files have."""
    assert _idx_sha((60000, 28, 28), _u8(mnist.images)) == (
        "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db")
    assert _idx_sha((10000, 28, 28), _u8(mnist.images_test)) == (
        "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7")
    assert hashlib.sha256(struct.pack(">II", 2049, 60000) + mnist.target.astype(np.uint8)
                          .tobytes()).hexdigest() == (
        "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5")


def test_fashion_mnist(shared_data):
    ds = load_dataset("fashion_mnist", data_home=shared_data, download_if_missing=False)
    assert ds.data.shape == (60000, 784) and ds.data_test.shape == (10000, 784)
    assert list(np.bincount(ds.target)) == [6000] * 10
    assert list(np.bincount(ds.target_test)) == [1000] * 10
    assert list(ds.target_names[[0, 5, 9]]) == ["T-shirt/top", "Sandal", "Ankle boot"]
    assert abs(ds.data.mean(dtype=np.float64) - 0.28604) < 5e-6
    assert abs(ds.data.std(dtype=np.float64) - 0.35302) < 5e-6
    assert abs(ds.data_test.mean(dtype=np.float64) - 0.28685) < 5e-6
    assert _idx_sha((10000, 28, 28), _u8(ds.images_test)) == (
        "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b")
    assert "MIT" in ds.DESCR


def test_lfw_people(shared_data):
    ds = load_dataset("lfw_people", data_home=shared_data, download_if_missing=False)
    assert ds.data.shape == (1348, 62 * 47) and ds.images.shape == (1348, 62, 47)
    assert ds.data.dtype == np.float32 and 0.0 <= ds.data.min() and ds.data.max() <= 1.0
    assert list(np.bincount(ds.target)) == [77, 236, 121, 530, 109, 71, 60, 144]
    assert list(ds.target[:20]) == [1, 3, 3, 3, 5, 3, 6, 3, 7, 0, 3, 2, 3, 3, 3, 0, 1, 1, 3, 7]
    assert list(ds.target_names) == [
        "Ariel Sharon", "Colin Powell", "Donald Rumsfeld", "George W Bush",
        "Gerhard Schroeder", "Hugo Chavez", "Junichiro Koizumi", "Tony Blair"]
    assert ds.image_shape == (62, 47)


def test_frey_faces(shared_data):
    ds = load_dataset("frey_faces", data_home=shared_data, download_if_missing=False)
    assert ds.data.shape == (1965, 560) and ds.image_shape == (28, 20)
    assert ds.target is None and ds.target_names is None
    assert _u8(ds.data).min() == 8 and _u8(ds.data).max() == 238
    np.testing.assert_array_equal(_u8(ds.data), _u8(ds.data).astype(np.float32))  # k / 255


def test_olivetti_faces(shared_data):
    ds = load_dataset("olivetti_faces", data_home=shared_data, download_if_missing=False)
    assert ds.data.shape == (400, 4096) and ds.images.shape == (400, 64, 64)
    expected = np.array([75, 89, 101, 107, 128], dtype=np.float32) / np.float32(242)
    np.testing.assert_array_equal(ds.data[0, :5], expected)
    np.testing.assert_array_equal(ds.target, np.arange(400) // 10)
    assert ds.data.min() == 0.0 and ds.data.max() == 1.0
    assert len(ds.target_names) == 40


# ----------------------------------------------------------------------------- IDX files
def _idx_bytes(arr: np.ndarray) -> bytes:
    """Write IDX by the published spec: 0, 0, type 0x08 (ubyte), ndim, big-endian sizes."""
    head = bytes([0, 0, 0x08, arr.ndim]) + b"".join(struct.pack(">I", s) for s in arr.shape)
    return head + arr.astype(np.uint8).tobytes()


def _write_idx_set(folder, rng, n_train=3, n_test=2, gz=True, dotted=False):
    folder.mkdir(parents=True, exist_ok=True)
    sets = {}
    for split, n in (("train", n_train), ("t10k", n_test)):
        x = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        y = rng.integers(0, 10, n, dtype=np.uint8)
        for what, arr, code in (("images", x, "idx3"), ("labels", y, "idx1")):
            name = f"{split}-{what}.{code}-ubyte" if dotted else f"{split}-{what}-{code}-ubyte"
            data = _idx_bytes(arr)
            if gz:
                (folder / (name + ".gz")).write_bytes(gzip.compress(data))
            else:
                (folder / name).write_bytes(data)
        sets[split] = (x, y)
    return sets


@pytest.mark.parametrize("sub,gz,dotted", [("mnist", True, False), ("", False, False),
                                           ("mnist", False, True)])
def test_mnist_from_idx(tmp_path, sub, gz, dotted):
    sets = _write_idx_set(tmp_path / sub if sub else tmp_path, np.random.default_rng(0), gz=gz,
                          dotted=dotted)
    ds = load_dataset("mnist", data_home=tmp_path, download_if_missing=False)
    (xtr, ytr), (xte, yte) = sets["train"], sets["t10k"]
    np.testing.assert_array_equal(ds.images, xtr.astype(np.float32) / 255)
    np.testing.assert_array_equal(ds.data, xtr.reshape(3, 784).astype(np.float32) / 255)
    np.testing.assert_array_equal(ds.target, ytr)
    np.testing.assert_array_equal(ds.data_test, xte.reshape(2, 784).astype(np.float32) / 255)
    np.testing.assert_array_equal(ds.target_test, yte)
    assert ds.target.dtype == np.int64


def test_fashion_from_idx_subfolder_only(tmp_path):
    rng = np.random.default_rng(1)
    _write_idx_set(tmp_path, rng)  # top-level IDX files are read as MNIST, never as Fashion
    with pytest.raises(DatasetNotFoundError):
        load_dataset("fashion_mnist", data_home=tmp_path, download_if_missing=False)
    sets = _write_idx_set(tmp_path / "fashion_mnist", rng, n_train=4, n_test=1)
    ds = load_dataset("fashion-mnist", data_home=tmp_path, download_if_missing=False)
    np.testing.assert_array_equal(_u8(ds.images), sets["train"][0])
    np.testing.assert_array_equal(ds.target_test, sets["t10k"][1])
    assert ds.name == "fashion_mnist" and ds.target_names[9] == "Ankle boot"


def test_read_idx_other_types_and_errors(tmp_path):
    a = np.arange(6, dtype=">i4").reshape(2, 3)
    p = tmp_path / "a-idx2-int"
    p.write_bytes(bytes([0, 0, 0x0C, 2]) + struct.pack(">II", 2, 3) + a.tobytes())
    out = read_idx(p)
    np.testing.assert_array_equal(out, np.arange(6).reshape(2, 3))
    assert out.dtype.isnative
    bad = tmp_path / "bad"
    bad.write_bytes(b"\x01\x02\x08\x01" + b"\x00" * 8)
    with pytest.raises(ValueError, match="not an IDX file"):
        read_idx(bad)
    short = tmp_path / "short"
    short.write_bytes(_idx_bytes(np.zeros((3, 28, 28), np.uint8))[:-5])
    with pytest.raises(ValueError, match="truncated"):
        read_idx(short)
    gz = tmp_path / "x.gz"
    gz.write_bytes(b"not gzip at all")
    with pytest.raises(ValueError, match="could not read IDX"):
        read_idx(gz)


# ----------------------------------------------------------------------------- .mat files
def test_frey_from_mat(tmp_path):
    images = np.random.default_rng(2).integers(0, 256, (5, 28, 20), dtype=np.uint8)
    # Roweis' layout: one frame per column, 28 rows of 20 pixels each, row after row
    ff = np.stack([im.ravel() for im in images], axis=1)
    scipy.io.savemat(tmp_path / "frey_rawface.mat", {"ff": ff})
    ds = load_dataset("frey_faces", data_home=tmp_path, download_if_missing=False)
    np.testing.assert_array_equal(ds.images, images.astype(np.float32) / 255)
    assert ds.data.shape == (5, 560) and ds.target is None


def test_olivetti_from_mat(tmp_path):
    rng = np.random.default_rng(3)
    images = rng.integers(3, 200, (20, 64, 64), dtype=np.uint8)
    # MATLAB keeps each 64x64 image column-major in one column of 'faces'
    faces = np.stack([im.ravel(order="F") for im in images], axis=1)
    scipy.io.savemat(tmp_path / "olivettifaces.mat", {"faces": faces})
    ds = load_dataset("olivetti_faces", data_home=tmp_path, download_if_missing=False)
    lo, hi = images.min(), images.max()
    expected = (images.astype(np.float32) - lo) / np.float32(hi - lo)
    np.testing.assert_allclose(ds.images, expected, rtol=0, atol=1e-7)
    assert ds.data.min() == 0 and ds.data.max() == 1
    np.testing.assert_array_equal(ds.target, np.arange(20) // 10)


def test_mat_with_wrong_variable(tmp_path):
    scipy.io.savemat(tmp_path / "frey_rawface.mat", {"faces": np.zeros((560, 2))})
    with pytest.raises(ValueError, match="no variable 'ff'"):
        load_dataset("frey_faces", data_home=tmp_path, download_if_missing=False)


# ----------------------------------------------------------------------------- bad .npz files
def test_npz_missing_keys(tmp_path):
    np.savez(tmp_path / "mnist.npz", x_train=np.zeros((2, 28, 28), np.uint8))
    with pytest.raises(ValueError, match=r"mnist\.npz lacks the key\(s\).*y_train"):
        load_dataset("mnist", data_home=tmp_path)


def test_npz_corrupt_and_pickled(tmp_path):
    (tmp_path / "frey_faces.npz").write_bytes(b"PK\x03\x04 garbage")
    with pytest.raises(ValueError, match="frey_faces.npz"):
        load_dataset("frey_faces", data_home=tmp_path)
    np.savez(tmp_path / "frey_faces.npz", images=np.array([object()], dtype=object))
    with pytest.raises(ValueError, match="frey_faces.npz"):
        load_dataset("frey_faces", data_home=tmp_path)


def test_npz_wrong_image_shape(tmp_path):
    np.savez(tmp_path / "olivetti_faces.npz", images=np.zeros((4, 32, 32), np.uint8))
    with pytest.raises(ValueError, match=r"\(n, 64, 64\)"):
        load_dataset("olivetti_faces", data_home=tmp_path)


# ----------------------------------------------------------------------------- offline
@pytest.fixture
def offline(monkeypatch):
    """Every network route raises like a machine without internet; calls are recorded."""
    calls = []

    def fail(name):
        def f(*args, **kwargs):
            calls.append(name)
            raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")
        return f

    for name in ("fetch_openml", "fetch_lfw_people", "fetch_olivetti_faces"):
        monkeypatch.setattr(sklearn.datasets, name, fail(name))
    monkeypatch.setattr(urllib.request, "urlopen", fail("urlopen"))
    return calls


EXPECTED_FILE = {"mnist": "train-images-idx3-ubyte", "fashion_mnist": "fashion_mnist_train.npz",
                 "lfw_people": "lfw_people_min60.npz", "frey_faces": "frey_rawface.mat",
                 "olivetti_faces": "olivettifaces.mat"}


@pytest.mark.parametrize("name", REMOTE)
def test_offline_raises_dataset_not_found(tmp_path, offline, name):
    folder = tmp_path / "data"
    with pytest.raises(DatasetNotFoundError) as info:
        load_dataset(name, data_home=folder)
    exc = info.value
    assert type(exc) is DatasetNotFoundError and not isinstance(exc, urllib.error.URLError)
    msg = str(exc)
    assert str(folder) in msg and name in msg and EXPECTED_FILE[name] in msg
    assert "LATENTSPACE_DATA" in msg and "URLError" in msg
    assert offline  # the download was attempted
    leftovers = [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []
    assert leftovers == []


def test_offline_frey_message_gives_download_command(tmp_path, offline):
    with pytest.raises(DatasetNotFoundError, match=r"curl -o .*frey_rawface\.mat https://cs\.nyu"):
        load_dataset("frey_faces", data_home=tmp_path)


@pytest.mark.parametrize("name", REMOTE)
def test_no_download_when_not_allowed(tmp_path, offline, name):
    with pytest.raises(DatasetNotFoundError, match="download_if_missing=False") as info:
        load_dataset(name, data_home=tmp_path, download_if_missing=False)
    assert str(tmp_path) in str(info.value)
    assert offline == []


# ----------------------------------------------------------------------------- downloads
def test_openml_download_is_split_and_kept(tmp_path, monkeypatch):
    calls = []
    X = np.zeros((70000, 784), dtype=np.uint8)
    X[:, 0] = np.arange(70000) % 251  # row identity, to check the 60000/10000 split
    y = (np.arange(70000) % 10).astype(str)

    def fake(name, **kw):
        calls.append((name, kw))
        return Bunch(data=X.astype(np.float64), target=y)

    monkeypatch.setattr(sklearn.datasets, "fetch_openml", fake)
    ds = load_dataset("mnist", data_home=tmp_path)
    assert calls[0][0] == "mnist_784" and calls[0][1]["data_home"] == str(tmp_path)
    np.testing.assert_array_equal(_u8(ds.data[:, 0]), np.arange(60000) % 251)
    np.testing.assert_array_equal(_u8(ds.data_test[:, 0]), np.arange(60000, 70000) % 251)
    np.testing.assert_array_equal(ds.target_test, np.arange(60000, 70000) % 10)
    assert (tmp_path / "mnist.npz").is_file()
    again = load_dataset("mnist", data_home=tmp_path)  # now a plain file read
    assert len(calls) == 1
    np.testing.assert_array_equal(again.data_test, ds.data_test)
    np.testing.assert_array_equal(again.target, ds.target)


def test_sklearn_fetchers_download_is_kept(tmp_path, monkeypatch):
    rng = np.random.default_rng(4)
    lfw = Bunch(images=rng.random((5, 62, 47), dtype=np.float32), target=np.array([0, 1, 1, 0, 1]),
                target_names=np.array(["A B", "C D"]))
    oli = Bunch(images=rng.random((10, 64, 64), dtype=np.float32), target=np.zeros(10, int))
    calls = []
    monkeypatch.setattr(sklearn.datasets, "fetch_lfw_people",
                        lambda **kw: calls.append(kw) or lfw)
    monkeypatch.setattr(sklearn.datasets, "fetch_olivetti_faces",
                        lambda **kw: calls.append(kw) or oli)
    for name, ref in (("lfw_people", lfw), ("olivetti_faces", oli)):
        for _ in range(2):
            ds = load_dataset(name, data_home=tmp_path)
            np.testing.assert_array_equal(ds.images, ref.images)
            np.testing.assert_array_equal(ds.target, ref.target)
    assert len(calls) == 2  # one download each, then the kept .npz
    assert calls[0]["min_faces_per_person"] == 60
    assert all(kw["data_home"] == str(tmp_path) for kw in calls)
    assert list(load_dataset("lfw", data_home=tmp_path).target_names) == ["A B", "C D"]


class _Response(io.BytesIO):
    pass


def test_frey_download(tmp_path, monkeypatch):
    images = np.random.default_rng(5).integers(0, 256, (4, 28, 20), dtype=np.uint8)
    buf = io.BytesIO()
    scipy.io.savemat(buf, {"ff": images.reshape(4, 560).T})
    urls = []
    monkeypatch.setattr(urllib.request, "urlopen",
                        lambda url, **kw: urls.append(url) or _Response(buf.getvalue()))
    folder = tmp_path / "new"
    ds = load_dataset("frey_faces", data_home=folder)
    assert urls == ["https://cs.nyu.edu/~roweis/data/frey_rawface.mat"]
    np.testing.assert_array_equal(_u8(ds.images), images)
    assert (folder / "frey_rawface.mat").is_file()
    load_dataset("frey_faces", data_home=folder)
    assert len(urls) == 1


def test_frey_download_of_an_error_page_is_not_kept(tmp_path, monkeypatch):
    monkeypatch.setattr(urllib.request, "urlopen",
                        lambda url, **kw: _Response(b"<html>503 Service Unavailable</html>"))
    with pytest.raises(DatasetNotFoundError, match="not a readable .mat|did not serve"):
        load_dataset("frey_faces", data_home=tmp_path)
    assert not (tmp_path / "frey_rawface.mat").exists()
