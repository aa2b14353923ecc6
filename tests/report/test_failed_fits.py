"""A failed fit is never shown as if it had worked: warnings raised while a chapter runs become a
warning box in its section, a flag in the contents and records in ``summary.json``."""

import json
import warnings
from html.parser import HTMLParser

import pytest

from latentspace.exceptions import ConvergenceWarning
from latentspace.report import chapters as chapters_pkg
from latentspace.report.tour import FitWarnings, run_tour

# a chapter whose only model stops before converging: one EM iteration of a 5-component
# mixture on digits cannot meet tol, and the mixture says so with a ConvergenceWarning
_UNCONVERGED_CHAPTER = '''
from latentspace.mixture import GaussianMixture
from latentspace.report import Chapter

KEY, TITLE = "unconverged_demo", "A mixture stopped after one iteration"

def run(ctx):
    gm = GaussianMixture(5, max_iter=1, tol=1e-12, covariance_type="diag",
                         random_state=0).fit(ctx.X[:, :16])
    ctx.results["unconverged_demo"] = gm
    return Chapter(KEY, TITLE, "intro", "", [], {"converged": bool(gm.converged_)})
'''


# a chapter whose GAN collapses on purpose: at a learning rate of 1e-7 G stays at its
# initialisation, which maps every z to nearly the mean image (its samples' diversity is far
# below the 0.5 at which the fit reports mode collapse)
_COLLAPSED_GAN_CHAPTER = '''
from latentspace.neural import GAN
from latentspace.report import Chapter

KEY, TITLE = "collapsed_gan", "A GAN that cannot learn"

def run(ctx):
    gan = GAN(16, learning_rate=1e-7, max_epochs=2, random_state=0).fit(ctx.X)
    ctx.results["collapsed_gan"] = gan
    return Chapter(KEY, TITLE, "intro", "", [], {"mode collapse": bool(gan.mode_collapse_)})
'''


class _Sections(HTMLParser):
    """section id -> text inside its div.warning boxes."""

    def __init__(self):
        super().__init__()
        self.boxes, self._section, self._depth = {}, None, 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "section":
            self._section = a.get("id")
        if tag == "div" and "warning" in (a.get("class") or "").split():
            self._depth = 1
            self.boxes.setdefault(self._section, "")
        elif self._depth and tag == "div":
            self._depth += 1

    def handle_endtag(self, tag):
        if tag == "div" and self._depth:
            self._depth -= 1

    def handle_data(self, data):
        if self._depth:
            self.boxes[self._section] += data


def _with_chapter(monkeypatch, tmp_path, source, key):
    (tmp_path / f"{key}.py").write_text(source)
    monkeypatch.setattr(chapters_pkg, "__path__", list(chapters_pkg.__path__) + [str(tmp_path)])
    monkeypatch.setattr(chapters_pkg, "ORDER", ["pca", key])


def test_unconverged_fit_gets_a_warning_box_a_flag_and_a_summary_record(tmp_path, monkeypatch):
    _with_chapter(monkeypatch, tmp_path, _UNCONVERGED_CHAPTER, "unconverged_demo")
    out = tmp_path / "out"
    with pytest.warns(ConvergenceWarning):  # still shown to the user running the tour
        summary = run_tour("digits", out=out, quick=True, progress=False)
    recorded = summary["chapters"]["unconverged_demo"]["warnings"]
    assert summary["chapters"]["unconverged_demo"]["numbers"]["converged"] is False
    assert len(recorded) == 1 and recorded[0]["category"] == "ConvergenceWarning"
    assert summary["failed_fits"] == {"unconverged_demo": [recorded[0]["message"]]}
    assert summary["chapters"]["pca"]["warnings"] == []
    on_disk = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert on_disk["failed_fits"] == summary["failed_fits"]

    page = (out / "index.html").read_text(encoding="utf-8")
    parser = _Sections()
    parser.feed(page)
    assert set(parser.boxes) == {"unconverged_demo"}  # the box is in that chapter, not in PCA's
    box = " ".join(parser.boxes["unconverged_demo"].split())
    assert "failed or stopped short" in box
    assert " ".join(recorded[0]["message"].split())[:60] in box
    assert page.count('class="flag"') == 1


def test_fit_warnings_records_failures_once_with_a_count_and_passes_others_through():
    with warnings.catch_warnings(record=True) as outside:
        warnings.simplefilter("always")
        with FitWarnings() as failed:
            for _ in range(3):
                warnings.warn("EM stopped after 1 iteration", ConvergenceWarning)
            warnings.warn("mode collapse: samples cover 1 of 8 modes", UserWarning)
            warnings.warn("Posterior collapse: 0 of 2 latent units are active", UserWarning)
            warnings.warn("tight_layout not applied", UserWarning)
            warnings.warn("old API", DeprecationWarning)
    assert [(r["message"][:14], r["count"]) for r in failed.records] == [
        ("EM stopped aft", 3), ("mode collapse:", 1), ("Posterior coll", 1)]
    assert [r["category"] for r in failed.records] == [
        "ConvergenceWarning", "UserWarning", "UserWarning"]
    shown = [str(w.message) for w in outside]
    # failures shown once each, other warnings handed back untouched
    assert shown.count("EM stopped after 1 iteration") == 1
    assert "tight_layout not applied" in shown and "old API" in shown


def test_a_chapter_that_silences_a_warning_keeps_it_out_of_the_box():
    with FitWarnings() as failed:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=ConvergenceWarning)
            warnings.warn("EM stopped", ConvergenceWarning)
        warnings.warn("EM stopped again", ConvergenceWarning)
    assert [r["message"] for r in failed.records] == ["EM stopped again"]


def test_a_collapsed_gan_shows_a_warning_box_in_its_chapter(tmp_path, monkeypatch):
    _with_chapter(monkeypatch, tmp_path, _COLLAPSED_GAN_CHAPTER, "collapsed_gan")
    out = tmp_path / "out"
    with pytest.warns(ConvergenceWarning, match="mode collapse"):
        summary = run_tour("digits", out=out, quick=True, progress=False)
    chapter = summary["chapters"]["collapsed_gan"]
    assert chapter["numbers"]["mode collapse"] is True
    messages = [w["message"] for w in chapter["warnings"]]
    assert any(m.startswith("mode collapse") for m in messages)
    assert summary["failed_fits"]["collapsed_gan"] == messages
    parser = _Sections()
    parser.feed((out / "index.html").read_text(encoding="utf-8"))
    assert set(parser.boxes) == {"collapsed_gan"}
    assert "mode collapse" in parser.boxes["collapsed_gan"]
