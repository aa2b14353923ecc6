"""The reproduction table: our figures next to the published ones.

Each row names a published figure, where it was published, the command that reproduces it,
and where our figure is read from: a measure of a tour chapter (``Chapter.measures``, by a
stable id that does not change with the chapter's display names; ``summary.json`` of a run on
the row's dataset) or a field of a benchmark script's JSON output (``bench/logs/*.json``).
Nothing here computes a figure; a row without a source is shown as "not measured" with its
command.

The tour shows the rows its own run measured; ``bench/reproduce.py`` gathers every row from
full tour runs and the benchmark logs and writes the table into ``bench/RESULTS.md`` and
``bench/reproduction.json``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

__all__ = ["ROWS", "Row", "build_table", "from_bench_logs", "from_summary", "to_markdown"]


def _percent(v: float) -> str:
    return f"{100 * v:.1f}%"


def _integer(v) -> str:
    return str(int(v))


def _three(v: float) -> str:
    return f"{v:.3f}"


def _two(v: float) -> str:
    return f"{v:.2f}"


def _zero(v: float) -> str:
    return f"{v:.0f}"


@dataclass(frozen=True)
class Row:
    """One published figure and where ours comes from.

    Exactly one of (``chapter``, ``measure``) or (``bench_log``, ``bench_key``) is set;
    ``measure`` is a key of the chapter's ``measures``.
    ``error_key`` names the standard error beside the figure, when its source has one.
    """

    key: str
    what: str
    dataset: str
    published: str
    source: str
    command: str
    fmt: Callable[[float], str]  # the number (and its standard error) as text
    unit: str = ""
    chapter: str | None = None
    measure: str | None = None
    bench_log: str | None = None  # file name in bench/logs
    bench_key: str | None = None
    error_key: str | None = None
    note: str = ""


_PDSH = "VanderPlas, Python Data Science Handbook (2016)"
ROWS: tuple[Row, ...] = (
    Row(
        key="lfw_variance_150",
        what="LFW eigenfaces: share of variance in 150 components",
        dataset="lfw_people", published="just over 90%",
        source=f"{_PDSH}, In Depth: Principal Component Analysis",
        command="latentspace tour --dataset lfw_people --data-home DIR --chapters pca",
        fmt=_percent, chapter="pca", measure="variance_150",
        note="our LFW copy is rebuilt from 150×150 thumbnails of the same images; they are a "
             "little smoother, so PCA explains a little more variance",
    ),
    Row(
        key="digits_components_90",
        what="digits: components for 90% of the variance",
        dataset="digits", published="about 20",
        source=f"{_PDSH}, In Depth: Principal Component Analysis",
        command="latentspace tour --chapters pca",
        fmt=_integer, chapter="pca", measure="components_90",
    ),
    Row(
        key="digits_kmeans_accuracy",
        what="K-means on digits (K = 10): label-matched accuracy",
        dataset="digits", published="about 0.80",
        source=f"{_PDSH}, In Depth: k-Means Clustering",
        command="latentspace tour --chapters kmeans",
        fmt=_three, chapter="kmeans", measure="accuracy_one_cluster_per_class",
    ),
    Row(
        key="digits_gmm_aic",
        what="GMM on digits in PCA-41 space (PCA(0.99, whiten=True)): components at the AIC "
             "minimum over 50–200 (step 10)",
        dataset="digits", published="about 110",
        source=f"{_PDSH}, In Depth: Gaussian Mixture Models",
        command="latentspace tour --chapters mixtures",
        fmt=_integer, chapter="mixtures", measure="handbook_aic_components",
    ),
    Row(
        key="vae_mnist_nll",
        what="VAE on binarised MNIST (784-200-200-50): test NLL, importance-weighted, K = 5000",
        dataset="mnist", published="86.76 nats",
        source="Burda, Grosse & Salakhutdinov, Importance Weighted Autoencoders (ICLR 2016), "
               "Table 1 (VAE, k = 1)",
        command="python bench/vae_mnist.py --budget-min 30 --k 5000 --write",
        fmt=_two, unit=" nats", bench_log="vae_mnist.json", bench_key="test_nll",
        error_key="test_nll_se",
        note="lower is better; the paper trains for 3280 epochs, the benchmark for a fixed "
             "wall-clock budget on a CPU",
    ),
    Row(
        key="gan_mnist_parzen",
        what="GAN on MNIST: Parzen-window log-likelihood of the test set",
        dataset="mnist", published="225 ± 2 nats",
        source="Goodfellow et al., Generative Adversarial Nets (NeurIPS 2014), Table 1",
        command="python bench/gan.py --part mnist --write",
        fmt=_zero, unit=" nats", bench_log="gan_mnist.json", bench_key="parzen_mean",
        error_key="parzen_se",
        note="higher is better; σ chosen on held-out training images",
    ),
)


def from_summary(summary: dict, origin: str = "this run") -> dict[str, dict]:
    """The rows a tour summary measures -> {row key: measurement}.

    A row counts when the summary's dataset is the row's and its chapter holds the measure.
    A measurement is ``{"value", "se", "origin", "quick"}``.
    """
    out = {}
    chapters = summary.get("chapters", {})
    for row in ROWS:
        if row.chapter is None or summary.get("dataset") != row.dataset:
            continue
        measures = chapters.get(row.chapter, {}).get("measures", {})
        value = measures.get(row.measure)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            out[row.key] = {"value": value, "se": None, "origin": origin,
                            "quick": bool(summary.get("quick", False))}
    return out


def from_bench_logs(folder) -> dict[str, dict]:
    """The rows that benchmark scripts measured, read from their JSON files in ``folder``."""
    out = {}
    folder = Path(folder)
    for row in ROWS:
        if row.bench_log is None:
            continue
        path = folder / row.bench_log
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        value = doc.get(row.bench_key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            se = doc.get(row.error_key) if row.error_key else None
            origin = f"bench/logs/{row.bench_log}"
            facts = [f"{doc['epochs']} epochs" if isinstance(doc.get("epochs"), int) else "",
                     f"{doc['train_minutes']:.0f} min of training"
                     if isinstance(doc.get("train_minutes"), (int, float)) else ""]
            if any(facts):
                origin += f" ({', '.join(f for f in facts if f)})"
            out[row.key] = {"value": value, "se": se if isinstance(se, (int, float)) else None,
                            "origin": origin, "quick": False}
    return out


def build_table(*measurements: dict[str, dict]) -> list[dict]:
    """One dict per row of :data:`ROWS`, filled from the first measurement that has it.

    Each dict holds ``key, what, dataset, published, source, command, note`` and, when
    measured, ``value`` (the number as its source gave it), ``se``, ``ours`` (formatted),
    ``origin`` and ``quick``; otherwise ``value`` is None and ``ours`` says what to run.
    """
    table = []
    for row in ROWS:
        found = next((m[row.key] for m in measurements if row.key in m), None)
        entry = {
            "key": row.key, "what": row.what, "dataset": row.dataset,
            "published": row.published, "source": row.source, "command": row.command,
            "note": row.note, "value": None, "se": None, "origin": None, "quick": False,
        }
        if found is None:
            entry["ours"] = f"not measured in this run: {row.command}"
        else:
            entry.update(found)
            text = row.fmt(found["value"])
            if found.get("se") is not None:
                text += f" ± {row.fmt(found['se'])}"
            entry["ours"] = text + row.unit + (" (quick run)" if found.get("quick") else "")
        table.append(entry)
    return table


def to_markdown(table: list[dict]) -> str:
    """The table as GitHub markdown (figure, ours, published, source, command)."""
    lines = ["| figure | ours | published | source | reproduce with |",
             "|---|---|---|---|---|"]
    for e in table:
        ours = f"**{e['ours']}**" if e["value"] is not None else "not measured"
        what = e["what"] + (f" ({e['note']})" if e["note"] else "")
        lines.append(f"| {what} | {ours} | {e['published']} | {e['source']} | "
                     f"`{e['command']}` |")
    return "\n".join(lines)
