"""In-memory K-means fit and assignment as XLA programs.

``fit_in_memory`` runs initialisation (all restarts at once, a leading batch dimension R), the
pruned Lloyd loop of every restart (restart after restart, ``_bounded``), the final assignment
pass and the choice of the best restart in one compiled program (``fit_in_memory_program``: one
per k): the host only sees the result. ``fit_plain`` runs plain Lloyd iterations, all restarts
side by side, in compiled chunks of a fixed number of iterations (no loop whose trip count is
decided at run time: docs/accelerators.md), the host checking convergence between chunks.
Compiled programs are cached by ``tf.function`` per static configuration (size bucket of
N, dtype, k, R, tile, init kind; see ``_tiling.padded_size``) and on disk
(``tfclust._compile_cache``); tensors carry everything else, the number of real rows included.
"""

from __future__ import annotations

from typing import NamedTuple

import tensorflow as tf

from .._compile import compiled, specialised
from .._device import device_profile
from .._precision import einsum
from .._tiling import map_row_tiles
from ._bounded import lloyd_bounded
from ._init import kmeans_plusplus, random_rows
from ._steps import (
    Convergence,
    accumulate,
    assign,
    average,
    converge_step,
    fold_tiles,
    pad_to_tiles,
    relocate_empty,
)


def _e_pass(xb, valid, wb, xsq, centers, with_sums: bool, deterministic_sums: bool = False):
    """Assign every row for every restart; optionally accumulate per-centre sums and weights
    (scatter-adds, or one-hot matmuls with ``deterministic_sums``: see ``_steps.accumulate``).

    Returns:
      labels (n_tiles, T, R) int32; dists (n_tiles, T, R) squared distances to the assigned
      centre (-1 on padding rows); and, if ``with_sums``, sums (R, k, d) and counts (R, k).
    """
    n_tiles, tile, d = xb.shape
    r, k, _ = centers.shape
    dtype = xb.dtype
    c_sq = tf.reduce_sum(tf.square(centers), axis=-1)

    def body(t, labels, dists, sums, counts):
        lab, score = assign(xb[t], centers, c_sq)
        dist = tf.maximum(score + xsq[t][:, tf.newaxis], tf.zeros((), dtype))
        dist = tf.where(valid[t][:, tf.newaxis], dist, -tf.ones_like(dist))
        labels = tf.tensor_scatter_nd_update(labels, [[t]], lab[tf.newaxis])
        dists = tf.tensor_scatter_nd_update(dists, [[t]], dist[tf.newaxis])
        if with_sums:
            s, c = accumulate(xb[t], wb[t], lab, k, deterministic_sums)
            sums, counts = sums + s, counts + c
        return labels, dists, sums, counts

    state = (
        tf.zeros([n_tiles, tile, r], tf.int32),
        tf.zeros([n_tiles, tile, r], dtype),
        tf.zeros([r, k, d], dtype) if with_sums else tf.zeros([], dtype),
        tf.zeros([r, k], dtype) if with_sums else tf.zeros([], dtype),
    )
    return fold_tiles(n_tiles, body, state)


def _relocate(xb, wb, labels, dists, sums, counts, active):
    """Empty-cluster relocation with the farthest rows found by ``top_k`` over the stored dists
    (-1 on padding rows, which therefore come last)."""
    d = xb.shape[2]
    r, k = counts.shape
    flat_d = tf.transpose(tf.reshape(dists, [-1, r]))  # (R, Np)
    far_d, far_i = tf.math.top_k(flat_d, min(k - 1, flat_d.shape[1]))
    far_x = tf.gather(tf.reshape(xb, [-1, d]), far_i)
    far_w = tf.gather(tf.reshape(wb, [-1]), far_i)
    far_lab = tf.gather(tf.transpose(tf.reshape(labels, [-1, r])), far_i, batch_dims=1)
    return relocate_empty(sums, counts, far_x, far_lab, far_d, far_w, active)


class LloydState(NamedTuple):
    """Where the plain Lloyd iterations of R restarts stand between chunks."""

    centers: tf.Tensor  # (R, k, d) centred
    labels: tf.Tensor  # (n_tiles, T, R) int32, the last assignment (-1 before the first)
    conv: Convergence  # fields (R,)
    n_iter: tf.Tensor  # int32 scalar, iterations run so far
    blocked: tf.Tensor  # bool scalar: the next iteration empties a cluster (see lloyd_chunk)

    @classmethod
    def start(cls, centers, valid) -> LloydState:
        labels = -tf.ones(valid.shape + [centers.shape[0]], tf.int32)
        conv = Convergence.start(centers.shape[0], centers.dtype)
        return cls(centers, labels, conv, tf.constant(0, tf.int32), tf.constant(False))


