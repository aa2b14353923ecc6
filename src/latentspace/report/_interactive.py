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
    layers = []
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
    return _SCRIPT.replace("__GRAY__", json.dumps([int(v) for v in gray_levels()]))


_SCRIPT = r"""
(function () {
  "use strict";
  var GRAY = __GRAY__;

  function arr(d) {
    var s = atob(d.b64), n = s.length, bytes = new Uint8Array(n), i;
    for (i = 0; i < n; i++) bytes[i] = s.charCodeAt(i);
    if (d.dtype === "uint8") return bytes;
    var view = new DataView(bytes.buffer), out = new Float64Array(n / 4);
    for (i = 0; i < out.length; i++) out[i] = view.getFloat32(4 * i, true);  // little-endian
    return out;
  }

  function el(tag, attrs, parent) {
    var e = document.createElement(tag), k;
    for (k in attrs || {}) {
      if (k === "text") e.textContent = attrs[k]; else e.setAttribute(k, attrs[k]);
    }
    if (parent) parent.appendChild(e);
    return e;
  }

  // values in [0, 1] -> grey, as matplotlib's "gray" map with vmin=0, vmax=1
  function level(v) {
    if (!(v > 0)) return GRAY[0];
    if (v >= 1) return GRAY[255];
    return GRAY[Math.min(255, Math.floor(v * 256))];
  }

  function imageCanvas(shape, parent, cls) {
    var c = el("canvas", {"class": "ls-image " + (cls || ""), width: shape[1], height: shape[0]},
               parent);
    var zoom = Math.max(1, Math.floor(140 / Math.max(shape[0], shape[1])));
    c.style.width = (zoom * shape[1]) + "px";
    c.style.height = (zoom * shape[0]) + "px";
    return c;
  }

  function paint(canvas, values) {
    var ctx = canvas.getContext("2d"), img = ctx.createImageData(canvas.width, canvas.height);
    for (var i = 0; i < values.length; i++) {
      var g = level(values[i]);
      img.data[4 * i] = g; img.data[4 * i + 1] = g; img.data[4 * i + 2] = g;
      img.data[4 * i + 3] = 255;
    }
    ctx.putImageData(img, 0, 0);
  }

  // the decoder's forward pass, in float64 from the float32 weights
  function Decoder(spec) {
    this.layers = spec.layers.map(function (l) {
      if (l.op !== "linear") return l;
      return {op: "linear", W: arr(l.weight), b: arr(l.bias), n_out: l.weight.shape[0],
              n_in: l.weight.shape[1]};
    });
    this.rescale = spec.rescale; this.scale = spec.scale; this.shift = arr(spec.shift);
    this.sigmoid = spec.sigmoid;
  }
  Decoder.prototype.mean = function (z) {
    var h = Float64Array.from(z), i, j;
    this.layers.forEach(function (l) {
      if (l.op === "linear") {
        var out = new Float64Array(l.n_out);
        for (i = 0; i < l.n_out; i++) {
          var s = l.b[i], row = i * l.n_in;
          for (j = 0; j < l.n_in; j++) s += l.W[row + j] * h[j];
          out[i] = s;
        }
        h = out;
        return;
      }
      for (i = 0; i < h.length; i++) {
        var x = h[i];
        switch (l.op) {
          case "relu": h[i] = x > 0 ? x : 0; break;
          case "leaky_relu": h[i] = x > 0 ? x : l.slope * x; break;
          case "tanh": h[i] = Math.tanh(x); break;
          case "sigmoid": h[i] = 1 / (1 + Math.exp(-x)); break;
          case "elu": h[i] = x > 0 ? x : l.alpha * (Math.exp(x) - 1); break;
          case "softplus":
            h[i] = l.beta * x > l.threshold ? x : Math.log1p(Math.exp(l.beta * x)) / l.beta;
            break;
          case "identity": break;
          default: throw new Error("unknown layer " + l.op);
        }
      }
    });
    for (i = 0; i < h.length; i++) {
      if (this.rescale) h[i] = h[i] * this.scale + this.shift[i];
      if (this.sigmoid) h[i] = 1 / (1 + Math.exp(-h[i]));
    }
    return h;
  };

  var decoders = {};
  function decoderOf(ref) {
    var name = ref.slice(1);
    if (!decoders[name]) {
      var node = document.getElementById("ls-blob-" + name);
      decoders[name] = new Decoder(JSON.parse(node.textContent));
    }
    return decoders[name];
  }

  function fmt(v) { return (v >= 0 ? "+" : "") + v.toFixed(2); }

  var builders = {};

  builders["ppca-sliders"] = function (root, spec) {
    var V = arr(spec.components), a = arr(spec.scale), mu = arr(spec.mean);
    var k = spec.components.shape[0], d = spec.components.shape[1];
    var box = el("div", {"class": "ls-row"}, root);
    var controls = el("div", {"class": "ls-controls"}, box);
    var canvas = imageCanvas(spec.shape, box);
    var inputs = [], outputs = [];
    function draw() {
      var z = inputs.map(function (inp) { return parseFloat(inp.value); });
      var x = Float64Array.from(mu);
      for (var j = 0; j < k; j++) {
        var c = z[j] * a[j], row = j * d;
        if (c === 0) continue;
        for (var p = 0; p < d; p++) x[p] += c * V[row + p];
      }
      z.forEach(function (v, j) { outputs[j].textContent = fmt(v); });
      paint(canvas, x);
      root.lsState = {z: z, values: Array.from(x)};
    }
    for (var j = 0; j < k; j++) {
      var label = el("label", {"class": "ls-slider"}, controls);
      el("span", {text: "z" + (j + 1)}, label);
      var inp = el("input", {type: "range", min: -spec.span, max: spec.span, step: spec.step,
                             value: 0, "aria-label": "latent coordinate z" + (j + 1)}, label);
      inp.addEventListener("input", draw);
      inputs.push(inp);
      outputs.push(el("output", {text: fmt(0)}, label));
    }
    var reset = el("button", {type: "button", text: "reset to z = 0"}, controls);
    reset.addEventListener("click", function () {
      inputs.forEach(function (inp) { inp.value = 0; });
      draw();
    });
    draw();
  };

  builders["latent-plane"] = function (root, spec) {
    var dec = decoderOf(spec.decoder), P = arr(spec.points), ext = spec.extent;
    var box = el("div", {"class": "ls-row"}, root);
    var plane = el("canvas", {"class": "ls-plane", width: 360, height: 360,
                              "aria-label": "latent plane: move the pointer to decode"}, box);
    var side = el("div", {"class": "ls-side"}, box);
    var canvas = imageCanvas(spec.shape, side);
    var readout = el("p", {"class": "ls-readout", text: "z = (0, 0)"}, side);
    var W = plane.width, H = plane.height;
    function px(z1) { return (z1 - ext[0]) / (ext[1] - ext[0]) * W; }
    function py(z2) { return (ext[3] - z2) / (ext[3] - ext[2]) * H; }
    var dots = document.createElement("canvas");
    dots.width = W; dots.height = H;
    var g = dots.getContext("2d");
    g.fillStyle = "#fff"; g.fillRect(0, 0, W, H);
    g.strokeStyle = "#dde2ea";
    g.beginPath(); g.moveTo(px(0), 0); g.lineTo(px(0), H); g.moveTo(0, py(0)); g.lineTo(W, py(0));
    g.stroke();
    // integer ticks on the two axes through 0
    g.fillStyle = "#5b6472"; g.font = "10px sans-serif"; g.textAlign = "center";
    for (var t = Math.ceil(ext[0]); t <= ext[1]; t++) {
      if (t !== 0) { g.fillRect(px(t) - 0.5, py(0) - 3, 1, 6); g.fillText(t, px(t), py(0) + 13); }
    }
    g.textAlign = "left";
    for (t = Math.ceil(ext[2]); t <= ext[3]; t++) {
      if (t !== 0) { g.fillRect(px(0) - 3, py(t) - 0.5, 6, 1); g.fillText(t, px(0) + 5, py(t) + 3); }
    }
    g.fillText("z1", W - 16, py(0) - 5);
    g.fillText("z2", px(0) - 18, 11);
    for (var i = 0; i < P.length / 2; i++) {
      g.fillStyle = spec.labels ? spec.colors[spec.labels[i]] : "#2a62b8";
      g.globalAlpha = 0.6;
      g.fillRect(px(P[2 * i]) - 1.5, py(P[2 * i + 1]) - 1.5, 3, 3);
    }
    g.globalAlpha = 1;
    if (spec.names.length) {
      var legend = el("p", {"class": "ls-legend"}, side);
      spec.names.forEach(function (name, c) {
        var item = el("span", {}, legend);
        el("i", {style: "background:" + spec.colors[c]}, item);
        item.appendChild(document.createTextNode(name));
      });
    }
    var ctx = plane.getContext("2d");
    function show(z) {
      var x = dec.mean(z);
      paint(canvas, x);
      ctx.drawImage(dots, 0, 0);
      ctx.strokeStyle = "#000"; ctx.lineWidth = 1.5;
      ctx.beginPath(); ctx.arc(px(z[0]), py(z[1]), 6, 0, 2 * Math.PI); ctx.stroke();
      readout.textContent = "z = (" + z[0].toFixed(2) + ", " + z[1].toFixed(2) + ")";
      root.lsState = {z: z, values: Array.from(x)};
    }
    function at(ev) {
      var r = plane.getBoundingClientRect();
      var fx = (ev.clientX - r.left) / r.width, fy = (ev.clientY - r.top) / r.height;
      show([ext[0] + fx * (ext[1] - ext[0]), ext[3] - fy * (ext[3] - ext[2])]);
    }
    plane.addEventListener("pointermove", at);
    plane.addEventListener("pointerdown", at);
    show([0, 0]);
  };

  builders["interpolation"] = function (root, spec) {
    var dec = decoderOf(spec.decoder), Z = arr(spec.codes), X = arr(spec.images);
    var L = spec.codes.shape[1], d = spec.images.shape[1], n = spec.codes.shape[0];
    var bar = el("div", {"class": "ls-controls ls-pair"}, root);
    function picker(text, value) {
      var label = el("label", {text: text + " "}, bar);
      var s = el("select", {}, label);
      for (var i = 0; i < n; i++) el("option", {value: i, text: "held-out #" + (i + 1)}, s);
      s.value = value;
      return s;
    }
    var sa = picker("from", 0), sb = picker("to", 1);
    var again = el("button", {type: "button", text: "another pair"}, bar);
    var strip = el("div", {"class": "ls-strip"}, root);
    var ends = [imageCanvas(spec.shape, null, "ls-end")], frames = [];
    strip.appendChild(ends[0]);
    for (var f = 0; f < spec.n_frames; f++) frames.push(imageCanvas(spec.shape, strip, "ls-frame"));
    ends.push(imageCanvas(spec.shape, strip, "ls-end"));
    function draw() {
      var a = parseInt(sa.value, 10), b = parseInt(sb.value, 10), values = [], zs = [];
      paint(ends[0], X.subarray(a * d, (a + 1) * d));
      paint(ends[1], X.subarray(b * d, (b + 1) * d));
      for (var f = 0; f < spec.n_frames; f++) {
        var t = f / (spec.n_frames - 1), z = new Float64Array(L);
        for (var j = 0; j < L; j++) z[j] = (1 - t) * Z[a * L + j] + t * Z[b * L + j];
        var x = dec.mean(z);
        paint(frames[f], x);
        values.push(Array.from(x)); zs.push(Array.from(z));
      }
      root.lsState = {pair: [a, b], z: zs, values: values};
    }
    sa.addEventListener("change", draw);
    sb.addEventListener("change", draw);
    again.addEventListener("click", function () {
      var a = Math.floor(Math.random() * n), b = Math.floor(Math.random() * (n - 1));
      sa.value = a; sb.value = b >= a ? b + 1 : b;
      draw();
    });
    draw();
  };

  Array.prototype.forEach.call(document.querySelectorAll("div.widget"), function (root) {
    var body = root.querySelector(".widget-body");
    try {
      var spec = JSON.parse(root.querySelector("script.widget-spec").textContent);
      builders[root.getAttribute("data-kind")](body, spec);
    } catch (err) {
      body.textContent = "This interactive figure could not be built: " + err.message;
      throw err;
    }
  });
})();
"""

