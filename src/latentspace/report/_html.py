"""One self-contained HTML page for the tour: inline CSS, PNG figures as base64 data URIs.

The page needs no network. Its interactive figures (:mod:`._interactive`) are drawn by one
inline script from weights embedded in the page; every static figure is there without it,
and each interactive figure says that it needs JavaScript where scripts are off.
``summary.json`` (written beside it by the tour) holds the same numbers, made JSON-safe by
:func:`json_safe`, and the page is rendered from those JSON-safe values so the two always
agree.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["RenderedChapter", "dumps_json", "encode_png", "format_value", "json_safe",
           "render_html", "table_dict", "write_text_atomic"]


@dataclass
class RenderedChapter:
    """A chapter with its figures already encoded.

    ``figures`` holds (base64 PNG, caption, alt) triples; ``numbers`` is JSON-safe;
    ``widgets`` holds the chapter's :class:`~._interactive.Widget` objects.
    ``tables`` holds :func:`table_dict` values.
    """

    key: str
    title: str
    intro: str
    formula: str
    figures: list[tuple[str, str, str]] = field(default_factory=list)
    numbers: dict = field(default_factory=dict)
    seconds: float = 0.0
    warnings: list = field(default_factory=list)  # {"category", "message", "count"} dicts
    measures: dict = field(default_factory=dict)  # stable id -> figure (reproduction table)
    widgets: list = field(default_factory=list)
    tables: list[dict] = field(default_factory=list)


def table_dict(table) -> dict:
    """A :class:`~latentspace.report.Table` as JSON-safe data.

    Returns
    -------
    dict with ``caption``, ``row_header``, ``columns`` (list of str), ``rows`` (list of
    ``{"label": str, "values": list}``) and ``notes``.
    """
    return json_safe({
        "caption": table.caption, "row_header": table.row_header,
        "columns": list(table.columns),
        "rows": [{"label": label, "values": list(values)} for label, values in table.rows],
        "notes": table.notes,
    })


def encode_png(fig, *, dpi: int = 100, close: bool = True) -> str:
    """Render a matplotlib figure to PNG and return it base64-encoded (ASCII).

    The figure is closed afterwards (unless ``close=False``) so a long tour does not keep
    every figure alive.
    """
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", dpi=dpi)
    finally:
        if close:
            from ..plotting import pyplot

            pyplot().close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def json_safe(value: Any) -> Any:
    """Numbers and containers as plain JSON: numpy scalars/arrays -> Python; non-finite -> str.

    ``float('inf')`` becomes ``"inf"`` (strict JSON has no infinities), so the page and the
    JSON file show the same thing.

    Parameters
    ----------
    value : object
        Numbers, strings, None, numpy scalars and arrays, and dicts, lists and tuples of them.

    Returns
    -------
    plain : object
        Of JSON's types only: dicts with string keys, lists, str, int, float, bool, None;
        anything else as its ``str``.
    """
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return json_safe(value.tolist())
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        v = float(value)
        return v if math.isfinite(v) else repr(v)
    if value is None or isinstance(value, str):
        return value
    return str(value)


def format_value(value) -> str:
    """Text of one table cell: ints as is, floats with 4 significant digits."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}".replace(",", " ") if abs(value) >= 10000 else str(value)
    if isinstance(value, float):
        if value == 0:
            return "0"
        if 1e-3 <= abs(value) < 1e5:
            return f"{value:.4g}" if abs(value) >= 1 else f"{value:.4f}"
        return f"{value:.4g}"
    if value is None:
        return "—"
    if isinstance(value, list):
        return ", ".join(format_value(v) for v in value)
    return str(value)


