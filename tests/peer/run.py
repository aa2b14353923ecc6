"""Run scikit-learn's own test files for PCA, KMeans and GaussianMixture against ours.

The installed scikit-learn ships its tests. This script copies three of them into
``build/peer/`` (ignored by git), replaces the one import of the class under test with
ours (and fails loudly when that import line is not where it is expected), runs pytest on
the copies, and compares every test that exercises our class (see ``_plugin.py`` for the
rule) with the list of expected failures in ``expected_failures.toml``.

Exit status: 0 when every such test passed or failed as listed; 1 on an unexpected failure
or on a listed failure that now passes (remove it from the list); 2 when the run itself
could not be made.

    python tests/peer/run.py                  # the whole comparison
    python tests/peer/run.py --only mixture   # one file (pca, k_means, mixture)
    python tests/peer/run.py --write-expected # rewrite the list from this run's failures
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
EXPECTED = HERE / "expected_failures.toml"
SKLEARN_VERSION = "1.9.1"
CATEGORIES = (
    "design difference",
    "error wording",
    "scikit-learn private internals",
    "not yet built",
)


@dataclass(frozen=True)
class PeerFile:
    key: str
    source: str  # path inside the scikit-learn package
    name: str  # the class swapped for ours
    line: str  # the exact import line to rewrite
    replacement: str


FILES = (
    PeerFile(
        "pca",
        "decomposition/tests/test_pca.py",
        "PCA",
        "from sklearn.decomposition import PCA",
        "from latentspace import PCA",
    ),
    PeerFile(
        "k_means",
        "cluster/tests/test_k_means.py",
        "KMeans",
        "from sklearn.cluster import KMeans, MiniBatchKMeans, k_means, kmeans_plusplus",
        "from sklearn.cluster import MiniBatchKMeans, k_means, kmeans_plusplus\n"
        "from latentspace import KMeans",
    ),
    PeerFile(
        "mixture",
        "mixture/tests/test_gaussian_mixture.py",
        "GaussianMixture",
        "from sklearn.mixture import GaussianMixture",
        "from latentspace import GaussianMixture",
    ),
)


class PeerError(RuntimeError):
    """The run could not be prepared (scikit-learn missing, a file changed upstream)."""


def rewrite(text: str, spec: PeerFile) -> str:
    """Swap the import of ``spec.name`` for ours; every other line stays as it is.

    Raises ``PeerError`` unless the expected import line occurs exactly once, or when any
    other line still imports the name from scikit-learn afterwards.
    """
    lines = text.splitlines(keepends=True)
    hits = [i for i, line in enumerate(lines) if line.rstrip("\n") == spec.line]
    if len(hits) != 1:
        raise PeerError(
            f"{spec.source}: expected the line {spec.line!r} exactly once, found it "
            f"{len(hits)} times; the scikit-learn file changed, update FILES in {__file__}"
        )
    lines[hits[0]] = spec.replacement + "\n"
    out = "".join(lines)
    leftover = re.compile(rf"^\s*from sklearn[\w.]* import .*\b{spec.name}\b", re.M)
    found = leftover.search(out)
    if found:
        raise PeerError(
            f"{spec.source}: still imports {spec.name} from scikit-learn after the rewrite: "
            f"{found.group(0).strip()!r}"
        )
    return out


def locate_sklearn() -> tuple[Path, str]:
    try:
        import sklearn
    except ImportError as exc:  # pragma: no cover - the dev extra installs it
        raise PeerError(f"scikit-learn is not installed ({exc}); pip install scikit-learn") from exc
    return Path(sklearn.__file__).resolve().parent, sklearn.__version__


def prepare(build: Path, specs: tuple[PeerFile, ...]) -> Path:
    root, _ = locate_sklearn()
    if build.exists():
        shutil.rmtree(build)
    build.mkdir(parents=True)
    for spec in specs:
        source = root / spec.source
        if not source.is_file():
            raise PeerError(f"{source} not found: this scikit-learn ships without its tests")
        text = rewrite(source.read_text(encoding="utf-8"), spec)
        (build / Path(spec.source).name).write_text(text, encoding="utf-8")
    shutil.copyfile(HERE / "_plugin.py", build / "conftest.py")
    return build


def run_pytest(build: Path, specs: tuple[PeerFile, ...], timeout: int, extra: list[str]) -> dict:
    results = build / "results.json"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(REPO / "src"), str(build)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
    )
    env["PEER_RESULTS"] = str(results)
    env["PEER_CLASSES"] = json.dumps({Path(s.source).name: s.name for s in specs})
    cmd = [
        sys.executable, "-m", "pytest",
        "-c", os.devnull, "--rootdir", str(build),
        "-p", "no:cacheprovider", "-p", "sklearn.conftest",
        "-q", "--no-header", "-rN", "--tb=no", "-o", "console_output_style=classic",
        f"--timeout={timeout}", "--continue-on-collection-errors",
        *extra,
        *[Path(s.source).name for s in specs],
    ]  # fmt: skip
    proc = subprocess.run(cmd, cwd=build, env=env, capture_output=True, text=True)
    if not results.is_file():
        raise PeerError(
            f"pytest wrote no results (exit {proc.returncode}):\n{proc.stdout[-3000:]}"
            f"\n{proc.stderr[-3000:]}"
        )
    data = json.loads(results.read_text(encoding="utf-8"))
    expected_src = str(REPO / "src")
    if not data["latentspace"].startswith(expected_src):
        raise PeerError(f"the run imported latentspace from {data['latentspace']}, not {expected_src}")
    return data


def load_expected(path: Path = EXPECTED) -> dict[str, dict[str, str]]:
    if not path.is_file():
        return {}
    with path.open("rb") as fh:
        table = tomllib.load(fh)
    entries = table.get("failures", {})
    for test_id, entry in entries.items():
        if entry.get("category") not in CATEGORIES:
            raise PeerError(f"{path}: {test_id}: category must be one of {CATEGORIES}")
        if not entry.get("reason"):
            raise PeerError(f"{path}: {test_id}: every entry needs a one-line reason")
    return entries


def _toml_str(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def write_expected(
    tests: dict, old: dict[str, dict[str, str]], ran: set[str], path: Path = EXPECTED
) -> int:
    """Write this run's failures, keeping the category and reason already given to each;
    entries of the files not in ``ran`` stay as they are."""
    failed = sorted(
        t for t, r in tests.items() if r["ours"] and r["outcome"] in ("failed", "not run")
    )
    keep_other = {  # other files' entries, whole files that do not collect, and entries
        # whose outcome rests on a rounding (``either``), which may have passed this time
        t: e for t, e in old.items()
        if t.split("::")[0] not in ran or "::" not in t or e.get("either")
    }
    out = [
        "# Tests of scikit-learn's own test files that exercise our class and are expected",
        "# to fail, keyed by pytest id: category (one of: design difference, error wording,",
        "# scikit-learn private internals, not yet built) and a one-line reason.",
        "# Regenerate with `python tests/peer/run.py --write-expected`; new entries come as",
        "# 'not yet built' with the failure's message as a placeholder reason. `either = true`",
        "# marks a test whose outcome rests on the last bit of a rounding: pass or fail, it is",
        "# counted under its category.",
        "",
    ]
    for test_id in sorted(set(failed) | set(keep_other)):
        entry = old.get(test_id) or {
            "category": "not yet built",
            "reason": "TODO " + (tests[test_id]["message"] or "fails"),
        }
        out.append(f"[failures.{_toml_str(test_id)}]")
        out.append(f"category = {_toml_str(entry['category'])}")
        out.append(f"reason = {_toml_str(entry['reason'])}")
        if entry.get("either"):
            out.append("either = true")
        out.append("")
    path.write_text("\n".join(out), encoding="utf-8")
    return len(failed) + len(keep_other)


def compare(tests: dict, expected: dict[str, dict[str, str]], specs: tuple[PeerFile, ...]):
    rows = []
    unexpected_fail: list[str] = []
    unexpected_pass: list[str] = []
    for spec in specs:
        fname = Path(spec.source).name
        row: dict[str, Any] = {"file": fname, "passed": 0, "skipped": 0, "unexpected failures": 0,
               "unexpected passes": 0, "not ours": 0}  # fmt: skip
        row.update({c: 0 for c in CATEGORIES})
        for test_id, res in sorted(tests.items()):
            if not test_id.startswith(fname + "::"):
                continue
            if not res["ours"]:
                row["not ours"] += 1
                continue
            outcome = res["outcome"]
            listed = expected.get(test_id)
            if outcome == "failed" or outcome == "not run":
                if listed:
                    row[listed["category"]] += 1
                else:
                    row["unexpected failures"] += 1
                    unexpected_fail.append(f"{test_id}: {res['message']}")
            elif outcome in ("passed", "xpassed"):
                if listed and listed.get("either"):
                    # decided by the last bit of a rounding (a strict comparison of two values
                    # that are equal in exact arithmetic): it may pass on one machine, fail on
                    # another; counted under its category either way
                    row[listed["category"]] += 1
                elif listed:
                    row["unexpected passes"] += 1
                    unexpected_pass.append(test_id)
                else:
                    row["passed"] += 1
            else:
                row["skipped"] += 1
        rows.append(row)
    ran = {Path(s.source).name for s in specs}
    stale = [
        t for t in expected
        if "::" in t and t.split("::")[0] in ran and not tests.get(t, {}).get("ours")
    ]  # fmt: skip
    unexpected_pass.extend(f"{t} (no longer a test of our class)" for t in sorted(stale))
    return rows, unexpected_fail, unexpected_pass


def print_table(rows: list[dict]) -> None:
    columns = ["file", "passed", *CATEGORIES, "unexpected failures", "unexpected passes",
               "skipped", "not ours"]  # fmt: skip
    total = {c: sum(r[c] for r in rows) for c in columns[1:]}
    total["file"] = "total"
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows + [total])) for c in columns}
    print("  ".join(c.ljust(widths[c]) for c in columns))
    for r in rows + [total]:
        print("  ".join(str(r[c]).ljust(widths[c]) for c in columns))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=[s.key for s in FILES], action="append",
                        help="run only this file (repeatable)")  # fmt: skip
    parser.add_argument("--build", type=Path, default=REPO / "build" / "peer",
                        help="folder for the rewritten copies (default build/peer)")  # fmt: skip
    parser.add_argument("--timeout", type=int, default=120, help="per-test timeout in seconds")
    parser.add_argument("--write-expected", action="store_true",
                        help="rewrite expected_failures.toml from this run's failures")  # fmt: skip
    parser.add_argument("pytest_args", nargs="*", help="passed on to pytest (after --)")
    args = parser.parse_args(argv)
    specs = tuple(s for s in FILES if not args.only or s.key in args.only)
    try:
        _, version = locate_sklearn()
        if version != SKLEARN_VERSION:
            print(f"note: the expected list is for scikit-learn {SKLEARN_VERSION}, this is "
                  f"{version}; the tests ran, but differences may come from the version")  # fmt: skip
        start = time.perf_counter()
        build = prepare(args.build.resolve(), specs)
        data = run_pytest(build, specs, args.timeout, args.pytest_args)
        elapsed = time.perf_counter() - start
        expected = load_expected()
    except PeerError as exc:
        print(f"peer run failed: {exc}", file=sys.stderr)
        return 2
    tests = data["tests"]
    if args.write_expected:
        n = write_expected(tests, expected, {Path(s.source).name for s in specs})
        print(f"wrote {n} expected failures to {EXPECTED.relative_to(REPO)}")
        expected = load_expected()
    rows, unexpected_fail, unexpected_pass = compare(tests, expected, specs)
    for fname, message in sorted(data.get("collect_errors", {}).items()):
        # a file that cannot even be collected: listed under its file name, or unexpected
        if fname in expected:
            print(f"{fname}: not collected ({expected[fname]['category']}): {message}")
        else:
            unexpected_fail.append(f"{fname} (not collected): {message}")
    for fname in sorted(set(expected) - set(data.get("collect_errors", {}))):
        if "::" not in fname and fname in {Path(s.source).name for s in specs}:
            unexpected_pass.append(f"{fname} (collects now)")
    print(f"scikit-learn {version} test files against latentspace ({elapsed:.0f} s)")
    print_table(rows)
    if unexpected_fail:
        print(f"\nUNEXPECTED FAILURES ({len(unexpected_fail)}): fix them or list them")
        print("\n".join("  " + line for line in unexpected_fail))
    if unexpected_pass:
        print(f"\nLISTED FAILURES THAT NOW PASS ({len(unexpected_pass)}): remove them from "
              f"{EXPECTED.relative_to(REPO)}")  # fmt: skip
        print("\n".join("  " + line for line in unexpected_pass))
    return 1 if unexpected_fail or unexpected_pass else 0


if __name__ == "__main__":
    sys.exit(main())
