"""The reproduction table: rows read from tour summaries and benchmark logs, never computed."""

import html
import json
import re
from pathlib import Path

import numpy as np
import pytest
from sklearn.decomposition import PCA as SkPCA

from latentspace.data import load_dataset
from latentspace.report.reproduction import (
    ROWS,
    build_table,
    from_bench_logs,
    from_summary,
    to_markdown,
)
from latentspace.report.tour import run_tour

REPO = Path(__file__).resolve().parents[2]


def _summary(dataset, chapters, quick=False):
    return {"dataset": dataset, "quick": quick,
            "chapters": {k: {"measures": v} for k, v in chapters.items()}}


def test_rows_have_a_source_a_command_and_exactly_one_origin():
    keys = [r.key for r in ROWS]
    assert len(set(keys)) == len(keys) == 6
    for r in ROWS:
        assert r.what and r.published and r.source and r.command
        assert (r.chapter is not None) != (r.bench_log is not None), r.key
        assert (r.chapter is None) == (r.measure is None)
        assert (r.bench_log is None) == (r.bench_key is None)


def test_nothing_measured_says_what_to_run():
    table = build_table()
    assert [e["key"] for e in table] == [r.key for r in ROWS]
    for e, r in zip(table, ROWS):
        assert e["value"] is None and e["ours"] == f"not measured in this run: {r.command}"


def test_a_summary_fills_only_its_own_dataset_rows():
    numbers = {"pca": {"components_90": 21, "variance_150": 0.5},
               "kmeans": {"accuracy_one_cluster_per_class": 0.7912}}
    got = from_summary(_summary("digits", numbers))
    # the LFW row needs a run on lfw_people even though the number name exists here
    assert set(got) == {"digits_components_90", "digits_kmeans_accuracy"}
    assert got["digits_components_90"]["value"] == 21
    table = {e["key"]: e for e in build_table(got)}
    assert table["digits_kmeans_accuracy"]["ours"] == "0.791"
    assert table["digits_components_90"]["ours"] == "21"
    assert table["lfw_variance_150"]["value"] is None
    lfw = from_summary(_summary("lfw_people", {"pca": {"variance_150": 0.9391}}))
    assert build_table(lfw)[0]["ours"] == "93.9%"
    # a value that is not a number (e.g. "not reached with 64") is not a measurement
    assert from_summary(_summary("digits", {"pca": {"components_90": "not reached"}})) == {}


def test_quick_runs_are_marked():
    got = from_summary(_summary("digits", {"pca": {"components_90": 21}}, quick=True))
    entry = build_table(got)[1]
    assert entry["quick"] is True and entry["ours"] == "21 (quick run)"


def test_bench_logs_are_read_with_their_standard_errors(tmp_path):
    (tmp_path / "vae_mnist.json").write_text(json.dumps(
        {"test_nll": 90.594, "test_nll_se": 0.279, "epochs": 147}))
    (tmp_path / "gan_mnist.json").write_text(json.dumps({"parzen_mean": 231.4, "parzen_se": 2.1}))
    got = from_bench_logs(tmp_path)
    assert got["vae_mnist_nll"]["value"] == 90.594 and got["vae_mnist_nll"]["se"] == 0.279
    table = {e["key"]: e for e in build_table(got)}
    assert table["vae_mnist_nll"]["ours"] == "90.59 ± 0.28 nats"
    assert table["gan_mnist_parzen"]["ours"] == "231 ± 2 nats"
    assert table["gan_mnist_parzen"]["origin"] == "bench/logs/gan_mnist.json"
    assert table["vae_mnist_nll"]["origin"] == "bench/logs/vae_mnist.json (147 epochs)"
    # a damaged or missing log is no measurement
    (tmp_path / "gan_mnist.json").write_text("{not json")
    assert set(from_bench_logs(tmp_path)) == {"vae_mnist_nll"}
    assert from_bench_logs(tmp_path / "nowhere") == {}


def test_the_earlier_measurement_wins():
    a = {"digits_components_90": {"value": 21, "se": None, "origin": "a", "quick": False}}
    b = {"digits_components_90": {"value": 99, "se": None, "origin": "b", "quick": False}}
    assert build_table(a, b)[1]["origin"] == "a"


def test_bench_scripts_write_the_keys_the_rows_read():
    # the benchmark scripts' JSON outputs are the rows' sources: the keys must be written there
    for r in ROWS:
        if r.bench_log is None:
            continue
        script = REPO / "bench" / ("vae_mnist.py" if r.bench_log.startswith("vae") else "gan.py")
        text = script.read_text(encoding="utf-8")
        for key in (r.bench_key, r.error_key):
            assert f'"{key}":' in text, (script.name, key)


def test_markdown_has_every_row_and_command():
    md = to_markdown(build_table())
    lines = md.splitlines()
    assert len(lines) == 2 + len(ROWS)
    for r in ROWS:
        assert f"`{r.command}`" in md and r.published in md


