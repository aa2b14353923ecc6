"""Area "cli": the ``latentspace`` command's exit codes and its one-line errors.

Most cases run in-process through ``latentspace.cli.main(argv)`` with stdout and stderr
captured (a ``SystemExit`` counts as its code); a handful run as real subprocesses. Expected
codes follow RELIABILITY's table: 0 ok, 2 usage, 3 data, 4 model file, 5 numerical failure,
130 interrupted. Code 1 or a traceback without ``--debug`` is a crash; another code than the
case expects, or an error that is not exactly one ``latentspace: error:`` line on stderr, is
silent-wrong (the user is told the wrong thing).
"""

from __future__ import annotations

import contextlib
import inspect
import io
import os
import signal
import subprocess
import sys
import time

import numpy as np

from .classify import Crashed, Wrong
from .inputs import ESTIMATORS, base_data, cls

__all__ = ["descriptors", "run"]

MODELS = {"PCA": "pca", "KMeans": "kmeans", "GaussianMixture": "gmm",
          "BernoulliMixture": "bmm", "PPCAMixture": "mppca", "Autoencoder": "ae", "VAE": "vae",
          "GAN": "gan"}
SMALL = {
    "PCA": ["--n-components", "2"],
    "KMeans": ["--n-clusters", "2", "--n-init", "1"],
    "GaussianMixture": ["--n-components", "2"],
    "BernoulliMixture": ["--n-components", "2"],
    "PPCAMixture": ["--n-components", "2", "--n-latent", "2"],
    "Autoencoder": ["--hidden-sizes", "8", "--max-epochs", "2", "--batch-size", "16"],
    "VAE": ["--hidden-sizes", "8", "--max-epochs", "2", "--batch-size", "16",
            "--likelihood", "gaussian"],
    "GAN": ["--generator-sizes", "8", "--discriminator-sizes", "8", "--max-epochs", "2",
            "--batch-size", "16"],
}
DATA = ("good", "missing", "garbage", "nan", "inf", "empty", "empty_csv", "header_only_csv",
        "strings_csv", "ragged_csv", "one_d", "three_d", "object_npy", "wrong_width",
        "directory", "unknown_ext", "parquet_no_pyarrow", "good_csv", "good_npz", "complex")
MODEL_FILES = ("good", "missing", "corrupt", "truncated", "pickle", "garbage", "unfitted",
               "directory", "empty")
# a 3-D file is flattened to rows by the reader (image stacks); 3 columns fit as well as 4
VALID_FOR_FIT = ("good_csv", "good_npz", "three_d", "wrong_width")
VALID_FOR_APPLY = ("good_csv", "good_npz", "three_d")
SIGINT_AFTER = 12.0  # seconds: well past the imports (about 4 s on a loaded machine)
COMMAND_LIMIT = 30.0  # seconds a real subprocess may take to end (imports included)
SUBPROCESS_LIMIT = 60.0  # the case's own time limit: a fresh interpreter plus the above
APPLY = ("transform", "inverse-transform", "predict", "score")


def _has(est, method):
    from .inputs import methods_of

    return method in methods_of(est)