def _iteration(
    xb, valid, wb, xsq, st: LloydState, tol, max_iter, relocate: bool, deterministic_sums: bool
):
    """One Lloyd iteration of every restart still running, as a new :class:`LloydState`.

    With ``relocate``, empty clusters are re-seeded (scikit-learn's relocation); without, an
    iteration that would leave a running restart's cluster empty is masked and the state marked
    ``blocked``, as are all iterations after it, until one with ``relocate`` runs.
    ``deterministic_sums``: the per-centre sums by one-hot matmuls (``_steps.accumulate``).
    """
    k = st.centers.shape[1]
    labels, dists, sums, counts = _e_pass(xb, valid, wb, xsq, st.centers, True, deterministic_sums)
    running = (st.n_iter < max_iter) & ~st.blocked
    halted = st.conv.done | ~running
    blocked = st.blocked
    if k > 1 and relocate:
        sums, counts = _relocate(xb, wb, labels, dists, sums, counts, ~halted)
    elif k > 1:
        blocked |= tf.reduce_any((counts == 0) & ~halted[:, tf.newaxis])
        running &= ~blocked
        halted = st.conv.done | ~running
    changed = tf.reduce_any((labels != st.labels) & valid[..., tf.newaxis], axis=[0, 1])
    new_centers = average(sums, counts)
    frozen = st.conv._replace(done=halted)
    centers, conv, active = converge_step(st.n_iter, st.centers, new_centers, changed, frozen, tol)
    conv = conv._replace(done=tf.where(running, conv.done, st.conv.done))
    labels = tf.where(active, labels, st.labels)
    return LloydState(centers, labels, conv, st.n_iter + tf.cast(running, tf.int32), blocked)


def _chunk(xb, valid, wb, xsq, state, tol, max_iter, length: int, deterministic_sums: bool):
    def body(j, st):
        return j + 1, _iteration(xb, valid, wb, xsq, st, tol, max_iter, False, deterministic_sums)

    return tf.while_loop(lambda j, _: j < length, body, (tf.constant(0), state))[1]


@compiled
def lloyd_chunk(xb, valid, wb, xsq, state, tol, max_iter, *, length: int):
    """``length`` Lloyd iterations of R restarts side by side, a trip count XLA knows.

    Restarts that converged, and iterations from ``max_iter`` on, are masked (their state does
    not change). No branch runs inside an iteration: an iteration that empties a cluster (rare)
    is masked instead, with the rest of the chunk, and the host runs it again with the
    relocation (:func:`lloyd_relocating_step`), whose farthest-row search costs a selection
    over all rows. The per-centre sums are scatter-adds; :func:`lloyd_chunk_deterministic` is
    the same program with one-hot matmuls instead (the device profile's
    ``deterministic_sums``).

    Args:
      xb, valid, wb, xsq: (n_tiles, T, ...) centred rows, validity (False on padding rows),
        sample weights (0 on padding rows), squared norms.
      state: :class:`LloydState`; tol: absolute tolerance on the summed squared centre shift;
      max_iter: int32 scalar. length: iterations (static).

    Returns:
      The :class:`LloydState` after the chunk.
    """
    return _chunk(xb, valid, wb, xsq, state, tol, max_iter, length, False)


@compiled
def lloyd_chunk_deterministic(xb, valid, wb, xsq, state, tol, max_iter, *, length: int):
    """:func:`lloyd_chunk` with the per-centre sums by one-hot matmuls: no float atomics."""
    return _chunk(xb, valid, wb, xsq, state, tol, max_iter, length, True)


def _relocating_step(xb, valid, wb, xsq, state, tol, max_iter, deterministic_sums: bool):
    state = state._replace(blocked=tf.constant(False))
    return _iteration(xb, valid, wb, xsq, state, tol, max_iter, True, deterministic_sums)


@compiled
def lloyd_relocating_step(xb, valid, wb, xsq, state, tol, max_iter):
    """The blocked iteration of :func:`lloyd_chunk`, with the empty clusters re-seeded."""
    return _relocating_step(xb, valid, wb, xsq, state, tol, max_iter, False)


