"""Fill the reproduction table: run the tours it needs, read the benchmark logs, write the table.

The rows, their published figures and where ours come from are defined in
``src/latentspace/report/reproduction.py``:

- digits: the pca, kmeans and mixtures chapters of a full (not quick) tour;
- lfw_people: the pca chapter of a full tour on the data folder's LFW copy;
- VAE and GAN on MNIST: ``bench/logs/vae_mnist.json`` and ``bench/logs/gan_mnist.json``, written
  by ``bench/vae_mnist.py`` and ``bench/gan.py --part mnist`` (each takes about half an hour on
  two cores; ``--run-neural`` runs the missing ones from here).

Every figure is read back from a tour's ``summary.json`` or a benchmark's JSON; none is typed in.

Run:  python bench/reproduce.py [--data-home DIR] [--out DIR] [--reuse] [--run-neural] [--write]
Writes ``bench/reproduction.json`` and, with ``--write``, the section "## Reproduction table" of
``bench/RESULTS.md`` and the table between the README's reproduction markers (nothing else in
either file).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO / "src"))

from _common import machine  # noqa: E402

from latentspace.report.reproduction import (  # noqa: E402
    ROWS,
    build_table,
    from_bench_logs,
    from_summary,
    to_markdown,
)

SECTION = "## Reproduction table"
LOGS = HERE / "logs"


def needed_tours() -> dict[str, list[str]]:
    """dataset -> chapters whose numbers some row reads."""
    tours: dict[str, list[str]] = {}
    for row in ROWS:
        if row.chapter is not None and row.chapter not in tours.setdefault(row.dataset, []):
            tours[row.dataset].append(row.chapter)
    return tours


def usable(summary: dict, dataset: str, chapters: list[str]) -> bool:
    return (summary.get("dataset") == dataset and not summary.get("quick", True)
            and all(c in summary.get("chapters", {}) for c in chapters))


def run_or_reuse(dataset: str, chapters: list[str], out: Path, data_home, reuse: bool) -> dict:
    """A full tour's summary for ``dataset`` with at least ``chapters``."""
    from latentspace.report.tour import run_tour

    path = out / dataset / "summary.json"
    if reuse and path.is_file():
        summary = json.loads(path.read_text(encoding="utf-8"))
        if usable(summary, dataset, chapters):
            print(f"{dataset}: reusing {path}", flush=True)
            return summary
    print(f"{dataset}: latentspace tour --dataset {dataset} --chapters {','.join(chapters)}",
          flush=True)
    return run_tour(dataset, out=out / dataset, chapters=chapters, data_home=data_home,
                    progress=True)


def run_neural_benches(threads: int) -> None:
    """Run the VAE and GAN MNIST benchmarks whose logs are missing."""
    jobs = {
        "vae_mnist.json": [sys.executable, str(HERE / "vae_mnist.py"), "--budget-min", "30",
                           "--k", "5000", "--threads", str(threads), "--write"],
        "gan_mnist.json": [sys.executable, str(HERE / "gan.py"), "--part", "mnist",
                           "--threads", str(threads), "--write"],
    }
    for log, cmd in jobs.items():
        if (LOGS / log).is_file():
            continue
        print("running", " ".join(cmd[1:]), flush=True)
        subprocess.run(cmd, check=True, cwd=REPO)


def write_section(markdown: str, results: Path) -> None:
    """Replace this script's section of RESULTS.md (up to the next '## ' heading), or append it."""
    text = results.read_text(encoding="utf-8") if results.exists() else "# Benchmark results\n"
    block = f"{SECTION}\n\n{markdown.strip()}\n"
    start = text.find(f"\n{SECTION}\n")
    if start < 0:
        text = text.rstrip() + "\n\n" + block
    else:
        m = re.search(r"\n## ", text[start + 1 + len(SECTION):])
        end = start + 1 + len(SECTION) + m.start() + 1 if m else len(text)
        text = text[: start + 1] + block + ("\n" + text[end:] if m else "")
    tmp = results.with_name(f".{results.name}.tmp")
    tmp.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
    os.replace(tmp, results)


