"""Write docs/benchmarks.md from benchmarks/results/*.json: one section per benchmark.

Also the README's one headline table (between its ``<!-- headline table ... -->`` markers).

Every number on the page comes from the JSON files the benchmark scripts wrote, so the page is
regenerated, never edited by hand (``tests/test_docs.py`` checks that it is current):

    python benchmarks/report.py            # rewrite docs/benchmarks.md
    python benchmarks/report.py --check    # exit 1 if either is stale

The output depends only on the JSON files (no clock, no machine state), so it is deterministic.
Only the standard library is imported: no TensorFlow.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "benchmarks", "results")
OUT = os.path.join(ROOT, "docs", "benchmarks.md")


# ---------------------------------------------------------------------------------- formatting


def fmt(value, digits: int = 3) -> str:
    """A table cell: 3 significant figures, ints with thousands separators, blanks for None."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isnan(value):
            return "n/a"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        if value != 0 and abs(value) >= 10 ** (digits - 1):
            return f"{round(value):,}"
        text = f"{value:.{digits}g}"
        if "e" in text:  # tiny values
            return f"{value:.2e}"
        return text
    if isinstance(value, (list, tuple)):
        return ", ".join(fmt(v, digits) for v in value)
    return " ".join(str(value).split()).replace("|", "\\|")


def cell(value, spec=None) -> str:
    """``fmt`` by default; ``spec`` a format such as ".4f" for ratios close to 1."""
    if spec is None or not isinstance(value, float) or math.isnan(value):
        return fmt(value)
    return format(value, spec)


def table(rows: list[dict], columns: list[tuple]) -> list[str]:
    """Markdown table of ``rows``; ``columns`` = [(key, header[, format spec]), ...]."""
    lines = [
        "| " + " | ".join(c[1] for c in columns) + " |",
        "|" + "|".join("---" for _ in columns) + "|",
    ]
    for row in rows:
        cells = (cell(row.get(c[0]), c[2] if len(c) > 2 else None) for c in columns)
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def machine_line(data: dict) -> str:
    m = data.get("machine") or {}
    if not m:
        return ""
    gpus = m.get("gpus") or []
    parts = [
        f"{m.get('cpu_count', '?')} CPU cores",
        f"GPUs: {', '.join(map(str, gpus)) if gpus else 'none'}",
        m.get("platform", ""),
        f"Python {m.get('python', '?')}",
        f"TensorFlow {m.get('tensorflow', '?')}",
        f"NumPy {m.get('numpy', '?')}",
    ]
    line = "Machine: " + "; ".join(p for p in parts if p) + "."
    if m.get("date"):
        line += f" Run: {m['date']}."
    return line


def load(name: str) -> dict | None:
    path = os.path.join(RESULTS, f"{name}.json")
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def loadavg(values) -> str:
    return " / ".join(f"{v:.2f}" for v in values) if values else ""


# ------------------------------------------------------------------------------------ sections


def section_autoencoder(d: dict) -> list[str]:
    n = d["notes"]
    rows = d["rows"]
    last = rows[-1]
    out = [
        "## Autoencoder",
        "",
        "`benchmarks/bench_autoencoder.py`: the tutorial's Sequential model fed numpy arrays "
        "against tfclust's Functional model fed by `autoencoder_pipeline` (and tfclust against "
        "a baseline checkout of itself), same data, seed and "
        f"batch size, {n.get('epochs')} epochs, trained in alternation one epoch each so that "
        f"load from other processes hits all alike. Data: {n.get('dataset')}; seed "
        f"{n.get('seed')}.",
        "",
        machine_line(d),
        "",
        f"Final MSE {fmt(last['tutorial_loss'])} (tutorial) vs {fmt(last['tfclust_loss'])} "
        f"(tfclust), ratio {n['final_loss_ratio']:.3f}; median seconds-per-epoch ratio "
        f"{n['median_time_ratio_after_first_epoch']:.2f} (tfclust / tutorial, after the first "
        f"epoch), total time ratio {n['total_time_ratio']:.2f}. Goals: {n.get('goals')}.",
        "",
    ]
    if "baseline" in n:
        out += [
            f"Baseline: {n['baseline']}. tfclust (steps_per_execution "
            f"{n['steps_per_execution']}) / baseline: final MSE ratio "
            f"{n['final_vs_baseline_loss_ratio']:.4f}, median seconds-per-epoch ratio after the "
            f"first epoch {n['median_vs_baseline_time_ratio_after_first_epoch']:.2f}, first epoch "
            f"(compilation included) {n['first_epoch_vs_baseline_time_ratio']:.2f}; median 1-min "
            f"load {n['median_load_1min']:.1f}. Median seconds per warm epoch: "
            + ", ".join(f"{k} {v:.1f}" for k, v in n["median_seconds_after_first_epoch"].items())
            + " (`spe_N`: tfclust at steps_per_execution N).",
            "",
        ]
    out += [
        "Epoch 1 is each model's first call in the process (tracing and compilation "
        "included); the later epochs are warm.",
        "",
    ]
    out += table(
        rows,
        [
            ("epoch", "epoch"),
            ("tutorial_loss", "tutorial MSE"),
            ("tfclust_loss", "tfclust MSE"),
            ("loss_ratio", "loss ratio", ".4f"),
            ("tutorial_s", "tutorial s"),
            ("tfclust_s", "tfclust s"),
            ("time_ratio", "time ratio"),
            ("baseline_s", "baseline s"),
            ("vs_baseline_time_ratio", "time / baseline"),
            ("vs_baseline_loss_ratio", "MSE / baseline", ".4f"),
            ("load_1min", "load"),
        ],
    )
    return out