@compiled
def lloyd_relocating_step_deterministic(xb, valid, wb, xsq, state, tol, max_iter):
    """The blocked iteration of :func:`lloyd_chunk_deterministic`, with the empty clusters
    re-seeded."""
    return _relocating_step(xb, valid, wb, xsq, state, tol, max_iter, True)


def _exact_inertia(xb, wb, labels, centers):
    """sum_i w_i |x_i - c_{label_i}|^2 by differences (no matmul cancellation); labels (nt, T)."""

    def body(t, total):
        diff = xb[t] - tf.gather(centers, labels[t])
        return (total + tf.reduce_sum(wb[t] * tf.reduce_sum(tf.square(diff), axis=1)),)

    (total,) = fold_tiles(xb.shape[0], body, (tf.zeros([], xb.dtype),))
    return total


def _seed(xb, wb, seed, n_valid, n_clusters, n_restarts, init, n_local_trials):
    if init == "k-means++":
        return kmeans_plusplus(xb, wb, seed, n_clusters, n_restarts, n_local_trials, n_valid)
    return random_rows(xb, wb, seed, n_clusters, n_restarts)


def _tiled(x, w, valid_rows, tile):
    """(n_tiles, T, ...) rows, sample weights and validity of ``x`` (N, d) in tiles of T rows."""
    xb, _ = pad_to_tiles(x, tile)
    wb, _ = pad_to_tiles(w[:, tf.newaxis], tile)
    vb, _ = pad_to_tiles(tf.cast(valid_rows, x.dtype)[:, tf.newaxis], tile)
    return xb, wb[..., 0], vb[..., 0] > 0


@compiled
def seed_centers(
    x, seed, *, n_clusters: int, n_restarts: int, init: str, tile: int, n_local_trials: int
):
    """(R, k, d) initial centres drawn from the rows of ``x`` (N, d) by ``init``."""
    xb, valid = pad_to_tiles(x, tile)
    return _seed(
        xb, tf.cast(valid, x.dtype), seed, x.shape[0], n_clusters, n_restarts, init, n_local_trials
    )


def fit_in_memory_program(n_clusters: int, deterministic_sums: bool = False):
    """:func:`fit_in_memory` compiled, one program per number of clusters (and choice of
    ``deterministic_sums``, default False): fits at several k (``choose_n_clusters``) are
    programs of their own, not retracings of one program."""
    return specialised(fit_in_memory, n_clusters, deterministic_sums)


def fit(x, sample_weight, n_valid, init_centers, seed, tol, max_iter: int, *, algorithm, **kw):
    """Fit K-means in memory: ``algorithm`` "elkan" runs :func:`fit_in_memory` (pruned
    iterations, one program), "lloyd" :func:`fit_plain`. Arguments and result as
    :func:`fit_in_memory`; ``deterministic_sums`` comes from the device profile, read here on
    the host so that it is part of the compiled programs' static configuration."""
    kw["deterministic_sums"] = device_profile().deterministic_sums
    if algorithm == "elkan":
        program = fit_in_memory_program(kw["n_clusters"], kw["deterministic_sums"])
        max_iter = tf.constant(max_iter, tf.int32)
        return program(x, sample_weight, n_valid, init_centers, seed, tol, max_iter, **kw)
    return fit_plain(x, sample_weight, n_valid, init_centers, seed, tol, max_iter, **kw)


def _prepare(x, sample_weight, n_valid, init_centers, seed, tol, settings):
    """Centred tiles of the data, the initial centres and the absolute tolerance (see
    :func:`fit_in_memory`)."""
    dtype = x.dtype
    valid_rows = tf.range(x.shape[0]) < n_valid
    mask = tf.cast(valid_rows, dtype)[:, tf.newaxis]
    count = tf.cast(n_valid, dtype)
    # Mean and variance of the real rows, unweighted, as scikit-learn's centring and tolerance.
    mean = tf.reduce_sum(x * mask, axis=0) / count
    var = tf.reduce_sum(tf.square((x - mean) * mask), axis=0) / count
    abs_tol = tf.reduce_mean(var) * tol
    # Centring, as scikit-learn does, makes |x|^2 - 2 x.c + |c|^2 far more accurate.
    xc = (x - mean) * mask
    xb, wb, valid = _tiled(xc, sample_weight, valid_rows, settings["tile"])
    xsq = tf.reduce_sum(tf.square(xb), axis=-1)
    if settings["init"] == "array":
        centers = init_centers - mean
    else:
        # Seeding works on (rows x R * n_local_trials) tiles, far narrower than R * k.
        xb_init, wb_init, _ = _tiled(xc, sample_weight, valid_rows, settings["init_tile"])
        centers = _seed(
            xb_init,
            wb_init,
            seed,
            n_valid,
            settings["n_clusters"],
            settings["n_restarts"],
            settings["init"],
            settings["n_local_trials"],
        )
    return _Prepared(xc, xb, wb, valid, xsq, mean, abs_tol, centers)