_CSS = """
:root { color-scheme: light; --fg: #1d2430; --muted: #5b6472; --line: #dde2ea; --accent: #2a62b8; }
* { box-sizing: border-box; }
body { margin: 0 auto; max-width: 1100px; padding: 1.5rem 1.25rem 3rem;
       font: 16px/1.55 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); }
header { border-bottom: 2px solid var(--line); margin-bottom: 1rem; }
h1 { font-size: 1.8rem; margin: 0 0 .3rem; }
h2 { font-size: 1.4rem; margin: 2.2rem 0 .4rem; border-bottom: 1px solid var(--line); }
.meta { color: var(--muted); font-size: .92rem; margin: .2rem 0 .8rem; }
nav ol { columns: 2; column-gap: 2rem; padding-left: 1.3rem; }
nav a, h2 a { color: var(--accent); text-decoration: none; }
.time { color: var(--muted); font-size: .85rem; }
pre.formula { background: #f5f7fa; border-left: 3px solid var(--accent); padding: .6rem .9rem;
              overflow-x: auto; font: 14px/1.5 "DejaVu Sans Mono", Menlo, Consolas, monospace;
              white-space: pre-wrap; }
figure { margin: 1.2rem 0; text-align: center; }
figure img { max-width: 100%; height: auto; border: 1px solid var(--line); }
figcaption { color: var(--muted); font-size: .9rem; text-align: left; margin-top: .35rem; }
table.numbers { border-collapse: collapse; margin: 1rem 0; font-size: .95rem; }
table.numbers th, table.numbers td { border-bottom: 1px solid var(--line); padding: .25rem .8rem;
                                     text-align: left; }
table.numbers td.value { text-align: right; font-variant-numeric: tabular-nums; }
table.models { border-collapse: collapse; margin: 1rem 0; font-size: .9rem; }
table.models caption { caption-side: top; text-align: left; color: var(--muted);
                       font-size: .9rem; margin-bottom: .35rem; }
table.models th, table.models td { border-bottom: 1px solid var(--line); padding: .25rem .55rem;
                                   text-align: right; vertical-align: bottom; }
table.models th[scope="row"], table.models thead th:first-child { text-align: left; }
table.models td { font-variant-numeric: tabular-nums; white-space: nowrap; }
p.table-notes { color: var(--muted); font-size: .88rem; }
table.reproduction { border-collapse: collapse; margin: 1rem 0; font-size: .9rem; width: 100%; }
table.reproduction th, table.reproduction td { border-bottom: 1px solid var(--line);
                                               padding: .3rem .5rem; text-align: left;
                                               vertical-align: top; }
table.reproduction th[scope="row"] { width: 42%; }
table.reproduction td.ours { font-variant-numeric: tabular-nums; white-space: nowrap; }
table.reproduction td.missing { color: var(--muted); width: 30%; }
table.reproduction td.source { color: var(--muted); font-size: .85rem; }
table.reproduction .note { color: var(--muted); font-size: .85rem; font-weight: normal; }
.warning { background: #fff4e5; border: 2px solid #d9822b; border-radius: 4px;
           padding: .5rem .9rem; margin: .8rem 0; }
.warning p { margin: .2rem 0; } .warning ul { margin: .3rem 0; padding-left: 1.2rem; }
.warning .count, nav .flag { color: #a35200; }
code { font: 13px "DejaVu Sans Mono", Menlo, Consolas, monospace; background: #f5f7fa;
       padding: 0 .2rem; }
footer { margin-top: 3rem; color: var(--muted); font-size: .85rem; }
@media (max-width: 700px) { nav ol { columns: 1; } body { padding: 1rem .6rem; } }
"""


def _e(text) -> str:
    return html.escape(str(text), quote=True)


def _chapter_html(i: int, ch: RenderedChapter) -> str:
    parts = [
        f'<section id="{_e(ch.key)}">',
        f'<h2><a href="#{_e(ch.key)}">{i}. {_e(ch.title)}</a></h2>',
        f'<p class="intro">{_e(ch.intro)}</p>',
    ]
    if ch.warnings:
        items = "".join(
            f"<li>{_e(w['message'])}"
            + (f" <span class=\"count\">(×{w['count']})</span>" if w.get("count", 1) > 1 else "")
            + "</li>"
            for w in ch.warnings
        )
        n = len(ch.warnings)
        parts.append(
            f'<div class="warning" role="alert"><p><b>Warning: {n} fit{"s" if n > 1 else ""} '
            "in this chapter failed or stopped short</b> — read its figures and numbers with "
            f"that in mind.</p><ul>{items}</ul></div>"
        )
    if ch.formula:
        parts.append(f'<pre class="formula">{_e(ch.formula)}</pre>')
    for j, (png, caption, alt) in enumerate(ch.figures, 1):
        parts.append(
            # decoded eagerly and synchronously, so that a screenshot or a print has every figure
            f'<figure><img src="data:image/png;base64,{png}" alt="{_e(alt)}" decoding="sync" '
            'loading="eager">'
            f"<figcaption><b>Figure {i}.{j}.</b> {_e(caption)}</figcaption></figure>"
        )
    for j, widget in enumerate(ch.widgets, 1):
        parts.append(_widget_html(f"{ch.key}-{j}", widget))
    if ch.numbers:
        rows = "".join(
            f'<tr><th scope="row">{_e(name)}</th><td class="value">{_e(format_value(v))}</td></tr>'
            for name, v in ch.numbers.items()
        )
        parts.append(
            '<table class="numbers"><thead><tr><th scope="col">quantity</th>'
            f'<th scope="col">value</th></tr></thead><tbody>{rows}</tbody></table>'
        )
    for j, t in enumerate(ch.tables, 1):
        parts.append(_table_html(f"{i}.{j}", t))
    parts.append(f'<p class="time">Chapter time: {ch.seconds:.2f} s</p></section>')
    return "\n".join(parts)