KMEANS_CASES = {
    "a": "(a) the tutorial",
    "b": "(b)",
    "c": "(c) latents tiled plus noise",
}


def section_kmeans(d: dict) -> list[str]:
    n = d["notes"]
    rows = [dict(r) for r in d["rows"]]
    for r in rows:
        r["case_label"] = (
            f"{KMEANS_CASES.get(r['case'], r['case'])}: {r['n']:,} x 64, k={r['k']}, "
            f"n_init={r['n_init']}"
        )
    out = [
        "## K-means",
        "",
        "`benchmarks/bench_kmeans.py"
        + (" --minibatch" if n.get("minibatch") else "")
        + "`: tfclust.KMeans against scikit-learn's KMeans and faiss on Fashion-MNIST "
        "autoencoder latents, every implementation in one process, taking turns. *First call* "
        "is the first fit of a case in that process (tfclust's XLA compilation included); "
        f"*warm* is the median of {n.get('repeat')} further fits (repeat i with random_state=i). "
        f"Time ratio: {n.get('time_ratio')}; inertia ratio: {n.get('inertia_ratio')}. faiss runs "
        f"a fixed {n.get('faiss_iter')} iterations (no convergence test). Mini-batch rows: both "
        "libraries' defaults (batch 1,024, one k-means++ init, early stopping).",
        "",
        machine_line(d)
        + f" Load average (1/5/15 min) {loadavg(n.get('loadavg_start'))} at the start, "
        f"{loadavg(n.get('loadavg_end'))} at the end.",
        "",
        "The goal of the issue that set them: time ratio <= 0.5 at inertia ratio <= 1.001 on "
        "(a) and (b). How (a) moves with the machine's load, and where its time goes: "
        "[kmeans_notes.md](kmeans_notes.md). The first call in a *fresh* process (empty and "
        "warm compilation cache) is in the [cold start](#cold-start-first-call-in-a-fresh-process)"
        " section above.",
        "",
    ]
    out += table(
        rows,
        [
            ("case_label", "case"),
            ("impl", "implementation"),
            ("cold_s", "first call s"),
            ("warm_s", "warm s"),
            ("time_ratio", "time ratio"),
            ("inertia_ratio", "inertia ratio", ".4f"),
            ("n_iter", "iterations"),
        ],
    )
    return out


def section_tsne_exact(d: dict) -> list[str]:
    n = d["notes"]
    p = n.get("parameters", {})
    params = ", ".join(f"{k} {v}" for k, v in p.items())
    rows = [dict(r) for r in d["rows"]]
    for r in rows:
        r["trust"] = f"{r['tfclust_trust10']:.3f} / {r['sklearn_trust10']:.3f}"
        r["speedup"] = f"{r['speedup_warm']:.1f}x"
    out = [
        "## t-SNE, exact",
        "",
        '`benchmarks/bench_tsne_exact.py`: tfclust.TSNE(method="exact") against scikit-learn\'s '
        f"TSNE on the first n latents ({n.get('data')}); {params}. {n.get('timing')}. "
        f"Goal: {n.get('goal')}.",
        "",
        machine_line(d),
        "",
    ]
    out += table(
        rows,
        [
            ("n", "n"),
            ("peer", "peer"),
            ("tfclust_cold_s", "tfclust first call s"),
            ("tfclust_warm_s", "tfclust warm s"),
            ("sklearn_s", "peer s"),
            ("speedup", "speed-up (warm)"),
            ("kl_ratio", "KL ratio", ".4f"),
            ("trust", "trustworthiness (ours / peer)"),
        ],
    )
    return out


