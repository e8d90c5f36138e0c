"""`TSNE.transform` (new points placed on a fixed map) against openTSNE's transform.

Data: Fashion-MNIST autoencoder latents (``common.latents()``, the 60,000 training images,
float32 (n, 64)), shuffled by a fixed permutation (``numpy.random.default_rng(0)``). For each
reference size n (5,000 and 50,000): the reference points are the first n rows of the
permutation, the held-out points rows 50,000-50,999 of it (the same 1,000 for every n, in none
of the maps).

Per size, in this process: tfclust ``TSNE(perplexity=30, random_state=0)`` and openTSNE
``TSNE(perplexity=30, n_jobs=2, random_state=0)`` fit the reference (times recorded: tfclust's
includes compiling programs for that size); each library's ``transform`` (its defaults:
perplexity 5, 250 iterations, learning rate 0.1, exaggeration 1.5, momentum 0.8, gradients
clipped at 0.25) places the held-out points on its own map. Quality: the held-out points' 10-NN
label accuracy against the reference points' labels on that map (``scipy.spatial.cKDTree``,
majority vote, ties to the smaller label). Baselines: the same points embedded *jointly*
(tfclust fit on reference + held-out together; the held-out rows' 10-NN among the reference
rows only), the same for openTSNE (``--opentsne-joint``, default at both sizes), and the 10-NN
vote in the 64-D latent space. Goals: tfclust's accuracy within 0.02 of its joint embedding and
no worse than openTSNE's transform.

Timing of ``transform`` (wall seconds): *in-process first* = the first call in this process at
that map size (tfclust compiles its programs for the new sizes); *warm* = the median of 3 more
calls, alternating between the libraries; *first call, fresh process* = a new Python process
(this script with ``--worker``) that loads the fitted map (tfclust: ``load_estimator`` of the
``save_estimator`` ``.npz``; openTSNE: a pickle of its ``TSNEEmbedding``) and the held-out
points, untimed, then times its first ``transform``. tfclust's worker runs twice: with an
EMPTY persistent compilation cache (``TFCLUST_CACHE_DIR`` = a new temporary folder, as
``bench_coldstart.py``) and again with that cache warm. Ratios are tfclust / openTSNE from the
same run. Goal: at n = 50,000, tfclust <= 0.5x openTSNE's time.

Also draws ``docs/transform/fashion_new_points.png`` (the 5,000 map, the held-out points
placed by tfclust on top) and writes ``benchmarks/results/tsne_transform.json``.

    python benchmarks/bench_tsne_transform.py [--sizes 5000 50000] [--repeat 3]
        [--no-opentsne-joint 50000] [--no-figure]
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

# Only the standard library and numpy at the top: a worker process imports its library itself.
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

MARK = "TRANSFORM_RESULT "
N_HELD, HELD_START, SEED, PERPLEXITY, K = 1000, 50_000, 0, 30.0, 10
FIGURE = os.path.join(ROOT, "docs", "transform", "fashion_new_points.png")


# --------------------------------------------------------------------------- worker side


def worker(impl: str, model_path: str, x_path: str, out_path: str) -> None:
    """Runs in a fresh process: import and load (not timed), then the first transform (timed),
    and a second one; prints one JSON line on stdout and saves the first call's result."""
    start = time.perf_counter()
    if impl == "tfclust":
        import tfclust

        est = tfclust.load_estimator(model_path)
        transform = est.transform
    else:
        import openTSNE  # noqa: F401  (the classes the pickle names)

        with open(model_path, "rb") as f:
            embedding = pickle.load(f)

        def transform(x):
            return np.asarray(embedding.transform(x))

    x = np.load(x_path)
    load_s = time.perf_counter() - start
    start = time.perf_counter()
    y = transform(x)
    first_s = time.perf_counter() - start
    start = time.perf_counter()
    transform(x)
    second_s = time.perf_counter() - start
    np.save(out_path, np.asarray(y))
    print(
        MARK
        + json.dumps(
            {"impl": impl, "import_and_load_s": load_s, "first_s": first_s, "second_s": second_s}
        ),
        flush=True,
    )


