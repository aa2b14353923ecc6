"""Every code block of README.md runs as written.

The rules a block must follow to pass (README.md is read from the top down):

- ``python`` blocks run in order in one namespace, as one interpreter would run them
  (a block may use the names of the blocks above it), with a fresh temporary folder as the
  working directory: files a block reads, it writes first.
- ``bash`` (or ``sh``, ``shell``) blocks run one by one, each as a ``bash -e -o pipefail``
  script in its own fresh temporary folder, with the test interpreter's environment first on
  ``PATH`` (its ``python``, ``latentspace`` and ``torchrun``) and this source tree on
  ``PYTHONPATH``. A block fails on the first command that exits non-zero.
- Blocks that only build the project are not run here, since the suite itself is what they
  start: a shell block whose every command is ``make ...`` or an installation
  (``python3 -m venv``, ``pip install``). ``text`` and ``console`` blocks are output or
  transcripts, not code, and are not run either. Any other language tag fails the test.
- A block whose commands name a dataset other than the bundled digits needs the real
  datasets: it runs with ``LATENTSPACE_DATA`` set to the test datasets' folder
  (``LATENTSPACE_TEST_DATA``) and skips when that folder is absent.
- The line ``<!-- readme-test: slow -->`` just above a block's opening fence marks it slow
  (kept out of the default suite, run by ``pytest -m slow``); a block over ~10 s needs it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import pytest

import latentspace
from latentspace.data import list_datasets

README = Path(__file__).resolve().parents[1] / "README.md"
SRC = Path(latentspace.__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

PYTHON_TAGS = {"python", "py"}
SHELL_TAGS = {"bash", "sh", "shell"}
NOT_CODE_TAGS = {"text", "console"}
SLOW_MARKER = "<!-- readme-test: slow -->"
# commands that build the project, whose blocks the suite does not run (see the module docstring)
BUILD_COMMAND = re.compile(r"^(make\b|python3? -m venv\b|(\S*/)?pip3? install\b)")
FENCE = re.compile(r"^```(\S*)\s*$")


@dataclass(frozen=True)
class Block:
    """One fenced block of the README: its language tag, first line number and text."""

    lang: str
    line: int
    text: str
    slow: bool


def readme_blocks(text: str) -> list[Block]:
    """The fenced blocks of a Markdown text, in order (a fence must start its line)."""
    blocks, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if opening is None:
            i += 1
            continue
        end = next((j for j in range(i + 1, len(lines)) if lines[j].rstrip() == "```"), None)
        if end is None:
            raise AssertionError(f"README.md line {i + 1}: a code block is never closed")
        before = next((lines[j].strip() for j in range(i - 1, -1, -1) if lines[j].strip()), "")
        blocks.append(Block(opening.group(1).lower(), i + 1, "\n".join(lines[i + 1:end]) + "\n",
                            before == SLOW_MARKER))
        i = end + 1
    return blocks


def is_build_block(block: Block) -> bool:
    """True for a shell block whose every command is a ``make`` or an installation."""
    commands = [ln.strip() for ln in block.text.splitlines()
                if ln.strip() and not ln.strip().startswith("#")]
    return bool(commands) and all(BUILD_COMMAND.match(c) for c in commands)


def needs_real_data(text: str) -> bool:
    """True when the text names a dataset other than the bundled digits."""
    names = [n for n in list_datasets() if n != "digits"]
    return any(re.search(rf"\b{re.escape(n)}\b", text) for n in names)


BLOCKS = readme_blocks(README.read_text(encoding="utf-8"))
PYTHON_BLOCKS = [b for b in BLOCKS if b.lang in PYTHON_TAGS]
SHELL_BLOCKS = [b for b in BLOCKS if b.lang in SHELL_TAGS and not is_build_block(b)]


def _data_env(text: str, request: pytest.FixtureRequest) -> dict[str, str]:
    """LATENTSPACE_DATA for a block that needs the real datasets; skips without them."""
    if not needs_real_data(text):
        return {}
    folder = request.getfixturevalue("shared_data")  # skips when the folder is absent
    return {"LATENTSPACE_DATA": str(folder)}


# ----------------------------------------------------------------------------- the parser
def test_the_parser_finds_tags_lines_markers_and_build_blocks():
    text = ("intro\n\n```bash\nmake tour   # x\n# a comment\nmake test\n```\n\n"
            "<!-- readme-test: slow -->\n\n```python\nx = 1\n```\n```bash\nlatentspace datasets\n```\n")
    blocks = readme_blocks(text)
    assert [(b.lang, b.line, b.slow) for b in blocks] == [
        ("bash", 3, False), ("python", 11, True), ("bash", 14, False)]
    assert blocks[1].text == "x = 1\n"
    assert [is_build_block(b) for b in blocks] == [True, False, False]
    install = Block("bash", 1, 'python3 -m venv .venv && .venv/bin/pip install -e ".[dev]"\n',
                    False)
    mixed = Block("bash", 1, "make tour\nlatentspace info m.safetensors\n", False)
    assert is_build_block(install) and not is_build_block(mixed)
    with pytest.raises(AssertionError, match="line 1"):
        readme_blocks("```python\nx = 1\n")


def test_dataset_names_are_recognised():
    assert needs_real_data("latentspace fit vae frey_faces --out v.safetensors")
    assert not needs_real_data("latentspace fit pca digits --out p.safetensors")
    assert not needs_real_data("latentspace fit pca my_mnist_copy.npy")


# ----------------------------------------------------------------------------- the README
def test_every_block_has_a_known_language():
    known = PYTHON_TAGS | SHELL_TAGS | NOT_CODE_TAGS
    unknown = [(b.line, b.lang) for b in BLOCKS if b.lang not in known]
    assert not unknown, (f"README.md blocks at {unknown} have no tag this test knows: use "
                         f"one of {sorted(known)} (see tests/test_readme.py)")
    assert PYTHON_BLOCKS and SHELL_BLOCKS


def _python_block_marks():
    return [pytest.mark.slow] if any(b.slow for b in PYTHON_BLOCKS) else []


@pytest.mark.parametrize("blocks", [pytest.param(PYTHON_BLOCKS, id="python",
                                                 marks=_python_block_marks())])
def test_python_blocks_run_in_order(blocks, tmp_path, monkeypatch, request):
    env = _data_env("".join(b.text for b in blocks), request)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "__readme__"}
    for block in blocks:
        code = compile(block.text, f"README.md:{block.line}", "exec")
        with warnings.catch_warnings():
            # a warning a block's fit gives (a ConvergenceWarning) is part of the example
            warnings.simplefilter("ignore")
            try:
                exec(code, namespace)
            except Exception as exc:
                raise AssertionError(f"the python block at README.md line {block.line} "
                                     f"failed: {exc!r}") from exc


@pytest.mark.parametrize("block", [
    pytest.param(b, id=f"line{b.line}", marks=[pytest.mark.slow] if b.slow else [])
    for b in SHELL_BLOCKS])
def test_shell_block_runs(block, tmp_path, request):
    env = dict(os.environ)
    env.update(_data_env(block.text, request))
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(SRC), env.get("PYTHONPATH")) if p)
    env["MPLBACKEND"] = "Agg"
    proc = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", block.text], cwd=tmp_path,
                          env=env, capture_output=True, text=True,
                          timeout=1800 if block.slow else 300)
    assert proc.returncode == 0, (f"the shell block at README.md line {block.line} exited "
                                  f"{proc.returncode}:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