def section_tsne_fft(d: dict) -> list[str]:
    n = d["notes"]
    rows = d["rows"]
    tut = n.get("tutorial", {})
    head = n.get("headline", {})

    def params(p):
        return ", ".join(f"{k} {v}" for k, v in p.items() if k != "goal")

    out = [
        "## t-SNE, FFT-accelerated",
        "",
        '`benchmarks/bench_tsne_fft.py`: tfclust.TSNE (method "fft", the default) against '
        f"scikit-learn's Barnes-Hut t-SNE and openTSNE. Data: {n.get('data')}. "
        f"Timing: {n.get('timing')}. KL: {n.get('kl_same_way')}; own KL: {n.get('own_kl')}.",
        "",
        machine_line(d),
        "",
        f"Fairness: {n.get('fairness')}.",
        "",
        f"### Tutorial parameters, n=5,000 ({params(tut)})",
        "",
        f"Goal: {tut.get('goal')}. *cold* is tfclust's first fit at that size (XLA compilation "
        "included), *warm* the median of the later fits.",
        "",
    ]
    out += table(
        [r for r in rows if r.get("case") == "tutorial"],
        [
            ("library", "library"),
            ("total_s", "total s"),
            ("knn_s", "k-NN s"),
            ("affinities_s", "P s"),
            ("optimise_s", "optimise s"),
            ("speedup_vs_sklearn", "speed-up vs sklearn"),
            ("kl_same_way", "KL"),
            ("kl_ratio_vs_sklearn", "KL ratio", ".4f"),
            ("knn_acc10", "10-NN accuracy", ".3f"),
        ],
    )
    out += [
        "",
        f"### All 60,000 latents ({params(head)})",
        "",
        f"Goal: {head.get('goal')}. tfclust's time is its first call in the process "
        "(compilation included); the ratios are tfclust / that row's library.",
        "",
    ]
    out += table(
        [r for r in rows if r.get("case") == "headline"],
        [
            ("library", "library"),
            ("total_s", "total s"),
            ("knn_s", "k-NN s"),
            ("affinities_s", "P s"),
            ("optimise_s", "optimise s"),
            ("kl_same_way", "KL"),
            ("knn_acc10", "10-NN accuracy", ".3f"),
            ("tfclust_time_ratio", "tfclust time ratio"),
            ("tfclust_kl_ratio", "tfclust KL ratio", ".4f"),
        ],
    )
    out += [
        "",
        "### Scaling with n (tfclust vs openTSNE matched)",
        "",
        "Milliseconds per iteration after the first 50-iteration chunk (which compiles), and "
        "how each grows relative to n=10,000.",
        "",
    ]
    out += table(
        [r for r in rows if r.get("case") == "scaling"],
        [
            ("n", "n"),
            ("total_s", "tfclust total s"),
            ("first_chunk_s", "first chunk s"),
            ("ms_per_iter_after_first_chunk", "tfclust ms/iter"),
            ("openTSNE_ms_per_iter", "openTSNE ms/iter"),
            ("n_ratio", "n ratio"),
            ("ms_per_iter_ratio", "tfclust growth"),
            ("openTSNE_ratio", "openTSNE growth"),
        ],
    )
    out += [
        "",
        "### Memory",
        "",
        f"{n.get('memory')}.",
        "",
    ]
    out += table(
        [r for r in rows if r.get("case") == "memory"],
        [
            ("n", "n"),
            ("fit_s", "fit s"),
            ("rss_before_fit_mb", "RSS before fit MB"),
            ("peak_rss_mb", "peak RSS MB"),
            ("fit_peak_mb", "fit peak MB"),
            ("fit_peak_ratio", "fit peak ratio"),
        ],
    )
    out += [
        "",
        "How the FFT grid sets the cost at 5,000 points, and the defaults it led to: "
        "[tsne_grid.md](tsne_grid.md).",
    ]
    return out


def section_tsne_fft_kernel(d: dict) -> list[str]:
    n = d["notes"]
    settings = n.get("settings", {})
    desc = "; ".join(
        f"`{k}`: " + (v if isinstance(v, str) else ", ".join(f"{a}={b}" for a, b in v.items()))
        for k, v in settings.items()
    )
    out = [
        "## t-SNE FFT repulsion kernel",
        "",
        "`benchmarks/bench_tsne_fft_kernel.py`: one call of the FFT-interpolated repulsion "
        "(`tfclust.tsne.fft.fft_repulsion`) on 2-D embeddings of growing size, against "
        f"openTSNE's ({n.get('openTSNE')}) and the exact sums. Errors: {n.get('errors')}. "
        f"Settings: {desc}. *first call* includes tracing and the XLA compilation of every "
        "grid size; *ms per call* is the warm median.",
        "",
        machine_line(d),
        "",
    ]
    out += table(
        d["rows"],
        [
            ("n", "n"),
            ("method", "setting"),
            ("cold_s", "first call s"),
            ("ms_per_call", "ms per call"),
            ("openTSNE_ms", "openTSNE ms"),
            ("force_err", "force error"),
            ("z_err", "Z error"),
        ],
    )
    return out


def section_tsne_large(d: dict) -> list[str]:
    n = d["notes"]
    params = ", ".join(f"{k} {v}" for k, v in n.get("params", {}).items())
    out = [
        "## t-SNE past 60k points",
        "",
        '`benchmarks/bench_tsne_large.py`: tfclust.TSNE() (`neighbors="auto"`: approximate '
        "k-NN on large inputs, `tfclust/_ann.py`) against openTSNE with its defaults, each fit "
        f"in a fresh process; {params}. Data: {n.get('data')}. {n.get('timing')}; "
        f"{n.get('memory')}. Recall: {n.get('recall')}. KL: {n.get('kl_same_way')}. "
        f"Accuracy: {n.get('knn_acc10')}. {n.get('n_probe', '')} Details: `docs/large_n.md`.",
        "",
        machine_line(d),
        "",
    ]
    out += table(
        [r for r in d["rows"] if r["case"] == "large"],
        [
            ("library", "library"),
            ("n", "n"),
            ("total_s", "fit s"),
            ("knn_s", "k-NN s"),
            ("affinities_s", "k-NN + P s"),
            ("ms_per_iter_after_first_chunk", "ms / iteration"),
            ("peak_rss_mb", "peak RSS MB"),
            ("knn_recall", "k-NN recall"),
            ("kl_same_way", "KL (same way)", ".4f"),
            ("own_kl", "own KL", ".4f"),
            ("knn_acc10", "10-NN accuracy", ".4f"),
            ("load_avg_1_5_15", "load avg 1/5/15"),
        ],
    )
    knn = [r for r in d["rows"] if r["case"] == "knn"]
    if knn:
        out += [
            "",
            "The k-NN step alone (k = 91), each search in a fresh process (the first call "
            "compiles); recall against tfclust's exact search:",
            "",
        ]
        out += table(
            knn,
            [
                ("library", "search"),
                ("n", "n"),
                ("first_s", "first call s"),
                ("second_s", "second call s"),
                ("knn_recall", "recall", ".4f"),
                ("load_avg_1_5_15", "load avg 1/5/15"),
            ],
        )
    return out