@pytest.fixture(scope="module")
def pca_tour(tmp_path_factory):
    out = tmp_path_factory.mktemp("repro")
    return out, run_tour("digits", out=out, quick=False, chapters=["pca"], progress=False)


def test_tour_summary_and_page_hold_the_measured_row(pca_tour):
    out, summary = pca_tour
    table = {e["key"]: e for e in summary["reproduction"]}
    row = table["digits_components_90"]
    # read back from the chapter's own number, which equals scikit-learn's 90% rule (oracle)
    X = np.asarray(load_dataset("digits").data, dtype=np.float64)
    assert row["value"] == summary["chapters"]["pca"]["measures"]["components_90"]
    assert row["value"] == summary["chapters"]["pca"]["numbers"]["components for 90% variance"]
    assert row["value"] == SkPCA(0.9, svd_solver="full").fit(X).n_components_
    assert row["origin"] == "this run" and row["quick"] is False
    page = html.unescape((out / "index.html").read_text(encoding="utf-8"))
    section = page[page.index('<section id="reproduction">'):]
    section = section[: section.index("</section>")]
    assert f"<b>{row['ours']}</b>" in section
    assert f"reproduce: <code>{row['command']}</code>" in section
    for key, e in table.items():
        if key != "digits_components_90":
            assert e["value"] is None
            assert f"not measured in this run: <code>{e['command']}</code>" in section
    assert len(re.findall(r"<tr><th scope=\"row\">", section)) == len(ROWS)
    import matplotlib.pyplot as plt

    plt.close("all")


def _bench_module():
    import importlib.util
    import sys

    sys.path.insert(0, str(REPO / "bench"))
    spec = importlib.util.spec_from_file_location("bench_reproduce",
                                                  REPO / "bench" / "reproduce.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bench_script_replaces_only_its_own_section(tmp_path):
    mod = _bench_module()
    results = tmp_path / "RESULTS.md"
    before = "# Benchmark results\n\nintro\n\n## PCA\n\npca text\n\n## Neural\n\nneural text\n"
    results.write_text(before)
    mod.write_section("first table", results)
    assert results.read_text() == before + "\n## Reproduction table\n\nfirst table\n"
    mod.write_section("second table", results)
    assert results.read_text() == before + "\n## Reproduction table\n\nsecond table\n"
    # a section in the middle is replaced in place and what follows it is kept
    results.write_text("# B\n\n## Reproduction table\n\nold\n\n## Later\n\nkeep me\n")
    mod.write_section("new", results)
    assert results.read_text() == "# B\n\n## Reproduction table\n\nnew\n\n## Later\n\nkeep me\n"
    assert not list(tmp_path.glob(".*tmp"))


def test_bench_script_needs_full_tours_of_the_rows_datasets():
    mod = _bench_module()
    assert mod.needed_tours() == {"lfw_people": ["pca"], "digits": ["pca", "kmeans", "mixtures"]}
    s = {"dataset": "digits", "quick": False, "chapters": {"pca": {}, "kmeans": {}}}
    assert not mod.usable(s, "digits", ["pca", "kmeans", "mixtures"])
    s["chapters"]["mixtures"] = {}
    assert mod.usable(s, "digits", ["pca", "kmeans", "mixtures"])
    assert not mod.usable(dict(s, quick=True), "digits", ["pca"])


def test_bench_script_fills_only_the_readme_markers(tmp_path):
    mod = _bench_module()
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\n## Reproduction\n\nintro\n\n{mod.README_BEGIN}\nold\n"
                      f"{mod.README_END}\n\n## Next\n")
    assert mod.write_readme_table("| a |\n|---|", readme)
    assert readme.read_text() == (f"# x\n\n## Reproduction\n\nintro\n\n{mod.README_BEGIN}\n"
                                  f"| a |\n|---|\n{mod.README_END}\n\n## Next\n")
    readme.write_text("no markers\n")
    assert not mod.write_readme_table("t", readme) and readme.read_text() == "no markers\n"


def test_every_chapter_row_is_produced_by_its_chapter_on_its_dataset(quick_digits_tour,
                                                                     shared_data, tmp_path):
    """Each row read from a chapter finds its measure in a run of that chapter on the row's
    dataset: a chapter that renames or drops the figure fails here, not silently as "not
    measured" in the report. Digits rows come from the session's quick tour of every chapter;
    the others from a quick run of their chapter on their dataset."""
    runs = {"digits": quick_digits_tour[1]}
    rows = [r for r in ROWS if r.chapter is not None]
    assert {r.dataset for r in rows} == {"digits", "lfw_people"}
    for r in rows:
        if r.dataset not in runs:
            runs[r.dataset] = run_tour(r.dataset, out=tmp_path / r.dataset, quick=True,
                                       chapters=[r.chapter], data_home=shared_data,
                                       progress=False)
        summary = runs[r.dataset]
        measures = summary["chapters"][r.chapter]["measures"]
        assert isinstance(measures.get(r.measure), (int, float)), (r.key, sorted(measures))
        measured = {e["key"] for e in summary["reproduction"] if e["value"] is not None}
        assert r.key in measured
