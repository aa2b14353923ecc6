"""Interactive parts of the report, computed in the page by plain JavaScript.

A :class:`Widget` is a JSON-safe description of one interactive figure: what to draw and the
model weights it needs, as base64 little-endian float32 (:func:`encode_array`). The page embeds
each description in a ``<script type="application/json">`` block and one inline script
(:func:`script`) builds the controls and canvases; nothing is fetched and nothing is built.
The static figures stay in the page for readers without JavaScript and for printing.

Three widgets:

* :func:`ppca_sliders` — sliders for the first latent coordinates of probabilistic PCA,
  drawing the mean of x given z, ``W z + μ`` with ``W = Vᵀ (Λ − σ² I)^½`` (as
  :meth:`PCA.sample <latentspace.decomposition.PCA.sample>` defines it);
* :func:`latent_plane` — the posterior means of a 2-D VAE as dots; the pointer's position is
  a code z, decoded in the page exactly as :meth:`VAE.inverse_transform
  <latentspace.neural.VAE.inverse_transform>` does (the MLP decoder, the ``scale``/``shift``
  buffers of decoders of real values, the sigmoid mean of a Bernoulli decoder);
* :func:`interpolation` — decoded frames along the segment between two held-out images'
  posterior means, with a control to pick another pair.

Images are drawn as the static figures draw data: values clipped to [0, 1] and mapped through
matplotlib's ``gray`` colour map (0 black, 1 white), whose 256 levels the script embeds.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._chapter import Figure

__all__ = ["Widget", "encode_array", "decode_array", "gray_levels", "ppca_sliders",
           "ppca_mean", "decoder_layers", "decoder_bytes", "latent_plane", "interpolation",
           "interpolation_frames", "interpolation_figure", "script"]

N_SLIDERS = 5  # latent coordinates with a slider
SLIDER_SPAN = 3.0  # each slider covers ± this many prior standard deviations
SLIDER_STEP = 0.01
PLANE_POINTS = 2000  # posterior means drawn on the latent plane
N_FRAMES = 10  # frames of an interpolation strip, both ends included
PAIR_POOL = 16  # held-out images the interpolation can start or end at
# float32 decoder weights a page embeds at most: MNIST's 784-400-2 decoder takes 1.3 MB
# (1.7 MB as base64); the faces' (2914 or 4096 pixels) would take 4.7-6.6 MB
MAX_DECODER_BYTES = 2_000_000

_DTYPES = {"float32": "<f4", "uint8": "u1"}


@dataclass
class Widget:
    """One interactive figure of a chapter.

    Attributes
    ----------
    kind : {"ppca-sliders", "latent-plane", "interpolation"}
        Which part of the page's script draws it.
    title, caption : str
        Plain text shown above and below it.
    spec : dict
        JSON-safe parameters; arrays are :func:`encode_array` dicts, and a string value
        ``"@name"`` refers to ``blobs[name]``.
    blobs : dict of str to dict
        Large JSON-safe parts that several widgets share (a decoder's weights); the page
        embeds each name once.
    """

    kind: str
    title: str
    caption: str
    spec: dict
    blobs: dict = field(default_factory=dict)

    def embedded_bytes(self) -> int:
        """Size of this widget's own JSON in the page, in bytes (its shared blobs excluded)."""
        return len(_dumps(self.spec))

    def blob_bytes(self) -> dict:
        """Size of each shared blob's JSON in the page (embedded once per page), in bytes."""
        return {name: len(_dumps(blob)) for name, blob in self.blobs.items()}


def _dumps(obj) -> str:
    # "<" escaped so that no text inside can close the <script> element it lives in
    return json.dumps(obj, separators=(",", ":"), allow_nan=False).replace("<", "\\u003c")


# ----------------------------------------------------------------------------- arrays
def encode_array(a, dtype: str = "float32") -> dict:
    """An array as a JSON-safe dict of little-endian bytes in base64.

    Parameters
    ----------
    a : array-like of any shape
        Finite values.
    dtype : {"float32", "uint8"}

    Returns
    -------
    dict
        ``{"dtype", "shape", "b64"}``; row-major (C order).
    """
    if dtype not in _DTYPES:
        raise ValueError(f"dtype must be one of {sorted(_DTYPES)}, got {dtype!r}.")
    a = np.asarray(a)
    if a.dtype.kind in "fc" and not np.isfinite(a).all():
        raise ValueError("cannot embed an array with NaN or infinity; the model has "
                         "non-finite parameters (refit it).")
    raw = np.ascontiguousarray(a, dtype=_DTYPES[dtype]).tobytes()
    return {"dtype": dtype, "shape": [int(s) for s in a.shape],
            "b64": base64.b64encode(raw).decode("ascii")}


def decode_array(d: dict) -> np.ndarray:
    """Inverse of :func:`encode_array` -> ndarray of ``d["shape"]`` in its dtype."""
    raw = base64.b64decode(d["b64"], validate=True)
    return np.frombuffer(raw, dtype=_DTYPES[d["dtype"]]).reshape(d["shape"]).copy()


def gray_levels() -> np.ndarray:
    """The 8-bit grey level of each of the 256 entries of matplotlib's ``gray`` map -> (256,).

    A value v in [0, 1] is drawn with entry ``min(255, floor(256 v))``, as matplotlib's
    colour maps index their table.
    """
    from matplotlib import colormaps

    return np.asarray(colormaps["gray"](np.arange(256), bytes=True)[:, 0], dtype=np.uint8)


# ----------------------------------------------------------------------------- PPCA
def _ppca_parts(pca, n_sliders):
    k = min(int(n_sliders), int(pca.n_components_))
    V = np.asarray(pca.components_, dtype=np.float64)[:k]  # (k, d)
    lam = np.asarray(pca.explained_variance_, dtype=np.float64)[:k]
    scale = np.sqrt(np.clip(lam - float(pca.noise_variance_), 0.0, None))  # (λ − σ²)^½
    return V, scale, np.asarray(pca.mean_, dtype=np.float64)


def ppca_mean(pca, Z) -> np.ndarray:
    """The PPCA mean of x given the first latent coordinates, via ``inverse_transform``.

    Parameters
    ----------
    pca : fitted PCA (``whiten=False``)
    Z : array-like of shape (n, k), k ≤ ``n_components_``
        The first k coordinates of z ~ N(0, I); the others are 0 (the prior mean).

    Returns
    -------
    X : ndarray of shape (n, n_features)
        ``μ + Σ_j z_j (λ_j − σ²)^½ v_j`` = ``W z + μ``.
    """
    if getattr(pca, "whiten", False):
        raise ValueError("ppca_mean needs a PCA fitted with whiten=False.")
    Z = np.atleast_2d(np.asarray(Z, dtype=np.float64))
    V, scale, _ = _ppca_parts(pca, Z.shape[1])
    if Z.shape[1] > len(scale):
        raise ValueError(f"Z has {Z.shape[1]} columns, but the PCA has {len(scale)} components.")
    full = np.zeros((len(Z), int(pca.n_components_)))
    full[:, : Z.shape[1]] = Z * scale
    return np.asarray(pca.inverse_transform(full), dtype=np.float64)


def ppca_sliders(pca, image_shape, *, n_sliders=N_SLIDERS, span=SLIDER_SPAN) -> Widget:
    """Sliders over the first latent coordinates of a fitted PCA read as PPCA.

    Parameters
    ----------
    pca : fitted PCA (``whiten=False``)
    image_shape : tuple (height, width)
        ``height * width == n_features_in_``.
    n_sliders : int, default=5
        Clipped to ``n_components_``.
    span : float, default=3.0
        Each slider covers [−span, span] prior standard deviations.

    Returns
    -------
    Widget
        ``spec``: ``components`` (k, d) = the first k rows of ``components_``, ``scale`` (k,)
        = (λ − σ²)^½, ``mean`` (d,), all float32, and the slider range.
    """
    if getattr(pca, "whiten", False):
        raise ValueError("the PPCA sliders need a PCA fitted with whiten=False.")
    h, w = (int(s) for s in image_shape)
    if h * w != int(pca.n_features_in_):
        raise ValueError(f"image_shape {h}x{w} does not match the PCA's "
                         f"{pca.n_features_in_} features.")
    V, scale, mean = _ppca_parts(pca, n_sliders)
    k = len(scale)
    return Widget(
        kind="ppca-sliders",
        title=f"Explore probabilistic PCA: the first {k} latent coordinates",
        caption=(
            f"Each slider sets one coordinate z_j of the latent code (±{span:g} prior standard "
            f"deviations, the others stay at 0); the image is the model's mean "
            f"E[x|z] = W z + μ with W = Vᵀ(Λ − σ²I)^½, k = {pca.n_components_}, "
            f"σ² = {float(pca.noise_variance_):.3g}, computed in the page."
        ),
        spec={
            "shape": [h, w], "span": float(span), "step": SLIDER_STEP,
            "components": encode_array(V), "scale": encode_array(scale),
            "mean": encode_array(mean),
        },
    )


# ----------------------------------------------------------------------------- VAE
def decoder_layers(vae) -> dict:
    """A VAE's decoder as a JSON-safe list of layers the page can run.

    Parameters
    ----------
    vae : fitted VAE with an MLP decoder

    Returns
    -------
    dict
        ``layers``: ``{"op": "linear", "weight": (out, in), "bias": (out,)}`` or
        ``{"op": activation, ...}``; ``rescale``: whether the output is ``out · scale +
        shift`` (decoders of real values), with ``scale``/``shift``; ``sigmoid``: whether
        the mean is ``sigmoid(out)`` (Bernoulli decoders) — what ``inverse_transform`` does.

    Raises
    ------
    ValueError
        A decoder with a layer the page cannot run (the convolutional decoder).
    """
    import torch
    from torch import nn

    net = vae.network_
    simple = {nn.ReLU: "relu", nn.Tanh: "tanh", nn.Sigmoid: "sigmoid", nn.ELU: "elu",
              nn.Softplus: "softplus", nn.Identity: "identity"}
    layers: list[dict[str, Any]] = []
    for m in net.decoder.children():
        if isinstance(m, nn.Linear):
            layers.append({"op": "linear",
                           "weight": encode_array(m.weight.detach().cpu().numpy()),
                           "bias": encode_array(m.bias.detach().cpu().numpy())})
        elif isinstance(m, nn.LeakyReLU):
            layers.append({"op": "leaky_relu", "slope": float(m.negative_slope)})
        elif isinstance(m, nn.ELU):
            layers.append({"op": "elu", "alpha": float(m.alpha)})
        elif isinstance(m, nn.Softplus):
            layers.append({"op": "softplus", "beta": float(m.beta),
                           "threshold": float(m.threshold)})
        elif type(m) in simple:
            layers.append({"op": simple[type(m)]})
        else:
            raise ValueError(
                f"the page can only run MLP decoders, this one has a {type(m).__name__}; "
                "use architecture='mlp' for an interactive latent plane."
            )
    with torch.no_grad():
        scale = float(net.scale.detach().cpu())
        shift = net.shift.detach().cpu().numpy()
    return {"layers": layers, "latent_dim": int(vae.latent_dim),
            "n_features": int(shift.shape[0]), "rescale": bool(net.rescale_output),
            "scale": scale, "shift": encode_array(shift),
            "sigmoid": vae.likelihood == "bernoulli"}


def decoder_bytes(vae) -> int:
    """Bytes of the float32 weights and biases of a VAE's decoder, as the page would embed
    them (before base64, which adds a third); compare with :data:`MAX_DECODER_BYTES`."""
    return 4 * sum(int(p.numel()) for p in vae.network_.decoder.parameters())


def _decoder_blob(vae, name):
    return {name: decoder_layers(vae)}


def _check_2d(vae, image_shape):
    if int(vae.latent_dim) != 2:
        raise ValueError(f"the latent plane needs latent_dim=2, the VAE has {vae.latent_dim}.")
    h, w = (int(s) for s in image_shape)
    if h * w != int(vae.n_features_in_):
        raise ValueError(f"image_shape {h}x{w} does not match the VAE's "
                         f"{vae.n_features_in_} features.")
    return h, w


def latent_plane(vae, X, y=None, image_shape=None, *, target_names=None,
                 max_points=PLANE_POINTS, random_state=0, name="vae") -> Widget:
    """The latent plane of a 2-D VAE: posterior means as dots, the pointer decoded live.

    Parameters
    ----------
    vae : fitted VAE with ``latent_dim == 2`` and an MLP decoder
    X : array-like of shape (n_samples, n_features)
        Rows whose posterior means are drawn (the training rows).
    y : array-like of shape (n_samples,), optional
        Labels, for the dots' colours.
    image_shape : tuple (height, width)
    target_names : sequence of str, optional
    max_points : int, default=2000
        At most this many rows, a seeded random subset.
    random_state : int
    name : str
        Name of the shared decoder blob.

    Returns
    -------
    Widget
        ``spec``: ``points`` (n, 2) float32 posterior means (``transform``), ``labels``,
        ``colors``, ``names``, the plane's ``extent`` [z1_lo, z1_hi, z2_lo, z2_hi] and the
        decoder (``"@name"``).
    """
    h, w = _check_2d(vae, image_shape)
    X = np.asarray(X)
    idx = np.arange(len(X))
    if len(X) > max_points:
        idx = np.sort(np.random.RandomState(random_state).choice(len(X), max_points,
                                                                 replace=False))
    Z = np.asarray(vae.transform(X[idx]), dtype=np.float64)
    # the prior's ±3 and (nearly) every code, whichever is wider
    lo = np.minimum(-3.0, np.quantile(Z, 0.005, axis=0))
    hi = np.maximum(3.0, np.quantile(Z, 0.995, axis=0))
    pad = 0.03 * (hi - lo)
    extent = [float(lo[0] - pad[0]), float(hi[0] + pad[0]),
              float(lo[1] - pad[1]), float(hi[1] + pad[1])]
    labels, names, colors = None, [], []
    if y is not None:
        from matplotlib import colormaps
        from matplotlib.colors import to_hex

        classes, codes = np.unique(np.asarray(y)[idx], return_inverse=True)
        cmap = colormaps["tab10" if classes.size <= 10 else "tab20"]
        colors = [to_hex(cmap(i % cmap.N)) for i in range(classes.size)]
        names = [str(target_names[c]) if target_names is not None and
                 isinstance(c, (int, np.integer)) and 0 <= c < len(target_names) else str(c)
                 for c in classes]
        labels = [int(c) for c in codes]
    return Widget(
        kind="latent-plane",
        title="Explore the VAE's latent plane",
        caption=(
            f"Dots: posterior means μ(x) of {len(idx)} training images"
            + (", coloured by label" if labels is not None else "")
            + ". Move the pointer over the plane (or tap it) to decode that point z: the "
            "image beside it is the decoder's mean E[x|z], computed in the page."
        ),
        spec={"shape": [h, w], "points": encode_array(Z), "labels": labels,
              "colors": colors, "names": names, "extent": extent, "decoder": "@" + name},
        blobs=_decoder_blob(vae, name),
    )


def _pool(vae, X, pool):
    X = np.asarray(X)
    rows = np.arange(min(int(pool), len(X)))
    if len(rows) < 2:
        raise ValueError(f"an interpolation needs at least 2 held-out rows, got {len(X)}.")
    Z = np.asarray(vae.transform(X[rows]), dtype=np.float64)
    return rows, X[rows], Z


def interpolation(vae, X_test, image_shape, *, n_frames=N_FRAMES, pool=PAIR_POOL,
                  name="vae") -> Widget:
    """Decoded frames along a straight line between two held-out images' posterior means.

    Parameters
    ----------
    vae : fitted VAE with an MLP decoder
    X_test : array-like of shape (n_test, n_features)
        Held-out rows; the first ``pool`` of them can be picked as ends.
    image_shape : tuple (height, width)
    n_frames : int, default=10
        Frames, both ends included: z_t = (1 − t) μ(x_a) + t μ(x_b), t = i / (n_frames − 1).
    pool : int, default=16
    name : str
        Name of the shared decoder blob.

    Returns
    -------
    Widget
        ``spec``: ``codes`` (pool, L) float32 posterior means (``transform``), ``images``
        (pool, d) the rows themselves (float32), ``rows`` their indices in ``X_test``,
        ``n_frames`` and the decoder (``"@name"``).
    """
    h, w = (int(s) for s in image_shape)
    if h * w != int(vae.n_features_in_):
        raise ValueError(f"image_shape {h}x{w} does not match the VAE's "
                         f"{vae.n_features_in_} features.")
    n_frames = int(n_frames)
    if n_frames < 2:
        raise ValueError(f"n_frames must be at least 2, got {n_frames}.")
    rows, images, Z = _pool(vae, X_test, pool)
    return Widget(
        kind="interpolation",
        title="Interpolate between two held-out images",
        caption=(
            f"The two end images are held-out rows (not used in training); the {n_frames} "
            "frames between them decode evenly spaced points on the straight line between "
            "their posterior means, z_t = (1 − t) μ(x_a) + t μ(x_b), in the page. Pick "
            "another pair with the menus or the button."
        ),
        spec={"shape": [h, w], "codes": encode_array(Z), "images": encode_array(images),
              "rows": [int(r) for r in rows], "n_frames": n_frames, "decoder": "@" + name},
        blobs=_decoder_blob(vae, name),
    )


def interpolation_frames(vae, za, zb, n_frames=N_FRAMES) -> np.ndarray:
    """``inverse_transform`` of z_t = (1 − t) za + t zb, t = i / (n_frames − 1).

    Returns
    -------
    X : ndarray of shape (n_frames, n_features)
    """
    t = np.linspace(0.0, 1.0, int(n_frames))[:, None]
    Zt = (1.0 - t) * np.asarray(za, dtype=np.float64) + t * np.asarray(zb, dtype=np.float64)
    return np.asarray(vae.inverse_transform(Zt), dtype=np.float64)


def interpolation_figure(vae, X_test, image_shape, *, n_frames=N_FRAMES, pair=(0, 1)) -> Figure:
    """The static strip of one pair: both held-out images and the frames between them.

    The ends are encoded with ``transform`` (posterior means) and every frame decoded with
    ``inverse_transform``; grey levels as the page draws them (clipped to [0, 1]).
    """
    from ..plotting import ImageGridDisplay

    X = np.asarray(X_test)
    a, b = (int(i) for i in pair)
    Z = np.asarray(vae.transform(X[[a, b]]), dtype=np.float64)
    frames = interpolation_frames(vae, Z[0], Z[1], n_frames)
    strip = np.concatenate([X[[a]], frames, X[[b]]])
    t = np.linspace(0.0, 1.0, int(n_frames))
    titles = ["x_a"] + [f"t={v:.2f}" for v in t] + ["x_b"]
    grid = ImageGridDisplay.from_data(np.clip(strip, 0.0, 1.0), image_shape, titles=titles,
                                      n_cols=len(strip), vmin=0.0, vmax=1.0)
    return Figure(
        grid.plot().figure_,
        caption=(
            f"Interpolation between two held-out images x_a and x_b (first and last): the "
            f"{n_frames} frames decode E[x|z_t] at z_t = (1 − t) μ(x_a) + t μ(x_b); the page "
            "draws the same strip for any pair."
        ),
        alt=f"Two held-out images and {n_frames} images decoded along the line between "
            "their latent codes.",
    )


# ----------------------------------------------------------------------------- the page
def script() -> str:
    """The page's one inline script (plain JavaScript, no dependencies).

    It finds every ``div.widget``, reads its JSON spec (and the shared blobs it names), and
    builds the widget; a widget whose spec cannot be read says so in place of the controls.
    Each widget keeps its last drawing on its ``.widget-body`` element as ``lsState`` (``z``
    and the float ``values`` drawn), which the browser tests read back.
    """
    return _static("widgets.js").replace("__GRAY__", json.dumps([int(v) for v in gray_levels()]))


def _static(name: str) -> str:
    """A file of the page's static assets (``report/static``), as text."""
    from importlib.resources import files

    return files("latentspace.report").joinpath("static", name).read_text(encoding="utf-8")


def css() -> str:
    """The widgets' style sheet."""
    return _static("widgets.css")