def section_tsne_small(d: dict) -> list[str]:
    n = d["notes"]
    out = [
        "## t-SNE of small N: exact repulsion against the grid",
        "",
        '`benchmarks/bench_tsne_small.py`: `TSNE(method="fft")` sums the repulsion over all '
        f"pairs below `EXACT_REPULSION_BELOW` = {n.get('threshold')} samples (one compiled chunk "
        "program; the grid compiles one per grid size the growing embedding crosses). Both ways "
        f"at each n. Data: {n.get('data')}; {n.get('params')}. Timing: {n.get('timing')}. "
        f"KL: {n.get('kl')}. *default*: the way TSNE takes at that n.",
        "",
        machine_line(d),
        "",
    ]
    return out + table(
        d["rows"],
        [
            ("n", "n"),
            ("repulsion", "repulsion"),
            ("default", "default"),
            ("first_s", "first fit s"),
            ("second_s", "second fit s"),
            ("kl", "KL", ".4f"),
            ("load_avg_1_5_15", "load avg 1/5/15"),
        ],
    )


def section_tsne_transform(d: dict) -> list[str]:
    n = d["notes"]
    rows = d["rows"]
    out = [
        "## t-SNE: new points on a fixed map (`TSNE.transform`)",
        "",
        "`benchmarks/bench_tsne_transform.py`: tfclust's `TSNE.transform` against openTSNE's "
        f"`TSNEEmbedding.transform`. Data: {n.get('data')}. Fits: {n.get('fits')}. Transform: "
        f"{n.get('transform')}. Accuracy: {n.get('accuracy')}. Timing: {n.get('timing')}.",
        "",
        machine_line(d)
        + f" Load average (1/5/15 min) {loadavg(n.get('loadavg_start'))} at the start, "
        f"{loadavg(n.get('loadavg_end'))} at the end; the whole run took "
        f"{fmt(n.get('runtime_s'))} s.",
        "",
        "Placement quality (10-NN label accuracy of the 1,000 held-out points):",
        "",
    ]
    out += table(
        rows,
        [
            ("n_reference", "reference points"),
            ("tfclust_acc", "tfclust transform", ".3f"),
            ("openTSNE_acc", "openTSNE transform", ".3f"),
            ("openTSNE_on_tfclust_map_acc", "openTSNE transform onto tfclust's map", ".3f"),
            ("tfclust_joint_acc", "tfclust joint", ".3f"),
            ("openTSNE_joint_acc", "openTSNE joint", ".3f"),
            ("latent_acc", "64-D latents", ".3f"),
            ("acc_minus_joint", "tfclust transform - joint", "+.3f"),
            ("acc_minus_openTSNE", "tfclust - openTSNE transform", "+.3f"),
        ],
    )
    out += [
        "",
        "Time of `transform` (1,000 points), seconds; ratios tfclust / openTSNE:",
        "",
    ]
    out += table(
        rows,
        [
            ("n_reference", "reference points"),
            ("tfclust_warm_s", "tfclust warm"),
            ("openTSNE_warm_s", "openTSNE warm"),
            ("warm_ratio", "ratio, warm"),
            ("tfclust_fresh_empty_cache_s", "tfclust fresh process, empty cache"),
            ("tfclust_fresh_warm_cache_s", "tfclust fresh process, warm cache"),
            ("openTSNE_fresh_first_s", "openTSNE fresh process"),
            ("fresh_empty_cache_ratio", "ratio, empty cache"),
            ("fresh_warm_cache_ratio", "ratio, warm cache"),
            ("tfclust_inprocess_first_s", "tfclust first in process"),
            ("openTSNE_inprocess_first_s", "openTSNE first in process"),
            ("tfclust_fit_s", "tfclust fit"),
            ("openTSNE_fit_s", "openTSNE fit"),
        ],
    )
    goals = []
    for r in rows:
        size = fmt(r["n_reference"])
        goals.append(
            {
                "goal": f"{size}: tfclust transform accuracy >= its joint accuracy - 0.02",
                "value": r["acc_minus_joint"],
                "met": r["acc_minus_joint"] >= -0.02,
            }
        )
        goals.append(
            {
                "goal": f"{size}: tfclust transform accuracy >= openTSNE's",
                "value": r["acc_minus_openTSNE"],
                "met": r["acc_minus_openTSNE"] >= 0,
            }
        )
    big = max(rows, key=lambda r: r["n_reference"], default=None)
    if big is not None:
        for key, what in (
            ("warm_ratio", "warm"),
            ("fresh_empty_cache_ratio", "first call, fresh process, empty cache"),
            ("fresh_warm_cache_ratio", "first call, fresh process, warm cache"),
        ):
            goals.append(
                {
                    "goal": f"{fmt(big['n_reference'])}: time <= 0.5x openTSNE's ({what})",
                    "value": big[key],
                    "met": big[key] <= 0.5,
                }
            )
    out += ["", "Goals:", ""]
    out += table(
        [{**g, "met": "met" if g["met"] else "missed"} for g in goals],
        [("goal", "goal"), ("value", "measured"), ("met", "verdict")],
    )
    out += [
        "",
        "The held-out points placed on the 5,000-point map: "
        "[transform/fashion_new_points.png](transform/fashion_new_points.png).",
    ]
    return out