class _Prepared(NamedTuple):
    """The data as the Lloyd iterations see them (see :func:`_prepare`)."""

    xc: tf.Tensor  # (N, d) centred rows, zero on padding
    xb: tf.Tensor  # (n_tiles, T, d) the same in tiles
    wb: tf.Tensor  # (n_tiles, T) sample weights
    valid: tf.Tensor  # (n_tiles, T) bool
    xsq: tf.Tensor  # (n_tiles, T) squared norms
    mean: tf.Tensor  # (d,)
    tol: tf.Tensor  # absolute tolerance on the summed squared centre shift
    centers: tf.Tensor  # (R, k, d) initial centres, centred


def _finish(data: _Prepared, centers, conv: Convergence, n: int):
    """The result dict of :func:`fit_in_memory` from the final centres of every restart."""
    # Final E-step: labels consistent with the returned centres (scikit-learn does it too).
    xb, wb, valid, xsq = data.xb, data.wb, data.valid, data.xsq
    labels, dists, _, _ = _e_pass(xb, valid, wb, xsq, centers, with_sums=False)
    inertia_all = einsum("ntr,nt->r", tf.maximum(dists, tf.zeros((), xb.dtype)), wb)
    best = tf.argmin(inertia_all, output_type=tf.int32)
    # tf.gather, not x[best]: a strided slice with a computed index makes the TF-to-XLA bridge
    # evaluate that index's whole dependency graph at compile time (~15 s for 60k x 10 rows).
    best_centers = tf.gather(centers, best)
    best_labels = tf.gather(labels, best, axis=2)
    return {
        "centers": best_centers + data.mean,
        "labels": tf.reshape(best_labels, [-1])[:n],
        "inertia": _exact_inertia(xb, wb, best_labels, best_centers),
        "n_iter": tf.gather(conv.n_iter, best),
        "inertia_all": inertia_all,
        "n_iter_all": conv.n_iter,
        "converged_all": conv.done,
        "strict_all": conv.strict,
        "shift_all": conv.shift,
        "tol": data.tol,
    }


def fit_in_memory(
    x,
    sample_weight,
    n_valid,
    init_centers,
    seed,
    tol,
    max_iter,
    *,
    n_clusters: int,
    n_restarts: int,
    init: str,
    tile: int,
    init_tile: int,
    n_local_trials: int,
    chunk: int,
    deterministic_sums: bool,
):
    """Fit K-means with R restarts and pruned iterations (``_bounded``) in one compiled program.

    Args:
      x: (N, d) float data whose first ``n_valid`` rows are real and the rest padding (see
        ``_tiling.padded_size``: one program serves every N of a size bucket).
      sample_weight: (N,) weights of the rows, 0 on the padding.
      n_valid: int32 scalar, the number of real rows.
      init_centers: (R, k, d) centres when ``init == "array"``, else None.
      seed: (2,) int32 stateless seed. tol: scalar relative tolerance (as scikit-learn's ``tol``).
      max_iter: int32 scalar. tile, init_tile: rows per tile of the Lloyd and seeding steps.
      chunk: rows per matmul of the pruned iterations.
      deterministic_sums: per-centre sums by one-hot matmuls rather than float scatter-adds
        (the device profile's field of that name).

    Returns:
      A dict: centers (k, d), labels (N,) int32 (padding rows' labels are meaningless), inertia
      (scalar, weighted), n_iter (int32) of the best restart; inertia_all, n_iter_all and the
      :class:`Convergence` fields converged_all, strict_all, shift_all (R,) of every restart;
      tol, the absolute tolerance on the shift.
    """
    settings = dict(
        n_clusters=n_clusters,
        n_restarts=n_restarts,
        init=init,
        tile=tile,
        init_tile=init_tile,
        n_local_trials=n_local_trials,
    )
    data = _prepare(x, sample_weight, n_valid, init_centers, seed, tol, settings)
    centers, conv = lloyd_bounded(
        x,
        sample_weight,
        n_valid,
        data.mean,
        data.centers,
        data.tol,
        max_iter,
        chunk,
        deterministic_sums=deterministic_sums,
    )
    return _finish(data, centers, conv, x.shape[0])


