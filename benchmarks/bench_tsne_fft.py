"""tfclust's FFT-accelerated t-SNE against scikit-learn's Barnes-Hut and openTSNE's FIt-SNE.

The headline numbers of the project. Data: Fashion-MNIST autoencoder latents
(``common.latents``, float32 (n, 64)), the first n rows, side by side in one process (runs
alternate, so load from other processes hits all alike). Sections (``--sections``):

* ``tutorial``: n = 5,000 with the tutorial's parameters (perplexity 15, learning rate 100,
  1,000 iterations, PCA init): tfclust ``TSNE()`` (method "fft", cold = first fit at this size,
  XLA compilation included; warm = the median of ``--repeat`` further fits) against
  scikit-learn's default Barnes-Hut (median of ``--repeat`` fits, alternating with tfclust's).
  Goal: >= 4x faster, KL <= 1.02 x scikit-learn's.
* ``headline``: n = 60,000, perplexity 30, 750 iterations: tfclust (cold) against openTSNE
  (FFT, ``n_jobs`` = the machine's cores), run twice: *matched* (the same optimisation as
  tfclust's defaults, docs/tsne_schedule.md: learning rate N/12 then N on openTSNE's scale =
  tfclust's "auto" N/48 then N/4 on scikit-learn's scale, momentum 0.5 then 0.8, no step
  clipping, early exaggeration 12 for 250 iterations, and tfclust's PCA initial embedding) and
  *defaults* (openTSNE's own schedule: learning rate N/12 then N, momentum 0.8, steps clipped
  at 5, its PCA init), plus scikit-learn's Barnes-Hut once for the record (``--sklearn-60k``).
  Goal (issue 19): KL <= openTSNE defaults', 10-NN label accuracy >= openTSNE's - 0.005, in
  <= 0.5x openTSNE's total time (affinities + optimisation).
* ``scaling``: tfclust's time per iteration at n = 10k, 20k, 40k, 60k (iterations 51-750,
  i.e. after the first chunk, which carries the XLA compilation), and openTSNE's (matched).
* ``memory``: peak resident memory (``VmHWM``) of whole tfclust fits in fresh subprocesses at
  n = 10k, 40k, 60k, and the same process's resident memory just before the fit (TensorFlow,
  the data), to show linear growth.

KL divergences are reported twice: as each library reports it, and computed the same way for
every embedding: ``KL(P || Q)`` with tfclust's k-NN P of the same data (perplexity as the fit)
and the exact normaliser Z (all N^2 pairs, XLA, row tiles), in nats. 10-NN label accuracy:
``tfclust.metrics.knn_accuracy``. Times are wall seconds; tfclust's phases come from its log
lines (k-NN search, P, then the descent), openTSNE's from timing ``prepare_initial`` (k-NN by
Annoy, P, init) and its two ``optimize`` calls, which is what its ``TSNE.fit`` runs.

    python benchmarks/bench_tsne_fft.py [--sections tutorial headline scaling memory]
        [--sklearn-60k] [--no-opentsne-defaults] [--repeat 3] [--merge]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from common import latents, report  # noqa: E402

from tfclust._tiling import map_row_tiles, rows_per_tile, squared_distances  # noqa: E402
from tfclust.metrics import knn_accuracy  # noqa: E402
from tfclust.tsne import TSNE, affinities, gradients, optimize  # noqa: E402

CORES = os.cpu_count() or 1
RESULT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "tsne_fft.json")
TUTORIAL = dict(perplexity=15.0, learning_rate=100.0, max_iter=1000, random_state=0)
HEADLINE = dict(perplexity=30.0, max_iter=750, random_state=0)


class _Phases(logging.Handler):
    """Collects tfclust's stage timings from its ``tfclust.tsne`` log lines."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.knn_s = self.p_s = None
        self.chunks = []  # (iterations, seconds) per chunk

    def emit(self, record):
        msg = record.getMessage()
        if m := re.search(r"Computed neighbors for \d+ samples in ([\d.]+)s", msg):
            self.knn_s = float(m.group(1))
        elif m := re.search(r"Computed joint probabilities in ([\d.]+)s", msg):
            self.p_s = float(m.group(1))
        elif m := re.search(r"\((\d+) iterations in ([\d.]+)s\)", msg):
            self.chunks.append((int(m.group(1)), float(m.group(2))))


