"""The ``cli-reference`` directive: the ``latentspace`` command's help, from its own parser.

It renders ``latentspace --help``, the help of every subcommand and, for ``fit``, the
hyperparameter flags each model adds, so the page cannot fall behind the parser.
"""

from __future__ import annotations

import argparse

from docutils import nodes
from sphinx.util.docutils import SphinxDirective

_WIDTH = 92


def _help(parser: argparse.ArgumentParser) -> str:
    # a fixed width keeps the page the same on every terminal size
    parser.formatter_class = lambda prog: argparse.HelpFormatter(prog, width=_WIDTH)
    return parser.format_help().rstrip()


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


class CLIReference(SphinxDirective):
    has_content = False

    def _section(self, title: str, ident: str, text: str, intro: str | None = None):
        section = nodes.section(ids=[ident])
        section += nodes.title(text=title)
        if intro:
            section += nodes.paragraph(text=intro)
        section += nodes.literal_block(text, text, language="text")
        return section

    def run(self):
        from latentspace.cli import build_parser
        from latentspace.cli._params import model_classes

        parser = build_parser()
        out = [self._section("latentspace", "cli-latentspace", _help(parser))]
        for name, sub in _subparsers(parser).items():
            out.append(self._section(f"latentspace {name}", f"cli-{name}", _help(sub)))
        for model_name, cls in model_classes().items():
            fit = _subparsers(build_parser(cls))["fit"]
            out.append(self._section(
                f"latentspace fit {model_name}", f"cli-fit-{model_name}", _help(fit),
                f"The flags ``fit`` takes for {cls.__name__}: its hyperparameters, each "
                "with its default."))
        return out


def setup(app):
    app.add_directive("cli-reference", CLIReference)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