def _start_plain(x, sample_weight, n_valid, init_centers, seed, tol, **settings):
    return _prepare(x, sample_weight, n_valid, init_centers, seed, tol, settings)


def _finish_plain(data, state, *, n: int):
    return _finish(data, state.centers, state.conv, n)


def _progress(state: LloydState):
    """(3,) int32: iterations run, whether every restart converged, whether blocked."""
    return tf.stack(
        [
            state.n_iter,
            tf.cast(tf.reduce_all(state.conv.done), tf.int32),
            tf.cast(state.blocked, tf.int32),
        ]
    )


def fit_plain(x, sample_weight, n_valid, init_centers, seed, tol, max_iter, **settings):
    """:func:`fit_in_memory` with plain Lloyd iterations, all restarts side by side: three
    compiled programs (start, a chunk of the device profile's ``kmeans_chunk_iterations``,
    finish), the host checking convergence between chunks, so that no compiled loop runs a trip
    count decided at run time (docs/accelerators.md); at most a chunk's length - 1 iterations
    run masked after the last restart converges. Arguments and result as
    :func:`fit_in_memory`; ``max_iter`` is a Python int here."""
    settings.pop("chunk")
    deterministic_sums = settings.pop("deterministic_sums")
    key = tuple(sorted(settings.items()))
    data = specialised(_start_plain, *key)(
        x, sample_weight, n_valid, init_centers, seed, tol, **settings
    )
    state = LloydState.start(data.centers, data.valid)
    tiles = (data.xb, data.valid, data.wb, data.xsq)
    max_iter_t = tf.constant(max_iter, tf.int32)
    length = device_profile().kmeans_chunk_iterations
    if deterministic_sums:
        chunk, relocating_step = lloyd_chunk_deterministic, lloyd_relocating_step_deterministic
    else:
        chunk, relocating_step = lloyd_chunk, lloyd_relocating_step
    while True:
        state = chunk(*tiles, state, data.tol, max_iter_t, length=length)
        # The one host sync per chunk.
        n_iter, finished, blocked = _progress(state).numpy().tolist()
        if blocked:
            state = relocating_step(*tiles, state, data.tol, max_iter_t)
            n_iter, finished, _ = _progress(state).numpy().tolist()
        if finished or n_iter >= max_iter:
            break
    return specialised(_finish_plain, x.shape[0])(data, state, n=x.shape[0])


@compiled
def assign_rows(x, centers, *, tile: int):
    """Nearest centre and exact squared distance to it for every row of ``x``.

    Args:
      x: (N, d); centers: (k, d), same float dtype.

    Returns:
      labels (N,) int32 and sq_dist (N,) in ``x``'s dtype.
    """
    # Distances do not change under a common shift; shifting by the centres' mean keeps the
    # matmul form accurate when the data sit far from the origin.
    shift = tf.reduce_mean(centers, axis=0)
    c = (centers - shift)[tf.newaxis]
    c_sq = tf.reduce_sum(tf.square(c), axis=-1)

    def fn(xt):
        xt = xt - shift
        lab, _ = assign(xt, c, c_sq)
        lab = lab[:, 0]
        sq = tf.reduce_sum(tf.square(xt - tf.gather(c[0], lab)), axis=1)
        return lab, sq

    spec = (tf.TensorSpec([tile], tf.int32), tf.TensorSpec([tile], x.dtype))
    return map_row_tiles(fn, x, tile, spec)


@compiled
def distances_to_centers(x, centers, *, tile: int):
    """(N, k) euclidean distances from the rows of ``x`` (N, d) to ``centers`` (k, d).

    Computed from the differences (one fused broadcast-and-reduce per tile), not the matmul
    form, so that small distances keep their digits: a centre is at distance exactly 0 from
    itself, as in scikit-learn's ``transform``.
    """

    def fn(xt):
        diff = xt[:, tf.newaxis, :] - centers[tf.newaxis, :, :]
        return tf.sqrt(tf.reduce_sum(tf.square(diff), axis=-1))

    return map_row_tiles(fn, x, tile, tf.TensorSpec([tile, centers.shape[0]], x.dtype))