def descriptors():
    out = []
    add = lambda **kw: out.append(dict(area="cli", **kw))  # noqa: E731
    for argv, codes in (([], [2]), (["--help"], [0]), (["--version"], [0]),
                        (["bogus-command"], [2]), (["datasets"], [0]),
                        (["fit"], [2]), (["fit", "nosuchmodel", "{good}", "-o", "{out}"], [2]),
                        (["tour", "--dataset", "bogus"], [2]),
                        (["tour", "--chapters", "bogus", "--quick", "--out", "{tmp}/t"], [2]),
                        (["fit", "ae", "{good}", "-o", "{out}", "--hidden-sizes", "x,y"], [2]),
                        (["info"], [2]), (["transform", "{model_PCA}"], [2])):
        add(est="(cli)", case="argv", argv=argv, codes=codes)
    for est, name in MODELS.items():
        add(est=est, case="fit", data="good", extra=[], codes=[0])
        for data in DATA[1:]:
            add(est=est, case="fit", data=data, extra=[],
                codes=[0] if data in VALID_FOR_FIT else [3])
        for flag, value, codes in (("--seed", "bogus", [2]), ("--seed", "-1", [2]),
                                   ("--device", "cpw", [2]), ("--device", "cuda:7", [2]),
                                   ("--threads", "0", [2]), ("--threads", "x", [2]),
                                   ("--out", "{tmp}/no/such/dir/m.safetensors", [2, 3]),
                                   ("--data-home", "{tmp}/nohome", [0])):
            add(est=est, case="fit", data="good", extra=[flag, value], codes=codes)
        add(est=est, case="fit", data="name_mnist_nohome", extra=[], codes=[3])
        from .area_params import REJECT, _kind

        for p in list(inspect.signature(cls(est).__init__).parameters.values())[1:]:
            if p.name in ("random_state", "device", "verbose"):
                continue
            flag = "--" + p.name.replace("_", "-")
            kind = _kind(p.default)
            if kind == "flag":
                add(est=est, case="fit", data="good", extra=[flag + "=bogus"], codes=[2])
                continue
            for value in ("bogus", "nan", "-1", "1e999", ""):
                key = {"1e999": "inf", "": "empty_str"}.get(value, value)
                strict = key in REJECT[kind] and not (kind == "optional")
                add(est=est, case="fit", data="good", extra=[f"{flag}={value}"],
                    codes=[2] if strict else [0, 2])
        for cmd in APPLY:
            method = cmd.replace("-", "_")
            usable = _has(est, method) and (method != "score" or _has(est, "score_samples")
                                             or est == "KMeans")
            for mf in MODEL_FILES:
                # a method the model lacks: 2, or 4 when the file is refused first
                codes = ([0] if usable else [2]) if mf == "good" else (
                    [4] if usable or mf not in ("corrupt", "truncated", "unfitted") else [2, 4])
                add(est=est, case="apply", cmd=cmd, model=mf, data="good", codes=codes)
            if usable:
                for data in DATA[1:]:
                    codes = [0] if data in VALID_FOR_APPLY else [3]
                    if cmd == "inverse-transform":
                        codes = [3]  # latent codes of width 2 expected, data is width 4
                    add(est=est, case="apply", cmd=cmd, model="good", data=data, codes=codes)
                add(est=est, case="apply", cmd=cmd, model="good", data="good",
                    extra=["--out", "{tmp}/x.xyz"], codes=[2])
                add(est=est, case="apply", cmd=cmd, model="good", data="good",
                    extra=["--debug"], codes=[0])
        if _has(est, "score_samples"):
            for v in ("0", "-5", "x"):
                add(est=est, case="apply", cmd="score", model="good", data="good",
                    extra=["--n-importance", v], codes=[2, 0] if est != "VAE" else [2])
            add(est=est, case="apply", cmd="score", model="good", data="good",
                extra=["--per-sample", "--out", "{tmp}/s.npy"], codes=[0])
        for n, codes in (("5", [0]), ("0", [2]), ("-1", [2]), ("1000000000000", [2, 3]),
                         ("x", [2]), ("1.5", [2])):
            add(est=est, case="sample", model="good", n=n,
                codes=codes if _has(est, "sample") else [2])
        for mf in MODEL_FILES[1:]:
            add(est=est, case="sample", model=mf, n="5",
                codes=[4] if _has(est, "sample") or mf not in ("corrupt", "truncated",
                                                                "unfitted") else [2, 4])
        for mf in MODEL_FILES:
            # info reads the header only: a flipped payload byte may go unnoticed there
            for extra in ([], ["--json"]):
                add(est=est, case="info", model=mf, extra=extra,
                    codes=[0] if mf in ("good", "unfitted") else [0, 4] if mf == "corrupt"
                    else [4])
        add(est=est, case="apply", cmd="transform", model="missing", data="good",
            extra=["--debug"], codes=[4], debug=True)
    for est in ("KMeans", "GaussianMixture", "PPCAMixture"):
        for ks, crit, codes in (("2-4", "elbow" if est == "KMeans" else "bic", [0]),
                                ("bogus", "elbow", [2]), ("5-2", "elbow", [2]),
                                ("0-3", "elbow", [2]), ("2-4", "bogus", [2]),
                                ("1000-1002", "elbow", [2, 3])):
            add(est=est, case="select-k", ks=ks, criterion=crit, extra=[], codes=codes)
        add(est=est, case="select-k", ks="2-3", criterion="heldout", extra=["--cv", "1"],
            codes=[2])
    # real subprocesses
    for argv, codes in (([], [2]), (["info", "{tmp}/missing.safetensors"], [4]),
                        (["fit", "ae", "{good}", "-o", "{out}", "--hidden-sizes", "x,y"], [2]),
                        (["sample", "{model_GaussianMixture}", "-n", "1000000000000", "-o",
                          "{tmp}/s.npy"], [2, 3])):
        add(est="(cli)", case="subprocess", argv=argv, codes=codes, timeout=SUBPROCESS_LIMIT)
    # a long fit (it cannot converge early: n_iter_no_change is huge) interrupted once the
    # interpreter has surely imported everything and entered the training loop
    add(est="(cli)", case="sigint", argv=["fit", "vae", "{good}", "-o", "{out}",
                                          "--max-epochs", "1000000", "--hidden-sizes", "8",
                                          "--n-iter-no-change", "1000000000",
                                          "--likelihood", "gaussian"], codes=[130],
        timeout=SUBPROCESS_LIMIT)
    return out


