"""read_data / write_data: round trips per format, detection rules and errors."""

import importlib.util
import os

import numpy as np
import pandas as pd
import pytest
import torch

from latentspace.data import load_dataset, read_data, write_data

FORMATS = [".npy", ".npz", ".csv", ".parquet"]


@pytest.fixture
def X():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((7, 3)) * np.array([1e-12, 1.0, 1e12])
    X[0, 0] = 0.1  # not a dyadic fraction: any rounding on the way would show
    return X


@pytest.mark.parametrize("suffix", FORMATS)
def test_round_trip_float64(tmp_path, X, suffix):
    path = tmp_path / f"x{suffix}"
    write_data(path, X)
    Y, y = read_data(path)
    assert y is None and Y.dtype == np.float64 and Y.shape == X.shape
    np.testing.assert_array_equal(Y, X)  # bit-exact, CSV included
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]  # no temp file left


@pytest.mark.parametrize("suffix", [".npy", ".npz", ".parquet"])
def test_float32_stays_float32(tmp_path, X, suffix):
    X32 = X.astype(np.float32)
    write_data(tmp_path / f"x{suffix}", X32)
    Y, _ = read_data(tmp_path / f"x{suffix}")
    assert Y.dtype == np.float32
    np.testing.assert_array_equal(Y, X32)


def test_float32_csv_values_survive(tmp_path, X):
    X32 = X.astype(np.float32)
    write_data(tmp_path / "x.csv", X32)
    Y, _ = read_data(tmp_path / "x.csv")
    np.testing.assert_array_equal(Y.astype(np.float32), X32)


def test_write_torch_tensor_and_1d(tmp_path):
    write_data(tmp_path / "t.npy", torch.arange(6.0).reshape(3, 2))
    np.testing.assert_array_equal(read_data(tmp_path / "t.npy")[0], [[0, 1], [2, 3], [4, 5]])
    write_data(tmp_path / "v.csv", np.array([1.5, 2.5]))
    np.testing.assert_array_equal(read_data(tmp_path / "v.csv")[0], [[1.5], [2.5]])


def test_overwrite_replaces_file(tmp_path, X):
    path = tmp_path / "x.npy"
    write_data(path, X)
    write_data(path, X[:2])
    assert read_data(path)[0].shape == (2, 3)