def section_parametric_tsne(d: dict) -> list[str]:
    n = d["notes"]
    out = [
        "## Parametric t-SNE",
        "",
        "`benchmarks/bench_parametric_tsne.py`: `tfclust.ParametricTSNE` (a network that maps "
        "latents to the plane) against the t-SNE map it learns from. Data: "
        f"{n.get('data')}; perplexity {fmt(n.get('perplexity'))}. *trust@10*: trustworthiness "
        "(k = 10) of the map of the fitted points; *gap*: the TSNE map's minus it; *10-NN "
        "accuracy*: leave-one-out in the map; *held-out accuracy*: the held-out points "
        "transformed, each labelled by its 10 nearest fitted points in the map (the *latent "
        "64-D* row: the same vote in latent space); *fit s*: the network's fit (warm; the "
        "default's first fit beside it), to which `distill` adds the TSNE map's *t-SNE s*; "
        "*points/s*: `transform`'s compiled forward pass, batches of "
        f"{fmt(n.get('batch'))} latents; *images/s*: the encoder then the network in one "
        f"compiled function, batches of {fmt(n.get('batch'))} images (median of "
        f"{fmt(n.get('rounds'))} rounds). Goal: {n.get('goal')}.",
        "",
        machine_line(d),
        "",
    ]
    out += table(
        d["rows"],
        [
            ("map", "map"),
            ("trust@10", "trust@10", ".4f"),
            ("gap", "gap", ".4f"),
            ("knn_acc", "10-NN accuracy", ".3f"),
            ("heldout_acc", "held-out accuracy", ".3f"),
            ("fit_s", "fit s"),
            ("first_fit_s", "first fit s"),
            ("tsne_s", "t-SNE s"),
            ("final_loss", "final loss"),
            ("points/s", "points/s"),
            ("images/s (encoder + net)", "images/s (encoder + net)"),
            ("images/s (encoder alone)", "images/s (encoder alone)"),
        ],
    )
    return out


def section_gmm(d: dict) -> list[str]:
    n = d["notes"]
    out = [
        "## Gaussian mixture",
        "",
        "`benchmarks/bench_gmm.py`: `tfclust.GaussianMixture` against scikit-learn's on "
        f"{n.get('data')}, k = 10; case a: full covariances, float32; case b: diagonal, "
        "float64. *cold s*: the first fit in the process (tfclust's compilation included); "
        "*warm s*: a later fit; *s/iter*: the warm fit's seconds per EM iteration (the two "
        "k-means starts differ, so the iteration counts do); *EM-10 s*: ten EM iterations from "
        "the same initial parameters, the like-for-like speed, and its *ratio* to "
        "scikit-learn's.",
        "",
        machine_line(d),
        "",
    ]
    out += table(
        d["rows"],
        [
            ("case", "case"),
            ("impl", "implementation"),
            ("covariance_type", "covariance"),
            ("dtype", "dtype"),
            ("cold_s", "cold s"),
            ("warm_s", "warm s"),
            ("n_iter", "iterations"),
            ("s_per_iter", "s/iter"),
            ("em10_s", "EM-10 s"),
            ("em_ratio", "ratio", ".3f"),
            ("lower_bound", "lower bound"),
        ],
    )
    return out


def section_gpu_estimate(d: dict) -> list[str]:
    g = d["gpu"]
    out = [
        "## GPU on paper",
        "",
        "`benchmarks/bench_gpu_estimate.py`: per workload, kernel launches, host waits and time "
        f"on one {g['name']} estimated from the optimized HLO XLA compiles for it (before: "
        "commit `8a3c1fc`; after: this tree under `TFCLUST_DEVICE=gpu`). Method, constants, "
        "caveats and the full table: [accelerators.md](accelerators.md).",
        "",
    ]
    rows = []
    for name in d["sides"]["after"]["workloads"]:
        for side in ("before", "after"):
            run = d["sides"].get(side, {}).get("workloads", {}).get(name)
            if run:
                rows.append({"workload": name, "side": side, **run["estimate"]})
    for row in rows:
        row["ms"] = 1000 * row["seconds"]
    out += table(
        rows,
        [
            ("workload", "workload"),
            ("side", "side"),
            ("iterations", "iterations"),
            ("launches", "kernel launches", ",.0f"),
            ("host_waits", "host waits", ",.0f"),
            ("ms", "total ms", ".1f"),
        ],
    )
    return out


def section_clustering(d: dict) -> list[str]:
    n = d["notes"]
    out = [
        "## Clusters against classes",
        "",
        "`benchmarks/bench_clustering.py`: each method on autoencoder latents at k = 10 with its "
        "defaults, no labels used; unsupervised *accuracy* (Hungarian matching; its standard "
        "deviation over the seeds beside it), *NMI*, *ARI*: means over the seeds. "
        "`mnist_sample`: per seed, the 5,000 MNIST digits' own autoencoder (a `tfclust run` with "
        "that seed); `fashion_mnist`: the 60,000 training images' latents of one autoencoder, "
        "the seeds varying the clustering only. *s*: the fit's mean wall seconds (the first "
        "seed's includes compilation).",
        "",
        machine_line(d),
        "",
    ]
    out += table(
        d["rows"],
        [
            ("dataset", "data"),
            ("method", "method"),
            ("accuracy", "accuracy", ".3f"),
            ("accuracy_std", "std", ".3f"),
            ("nmi", "NMI", ".3f"),
            ("ari", "ARI", ".3f"),
            ("seconds", "s"),
            ("seeds", "seeds"),
        ],
    )
    published = n.get("published_accuracy") or {}
    if published:
        out += ["", "Published accuracies (other autoencoders, full data sets):", ""]
        columns = list(dict.fromkeys(c for v in published.values() for c in v))
        rows = [{"method": m, **v} for m, v in published.items()]
        out += table(rows, [("method", "method")] + [(c, c, ".3f") for c in columns])
    run = n.get("whole_run")
    if run:
        stages = ", ".join(
            f"{k[: -len('_s')]} {fmt(v)} s"
            for k, v in run.items()
            if k.endswith("_s") and k != "total_s"
        )
        out += [
            "",
            f"Whole run, `{run['run']}`: {fmt(run['total_s'])} s in all ({stages}); "
            f"accuracy {fmt(run['accuracy'])}.",
        ]
    return out


