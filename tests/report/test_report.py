"""The tour runner, its HTML page and summary, and the PCA chapter, checked against the models."""

import base64
import html
import json
import re
from html.parser import HTMLParser

import numpy as np
import pytest
from sklearn.decomposition import PCA as SkPCA

from latentspace.data import load_dataset
from latentspace.decomposition import PCA
from latentspace.report import TourContext
from latentspace.report import chapters as chapters_pkg
from latentspace.report._html import RenderedChapter, format_value, json_safe, render_html
from latentspace.report.chapters import pca as pca_chapter
from latentspace.report.tour import run_tour, select_chapters

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def tour(tmp_path_factory):
    out = tmp_path_factory.mktemp("tour")
    summary = run_tour("digits", out=out, quick=True, chapters=["pca"], progress=False)
    return out, summary


@pytest.fixture(scope="module")
def digits_X():
    return np.asarray(load_dataset("digits").data, dtype=np.float64)


# ----------------------------------------------------------------------------- the page
def test_index_html_embeds_every_figure_as_png(tour):
    out, summary = tour
    page = (out / "index.html").read_text(encoding="utf-8")
    figures = summary["chapters"]["pca"]["figures"]
    pngs = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)" alt="([^"]*)"', page)
    assert len(pngs) == len(figures) == 4
    for (data, alt), fig in zip(pngs, figures):
        raw = base64.b64decode(data, validate=True)
        assert raw.startswith(PNG_SIGNATURE) and len(raw) > 1000
        assert html.unescape(alt) == fig["alt"] and fig["alt"]
        assert html.escape(fig["caption"]) in page
    assert page.count("<figcaption>") == 4


def test_index_html_is_self_contained_with_toc_and_header(tour):
    out, summary = tour
    page = (out / "index.html").read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    # scripts only inline: the widgets' JSON and the one script that draws them
    assert not re.search(r"<script[^>]*\ssrc=", page, re.I)
    assert not re.search(r'(src|href)="(https?:)?//', page)  # nothing fetched from a network
    assert '<a href="#pca">' in page and '<section id="pca">' in page
    assert "max-width: 1100px" in page and "max-width: 100%" in page
    assert "digits" in page and summary["library_version"] in page
    assert "Chapter time:" in page and "<table" in page


def test_every_number_in_summary_is_shown(tour):
    out, summary = tour
    page = html.unescape((out / "index.html").read_text(encoding="utf-8"))
    for name, value in summary["chapters"]["pca"]["numbers"].items():
        assert f">{name}</th><td class=\"value\">{format_value(value)}<" in page


def test_summary_json_matches_returned_summary_and_timings(tour):
    out, summary = tour
    on_disk = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert on_disk == summary
    assert summary["dataset"] == "digits" and summary["n_samples"] == 1797
    assert summary["n_features"] == 64 and summary["image_shape"] == [8, 8]
    t = summary["timings"]
    assert t["chapters"]["pca"] == summary["chapters"]["pca"]["seconds"] > 0
    assert t["total_seconds"] >= t["chapters"]["pca"] + t["load_seconds"] - 1e-9
    assert summary["index_html"] == str(out / "index.html")
    assert not list(out.glob(".*tmp"))  # atomic writes leave no temporary file


def test_summary_numbers_equal_the_fitted_pca(tour, digits_X):
    numbers = tour[1]["chapters"]["pca"]["numbers"]
    X = digits_X
    n, d = X.shape
    pca = PCA(random_state=0).fit(X)  # the chapter's fit: all components, solver auto
    cum = np.cumsum(pca.explained_variance_ratio_)
    assert numbers["samples"] == n and numbers["features (pixels)"] == d
    assert numbers["components fitted"] == pca.n_components_ == 64
    assert numbers["solver used"] == pca.fit_svd_solver_
    assert numbers["variance explained by 10 components"] == pytest.approx(cum[9], rel=1e-12)
    assert numbers["variance explained by 50 components"] == pytest.approx(cum[49], rel=1e-12)
    assert "variance explained by 150 components" not in numbers  # only 64 exist
    # independent oracles: scikit-learn's variance-fraction rule and its PPCA likelihood
    k90 = SkPCA(n_components=0.9, svd_solver="full").fit(X).n_components_
    assert numbers["components for 90% variance"] == k90
    ev = pca.explained_variance_
    for k in (5, 10, 20, 50, 64):
        expected = (n - 1) / n * ev[k:].sum() / d  # discarded eigenvalues = in-sample MSE
        got = numbers[f"reconstruction MSE (k={k})"]
        assert got == pytest.approx(expected, rel=1e-8, abs=1e-14)
    sk = SkPCA(n_components=k90, svd_solver="full").fit(X)
    ll = numbers[f"PPCA mean log-likelihood (nats, k={k90})"]
    assert ll == pytest.approx(sk.score(X), rel=1e-8)
    sigma2 = numbers[f"PPCA noise variance σ² (k={k90})"]
    assert sigma2 == pytest.approx(sk.noise_variance_, rel=1e-8)


# ----------------------------------------------------------------------------- the chapter
def _ctx(X, y=None, name="digits", shape=(8, 8), names=None):
    return TourContext(name=name, X=X, y=y, image_shape=shape, target_names=names, quick=True)


def test_chapter_numbers_come_from_the_estimator_it_leaves(digits_X):
    ds = load_dataset("digits")
    steps = []
    ctx = _ctx(digits_X, ds.target, names=ds.target_names)
    ctx.progress = steps.append
    chapter = pca_chapter.run(ctx)
    pca = ctx.results["pca"]
    assert chapter.key == pca_chapter.KEY == "pca" and chapter.title == pca_chapter.TITLE
    assert chapter.numbers["solver used"] == pca.fit_svd_solver_
    assert chapter.numbers["variance explained by 10 components"] == float(
        np.cumsum(pca.explained_variance_ratio_)[9])
    ppca = ctx.results["ppca"]  # σ² = 0 with all components: the 90% model is scored
    key = f"PPCA mean log-likelihood (nats, k={ppca.n_components_})"
    assert chapter.numbers[key] == ppca.score(digits_X)
    assert len(chapter.figures) == 4 and all(f.alt and f.caption for f in chapter.figures)
    assert steps[0] == "fit PCA" and len(steps) >= 5
    import matplotlib.pyplot as plt

    plt.close("all")


def test_chapter_scores_its_own_model_when_noise_variance_is_positive():
    # the eigenfaces set-up on wide random data: 150 of min(n, d) = 200 components, σ² > 0
    X = np.random.default_rng(0).random((200, 300))
    ctx = _ctx(X, None, name="lfw_people", shape=(15, 20))
    chapter = pca_chapter.run(ctx)
    pca = ctx.results["pca"]
    assert pca.n_components_ == 150 and pca.noise_variance_ > 0 and "ppca" not in ctx.results
    assert chapter.numbers["PPCA mean log-likelihood (nats, k=150)"] == pca.score(X)
    assert chapter.numbers["reconstruction MSE (k=150)"] > 0
    import matplotlib.pyplot as plt

    plt.close("all")


@pytest.mark.slow
def test_eigenfaces_on_lfw(shared_data):
    ds = load_dataset("lfw_people", data_home=shared_data)
    X = np.asarray(ds.data, dtype=np.float64)
    ctx = _ctx(X, ds.target, name="lfw_people", shape=ds.image_shape, names=ds.target_names)
    chapter = pca_chapter.run(ctx)
    pca = ctx.results["pca"]
    assert X.shape == (1348, 2914) and ds.image_shape == (62, 47)
    assert pca.n_components_ == 150 and "ppca" not in ctx.results
    # oracle: eigenvalues of the Gram matrix (numpy), and PPCA's in-sample mean log-likelihood
    # in closed form at its ML solution (Tipping & Bishop 1999, eq. 4 with C from eq. 7):
    # −½ [d log 2π + Σ_{j≤k} log λ_j + (d − k) log σ² + (n−1)/n · min(n, d)]
    n, d = X.shape
    Xc = X - X.mean(0)
    lam = np.linalg.eigvalsh(Xc @ Xc.T)[::-1] / (n - 1)
    lam = np.clip(lam, 0, None)
    k, r = 150, min(n, d)
    sigma2 = lam[k:r].mean()
    ll = -0.5 * (d * np.log(2 * np.pi) + np.log(lam[:k]).sum() + (d - k) * np.log(sigma2)
                 + (n - 1) / n * r)
    assert chapter.numbers["variance explained by 150 components"] == pytest.approx(
        lam[:k].sum() / lam.sum(), rel=1e-9)
    assert chapter.numbers["PPCA noise variance σ² (k=150)"] == pytest.approx(sigma2, rel=1e-7)
    assert chapter.numbers["PPCA mean log-likelihood (nats, k=150)"] == pytest.approx(ll, rel=1e-9)
    # in-sample MSE at k: (n−1)/n Σ_{j>k} λ_j / d
    assert chapter.numbers["reconstruction MSE (k=50)"] == pytest.approx(
        (n - 1) / n * lam[50:].sum() / d, rel=1e-7)
    assert "reconstruction MSE (k=150)" in chapter.numbers
    import matplotlib.pyplot as plt

    plt.close("all")


# ----------------------------------------------------------------------------- chapter selection
def test_available_chapters_follow_order_and_include_pca():
    found = chapters_pkg.available_chapters()
    keys = [k for k, _ in found]
    assert keys[0] == "pca" and found[0][1] is pca_chapter.run
    assert keys == [k for k in chapters_pkg.ORDER if k in keys]


def test_missing_module_is_skipped_but_broken_module_raises(tmp_path, monkeypatch):
    (tmp_path / "broken_chapter.py").write_text("import a_module_that_does_not_exist_xyz\n")
    monkeypatch.setattr(chapters_pkg, "__path__", list(chapters_pkg.__path__) + [str(tmp_path)])
    monkeypatch.setattr(chapters_pkg, "ORDER", ["pca", "not_written_yet"])
    assert [k for k, _ in chapters_pkg.available_chapters()] == ["pca"]
    monkeypatch.setattr(chapters_pkg, "ORDER", ["pca", "broken_chapter"])
    with pytest.raises(ImportError, match="a_module_that_does_not_exist_xyz"):
        chapters_pkg.available_chapters()


def test_unknown_chapter_lists_the_available_ones():
    with pytest.raises(ValueError, match=r"'nope'.*available chapters: pca"):
        select_chapters(["pca", "nope"])
    with pytest.raises(ValueError, match="available chapters"):
        select_chapters("")
    assert [k for k, _ in select_chapters("pca")] == ["pca"]


def test_run_tour_rejects_unknown_chapter_before_writing(tmp_path):
    with pytest.raises(ValueError, match="available chapters"):
        run_tour("digits", out=tmp_path / "x", chapters=["nope"], progress=False)
    assert not (tmp_path / "x").exists()


# ----------------------------------------------------------------------------- html helpers
def test_render_escapes_text_and_json_safe_values():
    ch = RenderedChapter(key="k", title="a < b & c", intro='say "hi"', formula="x<y",
                         figures=[], numbers=json_safe({"inf": float("inf"), "n": np.int64(3),
                                                        "f": np.float32(0.5)}), seconds=1.0)
    meta = dict(dataset="toy", n_samples=3, n_features=2, image_shape=(1, 2), date="today",
                library_version="0", total_seconds=1.0, device="cpu", quick=False)
    page = render_html(meta, [ch])
    assert "a &lt; b &amp; c" in page and "x&lt;y" in page and "a < b" not in page
    assert ch.numbers == {"inf": "inf", "n": 3, "f": 0.5}
    assert json.loads(json.dumps(ch.numbers, allow_nan=False)) == ch.numbers


# ----------------------------------------------------------------------------- page vs summary.json
class _Tables(HTMLParser):
    """Rows of every table in the page, by section id: {section: [(class, [cell texts])]}."""

    def __init__(self):
        super().__init__()
        self.sections, self._section, self._table = {}, None, None
        self._row, self._cell = None, None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "section":
            self._section = a.get("id")
            self.sections.setdefault(self._section, [])
        elif tag == "table":
            self._table = a.get("class")
        elif tag == "tr" and self._table is not None:
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self._row.append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "tr" and self._row is not None:
            if self._row and self._row[0] not in ("quantity", "step", "figure", "model"):  # headers
                self.sections[self._section].append((self._table, self._row))
            self._row = None
        elif tag == "table":
            self._table = None
        elif tag == "section":
            self._section = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def page_tables(out):
    parser = _Tables()
    parser.feed((out / "index.html").read_text(encoding="utf-8"))
    return parser.sections


def assert_every_table_number_is_in_summary(out, summary):
    on_disk = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert on_disk == summary
    sections = page_tables(out)
    assert list(sections) == [*summary["chapters"], "reproduction", "about"]
    n_rows = 0
    for key, ch in summary["chapters"].items():
        rows = [r for r in sections[key] if r[0] == "numbers"]
        # tables of models by metrics: every cell is the summary's value, as formatted
        cells = [r for cls, r in sections[key] if cls == "models"]
        assert cells == [[r["label"], *(" ".join(format_value(v).split()) for v in r["values"])]
                         for t in ch.get("tables", []) for r in t["rows"]], key
        assert len(rows) + len(cells) == len(sections[key]), key
        # every row of the page is a number of summary.json, shown as formatted from it ...
        for _, (name, text) in rows:
            assert name in ch["numbers"], (key, name)
            assert text == " ".join(format_value(ch["numbers"][name]).split()), (key, name)
        # ... and every number of summary.json is a row of the page
        assert [name for _, (name, _) in rows] == list(ch["numbers"])
        n_rows += len(rows)
    titles = {ch["title"]: k for k, ch in summary["chapters"].items()}
    for _, (name, text) in sections["about"]:
        seconds = (summary["timings"]["load_seconds"] if name == "loading the data"
                   else summary["timings"]["chapters"][titles[name]])
        assert text == f"{seconds:.1f} s", name
    repro = {e["what"]: e for e in summary["reproduction"]}
    assert len(sections["reproduction"]) == len(repro)
    for _, (what, ours, published, source) in sections["reproduction"]:
        e = next(e for w, e in repro.items() if what.startswith(w))
        assert e["command"] in what or ours.endswith(e["command"])
        assert ours == (e["ours"] if e["value"] is not None
                        else f"not measured in this run: {e['command']}")
        assert (published, source) == (e["published"], e["source"])
    return n_rows


def test_every_number_in_the_page_tables_is_in_summary_json(tour):
    out, summary = tour
    assert assert_every_table_number_is_in_summary(out, summary) == len(
        summary["chapters"]["pca"]["numbers"])


def test_full_quick_report_every_chapter_and_every_number(quick_digits_tour):
    from latentspace.report.chapters import ORDER

    out, summary = quick_digits_tour
    assert list(summary["chapters"]) == ORDER  # every chapter of the lecture, in order
    for key, ch in summary["chapters"].items():
        assert ch["numbers"] and ch["figures"], key
        assert all(f["caption"] and f["alt"] for f in ch["figures"]), key
    assert assert_every_table_number_is_in_summary(out, summary) > 40


def test_closing_note_gives_the_run_time_and_the_command(tour):
    out, summary = tour
    page = html.unescape((out / "index.html").read_text(encoding="utf-8"))
    about = page[page.index('<section id="about">'):]
    assert summary["command"] == "latentspace tour --dataset digits --chapters pca --quick --seed 0"
    assert f"<code>{summary['command']}</code>" in about
    assert summary["machine"] in about
    total = summary["timings"]["total_seconds"]
    assert f"<b>{total:.1f} s</b>" in about or f"<b>{int(total // 60)} min" in about


def test_every_chapter_module_is_in_the_one_chapter_list():
    """A chapter module left out of ORDER would silently never run; each also states its
    expected time, used by the progress display."""
    import pkgutil

    modules = {m.name for m in pkgutil.iter_modules(chapters_pkg.__path__)
               if not m.name.startswith("_")}
    assert modules == set(chapters_pkg.ORDER)
    for key, run in chapters_pkg.available_chapters():
        module = __import__(f"latentspace.report.chapters.{key}", fromlist=["KEY"])
        assert module.KEY == key and callable(run)
        full, quick = module.EXPECTED_SECONDS
        assert full >= quick > 0
        assert chapters_pkg.expected_seconds(key, quick=True) == quick
