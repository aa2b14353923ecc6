"""The digits report opened in headless Chromium: no console errors, every image decoded.

Chromium comes from the system (``make test`` installs Debian's package when it is missing
and the machine allows it); the page is opened from disk with all network access blocked.
A screenshot is written to ``test-artifacts/report.png`` for a person to look at.
"""

import shutil
from pathlib import Path

import pytest

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def _chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def test_report_renders_in_headless_chromium(quick_digits_tour):
    exe = _chromium()
    if exe is None:
        pytest.skip("Chromium is not installed and could not be installed here (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (dev extra) not installed")
    out, summary = quick_digits_tour
    index = out / "index.html"
    problems, requests = [], []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, args=FLAGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.on("console", lambda m: m.type == "error" and problems.append(m.text))
        page.on("pageerror", lambda e: problems.append(str(e)))

        def route(r):
            if r.request.url.startswith(("file:", "data:")):
                r.continue_()
            else:
                requests.append(r.request.url)
                r.abort()

        page.route("**/*", route)
        page.goto(index.as_uri())
        page.wait_for_load_state("load")
        # wait until every image is decoded (a failed decode rejects and is reported as such)
        decoded = page.evaluate(
            "Promise.all(Array.from(document.images).map(i => i.decode().then(() => true, "
            "() => false)))")
        images = page.evaluate(
            "Array.from(document.images).map(i => ({src: i.src.slice(0, 22), ok: i.complete, "
            "w: i.naturalWidth, h: i.naturalHeight, alt: i.alt}))"
        )
        toc = page.evaluate("Array.from(document.querySelectorAll('nav a, .toc a')).length")
        sections = page.evaluate(
            "Array.from(document.querySelectorAll('main section')).map(s => s.id)")
        # every table of contents link leads to a section that is laid out (has a height)
        broken = page.evaluate(
            "Array.from(document.querySelectorAll('nav a')).filter(a => { const t = "
            "document.querySelector(a.getAttribute('href')); return !t || t.offsetHeight === 0; })"
            ".map(a => a.getAttribute('href'))")
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "report.png"), full_page=False)
        page.screenshot(path=str(ARTIFACTS / "report_full.png"), full_page=True)
        browser.close()
    assert problems == []
    assert requests == [], "the report must not reach the network"
    assert len(images) == sum(len(c["figures"]) for c in summary["chapters"].values()) >= 4
    assert all(decoded), f"{decoded.count(False)} image(s) failed to decode"
    for img in images:
        assert img["ok"] and img["w"] > 0 and img["h"] > 0, img
        assert img["src"].startswith("data:image/png"), img
        assert img["alt"].strip(), "every figure needs alt text"
    assert toc >= 1 and broken == []
    assert sections == [*summary["chapters"], "reproduction", "about"]
    assert (ARTIFACTS / "report.png").stat().st_size > 10_000
