"""The digits report opened in headless Chromium: no console errors, every image decoded, and
the interactive figures drawing what the models compute.

Chromium comes from the system (``make test`` installs Debian's package when it is missing
and the machine allows it); the page is opened from disk with all network access blocked.
Screenshots are written to ``test-artifacts/`` for a person to look at, each taken once every
image has decoded.

The widgets are driven as a reader would (slider values, pointer events at known codes, the
pair menus) and their canvases read back with ``getImageData``. Oracles: the models' own
decodings (``PCA.inverse_transform`` on the PPCA code, ``VAE.inverse_transform``), drawn
through matplotlib's ``gray`` map after clipping to [0, 1], as the static figures are. The
page computes in float64 from float32 weights, the VAE in float32, so a value within ~1e-6
of a level's edge may land one level away: drawn levels must agree within one (1/255).
"""

import copy
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from latentspace.report import _interactive as live

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
U32 = 2.0 ** -24  # unit roundoff of float32
DECODE_ALL = ("Promise.all(Array.from(document.images).map(i => i.decode().then(() => true, "
              "() => false)))")


def _chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


@pytest.fixture(scope="module")
def browser():
    exe = _chromium()
    if exe is None:
        pytest.skip("Chromium is not installed and could not be installed here (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (dev extra) not installed")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, args=FLAGS)
        yield b
        b.close()


class Opened:
    """A page of the report in a fresh context, with its errors and blocked requests."""

    def __init__(self, browser, index, **context):
        self.context = browser.new_context(viewport={"width": 1280, "height": 900}, **context)
        self.page = self.context.new_page()
        self.problems, self.requests = [], []
        self.page.on("console", lambda m: m.type == "error" and self.problems.append(m.text))
        self.page.on("pageerror", lambda e: self.problems.append(str(e)))
        self.page.route("**/*", self._route)
        self.page.goto(index.as_uri())
        self.page.wait_for_load_state("load")

    def _route(self, r):
        if r.request.url.startswith(("file:", "data:")):
            r.continue_()
        else:
            self.requests.append(r.request.url)
            r.abort()

    def decoded(self):
        """Wait until every image is decoded; one bool per image (False: failed to decode)."""
        return self.page.evaluate(DECODE_ALL)

    def screenshot(self, name, **kw):
        assert all(self.decoded())
        ARTIFACTS.mkdir(exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / name), **kw)
        return ARTIFACTS / name

    def close(self):
        self.context.close()


@pytest.fixture
def opened(browser, quick_digits_tour):
    pages = []

    def open_(**context):
        o = Opened(browser, quick_digits_tour[0] / "index.html", **context)
        pages.append(o)
        return o

    yield open_
    for o in pages:
        o.close()


def _spec(page, kind):
    return json.loads(page.evaluate(
        f"document.querySelector('div.widget[data-kind=\"{kind}\"] script.widget-spec')"
        ".textContent"))


def _pixels(page, selector, nth=0):
    """The RGBA bytes of a canvas -> (height * width, 4) uint8, and its (height, width)."""
    got = page.evaluate(
        "([sel, n]) => { const c = document.querySelectorAll(sel)[n]; const d = c.getContext("
        "'2d').getImageData(0, 0, c.width, c.height).data; return [Array.from(d), c.height, "
        "c.width]; }", [selector, nth])
    return np.asarray(got[0], dtype=np.uint8).reshape(-1, 4), (got[1], got[2])


def _state(page, kind):
    return page.evaluate(
        "(kind) => JSON.parse(JSON.stringify(document.querySelector("
        "`div.widget[data-kind=\"${kind}\"] .widget-body`).lsState))", kind)


def _assert_drawn(rgba, shape, x, image_shape):
    """Canvas bytes = matplotlib's gray map of clip(x, 0, 1), within one level."""
    from matplotlib import colormaps

    assert tuple(shape) == tuple(image_shape)
    expected = colormaps["gray"](np.clip(np.asarray(x, dtype=np.float64), 0.0, 1.0),
                                 bytes=True)[:, 0].astype(int)
    assert np.all(rgba[:, 3] == 255)
    assert np.array_equal(rgba[:, 0], rgba[:, 1]) and np.array_equal(rgba[:, 0], rgba[:, 2])
    diff = np.abs(rgba[:, 0].astype(int) - expected)
    assert diff.max() <= 1, f"{np.count_nonzero(diff > 1)} pixel(s) more than one level off"
    return diff


def _decode64(vae, Z):
    """The VAE's decoder mean in float64 (a float64 copy of its network)."""
    net = copy.deepcopy(vae.network_).double()
    with torch.no_grad():
        out = net.decode(torch.as_tensor(np.asarray(Z, dtype=np.float64)))
        return (torch.sigmoid(out) if vae.likelihood == "bernoulli" else out).numpy()


