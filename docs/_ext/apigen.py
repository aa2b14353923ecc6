"""Write the API reference pages from the ``__all__`` of each public module.

One page per module lists its public names in an autosummary table; autosummary then writes
one page per name (classes with every public method, see ``_templates/autosummary``). The
pages are regenerated on every build, so a name added to ``__all__`` appears without an edit
here.
"""

from __future__ import annotations

import importlib
from pathlib import Path

# module -> one line on what it holds, in the order of the reference's table of contents
MODULES = {
    "latentspace": "The models and helpers most programs need, importable from the top level.",
    "latentspace.decomposition": "Principal component analysis.",
    "latentspace.cluster": "K-means clustering and its seeding.",
    "latentspace.mixture": "Mixture models fitted by EM: Gaussian, Bernoulli, mixture of PPCA.",
    "latentspace.neural": "Autoencoders, variational autoencoders, GANs and their trainer.",
    "latentspace.selection": "Choosing the number of clusters or components.",
    "latentspace.impute": "Filling in missing values with a fitted model.",
    "latentspace.metrics": "Sample-quality and likelihood estimates.",
    "latentspace.plotting": "Display objects that draw the figures of the user guide.",
    "latentspace.data": "Data sources (in memory, chunked, Dask), files and datasets.",
    "latentspace.em": "The EM engine and its additive statistics (for new models).",
    "latentspace.io": "Saving, loading and describing model files.",
    "latentspace.exceptions": "The typed errors the library raises.",
}


def _public_names(module) -> list[str]:
    names = [n for n in getattr(module, "__all__", []) if not n.startswith("_")]
    return sorted(names, key=str.lower)


def _page(modname: str, blurb: str) -> str:
    module = importlib.import_module(modname)
    title = f"``{modname}``"
    lines = [title, "=" * len(title), "", f".. currentmodule:: {modname}", "", blurb, ""]
    doc = (module.__doc__ or "").strip()
    if doc:
        lines += [f".. automodule:: {modname}", "   :no-members:", ""]
    names = _public_names(module)
    if modname == "latentspace":
        return "\n".join(lines + _top_level_table(names))
    if names:
        lines += [".. autosummary::", "   :toctree: generated", "   :template: autosummary/entry.rst", ""]
        lines += [f"   {name}" for name in names]
        lines.append("")
    return "\n".join(lines)


def _top_level_table(names: list[str]) -> list[str]:
    """The top-level names, each linked to its page under the module that defines it."""
    lines = [".. list-table::", "   :header-rows: 1", "", "   * - name", "     - documented in"]
    for name in names:
        home = next((m for m in MODULES if m != "latentspace"
                     and name in getattr(importlib.import_module(m), "__all__", ())), None)
        if home is None:
            continue  # __version__ and the like
        obj = getattr(importlib.import_module(home), name)
        role = "class" if isinstance(obj, type) else "func"
        lines += [f"   * - :{role}:`~{home}.{name}`", f"     - :doc:`{home}`"]
    return lines + [""]


def write_api_pages(srcdir) -> None:
    out = Path(srcdir) / "api"
    out.mkdir(exist_ok=True)
    toc = ["API reference", "=============", "",
           "Every public name of the package, by module. Class pages list every public method.",
           "", ".. toctree::", "   :maxdepth: 1", ""]
    for modname, blurb in MODULES.items():
        text = _page(modname, blurb)
        path = out / f"{modname}.rst"
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
        toc.append(f"   {modname}")
    toc.append("")
    index = out / "index.rst"
    text = "\n".join(toc)
    if not index.exists() or index.read_text() != text:
        index.write_text(text)


def setup(app):
    # the pages are written when conf.py loads (write_api_pages), before Sphinx lists the
    # source files; this extension only declares itself parallel-safe
    return {"parallel_read_safe": True, "parallel_write_safe": True}
