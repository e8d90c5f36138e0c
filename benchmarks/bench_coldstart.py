"""Cold start: the first call in a fresh process (compilation included) against the peer.

What a new user feels. Every measurement runs in its own fresh Python process (this script
with ``--worker CASE --impl IMPL``), which reports JSON on stdout: import seconds (the
estimator's module), data-prep seconds (loading the cached latents), the first call's seconds
(XLA compilation included for tfclust), the second call's (the same shape again in the same
process: warm) and the result's quality (inertia recomputed in float64, or the library's own
KL divergence). The parent also times each process wall to wall.

tfclust runs twice per case, each time in a fresh process: with an EMPTY persistent
compilation cache (``TFCLUST_CACHE_DIR`` = a new temporary folder) and then with that cache
WARM (the same folder again). The peer runs once per repeat, in its own fresh process.

Cases (data: ``common.latents()``, Fashion-MNIST autoencoder latents, 60,000 x 64 float32):

1. ``kmeans60k``: KMeans(n_clusters=10, n_init=10, random_state=42) on all 60,000 latents
   (the tutorial) against ``sklearn.cluster.KMeans`` with the same parameters;
2. ``kmeans5k``: the same on the first 5,000 latents;
3. ``minibatch60k``: MiniBatchKMeans(n_clusters=10, random_state=0) on 60,000, against
   scikit-learn's MiniBatchKMeans;
4. ``tsne5k``: TSNE(perplexity=15, learning_rate=100, random_state=0) on the first 5,000
   against ``sklearn.manifold.TSNE`` (Barnes-Hut); each process then fits the first 4,000
   (a new N right after 5,000: row ``tsne5k_newn``) and then the 5,000 again (warm);
5. ``tsne60k``: TSNE(perplexity=30, random_state=0, tfclust's defaults otherwise) of all
   60,000 against ``openTSNE.TSNE(perplexity=30, n_jobs=2, random_state=0)`` (slow: about
   a minute per fit; ``--skip-60k`` leaves it out);
6. ``tsne5k_e5``: case 4's first 5,000 on a second set of latents, ``common.latents(
   epochs=5)``, to check that warm speed does not depend on one set of latents;
7. ``run``: ``tfclust run --dataset mnist_sample --out TMP`` wall to wall (the README's main
   job), with an empty cache and then a warm one, and the per-stage seconds of its
   ``metrics.json``.

Ratios are tfclust / peer from the same benchmark run: "empty" and "cache" are the first calls
of the empty- and warm-cache processes over the peer's first call, "warm" the second calls
(median over every tfclust process of the case) over the peer's second call. With
``--repeat N`` every process runs N times and medians are reported.

Writes ``benchmarks/results/coldstart.json`` (every raw number, the machine, the load average
before and after every process) and regenerates ``docs/coldstart.md`` from it. ``--quick``
is a smoke run on small random data (and a small ``tfclust run``) that writes
``results/coldstart_quick.json`` instead and renders its doc to a temporary file.

Usage: python benchmarks/bench_coldstart.py [--cases 1,2,...|kmeans60k,...] [--skip-60k]
       [--repeat N] [--no-second-60k] [--merge] [--quick] [--doc]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

# Only the standard library at the top: a worker times its own imports.
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

NAME = "coldstart"
DOC_PATH = os.path.join(ROOT, "docs", "coldstart.md")
MARK = "COLDSTART_RESULT "

CASES = {
    "kmeans60k": {
        "number": 1,
        "kind": "kmeans",
        "n": 60_000,
        "quick_n": 4_000,
        "peer": "sklearn KMeans",
        "title": "K-means, 60,000 x 64, k=10, n_init=10 (the tutorial)",
    },
    "kmeans5k": {
        "number": 2,
        "kind": "kmeans",
        "n": 5_000,
        "quick_n": 1_000,
        "peer": "sklearn KMeans",
        "title": "K-means, first 5,000 latents, k=10, n_init=10",
    },
    "minibatch60k": {
        "number": 3,
        "kind": "minibatch",
        "n": 60_000,
        "quick_n": 4_000,
        "peer": "sklearn MiniBatchKMeans",
        "title": "MiniBatchKMeans, 60,000 x 64, k=10",
    },
    "tsne5k": {
        "number": 4,
        "kind": "tsne",
        "n": 5_000,
        "quick_n": 800,
        "new_n": 4_000,
        "quick_new_n": 600,
        "peer": "sklearn TSNE (Barnes-Hut)",
        "title": "t-SNE, first 5,000, perplexity 15, learning rate 100",
    },
    "tsne60k": {
        "number": 5,
        "kind": "tsne60k",
        "n": 60_000,
        "quick_n": 2_000,
        "peer": "openTSNE (n_jobs=2)",
        "title": "t-SNE, all 60,000, perplexity 30",
    },
    "tsne5k_e5": {
        "number": 6,
        "kind": "tsne",
        "n": 5_000,
        "quick_n": 800,
        "epochs": 5,
        "peer": "sklearn TSNE (Barnes-Hut)",
        "title": "t-SNE, first 5,000 of the 5-epoch latents (tutorial parameters)",
    },
    "run": {
        "number": 7,
        "kind": "run",
        "peer": None,
        "title": "`tfclust run --dataset mnist_sample`, wall to wall",
    },
}

# (table row, goal, column of that row, threshold). Columns: "empty_ratio", "cache_ratio",
# "warm_ratio" (tfclust / peer) or "empty_s", "cache_s" (tfclust seconds).
GOALS = [
    ("kmeans60k", "K-means tutorial, empty cache <= 1.0x sklearn", "empty_ratio", 1.0),
    ("kmeans60k", "K-means tutorial, warm cache <= 0.6x sklearn", "cache_ratio", 0.6),
    ("kmeans60k", "K-means tutorial, warm (second call) <= 0.4x sklearn", "warm_ratio", 0.4),
    ("tsne5k", "t-SNE 5,000, empty cache <= 0.5x sklearn BH", "empty_ratio", 0.5),
    ("tsne5k", "t-SNE 5,000, warm cache <= 0.3x sklearn BH", "cache_ratio", 0.3),
    (
        "tsne5k_newn",
        "t-SNE new N (4,000 after 5,000, same process, empty cache) <= 0.3x sklearn at 4,000",
        "empty_ratio",
        0.3,
    ),
    ("tsne5k", "warm t-SNE 5,000 (20-epoch latents) <= 0.25x sklearn", "warm_ratio", 0.25),
    ("tsne5k_e5", "warm t-SNE 5,000 (5-epoch latents) <= 0.25x sklearn", "warm_ratio", 0.25),
    ("run", "`tfclust run` mnist_sample, empty cache <= 35 s wall", "empty_s", 35.0),
    ("run", "`tfclust run` mnist_sample, warm cache <= 25 s wall", "cache_s", 25.0),
]
SHORT = {
    "empty_ratio": "empty",
    "cache_ratio": "cache",
    "warm_ratio": "warm",
    "empty_s": "empty",
    "cache_s": "cache",
}

COLUMNS = {
    "row": "table row id",
    "n": "points",
    "peer": "the peer library",
    "import_tf_s": "tfclust import seconds (median over its processes)",
    "import_peer_s": "the peer's import seconds",
    "peer_first_s": "the peer's first call in a fresh process",
    "empty_s": "tfclust's first call, fresh process, empty compilation cache",
    "empty_ratio": "empty_s / peer_first_s",
    "cache_s": "tfclust's first call, fresh process, warm compilation cache",
    "cache_ratio": "cache_s / peer_first_s",
    "peer_warm_s": "the peer's second call (same shape, same process)",
    "warm_s": "tfclust's second call (same shape, same process; median over its processes)",
    "warm_ratio": "warm_s / peer_warm_s",
    "quality_ratio": "tfclust's first-call inertia (or own KL) / the peer's",
    "goal": "the issue's goals for this row, met or missed",
}


# --------------------------------------------------------------------------- worker side


def _rng_data(n: int, seed: int):
    import numpy as np

    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=3.0, size=(10, 64))
    return (centers[rng.integers(0, 10, n)] + rng.normal(size=(n, 64))).astype(np.float32)


def latents_path(epochs: int) -> str:
    """The file ``common.latents(epochs=epochs)`` caches its latents in."""
    import common

    return os.path.join(common.CACHE_DIR, f"fashion_mnist_e{epochs}_s0_latents.npy")


def load_data(case: str, quick: bool):
    """The case's points: the cached latents (read directly, so that a peer's process does not
    import TensorFlow through ``common.latents``), or random blobs with ``--quick``."""
    import numpy as np

    spec = CASES[case]
    epochs = spec.get("epochs", 20)
    if quick:
        return _rng_data(spec["quick_n"], seed=epochs)
    path = latents_path(epochs)
    if not os.path.exists(path):  # the parent prepares them; this is only a fallback
        import common

        return common.latents(spec["n"], epochs=epochs)[0]
    return np.ascontiguousarray(np.load(path)[: spec["n"]])


def make_fit(case: str, impl: str, quick: bool):
    """Import the estimator (timed by the caller as the import) and return fit(x) -> quality."""
    kind = CASES[case]["kind"]
    if kind in ("kmeans", "minibatch"):
        if impl == "tfclust":
            from tfclust import KMeans, MiniBatchKMeans
        else:
            from sklearn.cluster import KMeans, MiniBatchKMeans
        if kind == "kmeans":

            def build():
                return KMeans(n_clusters=10, n_init=10, random_state=42)
        else:

            def build():
                return MiniBatchKMeans(n_clusters=10, random_state=0)

        def fit(x):
            km = build().fit(x)
            return km.cluster_centers_, {
                "own_inertia": float(km.inertia_),
                "n_iter": int(km.n_iter_),
            }

        def quality(x, centers):
            import common  # numpy only: the peer's process imports no TensorFlow

            return {"inertia": common.inertia(x, centers)}

        return fit, quality
    if kind == "tsne":
        if impl == "tfclust":
            from tfclust import TSNE
        else:
            from sklearn.manifold import TSNE
        params = {"perplexity": 15.0, "learning_rate": 100.0, "random_state": 0}
        if quick:
            params["max_iter"] = 250

        def fit(x):
            est = TSNE(**params)
            est.fit_transform(x)
            return None, {"kl_divergence": float(est.kl_divergence_), "n_iter": int(est.n_iter_)}

        return fit, None
    if kind == "tsne60k":
        if impl == "tfclust":
            from tfclust import TSNE

            def fit(x):
                est = TSNE(perplexity=30.0, random_state=0)
                est.fit_transform(x)
                return None, {
                    "kl_divergence": float(est.kl_divergence_),
                    "n_iter": int(est.n_iter_),
                }
        else:
            import openTSNE

            def fit(x):
                embedding = openTSNE.TSNE(perplexity=30, n_jobs=2, random_state=0).fit(x)
                return None, {"kl_divergence": float(embedding.kl_divergence)}

        return fit, None
    raise ValueError(f"case {case} has no worker")


def _peak_rss_mb() -> float | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def worker(case: str, impl: str, quick: bool, second: bool) -> None:
    """Runs in a fresh process: import, data, the calls; prints one JSON line on stdout."""
    start = time.perf_counter()
    fit, quality = make_fit(case, impl, quick)
    import_s = time.perf_counter() - start

    start = time.perf_counter()
    x = load_data(case, quick)
    prep_s = time.perf_counter() - start

    spec = CASES[case]
    n = len(x)
    calls = [("first", n)]
    if "new_n" in spec:
        calls.append(("new_n", spec["quick_new_n"] if quick else spec["new_n"]))
    if second:
        calls.append(("second", n))
    out = {"case": case, "impl": impl, "import_s": import_s, "prep_s": prep_s, "calls": {}}
    for label, size in calls:
        xs = x[:size]
        start = time.perf_counter()
        centers, info = fit(xs)
        seconds = time.perf_counter() - start
        if quality is not None:
            info.update(quality(xs, centers))
        out["calls"][label] = {"n": size, "seconds": seconds, **info}
        print(f"[worker {case} {impl}] {label} n={size}: {seconds:.2f} s", file=sys.stderr)
    out["peak_rss_mb"] = _peak_rss_mb()
    print(MARK + json.dumps(out), flush=True)


def prepare_latents(epochs: int) -> None:
    """Runs in a subprocess: make sure ``common.latents(epochs=epochs)`` is cached."""
    import common

    common.latents(epochs=epochs)


# --------------------------------------------------------------------------- parent side


def _env(cache_dir: str | None) -> dict:
    env = dict(os.environ)
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    env.pop("TFCLUST_CACHE_DIR", None)
    if cache_dir is not None:
        env["TFCLUST_CACHE_DIR"] = cache_dir
    return env


_NOTABLE = re.compile(r"retrac|warning|Error\b|Traceback|Exception|Killed", re.IGNORECASE)
# TensorFlow's start-up banner, in every process (its oneDNN line mentions "errors"), and
# t-SNE's progress lines ("error = 91.6", its KL).
_NOISE = (
    "absl::InitializeLog",
    "oneDNN custom operations",
    "cuInit",
    "rebuild TensorFlow",
    "error = ",
)


def _is_notable(line: str) -> bool:
    return bool(_NOTABLE.search(line)) and not any(n in line for n in _NOISE)


def _notable(stderr: str) -> list[str]:
    """The stderr lines worth keeping: warnings (retracing!), errors, tracebacks."""
    return [ln.strip() for ln in stderr.splitlines() if _is_notable(ln)][:20]


def _cache_size(path: str | None) -> dict | None:
    if path is None or not os.path.isdir(path):
        return None
    files, size = 0, 0
    for dirpath, _, names in os.walk(path):
        for name in names:
            files += 1
            try:
                size += os.path.getsize(os.path.join(dirpath, name))
            except OSError:
                pass
    return {"files": files, "bytes": size}


def _run_timed(cmd, cache, record: dict):
    """Run ``cmd`` in a fresh process with ``cache``; add its wall time, the load after it, its
    return code and notable stderr to ``record``; return the completed process."""
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=_env(cache), capture_output=True, text=True, cwd=ROOT)
    record["process_wall_s"] = time.perf_counter() - start
    record["load_after"] = list(os.getloadavg())
    record["returncode"] = proc.returncode
    record["stderr_notable"] = _notable(proc.stderr)
    return proc


def run_worker(case: str, impl: str, cache: str | None, label: str, args) -> dict:
    """One fresh worker process; returns its record (with wall time, load, notable stderr)."""
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", case, "--impl", impl]
    if args.quick:
        cmd.append("--quick")
    if case == "tsne60k" and args.no_second_60k:
        cmd.append("--no-second")
    record = {"impl": impl, "cache": label, "load_before": list(os.getloadavg())}
    proc = _run_timed(cmd, cache, record)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(MARK)]
    if proc.returncode != 0 or not lines:
        record["error"] = (proc.stderr or proc.stdout)[-3000:]
        print(
            f"  {case} {impl} [{label}] FAILED (rc {proc.returncode}):\n{record['error'][-1500:]}",
            file=sys.stderr,
        )
        return record
    record.update(json.loads(lines[-1][len(MARK) :]))
    if cache is not None:
        record["cache_after"] = _cache_size(cache)
    calls = ", ".join(f"{k} {v['seconds']:.2f} s" for k, v in record["calls"].items())
    print(
        f"  {case} {impl} [{label}]: import {record['import_s']:.2f} s, "
        f"prep {record['prep_s']:.2f} s, {calls}; wall {record['process_wall_s']:.1f} s",
        file=sys.stderr,
    )
    return record


def run_cli(cache: str, label: str, args) -> dict:
    """``tfclust run --dataset mnist_sample`` in a fresh process, wall to wall."""
    exe = os.path.join(os.path.dirname(sys.executable), "tfclust")
    out_root = tempfile.mkdtemp(prefix="coldstart-run-")
    out = os.path.join(out_root, "run")
    cmd = [exe, "run", "--dataset", "mnist_sample", "--out", out]
    if args.quick:
        cmd += [
            "--quick",
            "--epochs",
            "1",
            "--n-init",
            "1",
            "--tsne-samples",
            "300",
            "--tsne-max-iter",
            "250",
            "--sweep-perplexities",
            "5",
            "--sweep-samples",
            "300",
        ]
    record = {
        "impl": "tfclust run",
        "cache": label,
        "command": " ".join(cmd[1:]),
        "load_before": list(os.getloadavg()),
    }
    proc = _run_timed(cmd, cache, record)
    record["cache_after"] = _cache_size(cache)
    try:
        with open(os.path.join(out, "metrics.json")) as f:
            metrics = json.load(f)
    except (OSError, ValueError) as err:
        metrics = {}
        record["error"] = f"no metrics.json ({err}); stderr: {proc.stderr[-3000:]}"
    if proc.returncode != 0:
        record["error"] = proc.stderr[-3000:]
    stages = {name: s.get("seconds") for name, s in metrics.get("stages", {}).items()}
    record["stages_s"] = stages
    record["outside_stages_s"] = record["process_wall_s"] - sum(v or 0 for v in stages.values())
    record["data_source"] = metrics.get("data", {}).get("source")
    record["kmeans_inertia"] = metrics.get("kmeans", {}).get("inertia")
    record["tsne_kl_divergence"] = metrics.get("tsne", {}).get("kl_divergence")
    record["autoencoder_final_loss"] = (
        metrics.get("autoencoder", {}).get("loss_per_epoch", [None]) or [None]
    )[-1]
    shutil.rmtree(out_root, ignore_errors=True)
    print(
        f"  run [{label}]: wall {record['process_wall_s']:.1f} s, stages "
        + ", ".join(f"{k} {v:.1f}" for k, v in stages.items() if v is not None)
        + (" FAILED" if "error" in record else ""),
        file=sys.stderr,
    )
    return record


def ensure_latents(epochs: int) -> float | None:
    """Train and cache ``common.latents(epochs=epochs)`` in a subprocess if missing."""
    if os.path.exists(latents_path(epochs)):
        return None
    print(f"[coldstart] preparing the {epochs}-epoch latents (not timed)...", file=sys.stderr)
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, os.path.abspath(__file__), "--prepare-latents", str(epochs)],
        env=_env("off"),
        check=True,
        cwd=ROOT,
    )
    return time.perf_counter() - start


def run_case(case: str, args) -> dict:
    spec = CASES[case]
    print(f"[coldstart] case {spec['number']} {case}: {spec['title']}", file=sys.stderr)
    record = {"title": spec["title"], "peer": spec["peer"], "processes": []}
    if spec["kind"] != "run" and not args.quick:
        prep = ensure_latents(spec.get("epochs", 20))
        if prep is not None:
            record["latents_prepared_s"] = prep
    record["load_before"] = list(os.getloadavg())
    record["date"] = datetime.datetime.now().isoformat(timespec="seconds")
    start = time.perf_counter()
    for _ in range(args.repeat):
        if spec["kind"] != "run":
            record["processes"].append(run_worker(case, "peer", None, "none", args))
        cache = tempfile.mkdtemp(prefix="tfclust-cache-")
        for label in ("empty", "warm"):
            if spec["kind"] == "run":
                rec = run_cli(cache, label, args)
            else:
                rec = run_worker(case, "tfclust", cache, label, args)
            record["processes"].append(rec)
        shutil.rmtree(cache, ignore_errors=True)
    record["wall_s"] = time.perf_counter() - start
    record["load_after"] = list(os.getloadavg())
    return record


def _median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def _call(proc: dict, label: str, field: str = "seconds"):
    return proc.get("calls", {}).get(label, {}).get(field)


def _ratio(a, b):
    # scikit-learn reports KL = float max when the fit ends inside early exaggeration (--quick).
    if a is None or not b or max(abs(a), abs(b)) > 1e300:
        return None
    return a / b


def summarise(case: str, record: dict) -> list[dict]:
    """The table rows of one case (``tsne5k`` gives two: 5,000 and the new N)."""
    procs = record["processes"]
    spec = CASES[case]
    if spec["kind"] == "run":
        empty = _median(
            p["process_wall_s"] for p in procs if p["cache"] == "empty" and p.get("returncode") == 0
        )
        warm = _median(
            p["process_wall_s"] for p in procs if p["cache"] == "warm" and p.get("returncode") == 0
        )
        return [
            {
                "row": case,
                "n": 5000,
                "peer": "(none: goal in seconds)",
                "empty_s": empty,
                "cache_s": warm,
            }
        ]
    peer = [p for p in procs if p["impl"] == "peer"]
    tf_all = [p for p in procs if p["impl"] == "tfclust"]
    tf_empty = [p for p in tf_all if p["cache"] == "empty"]
    tf_warm = [p for p in tf_all if p["cache"] == "warm"]
    qkey = "inertia" if spec["kind"] in ("kmeans", "minibatch") else "kl_divergence"

    def row(label: str, second: bool) -> dict:
        out = {
            "row": case if label == "first" else f"{case}_newn",
            "n": _median(_call(p, label, "n") for p in procs),
            "peer": spec["peer"],
            "import_tf_s": _median(p.get("import_s") for p in tf_all),
            "import_peer_s": _median(p.get("import_s") for p in peer),
            "peer_first_s": _median(_call(p, label) for p in peer),
            "empty_s": _median(_call(p, label) for p in tf_empty),
            "cache_s": _median(_call(p, label) for p in tf_warm),
        }
        out["empty_ratio"] = _ratio(out["empty_s"], out["peer_first_s"])
        out["cache_ratio"] = _ratio(out["cache_s"], out["peer_first_s"])
        if second:
            out["peer_warm_s"] = _median(_call(p, "second") for p in peer)
            out["warm_s"] = _median(_call(p, "second") for p in tf_all)
            out["warm_ratio"] = _ratio(out["warm_s"], out["peer_warm_s"])
        out["quality_ratio"] = _ratio(
            _median(_call(p, label, qkey) for p in tf_all),
            _median(_call(p, label, qkey) for p in peer),
        )
        return out

    rows = [row("first", True)]
    if "new_n" in spec:
        rows.append(row("new_n", False))
    return rows


def judge(rows: list[dict]) -> list[dict]:
    """Evaluate GOALS on the rows; fills each row's "goal" text; returns the goal records."""
    by_id = {r["row"]: r for r in rows}
    results = []
    for row_id, text, column, threshold in GOALS:
        row = by_id.get(row_id)
        if row is None:
            continue
        value = row.get(column)
        met = None if value is None else value <= threshold
        verdict = "n/a" if met is None else ("met" if met else "MISSED")
        unit = " s" if column.endswith("_s") else "x"
        results.append(
            {
                "row": row_id,
                "goal": text,
                "column": column,
                "threshold": threshold,
                "value": value,
                "met": met,
            }
        )
        note = f"{SHORT[column]} <= {threshold:g}{unit}: {verdict}"
        row["goal"] = f"{row['goal']}; {note}" if row.get("goal") else note
    for row in rows:
        row.setdefault("goal", "-")
    return results


