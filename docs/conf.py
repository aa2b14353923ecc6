"""Sphinx configuration of the latentspace documentation.

Everything is built offline: no intersphinx inventories, no remote images or fonts. The API
pages are written at build time from the ``__all__`` of each public module (see
``_ext/apigen.py``), the CLI reference from the argparse parser (``_ext/cli_ref.py``), and
every user-guide figure is drawn while building, by the library's own Display objects.
"""

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))
sys.path.insert(0, str(HERE.parent / "src"))

os.environ.setdefault("MPLBACKEND", "Agg")

import latentspace  # noqa: E402
from apigen import write_api_pages  # noqa: E402

write_api_pages(HERE)

project = "latentspace"
author = "the latentspace authors"
copyright = "the latentspace authors"
release = latentspace.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.doctest",
    "numpydoc",
    "myst_parser",
    "matplotlib.sphinxext.plot_directive",
    "apigen",
    "cli_ref",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "_templates", "Thumbs.db", ".DS_Store"]
templates_path = ["_templates"]

# ---------------------------------------------------------------- offline build
# No inventories are fetched (no intersphinx) and no math renderer that loads scripts from a
# network: formulas stay as TeX source in the pages.
html_math_renderer = "tex_source"
html_theme = "pydata_sphinx_theme"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "github_url": None,
    "icon_links": [],
    "navbar_end": ["theme-switcher"],
}
html_title = f"latentspace {release}"
html_static_path: list = []
html_show_sourcelink = False

# ---------------------------------------------------------------- API pages
autosummary_generate = True
autosummary_imported_members = True
autodoc_typehints = "none"
autoclass_content = "class"
numpydoc_show_class_members = False
numpydoc_show_inherited_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
numpydoc_validation_checks: set = set()

# ---------------------------------------------------------------- figures at build time
plot_include_source = True
plot_html_show_source_link = False
plot_html_show_formats = False
plot_formats = [("png", 80)]
plot_rcparams = {"figure.max_open_warning": 0}
plot_apply_rcparams = True
plot_working_directory = str(HERE)
plot_pre_code = (
    "import numpy as np\n"
    "import torch\n"
    "torch.set_num_threads(1)\n"
)

myst_enable_extensions = ["dollarmath", "colon_fence"]
myst_heading_anchors = 3

def _math_as_tex(self, node):
    # formulas as their TeX source, in a span/div the theme styles; nothing is loaded
    from docutils import nodes
    from html import escape

    tag = "div" if isinstance(node, nodes.math_block) else "span"
    self.body.append(f'<{tag} class="math notranslate">{escape(node.astext())}</{tag}>')
    raise nodes.SkipNode


def _skip_sklearn_plumbing(app, what, name, obj, skip, options):
    # scikit-learn's metadata-routing and output-container methods, inherited by every
    # estimator, are documented by scikit-learn, not here
    if name in ("get_metadata_routing", "set_output") or (
            name.startswith("set_") and name.endswith("_request")):
        return True
    return None


def setup(app):
    app.connect("autodoc-skip-member", _skip_sklearn_plumbing)
    app.add_html_math_renderer("tex_source", (_math_as_tex, None), (_math_as_tex, None))