def _widget_html(ident: str, widget) -> str:
    """One interactive figure: its JSON spec, a ``<noscript>`` note and an empty body that
    the page's script fills."""
    from ._interactive import _dumps

    return (
        f'<div class="widget" id="widget-{_e(ident)}" data-kind="{_e(widget.kind)}">'
        f"<h3>{_e(widget.title)}</h3>"
        f'<script type="application/json" class="widget-spec">{_dumps(widget.spec)}</script>'
        '<noscript><p class="needs-js">This interactive figure needs JavaScript, which is off '
        "here; the static figures show the same model.</p></noscript>"
        f'<div class="widget-body"></div><p class="caption">{_e(widget.caption)}</p></div>'
    )


def _widget_blobs(chapters) -> dict:
    """The shared blobs of every widget of the page, each name once."""
    from ._interactive import _dumps

    blobs: dict[str, str] = {}
    for ch in chapters:
        for widget in ch.widgets:
            for name, blob in widget.blobs.items():
                text = _dumps(blob)
                if blobs.setdefault(name, text) != text:
                    raise ValueError(f"two widgets share the blob name {name!r} with different "
                                     "contents; give each model its own name.")
    return blobs


def _scripts_html(chapters) -> str:
    """The shared blobs and the one inline script, when the page has a widget."""
    if not any(ch.widgets for ch in chapters):
        return ""
    from ._interactive import script

    blobs = "".join(f'<script type="application/json" id="ls-blob-{_e(name)}">{text}</script>'
                    for name, text in _widget_blobs(chapters).items())
    return f"{blobs}\n<script>{script()}</script>\n"


def _table_html(number: str, t: dict) -> str:
    """A :func:`table_dict` as an HTML table: one row per row label, one column per column."""
    head = "".join(f'<th scope="col">{_e(c)}</th>' for c in t["columns"])
    body = "".join(
        f'<tr><th scope="row">{_e(r["label"])}</th>'
        + "".join(f"<td>{_e(format_value(v))}</td>" for v in r["values"]) + "</tr>"
        for r in t["rows"]
    )
    notes = "".join(f'<p class="table-notes">{_e(p)}</p>'
                    for p in (t.get("notes") or "").split("\n\n") if p.strip())
    return (
        f'<table class="models"><caption><b>Table {_e(number)}.</b> {_e(t["caption"])}'
        f'</caption><thead><tr><th scope="col">{_e(t["row_header"])}</th>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table>{notes}"
    )


def _reproduction_html(i: int, rows: list[dict], quick: bool) -> str:
    """The published figures next to ours (rows from :func:`reproduction.build_table`).

    Columns: the figure (with its caveat and the command that measures it), ours, the
    published figure and its source. A row this run did not measure says so, with the command.
    """
    body = []
    for r in rows:
        cmd = f'<code>{_e(r["command"])}</code>'
        if r.get("value") is None:
            ours = f'<td class="missing">not measured in this run: {cmd}</td>'
            how = ""
        else:
            ours = f'<td class="ours"><b>{_e(r["ours"])}</b></td>'
            how = f'<br><span class="note">reproduce: {cmd}</span>'
        note = f'<br><span class="note">{_e(r["note"])}</span>' if r.get("note") else ""
        body.append(
            f'<tr><th scope="row">{_e(r["what"])}{note}{how}</th>{ours}'
            f'<td>{_e(r["published"])}</td><td class="source">{_e(r["source"])}</td></tr>'
        )
    caveat = (" This was a quick run with reduced settings: its figures are indicative only."
              if quick else "")
    return (
        f'<section id="reproduction"><h2><a href="#reproduction">{i}. Reproduction of published '
        "figures</a></h2>"
        '<p class="intro">Our figures next to the published ones. Each of ours is read from the '
        "numbers of a chapter above, on this dataset; the rows measured on other datasets or by "
        "the benchmark scripts name the command that measures them "
        f"(<code>bench/reproduce.py</code> gathers them all).{caveat}</p>"
        '<table class="reproduction"><thead><tr><th scope="col">figure</th>'
        '<th scope="col">ours</th><th scope="col">published</th><th scope="col">source</th>'
        f'</tr></thead><tbody>{"".join(body)}</tbody></table></section>'
    )


