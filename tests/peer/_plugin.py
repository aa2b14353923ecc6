"""Pytest plugin for the peer run: which tests exercise our class, and how each one ended.

The runner copies this file, as ``conftest.py``, next to the rewritten test files. It reads
two environment variables: ``PEER_CLASSES`` (a JSON object, test-file name -> the name of
the class swapped for ours in it) and ``PEER_RESULTS`` (the JSON file it writes).

A test *exercises our class* when one of these holds:

- one of its parameters (searched through tuples, lists and dicts) is our class or an
  instance of it;
- no parameter is an estimator (a class or object with a ``fit`` method), and the code of
  the test function, of any function nested in it, or of a fixture it requests that is
  defined in the same test file, refers to the swapped name.

A test parametrized only with scikit-learn's own estimators (``MiniBatchKMeans`` next to
``KMeans``) therefore counts as ours only in its ``KMeans`` case.
"""

from __future__ import annotations

import importlib
import json
import os
import types
from typing import Any

import pytest

_CLASSES: dict[str, str] = json.loads(os.environ.get("PEER_CLASSES", "{}"))
_OURS: dict[str, type] = {
    name: getattr(importlib.import_module("latentspace"), name) for name in set(_CLASSES.values())
}
_exercises: dict[str, bool] = {}
_outcomes: dict[str, str] = {}
_messages: dict[str, str] = {}
_collect_errors: dict[str, str] = {}


def _refers_to(code: types.CodeType, name: str) -> bool:
    if name in code.co_names or name in code.co_freevars:
        return True
    return any(isinstance(c, types.CodeType) and _refers_to(c, name) for c in code.co_consts)


def _flatten(value: Any) -> list[Any]:
    if isinstance(value, (tuple, list)):
        return [leaf for v in value for leaf in _flatten(v)]
    if isinstance(value, dict):
        return [leaf for v in value.values() for leaf in _flatten(v)]
    return [value]


def _is_estimator(value: Any) -> bool:
    return callable(getattr(value, "fit", None)) or (
        isinstance(value, type) and hasattr(value, "fit")
    )


def _exercises_ours(item: pytest.Item, name: str) -> bool:
    ours = _OURS[name]
    params = getattr(item, "callspec", None)
    leaves = _flatten(list(params.params.values())) if params is not None else []
    if any(v is ours or isinstance(v, ours) for v in leaves):
        return True
    if any(_is_estimator(v) for v in leaves):
        return False
    function = getattr(item, "function", None)
    codes = [function.__code__] if function is not None else []
    module = getattr(item, "module", None)
    info = getattr(item, "_fixtureinfo", None)
    if info is not None and module is not None:
        for defs in info.name2fixturedefs.values():
            for fixture_def in defs:
                func = fixture_def.func
                if getattr(func, "__module__", None) == module.__name__:
                    codes.append(func.__code__)
    return any(_refers_to(code, name) for code in codes)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        name = _CLASSES.get(item.path.name)
        _exercises[item.nodeid] = name is not None and _exercises_ours(item, name)


def pytest_collectreport(report: pytest.CollectReport) -> None:
    if report.failed:
        lines = str(report.longrepr).strip().splitlines()
        errors = [line for line in lines if line.startswith("E ")]
        _collect_errors[report.nodeid] = (errors[-1] if errors else lines[-1] if lines else "")[:300]


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    nodeid = report.nodeid
    if hasattr(report, "wasxfail"):
        _outcomes[nodeid] = "xpassed" if report.passed else "xfailed"
        return
    if report.failed:
        _outcomes[nodeid] = "failed"
        crash = getattr(report.longrepr, "reprcrash", None)
        text = crash.message if crash is not None else str(report.longrepr)
        _messages.setdefault(nodeid, text.strip().splitlines()[0][:300] if text.strip() else "")
    elif report.skipped and report.when == "setup":
        _outcomes[nodeid] = "skipped"
    elif report.when == "call" and nodeid not in _outcomes:
        _outcomes[nodeid] = "passed"


def pytest_sessionfinish(session: pytest.Session) -> None:
    path = os.environ.get("PEER_RESULTS")
    if not path:
        return
    import latentspace

    tests = {
        nodeid: {
            "ours": ours,
            "outcome": _outcomes.get(nodeid, "not run"),
            "message": _messages.get(nodeid, ""),
        }
        for nodeid, ours in _exercises.items()
    }
    with open(path, "w", encoding="utf-8") as fh:
        json.dump({"latentspace": latentspace.__file__, "tests": tests,
                   "collect_errors": _collect_errors}, fh, indent=1)