# ----------------------------------------------------------------------------- the page
def test_report_renders_in_headless_chromium(quick_digits_tour, opened):
    out, summary = quick_digits_tour
    o = opened()
    page = o.page
    decoded = o.decoded()
    images = page.evaluate(
        "Array.from(document.images).map(i => ({src: i.src.slice(0, 22), ok: i.complete, "
        "w: i.naturalWidth, h: i.naturalHeight, alt: i.alt, decoding: i.decoding, "
        "loading: i.loading}))"
    )
    toc = page.evaluate("Array.from(document.querySelectorAll('nav a, .toc a')).length")
    sections = page.evaluate(
        "Array.from(document.querySelectorAll('main section')).map(s => s.id)")
    # every table of contents link leads to a section that is laid out (has a height)
    broken = page.evaluate(
        "Array.from(document.querySelectorAll('nav a')).filter(a => { const t = "
        "document.querySelector(a.getAttribute('href')); return !t || t.offsetHeight === 0; })"
        ".map(a => a.getAttribute('href'))")
    built = page.evaluate(
        "Array.from(document.querySelectorAll('div.widget')).map(w => [w.dataset.kind, "
        "w.querySelector('.widget-body').childElementCount > 0])")
    o.screenshot("report.png", full_page=False)
    o.screenshot("report_full.png", full_page=True)
    assert o.problems == []
    assert o.requests == [], "the report must not reach the network"
    assert len(images) == sum(len(c["figures"]) for c in summary["chapters"].values()) >= 4
    assert all(decoded), f"{decoded.count(False)} image(s) failed to decode"
    for img in images:
        assert img["ok"] and img["w"] > 0 and img["h"] > 0, img
        assert img["src"].startswith("data:image/png"), img
        assert img["alt"].strip(), "every figure needs alt text"
        assert (img["decoding"], img["loading"]) == ("sync", "eager"), img
    assert toc >= 1 and broken == []
    assert sections == [*summary["chapters"], "reproduction", "about"]
    assert built == [["ppca-sliders", True], ["latent-plane", True], ["interpolation", True]]
    assert (ARTIFACTS / "report.png").stat().st_size > 10_000


def test_without_javascript_every_figure_shows_and_widgets_say_so(quick_digits_tour, opened):
    out, summary = quick_digits_tour
    o = opened(java_script_enabled=False)
    decoded = o.decoded()
    sizes = o.page.evaluate(
        "Array.from(document.images).map(i => [i.complete, i.naturalWidth, i.naturalHeight])")
    notes = o.page.evaluate(
        "Array.from(document.querySelectorAll('div.widget')).map(w => { const p = "
        "w.querySelector('p.needs-js'); return [p ? p.offsetHeight : 0, p ? p.innerText : '', "
        "w.querySelector('.widget-body').childElementCount]; })")
    path = o.screenshot("report_no_js.png", full_page=True)
    assert o.problems == [] and o.requests == []
    assert len(decoded) == sum(len(c["figures"]) for c in summary["chapters"].values())
    assert all(decoded) and all(ok and w > 0 and h > 0 for ok, w, h in sizes)
    assert len(notes) == 3
    for height, text, children in notes:
        assert height > 0 and "needs JavaScript" in text and children == 0
    assert path.stat().st_size > 10_000


# ----------------------------------------------------------------------------- PPCA sliders
def test_ppca_sliders_draw_w_z_plus_mu(quick_digits_tour, quick_digits_models, opened):
    out, summary = quick_digits_tour
    ppca = quick_digits_models.get("ppca", quick_digits_models["pca"])
    shape = tuple(summary["image_shape"])
    o = opened()
    page = o.page
    spec = _spec(page, "ppca-sliders")
    n = spec["components"]["shape"][0]
    assert n == min(5, ppca.n_components_) and spec["span"] == 3.0
    root = "div.widget[data-kind=\"ppca-sliders\"]"
    assert page.evaluate(
        f"Array.from(document.querySelectorAll('{root} input[type=range]')).map(i => "
        "[Number(i.min), Number(i.max)])") == [[-3.0, 3.0]] * n
    V = ppca.components_[:n]
    scale = np.sqrt(np.clip(ppca.explained_variance_[:n] - ppca.noise_variance_, 0, None))
    for z in ([0.0] * n, [3.0, -3.0, 1.25, -0.5, 2.0][:n], [-1.7, 0.0, 2.6, 0.3, -2.2][:n],
              [7.0] + [0.0] * (n - 1)):  # beyond the range: the slider stops at +3
        page.evaluate(
            f"(z) => document.querySelectorAll('{root} input[type=range]').forEach((inp, j) => "
            "{ inp.value = String(z[j]); inp.dispatchEvent(new Event('input', {bubbles: true})); })",
            z)
        state = _state(page, "ppca-sliders")
        assert np.allclose(state["z"], np.clip(z, -3, 3), rtol=0, atol=1e-12)
        x = live.ppca_mean(ppca, np.asarray([state["z"]]))[0]
        # float32 weights: each stored value off by ≤ u·|value|, the sums are float64
        bound = 3 * U32 * (np.abs(ppca.mean_) + np.abs(np.asarray(state["z"]) * scale) @ np.abs(V))
        assert np.all(np.abs(np.asarray(state["values"]) - x) <= bound + 1e-15)
        rgba, drawn = _pixels(page, f"{root} canvas.ls-image")
        _assert_drawn(rgba, drawn, x, shape)
    # the enlarged image keeps crisp pixels
    assert page.evaluate(f"getComputedStyle(document.querySelector('{root} canvas'))"
                         ".imageRendering") in ("pixelated", "crisp-edges")
    page.evaluate(f"document.querySelector('{root} button').click()")
    assert _state(page, "ppca-sliders")["z"] == [0.0] * n
    assert o.problems == []


