"""The interactive figures' specs: what the page embeds is the models' own parameters, and the
computations they describe are the models' own (closed forms, ``inverse_transform``).

The page's JavaScript itself is driven in ``test_browser.py``; here a numpy reference of the
embedded decoder checks the spec's meaning against ``VAE.inverse_transform``.
"""

import copy
import json
import re

import numpy as np
import pytest
import torch

from latentspace.decomposition import PCA
from latentspace.neural import VAE
from latentspace.report import _interactive as live
from latentspace.report._html import RenderedChapter, render_html

pytestmark = pytest.mark.filterwarnings(
    "ignore:.*stopped at max_epochs=.*:sklearn.exceptions.ConvergenceWarning")

U32 = 2.0 ** -24  # unit roundoff of float32


def _vae(X, **kw):
    params = dict(hidden_sizes=(12, 6), max_epochs=2, batch_size=32, random_state=0)
    params.update(kw)
    return VAE(2, **params).fit(X)


@pytest.fixture(scope="module")
def unit_data():
    return np.random.RandomState(0).uniform(size=(80, 12))


# ----------------------------------------------------------------------------- arrays
@pytest.mark.parametrize("dtype, values", [
    ("float32", np.random.RandomState(1).standard_normal((3, 5)).astype(np.float32)),
    ("float32", np.array([0.0, -0.0, 1e-38, 3.4e38, np.float32(1 / 3)], dtype=np.float32)),
    ("uint8", np.arange(256, dtype=np.uint8).reshape(16, 16)),
])
def test_encoded_arrays_decode_back_exactly(dtype, values):
    d = live.encode_array(values, dtype)
    assert json.loads(json.dumps(d)) == d and d["shape"] == list(values.shape)
    back = live.decode_array(d)
    assert back.dtype == values.dtype and np.array_equal(back, values)
    assert np.array_equal(np.signbit(back), np.signbit(values))
    # little-endian bytes whatever the machine
    assert live.decode_array(d).tobytes() == values.astype("<" + values.dtype.str[1:]).tobytes()


def test_encoding_refuses_non_finite_and_unknown_dtypes():
    with pytest.raises(ValueError, match="NaN or infinity"):
        live.encode_array(np.array([1.0, np.inf]))
    with pytest.raises(ValueError, match="dtype must be one of"):
        live.encode_array(np.zeros(2), "float16")


def test_gray_levels_are_matplotlibs_gray_map():
    from matplotlib import colormaps

    lut = live.gray_levels()
    v = np.linspace(0.0, 1.0, 20001)
    idx = np.minimum(255, np.floor(v * 256)).astype(int)  # the page's indexing
    assert np.array_equal(lut[idx], colormaps["gray"](v, bytes=True)[:, 0])
    assert lut[0] == 0 and lut[255] == 255 and np.all(np.diff(lut.astype(int)) >= 0)


# ----------------------------------------------------------------------------- PPCA
def test_ppca_mean_of_a_one_dimensional_model_has_the_closed_form():
    # four points (±s, ±t), s > t: λ1 = 4s²/3, λ2 = 4t²/3 (n − 1 = 3), one component kept,
    # so σ² = λ2 and E[x|z] = μ + z (λ1 − λ2)^½ e1, up to the component's sign
    s, t, shift = 3.0, 1.0, np.array([0.25, -0.5])
    X = np.array([[s, t], [s, -t], [-s, t], [-s, -t]]) + shift
    pca = PCA(1).fit(X)
    z = np.array([[0.0], [1.0], [-2.5]])
    sign = np.sign(pca.components_[0, 0])
    expected = shift + z * sign * np.sqrt(4 * (s * s - t * t) / 3) * np.array([1.0, 0.0])
    np.testing.assert_allclose(live.ppca_mean(pca, z), expected, rtol=0, atol=1e-12)
    spec = live.ppca_sliders(pca, (1, 2)).spec
    np.testing.assert_allclose(live.decode_array(spec["scale"]),
                               [np.sqrt(4 * (s * s - t * t) / 3)], rtol=2 * U32)