def run_worker(impl: str, model_path: str, x_path: str, cache: str | None) -> dict:
    out_path = tempfile.mktemp(suffix=".npy", prefix="transform-out-")
    env = dict(os.environ)
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    env.pop("TFCLUST_CACHE_DIR", None)
    if cache is not None:
        env["TFCLUST_CACHE_DIR"] = cache
    cmd = [
        sys.executable,
        os.path.abspath(__file__),
        "--worker",
        impl,
        model_path,
        x_path,
        out_path,
    ]
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - start
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(MARK)]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"worker {impl} failed (rc {proc.returncode}):\n{proc.stderr[-3000:]}")
    record = json.loads(lines[-1][len(MARK) :])
    record["process_wall_s"] = wall
    record["result"] = np.load(out_path)
    os.remove(out_path)
    print(
        f"  worker {impl} [cache {cache and os.path.basename(cache)}]: first "
        f"{record['first_s']:.2f} s, second {record['second_s']:.2f} s, wall {wall:.1f} s",
        file=sys.stderr,
    )
    return record


# --------------------------------------------------------------------------- parent side


def knn_vote_accuracy(ref_map, ref_labels, new_map, new_labels, k: int = K) -> float:
    """Accuracy of the majority label of each new point's k nearest reference points (exact,
    euclidean; ties go to the smaller label)."""
    from scipy.spatial import cKDTree

    _, idx = cKDTree(np.asarray(ref_map, np.float64)).query(np.asarray(new_map, np.float64), k=k)
    votes = ref_labels[idx]
    n_classes = int(ref_labels.max()) + 1
    predicted = np.array([np.bincount(v, minlength=n_classes).argmax() for v in votes])
    return float(np.mean(predicted == new_labels))


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def split(n: int):
    from common import latents

    z, labels = latents()
    perm = np.random.default_rng(SEED).permutation(len(z))
    ref, held = perm[:n], perm[HELD_START : HELD_START + N_HELD]
    assert n <= HELD_START
    return z[ref], labels[ref], z[held], labels[held]