def tfclust_fit(x, **params):
    """A tfclust fit with its phase times: (estimator, dict of seconds)."""
    logger = logging.getLogger("tfclust.tsne")
    phases = _Phases()
    logger.addHandler(phases)
    old_level = logger.level
    logger.setLevel(logging.DEBUG)
    try:
        start = time.perf_counter()
        est = TSNE(**params).fit(x)
        total = time.perf_counter() - start
    finally:
        logger.removeHandler(phases)
        logger.setLevel(old_level)
    later = phases.chunks[1:]
    return est, {
        "total_s": total,
        "knn_s": phases.knn_s,
        "affinities_s": phases.p_s,  # k-NN + P, from the start of the fit
        "optimise_s": total - phases.p_s,
        "first_chunk_s": phases.chunks[0][1],  # includes XLA compilation of the descent
        "ms_per_iter_after_first_chunk": 1e3
        * sum(s for _, s in later)
        / max(1, sum(i for i, _ in later)),
    }


def opentsne_fit(x, *, matched: bool, perplexity: float, max_iter: int, init=None):
    """openTSNE (FFT gradients, all cores), timed by phase: (embedding, own KL, dict)."""
    import openTSNE

    params = dict(
        n_components=2,
        perplexity=perplexity,
        negative_gradient_method="fft",
        n_jobs=CORES,
        random_state=0,
        early_exaggeration=12,
        early_exaggeration_iter=250,
        n_iter=max_iter - 250,
    )
    if matched:
        # learning_rate "auto": N / exaggeration per stage, as tfclust's (scale 1/4).
        params.update(initial_momentum=0.5, final_momentum=0.8, max_step_norm=None)
    tsne = openTSNE.TSNE(**params)
    start = time.perf_counter()
    if matched:
        embedding = tsne.prepare_initial(x, initialization=np.asarray(init, np.float64))
    else:
        embedding = tsne.prepare_initial(x)
    prepared = time.perf_counter()
    # As openTSNE's TSNE.fit: early exaggeration, then the normal regime.
    embedding.optimize(
        n_iter=tsne.early_exaggeration_iter,
        exaggeration=tsne.early_exaggeration,
        momentum=tsne.initial_momentum,
        inplace=True,
        propagate_exception=True,
    )
    embedding.optimize(
        n_iter=tsne.n_iter,
        exaggeration=tsne.exaggeration,
        momentum=tsne.final_momentum,
        inplace=True,
        propagate_exception=True,
    )
    end = time.perf_counter()
    return (
        np.asarray(embedding),
        float(embedding.kl_divergence),
        {
            "total_s": end - start,
            "affinities_s": prepared - start,  # k-NN (Annoy) + P + initial embedding
            "optimise_s": end - prepared,
            "ms_per_iter": 1e3 * (end - prepared) / max_iter,
        },
    )


def sklearn_fit(x, **params):
    from sklearn.manifold import TSNE as SkTSNE

    start = time.perf_counter()
    est = SkTSNE(n_components=2, **params).fit(x)
    return est, {"total_s": time.perf_counter() - start}


def exact_z(y):
    """``sum_{i != j} 1 / (1 + |y_i - y_j|^2)`` over all pairs (XLA, row tiles), float64."""
    y = tf.constant(y, tf.float32)
    n = y.shape[0]
    tile = rows_per_tile(n, 4 * n * 4, 64 * 2**20)

    @tf.function(jit_compile=True)
    def z_rows(y):
        def block(rows):
            return tf.reduce_sum(1.0 / (1.0 + squared_distances(rows, y)), axis=1) - 1.0

        return map_row_tiles(block, y, tile, tf.TensorSpec([tile], y.dtype))

    return float(np.sum(z_rows(y).numpy().astype(np.float64)))