def test_ppca_spec_is_the_models_parameters_and_w_gives_its_covariance():
    X = np.random.RandomState(2).standard_normal((60, 6)) @ np.diag([3, 2, 1.5, 1, .5, .2])
    pca = PCA(4).fit(X)
    spec = live.ppca_sliders(pca, (2, 3), n_sliders=10).spec  # clipped to the 4 components
    V, a, mu = (live.decode_array(spec[k]) for k in ("components", "scale", "mean"))
    assert V.dtype == np.float32 and V.shape == (4, 6)
    assert np.array_equal(V, pca.components_.astype(np.float32))
    assert np.array_equal(mu, pca.mean_.astype(np.float32))
    # W Wᵀ + σ² I is the model's covariance (PPCA, Tipping & Bishop): an oracle for W
    W = V.T.astype(np.float64) * a
    C = W @ W.T + pca.noise_variance_ * np.eye(6)
    np.testing.assert_allclose(C, pca.get_covariance(), rtol=0,
                               atol=8 * U32 * np.abs(pca.get_covariance()).max())
    assert spec["span"] == 3.0 and spec["shape"] == [2, 3]
    # the first sliders only: a PPCA with 5 sliders keeps the first 5 rows
    assert live.decode_array(live.ppca_sliders(PCA(6).fit(X), (2, 3)).spec["components"]).shape \
        == (5, 6)


def test_ppca_sliders_check_their_inputs():
    pca = PCA(2).fit(np.random.RandomState(0).standard_normal((20, 4)))
    with pytest.raises(ValueError, match="does not match"):
        live.ppca_sliders(pca, (3, 3))
    with pytest.raises(ValueError, match="whiten=False"):
        live.ppca_sliders(PCA(2, whiten=True).fit(np.eye(5)), (1, 5))


# ----------------------------------------------------------------------------- VAE
_ACTS = {"relu": lambda x, l: np.maximum(x, 0), "tanh": lambda x, l: np.tanh(x),
         "sigmoid": lambda x, l: 1 / (1 + np.exp(-x)), "identity": lambda x, l: x,
         "leaky_relu": lambda x, l: np.where(x > 0, x, l["slope"] * x),
         "elu": lambda x, l: np.where(x > 0, x, l["alpha"] * np.expm1(np.minimum(x, 0))),
         "softplus": lambda x, l: np.where(l["beta"] * x > l["threshold"], x,
                                           np.log1p(np.exp(np.minimum(l["beta"] * x, 50)))
                                           / l["beta"])}


def _numpy_decoder(spec, Z):
    """What the page computes, written independently in numpy (float64)."""
    h = np.asarray(Z, dtype=np.float64)
    for layer in spec["layers"]:
        if layer["op"] == "linear":
            W, b = live.decode_array(layer["weight"]), live.decode_array(layer["bias"])
            h = h @ W.T.astype(np.float64) + b
        else:
            h = _ACTS[layer["op"]](h, layer)
    if spec["rescale"]:
        h = h * spec["scale"] + live.decode_array(spec["shift"])
    return 1 / (1 + np.exp(-h)) if spec["sigmoid"] else h