CSS = """
.widget { border: 1px solid var(--line); border-radius: 4px; padding: .6rem .9rem;
          margin: 1.2rem 0; }
.widget h3 { font-size: 1.05rem; margin: 0 0 .5rem; }
.widget .caption { color: var(--muted); font-size: .9rem; margin: .5rem 0 0; }
.ls-row { display: flex; flex-wrap: wrap; gap: 1.2rem; align-items: flex-start; }
.ls-controls { display: flex; flex-direction: column; gap: .25rem; font-size: .9rem; }
.ls-pair { flex-direction: row; flex-wrap: wrap; gap: .8rem; align-items: center;
           margin-bottom: .5rem; }
.ls-controls button { align-self: flex-start; }
.ls-slider { display: flex; align-items: center; gap: .5rem; font-variant-numeric: tabular-nums; }
.ls-slider input { width: 220px; }
.ls-slider output { width: 3.2em; text-align: right; }
canvas.ls-image { image-rendering: crisp-edges; image-rendering: pixelated;
                  border: 1px solid var(--line); }
canvas.ls-plane { border: 1px solid var(--line); touch-action: none; cursor: crosshair;
                  max-width: 100%; }
.ls-strip { display: flex; flex-wrap: wrap; gap: 4px; align-items: center; }
.ls-strip canvas.ls-image { width: 56px !important; height: auto !important; }
.ls-strip canvas.ls-end { outline: 2px solid var(--accent); }
.ls-readout { font-variant-numeric: tabular-nums; font-size: .9rem; margin: .3rem 0; }
.ls-legend { font-size: .8rem; max-width: 220px; }
.ls-legend span { display: inline-block; margin-right: .6rem; }
.ls-legend i { display: inline-block; width: .7em; height: .7em; margin-right: .25rem; }
@media print { .widget { display: none; } }
"""
