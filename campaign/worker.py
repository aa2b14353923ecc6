"""A campaign worker: reads case descriptors (JSON lines) on stdin, runs each, answers with
one JSON line per case on the protocol channel (the original stdout; the library's own
prints go to a log file). One torch/BLAS thread, seeded before every case, its own
temporary folder as the working directory, and an address-space limit so that a runaway
allocation is a ``MemoryError`` (a crash) rather than the machine's problem.
"""

from __future__ import annotations

import copy
import json
import os
import random
import sys
import tempfile
import time
import warnings

MEMORY_HEADROOM = 4 * 1024**3  # bytes a case may allocate beyond the warmed-up worker


class Context:
    """What cases share inside one worker: pristine fits, saved model files, CLI files."""

    def __init__(self, tmp: str):
        self.tmp = tmp
        self._fits, self._files, self._cli = {}, {}, None

    def fitted(self, est_name: str):
        """A fresh copy of the estimator fitted on its base data."""
        from .inputs import base_data, make

        if est_name not in self._fits:
            self._fits[est_name] = make(est_name).fit(base_data(est_name))
        return copy.deepcopy(self._fits[est_name])

    def model_file(self, est_name: str):
        """(bytes of the saved fitted model, its loaded outputs on the base data)."""
        if est_name not in self._files:
            from latentspace import load

            from .area_files import _outputs
            from .inputs import base_data

            path = os.path.join(self.tmp, f"ref_{est_name}.safetensors")
            est = self.fitted(est_name)
            for entry in getattr(est, "history_", None) or ():
                if isinstance(entry, dict) and "seconds" in entry:
                    entry["seconds"] = 0.0  # wall times would move every byte after them
            est.save(path)
            with open(path, "rb") as f:
                blob = f.read()
            self._files[est_name] = (blob, _outputs(est_name, load(path), base_data(est_name)))
        return self._files[est_name]

    def cli_paths(self):
        if self._cli is None:
            from .area_cli import prepare

            os.makedirs(os.path.join(self.tmp, "cli"), exist_ok=True)
            self._cli = prepare(os.path.join(self.tmp, "cli"), self)
        return self._cli


def _selftest(d, ctx):
    """Cases that check the instrument itself (see tests/test_campaign.py)."""
    import numpy as np

    from . import checks

    if d["kind"] == "sleep":
        time.sleep(d.get("seconds", 3600))
    elif d["kind"] == "numpy_error":
        np.split(np.arange(5), 2)
    elif d["kind"] == "nan_result":
        X = np.zeros((3, 4))
        checks.check_result("PCA", "transform", X, np.full((3, 2), np.nan), d=2)
    elif d["kind"] == "exit":
        os._exit(3)
    return None


def execute(d: dict, ctx: Context) -> dict:
    from . import area_cli, area_data, area_files, area_params
    from .classify import run_case

    area = {"data": area_data, "params": area_params, "files": area_files,
            "cli": area_cli}.get(d["area"])
    fn = _selftest if area is None else area.run
    random.seed(0)
    import numpy as np
    import torch

    np.random.seed(0)
    torch.manual_seed(0)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with np.errstate(all="ignore"):
            outcome, evidence = run_case(fn, d, ctx)
    return {"id": d["id"], "outcome": outcome, "evidence": evidence,
            "seconds": round(time.perf_counter() - t0, 4), "detail": d.get("detail", "")}


def _limit_memory():
    try:
        import resource

        with open("/proc/self/status") as f:
            vm = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmSize"))
        limit = vm + MEMORY_HEADROOM
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except (OSError, ValueError, StopIteration, ImportError):
        pass


def warm_up(ctx: Context):
    """Fit every estimator once (numba compiles, torch warms up) before the first case."""
    from .inputs import ESTIMATORS

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for est in ESTIMATORS:
            ctx.fitted(est)
            ctx.model_file(est)


def main():
    channel = os.fdopen(os.dup(1), "w", buffering=1)
    tmp = tempfile.mkdtemp(prefix="latentspace-campaign-")
    log = os.open(os.path.join(tmp, "worker.log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.environ["TMPDIR"] = tmp
    tempfile.tempdir = tmp
    os.chdir(tmp)
    import torch

    torch.set_num_threads(1)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    ctx = Context(tmp)
    if not os.environ.get("CAMPAIGN_NO_WARMUP"):
        warm_up(ctx)
    _limit_memory()
    channel.write(json.dumps({"ready": True, "tmp": tmp}) + "\n")
    for line in sys.stdin:
        d = json.loads(line)
        channel.write(json.dumps(execute(d, ctx)) + "\n")


if __name__ == "__main__":
    main()