@pytest.mark.parametrize("kw", [
    dict(),  # Bernoulli decoder: sigmoid mean, logits not rescaled
    dict(likelihood="gaussian", activation="tanh"),  # real values: out · s + m
    dict(activation="leaky_relu"), dict(activation="elu"), dict(activation="softplus"),
])
def test_decoder_spec_is_the_models_decoder(unit_data, kw):
    vae = _vae(unit_data, **kw)
    spec = live.decoder_layers(vae)
    linear = [m for m in vae.network_.decoder.children() if isinstance(m, torch.nn.Linear)]
    mine = [l for l in spec["layers"] if l["op"] == "linear"]
    assert len(mine) == len(linear) == 3
    for l, m in zip(mine, linear):
        assert np.array_equal(live.decode_array(l["weight"]), m.weight.detach().numpy())
        assert np.array_equal(live.decode_array(l["bias"]), m.bias.detach().numpy())
    assert np.array_equal(live.decode_array(spec["shift"]), vae.network_.shift.numpy())
    assert live.decoder_bytes(vae) == sum(live.decode_array(l[k]).nbytes
                                          for l in mine for k in ("weight", "bias"))
    assert spec["rescale"] == (kw.get("likelihood") == "gaussian")
    Z = np.random.RandomState(3).standard_normal((7, 2)) * 2
    # float64 arithmetic on the float32 weights against the model's float64 copy: only the
    # order of the sums differs (≈ n ε64); against its own float32 decoding, a few ε32 per layer
    net64 = copy.deepcopy(vae.network_).double()
    with torch.no_grad():
        out = net64.decode(torch.as_tensor(Z))
        ref64 = (torch.sigmoid(out) if vae.likelihood == "bernoulli" else out).numpy()
    ours = _numpy_decoder(spec, Z)
    np.testing.assert_allclose(ours, ref64, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ours, vae.inverse_transform(Z), rtol=1e-5, atol=1e-5)


@pytest.mark.filterwarnings("ignore:posterior collapse:UserWarning")
def test_convolutional_decoders_are_refused_with_the_fix():
    X = np.random.RandomState(0).uniform(size=(8, 784))
    vae = VAE(2, network="conv", max_epochs=1, batch_size=8, random_state=0).fit(X)
    with pytest.raises(ValueError, match="architecture='mlp'|MLP decoders"):
        live.decoder_layers(vae)


def test_latent_plane_and_interpolation_specs(unit_data):
    vae = _vae(unit_data)
    y = np.arange(len(unit_data)) % 3
    plane = live.latent_plane(vae, unit_data, y, (3, 4), target_names=["a", "b", "c"],
                              max_points=50, random_state=0)
    P = live.decode_array(plane.spec["points"])
    assert P.shape == (50, 2) and len(plane.spec["labels"]) == 50
    rows = np.sort(np.random.RandomState(0).choice(len(unit_data), 50, replace=False))
    assert np.array_equal(P, vae.transform(unit_data[rows]).astype(np.float32))
    assert [plane.spec["names"][c] for c in plane.spec["labels"]] == \
        [["a", "b", "c"][c] for c in y[rows]]
    lo1, hi1, lo2, hi2 = plane.spec["extent"]
    assert lo1 < -3 and hi1 > 3 and lo2 < -3 and hi2 > 3  # the prior's ±3 at least
    assert plane.spec["decoder"] == "@vae" and set(plane.blobs) == {"vae"}

    strip = live.interpolation(vae, unit_data[:20], (3, 4), n_frames=6, pool=5)
    codes, images = (live.decode_array(strip.spec[k]) for k in ("codes", "images"))
    assert codes.shape == (5, 2) and strip.spec["n_frames"] == 6
    assert np.array_equal(images, unit_data[:5].astype(np.float32))
    assert np.array_equal(codes, vae.transform(unit_data[:5]).astype(np.float32))
    assert strip.blobs == plane.blobs  # one decoder for both: the page embeds it once
    # the strip's ends decode the two posterior means
    frames = live.interpolation_frames(vae, codes[1], codes[4], 6)
    np.testing.assert_allclose(frames[[0, -1]], vae.inverse_transform(codes[[1, 4]]),
                               rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="at least 2"):
        live.interpolation(vae, unit_data[:1], (3, 4))
    with pytest.raises(ValueError, match="latent_dim=2"):
        live.latent_plane(VAE(3, hidden_sizes=(4,), max_epochs=1, random_state=0)
                          .fit(unit_data), unit_data, None, (3, 4))