def _fmt(value) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"
    return str(value)


def markdown(rows: list[dict], columns: list[str]) -> str:
    cells = [[_fmt(r.get(c)) for c in columns] for r in rows]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]

    def line(values):
        return "| " + " | ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)) + " |"

    out = [line(columns), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    return "\n".join(out + [line(r) for r in cells])


TABLE_COLUMNS = [
    "row",
    "n",
    "peer",
    "import_tf_s",
    "import_peer_s",
    "peer_first_s",
    "empty_s",
    "empty_ratio",
    "cache_s",
    "cache_ratio",
    "peer_warm_s",
    "warm_s",
    "warm_ratio",
    "quality_ratio",
    "goal",
]


def raw_lines(cases: dict) -> list[str]:
    lines = []
    for case, record in cases.items():
        for p in record["processes"]:
            head = f"{case:<13} {p['impl']:<11} cache={p['cache']:<5}"
            load = (
                f"load {p['load_before'][0]:.2f}->{p['load_after'][0]:.2f}"
                if "load_before" in p
                else ""
            )
            if "error" in p:
                lines.append(f"{head} FAILED rc={p.get('returncode')} {load}")
                continue
            if p["impl"] == "tfclust run":
                stages = " ".join(f"{k}={v:.1f}" for k, v in p["stages_s"].items() if v is not None)
                lines.append(
                    f"{head} wall={p['process_wall_s']:.1f}s outside_stages="
                    f"{p['outside_stages_s']:.1f}s stages[{stages}] "
                    f"inertia={_fmt(p.get('kmeans_inertia'))} "
                    f"KL={_fmt(p.get('tsne_kl_divergence'))} {load}"
                )
                continue
            calls = " ".join(
                f"{k}(n={c['n']})={c['seconds']:.2f}s"
                + (f"[inertia={c['inertia']:.6g}]" if "inertia" in c else "")
                + (f"[KL={c['kl_divergence']:.4f}]" if "kl_divergence" in c else "")
                for k, c in p["calls"].items()
            )
            cache = p.get("cache_after")
            cache_txt = f" cache_files={cache['files']}" if cache else ""
            rss = f" peak_rss={p['peak_rss_mb']:.0f}MB" if p.get("peak_rss_mb") else ""
            lines.append(
                f"{head} import={p['import_s']:.2f}s prep={p['prep_s']:.2f}s {calls} "
                f"wall={p['process_wall_s']:.1f}s{rss}{cache_txt} {load}"
            )
            for note in [n for n in p.get("stderr_notable", []) if _is_notable(n)][:5]:
                lines.append(f"    stderr: {note[:200]}")
    return lines


def render_doc(data: dict) -> str:
    notes, machine = data["notes"], data["machine"]
    rows = data["rows"]
    goals = notes.get("goals", [])
    cases = notes.get("cases", {})
    lines = [
        "# Cold start: the first call in a fresh process",
        "",
        "Generated by `benchmarks/bench_coldstart.py` from `benchmarks/results/"
        f"{os.path.basename(notes.get('json_path', NAME + '.json'))}`; do not edit by hand.",
        "",
        "What a new user feels: every number below comes from a **fresh Python process** that "
        "imports the library, loads the data and calls the estimator; the *first* call includes "
        "tfclust's XLA compilation. tfclust runs twice per case, each in a fresh process: with "
        "an **empty** persistent compilation cache (`TFCLUST_CACHE_DIR` = a new temporary "
        "folder), then with that cache **warm** (the same folder, a new process). The peer "
        "(scikit-learn or openTSNE) runs in its own fresh process. *Warm* is the second call of "
        "the same shape in the same process. Ratios are tfclust / peer from the same run.",
        "",
        "Command(s): " + "; ".join(f"`{c}`" for c in notes.get("commands", [])) + "; repeats "
        f"per process kind: {notes.get('repeat', 1)}; data: {notes.get('data', '')}; wall time "
        f"of the cases (sum): {notes.get('wall_s', 0):.0f} s.",
        "",
        "Cases:",
        "",
    ]
    for case, spec in CASES.items():
        if case in cases:
            peer = f" (peer: {spec['peer']})" if spec["peer"] else ""
            lines.append(f"{spec['number']}. `{case}`: {spec['title']}{peer}")
    lines += [
        "",
        "`tsne5k_newn`: in the same processes as `tsne5k`, the first 4,000 latents fitted right "
        "after the 5,000 (a new N), against scikit-learn at 4,000 in its process. Quality ratio: "
        "inertia (recomputed in float64) for K-means, each library's own KL divergence for "
        "t-SNE (computed differently by each library, so only indicative).",
        "",
        "## Results",
        "",
        markdown(rows, TABLE_COLUMNS),
        "",
        "Columns: " + "; ".join(f"`{k}` {v}" for k, v in COLUMNS.items()) + ".",
        "",
        "## Goals",
        "",
    ]
    goal_rows = [
        {
            "goal": g["goal"],
            "measured": g["value"],
            "verdict": "n/a" if g["met"] is None else ("met" if g["met"] else "MISSED"),
        }
        for g in goals
    ]
    lines += [markdown(goal_rows, ["goal", "measured", "verdict"]) if goal_rows else "(none)", ""]
    runs = [p for p in cases.get("run", {}).get("processes", []) if p.get("stages_s")]
    if runs:
        stage_names = list(dict.fromkeys(k for p in runs for k in p["stages_s"]))
        stage_rows = [
            {
                "cache": p["cache"],
                "wall_s": p["process_wall_s"],
                "outside_stages_s": p["outside_stages_s"],
                **p["stages_s"],
            }
            for p in runs
        ]
        lines += [
            "## `tfclust run` stages (seconds, from its metrics.json)",
            "",
            markdown(stage_rows, ["cache", "wall_s", "outside_stages_s", *stage_names]),
            "",
            f"Command: `tfclust {runs[0].get('command', '')}`; data source: "
            f"{runs[0].get('data_source')}.",
            "",
        ]
    lines += [
        "## Raw per-process lines",
        "",
        "```text",
        *raw_lines(cases),
        "```",
        "",
        "## Machine",
        "",
    ]
    lines += [f"- {k}: {v}" for k, v in machine.items()]
    lines += [
        f"- load average at start / end: {notes.get('loadavg_start')} / {notes.get('loadavg_end')}",
        "",
    ]
    found = observations(cases)
    if found:
        lines += ["## Observations (computed from the raw data)", "", *[f"- {o}" for o in found]]
        lines.append("")
    return "\n".join(lines)


def observations(cases: dict) -> list[str]:
    """Facts worth a look: the load seen, failures, warnings, warm-cache processes that still
    compiled (their cache folder grew), and peers far from their idle speed."""
    out, loads = [], []
    for case, record in cases.items():
        procs = record["processes"]
        loads += [p["load_before"][0] for p in procs if "load_before" in p]
        for p in procs:
            if "error" in p:
                out.append(
                    f"`{case}` {p['impl']} (cache {p['cache']}) failed: "
                    f"{p['error'].strip().splitlines()[-1][:200]}"
                )
            notes = [n for n in p.get("stderr_notable", []) if _is_notable(n)]
            if notes:
                out.append(
                    f"`{case}` {p['impl']} (cache {p['cache']}): {len(notes)} warning or "
                    f"error line(s) on stderr, e.g. `{notes[0][:160]}`"
                )
        sizes = {p["cache"]: p.get("cache_after") for p in procs if p.get("cache_after")}
        if (
            "empty" in sizes
            and "warm" in sizes
            and sizes["warm"]["files"] > sizes["empty"]["files"]
        ):
            out.append(
                f"`{case}`: the warm-cache process added "
                f"{sizes['warm']['files'] - sizes['empty']['files']} cache file(s) to the "
                f"{sizes['empty']['files']} of the empty-cache process (cache misses)"
            )
    if loads:
        out.append(
            f"1-minute load average before each process: {min(loads):.2f} to "
            f"{max(loads):.2f} on {os.cpu_count()} cores (other tenants' jobs); "
            "scikit-learn's OpenMP loops slow down most under load, which flatters the "
            "ratios when the load is high"
        )
    return out


def write_doc(json_path: str, doc_path: str) -> None:
    with open(json_path) as f:
        data = json.load(f)
    data["notes"]["json_path"] = json_path
    os.makedirs(os.path.dirname(doc_path), exist_ok=True)
    with open(doc_path, "w") as f:
        f.write(render_doc(data))
    print(f"wrote {doc_path}")


def select_cases(text: str, skip_60k: bool) -> list[str]:
    by_number = {str(spec["number"]): case for case, spec in CASES.items()}
    chosen = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        case = by_number.get(item, item)
        if case not in CASES:
            raise SystemExit(f"unknown case {item!r}; choose from {list(CASES)} or 1-7")
        chosen.append(case)
    if skip_60k:
        chosen = [c for c in chosen if c != "tsne60k"]
    return chosen


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--cases",
        default=",".join(CASES),
        help="comma-separated case names or numbers 1-7 (default: all)",
    )
    parser.add_argument("--skip-60k", action="store_true", help="leave out case 5 (tsne60k)")
    parser.add_argument(
        "--no-second-60k", action="store_true", help="case 5: no second (warm) fit in each process"
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="fresh processes per implementation and cache state (medians)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run on small random data; writes coldstart_quick.json",
    )
    parser.add_argument(
        "--merge", action="store_true", help="keep the cases not run from the existing results file"
    )
    parser.add_argument(
        "--doc",
        action="store_true",
        help="only regenerate docs/coldstart.md from the existing JSON",
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--impl", choices=["tfclust", "peer"], help=argparse.SUPPRESS)
    parser.add_argument("--no-second", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--prepare-latents", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        worker(args.worker, args.impl, args.quick, second=not args.no_second)
        return
    if args.prepare_latents:
        prepare_latents(args.prepare_latents)
        return

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # common.machine() imports TF
    import common

    name = NAME + ("_quick" if args.quick else "")
    json_path = os.path.join(common.RESULTS_DIR, name + ".json")
    doc_path = os.path.join(tempfile.gettempdir(), "coldstart_quick.md") if args.quick else DOC_PATH
    if args.doc:
        write_doc(json_path, doc_path)
        return

    cases = select_cases(args.cases, args.skip_60k)
    wall_start = time.perf_counter()
    load_start = list(os.getloadavg())
    records, commands = {}, []
    if args.merge and os.path.exists(json_path):
        with open(json_path) as f:
            previous = json.load(f)["notes"]
        records, commands = previous.get("cases", {}), previous.get("commands", [])
    commands.append(" ".join(["python benchmarks/bench_coldstart.py", *sys.argv[1:]]))
    for case in cases:
        records[case] = run_case(case, args)
    records = {c: records[c] for c in CASES if c in records}
    rows = [row for case, record in records.items() for row in summarise(case, record)]
    goals = judge(rows)
    wall_s = time.perf_counter() - wall_start
    cases_wall_s = sum(r.get("wall_s", 0) for r in records.values())
    table_rows = [{c: ("" if r.get(c) is None else r.get(c)) for c in TABLE_COLUMNS} for r in rows]
    print()
    common.report(
        name,
        table_rows,
        notes={
            "commands": commands,
            "date": datetime.datetime.now().isoformat(timespec="seconds"),
            "quick": args.quick,
            "repeat": args.repeat,
            "cases_run": cases,
            "data": (
                "random blobs (--quick)"
                if args.quick
                else "common.latents(): Fashion-MNIST autoencoder latents, float32 (60000, 64); "
                "case 6: common.latents(epochs=5)"
            ),
            "wall_s": cases_wall_s,
            "invocation_wall_s": wall_s,
            "loadavg_start": load_start,
            "loadavg_end": list(os.getloadavg()),
            "columns": COLUMNS,
            "goals": goals,
            "cases": records,
        },
    )
    print()
    print(
        markdown(
            [
                {
                    "goal": g["goal"],
                    "measured": g["value"],
                    "verdict": "n/a" if g["met"] is None else ("met" if g["met"] else "MISSED"),
                }
                for g in goals
            ],
            ["goal", "measured", "verdict"],
        )
    )
    print(f"\ntotal wall time {wall_s:.0f} s")
    write_doc(json_path, doc_path)


if __name__ == "__main__":
    main()
