"""The device profile: sizes and algorithm choices that depend on what the kernels run on.

A CPU wants tiles that fit its caches and pruned, restart-after-restart K-means (less work); an
accelerator wants wide tiles, all restarts side by side, loops whose trip counts it knows, and
sums that do not depend on the order of atomic adds (docs/accelerators.md). The profile is read
when a fit starts, from the devices TensorFlow sees (a GPU or TPU makes the accelerator
profile), unless ``TFCLUST_DEVICE`` names one (``cpu``, ``gpu`` or ``tpu``). Parameters given
explicitly (``KMeans(algorithm=...)``, ``memory_budget=...``) always win.
"""

from __future__ import annotations

import functools
import os
from typing import NamedTuple

import tensorflow as tf

ENV_VAR = "TFCLUST_DEVICE"
"""Environment variable that overrides the detected profile: ``cpu``, ``gpu`` or ``tpu``."""


class DeviceProfile(NamedTuple):
    """Sizes and choices for one kind of device.

    Attributes:
      kind: ``"cpu"``, ``"gpu"`` or ``"tpu"``.
      kmeans_algorithm: what ``KMeans(algorithm="auto")`` runs: ``"elkan"`` (pruned
        iterations, restarts one after another: least work, on a CPU) or ``"lloyd"`` (every
        restart side by side in fixed-length compiled chunks: no host round trip inside a chunk).
      deterministic_sums: whether the hot kernels' sums over rows avoid float scatter-adds, which
        an accelerator runs as atomic adds in a varying order (sums that differ run to run):
        K-means' per-centre sums become one-hot matmuls and the t-SNE FFT grid's charges and
        attractive forces are summed in 64-bit fixed point. False on a CPU, whose scatters run
        in order (and are faster there); True on a GPU or TPU.
      kmeans_chunk_iterations: Lloyd iterations per compiled chunk (the host checks convergence
        between chunks).
      kmeans_tile_bytes: bytes of one K-means distance tile (rows x restarts x clusters),
        unless ``memory_budget`` is lower.
      kmeans_max_chunk_rows: most rows per distance matmul of the pruned iterations.
      knn_max_tile: most query rows per tile of the exact k-NN search.
      exact_tsne_tile_bytes: most bytes of one row tile of the exact t-SNE gradient.
      memory_budget: bytes one tile of pairwise work may take when the caller gives no
        ``memory_budget`` (the default of every estimator and kernel that takes one).
    """

    kind: str
    kmeans_algorithm: str
    deterministic_sums: bool
    kmeans_chunk_iterations: int
    kmeans_tile_bytes: int
    kmeans_max_chunk_rows: int
    knn_max_tile: int
    exact_tsne_tile_bytes: int
    memory_budget: int


# The CPU values were measured on the 2-core development machine (docs/accelerators.md); the
# accelerator values are sized for tens of GB of device memory and thousands of threads.
PROFILES = {
    "cpu": DeviceProfile("cpu", "elkan", False, 4, 4 * 2**20, 8192, 512, 16 * 2**20, 256 * 2**20),
    "gpu": DeviceProfile("gpu", "lloyd", True, 8, 256 * 2**20, 65536, 8192, 512 * 2**20, 2**31),
    "tpu": DeviceProfile("tpu", "lloyd", True, 8, 256 * 2**20, 65536, 8192, 512 * 2**20, 2**31),
}
"""The profile of each kind of device."""


def use_deterministic_sums(requested: bool | None = None) -> bool:
    """``requested``, or when None the device profile's ``deterministic_sums``: what a kernel
    that takes ``deterministic_sums=None`` runs."""
    return device_profile().deterministic_sums if requested is None else bool(requested)


def device_profile() -> DeviceProfile:
    """The profile for this process: ``$TFCLUST_DEVICE`` if set, else the first kind of device
    TensorFlow lists among TPU, GPU (then CPU).

    Raises:
      ValueError: ``$TFCLUST_DEVICE`` is not one of ``cpu``, ``gpu``, ``tpu``.
    """
    wanted = os.environ.get(ENV_VAR, "").strip().lower()
    if wanted:
        if wanted not in PROFILES:
            raise ValueError(f"{ENV_VAR} must be one of {sorted(PROFILES)}, got {wanted!r}")
        return PROFILES[wanted]
    return PROFILES[detected_kind()]


@functools.cache
def detected_kind() -> str:
    """The kind of device TensorFlow lists first among TPU and GPU, else ``"cpu"`` (cached)."""
    for kind in ("tpu", "gpu"):
        if tf.config.list_physical_devices(kind.upper()):
            return kind
    return "cpu"