def test_failed_write_keeps_previous_file(tmp_path, X, monkeypatch):
    path = tmp_path / "x.csv"
    write_data(path, X)
    before = path.read_bytes()

    def full_disk(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(OSError, match="No space"):
        write_data(path, X[:1] + 1)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["x.csv"]


# ----------------------------------------------------------------------------- .npy / .npz
def test_npz_key_rules(tmp_path):
    a, b = np.ones((4, 2)), np.zeros((4, 5))
    labels = np.arange(4)
    np.savez(tmp_path / "first.npz", a=a, b=b)
    X, y = read_data(tmp_path / "first.npz")
    np.testing.assert_array_equal(X, a)
    assert y is None
    np.savez(tmp_path / "named.npz", a=a, X=b, y=labels)
    X, y = read_data(tmp_path / "named.npz")
    np.testing.assert_array_equal(X, b)
    np.testing.assert_array_equal(y, labels)
    np.savez(tmp_path / "data.npz", meta=np.ones(3), data=a, target=labels[:3])
    X, y = read_data(tmp_path / "data.npz")
    np.testing.assert_array_equal(X, a)
    assert y is None  # three labels cannot label four rows


def test_images_are_flattened_and_ints_become_float(tmp_path):
    imgs = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    np.savez(tmp_path / "m.npz", x_train=imgs, y_train=np.array([7, 1], np.uint8))
    X, y = read_data(tmp_path / "m.npz")
    assert X.shape == (2, 12) and X.dtype == np.float64
    np.testing.assert_array_equal(X, imgs.reshape(2, 12))
    np.testing.assert_array_equal(y, [7, 1])


def test_npy_errors(tmp_path):
    np.save(tmp_path / "v.npy", np.arange(3.0))
    with pytest.raises(ValueError, match=r"shape \(3,\).*reshape"):
        read_data(tmp_path / "v.npy")
    np.save(tmp_path / "o.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="o.npy"):
        read_data(tmp_path / "o.npy")
    np.save(tmp_path / "s.npy", np.array([["a", "b"]]))
    with pytest.raises(ValueError, match="only numbers"):
        read_data(tmp_path / "s.npy")
    (tmp_path / "g.npz").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="g.npz"):
        read_data(tmp_path / "g.npz")
    np.savez(tmp_path / "e.npz")
    with pytest.raises(ValueError, match="empty"):
        read_data(tmp_path / "e.npz")


# ----------------------------------------------------------------------------- .csv
@pytest.mark.parametrize("sep", [",", ";", "\t"])
@pytest.mark.parametrize("header", [True, False])
def test_csv_header_and_delimiter_detection(tmp_path, sep, header):
    rows = [[1.5, -2.0, 3e-5], [4.0, 5.25, -6e7]]
    lines = ([sep.join(["a", "b c", "d"])] if header else []) + [
        sep.join(repr(v) for v in r) for r in rows]
    path = tmp_path / "d.csv"
    path.write_text("\n".join(lines) + "\n")
    X, y = read_data(path)
    oracle = np.loadtxt(path, delimiter=sep, skiprows=int(header), ndmin=2)
    np.testing.assert_array_equal(X, oracle)
    assert y is None


def test_csv_non_numeric_column(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("x,label\n1,cat\n2,dog\n")
    with pytest.raises(ValueError, match=r"\['label'\] are not numeric.*'cat'"):
        read_data(path)


def test_csv_empty(tmp_path):
    (tmp_path / "e.csv").write_text("")
    with pytest.raises(ValueError, match="empty"):
        read_data(tmp_path / "e.csv")


def test_csv_missing_values_become_nan(tmp_path):
    (tmp_path / "n.csv").write_text("a,b\n1,\n2,3\n")
    X, _ = read_data(tmp_path / "n.csv")
    assert np.isnan(X[0, 1]) and X[1, 1] == 3


# ----------------------------------------------------------------------------- .parquet
def test_parquet_non_numeric_and_bool(tmp_path):
    pytest.importorskip("pyarrow")
    pd.DataFrame({"a": [1.0, 2.0], "b": [True, False], "c": pd.array([3, None], dtype="Int64")}
                 ).to_parquet(tmp_path / "p.parquet")
    X, _ = read_data(tmp_path / "p.parquet")
    np.testing.assert_array_equal(X, [[1, 1, 3], [2, 0, np.nan]])
    pd.DataFrame({"a": [1.0], "s": ["x"]}).to_parquet(tmp_path / "s.parquet")
    with pytest.raises(ValueError, match="not numeric"):
        read_data(tmp_path / "s.parquet")


def test_parquet_without_pyarrow(tmp_path, monkeypatch, X):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "pyarrow" else real(name, *a))
    (tmp_path / "p.parquet").write_bytes(b"PAR1")
    with pytest.raises(ImportError, match=r"pip install 'latentspace\[parquet\]'"):
        read_data(tmp_path / "p.parquet")
    with pytest.raises(ImportError, match="pyarrow"):
        write_data(tmp_path / "q.parquet", X)
    assert not (tmp_path / "q.parquet").exists()


# ----------------------------------------------------------------------------- names and errors
def test_dataset_name(monkeypatch, tmp_path):
    monkeypatch.setenv("LATENTSPACE_DATA", str(tmp_path))
    X, y = read_data("digits")
    ref = load_dataset("digits")
    np.testing.assert_array_equal(X, ref.data)
    np.testing.assert_array_equal(y, ref.target)
    assert read_data("Digits")[0].shape == (1797, 64)


def test_dataset_name_uses_data_home(tmp_path):
    images = np.random.default_rng(1).integers(0, 256, (3, 28, 20), dtype=np.uint8)
    np.savez(tmp_path / "frey_faces.npz", images=images)
    X, y = read_data("frey_faces", data_home=tmp_path)
    np.testing.assert_array_equal(X, images.reshape(3, 560).astype(np.float32) / 255)
    assert y is None


def test_unknown_extension_and_missing_file(tmp_path):
    (tmp_path / "x.txt").write_text("1 2\n")
    with pytest.raises(ValueError, match=r"\.npy, \.npz, \.csv, \.parquet.*digits"):
        read_data(tmp_path / "x.txt")
    with pytest.raises(ValueError, match="dataset name"):
        read_data("not_a_dataset")
    with pytest.raises(FileNotFoundError, match="no data file at .*missing.csv"):
        read_data(tmp_path / "missing.csv")


def test_write_errors(tmp_path, X):
    with pytest.raises(ValueError, match="must end in"):
        write_data(tmp_path / "x.txt", X)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        write_data(tmp_path / "no" / "x.npy", X)
    with pytest.raises(ValueError, match=r"shape \(2, 2, 2\)"):
        write_data(tmp_path / "x.csv", np.zeros((2, 2, 2)))
    with pytest.raises(ValueError, match="only numeric"):
        write_data(tmp_path / "x.npy", np.array(["a"]))
    assert list(tmp_path.iterdir()) == []