def section_serving(d: dict) -> list[str]:
    n = d["notes"]
    calls = ", ".join(f"{v} at batch {k}" for k, v in (n.get("calls_per_timing") or {}).items())
    out = [
        "## Serving",
        "",
        "`benchmarks/bench_serving.py`: images per second through the exported SavedModel "
        "(loaded with `tf.saved_model.load`), against the in-process path it replaces (the Keras "
        f"encoder, then `KMeans.predict`). Model: {n.get('model')}; k={n.get('k')}; "
        f"{n.get('rounds')} rounds in alternation, each cell the median; calls per timing: "
        f"{calls}. All timings are warm (the first call is made before timing).",
        "",
        machine_line(d),
        "",
    ]
    out += table(
        d["rows"],
        [
            ("batch", "batch"),
            ("path", "path"),
            ("images/s", "images/s"),
            ("ms/call", "ms per call"),
            ("speed vs in-process", "speed vs in-process"),
        ],
    )
    return out


def section_image_folder(d: dict) -> list[str]:
    n = d["notes"]
    loaders = [r for r in d["rows"] if "images/s" in r]
    out = [
        "## Your own images: 70,000 PNG files",
        "",
        "`benchmarks/bench_image_folder.py`: Fashion-MNIST's train and test images written as "
        "PNG files in ten class folders. Each loader runs in a fresh process (imports not "
        f"timed), taking turns for {n.get('rounds')} rounds; the files are in the OS page cache "
        "after the first. `tfclust.load_images` lists the files and decodes each once into "
        "uint8 numpy (finding corrupt files and sizes as it goes); `image_dataset` streams, so "
        "it decodes twice (a scan for sizes and corrupt files, then the stream); Keras' loader "
        "lists, decodes and resizes into float32 batches, and does not check sizes first.",
        "",
        machine_line(d),
        "",
    ]
    out += table(
        loaders,
        [
            ("loader", "loader"),
            ("first round s", "first round (s)"),
            ("median s", "median (s)"),
            ("images/s", "images/s"),
            ("time vs keras", "time vs Keras", ".2f"),
        ],
    )
    runs = [(key, n[key]) for key in ("run", "run_n_clusters_auto") if key in n]
    if runs:
        out += [
            "",
            "`tfclust run --images` on the folder, a fresh process each, default settings; then "
            "the same run folder with `--resume --n-clusters auto` (autoencoder, latents and "
            "t-SNE reused; k chosen in 2..15). The first run starts with an empty compilation "
            "cache, as on a new machine; the second has the first run's programs:",
            "",
        ]
        rows = []
        for key, r in runs:
            km, ts, st = r["kmeans"], r["tsne"], r["stages_seconds"]
            rows.append(
                {
                    "run": "defaults" if key == "run" else "--resume --n-clusters auto",
                    "total": r["process_seconds"],
                    "load": st.get("load_data"),
                    "train": None if "autoencoder" in r["resumed"] else st.get("autoencoder"),
                    "kmeans": st.get("kmeans"),
                    "tsne": None if "tsne" in r["resumed"] else st.get("tsne"),
                    "k": km.get("n_clusters"),
                    "acc": km.get("accuracy"),
                    "nmi": km.get("nmi"),
                    "sil": km.get("silhouette"),
                    "knn": ts.get("knn_accuracy_10"),
                }
            )
        out += table(
            rows,
            [
                ("run", "run"),
                ("total", "process (s)"),
                ("load", "load (s)"),
                ("train", "train (s)"),
                ("kmeans", "K-means (s)"),
                ("tsne", "t-SNE (s)"),
                ("k", "k"),
                ("acc", "accuracy"),
                ("nmi", "NMI"),
                ("sil", "silhouette"),
                ("knn", "10-NN acc."),
            ],
        )
    return out


def section_compile_phases(d: dict) -> list[str]:
    n = d["notes"]
    out = [
        "## Where a first call's time goes",
        "",
        "`benchmarks/bench_compile_phases.py`: the hot program of each case, intercepted on its "
        f"first call in a fresh process (persistent compilation cache {n.get('cache')}) and timed "
        "in phases: trace (Python to TF graph), lower (graph to HLO), the first call (lowering "
        "again, XLA compilation and one run), and run (the same call again, warm); compile = "
        "first call - warm run. Sizes are of the optimised HLO. Details: "
        "[first_call.md](first_call.md).",
        "",
        machine_line(d),
        "",
    ]
    out += table(
        d["rows"],
        [
            ("case", "case"),
            ("trace_s", "trace s"),
            ("lower_s", "lower s"),
            ("first_call_s", "first call s"),
            ("compile_s", "compile s"),
            ("run_s", "warm run s"),
            ("hlo_lines", "HLO lines"),
            ("fusions", "fusions"),
            ("whiles", "loops"),
            ("conditionals", "conditionals"),
            ("load_before", "load before"),
        ],
    )
    return out