def repro(d) -> str:
    names = {"data": f"<{d.get('data', 'good')} data file>",
             "model": f"<{d.get('model', 'good')} {d['est']} model file>", "out": "m.safetensors",
             "tmp": "TMP", "good": "<good data file>"}
    names.update({f"model_{e}": f"<{e} model file>" for e in ESTIMATORS})
    return "latentspace " + " ".join(a.format(**names) for a in _argv_template(d))


# ----------------------------------------------------------------------------- files
def prepare(tmp: str, ctx) -> dict:
    """Data files and model files of the CLI cases, written once per worker."""
    paths = {"tmp": tmp, "out": os.path.join(tmp, "cli_out.safetensors")}
    X = base_data("PCA")
    Xb = base_data("BernoulliMixture")

    def put(name, writer):
        p = os.path.join(tmp, name)
        writer(p)
        return p

    for tag, data in (("", X), ("bin_", Xb)):
        paths[tag + "good"] = put(tag + "good.npy", lambda p, d=data: np.save(p, d))
        paths[tag + "good_csv"] = put(tag + "good.csv", lambda p, d=data: np.savetxt(
            p, d, delimiter=",", header=",".join(f"f{i}" for i in range(4)), comments=""))
        paths[tag + "good_npz"] = put(tag + "good.npz", lambda p, d=data: np.savez(p, X=d))
        nan = data.copy(); nan[2, 1] = np.nan
        paths[tag + "nan"] = put(tag + "nan.npy", lambda p, d=nan: np.save(p, d))
        inf = data.copy(); inf[2, 1] = np.inf
        paths[tag + "inf"] = put(tag + "inf.npy", lambda p, d=inf: np.save(p, d))
    paths["missing"] = os.path.join(tmp, "missing.npy")
    paths["garbage"] = put("garbage.npy", lambda p: open(p, "wb").write(bytes(range(256))))
    paths["empty"] = put("empty.npy", lambda p: np.save(p, np.zeros((0, 4))))
    paths["empty_csv"] = put("empty.csv", lambda p: open(p, "w").close())
    paths["header_only_csv"] = put("header.csv", lambda p: open(p, "w").write("a,b,c,d\n"))
    paths["strings_csv"] = put("strings.csv",
                               lambda p: open(p, "w").write("a,b\nx,y\nz,w\n"))
    paths["ragged_csv"] = put("ragged.csv",
                              lambda p: open(p, "w").write("1,2,3,4\n1,2\n1,2,3,4,5,6\n"))
    paths["one_d"] = put("one_d.npy", lambda p: np.save(p, X[:, 0]))
    for tag, data in (("", X), ("bin_", Xb)):
        paths[tag + "three_d"] = put(tag + "three_d.npy",
                                     lambda p, d=data: np.save(p, d[:, :, None]))
        paths[tag + "wrong_width"] = put(tag + "wrong_width.npy",
                                         lambda p, d=data: np.save(p, d[:, :3]))
    paths["object_npy"] = put("object.npy", lambda p: np.save(p, X.astype(object),
                                                              allow_pickle=True))
    paths["complex"] = put("complex.npy", lambda p: np.save(p, X + 1j))
    paths["directory"] = os.path.join(tmp, "a_directory")
    os.makedirs(paths["directory"], exist_ok=True)
    paths["unknown_ext"] = put("data.xyz", lambda p: np.save(open(p, "wb"), X))
    paths["parquet_no_pyarrow"] = put("data.parquet", lambda p: open(p, "wb").write(
        b"PAR1" + bytes(64) + b"PAR1"))
    paths["name_mnist_nohome"] = "mnist"
    for est in ESTIMATORS:
        blob, _ = ctx.model_file(est)
        paths[f"model_{est}"] = put(f"{est}.safetensors", lambda p: open(p, "wb").write(blob))
        bad = bytearray(blob); bad[-5] ^= 0x10
        paths[f"model_{est}_corrupt"] = put(f"{est}_corrupt.safetensors",
                                            lambda p: open(p, "wb").write(bytes(bad)))
        paths[f"model_{est}_truncated"] = put(f"{est}_trunc.safetensors",
                                              lambda p: open(p, "wb").write(blob[:len(blob) // 2]))
        from .inputs import make

        paths[f"model_{est}_unfitted"] = put(f"{est}_unfitted.safetensors",
                                             lambda p: make(est).save(p))
    paths["model_missing"] = os.path.join(tmp, "missing.safetensors")
    paths["model_garbage"] = paths["garbage"]
    paths["model_directory"] = paths["directory"]
    paths["model_empty"] = put("empty.safetensors", lambda p: open(p, "wb").close())
    from .area_files import generic_file

    paths["marker"] = os.path.join(tmp, "CLI_PAYLOAD_RAN")
    paths["model_pickle"] = os.path.join(tmp, "model.pkl")
    generic_file("pickle_payload", paths["model_pickle"], paths["marker"])
    return paths


def _model_path(d, paths):
    mf = d.get("model", "good")
    if mf == "good":
        return paths[f"model_{d['est']}"]
    if mf in ("corrupt", "truncated", "unfitted"):
        return paths[f"model_{d['est']}_{mf}"]
    return paths[f"model_{mf}"]


def _data_path(d, paths):
    data = d.get("data", "good")
    binary = d["est"] == "BernoulliMixture"
    if binary and "bin_" + data in paths:
        return paths["bin_" + data]
    if d.get("cmd") == "inverse-transform" and data == "good":
        return paths.setdefault("codes", _codes(paths))
    return paths[data]


def _codes(paths):
    p = os.path.join(paths["tmp"], "codes.npy")
    np.save(p, np.zeros((5, 2)))
    return p


def _argv_template(d):
    case = d["case"]
    est = d["est"]
    if case in ("argv", "subprocess", "sigint"):
        return list(d["argv"])
    if case == "fit":
        return ["fit", MODELS[est], "{data}", "-o", "{out}"] + SMALL[est] + list(d["extra"])
    if case == "apply":
        return [d["cmd"], "{model}", "{data}"] + (
            [] if d["cmd"] == "score" else ["-o", "{tmp}/result.npy"]) + list(d.get("extra", []))
    if case == "sample":
        return ["sample", "{model}", "-n", d["n"], "-o", "{tmp}/samples.npy"]
    if case == "info":
        return ["info", "{model}"] + list(d["extra"])
    if case == "select-k":
        return ["select-k", MODELS[est], "{data}", "--ks", d["ks"], "--criterion",
                d["criterion"], "-o", "{tmp}/curve.png"] + list(d["extra"])
    raise KeyError(case)


def _argv(d, paths):
    fill = dict(paths)
    fill["data"] = _data_path(d, paths) if d["est"] in ESTIMATORS else paths["good"]
    if d["est"] in ESTIMATORS:
        fill["model"] = _model_path(d, paths)
    return [a.format(**fill) for a in _argv_template(d)]


# ----------------------------------------------------------------------------- run
def _in_process(argv, block_parquet=False):
    from latentspace.cli import main

    out, err = io.StringIO(), io.StringIO()
    saved = {k: sys.modules.get(k) for k in ("pyarrow", "fastparquet", "pyarrow.parquet")}
    try:
        if block_parquet:
            for k in saved:
                sys.modules[k] = None  # import raises ImportError
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(argv)
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        if block_parquet:
            for k, v in saved.items():
                if v is None:
                    sys.modules.pop(k, None)
                else:
                    sys.modules[k] = v
    return code, err.getvalue()


def _subprocess(argv, *, sigint_after=None):
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    cmd = [sys.executable, "-c", "import sys; from latentspace.cli import main; "
           "sys.exit(main(sys.argv[1:]))"] + argv
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                         text=True)
    if sigint_after is not None:
        time.sleep(sigint_after)
        p.send_signal(signal.SIGINT)
    try:
        _, err = p.communicate(timeout=COMMAND_LIMIT)
    except subprocess.TimeoutExpired:
        p.kill()
        _, err = p.communicate()
        raise Wrong(f"the command did not end within {COMMAND_LIMIT:g} s"
                    + (" after SIGINT" if sigint_after else ""))
    return p.returncode, err


def run(d, ctx):
    paths = ctx.cli_paths()
    argv = _argv(d, paths)
    if d["case"] == "subprocess":
        code, err = _subprocess(argv)
    elif d["case"] == "sigint":
        code, err = _subprocess(argv, sigint_after=SIGINT_AFTER)
    else:
        if os.path.exists(paths["marker"]):
            os.remove(paths["marker"])
        code, err = _in_process(argv, block_parquet=d.get("data") == "parquet_no_pyarrow")
        if os.path.exists(paths["marker"]):
            raise Wrong("the model file's pickle payload ran (the marker exists)")
    lines = [ln for ln in err.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("latentspace: error:")]
    first = errors[0] if errors else (lines[-1] if lines else "")
    debug = "--debug" in argv
    if code == 1:
        raise Crashed(f"exit 1 (unexpected): {first[:300]}")
    if not debug and any("Traceback" in ln for ln in lines):
        raise Crashed(f"a traceback on stderr without --debug (exit {code}): {first[:200]}")
    if code not in d["codes"]:
        raise Wrong(f"exit {code}, expected {' or '.join(map(str, d['codes']))}: "
                    f"{first[:300]}")
    if code not in (0,) and not debug and len(errors) != 1:
        others = [ln for ln in lines if not ln.startswith("latentspace: warning:")]
        raise Wrong(f"exit {code} with {len(errors)} error line(s) and {len(others)} other "
                    f"line(s) on stderr: {' | '.join(others)[:300]}")
    return None