# ----------------------------------------------------------------------------- VAE plane
def test_latent_plane_decodes_the_pointer(quick_digits_tour, quick_digits_models, opened):
    out, summary = quick_digits_tour
    vae = quick_digits_models["vae"]
    shape = tuple(summary["image_shape"])
    o = opened()
    page = o.page
    spec = _spec(page, "latent-plane")
    lo1, hi1, lo2, hi2 = spec["extent"]
    root = "div.widget[data-kind=\"latent-plane\"]"
    page.locator(f"{root} canvas.ls-plane").scroll_into_view_if_needed()
    box = page.locator(f"{root} canvas.ls-plane").bounding_box()
    px = (hi1 - lo1) / box["width"], (hi2 - lo2) / box["height"]  # z per CSS pixel
    targets = [(0.0, 0.0), (1.5, -2.0), (-2.8, 2.4), (lo1 + 0.3, hi2 - 0.2)]
    for i, (z1, z2) in enumerate(targets):
        cx = box["x"] + (z1 - lo1) / (hi1 - lo1) * box["width"]
        cy = box["y"] + (hi2 - z2) / (hi2 - lo2) * box["height"]
        if i % 2:  # a tap (touch): pointerdown
            page.evaluate(
                f"([x, y]) => document.querySelector('{root} canvas.ls-plane').dispatchEvent("
                "new PointerEvent('pointerdown', {clientX: x, clientY: y, pointerType: 'touch', "
                "bubbles: true}))", [cx, cy])
        else:  # the mouse moved there
            page.mouse.move(cx, cy)
        state = _state(page, "latent-plane")
        z = np.asarray(state["z"])
        assert abs(z[0] - z1) <= px[0] and abs(z[1] - z2) <= px[1], (z, (z1, z2))
        values = np.asarray(state["values"])
        # the page's float64 pass on the float32 weights vs the model's float64 copy: the
        # same products, summed in another order (≲ 1e3 terms · ε64 · |terms|)
        np.testing.assert_allclose(values, _decode64(vae, z[None])[0], rtol=0, atol=1e-10)
        x = vae.inverse_transform(z[None].astype(np.float64))[0]
        np.testing.assert_allclose(values, x, rtol=0, atol=1e-5)  # float32 network
        rgba, drawn = _pixels(page, f"{root} canvas.ls-image")
        _assert_drawn(rgba, drawn, x, shape)
    assert o.problems == []


# ----------------------------------------------------------------------------- interpolation
def test_interpolation_strip_decodes_the_line_between_two_held_out_images(
        quick_digits_tour, quick_digits_models, opened):
    out, summary = quick_digits_tour
    vae = quick_digits_models["vae"]
    shape = tuple(summary["image_shape"])
    o = opened()
    page = o.page
    spec = _spec(page, "interpolation")
    images = live.decode_array(spec["images"])
    codes = live.decode_array(spec["codes"])
    assert np.array_equal(codes, vae.transform(images).astype(np.float32))
    n_frames = spec["n_frames"]
    root = "div.widget[data-kind=\"interpolation\"]"

    def check(a, b):
        state = _state(page, "interpolation")
        assert state["pair"] == [a, b]
        t = np.linspace(0, 1, n_frames)[:, None]
        Z = (1 - t) * codes[a].astype(np.float64) + t * codes[b].astype(np.float64)
        np.testing.assert_allclose(state["z"], Z, rtol=1e-15, atol=1e-15)
        X = live.interpolation_frames(vae, codes[a], codes[b], n_frames)
        np.testing.assert_allclose(state["values"], X, rtol=0, atol=1e-5)
        for f in range(n_frames):
            rgba, drawn = _pixels(page, f"{root} canvas.ls-frame", f)
            _assert_drawn(rgba, drawn, X[f], shape)
        for end, row in enumerate((a, b)):  # the held-out images themselves, exactly
            rgba, drawn = _pixels(page, f"{root} canvas.ls-end", end)
            assert _assert_drawn(rgba, drawn, images[row], shape).max() == 0

    check(0, 1)
    page.evaluate(
        f"() => {{ const s = document.querySelectorAll('{root} select'); s[0].value = '3'; "
        "s[0].dispatchEvent(new Event('change')); s[1].value = '7'; "
        "s[1].dispatchEvent(new Event('change')); }")
    check(3, 7)
    page.locator(f"{root} button").click()
    a, b = _state(page, "interpolation")["pair"]
    assert a != b and page.evaluate(
        f"Array.from(document.querySelectorAll('{root} select')).map(s => Number(s.value))") \
        == [a, b]
    check(a, b)
    page.locator(root).scroll_into_view_if_needed()
    o.screenshot("report_interpolation.png")
    assert o.problems == []