def section_coldstart(d: dict) -> list[str]:
    n = d["notes"]
    cases = n.get("cases") or {}
    rows = [dict(r) for r in d["rows"]]
    for r in rows:
        title = (cases.get(r["row"]) or {}).get("title")
        if r["row"] == "tsne5k_newn":
            title = "t-SNE, a new n (4,000 right after 5,000, same process)"
        r["title"] = f"`{r['row']}`: {title}" if title else f"`{r['row']}`"
    out = [
        "## Cold start: first call in a fresh process",
        "",
        "`benchmarks/bench_coldstart.py`: what a new user feels. Each number comes from a fresh "
        "Python process that imports the library, loads the data and calls the estimator. "
        "tfclust's *first call* is measured with an empty persistent compilation cache and "
        "again, in a new process, with that cache warm; *warm* is the second call of the same "
        "shape in the same process. The peer runs in its own fresh process. Ratios are "
        f"tfclust / peer. Data: {n.get('data')}.",
        "",
        machine_line(d)
        + f" Load average (1/5/15 min) {loadavg(n.get('loadavg_start'))} at the start of the "
        "last invocation.",
        "",
        "Full per-process detail, goals and the `tfclust run` stages: "
        "[coldstart.md](coldstart.md) (generated by the benchmark itself).",
        "",
    ]
    out += table(
        rows,
        [
            ("title", "case"),
            ("n", "n"),
            ("peer", "peer"),
            ("peer_first_s", "peer first call s"),
            ("empty_s", "tfclust first call s, empty cache"),
            ("cache_s", "tfclust first call s, warm cache"),
            ("peer_warm_s", "peer warm s"),
            ("warm_s", "tfclust warm s"),
            ("empty_ratio", "ratio, empty cache"),
            ("cache_ratio", "ratio, warm cache"),
            ("warm_ratio", "ratio, warm"),
            ("quality_ratio", "quality ratio", ".4f"),
        ],
    )
    goals = n.get("goals") or []
    if goals:
        out += ["", "Goals:", ""]
        out += table(
            [
                {"goal": g["goal"], "value": g["value"], "met": "met" if g["met"] else "missed"}
                for g in goals
            ],
            [("goal", "goal"), ("value", "measured"), ("met", "verdict")],
        )
    return out


def section_conformance(d: dict) -> list[str]:
    results = d.get("results") or {}
    rows = []
    for name, r in results.items():
        rows.append(
            {
                "name": name,
                "estimator": f"`{r.get('estimator')}`",
                "passed": r.get("passed"),
                "failed": r.get("failed"),
                "skipped": r.get("skipped"),
                "total": r.get("total"),
                "failing": ", ".join(
                    f"`{c['check']}`" for c in r.get("checks", []) if c.get("status") == "failed"
                ),
            }
        )
    out = [
        "## scikit-learn conformance",
        "",
        "`benchmarks/conformance.py`: scikit-learn's own estimator checks "
        f"(scikit-learn {d.get('sklearn_version')}) run on tfclust's estimators and on "
        "scikit-learn's, for comparison. Reasons for each failure and what was done about it: "
        "[sklearn_conformance.md](sklearn_conformance.md).",
        "",
    ]
    out += table(
        rows,
        [
            ("name", "estimator"),
            ("estimator", "as checked"),
            ("passed", "passed"),
            ("failed", "failed"),
            ("skipped", "skipped"),
            ("total", "total"),
            ("failing", "failed checks"),
        ],
    )
    return out


