"""The adversarial reliability campaign of latentspace.

Every public estimator (PCA, KMeans, GaussianMixture, BernoulliMixture, PPCAMixture,
Autoencoder, VAE, GAN) x every public method x a grid of bad and edge inputs (area ``data``), every
hyperparameter of every ``__init__`` signature (``params``), model-file faults (``files``)
and the command's exit codes (``cli``). Run it from the repository root::

    python -m campaign               # the full run (make campaign)
    python -m campaign --fast        # a deterministic ~5% stratified sample
    python -m campaign --case ID     # one case, in-process, with its traceback

It tests the checkout it lives in (``src/`` goes first on the path), or the source tree
given by ``--src DIR`` / ``CAMPAIGN_SRC``. It prints the totals
as a Markdown table, writes every crash, silent-wrong and hang with a one-line
reproduction and its evidence to ``campaign_out/failures.md`` (all results to
``campaign_out/results.json``), and exits with status 1 when there is any.

Classification rules (this is the specification)
------------------------------------------------
ok
    The call returned and its result passed the checks for that method: the right shape and
    type (a torch tensor in -> a tensor out, else an ndarray); float32 in -> float32 out for
    ``transform``, ``fit_transform`` and ``inverse_transform``; finite where it must be
    (transforms, reconstructions, scores, probabilities, samples, every fitted float
    attribute); labels integers in ``[0, K)``; probabilities in [0, 1] summing to 1; and the
    case's oracle when it defines one (below).
typed error
    The call raised one of the promised types -- ``ValueError`` (including
    ``ModelFormatError``, ``ChecksumError``, ``UnsupportedFormatVersionError``,
    ``UnsafeFormatError``), ``TypeError``, ``NotFittedError``, ``TrainingDivergedError``,
    ``FileNotFoundError``/``IsADirectoryError``/``PermissionError`` for path problems --
    AND the innermost traceback frame is in latentspace's own code or in scikit-learn's
    validation (``sklearn/utils/validation.py``, ``sklearn/utils/_param_validation.py``, and
    ``sklearn/base.py`` for ``set_params``' unknown-parameter error),
    AND the message is none of ``campaign.classify.THIRD_PARTY_MESSAGES`` (messages that
    numpy, pandas, torch, scipy, json or safetensors raise from C code, e.g. "could not
    convert string to float", "setting an array element with a sequence", "mat1 and mat2
    shapes cannot be multiplied"). For model files only ``ModelFormatError`` and its
    subclasses are promised (path problems aside). Warnings are fine.
crash
    Any other exception (RuntimeError, AttributeError, KeyError, IndexError, OverflowError,
    MemoryError, RecursionError, LinAlgError, ...), a promised type raised from a
    third-party frame or with a third-party message, a worker that died, and for the CLI
    exit code 1 or a traceback on stderr without ``--debug``. An exception raised by the
    campaign's own code is a crash marked "[harness bug]".
silent-wrong
    The call returned but its result failed a check: NaN/inf where finite is required, a
    wrong shape, dtype or kind, or a violated oracle:

    * an input every method must refuse (NaN, inf, empty, strings, complex, None, 1-D, 3-D,
      a meta tensor, another number of features after a fit, ...) was accepted;
    * a numeric input that converts (int, bool, float16/32, lists, object arrays,
      DataFrames, tensors, read-only, Fortran, sparse) gave another result than its float64
      equivalent (labels exactly, arrays to 1e-6 of their magnitude, 1e-3 for 16/32-bit);
    * on the two well-separated blobs, KMeans/GaussianMixture/PPCAMixture labels after
      X * 1e150, X * 1e300, X * 1e-300, X + 1e12, ... differ from the blobs' (up to permutation), or
      PCA's explained_variance_ratio_/components_ differ, unless a ValueError was raised;
    * NaN entries (missing values, every row keeping an observed one) given to a mixture
      with ``missing="marginalize"`` were refused with an error, or ``impute`` changed an
      observed entry or left a NaN;
    * PCA's explained_variance_ratio_ on identical rows is not 0; a clustering's
      ``labels_`` or ``fit_predict`` differ from ``predict`` on the same data;
    * after a typed error from any call on a fitted model (a refit that fails validation
      included) the earlier fit's outputs on the old data changed or the model broke;
    * a bad hyperparameter no sane API accepts (NaN or a string for a number, an unknown
      choice, a random_state of -1, ...) was accepted by ``fit``; K or sizes of 10**9
      fitted without an error;
    * a model file with a fault that still loads gives other outputs than the original, or
      a forged (lying) file loads and a method then fails or returns non-finite results
      (one forgery is a valid file by construction: every fitted attribute removed and the
      seal recomputed describes an unfitted model, so it must load as one and answer
      NotFittedError);
      a pickle payload ran (its marker file exists);
    * the command exited with another code than the case expects, or with an error that is
      not exactly one ``latentspace: error:`` line on stderr.
hang
    The case did not finish within its time limit, 30 s by default (``--timeout``): the
    slowest legitimate in-process case (a 2-epoch neural fit, a 30000x60 PCA) takes a few
    seconds, so 30 s is a wide margin on a loaded 2-core machine. The few CLI cases that
    start a real interpreter get 60 s (the interrupted fit waits 12 s before its SIGINT).
    The worker is killed and restarted.

Cases run in worker subprocesses (``--jobs``, 2 by default), each regenerated inside the
worker from a small JSON descriptor (area, estimator, method, variant, ...), one torch/BLAS
thread per worker, seeded before every case. Neural fits use 40x4 data, hidden sizes of 8
and ``max_epochs=2`` unless the parameter under test is about epochs.
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import json
import os
import re
import select
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# the library under test: this checkout's src/ unless CAMPAIGN_SRC (or --src) names another
SRC = os.path.abspath(os.environ.get("CAMPAIGN_SRC") or os.path.join(ROOT, "src"))
if os.path.isdir(os.path.join(SRC, "latentspace")) and SRC not in sys.path:
    sys.path.insert(0, SRC)

from .classify import BAD, CRASH, HANG, OUTCOMES  # noqa: E402

AREAS = ("data", "params", "files", "cli")
FAST_FRACTION = 0.05
DEFAULT_TIMEOUT = 30.0


# ----------------------------------------------------------------------------- cases
def _case_id(d: dict) -> str:
    keys = [k for k in d if k not in ("area", "est", "codes", "id", "timeout")]
    parts = [d["area"], d["est"]]
    for k in keys:
        v = d[k]
        if k == "n" and "i" in d:
            continue
        parts.append(v if isinstance(v, (str, int)) else json.dumps(v, separators=(",", ":")))
    return "/".join(str(p) for p in parts)


def all_cases() -> list[dict]:
    from . import area_cli, area_data, area_files, area_params

    cases = []
    for mod in (area_data, area_params, area_files, area_cli):
        for d in mod.descriptors():
            d["id"] = _case_id(d)
            cases.append(d)
    ids = [d["id"] for d in cases]
    dup = [i for i, c in collections.Counter(ids).items() if c > 1]
    if dup:
        raise RuntimeError(f"duplicate case ids: {dup[:5]}")
    return cases


def _rank(case_id: str) -> str:
    return hashlib.sha1(case_id.encode()).hexdigest()


def fast_subset(cases: list[dict], fraction: float = FAST_FRACTION) -> list[dict]:
    """A deterministic stratified sample: the same share of every (area, estimator)."""
    strata = collections.defaultdict(list)
    for d in cases:
        strata[(d["area"], d["est"])].append(d)
    keep = set()
    for group in strata.values():
        n = max(1, round(len(group) * fraction))
        keep.update(d["id"] for d in sorted(group, key=lambda d: _rank(d["id"]))[:n])
    return [d for d in cases if d["id"] in keep]


def repro(d: dict) -> str:
    from . import area_cli, area_data, area_files, area_params

    mod = {"data": area_data, "params": area_params, "files": area_files,
           "cli": area_cli}.get(d["area"])
    text = mod.repro(d) if mod else d["id"]
    return f"{text}    # python -m campaign --case '{d['id']}'"


# ----------------------------------------------------------------------------- workers
class Worker:
    def __init__(self, warm: bool = True):
        self.warm = warm
        env = dict(os.environ)
        if not warm:
            env["CAMPAIGN_NO_WARMUP"] = "1"
        env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1",
                   NUMBA_NUM_THREADS="1", PYTHONHASHSEED="0")
        env["PYTHONPATH"] = os.pathsep.join(
            [SRC, ROOT] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "campaign.worker"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, cwd=ROOT, env=env, start_new_session=True, text=True,
            bufsize=1)
        self.case = None
        self.started = None
        self.ready = False
        self.tmp = None
        self.born = time.monotonic()

    def fileno(self):
        return self.proc.stdout.fileno()

    def send(self, d):
        self.case, self.started = d, time.monotonic()
        self.proc.stdin.write(json.dumps(d) + "\n")
        self.proc.stdin.flush()

    def kill(self):
        try:
            os.killpg(self.proc.pid, 9)
        except (ProcessLookupError, PermissionError):
            pass
        self.proc.wait()
        self.cleanup()

    def cleanup(self):
        if self.tmp and os.path.isdir(self.tmp):
            shutil.rmtree(self.tmp, ignore_errors=True)

    def close(self):
        try:
            self.proc.stdin.close()
            self.proc.wait(timeout=10)
        except (subprocess.TimeoutExpired, BrokenPipeError, OSError):
            self.kill()
        self.cleanup()


def run_cases(cases, *, jobs=2, timeout=DEFAULT_TIMEOUT, progress=True,
              startup_timeout=300.0, warm=True):
    """Run ``cases`` in ``jobs`` workers; -> {id: result}. Workers fit every estimator once
    before their first case unless ``warm`` is false (numba's compilation then falls on
    the first K-means case)."""
    pending = list(reversed(cases))
    results = {}
    workers = [Worker(warm) for _ in range(min(jobs, max(1, len(cases))))]
    done_count, t0, last_print = 0, time.monotonic(), 0.0
    try:
        while pending or any(w.case is not None for w in workers):
            for w in workers:
                if w.ready and w.case is None and pending:
                    w.send(pending.pop())
            now = time.monotonic()
            limit = lambda w: w.case.get("timeout", timeout)  # noqa: E731
            waits = [w.started + limit(w) - now for w in workers if w.case is not None]
            waits += [w.born + startup_timeout - now for w in workers if not w.ready]
            r, _, _ = select.select(workers, [], [], max(0.05, min(waits, default=1.0)))
            for w in r:
                line = w.proc.stdout.readline()
                if not line:  # the worker died
                    code = w.proc.wait()
                    w.cleanup()
                    if w.case is not None:
                        results[w.case["id"]] = _result(
                            w.case, CRASH, f"the worker process died (exit status {code}, "
                            f"a negative one is the signal) while running the case",
                            time.monotonic() - w.started)
                        done_count += 1
                    elif not w.ready:
                        raise RuntimeError(f"a campaign worker failed to start (exit {code})")
                    workers[workers.index(w)] = Worker(warm)
                    continue
                msg = json.loads(line)
                if msg.get("ready"):
                    w.ready, w.tmp = True, msg.get("tmp")
                    continue
                results[msg["id"]] = msg
                w.case = None
                done_count += 1
            now = time.monotonic()
            for i, w in enumerate(workers):
                if w.case is not None and now - w.started > limit(w):
                    results[w.case["id"]] = _result(
                        w.case, HANG, f"did not finish within {limit(w):g} s; killed", limit(w))
                    done_count += 1
                    w.kill()
                    workers[i] = Worker(warm)
                elif not w.ready and now - w.born > startup_timeout:
                    raise RuntimeError("a campaign worker did not start in time")
            if progress and now - last_print > 10:
                last_print = now
                print(f"  {done_count}/{len(cases)} cases, {now - t0:.0f} s", file=sys.stderr,
                      flush=True)
    finally:
        for w in workers:
            if w.case is not None:
                w.kill()
            else:
                w.close()
    return results


def _result(d, outcome, evidence, seconds):
    return {"id": d["id"], "outcome": outcome, "evidence": evidence,
            "seconds": round(seconds, 3), "detail": d.get("detail", "")}


# ----------------------------------------------------------------------------- report
def totals_table(cases, results, key) -> str:
    rows = collections.OrderedDict()
    for d in cases:
        k = key(d)
        row = rows.setdefault(k, collections.Counter())
        row["cases"] += 1
        row[results[d["id"]]["outcome"]] += 1
    total = collections.Counter()
    for row in rows.values():
        total.update(row)
    rows["**total**"] = total
    head = "| {} | cases | OK | typed error | crash | silent-wrong | hang |"
    lines = [head.format(key.__name__), "|---|---:|---:|---:|---:|---:|---:|"]
    for k, row in rows.items():
        lines.append(f"| {k} | {row['cases']} | " + " | ".join(str(row[o]) for o in OUTCOMES)
                     + " |")
    return "\n".join(lines)


def estimator(d):
    return d["est"]


def area(d):
    return d["area"]


def root_cause(result) -> str:
    """A failure's evidence with numbers, quotes and paths blurred, to group like with like."""
    text = result["evidence"].split("\n")[0]
    text = re.sub(r"'[^']*'|\"[^\"]*\"", "'…'", text)
    text = re.sub(r"/[\w./-]+", "<path>", text)
    text = re.sub(r"-?\d+(\.\d+)?(e[-+]?\d+)?", "N", text)
    text = re.sub(r"\[raised in [^\]]*\]", lambda m: m.group(0), text)
    return f"{result['outcome']}: {text[:160]}"