_perplexity_search = tf.function(affinities.binary_search_perplexity, jit_compile=True)


class Scorer:
    """KL(P || Q) with tfclust's k-NN P of ``x`` and the exact Z, and 10-NN label accuracy."""

    def __init__(self, x, labels, perplexity):
        x = tf.constant(x)
        k = affinities.n_neighbors_for_perplexity(x.shape[0], perplexity)
        neighbors, sq = affinities.nearest_neighbors(x, k)
        p_cond = _perplexity_search(sq, tf.constant(perplexity, sq.dtype))
        self.operands = gradients.FFTObjective.operands(neighbors, p_cond)
        self.labels = labels

    def __call__(self, embedding):
        y = tf.constant(embedding, tf.float32)
        z = tf.constant(exact_z(embedding), tf.float32)
        kl = gradients.directed_kl_divergence(y, self.operands[0], z)
        return {
            "kl_same_way": float(kl),
            "knn_acc10": knn_accuracy(embedding, self.labels, n_neighbors=10),
        }


def _median_run(runs):
    """The run with the median total time among ``(estimator, times)`` pairs."""
    return sorted(runs, key=lambda run: run[1]["total_s"])[len(runs) // 2]


def tutorial_rows(n: int, repeat: int) -> list[dict]:
    x, labels = latents(n)
    score = Scorer(x, labels, TUTORIAL["perplexity"])
    print(f"[bench_tsne_fft] tutorial n={n}: tfclust cold...", file=sys.stderr)
    cold, cold_t = tfclust_fit(x, **TUTORIAL)
    sk_runs, warm_runs = [], []
    for i in range(repeat):
        print(
            f"[bench_tsne_fft] tutorial: scikit-learn Barnes-Hut, tfclust warm ({i + 1}/"
            f"{repeat})...",
            file=sys.stderr,
        )
        sk_runs.append(sklearn_fit(x, **TUTORIAL))
        warm_runs.append(tfclust_fit(x, **TUTORIAL))
    sk, sk_t = _median_run(sk_runs)
    warm, warm_t = _median_run(warm_runs)
    sk_t["all_total_s"] = [round(t["total_s"], 2) for _, t in sk_runs]
    warm_t["all_total_s"] = [round(t["total_s"], 2) for _, t in warm_runs]
    sk_row = {
        "n": n,
        "case": "tutorial",
        "library": "sklearn barnes_hut",
        **sk_t,
        "own_kl": float(sk.kl_divergence_),
        **score(sk.embedding_),
    }
    rows = []
    fits = (("tfclust fft (cold)", cold, cold_t), ("tfclust fft (warm)", warm, warm_t))
    for label, est, t in fits:
        row = {
            "n": n,
            "case": "tutorial",
            "library": label,
            **t,
            "own_kl": est.kl_divergence_,
            **score(est.embedding_),
        }
        row["speedup_vs_sklearn"] = sk_t["total_s"] / t["total_s"]
        row["kl_ratio_vs_sklearn"] = row["kl_same_way"] / sk_row["kl_same_way"]
        rows.append(row)
    return [*rows, sk_row]


def headline_rows(n: int, opentsne_defaults: bool, with_sklearn: bool) -> list[dict]:
    x, labels = latents(n)
    score = Scorer(x, labels, HEADLINE["perplexity"])
    print(f"[bench_tsne_fft] headline n={n}: tfclust...", file=sys.stderr)
    est, t = tfclust_fit(x, **HEADLINE)
    ours = {
        "n": n,
        "case": "headline",
        "library": "tfclust fft (cold)",
        **t,
        "own_kl": est.kl_divergence_,
        **score(est.embedding_),
    }
    print("[bench_tsne_fft] headline: openTSNE matched...", file=sys.stderr)
    emb, kl, t = opentsne_matched(x)
    rows = [
        ours,
        {
            "n": n,
            "case": "headline",
            "library": "openTSNE matched",
            **t,
            "own_kl": kl,
            **score(emb),
        },
    ]
    if opentsne_defaults:
        print("[bench_tsne_fft] headline: openTSNE defaults...", file=sys.stderr)
        emb, kl, t = opentsne_fit(
            x, matched=False, perplexity=HEADLINE["perplexity"], max_iter=HEADLINE["max_iter"]
        )
        rows.append(
            {
                "n": n,
                "case": "headline",
                "library": "openTSNE defaults",
                **t,
                "own_kl": kl,
                **score(emb),
            }
        )
    if with_sklearn:
        print("[bench_tsne_fft] headline: scikit-learn Barnes-Hut (slow)...", file=sys.stderr)
        sk, t = sklearn_fit(x, **HEADLINE)
        rows.append(
            {
                "n": n,
                "case": "headline",
                "library": "sklearn barnes_hut",
                **t,
                "own_kl": float(sk.kl_divergence_),
                **score(sk.embedding_),
            }
        )
    for row in rows[1:]:
        row["tfclust_time_ratio"] = ours["total_s"] / row["total_s"]
        row["tfclust_kl_ratio"] = ours["kl_same_way"] / row["kl_same_way"]
        row["tfclust_acc_minus"] = ours["knn_acc10"] - row["knn_acc10"]
    return rows


def opentsne_matched(x):
    init = optimize.pca_embedding(tf.constant(x), 2).numpy()
    return opentsne_fit(
        x, matched=True, init=init, perplexity=HEADLINE["perplexity"], max_iter=HEADLINE["max_iter"]
    )


def scaling_rows(sizes, known: list[dict]) -> list[dict]:
    """Per-iteration times; sizes already run by the headline section are taken from ``known``."""
    rows = []
    for n in sizes:
        done = {r["library"]: r for r in known if r["n"] == n}
        if "tfclust fft (cold)" in done and "openTSNE matched" in done:
            t, peer = done["tfclust fft (cold)"], done["openTSNE matched"]
        else:
            x, _ = latents(n)
            print(f"[bench_tsne_fft] scaling n={n}...", file=sys.stderr)
            _, t = tfclust_fit(x, **HEADLINE)
            _, _, peer = opentsne_matched(x)
        keys = (
            "total_s",
            "knn_s",
            "affinities_s",
            "optimise_s",
            "first_chunk_s",
            "ms_per_iter_after_first_chunk",
        )
        rows.append(
            {
                "n": n,
                "case": "scaling",
                "library": "tfclust fft vs openTSNE matched",
                **{k: t[k] for k in keys},
                "openTSNE_ms_per_iter": peer["ms_per_iter"],
                "openTSNE_affinities_s": peer["affinities_s"],
            }
        )
    for row in rows:
        row["n_ratio"] = row["n"] / rows[0]["n"]
        row["ms_per_iter_ratio"] = (
            row["ms_per_iter_after_first_chunk"] / rows[0]["ms_per_iter_after_first_chunk"]
        )
        row["openTSNE_ratio"] = row["openTSNE_ms_per_iter"] / rows[0]["openTSNE_ms_per_iter"]
    return rows


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def memory_child(n: int) -> None:
    """Runs in a fresh process: one fit, then prints its memory figures as JSON."""
    x, _ = latents(n)
    tf.constant(x)  # TensorFlow's runtime up before the baseline
    before = _status_kb("VmRSS")
    start = time.perf_counter()
    TSNE(**HEADLINE).fit(x)
    print(
        json.dumps(
            {
                "n": n,
                "rss_before_fit_mb": before / 1024,
                "peak_rss_mb": _status_kb("VmHWM") / 1024,
                "fit_s": time.perf_counter() - start,
            }
        )
    )


def memory_rows(sizes) -> list[dict]:
    rows = []
    for n in sizes:
        print(f"[bench_tsne_fft] memory n={n} (subprocess)...", file=sys.stderr)
        out = subprocess.run(
            [sys.executable, __file__, "--memory-child", str(n)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        row = json.loads(out.strip().splitlines()[-1])
        row.update(
            case="memory",
            library="tfclust fft",
            fit_peak_mb=row["peak_rss_mb"] - row["rss_before_fit_mb"],
        )
        rows.append(row)
    for row in rows:
        row["fit_peak_ratio"] = row["fit_peak_mb"] / rows[0]["fit_peak_mb"]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sections", nargs="*", default=["tutorial", "headline", "scaling", "memory"]
    )
    parser.add_argument("--tutorial-size", type=int, default=5000)
    parser.add_argument("--headline-size", type=int, default=60000)
    parser.add_argument(
        "--scaling-sizes", type=int, nargs="*", default=[10000, 20000, 40000, 60000]
    )
    parser.add_argument("--memory-sizes", type=int, nargs="*", default=[10000, 40000, 60000])
    parser.add_argument(
        "--sklearn-60k",
        action="store_true",
        help="also run scikit-learn's Barnes-Hut at the headline size (slow)",
    )
    parser.add_argument("--no-opentsne-defaults", action="store_true")
    parser.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="tutorial: scikit-learn and warm tfclust fits (medians reported)",
    )
    parser.add_argument(
        "--merge",
        action="store_true",
        help="keep the rows of sections not run from the existing results file",
    )
    parser.add_argument("--memory-child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        memory_child(args.memory_child)
        return

    rows = []
    sections = {
        "tutorial": lambda: tutorial_rows(args.tutorial_size, args.repeat),
        "headline": lambda: headline_rows(
            args.headline_size, not args.no_opentsne_defaults, args.sklearn_60k
        ),
        "scaling": lambda: scaling_rows(args.scaling_sizes, rows),
        "memory": lambda: memory_rows(args.memory_sizes),
    }
    for name in sections:
        if name in args.sections:
            load = os.getloadavg()
            rows += [{**row, "load_avg_1_5_15": load} for row in sections[name]()]
    if args.merge and os.path.exists(RESULT):
        with open(RESULT) as f:
            kept = [r for r in json.load(f)["rows"] if r["case"] not in args.sections]
        rows = kept + rows
    report(
        "tsne_fft",
        rows,
        notes={
            "data": "Fashion-MNIST autoencoder latents (common.latents), first n rows, float32",
            "cores": CORES,
            "load": "load_avg_1_5_15 per row: the machine's load averages when its section "
            "started (2 cores, shared with other benchmark runs)",
            "tutorial": {
                **TUTORIAL,
                "init": "pca",
                "goal": ">= 4x faster than sklearn BH, kl_same_way <= 1.02 x sklearn's",
            },
            "headline": {
                **HEADLINE,
                "goal": "vs openTSNE defaults: kl_same_way <= its, knn_acc10 >= its - 0.005, "
                "total_s <= 0.5 x its",
            },
            "fairness": "openTSNE matched: learning_rate auto, N/12 then N (its scale; = "
            "tfclust's fft auto N/48 then N/4 on sklearn's scale), momentum 0.5/0.8, "
            "max_step_norm None, early exaggeration 12 x 250, tfclust's PCA init; "
            "openTSNE keeps its gains across the two stages (sklearn and tfclust reset "
            "them); openTSNE's k-NN is Annoy (approximate, 90 neighbours), tfclust's exact (91)",
            "kl_same_way": "KL(P||Q) with tfclust's k-NN P and the exact Z (all pairs), nats",
            "own_kl": "each library's own estimate (tfclust: exact given the FFT Z, at the "
            "start of the last iteration; openTSNE: its FFT estimate; sklearn: BH)",
            "timing": "wall seconds; tfclust cold = first fit at that size (XLA compilation "
            "included); ms_per_iter_after_first_chunk excludes the first 50 "
            "iterations (compilation); openTSNE ms_per_iter = optimise_s / max_iter",
            "memory": "VmHWM of a fresh process per n; fit_peak_mb = peak minus resident "
            "memory just before the fit",
        },
    )


if __name__ == "__main__":
    main()
