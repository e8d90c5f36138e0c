"""Small t-SNE fits: the repulsion summed exactly against the FFT grid (``EXACT_REPULSION_BELOW``).

``TSNE(method="fft")`` sums the repulsion over all pairs below
``tfclust.tsne.estimator.EXACT_REPULSION_BELOW`` samples: one compiled chunk program, where the
grid compiles one per grid size the growing embedding crosses. This measures both ways at each n
(the threshold patched to force one or the other), each in a fresh process with the persistent
compilation cache off: the first fit (compilation included) and a second fit in the same
process, and the KL divergence each reports. Data: the first n Fashion-MNIST autoencoder latents
(``common.latents``); perplexity 30, TSNE's defaults otherwise (1,000 iterations).

    python benchmarks/bench_tsne_small.py [--sizes 250 500 1000 1500 2000 4000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from common import latents, report  # noqa: E402

MODES = ("exact", "grid")
NOTES = {
    "data": "first n Fashion-MNIST autoencoder latents (common.latents), float32",
    "params": "TSNE(perplexity=30, random_state=0), defaults otherwise (1,000 iterations)",
    "timing": "wall seconds; each (n, repulsion) in a fresh process, compilation cache off: "
    "first fit (compilation included), then a second fit in the same process",
    "kl": "kl_divergence_ of the second fit (KL of the k-NN P, exact given the Z used)",
}


def child(n: int, mode: str) -> None:
    """In a fresh process: two fits with the repulsion ``mode``; prints their figures as JSON."""
    from tfclust.tsne import TSNE, estimator

    estimator.EXACT_REPULSION_BELOW = n + 1 if mode == "exact" else 0
    x = latents(n)[0]
    seconds = []
    for _ in range(2):
        start = time.perf_counter()
        est = TSNE(perplexity=30.0, random_state=0).fit(x)
        seconds.append(time.perf_counter() - start)
    print(json.dumps({"first_s": seconds[0], "second_s": seconds[1], "kl": est.kl_divergence_}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[250, 500, 1000, 1500, 2000, 4000])
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(int(args.child[0]), args.child[1])
        return
    from tfclust.tsne.estimator import EXACT_REPULSION_BELOW

    rows = []
    for n in args.sizes:
        for mode in MODES:
            print(f"[bench_tsne_small] n={n} {mode} (subprocess)...", file=sys.stderr, flush=True)
            out = subprocess.run(
                [sys.executable, __file__, "--child", str(n), mode],
                check=True,
                capture_output=True,
                text=True,
                env={**os.environ, "TFCLUST_CACHE_DIR": "off"},
            ).stdout
            fit = json.loads(out.strip().splitlines()[-1])
            default = (n < EXACT_REPULSION_BELOW) == (mode == "exact")
            rows.append(
                {
                    "n": n,
                    "repulsion": mode,
                    "default": default,
                    **fit,
                    "load_avg_1_5_15": os.getloadavg(),
                }
            )
            report("tsne_small", rows, notes={**NOTES, "threshold": EXACT_REPULSION_BELOW})


if __name__ == "__main__":
    main()
