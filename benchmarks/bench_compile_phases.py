"""Where a first call's time goes: tracing, lowering to XLA, compiling, running.

Each case runs in a fresh process with the persistent compilation cache off. The hot program of
the case is intercepted on its first call and timed in phases: ``trace`` (Python tracing into a
TF graph, ``get_concrete_function``), ``lower`` (TF graph to HLO, ``experimental_get_compiler_ir``
at stage "hlo"), then the first call itself (lowering again, XLA's optimisation and code
generation, and one run), and ``run`` (the same call again, warm). ``compile`` is the first call
less the warm run. Sizes: the fused program's optimised HLO (instructions, fusions, loops,
conditionals).

Cases: ``kmeans`` (the whole K-means fit program, 60,000 x 64 latents, k=10, n_init=10),
``tsne_chunk`` (t-SNE's 50-iteration chunk program at n=5,000, perplexity 15), ``knn`` (the
k-NN search of the same fit).

Usage: python benchmarks/bench_compile_phases.py [--cases kmeans,tsne_chunk,knn]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # noqa: E402


def _timed_program(program, args, kwargs):
    """Phase times of ``program`` (a ``tf.function``) on its first call with these arguments."""
    tic = time.perf_counter()
    program.get_concrete_function(*args, **kwargs)
    trace = time.perf_counter() - tic
    ir = program.experimental_get_compiler_ir(*args, **kwargs)
    tic = time.perf_counter()
    ir(stage="hlo")
    lower = time.perf_counter() - tic
    tic = time.perf_counter()
    _block(program(*args, **kwargs))
    first = time.perf_counter() - tic
    tic = time.perf_counter()
    _block(program(*args, **kwargs))
    run = time.perf_counter() - tic
    hlo = ir(stage="optimized_hlo")
    return {
        "trace_s": trace,
        "lower_s": lower,
        "first_call_s": first,
        "compile_s": first - run,
        "run_s": run,
        "hlo_lines": hlo.count("\n"),
        "fusions": hlo.count(" fusion("),
        "whiles": hlo.count(" while("),
        "conditionals": hlo.count(" conditional("),
    }


def _block(out):
    import tensorflow as tf

    for t in tf.nest.flatten(out):
        if hasattr(t, "numpy"):
            t.numpy()


def _timed_once(program, phases):
    """``program`` whose first call (while ``phases`` is empty) is timed into ``phases``."""

    def wrapper(*args, **kwargs):
        if not phases:
            phases.update(_timed_program(program, args, kwargs))
        return program(*args, **kwargs)

    return wrapper


def _intercept_factory(module, name, phases):
    """Replace ``module.name``, a function returning programs, so that the first call of the
    first program it returns is timed."""
    make = getattr(module, name)
    setattr(module, name, lambda *key: _timed_once(make(*key), phases))


def worker(case: str) -> dict:
    import numpy as np

    import tfclust
    from tfclust import _neighbors
    from tfclust.kmeans import _lloyd
    from tfclust.tsne import optimize

    phases: dict = {}
    if case == "kmeans":
        x, _ = common.latents(60_000)
        _intercept_factory(_lloyd, "fit_in_memory_program", phases)
        tfclust.KMeans(10, n_init=10, random_state=42).fit(x)
    elif case == "knn":
        x, _ = common.latents(5_000)
        _intercept_factory(_neighbors, "specialised", phases)
        tfclust.TSNE(perplexity=15, learning_rate=100, random_state=0, max_iter=250).fit(x)
    elif case == "tsne_chunk":
        x, _ = common.latents(5_000)
        _intercept_factory(optimize, "_chunk_program", phases)
        tfclust.TSNE(perplexity=15, learning_rate=100, random_state=0, max_iter=250).fit(x)
    else:
        raise ValueError(f"unknown case {case!r}")
    return {"case": case, **{k: float(np.round(v, 4)) for k, v in phases.items()}}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", default="kmeans,tsne_chunk,knn")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker)))
        return
    env = dict(os.environ, TFCLUST_CACHE_DIR="off", TF_CPP_MIN_LOG_LEVEL="3")
    rows = []
    for case in args.cases.split(","):
        load = os.getloadavg()[0]
        out = subprocess.run(
            [sys.executable, __file__, "--worker", case],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        rows.append({**json.loads(out.stdout.strip().splitlines()[-1]), "load_before": load})
    common.report("compile_phases", rows, notes={"cache": "off", "process": "fresh per case"})


if __name__ == "__main__":
    main()