def write_report(cases, results, out_dir, seconds, fast) -> tuple[str, int]:
    os.makedirs(out_dir, exist_ok=True)
    by_id = {d["id"]: d for d in cases}
    bad = [d for d in cases if results[d["id"]]["outcome"] in BAD]
    summary = (f"# latentspace reliability campaign{' (fast subset)' if fast else ''}\n\n"
               f"{len(cases)} cases in {seconds:.0f} s.\n\n## Per estimator\n\n"
               + totals_table(cases, results, estimator) + "\n\n## Per area\n\n"
               + totals_table(cases, results, area) + "\n")
    groups = collections.defaultdict(list)
    for d in bad:
        groups[root_cause(results[d["id"]])].append(d)
    lines = [summary, f"\n## Failures by root cause ({len(bad)} cases, {len(groups)} groups)\n"]
    for cause, ds in sorted(groups.items(), key=lambda kv: -len(kv[1])):
        ex = ds[0]
        lines.append(f"- **{len(ds)}x** {cause}\n  - e.g. `{repro(ex)}`")
    lines.append("\n## Every failure\n")
    for d in bad:
        r = results[d["id"]]
        detail = f" ({r['detail']})" if r.get("detail") else ""
        first = r["evidence"].splitlines()[0] if r["evidence"] else ""
        lines.append(f"- [{r['outcome']}] `{repro(d)}`{detail}\n  - {first}")
    with open(os.path.join(out_dir, "failures.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    with open(os.path.join(out_dir, "results.json"), "w") as f:
        json.dump({"seconds": seconds, "fast": fast, "cases": len(cases),
                   "results": [dict(results[d["id"]], descriptor=by_id[d["id"]],
                                    repro=repro(d)) for d in cases]}, f, indent=1)
    return summary, len(bad)


# ----------------------------------------------------------------------------- main
def _one(case_id: str) -> int:
    from .worker import Context, execute

    d = next((c for c in all_cases() if c["id"] == case_id), None)
    if d is None:
        print(f"no case {case_id!r}; list them with --list", file=sys.stderr)
        return 2
    import tempfile

    tmp = tempfile.mkdtemp(prefix="latentspace-campaign-")
    os.environ["CAMPAIGN_TRACEBACK"] = "1"
    try:
        r = execute(dict(d), Context(tmp))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{r['outcome']}: {r['evidence']}")
    print(repro(d))
    return 1 if r["outcome"] in BAD else 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m campaign", description=__doc__.split("\n\n")[0])
    p.add_argument("--fast", action="store_true", help="a ~5%% stratified sample")
    p.add_argument("--jobs", type=int, default=2, help="worker processes (default: 2)")
    p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT,
                   help="seconds per case before it counts as a hang (default: 30)")
    p.add_argument("--out", default=os.path.join(ROOT, "campaign_out"),
                   help="folder for failures.md and results.json (default: campaign_out)")
    p.add_argument("--area", action="append", choices=AREAS, help="only these areas")
    p.add_argument("--est", action="append", help="only these estimators")
    p.add_argument("--case", help="run one case in-process and print its evidence")
    p.add_argument("--list", action="store_true", help="list the case ids and stop")
    p.add_argument("--src", help="source tree of the latentspace under test (default: "
                   "this checkout's src/); must be given before anything is imported, so it "
                   "restarts the command with CAMPAIGN_SRC set")
    args = p.parse_args(argv)
    if args.src and os.path.abspath(args.src) != SRC:
        env = dict(os.environ, CAMPAIGN_SRC=os.path.abspath(args.src))
        rest = [a for a in (sys.argv[1:] if argv is None else argv)]
        i = rest.index("--src") if "--src" in rest else None
        rest = rest[:i] + rest[i + 2:] if i is not None else [a for a in rest
                                                                if not a.startswith("--src=")]
        return subprocess.call([sys.executable, "-m", "campaign"] + rest, cwd=ROOT, env=env)
    if args.case:
        return _one(args.case)
    cases = all_cases()
    if args.area:
        cases = [d for d in cases if d["area"] in args.area]
    if args.est:
        cases = [d for d in cases if d["est"] in args.est]
    if args.fast:
        cases = fast_subset(cases)
    if args.list:
        print("\n".join(d["id"] for d in cases))
        return 0
    print(f"{len(cases)} cases, {args.jobs} worker(s), {args.timeout:g} s per case",
          file=sys.stderr)
    t0 = time.monotonic()
    results = run_cases(cases, jobs=args.jobs, timeout=args.timeout)
    seconds = time.monotonic() - t0
    summary, n_bad = write_report(cases, results, args.out, seconds, args.fast)
    print(summary)
    print(f"{n_bad} crash/silent-wrong/hang case(s); see "
          f"{os.path.relpath(os.path.join(args.out, 'failures.md'), os.getcwd())}")
    return 1 if n_bad else 0


if __name__ == "__main__":
    sys.exit(main())