def _cause_of():
    """``benchmarks/sklearn_test_files.cause_of`` (the one list of causes), loaded by path."""
    path = os.path.join(ROOT, "benchmarks", "sklearn_test_files.py")
    spec = importlib.util.spec_from_file_location("_tfclust_sklearn_test_files", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.cause_of


def section_sklearn_test_files(d: dict) -> list[str]:
    cause_of = _cause_of()
    out = [
        "## scikit-learn's own test files",
        "",
        "`benchmarks/sklearn_test_files.py`: scikit-learn's test files run with tfclust's "
        f"classes imported in place of scikit-learn's (scikit-learn {d.get('scikit-learn')}, "
        f"{d.get('machine')}, {d.get('date')}). Skipped tests are not counted (scikit-learn "
        "skips them itself: they need other libraries). Causes are explained in "
        "[sklearn_conformance.md](sklearn_conformance.md).",
        "",
    ]
    rows = []
    for name in ("k_means", "t_sne"):
        r = d.get(name)
        if not r:
            continue
        counts = r.get("counts", {})
        run = r["total"] - counts.get("skipped", 0)
        rows.append(
            {
                "file": f"`{r['file']}`",
                "passed": counts.get("passed", 0),
                "run": run,
                "failed": counts.get("failed", 0),
                "xfailed": counts.get("xfailed", 0),
                "skipped": counts.get("skipped", 0),
            }
        )
    out += table(
        rows,
        [
            ("file", "test file"),
            ("passed", "passed"),
            ("run", "of (not skipped)"),
            ("failed", "failed"),
            ("xfailed", "expected failures"),
            ("skipped", "skipped"),
        ],
    )
    for name in ("k_means", "t_sne"):
        r = d.get(name)
        if not r:
            continue
        causes: dict[str, list[str]] = {}
        for test, result in sorted(r["tests"].items()):
            if result["outcome"] == "failed":
                causes.setdefault(cause_of(test, result["reason"]), []).append(test)
        if not causes:
            continue
        out += ["", f"Failures of `{r['file']}` by cause:", ""]
        out += table(
            [
                {"cause": cause, "n": len(tests), "tests": ", ".join(f"`{t}`" for t in tests)}
                for cause, tests in sorted(causes.items(), key=lambda kv: -len(kv[1]))
            ],
            [("cause", "cause"), ("n", "tests"), ("tests", "which")],
        )
    return out


SECTIONS = [
    ("coldstart", section_coldstart),
    ("autoencoder", section_autoencoder),
    ("kmeans", section_kmeans),
    ("tsne_exact", section_tsne_exact),
    ("tsne_fft", section_tsne_fft),
    ("tsne_fft_kernel", section_tsne_fft_kernel),
    ("tsne_large", section_tsne_large),
    ("tsne_small", section_tsne_small),
    ("tsne_transform", section_tsne_transform),
    ("parametric_tsne", section_parametric_tsne),
    ("gmm", section_gmm),
    ("gpu_estimate", section_gpu_estimate),
    ("clustering", section_clustering),
    ("serving", section_serving),
    ("image_folder", section_image_folder),
    ("compile_phases", section_compile_phases),
    ("conformance", section_conformance),
    ("sklearn_test_files", section_sklearn_test_files),
]


def render() -> str:
    """The whole page, as text."""
    lines = [
        "# Benchmarks",
        "",
        "Generated by `python benchmarks/report.py` from `benchmarks/results/*.json`; do not edit "
        "by hand (`tests/test_docs.py` fails when this page and the JSON files disagree).",
        "",
        "Each script in `benchmarks/` runs tfclust side by side with its peer, prints a table and "
        "writes `benchmarks/results/<name>.json` with the machine and its load. Ratios are "
        "tfclust / peer measured in the same run (below 1: tfclust is faster or better); these "
        'machines are shared and noisy. Install the peers with `pip install -e ".[dev]"` '
        "(adds openTSNE and faiss-cpu). Latents: `benchmarks/common.py` trains and caches a "
        "Fashion-MNIST autoencoder.",
        "",
    ]
    known = {name for name, _ in SECTIONS}
    present = []
    for name, fn in SECTIONS:
        data = load(name)
        if data is not None:
            present.append((name, fn, data))
    lines += ["Sections:", ""]
    for name, _, _ in present:
        lines.append(f"- `{name}.json`")
    lines.append("")
    for _, fn, data in present:
        lines += fn(data)
        lines.append("")
    others = sorted(
        f[: -len(".json")]
        for f in os.listdir(RESULTS)
        if f.endswith(".json") and f[: -len(".json")] not in known
    )
    if others:
        lines += ["## Other results", "", "Not yet summarised by `benchmarks/report.py`:", ""]
        lines += [f"- `benchmarks/results/{name}.json`" for name in others]
        lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"


README = os.path.join(ROOT, "README.md")
HEADLINE_START = "<!-- headline table: generated by benchmarks/report.py -->"
HEADLINE_END = "<!-- end of headline table -->"

# (coldstart row, what the README calls it)
HEADLINE_ROWS = [
    ("kmeans60k", "K-means, 60,000 latents, k=10, n_init=10"),
    ("tsne5k", "t-SNE, 5,000 latents, perplexity 15"),
    ("tsne60k", "t-SNE, all 60,000 latents, perplexity 30"),
]


def headline() -> str:
    """The README's one table: the tutorial's stages against their peers, first call and warm."""
    d = load("coldstart")
    rows = {r["row"]: r for r in d["rows"]}

    def pair(ours, peer):
        return f"{fmt(ours)} s / {fmt(peer)} s ({fmt(ours / peer)})"

    lines = [
        HEADLINE_START,
        "| stage (Fashion-MNIST latents) | peer | first call, fresh process: tfclust / peer "
        "(ratio) | same, tfclust's compilation cache warm | warm (second call) |",
        "|---|---|---|---|---|",
    ]
    for key, label in HEADLINE_ROWS:
        r = rows[key]
        lines.append(
            f"| {label} | {r['peer']} | {pair(r['empty_s'], r['peer_first_s'])} | "
            f"{pair(r['cache_s'], r['peer_first_s'])} | {pair(r['warm_s'], r['peer_warm_s'])} |"
        )
    m = d.get("machine") or {}
    lines.append("")
    lines.append(
        f"`benchmarks/bench_coldstart.py`, {m.get('cpu_count', '?')}-core CPU, no GPU, "
        f"{str(m.get('date', ''))[:10]}; ratios below 1 mean tfclust is faster. Every other "
        "number: [docs/benchmarks.md](docs/benchmarks.md)."
    )
    lines.append(HEADLINE_END)
    return "\n".join(lines)


def readme_with_headline(text: str) -> str:
    """``text`` (the README) with its headline block replaced by :func:`headline`."""
    start, end = text.find(HEADLINE_START), text.find(HEADLINE_END)
    if start < 0 or end < start:
        raise ValueError(f"README.md lacks the markers {HEADLINE_START!r} ... {HEADLINE_END!r}")
    return text[:start] + headline() + text[end + len(HEADLINE_END) :]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the page is stale")
    parser.add_argument("--out", default=OUT, help="where to write (default docs/benchmarks.md)")
    args = parser.parse_args(argv)
    with open(README, encoding="utf-8") as f:
        readme = f.read()
    outputs = {args.out: render(), README: readme_with_headline(readme)}
    stale = []
    for path, text in outputs.items():
        try:
            with open(path, encoding="utf-8") as f:
                current = f.read()
        except FileNotFoundError:
            current = None
        if current == text:
            continue
        stale.append(path)
        if not args.check:
            with open(path, "w", encoding="utf-8", newline="\n") as f:
                f.write(text)
            print(f"wrote {path}")
    if args.check and stale:
        print(f"stale: {', '.join(stale)}; run python benchmarks/report.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