def test_interpolation_figure_is_a_strip_of_frames(unit_data):
    vae = _vae(unit_data)
    fig = live.interpolation_figure(vae, unit_data, (3, 4), n_frames=5, pair=(2, 3))
    axes = [ax for ax in fig.figure.axes if ax.get_visible()]
    assert len(axes) == 7 and fig.caption and fig.alt
    Z = vae.transform(unit_data[[2, 3]])
    frames = live.interpolation_frames(vae, Z[0], Z[1], 5)
    for ax, x in zip(axes, [unit_data[2], *frames, unit_data[3]]):
        assert np.allclose(ax.images[0].get_array(), np.clip(x, 0, 1).reshape(3, 4))
        assert ax.images[0].get_clim() == (0.0, 1.0)
    from matplotlib import pyplot as plt

    plt.close(fig.figure)


# ----------------------------------------------------------------------------- the page
def _page(widgets_by_chapter):
    chapters = [RenderedChapter(key=f"c{i}", title=f"C{i}", intro="", formula="", widgets=ws)
                for i, ws in enumerate(widgets_by_chapter)]
    meta = dict(dataset="d", n_samples=1, n_features=1, image_shape=[1, 1], date="now",
                library_version="0", total_seconds=1.0, device="cpu", quick=True)
    return render_html(meta, chapters)


def test_page_embeds_specs_blobs_once_and_a_noscript_note(unit_data):
    vae = _vae(unit_data)
    plane = live.latent_plane(vae, unit_data, None, (3, 4))
    strip = live.interpolation(vae, unit_data, (3, 4))
    strip.caption = "a </script><b> caption"  # text is escaped, and cannot end a script
    page = _page([[plane], [strip]])
    assert page.count('id="ls-blob-vae"') == 1 and page.count("<noscript>") == 2
    assert page.count('<div class="widget-body"></div>') == 2
    specs = re.findall(r'<script type="application/json" class="widget-spec">(.*?)</script>',
                       page, re.S)
    assert [json.loads(s) for s in specs] == [plane.spec, strip.spec]
    blob = re.search(r'<script type="application/json" id="ls-blob-vae">(.*?)</script>', page,
                     re.S).group(1)
    assert json.loads(blob) == plane.blobs["vae"]
    assert "a &lt;/script&gt;&lt;b&gt; caption" in page
    assert page.count("<script>") == 1 and json.dumps(live.gray_levels().tolist()) in page
    # two different models under one name would draw the wrong one: refused
    other = live.interpolation(_vae(unit_data, random_state=1), unit_data, (3, 4))
    with pytest.raises(ValueError, match="blob name 'vae'"):
        _page([[plane, other]])
    assert "<script" not in _page([[]])  # no widget, no script


# ----------------------------------------------------------------------------- the tour's models
def test_tour_page_embeds_the_tour_models(quick_digits_tour, quick_digits_models):
    out, summary = quick_digits_tour
    page = (out / "index.html").read_text(encoding="utf-8")
    texts = {m.group(1): m.group(2) for m in re.finditer(
        r'data-kind="([a-z-]+)"><h3>[^<]*</h3><script type="application/json" '
        r'class="widget-spec">(.*?)</script>', page, re.S)}
    specs = {kind: json.loads(text) for kind, text in texts.items()}
    assert set(specs) == {"ppca-sliders", "latent-plane", "interpolation"}
    ppca = quick_digits_models.get("ppca", quick_digits_models["pca"])
    V = live.decode_array(specs["ppca-sliders"]["components"])
    assert np.array_equal(V, ppca.components_[:5].astype(np.float32))
    vae = quick_digits_models["vae"]
    blob = json.loads(re.search(r'id="ls-blob-vae">(.*?)</script>', page, re.S).group(1))
    assert blob == live.decoder_layers(vae)
    listed = [w for key in ("pca", "vae") for w in summary["chapters"][key]["widgets"]]
    assert [w["kind"] for w in listed] == ["ppca-sliders", "latent-plane", "interpolation"]
    blob_text = re.search(r'id="ls-blob-vae">(.*?)</script>', page, re.S).group(1)
    for w in listed:  # the sizes summary.json states are those of the page
        assert w["bytes"] == len(texts[w["kind"]].encode("utf-8"))
        assert w["shared_bytes"] == ({} if w["kind"] == "ppca-sliders"
                                     else {"vae": len(blob_text.encode("utf-8"))})