def _closing_html(i: int, meta: dict, chapters: list[RenderedChapter]) -> str:
    """How long the run took, chapter by chapter, and on what."""
    rows = "".join(
        f'<tr><th scope="row">{_e(c.title)}</th><td class="value">{c.seconds:.1f} s</td></tr>'
        for c in chapters
    )
    load = meta.get("timings", {}).get("load_seconds")
    if load is not None:
        rows = (f'<tr><th scope="row">loading the data</th><td class="value">{load:.1f} s</td>'
                f"</tr>{rows}")
    command = meta.get("command") or f"latentspace tour --dataset {meta['dataset']}"
    return (
        f'<section id="about"><h2><a href="#about">{i}. About this run</a></h2>'
        f"<p>This report took <b>{_clock_text(meta['total_seconds'])}</b> on "
        f"{_e(meta.get('machine', 'this machine'))}, device {_e(meta['device'])}. "
        f"Run it again with <code>{_e(command)}</code>.</p>"
        '<table class="numbers"><thead><tr><th scope="col">step</th><th scope="col">time</th>'
        f"</tr></thead><tbody>{rows}</tbody></table></section>"
    )


def _clock_text(seconds: float) -> str:
    m, s = divmod(float(seconds), 60.0)
    return f"{int(m)} min {s:.0f} s" if m >= 1 else f"{s:.1f} s"


def render_html(meta: dict, chapters: list[RenderedChapter], reproduction=None) -> str:
    """The whole page.

    Parameters
    ----------
    meta : dict
        ``dataset``, ``n_samples``, ``n_features``, ``image_shape``, ``date``,
        ``library_version``, ``total_seconds``, ``device``, ``quick`` (and optionally
        ``note``, ``machine``, ``command`` and ``timings``) for the header and the closing
        note.
    chapters : list of RenderedChapter
    reproduction : list of dict, optional
        Rows of the reproduction table (:func:`latentspace.report.reproduction.build_table`).
    """
    h, w = meta.get("image_shape") or ("?", "?")
    head = (
        f"Dataset <b>{_e(meta['dataset'])}</b> ({_e(meta['n_samples'])} samples × "
        f"{_e(meta['n_features'])} features, {_e(h)}×{_e(w)} images) · {_e(meta['date'])} · "
        f"latentspace {_e(meta['library_version'])} · device {_e(meta['device'])}"
        f"{' · quick run' if meta.get('quick') else ''} · total time "
        f"{meta['total_seconds']:.1f} s"
    )
    toc = "".join(
        f'<li><a href="#{_e(c.key)}">{_e(c.title)}</a> <span class="time">({c.seconds:.1f} s)'
        "</span>"
        + (f' <span class="flag" title="a fit in this chapter failed or stopped short">⚠ '
           f'{len(c.warnings)} warning{"s" if len(c.warnings) > 1 else ""}</span>'
           if c.warnings else "")
        + "</li>"
        for c in chapters
    )
    sections = [_chapter_html(i, c) for i, c in enumerate(chapters, 1)]
    if reproduction:
        toc += '<li><a href="#reproduction">Reproduction of published figures</a></li>'
        sections.append(_reproduction_html(len(sections) + 1, reproduction,
                                           bool(meta.get("quick"))))
    toc += '<li><a href="#about">About this run</a></li>'
    sections.append(_closing_html(len(sections) + 1, meta, chapters))
    body = "\n".join(sections)
    note = f'<p class="meta">{_e(meta["note"])}</p>' if meta.get("note") else ""
    scripts = _scripts_html(chapters)
    widget_css = ""
    if scripts:
        from ._interactive import css

        widget_css = css()
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>latentspace tour: {_e(meta['dataset'])}</title>
<style>{_CSS}{widget_css}</style>
</head>
<body>
<header>
<h1>Unsupervised learning as latent-variable models</h1>
<p class="meta">{head}</p>
{note}
</header>
<nav aria-label="Contents"><h2>Contents</h2><ol>{toc}</ol></nav>
<main>
{body}
</main>
<footer>Every number above is read from the fitted models' own attributes and methods; the
same numbers are in <code>summary.json</code> beside this file.</footer>
{scripts}</body>
</html>
"""


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    """Write UTF-8 text to ``path`` via a temporary file and ``os.replace``.

    Parameters
    ----------
    path : str or path-like
        The file; replaced only once the new text is complete.
    text : str
        What to write.
    """
    from .._atomic import atomic_write_bytes

    atomic_write_bytes(Path(path), text.encode("utf-8"))


def dumps_json(obj: Any) -> str:
    """Strict JSON (no NaN/inf literals), indented for reading.

    Parameters
    ----------
    obj : object
        Anything :func:`json_safe` takes.

    Returns
    -------
    text : str
        The JSON, indented by 2, with a final newline.
    """
    return json.dumps(json_safe(obj), indent=2, allow_nan=False, ensure_ascii=False) + "\n"
