"""PPCAMixture on the command line: fit under its name and the ``mppca`` alias, the flags of
its hyperparameters, and the apply commands on the saved model."""

import numpy as np
import pytest

import latentspace
from latentspace import PPCAMixture
from latentspace.cli import main


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("mppca_cli")
    rng = np.random.RandomState(0)
    X = np.concatenate([rng.randn(80, 2) @ rng.randn(2, 6) + 10 * rng.randn(6)
                        + 0.1 * rng.randn(80, 6) for _ in range(3)])
    np.save(d / "X.npy", X)
    return d, X


def run(capsys, *argv):
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.mark.parametrize("name", ["ppcamixture", "mppca", "PPCAMixture"])
def test_fit_saves_the_model_a_direct_fit_gives(data, capsys, name):
    d, X = data
    out = d / f"{name}.safetensors"
    rc, _, err = run(capsys, "fit", name, d / "X.npy", "--n-components", 3, "--n-latent", 2,
                     "--reg-covar", "1e-5", "--seed", 0, "--out", out)
    assert rc == 0, err
    est = latentspace.load(out)
    assert type(est) is PPCAMixture and est.n_latent == 2 and est.reg_covar == 1e-5
    direct = PPCAMixture(3, n_latent=2, reg_covar=1e-5, random_state=0).fit(X)
    np.testing.assert_array_equal(est.components_, direct.components_)
    np.testing.assert_array_equal(est.noise_variance_, direct.noise_variance_)


def test_apply_commands(data, capsys):
    d, X = data
    model = d / "m.safetensors"
    assert run(capsys, "fit", "mppca", d / "X.npy", "--n-components", 3, "--n-latent", 2,
               "--seed", 0, "--out", model)[0] == 0
    est = latentspace.load(model)
    rc, _, _ = run(capsys, "transform", model, d / "X.npy", "--out", d / "Z.npy")
    assert rc == 0
    np.testing.assert_array_equal(np.load(d / "Z.npy"), est.transform(X))
    rc, _, _ = run(capsys, "predict", model, d / "X.npy", "--out", d / "y.npy")
    assert rc == 0
    np.testing.assert_array_equal(np.load(d / "y.npy"), est.predict(X))
    rc, out, _ = run(capsys, "score", model, d / "X.npy")
    assert rc == 0 and float(out.strip()) == est.score(X)
    rc, _, _ = run(capsys, "inverse-transform", model, d / "Z.npy", "--out", d / "Xh.npy")
    assert rc == 0
    np.testing.assert_array_equal(np.load(d / "Xh.npy"), est.inverse_transform(est.transform(X)))
    rc, _, _ = run(capsys, "sample", model, "-n", 20, "--seed", 1, "--out", d / "s.npy")
    assert rc == 0 and np.load(d / "s.npy").shape == (20, 6)


def test_fit_help_lists_it_and_its_parameters(capsys):
    rc, out, _ = run(capsys, "fit", "--help")
    assert rc == 0 and "ppcamixture (mppca)" in out.replace("\n", " ").replace("  ", " ")
    rc, out, _ = run(capsys, "fit", "mppca", "--help")
    assert rc == 0
    for flag in ("--n-components", "--n-latent", "--reg-covar", "--init-params", "--n-init",
                 "--max-iter", "--tol", "--seed"):
        assert flag in out


def test_bad_n_latent_is_a_data_or_usage_error(data, capsys):
    d, _ = data
    rc, _, err = run(capsys, "fit", "mppca", d / "X.npy", "--n-latent", 6,
                     "--out", d / "bad.safetensors")
    assert rc in (2, 3) and "n_latent=6" in err and "n_features=6" in err