README_BEGIN, README_END = "<!-- reproduction-table:begin -->", "<!-- reproduction-table:end -->"


def write_readme_table(markdown: str, readme: Path) -> bool:
    """Replace the table between the README's markers; False when the markers are missing."""
    text = readme.read_text(encoding="utf-8")
    i, j = text.find(README_BEGIN), text.find(README_END)
    if i < 0 or j < i:
        return False
    text = text[: i + len(README_BEGIN)] + "\n" + markdown.strip() + "\n" + text[j:]
    tmp = readme.with_name(f".{readme.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, readme)
    return True


def section_markdown(table: list[dict], tours: dict, when: str) -> str:
    parts = [
        f"Written by `python bench/reproduce.py --write` on {when}. Each of our figures is read "
        "from a full tour's `summary.json` or from a benchmark script's JSON log (column "
        "*reproduce with*); the published figures are quoted from the sources named.",
        "",
        to_markdown(table),
        "",
        "Where each figure was measured:",
        "",
    ]
    for e in table:
        if e["value"] is None:
            parts.append(f"- {e['key']}: not measured (run `{e['command']}`)")
        else:
            parts.append(f"- {e['key']}: {e['origin']}")
    if tours:
        parts += ["", "Tour runs (wall time on this machine):", ""]
        for ds, t in tours.items():
            chapters = ", ".join(f"{k} {v:.0f} s" for k, v in t["chapters"].items())
            parts.append(f"- {ds}: {t['total_seconds']:.0f} s in all ({chapters}); "
                         f"{t['machine']}")
    return "\n".join(parts)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-home", help="folder with the real datasets (default: the library's)")
    p.add_argument("--out", default=str(LOGS / "reproduction"),
                   help="folder for the tours' reports (default: bench/logs/reproduction)")
    p.add_argument("--reuse", action="store_true",
                   help="reuse a full tour's summary.json already in --out")
    p.add_argument("--skip-tours", action="store_true", help="only read the benchmark logs")
    p.add_argument("--run-neural", action="store_true",
                   help="run bench/vae_mnist.py and bench/gan.py when their logs are missing")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--write", action="store_true", help="write the section of bench/RESULTS.md")
    args = p.parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)

    measurements, tours = [], {}
    if not args.skip_tours:
        for dataset, chapters in needed_tours().items():
            t0 = time.perf_counter()
            summary = run_or_reuse(dataset, chapters, Path(args.out), args.data_home, args.reuse)
            origin = (f"`latentspace tour --dataset {dataset} --chapters {','.join(chapters)}` "
                      f"({summary['date']}, {summary['timings']['total_seconds']:.0f} s)")
            measurements.append(from_summary(summary, origin=origin))
            path = Path(summary["index_html"]).resolve().with_name("summary.json")
            tours[dataset] = {
                # relative to the repository when inside it: no machine paths in the record
                "summary": str(path.relative_to(REPO) if path.is_relative_to(REPO) else path),
                "date": summary["date"], "chapters": summary["timings"]["chapters"],
                "total_seconds": summary["timings"]["total_seconds"],
                "machine": summary.get("machine", machine()),
                "wall_seconds_here": time.perf_counter() - t0,
            }
    if args.run_neural:
        run_neural_benches(args.threads or 1)
    measurements.append(from_bench_logs(LOGS))
    table = build_table(*measurements)
    when = dt.datetime.now().astimezone().isoformat(timespec="seconds")
    doc = {"date": when, "machine": machine(), "rows": table, "tours": tours}
    (HERE / "reproduction.json").write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n",
                                            encoding="utf-8")
    md = section_markdown(table, tours, when)
    print(md)
    if args.write:
        write_section(md, HERE / "RESULTS.md")
        when_day = when[:10]
        readme_md = (to_markdown(table) + f"\n\n_Measured by `python bench/reproduce.py --write` "
                     f"on {when_day}; details and each figure's origin in "
                     "[bench/RESULTS.md](bench/RESULTS.md#reproduction-table)._")
        if not write_readme_table(readme_md, REPO / "README.md"):
            print(f"README.md has no {README_BEGIN} ... {README_END} markers; not updated")
    return doc


if __name__ == "__main__":
    main()
