"""Bitwise-repeatable XLA programs on CPU (docs/reproducibility.md).

XLA's CPU runtime runs its FFTs (and large dots) on the intra-op thread pool, and an FFT splits
its batch of transforms among as many threads as the pool lends it, which varies from call to
call; which transforms then share a SIMD group changes the last bits of the result, and
t-SNE's optimisation amplifies them (same seed, embeddings differing by up to 117 at 30
points). With ``--xla_cpu_multi_thread_eigen=false`` those calls run on one thread and repeat
bit for bit; XLA still parallelises its own loops.
"""

from __future__ import annotations

import os

FLAG = "--xla_cpu_multi_thread_eigen"


def configure(environ=os.environ) -> bool:
    """Add ``FLAG=false`` to ``XLA_FLAGS`` unless the user set ``FLAG`` there; returns whether
    the flag is (now) false. XLA reads ``XLA_FLAGS`` at its first compilation, so this runs when
    tfclust is imported."""
    flags = environ.get("XLA_FLAGS", "")
    if FLAG not in flags:
        environ["XLA_FLAGS"] = f"{flags} {FLAG}=false".strip()
        return True
    return f"{FLAG}=false" in flags or f"{FLAG}=0" in flags