def run_size(n: int, repeat: int, opentsne_joint: bool, figure: bool, tmp: str) -> dict:
    import openTSNE

    from tfclust import TSNE, persistence, plots

    x, y, x_new, y_new = split(n)
    print(f"[bench_tsne_transform] n={n}: fits...", file=sys.stderr)
    tf_fit_s, ours = timed(lambda: TSNE(perplexity=PERPLEXITY, random_state=0).fit(x))
    ot_fit_s, theirs = timed(
        lambda: openTSNE.TSNE(perplexity=PERPLEXITY, n_jobs=2, random_state=0).fit(x)
    )
    print(f"  fits: tfclust {tf_fit_s:.1f} s, openTSNE {ot_fit_s:.1f} s", file=sys.stderr)

    def ot_transform():
        return np.asarray(theirs.transform(x_new))

    # In-process: a first call each, then `repeat` more, alternating.
    tf_first_s, tf_new = timed(lambda: ours.transform(x_new))
    ot_first_s, ot_new = timed(ot_transform)
    tf_warm, ot_warm = [], []
    for _ in range(repeat):
        tf_warm.append(timed(lambda: ours.transform(x_new))[0])
        ot_warm.append(timed(ot_transform)[0])
    print(
        f"  transform in process: tfclust first {tf_first_s:.2f} s, warm {tf_warm}; "
        f"openTSNE first {ot_first_s:.2f} s, warm {ot_warm}",
        file=sys.stderr,
    )
    tf_repeat_same = float(np.max(np.abs(ours.transform(x_new) - tf_new)))

    # Fresh processes.
    x_path = os.path.join(tmp, f"heldout_{n}.npy")
    np.save(x_path, x_new)
    tf_path = persistence.save_estimator(ours, os.path.join(tmp, f"tsne_{n}.npz"))
    ot_path = os.path.join(tmp, f"opentsne_{n}.pkl")
    with open(ot_path, "wb") as f:
        pickle.dump(theirs, f)
    print(f"[bench_tsne_transform] n={n}: fresh processes...", file=sys.stderr)
    ot_proc = run_worker("openTSNE", ot_path, x_path, None)
    cache = tempfile.mkdtemp(prefix="tfclust-cache-")
    try:
        tf_empty = run_worker("tfclust", tf_path, x_path, cache)
        tf_cached = run_worker("tfclust", tf_path, x_path, cache)
    finally:
        shutil.rmtree(cache, ignore_errors=True)

    # Quality.
    print(f"[bench_tsne_transform] n={n}: joint embeddings...", file=sys.stderr)
    joint_x = np.concatenate([x, x_new])
    tf_joint_s, joint = timed(
        lambda: TSNE(perplexity=PERPLEXITY, random_state=0).fit(joint_x).embedding_
    )
    acc = {
        "tfclust_acc": knn_vote_accuracy(ours.embedding_, y, tf_new, y_new),
        "openTSNE_acc": knn_vote_accuracy(np.asarray(theirs), y, ot_new, y_new),
        "tfclust_joint_acc": knn_vote_accuracy(joint[:n], y, joint[n:], y_new),
        "latent_acc": knn_vote_accuracy(x, y, x_new, y_new),
        "tfclust_fresh_process_acc": knn_vote_accuracy(
            ours.embedding_, y, tf_empty["result"], y_new
        ),
    }
    ot_joint_s = None
    if opentsne_joint:
        ot_joint_s, ot_joint = timed(
            lambda: np.asarray(
                openTSNE.TSNE(perplexity=PERPLEXITY, n_jobs=2, random_state=0).fit(joint_x)
            )
        )
        acc["openTSNE_joint_acc"] = knn_vote_accuracy(ot_joint[:n], y, ot_joint[n:], y_new)

    # openTSNE's transform onto tfclust's own map: placement alone, the map held the same.
    same_map = openTSNE.TSNEEmbedding(
        ours.embedding_,
        openTSNE.affinity.PerplexityBasedNN(x, perplexity=PERPLEXITY, n_jobs=2, random_state=0),
        random_state=0,
    )
    placed = np.asarray(same_map.transform(x_new))  # openTSNE centres the map it transforms on
    acc["openTSNE_on_tfclust_map_acc"] = knn_vote_accuracy(np.asarray(same_map), y, placed, y_new)
    print(f"  accuracies: {acc}", file=sys.stderr)

    if figure:
        from common import FASHION_MNIST_CLASSES

        fig = plots.placed_points(
            ours.embedding_,
            tf_new,
            y_new,
            n_classes=10,
            title=f"Fashion-MNIST: {N_HELD:,} new points on a {n:,}-point map",
            class_names=list(FASHION_MNIST_CLASSES),
        )
        plots.save_figure(fig, FIGURE)
        print(f"  wrote {FIGURE}", file=sys.stderr)

    tf_warm_s, ot_warm_s = statistics.median(tf_warm), statistics.median(ot_warm)
    row = {
        "n_reference": n,
        "n_new": N_HELD,
        **acc,
        "acc_minus_joint": acc["tfclust_acc"] - acc["tfclust_joint_acc"],
        "acc_minus_openTSNE": acc["tfclust_acc"] - acc["openTSNE_acc"],
        "tfclust_fit_s": tf_fit_s,
        "openTSNE_fit_s": ot_fit_s,
        "tfclust_joint_fit_s": tf_joint_s,
        "openTSNE_joint_fit_s": ot_joint_s,
        "tfclust_inprocess_first_s": tf_first_s,
        "openTSNE_inprocess_first_s": ot_first_s,
        "tfclust_warm_s": tf_warm_s,
        "openTSNE_warm_s": ot_warm_s,
        "warm_ratio": tf_warm_s / ot_warm_s,
        "tfclust_warm_all_s": tf_warm,
        "openTSNE_warm_all_s": ot_warm,
        "openTSNE_fresh_first_s": ot_proc["first_s"],
        "tfclust_fresh_empty_cache_s": tf_empty["first_s"],
        "tfclust_fresh_warm_cache_s": tf_cached["first_s"],
        "fresh_empty_cache_ratio": tf_empty["first_s"] / ot_proc["first_s"],
        "fresh_warm_cache_ratio": tf_cached["first_s"] / ot_proc["first_s"],
        "openTSNE_fresh_second_s": ot_proc["second_s"],
        "tfclust_fresh_second_s": [tf_empty["second_s"], tf_cached["second_s"]],
        "import_and_load_s": {
            "openTSNE": ot_proc["import_and_load_s"],
            "tfclust_empty": tf_empty["import_and_load_s"],
            "tfclust_cached": tf_cached["import_and_load_s"],
        },
        "tfclust_same_result": {
            "repeat_in_process_max_abs": tf_repeat_same,
            "fresh_process_max_abs": float(np.max(np.abs(tf_empty["result"] - tf_new))),
            "cached_process_max_abs": float(np.max(np.abs(tf_cached["result"] - tf_new))),
        },
    }
    row["quality_goal_met"] = row["acc_minus_joint"] >= -0.02 and row["acc_minus_openTSNE"] >= 0
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[5000, 50000])
    parser.add_argument("--repeat", type=int, default=3, help="warm transform calls (median)")
    parser.add_argument(
        "--no-opentsne-joint",
        type=int,
        nargs="*",
        default=[],
        help="sizes at which openTSNE's joint embedding is skipped",
    )
    parser.add_argument("--no-figure", action="store_true")
    parser.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(*args.worker)
        return

    from common import report

    import tfclust  # noqa: F401  (sets up the compilation cache before TensorFlow runs)

    start = time.perf_counter()
    load_start = list(os.getloadavg())
    tmp = tempfile.mkdtemp(prefix="bench-transform-")
    rows = []
    try:
        for n in args.sizes:
            load = list(os.getloadavg())
            row = run_size(
                n,
                args.repeat,
                opentsne_joint=n not in args.no_opentsne_joint,
                figure=not args.no_figure and n == min(args.sizes),
                tmp=tmp,
            )
            rows.append({**row, "load_avg_1_5_15": load})
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    report(
        "tsne_transform",
        rows,
        notes={
            "data": "Fashion-MNIST autoencoder latents (common.latents(): 60,000 x 64, e20, "
            f"seed 0), permuted with default_rng({SEED}); reference = the first n rows, "
            f"held-out = rows {HELD_START:,}-{HELD_START + N_HELD - 1:,} of the permutation "
            "(the same for every n)",
            "fits": f"tfclust TSNE(perplexity={PERPLEXITY:g}, random_state=0); openTSNE "
            f"TSNE(perplexity={PERPLEXITY:g}, n_jobs=2, random_state=0)",
            "transform": "each library's defaults (perplexity 5, 250 iterations, learning "
            "rate 0.1, exaggeration 1.5, momentum 0.8, max_grad_norm 0.25)",
            "accuracy": f"{K}-NN majority vote of the reference points' labels at each held-out "
            "point on the map (cKDTree, exact); joint = fit on reference + held-out together, "
            "held-out rows voted by the reference rows only; latent = the same vote in 64-D",
            "timing": "wall seconds of transform(1,000 points); in-process first = first call "
            f"at that map size in the benchmark process; warm = median of {args.repeat} more "
            "calls, alternating libraries; fresh = first call in a new process after loading "
            "the map (tfclust: load_estimator of the .npz; openTSNE: pickle), imports and "
            "loading not timed; tfclust fresh twice: empty compilation cache, then that cache "
            "warm; ratios tfclust / openTSNE",
            "goals": "tfclust_acc >= tfclust_joint_acc - 0.02 and >= openTSNE_acc; at n=50,000 "
            "transform time <= 0.5x openTSNE's",
            "runtime_s": time.perf_counter() - start,
            "loadavg_start": load_start,
            "loadavg_end": list(os.getloadavg()),
            "skipped": {"openTSNE joint at": args.no_opentsne_joint},
        },
    )


if __name__ == "__main__":
    main()
