"""Exit codes of every subcommand against bad options, files and data.

The table (RELIABILITY and ``latentspace.cli._errors``): 0 ok, 2 usage, 3 data, 4 model file,
5 numerical failure, 130 interrupted; one line on stderr, a traceback only with ``--debug``.
Most cases run in-process through ``main(argv)``; a few as real subprocesses.
"""

import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import latentspace
from latentspace.cli import main
from latentspace.mixture import GaussianMixture
from latentspace.neural import VAE, Autoencoder

SRC = Path(latentspace.__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _no_huge_network(no_huge_network):
    """Every test here runs with the shared guard against allocating a huge network."""


@pytest.fixture(scope="module")
def d(tmp_path_factory):
    d = tmp_path_factory.mktemp("codes")
    X = np.random.default_rng(0).uniform(size=(30, 4))
    np.save(d / "X.npy", X)
    bad = X.copy()
    bad[2, 1] = np.nan
    np.save(d / "nan.npy", bad)
    np.save(d / "huge.npy", X * 1e150)  # beyond float32
    np.save(d / "e30.npy", X * 1e30)  # within float32, squared errors overflow it
    np.save(d / "Z.npy", np.zeros((3, 2)))
    (d / "empty.npy").write_bytes(b"")
    (d / "empty.csv").write_text("")
    (d / "folder.npy").mkdir()
    (d / "garbage.safetensors").write_bytes(b"not a model" * 8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        Autoencoder(max_epochs=2, random_state=0).fit(X).save(d / "ae.safetensors")
        VAE(max_epochs=2, hidden_sizes=(4,), random_state=0).fit(X).save(d / "vae.safetensors")
    GaussianMixture(2, random_state=0).fit(X).save(d / "gmm.safetensors")
    return d


def run(capsys, d, cmd):
    argv = [str(d / a) if "." in a and not a.startswith("-") else a for a in cmd.split()]
    rc = main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


def one_line(err):
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("latentspace: error: "), err
    assert "Traceback" not in err
    return lines[0]


CASES = [
    # --- usage (2): options, hyperparameters, memory, choices
    ("fit ae X.npy --out m.safetensors --hidden-sizes x,y", 2, "hidden_sizes"),
    ("fit ae X.npy --out m.safetensors --hidden-sizes 0", 2, "hidden_sizes"),
    ("fit ae X.npy --out m.safetensors --hidden-sizes 4,-2", 2, "hidden_sizes"),
    ("fit vae X.npy --out m.safetensors --hidden-sizes a", 2, "hidden_sizes"),
    ("fit gan X.npy --out m.safetensors --generator-sizes 3,x", 2, "generator_sizes"),
    ("fit ae X.npy --out m.safetensors --latent-dim 1000000000", 2, "needs about"),
    ("fit ae X.npy --out m.safetensors --latent-dim 0", 2, "latent_dim"),
    ("fit ae X.npy --out m.safetensors --max-epochs -1", 2, "max_epochs"),
    ("fit ae X.npy --out m.safetensors --learning-rate nan", 2, "learning_rate"),
    ("fit ae X.npy --out m.safetensors --learning-rate fast", 2, "--learning-rate"),
    ("fit ae X.npy --out m.safetensors --momentum 1", 2, "momentum"),
    ("fit ae X.npy --out m.safetensors --loss nope", 2, "loss"),
    ("fit ae X.npy --out m.safetensors --seed x", 2, "--seed"),
    ("fit ae X.npy --out m.safetensors --threads 0", 2, "--threads"),
    ("fit nope X.npy --out m.safetensors", 2, "unknown model"),
    ("fit ae X.npy --out folder.npy", 2, "folder"),
    ("sample gmm.safetensors -n 1000000000000 --out s.npy", 2, "needs about"),
    ("sample vae.safetensors -n 1000000000000 --out s.npy", 2, "needs about"),
    ("sample gmm.safetensors -n -5 --out s.npy", 2, "at least 1"),
    ("sample gmm.safetensors -n 0 --out s.npy", 2, "at least 1"),
    ("sample gmm.safetensors -n many --out s.npy", 2, "-n"),
    ("sample ae.safetensors -n 3 --out s.npy", 2, "no sample()"),
    ("sample gmm.safetensors -n 3 --out s.txt", 2, "--out"),
    ("transform gmm.safetensors X.npy --out z.npy", 2, "no transform()"),
    ("predict ae.safetensors X.npy --out p.npy", 2, "no predict()"),
    ("score ae.safetensors X.npy --n-importance 5", 2, "only VAE"),
    ("score vae.safetensors X.npy --n-importance 0", 2, "at least 1"),
    ("select-k kmeans X.npy --ks 2-3 --out c.png --criterion nope", 2, "--criterion"),
    ("select-k kmeans X.npy --ks 0-3 --out c.png", 2, "--ks"),
    ("select-k gmm X.npy --ks 2-3 --out c.png --criterion heldout --cv 1", 2, "--cv"),
    ("info", 2, "MODEL_FILE"),
    # hyperparameters a model rejects inside fit, after looking at the data, are usage too
    ("fit gmm X.npy --out m.safetensors --n-components 2 --weights-init=bogus", 2,
     "weights_init"),
    ("fit gmm X.npy --out m.safetensors --n-components 2 --weights-init=nan", 2,
     "weights_init"),
    ("fit gmm X.npy --out m.safetensors --n-components 2 --weights-init=-1", 2,
     "weights_init"),
    ("fit gmm X.npy --out m.safetensors --n-components 2 --weights-init=", 2, "weights_init"),
    ("fit gmm X.npy --out m.safetensors --n-components 2 --means-init=bogus", 2, "means_init"),
    ("fit gmm X.npy --out m.safetensors --n-components 2 --means-init=nan", 2, "means_init"),
    ("fit gmm X.npy --out m.safetensors --n-components 2 --precisions-init=bogus", 2,
     "precisions_init"),
    ("fit gmm X.npy --out m.safetensors --n-components 2 --precisions-init=1e999", 2,
     "precisions_init"),
    ("fit gan X.npy --out m.safetensors --generator-sizes 4 --discriminator-sizes 4 "
     "--max-epochs 1 --reference-modes=bogus", 2, "reference_modes"),
    ("fit gan X.npy --out m.safetensors --generator-sizes 4 --discriminator-sizes 4 "
     "--max-epochs 1 --reference-std=-1", 2, "reference"),
    ("fit ae X.npy --out m.safetensors --max-epochs 1 --checkpoint-path=", 2,
     "checkpoint_path"),
    ("fit vae X.npy --out m.safetensors --max-epochs 1 --checkpoint-path=" + "x" * 5000, 2,
     "checkpoint_path"),
    # --- data (3)
    ("fit ae nan.npy --out m.safetensors", 3, "NaN"),
    ("fit ae huge.npy --out m.safetensors", 3, "rescale"),
    ("fit vae empty.npy --out m.safetensors", 3, "empty.npy"),
    ("fit ae empty.csv --out m.safetensors", 3, "empty.csv"),
    ("fit ae folder.npy --out m.safetensors", 3, "folder.npy"),
    ("fit ae missing.npy --out m.safetensors", 3, "missing.npy"),
    ("transform ae.safetensors huge.npy --out z.npy", 3, "rescale"),
    ("transform ae.safetensors nan.npy --out z.npy", 3, "NaN"),
    ("transform ae.safetensors Z.npy --out z.npy", 3, "features"),
    ("score vae.safetensors huge.npy", 3, "rescale"),
    ("score gmm.safetensors missing.npy", 3, "missing.npy"),
    ("inverse-transform ae.safetensors X.npy --out r.npy", 3, "latent"),
    # --- model file (4)
    ("transform missing.safetensors X.npy --out z.npy", 4, "missing.safetensors"),
    ("transform folder.npy X.npy --out z.npy", 4, "folder"),
    ("transform garbage.safetensors X.npy --out z.npy", 4, "garbage.safetensors"),
    ("transform X.npy X.npy --out z.npy", 4, "X.npy"),
    ("score missing.safetensors X.npy", 4, "missing.safetensors"),
    ("sample folder.npy -n 3 --out s.npy", 4, "folder"),
    ("sample garbage.safetensors -n 3 --out s.npy", 4, "garbage.safetensors"),
    ("info missing.safetensors", 4, "no model file"),
    ("info folder.npy", 4, "folder"),
    ("info garbage.safetensors", 4, "garbage.safetensors"),
    # --- numerical failure (5)
    ("fit ae e30.npy --out m.safetensors --max-epochs 2", 5, "diverged"),
]


@pytest.mark.parametrize("cmd, code, needle", CASES, ids=[c[0] for c in CASES])
def test_exit_code_matches_the_table(d, capsys, cmd, code, needle):
    rc, _, err = run(capsys, d, cmd)
    assert rc == code, err
    assert needle in one_line(err)
    assert not (d / "m.safetensors").exists()


def test_momentum_zero_and_edges_fit(d, capsys):
    for cmd in ("fit ae X.npy --out ok.safetensors --momentum 0 --max-epochs 1",
                "fit gan X.npy --out ok.safetensors --momentum 0 --max-epochs 1 "
                "--generator-sizes 4 --discriminator-sizes 4"):
        rc, _, err = run(capsys, d, cmd)
        assert rc == 0, err


def test_a_missing_optional_package_says_what_to_install(d, capsys, tmp_path):
    """Reading data without its reader's package is a data error (3); writing an output
    format without its package is a usage error (2): another --out suffix fixes it."""
    import pandas as pd

    pytest.importorskip("pyarrow")
    pd.DataFrame(np.ones((4, 2)), columns=["a", "b"]).to_parquet(tmp_path / "X.parquet")
    mp = pytest.MonkeyPatch()
    mp.setitem(sys.modules, "pyarrow", None)
    try:
        for cmd, code in ((f"fit pca {tmp_path / 'X.parquet'} --out {tmp_path / 'm.safetensors'}",
                           3),
                          (f"transform {d / 'ae.safetensors'} {d / 'X.npy'} --out "
                           f"{tmp_path / 'z.parquet'}", 2)):
            rc = main(cmd.split())
            err = capsys.readouterr().err
            assert rc == code, err
            assert "pip install pyarrow" in one_line(err)
    finally:
        mp.undo()
    assert not (tmp_path / "z.parquet").exists()


def test_a_checkpoint_that_cannot_be_written_is_not_an_unexpected_error(d, capsys, tmp_path,
                                                                        monkeypatch):
    import errno

    from latentspace import _atomic

    def full_disk(path, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(_atomic, "atomic_write_bytes", full_disk)
    ckpt = tmp_path / "run.ckpt"
    rc = main(["fit", "ae", str(d / "X.npy"), "--out", str(tmp_path / "m.safetensors"),
               "--max-epochs", "1", f"--checkpoint-path={ckpt}"])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert str(ckpt) in one_line(err) and "checkpoint" in one_line(err)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_an_unreadable_data_file_exits_3(d, capsys, tmp_path):
    f = tmp_path / "locked.npy"
    np.save(f, np.ones((4, 2)))
    f.chmod(0)
    rc = main(["fit", "pca", str(f), "--out", str(tmp_path / "m.safetensors")])
    assert rc == 3 and "locked.npy" in one_line(capsys.readouterr().err)


def _cli(*args, env_extra=None):
    env = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "latentspace", *map(str, args)],
                          capture_output=True, text=True, env=env, timeout=300)


def test_real_processes_exit_with_the_table_codes(d):
    r = _cli("fit", "ae", d / "X.npy", "--out", d / "p.safetensors", "--hidden-sizes", "x,y")
    assert r.returncode == 2 and "hidden_sizes" in one_line(r.stderr)
    r = _cli("sample", d / "gmm.safetensors", "-n", "1000000000000", "--out", d / "s.npy")
    assert r.returncode == 2 and "needs about" in one_line(r.stderr)
    r = _cli("fit", "ae", d / "huge.npy", "--out", d / "p.safetensors")
    assert r.returncode == 3 and "rescale" in one_line(r.stderr)
    # --debug adds the traceback, the exit code stays
    r = _cli("--debug", "fit", "ae", d / "X.npy", "--out", d / "p.safetensors",
             "--hidden-sizes", "x,y")
    assert r.returncode == 2 and "Traceback" in r.stderr
    assert not (d / "p.safetensors").exists()
