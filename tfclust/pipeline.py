"""The tutorial end to end: data -> autoencoder -> latents -> K-means -> t-SNE -> outputs.

:func:`run` executes the stages in order. Each stage's wall time and results go into
``<out>/metrics.json``, which is rewritten after every stage, so a crash leaves the outputs of
the stages that finished.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime
import glob
import hashlib
import io
import json
import logging
import math
import os
import platform
import time
import zipfile
from collections.abc import Callable
from typing import NamedTuple

import keras
import numpy as np
import tensorflow as tf

from tfclust import _files
from tfclust import autoencoder as ae_lib
from tfclust._validation import check_float, check_int
from tfclust.data import autoencoder_pipeline, load_dataset, load_images
from tfclust.data.images import check_load_options
from tfclust.projector import (
    CHECKPOINT_PREFIX,
    METADATA_FILENAME,
    PROJECTOR_FILENAME,
    SPRITE_FILENAME,
)

logger = logging.getLogger("tfclust.pipeline")

STAGES = (
    "load_data",
    "autoencoder",
    "encode",
    "kmeans",
    "clustering",
    "tsne",
    "perplexity_sweep",
    "figures",
    "projector",
    "export",
)
"""The stages of a run, in order; ``RunConfig.stop_after`` ends a run after one of them."""


@dataclasses.dataclass
class RunConfig:
    """Everything a run needs; the defaults reproduce the tutorial.

    Examples:
      >>> from tfclust.pipeline import RunConfig
      >>> config = RunConfig(epochs=5, perplexity=30.0)
      >>> config.n_clusters, config.epochs, config.runs("tsne")
      (10, 5, True)
      >>> RunConfig.quick().tsne_samples
      1000
      >>> RunConfig(stop_after="autoencoder").runs("kmeans")
      False
    """

    dataset: str = "auto"
    data_dir: str | None = None
    images: str | None = None
    """Your own images instead of ``dataset``: a folder of PNG/JPEG/BMP/GIF files or a
    ``.npy``/``.npz`` array file (:func:`tfclust.load_images`)."""
    image_size: tuple[int, int] | None = None
    """Resize ``images`` to (height, width); None keeps their size."""
    color_mode: str = "auto"
    """``images`` as "grayscale", "rgb" or "auto" (grey when every image is grey)."""
    on_error: str = "raise"
    """An image file that cannot be decoded: "raise" an error, or "skip" it with a warning."""
    out: str | None = None
    model: str | None = None
    epochs: int = 20
    min_steps: int = 400
    """Train for at least this many batches, adding epochs on small data sets (400: the
    tutorial's 20 epochs of the 5,000-digit sample)."""
    batch_size: int = 256
    latent_dim: int = 64
    seed: int = 0
    n_clusters: int | str = 10
    """Clusters, or "auto": the k in ``k_range`` with the highest silhouette score."""
    k_range: tuple[int, int] = (2, 15)
    """Smallest and largest k tried by ``n_clusters="auto"``."""
    n_init: int = 10
    kmeans_seed: int = 42
    clustering: str = "kmeans"
    """The clustering that colours the figures and fills metrics.json's ``clustering``: the
    tutorial's "kmeans" (default), "gmm" (a Gaussian mixture on the latents), "manifold" (a
    Gaussian mixture on a t-SNE map of all latents) or "dec" (IDEC, fine-tuning the
    autoencoder); the tutorial's K-means always runs (docs/clustering.md)."""
    tsne_samples: int | str = 5000
    """Embed ``tsne_samples`` latents (all if there are fewer), or "all": a data set's first,
    your own images drawn at random (a folder's files come sorted by class)."""
    perplexity: float = 15.0
    tsne_learning_rate: float = 100.0
    tsne_max_iter: int = 1000
    tsne_seed: int = 0
    tsne_method: str | None = None
    sweep_perplexities: tuple[float, ...] = (5, 10, 15, 25, 50, 100)
    sweep_samples: int = 5000
    """The perplexity sweep embeds ``sweep_samples`` latents (at most all), chosen as
    ``tsne_samples``' are."""
    color_by: str = "auto"
    """Colour the maps by "label", by K-means "cluster", or "auto" (by label when the images
    have labels)."""
    export: bool = False
    map_epochs: int | str = "auto"
    """Epochs of the export's map network (a ParametricTSNE distilled from the t-SNE), or
    "auto" (its default)."""
    stop_after: str | None = None
    resume: bool = False
    """Continue the run in ``out``: reuse each stage that finished there with the same settings
    and inputs, recompute the rest."""
    overwrite: bool = False
    """Clear ``out`` (a tfclust run folder) first."""
    verbose: int = 2
    """Keras' output while training: 0 silent, 1 progress bar, 2 one line per epoch."""

    @classmethod
    def quick(cls, **overrides) -> RunConfig:
        """A small run for smoke tests: about a minute on two CPU cores."""
        settings = dict(
            epochs=6,
            min_steps=120,
            n_init=3,
            tsne_samples=1000,
            tsne_max_iter=300,
            sweep_perplexities=(5, 30),
            sweep_samples=500,
            map_epochs=20,
        )
        settings.update(overrides)
        return cls(**settings)

    def validate(self) -> None:
        """Check every setting before any long work starts (raises ``ValueError``)."""
        sources = [name for name in ("images", "data_dir") if getattr(self, name) is not None]
        if len(sources) > 1 or (self.images is not None and self.dataset != "auto"):
            raise ValueError("images excludes dataset and data_dir: name one source of images")
        check_load_options(self.image_size, self.color_mode, self.on_error)
        check_int(self.epochs, name="epochs", low=1)
        check_int(self.min_steps, name="min_steps", low=0)
        check_int(self.batch_size, name="batch_size", low=1)
        check_int(self.latent_dim, name="latent_dim", low=1)
        check_int(self.seed, name="seed", low=0)
        if self.n_clusters == "auto":
            low, high = self.k_range
            check_int(low, name="k_range", low=2)
            check_int(high, name="k_range", low=low)
        else:
            check_int(self.n_clusters, name="n_clusters", low=1)
        check_int(self.n_init, name="n_init", low=1)
        check_int(self.kmeans_seed, name="kmeans_seed", low=0)
        if self.clustering not in CLUSTERING_METHODS:
            raise ValueError(
                f"clustering must be one of {CLUSTERING_METHODS}, got {self.clustering!r}"
            )
        check_float(self.perplexity, name="perplexity", low=0, low_inclusive=False)
        if self.tsne_samples != "all":
            self._check_tsne_size(check_int(self.tsne_samples, name="tsne_samples", low=0))
        check_float(self.tsne_learning_rate, name="tsne_learning_rate", low=0, low_inclusive=False)
        check_int(self.tsne_max_iter, name="tsne_max_iter", low=250)
        check_int(self.tsne_seed, name="tsne_seed", low=0)
        for p in self.sweep_perplexities:
            check_float(p, name="sweep_perplexities", low=0, low_inclusive=False)
        sweep_n = check_int(self.sweep_samples, name="sweep_samples", low=0)
        too_large = [p for p in self.sweep_perplexities if sweep_n and p >= sweep_n]
        if too_large:
            raise ValueError(
                f"sweep perplexities {too_large} must be below sweep_samples ({sweep_n})"
            )
        if self.map_epochs != "auto":
            check_int(self.map_epochs, name="map_epochs", low=1)
        if self.color_by not in COLOR_BY:
            raise ValueError(f"color_by must be one of {COLOR_BY}, got {self.color_by!r}")
        check_int(self.verbose, name="verbose", low=0, high=2)
        if self.model is not None and not os.path.isfile(self.model):
            raise ValueError(f"--model {self.model}: no such file")
        if self.stop_after is not None and self.stop_after not in STAGES:
            raise ValueError(f"stop_after must be one of {STAGES}, got {self.stop_after!r}")
        if self.resume and self.overwrite:
            raise ValueError("resume and overwrite exclude each other")

    def validate_sizes(self, n_samples: int) -> None:
        """Checks that need the data's size: done right after loading, before training.

        ``tsne_samples`` and ``sweep_samples`` are upper bounds (a small data set is embedded
        whole), so only what cannot shrink with the data is an error."""
        if self.runs("kmeans"):
            if self.n_clusters == "auto" and self.k_range[0] >= n_samples:
                raise ValueError(
                    f"k_range starts at {self.k_range[0]} but there are only {n_samples} images"
                )
            if self.n_clusters != "auto" and self.n_clusters > n_samples:
                raise ValueError(f"n_clusters={self.n_clusters} > {n_samples} images")
        if self.runs("tsne"):
            self._check_tsne_size(self.tsne_n(n_samples))
        if self.runs("perplexity_sweep"):
            dropped = set(self.sweep_perplexities) - set(self.sweep_perplexities_for(n_samples))
            if dropped:
                logger.warning(
                    "perplexity sweep: leaving out perplexities %s, which need more than the "
                    "%d images there are",
                    sorted(dropped),
                    n_samples,
                )

    def _check_tsne_size(self, n: int) -> None:
        """The main t-SNE embeds ``n`` points: none, or enough for the perplexity and metrics."""
        if 0 < n < MIN_TSNE_SAMPLES:
            raise ValueError(
                f"the t-SNE needs at least {MIN_TSNE_SAMPLES} points (its metrics use "
                f"{METRIC_NEIGHBORS} neighbours), got {n}; set tsne_samples to 0 "
                "(--tsne-samples 0) to leave it out"
            )
        if n and self.perplexity >= n:
            raise ValueError(
                f"perplexity={self.perplexity} must be below the number of t-SNE samples ({n})"
            )

    def runs(self, stage: str) -> bool:
        """Whether ``stage`` is part of this run (it is unless ``stop_after`` comes earlier, or
        it is the export and ``export`` is False)."""
        if stage == "export" and not self.export:
            return False
        if self.stop_after is None:
            return True
        return STAGES.index(stage) <= STAGES.index(self.stop_after)

    def tsne_n(self, n_samples: int) -> int:
        """How many of the first images the main t-SNE embeds: ``tsne_samples``, at most all."""
        return n_samples if self.tsne_samples == "all" else min(int(self.tsne_samples), n_samples)

    def sweep_n(self, n_samples: int) -> int:
        """How many of the first images the perplexity sweep embeds."""
        return min(self.sweep_samples, n_samples)

    def sweep_perplexities_for(self, n_samples: int) -> tuple[float, ...]:
        """The sweep's perplexities that its points allow (each must be below their number)."""
        n = self.sweep_n(n_samples)
        return tuple(p for p in self.sweep_perplexities if p < n)


CLUSTERING_METHODS = ("kmeans", "gmm", "manifold", "dec")
"""The values of ``RunConfig.clustering``."""

CLUSTERING_NAMES = {"kmeans": "K-means", "gmm": "GMM", "manifold": "manifold", "dec": "IDEC"}
"""How the figures and the summary name each clustering method."""

COLOR_BY = ("auto", "label", "cluster")
"""What colours the points of the maps (``RunConfig.color_by``)."""

METRICS = "metrics.json"
"""Every run folder's record of its settings, stages and results."""

METRIC_NEIGHBORS = 10
"""k of the t-SNE quality metrics (trustworthiness and k-NN accuracy)."""

MIN_TSNE_SAMPLES = 2 * METRIC_NEIGHBORS + 1
"""The fewest t-SNE samples the metrics allow (trustworthiness needs k < n / 2)."""


def default_out_dir() -> str:
    """A new timestamped folder under ``runs/``.

    Examples:
      >>> import os
      >>> from tfclust.pipeline import default_out_dir
      >>> os.path.dirname(default_out_dir())
      'runs'
    """
    return os.path.join("runs", datetime.datetime.now().strftime("%Y%m%d-%H%M%S"))


def prepare_out_dir(
    path: str, *, marker: str, resume: bool = False, overwrite: bool = False
) -> str:
    """Create the output folder ``path`` or check that it may be used; returns ``path``.

    A folder that exists and is not empty is refused, unless ``overwrite`` (its contents are
    removed first) or ``resume`` (it is kept); both need ``marker``, the file every tfclust
    output folder of this kind holds (``metrics.json`` for runs), so that no other folder is
    ever cleared.

    Raises:
      ValueError: an empty path, a file, a non-empty folder without ``resume``/``overwrite``,
        a folder without ``marker``, or a folder that cannot be written to.

    Examples:
      >>> import os, tempfile
      >>> from tfclust.pipeline import prepare_out_dir
      >>> path = os.path.join(tempfile.mkdtemp(), "run")
      >>> prepare_out_dir(path, marker="metrics.json") == path, os.listdir(path)
      (True, [])
    """
    if not isinstance(path, str | os.PathLike) or not os.fspath(path):
        raise ValueError("the output folder must be a non-empty path")
    path = os.fspath(path)
    if os.path.exists(path) and not os.path.isdir(path):
        raise ValueError(f"output folder {path} is a file")
    existing = os.listdir(path) if os.path.isdir(path) else []
    if existing and not (resume or overwrite):
        flags = (
            "--resume to continue its run or --overwrite" if marker == METRICS else "--overwrite"
        )
        raise ValueError(
            f"output folder {path} exists and is not empty; pass {flags} to replace it, "
            "or choose another folder"
        )
    if existing and marker not in existing:
        raise ValueError(
            f"{path} has no {marker}, so it is not a tfclust output folder; it is left alone"
        )
    try:
        if existing and overwrite:
            for name in existing:
                _files.remove(os.path.join(path, name))
        os.makedirs(path, exist_ok=True)
        _files.remove_partials(path)
        probe = os.path.join(path, ".write-test")
        with open(probe, "w"):
            pass
        os.remove(probe)
    except OSError as err:
        raise ValueError(f"output folder {path} is not writable ({err.strerror})") from err
    return path


class Stage(NamedTuple):
    """One stage of a run: what it computes, what it reads back on ``--resume``, and what its
    result depends on (``docs/run_folders.md``).

    Examples:
      >>> from tfclust.pipeline import STAGE_SPECS, Stage
      >>> Stage._fields
      ('run', 'restore', 'artefacts', 'inputs', 'settings', 'record')
      >>> STAGE_SPECS["kmeans"].inputs
      ('encode',)
    """

    run: Callable[[Run, RunConfig, dict], None]
    """Compute the stage, write its artefacts, add its results to ``state`` and the metrics."""
    restore: Callable[[Run, RunConfig, dict], None] | None
    """Put the results of an earlier run's stage into ``state`` from its artefacts (raises
    ``OSError``/``ValueError`` if they are missing or damaged); None: always rerun."""
    artefacts: tuple[str, ...]
    """Files and folders the stage writes, relative to the run folder."""
    inputs: tuple[str, ...]
    """Stages whose results this one uses."""
    settings: Callable[[RunConfig], dict]
    """The settings the stage's result depends on."""
    record: str
    """The stage's key in ``metrics.json``."""


class Run:
    """A run folder: the metrics, written to ``metrics.json`` atomically, and each stage's
    fingerprint, a hash of its settings and of its inputs' fingerprints.

    Examples:
      >>> import os, tempfile
      >>> from tfclust.pipeline import Run, RunConfig
      >>> folder = tempfile.mkdtemp()
      >>> record = Run(folder, RunConfig(epochs=1))
      >>> record.metrics["config"]["epochs"], os.path.basename(record.path("metrics.json"))
      (1, 'metrics.json')
      >>> record.write()
      >>> os.listdir(folder)
      ['metrics.json']
    """

    def __init__(self, out: str, config: RunConfig, earlier: dict | None = None):
        self.out = out
        self.earlier = earlier or {}
        self.fingerprints: dict[str, str] = {}
        self.metrics = {
            "out": out,
            "config": dataclasses.asdict(config),
            "environment": {
                "tensorflow": tf.__version__,
                "python": platform.python_version(),
                "devices": [d.name for d in tf.config.list_logical_devices()],
                "cpu_count": os.cpu_count(),
            },
            "stages": {},
        }

    def path(self, name: str) -> str:
        return os.path.join(self.out, name)

    def write(self) -> None:
        path = self.path(METRICS)
        try:
            _files.save_json(path, self.metrics)
        except OSError as err:
            raise OSError(err.errno, f"cannot write {path}: {err.strerror or err}") from err

    def fingerprint(self, name: str, config: RunConfig, extra=None) -> str | None:
        """The stage's fingerprint, or None if an input has none (it did not run)."""
        stage = STAGE_SPECS[name]
        inputs = {i: self.fingerprints.get(i) for i in stage.inputs}
        if None in inputs.values():
            return None
        content = {"settings": stage.settings(config), "inputs": inputs, "extra": extra}
        text = json.dumps(content, sort_keys=True, default=_files.json_default)
        return hashlib.sha256(text.encode()).hexdigest()

    def earlier_record(self, name: str, fingerprint: str | None) -> dict | None:
        """The earlier run's record of stage ``name`` if it finished with this fingerprint."""
        record = self.earlier.get("stages", {}).get(name)
        if fingerprint and record and record.get("ok") and record.get("fingerprint") == fingerprint:
            return record
        return None

    def keep_earlier(self, name: str, record: dict) -> None:
        """Take the earlier run's record and results of stage ``name``."""
        self.metrics["stages"][name] = {**record, "resumed": True}
        key = STAGE_SPECS[name].record
        if key in self.earlier:
            self.metrics[key] = self.earlier[key]

    def clear(self, name: str) -> None:
        """Remove stage ``name``'s artefacts and results (metrics first, so that a kill in
        between never leaves metrics describing files that are gone)."""
        self.metrics["stages"].pop(name, None)
        self.metrics.pop(STAGE_SPECS[name].record, None)
        self.write()
        for artefact in STAGE_SPECS[name].artefacts:
            _files.remove(self.path(artefact))

    def execute(self, name: str, config: RunConfig, state: dict) -> None:
        """Run stage ``name`` and record its time, outcome and fingerprint."""
        self.clear(name)
        self.metrics["stages"][name] = {"ok": False, "running": True}
        self.write()
        logger.info("stage %s ...", name)
        start = time.perf_counter()
        record = {}
        try:
            STAGE_SPECS[name].run(self, config, state)
        except OSError as err:
            record = {"ok": False, "error": f"{type(err).__name__}: {err}"}
            if err.errno is None or err.filename:
                raise
            # a full disk or a permission met by a writer that did not name its file
            raise OSError(err.errno, f"stage {name}: {err.strerror} ({self.out})") from err
        except BaseException as err:
            record = {"ok": False, "error": f"{type(err).__name__}: {err}"}
            raise
        else:
            extra = state.pop("fingerprint_extra", None)
            record = {"ok": True, "fingerprint": self.fingerprint(name, config, extra)}
            self.fingerprints[name] = record["fingerprint"]
        finally:
            seconds = time.perf_counter() - start
            self.metrics["stages"][name] = {"seconds": round(seconds, 3), **record}
            try:
                self.write()
            except OSError as err:  # a full disk: the error that caused it is the one to report
                logger.warning("could not update %s: %s", self.path(METRICS), err)
            logger.info(
                "stage %s %s in %.1f s", name, "done" if record["ok"] else "FAILED", seconds
            )


def _read_earlier_metrics(out: str) -> dict:
    """The metrics of the run in ``out`` (empty if there is none)."""
    path = os.path.join(out, METRICS)
    if not os.path.isfile(path):
        return {}
    try:
        with open(path) as f:
            metrics = json.load(f)
    except (OSError, ValueError) as err:
        raise ValueError(f"cannot resume: {path} is unreadable ({err})") from err
    if not isinstance(metrics, dict) or not isinstance(metrics.get("stages"), dict):
        raise ValueError(f"cannot resume: {path} is not a tfclust run's metrics")
    return metrics


def run(config: RunConfig | None = None, *, images=None, labels=None, **settings) -> dict:
    """Run the tutorial's stages; returns the metrics written to ``<out>/metrics.json``.

    ``tfclust.run(images="photos/")`` clusters a folder of images end to end, as
    ``tfclust run --images photos/`` does; ``tfclust.run(images=x, labels=y)`` clusters arrays.

    With ``resume``, each stage that finished in the folder's earlier run with the same
    settings and inputs is read back from its files instead of recomputed; every stage after
    the first that differs is recomputed, and a stage's stale files are removed before it
    runs.

    Args:
      config: every setting (:class:`RunConfig`); None (the default) builds one from
        ``settings``.
      images: your own images instead of a named data set: a folder of image files or a
        ``.npy``/``.npz`` path (``RunConfig.images``), or the images themselves, a numpy array
        (N, H, W) or (N, H, W, C), uint8 (0..255) or float (0..1). None (the default): the
        config's images or data set.
      labels: class ids (N,) of ``images``, whole numbers; None (the default) infers them
        from class sub-folders or an ``.npz``, or runs without labels.
      **settings: :class:`RunConfig` fields, e.g. ``n_clusters="auto"``, ``out="runs/mine"``,
        and ``quick=True`` for :meth:`RunConfig.quick`'s settings; only without ``config``.

    Raises:
      ValueError: a bad setting, or data that do not suit it (checked before training).
      FileNotFoundError: images or a data set that cannot be found
        (:class:`tfclust.data.DataUnavailableError`).

    Examples:
      >>> import os, tempfile
      >>> import numpy as np
      >>> import tfclust
      >>> folder = tempfile.mkdtemp()
      >>> images = np.random.default_rng(0).integers(0, 256, (64, 12, 12, 3), dtype=np.uint8)
      >>> metrics = tfclust.run(images=images, out=os.path.join(folder, "run"), epochs=1,
      ...                       min_steps=0, batch_size=32, stop_after="autoencoder", verbose=0)
      >>> metrics["data"]["image_shape"], len(metrics["autoencoder"]["loss_per_epoch"])
      ([12, 12, 3], 1)
      >>> sorted(os.listdir(metrics["out"]))  # doctest: +ELLIPSIS
      [...'autoencoder.keras', ...'metrics.json'...]
    """
    if config is None:
        quick = settings.pop("quick", False)
        config = RunConfig.quick(**settings) if quick else RunConfig(**settings)
    elif settings:
        raise TypeError(f"pass settings in config or as keywords, not both: {sorted(settings)}")
    if not isinstance(config, RunConfig):
        raise TypeError(f"config must be a RunConfig, got {type(config).__name__}")
    given = None
    if isinstance(images, str | os.PathLike):
        config = dataclasses.replace(config, images=os.fspath(images))
    if images is not None and not isinstance(images, str | os.PathLike):
        if config.images is not None:
            raise ValueError("images given twice: as an array and as config.images")
        if config.dataset != "auto" or config.data_dir is not None:
            raise ValueError("images excludes dataset and data_dir: name one source of images")
        given = (images, "inferred" if labels is None else labels)
    elif labels is not None:
        if images is None and config.images is None:
            raise ValueError("labels need images (a path or an array) to go with")
        given = (config.images, labels)
    config.validate()
    out = prepare_out_dir(
        default_out_dir() if config.out is None else config.out,
        marker=METRICS,
        resume=config.resume,
        overwrite=config.overwrite,
    )
    job = Run(out, config, _read_earlier_metrics(out) if config.resume else None)
    job.write()
    logger.info("writing outputs to %s", out)
    state = {"given": given}
    for name, stage in STAGE_SPECS.items():
        if not config.runs(name):  # after stop_after, or export=False
            _keep_if_current(job, name, config)
            continue
        record = job.earlier_record(name, job.fingerprint(name, config))
        if record is not None and stage.restore is not None:
            try:
                stage.restore(job, config, state)
            except (OSError, ValueError) as err:
                logger.warning("stage %s: cannot reuse the earlier result (%s)", name, err)
            else:
                logger.info("stage %s: reusing the earlier run's result", name)
                job.keep_earlier(name, record)
                job.fingerprints[name] = record["fingerprint"]
                continue
        job.execute(name, config, state)
    job.write()
    return job.metrics


def _keep_if_current(job: Run, name: str, config: RunConfig) -> None:
    """For a stage this run skips: keep the earlier run's result if it is still current (same
    settings and inputs), else remove it."""
    fingerprint = job.fingerprint(name, config)
    record = job.earlier_record(name, fingerprint)
    if record is not None:
        job.keep_earlier(name, record)
        job.fingerprints[name] = fingerprint
    elif job.earlier.get("stages", {}).get(name) is not None or any(
        glob.glob(job.path(a)) for a in STAGE_SPECS[name].artefacts
    ):
        job.clear(name)


def _load_data(job: Run, config: RunConfig, state: dict) -> None:
    given = state.pop("given", None)
    if given is not None or config.images is not None:
        data = load_images(
            config.images if given is None else given[0],
            image_size=config.image_size,
            color_mode=config.color_mode,
            labels="inferred" if given is None else given[1],
            on_error=config.on_error,
        )
        images, labels = data.images, data.labels
        job.metrics["data"] = {
            "name": os.path.basename(os.path.normpath(config.images))
            if config.images is not None
            else "images",
            "source": data.source,
            "n_samples": len(images),
            "image_shape": list(images.shape[1:]),
            "labelled": labels is not None,
            "class_names": data.class_names,
        }
        state.update(class_names=data.class_names, file_names=data.file_names)
    else:
        loaded = load_dataset(config.dataset, "train", config.data_dir)
        images, labels = loaded.images[..., np.newaxis], loaded.labels
        job.metrics["data"] = {
            **loaded.describe(),
            "image_shape": list(images.shape[1:]),
            "labelled": True,
        }
        state.update(class_names=None, file_names=None)
    config.validate_sizes(len(images))
    if config.color_by == "label" and labels is None:
        raise ValueError("color_by='label' but the images have no labels; use 'cluster'")
    state["images"], state["labels"] = images, labels
    # a data set's first images, as the tutorial's; a folder's are sorted by class: draw them
    own = config.images is not None or given is not None
    rng = np.random.default_rng(config.tsne_seed)
    state["embedding_order"] = rng.permutation(len(images)) if own else np.arange(len(images))
    digest = hashlib.sha256(images.tobytes())
    digest.update(b"" if labels is None else labels.tobytes())
    digest.update(json.dumps([state["class_names"], state["file_names"]]).encode())
    state["fingerprint_extra"] = digest.hexdigest()


def _embedded_rows(state: dict, n: int) -> np.ndarray:
    """The rows (sorted) of the ``n`` images that the t-SNE, the sweep and the projector take: a
    data set's first ``n``, or ``n`` of your own images drawn at random (seeded by
    ``tsne_seed``)."""
    return np.sort(state["embedding_order"][:n])


def _training_epochs(config: RunConfig, n_samples: int) -> int:
    """``config.epochs``, or more on a small data set: enough for ``config.min_steps`` batches."""
    steps_per_epoch = math.ceil(n_samples / config.batch_size)
    return max(config.epochs, math.ceil(config.min_steps / steps_per_epoch))


def _autoencoder(job: Run, config: RunConfig, state: dict) -> None:
    if config.model:
        _restore_autoencoder(job, config, state)
        job.metrics["autoencoder"] = {"loaded_from": config.model}
        return
    images = state["images"]
    autoencoder, encoder, decoder = ae_lib.build_autoencoder(
        config.latent_dim, image_shape=images.shape[1:], seed=config.seed
    )
    epochs = _training_epochs(config, len(images))
    if epochs > config.epochs:
        logger.info(
            "training %d epochs instead of %d: %d images give %d batches an epoch, and "
            "min_steps=%d",
            epochs,
            config.epochs,
            len(images),
            math.ceil(len(images) / config.batch_size),
            config.min_steps,
        )
    ds = autoencoder_pipeline(images, batch_size=config.batch_size, seed=config.seed)
    tensorboard = keras.callbacks.TensorBoard(log_dir=job.path("tensorboard"))
    history = ae_lib.train_autoencoder(
        autoencoder, ds, epochs=epochs, verbose=config.verbose, callbacks=[tensorboard]
    )
    losses = [float(v) for v in history.history["loss"]]
    path = ae_lib.save_autoencoder(autoencoder, job.path("autoencoder.keras"))
    job.metrics["autoencoder"] = {
        "image_shape": list(images.shape[1:]),
        "parameters": int(autoencoder.count_params()),
        "epochs": epochs,
        "steps": epochs * math.ceil(len(images) / config.batch_size),
        "loss_per_epoch": losses,
        "final_loss": losses[-1],
        "saved_to": path,
    }
    state.update(autoencoder=autoencoder, encoder=encoder, decoder=decoder)


def _restore_autoencoder(job: Run, config: RunConfig, state: dict) -> None:
    path = config.model or job.path("autoencoder.keras")
    autoencoder, encoder, decoder = ae_lib.load_autoencoder(path)
    expected = (None, *state["images"].shape[1:])
    if tuple(autoencoder.input_shape) != expected:
        raise ValueError(
            f"--model {path} takes input {autoencoder.input_shape}, expected {expected} "
            "(the images' shape)"
        )
    state.update(autoencoder=autoencoder, encoder=encoder, decoder=decoder)


def _encode(job: Run, config: RunConfig, state: dict) -> None:
    latents = ae_lib.encode(state["encoder"], state["images"])
    _files.save_npy(job.path("latents.npy"), latents)
    if state["labels"] is not None:
        _files.save_npy(job.path("labels.npy"), state["labels"])
    if state["file_names"] is not None:
        _files.save_text(job.path(FILE_NAMES), "".join(f"{name}\n" for name in state["file_names"]))
    job.metrics["latents"] = {"shape": list(latents.shape), "file": job.path("latents.npy")}
    state["latents"] = latents


def _restore_latents(job: Run, config: RunConfig, state: dict) -> None:
    latents = _files.load_npy(job.path("latents.npy"), "latents")
    if latents.shape[0] != len(state["images"]):
        raise ValueError(f"{job.path('latents.npy')} has {latents.shape[0]} rows")
    state["latents"] = latents


TSNE_ROWS = "tsne_rows.npy"
"""The image (row) of each point of the t-SNE embedding, int64."""
TSNE_MODEL = "tsne.npz"
"""The run's fitted TSNE (tfclust.persistence): ``transform`` places new latents on its map."""
PARAMETRIC_MAP = "parametric_tsne.npz"
"""The export's map network, a saved ParametricTSNE."""
FILE_NAMES = "file_names.txt"
"""A run's record of each image's file (one path per line, relative to ``--images``)."""
CLUSTERING_LABELS = "clustering_labels.npy"
"""The chosen clustering method's cluster of each image, int32."""
CLUSTERING_MODEL = "clustering.npz"
"""The chosen clustering method's fitted estimator (tfclust.persistence), unless "kmeans"."""
ASSIGNMENTS = "clusters.csv"
"""Each image's K-means cluster, with its file and class when it has them."""


SILHOUETTE_SAMPLES = 5000
"""Latents the silhouette score is computed on (a random sample; it costs O(n^2))."""


def _kmeans(job: Run, config: RunConfig, state: dict) -> None:
    from tfclust import metrics
    from tfclust.kmeans import KMeans, choose_n_clusters

    latents, labels = state["latents"], state["labels"]
    record = {"n_clusters": config.n_clusters, "n_init": config.n_init, "seed": config.kmeans_seed}
    if config.n_clusters == "auto":
        low, high = config.k_range[0], min(config.k_range[1], len(latents) - 1)
        choice = choose_n_clusters(
            latents,
            range(low, high + 1),
            n_init=config.n_init,
            random_state=config.kmeans_seed,
            sample_size=SILHOUETTE_SAMPLES,
        )
        chosen = choice.ks.index(choice.n_clusters)
        centers, clusters = choice.cluster_centers, choice.labels
        record.update(
            n_clusters=choice.n_clusters,
            inertia=choice.inertia[chosen],
            n_iter=choice.n_iter,
            silhouette=choice.silhouette[chosen],
            choose_k={
                "ks": choice.ks,
                "inertia": choice.inertia,
                "silhouette": choice.silhouette,
                "rule": choice.rule,
                "chosen": choice.n_clusters,
            },
        )
        logger.info("n_clusters=auto: k=%d, %s", choice.n_clusters, choice.rule)
    else:
        km = KMeans(
            n_clusters=config.n_clusters, n_init=config.n_init, random_state=config.kmeans_seed
        ).fit(latents)
        centers, clusters = km.cluster_centers_, km.labels_
        record.update(inertia=float(km.inertia_), n_iter=int(km.n_iter_))
    _files.save_npy(job.path("kmeans_centers.npy"), centers)
    _files.save_npy(job.path("kmeans_labels.npy"), clusters)
    _files.save_text(job.path(ASSIGNMENTS), _assignments_csv(state, clusters))
    k = record["n_clusters"]
    if 1 < k < min(len(latents), SILHOUETTE_SAMPLES):
        if "silhouette" not in record:  # the same sample as choose_n_clusters'
            record["silhouette"] = metrics.silhouette_score(
                latents, clusters, sample_size=SILHOUETTE_SAMPLES, random_state=config.kmeans_seed
            )
        record["silhouette_samples"] = min(SILHOUETTE_SAMPLES, len(latents))
        record["calinski_harabasz"] = metrics.calinski_harabasz_score(latents, clusters)
        record["davies_bouldin"] = metrics.davies_bouldin_score(latents, clusters)
    record.update(_label_metrics(labels, clusters))
    job.metrics["kmeans"] = record
    state["kmeans_centers"], state["kmeans_labels"] = centers, clusters


NO_LABELS = "none: the images have no labels"
"""What metrics.json says in place of the label metrics of unlabelled images."""


def _label_metrics(labels: np.ndarray | None, clusters: np.ndarray) -> dict:
    """Accuracy, NMI and ARI of ``clusters`` against the images' labels, or the note that
    there are none."""
    from tfclust import metrics

    if labels is None:
        return {"label_metrics": NO_LABELS}
    return {
        "accuracy": metrics.cluster_accuracy(labels, clusters),
        "nmi": metrics.normalized_mutual_info(labels, clusters),
        "ari": metrics.adjusted_rand_index(labels, clusters),
    }


def _assignments_csv(state: dict, clusters: np.ndarray) -> str:
    """``clusters.csv``: index, file and class when the images have them, cluster."""
    columns = {"index": range(len(clusters))}
    if state["file_names"] is not None:
        columns["file"] = state["file_names"]
    if state["labels"] is not None:
        columns["label"] = state["labels"]
        if state["class_names"] is not None:
            columns["class"] = [state["class_names"][y] for y in state["labels"]]
    columns["cluster"] = clusters
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(zip(*columns.values(), strict=True))
    return text.getvalue()


def _restore_kmeans(job: Run, config: RunConfig, state: dict) -> None:
    centers = _files.load_npy(job.path("kmeans_centers.npy"), "K-means centres")
    labels = _files.load_npy(job.path("kmeans_labels.npy"), "K-means labels")
    n_clusters = config.n_clusters
    if n_clusters == "auto":
        n_clusters = job.earlier.get("kmeans", {}).get("n_clusters")
    if centers.shape[0] != n_clusters or labels.shape != (len(state["latents"]),):
        raise ValueError("the saved K-means result does not match the run")
    _check_files([job.path(ASSIGNMENTS)])
    state["kmeans_centers"], state["kmeans_labels"] = centers, labels


def _clustering(job: Run, config: RunConfig, state: dict) -> None:
    """The chosen clustering method's clusters (the K-means' for "kmeans"), saved with its
    model, and its record: method, k, label metrics and seconds."""

    method, latents, labels = config.clustering, state["latents"], state["labels"]
    k = len(state["kmeans_centers"])
    record = {"method": method, "n_clusters": k}
    start = time.perf_counter()
    if method == "kmeans":
        clusters = state["kmeans_labels"]
        record["seconds"] = job.metrics["stages"]["kmeans"]["seconds"]
    else:
        model = _clustering_model(config, k)
        if method == "dec":
            clusters = model.fit(state["images"], autoencoder=state["autoencoder"]).labels_
        else:
            clusters = model.fit_predict(latents)
        clusters = np.asarray(clusters, dtype=np.int32)
        model.save(job.path(CLUSTERING_MODEL))
        record["model"] = CLUSTERING_MODEL
        record["seconds"] = round(time.perf_counter() - start, 3)
    _files.save_npy(job.path(CLUSTERING_LABELS), clusters)
    record.update(_label_metrics(labels, clusters))
    job.metrics["clustering"] = record
    state["clusters"] = clusters


def _clustering_model(config: RunConfig, n_clusters: int):
    """The unfitted estimator of ``config.clustering`` (not "kmeans"), seeded by ``seed``."""
    if config.clustering == "gmm":
        from tfclust.mixture import GaussianMixture

        return GaussianMixture(n_clusters, random_state=config.seed)
    if config.clustering == "manifold":
        from tfclust.manifold_clustering import ManifoldClustering

        return ManifoldClustering(n_clusters, random_state=config.seed)
    from tfclust.deep import DEC

    return DEC(n_clusters, random_state=config.seed)


def _restore_clustering(job: Run, config: RunConfig, state: dict) -> None:
    clusters = _files.load_npy(job.path(CLUSTERING_LABELS), "clusters")
    if clusters.shape != (len(state["latents"]),):
        raise ValueError("the saved clusters do not match the run")
    if config.clustering != "kmeans":
        _check_files([job.path(CLUSTERING_MODEL)])
    state["clusters"] = clusters


def _kmeans_settings(config: RunConfig) -> dict:
    settings = _settings("n_clusters", "n_init", "kmeans_seed")(config)
    if config.n_clusters == "auto":
        settings["k_range"] = list(config.k_range)
    return settings


def _tsne_settings(config: RunConfig, n: int, perplexity: float) -> dict:
    """What a t-SNE fit of the first ``n`` latents depends on, besides the latents."""
    return {
        "n_samples": n,
        "perplexity": float(perplexity),
        "learning_rate": config.tsne_learning_rate,
        "max_iter": config.tsne_max_iter,
        "seed": config.tsne_seed,
        "method": config.tsne_method,
    }


def _embed(latents, perplexity: float, config: RunConfig):
    from tfclust.tsne import TSNE

    kwargs = {"method": config.tsne_method} if config.tsne_method else {}
    tsne = TSNE(
        n_components=2,
        perplexity=perplexity,
        learning_rate=config.tsne_learning_rate,
        max_iter=config.tsne_max_iter,
        random_state=config.tsne_seed,
        **kwargs,
    )
    return tsne, tsne.fit_transform(latents)


def _tsne(job: Run, config: RunConfig, state: dict) -> None:
    from tfclust.metrics import knn_accuracy, trustworthiness

    n = config.tsne_n(len(state["latents"]))
    if n == 0:
        return
    rows = _embedded_rows(state, n)
    latents, labels = state["latents"][rows], state["labels"]
    tsne, embedding = _embed(latents, config.perplexity, config)
    _files.save_npy(job.path("tsne_embedding.npy"), embedding)
    tsne.save(job.path(TSNE_MODEL))  # tfclust.load_estimator(...).transform(new latents)
    _files.save_npy(job.path(TSNE_ROWS), rows)
    if n == len(state["latents"]):
        which = "all images"
    elif np.array_equal(rows, np.arange(n)):
        which = "the first images"
    else:
        which = f"images drawn at random ({TSNE_ROWS})"
    job.metrics["tsne"] = {
        "n_samples": n,
        "rows": which,
        "perplexity": config.perplexity,
        "learning_rate": config.tsne_learning_rate,
        "seed": config.tsne_seed,
        "method": tsne.method,
        "kl_divergence": float(tsne.kl_divergence_),
        "n_iter": int(tsne.n_iter_),
        "trustworthiness_10": trustworthiness(latents, embedding, n_neighbors=METRIC_NEIGHBORS),
    }
    if labels is None:
        job.metrics["tsne"]["label_metrics"] = NO_LABELS
    else:
        job.metrics["tsne"]["knn_accuracy_10"] = knn_accuracy(
            embedding, labels[rows], n_neighbors=METRIC_NEIGHBORS
        )
    state["embedding"] = embedding
    state["tsne_settings"] = _tsne_settings(config, n, config.perplexity)


def _restore_tsne(job: Run, config: RunConfig, state: dict) -> None:
    n = config.tsne_n(len(state["latents"]))
    if n == 0:
        return
    embedding = _files.load_npy(job.path("tsne_embedding.npy"), "t-SNE embedding")
    if embedding.shape != (n, 2):
        raise ValueError(f"the saved t-SNE embedding has shape {embedding.shape}")
    state["embedding"] = embedding
    state["tsne_settings"] = _tsne_settings(config, n, config.perplexity)


def _perplexity_sweep(job: Run, config: RunConfig, state: dict) -> None:
    """t-SNE of the first ``sweep_samples`` latents at each sweep perplexity. The main t-SNE's
    embedding stands in for a fit with the very same settings on the same points."""
    n = config.sweep_n(len(state["latents"]))
    perplexities = config.sweep_perplexities_for(len(state["latents"]))
    if not perplexities:
        return
    sweep, records = {}, {}
    for perplexity in perplexities:
        if state.get("tsne_settings") == _tsne_settings(config, n, perplexity):
            sweep[perplexity] = state["embedding"]
            main = job.metrics["tsne"]
            records[f"{perplexity:g}"] = {
                "kl_divergence": main["kl_divergence"],
                "n_iter": main["n_iter"],
                "reused_from": "tsne",
            }
            logger.info(
                "perplexity %g: the t-SNE stage's embedding (same points and settings)", perplexity
            )
        else:
            latents = state["latents"][_embedded_rows(state, n)]
            tsne, sweep[perplexity] = _embed(latents, perplexity, config)
            records[f"{perplexity:g}"] = {
                "kl_divergence": float(tsne.kl_divergence_),
                "n_iter": int(tsne.n_iter_),
            }
        job.metrics["perplexity_sweep"] = records
    _files.save_npz(job.path("perplexity_sweep.npz"), {f"{p:g}": e for p, e in sweep.items()})
    state["sweep"] = sweep


def _restore_sweep(job: Run, config: RunConfig, state: dict) -> None:
    perplexities = config.sweep_perplexities_for(len(state["latents"]))
    if not perplexities:
        return
    path = job.path("perplexity_sweep.npz")
    try:
        with np.load(path, allow_pickle=False) as saved:
            state["sweep"] = {p: saved[f"{p:g}"] for p in perplexities}
    except (KeyError, EOFError, zipfile.BadZipFile) as err:
        raise ValueError(f"{path} is damaged or incomplete ({err})") from err


def _coloured_by(labels: np.ndarray) -> tuple[np.ndarray | None, int]:
    """Labels and number of colours for the class-coloured figures: the tutorial's 10 colours,
    more if the labels need them, and grey points (labels None) past ``plots.MAX_CLASSES``."""
    from tfclust.plots import MAX_CLASSES

    n_classes = max(10, int(labels.max()) + 1) if labels.size else 10
    if n_classes > MAX_CLASSES:
        logger.warning("labels up to %d: the figures show the points uncoloured", n_classes - 1)
        return None, 10
    return labels, n_classes


def _colours(config: RunConfig, state: dict) -> dict:
    """What colours the maps' points: keyword arguments of the map figures (``labels``,
    ``n_classes``, ``class_names``, ``color_label``), and ``by``, "label" or "cluster"."""
    from tfclust.plots import MAX_CLASSES

    by = config.color_by
    if by == "auto":
        by = "label" if state["labels"] is not None else "cluster"
    if by == "cluster":
        clusters = state.get("clusters")
        k = 0 if clusters is None else int(clusters.max()) + 1
        if not 0 < k <= MAX_CLASSES:
            return {"by": "nothing", "labels": None, "n_classes": 10}
        name = CLUSTERING_NAMES[config.clustering]
        return {"by": by, "labels": clusters, "n_classes": k, "color_label": f"{name} cluster"}
    names = state["class_names"]
    if names is None or len(names) > MAX_CLASSES:
        labels, n_classes = _coloured_by(state["labels"])
        return {"by": by, "labels": labels, "n_classes": n_classes}
    return {"by": by, "labels": state["labels"], "n_classes": len(names), "class_names": names}


def _figures(job: Run, config: RunConfig, state: dict) -> None:
    from tfclust import plots

    images = state["images"]
    colours = _colours(config, state)
    by, coloured = colours.pop("by"), colours.pop("labels")

    def maps(n: int) -> dict:
        rows = _embedded_rows(state, n)
        return {**colours, "labels": None if coloured is None else coloured[rows]}

    first_label = None
    if state["labels"] is not None:
        y = int(state["labels"][0])
        first_label = y if state["class_names"] is None else state["class_names"][y]
    figures = {
        "sample_image": plots.sample_image(images[0], label=first_label),
        "t_vs_normal": plots.t_vs_normal(2.74),
    }
    kmeans = job.metrics.get("kmeans", {})
    if "choose_k" in kmeans:
        c = kmeans["choose_k"]
        figures["choose_k"] = plots.choose_k(
            c["ks"], c["inertia"], c["silhouette"], c["chosen"], rule=c["rule"]
        )
    if "clusters" in state:
        method = CLUSTERING_NAMES[config.clustering]
        clusters = state["clusters"]
        figures["cluster_grid"] = plots.cluster_grid(
            images, clusters, n_clusters=int(clusters.max()) + 1, method=method
        )
        if state["labels"] is not None:
            figures["confusion_matrix"] = plots.confusion_matrix(
                state["labels"], clusters, state["class_names"], method=method
            )
    if "embedding" in state:
        n = len(state["embedding"])
        figures["tsne_scatter"] = plots.tsne_scatter(
            state["embedding"], title=f"t-SNE of {n} latents", **maps(n)
        )
        figures["tsne_thumbnails"] = plots.tsne_thumbnails(
            state["embedding"], images[_embedded_rows(state, n)], **maps(n)
        )
    if "sweep" in state:
        n = len(next(iter(state["sweep"].values())))
        figures["perplexity_sweep"] = plots.perplexity_grid(state["sweep"], **maps(n))
    losses = job.metrics["autoencoder"].get("loss_per_epoch")
    if losses:
        figures["loss_curve"] = plots.loss_curve(losses)
    originals = images[:10].astype(np.float32) / 255.0
    figures["reconstructions"] = plots.reconstructions(
        originals, state["autoencoder"].predict(originals, verbose=0)
    )
    folder = job.path("figures")
    job.metrics["figures"] = {
        "coloured_by": by,
        "files": {
            name: plots.save_figure(fig, os.path.join(folder, f"{name}.png"))
            for name, fig in figures.items()
        },
    }


def _check_files(paths) -> None:
    """The restore of a stage that only writes files: check that they exist."""
    missing = [p for p in paths if not os.path.isfile(p)]
    if missing:
        raise FileNotFoundError(f"missing {', '.join(missing)}")


def _projector(job: Run, config: RunConfig, state: dict) -> None:
    from tfclust.projector import export_projector

    n = config.tsne_n(len(state["latents"]))
    if n == 0:
        job.metrics["projector"] = {"skipped": "no t-SNE samples (tsne_samples=0)"}
        return
    rows = _embedded_rows(state, n)
    metadata = {}
    if state["labels"] is not None:
        labels = state["labels"][rows]
        names = state["class_names"]
        metadata["label"] = labels if names is None else [names[y] for y in labels]
    if "kmeans_labels" in state:
        metadata["cluster"] = state["kmeans_labels"][rows]
    if state["file_names"] is not None:
        metadata["file"] = [state["file_names"][i] for i in rows]
    log_dir = job.path("tensorboard")
    # written aside, then moved in file by file: the log folder also holds training's events
    with _files.scratch_folder(job.out, "projector") as tmp:
        export_projector(
            tmp, state["latents"][rows], metadata or None, images=state["images"][rows]
        )
        os.makedirs(log_dir, exist_ok=True)
        for name in sorted(os.listdir(tmp)):
            os.replace(os.path.join(tmp, name), os.path.join(log_dir, name))
    job.metrics["projector"] = {
        "log_dir": log_dir,
        "config_path": os.path.join(log_dir, PROJECTOR_FILENAME),
        "n_points": n,
    }


def _export(job: Run, config: RunConfig, state: dict) -> None:
    from tfclust import serving

    parametric, record = _parametric_map(job, config, state)
    path = serving.export(
        job.path("serving"),
        state["encoder"],
        state["kmeans_centers"],
        overwrite=True,
        tsne=parametric,
    )
    job.metrics["serving"] = {"saved_model": path, "map": record}


def _parametric_map(job: Run, config: RunConfig, state: dict):
    """The t-SNE map as a network (a ParametricTSNE distilled from the run's embedding) for the
    served ``map`` output, saved to ``parametric_tsne.npz``, and its record for metrics.json;
    ``(None, None)`` without a t-SNE."""
    from tfclust.metrics import trustworthiness
    from tfclust.tsne import ParametricTSNE

    n = config.tsne_n(len(state["latents"]))
    if n == 0:
        return None, None
    latents = state["latents"][_embedded_rows(state, n)]
    parametric = ParametricTSNE(n_epochs=config.map_epochs, random_state=config.tsne_seed)
    parametric.fit(latents, embedding=state["embedding"])
    parametric.save(job.path(PARAMETRIC_MAP))
    record = {
        "n_samples": n,
        "epochs": config.map_epochs,
        "trustworthiness_10": trustworthiness(
            latents, parametric.embedding_, n_neighbors=METRIC_NEIGHBORS
        ),
        "file": PARAMETRIC_MAP,
    }
    return parametric, record


def _settings(*names: str) -> Callable[[RunConfig], dict]:
    return lambda config: {name: getattr(config, name) for name in names}


def _autoencoder_settings(config: RunConfig) -> dict:
    if config.model:
        digest = hashlib.sha256()
        with open(config.model, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        return {"model": digest.hexdigest()}
    return _settings("epochs", "min_steps", "batch_size", "latent_dim", "seed")(config)


def _sweep_settings(config: RunConfig) -> dict:
    return {
        "tsne": _tsne_settings(config, config.sweep_samples, config.perplexity),
        "perplexities": [float(p) for p in config.sweep_perplexities],
    }


STAGE_SPECS: dict[str, Stage] = {
    "load_data": Stage(
        _load_data,
        None,
        (),
        (),
        _settings("dataset", "data_dir", "images", "image_size", "color_mode", "on_error"),
        "data",
    ),
    "autoencoder": Stage(
        _autoencoder,
        _restore_autoencoder,
        ("autoencoder.keras", "tensorboard/train", "tensorboard/validation"),
        ("load_data",),
        _autoencoder_settings,
        "autoencoder",
    ),
    "encode": Stage(
        _encode,
        _restore_latents,
        ("latents.npy", "labels.npy", FILE_NAMES),
        ("autoencoder",),
        _settings(),
        "latents",
    ),
    "kmeans": Stage(
        _kmeans,
        _restore_kmeans,
        ("kmeans_centers.npy", "kmeans_labels.npy", ASSIGNMENTS),
        ("encode",),
        _kmeans_settings,
        "kmeans",
    ),
    "clustering": Stage(
        _clustering,
        _restore_clustering,
        (CLUSTERING_LABELS, CLUSTERING_MODEL),
        ("autoencoder", "encode", "kmeans"),
        _settings("clustering", "seed"),
        "clustering",
    ),
    "tsne": Stage(
        _tsne,
        _restore_tsne,
        ("tsne_embedding.npy", TSNE_ROWS, TSNE_MODEL),
        ("encode",),
        lambda config: _tsne_settings(config, config.tsne_samples, config.perplexity),
        "tsne",
    ),
    "perplexity_sweep": Stage(
        _perplexity_sweep,
        _restore_sweep,
        ("perplexity_sweep.npz",),
        ("encode", "tsne"),
        _sweep_settings,
        "perplexity_sweep",
    ),
    "figures": Stage(
        _figures,
        lambda job, config, state: _check_files(job.earlier["figures"]["files"].values()),
        ("figures",),
        ("autoencoder", "kmeans", "clustering", "tsne", "perplexity_sweep"),
        _settings("n_clusters", "color_by", "tsne_seed"),
        "figures",
    ),
    "projector": Stage(
        _projector,
        lambda job, config, state: _check_files(
            [job.earlier["projector"]["config_path"]] if config.tsne_samples else []
        ),
        (
            "tensorboard/" + PROJECTOR_FILENAME,
            "tensorboard/" + METADATA_FILENAME,
            "tensorboard/" + SPRITE_FILENAME,
            "tensorboard/checkpoint",
            "tensorboard/" + CHECKPOINT_PREFIX + "-*",
        ),
        ("encode", "kmeans"),
        _settings("tsne_samples", "tsne_seed"),
        "projector",
    ),
    "export": Stage(
        _export,
        lambda job, config, state: _check_files([job.path("serving/1/saved_model.pb")]),
        ("serving", PARAMETRIC_MAP),
        ("autoencoder", "kmeans", "tsne"),
        _settings("map_epochs"),
        "serving",
    ),
}
"""The stages of a run, in order."""


def summary(metrics: dict) -> str:
    """A short human-readable account of a run's metrics.

    Examples:
      >>> from tfclust.pipeline import summary
      >>> print(summary({"out": "runs/demo", "stages": {"autoencoder": {"seconds": 1.5}}}))
      outputs: runs/demo
      stages: autoencoder 1.5s
    """
    lines = [f"outputs: {metrics['out']}"]
    if "data" in metrics:
        d = metrics["data"]
        name = f"{d['name']}/{d['split']}" if "split" in d else d["name"]
        shape = "x".join(str(v) for v in d.get("image_shape", ()))
        lines.append(f"data: {name}, {d['n_samples']} images {shape} ({d['source']})")
        if not d.get("labelled", True):
            lines.append("labels: none, so no accuracy, NMI, ARI or k-NN accuracy")
    ae = metrics.get("autoencoder", {})
    if "final_loss" in ae:
        lines.append(
            f"autoencoder: final MSE {ae['final_loss']:.5f} after "
            f"{len(ae['loss_per_epoch'])} epochs"
        )
    if "kmeans" in metrics:
        k = metrics["kmeans"]
        chosen = " chosen by silhouette" if "choose_k" in k else ""
        line = f"K-means (k={k['n_clusters']}{chosen}): inertia {k['inertia']:.6g}"
        if "silhouette" in k:
            line += (
                f", silhouette {k['silhouette']:.3f}, Calinski-Harabasz "
                f"{k['calinski_harabasz']:.4g}, Davies-Bouldin {k['davies_bouldin']:.3f}"
            )
        if "accuracy" in k:
            line += f"; accuracy {k['accuracy']:.3f}, NMI {k['nmi']:.3f}, ARI {k['ari']:.3f}"
        lines.append(line)
    if "clustering" in metrics and metrics["clustering"]["method"] != "kmeans":
        c = metrics["clustering"]
        line = f"{CLUSTERING_NAMES[c['method']]} (k={c['n_clusters']}): {c['seconds']:.1f} s"
        if "accuracy" in c:
            line += f"; accuracy {c['accuracy']:.3f}, NMI {c['nmi']:.3f}, ARI {c['ari']:.3f}"
        lines.append(line)
    if "tsne" in metrics:
        t = metrics["tsne"]
        line = (
            f"t-SNE ({t['n_samples']} points, {t['method']}): KL {t['kl_divergence']:.4f}, "
            f"trustworthiness {t['trustworthiness_10']:.3f}"
        )
        if "knn_accuracy_10" in t:
            line += f", 10-NN accuracy {t['knn_accuracy_10']:.3f}"
        lines.append(line)
    if "figures" in metrics:
        lines.append(f"maps coloured by: {metrics['figures']['coloured_by']}")
    if (metrics.get("serving") or {}).get("map"):
        m = metrics["serving"]["map"]
        lines.append(
            f"map network ({m['file']}, served as 'map'): trustworthiness "
            f"{m['trustworthiness_10']:.3f}"
        )
    stages = ", ".join(
        f"{name} {s['seconds']:.1f}s" + (" (earlier run)" if s.get("resumed") else "")
        for name, s in metrics["stages"].items()
    )
    lines.append(f"stages: {stages}")
    return "\n".join(lines)


def _class_labels(labels: np.ndarray, n: int, name: str) -> np.ndarray:
    """The first ``n`` of saved class labels, checked: 1-D non-negative integers."""
    if labels.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of class ids, got shape {labels.shape}")
    if len(labels) < n:
        raise ValueError(f"{name} has {len(labels)} labels but there are {n} latents")
    if labels.dtype.kind not in "iu":
        raise ValueError(f"{name} must hold integer class ids, got dtype {labels.dtype}")
    labels = labels[:n]
    if labels.size and labels.min() < 0:
        raise ValueError(f"{name} holds negative class ids ({labels.min()})")
    return labels


def embed_latents(
    latents_path: str,
    out: str,
    *,
    labels_path: str | None = None,
    samples: int | str = "all",
    perplexity: float = 30.0,
    learning_rate: float | str = "auto",
    max_iter: int = 750,
    method: str | None = None,
    seed: int = 0,
    overwrite: bool = False,
) -> str:
    """t-SNE of latents saved as .npy (``tfclust embed``); returns the output folder.

    Writes ``embedding.npy`` (float32 (N, 2)), with labels ``tsne_scatter.png``, and last
    ``embed.json`` (sizes, settings, KL divergence, wall time, and with labels the 10-NN label
    accuracy). Everything is checked before the t-SNE starts. A folder that is not empty is
    refused unless ``overwrite`` (and it holds an ``embed.json``).

    Examples:
      >>> import json, os, tempfile
      >>> import numpy as np
      >>> from tfclust.pipeline import embed_latents
      >>> folder = tempfile.mkdtemp()
      >>> latents = os.path.join(folder, "latents.npy")
      >>> np.save(latents, np.random.default_rng(0).normal(size=(60, 4)).astype(np.float32))
      >>> import contextlib, io
      >>> with contextlib.redirect_stdout(io.StringIO()):  # the t-SNE's progress lines
      ...     out = embed_latents(latents, os.path.join(folder, "embed"), perplexity=5.0,
      ...                         max_iter=250)
      >>> np.load(os.path.join(out, "embedding.npy")).shape
      (60, 2)
    """
    from tfclust import plots
    from tfclust.metrics import knn_accuracy
    from tfclust.tsne import TSNE

    latents = _files.load_npy(latents_path, "--latents")
    if latents.ndim != 2:
        raise ValueError(f"--latents {latents_path} must be 2-D (N x d), got shape {latents.shape}")
    if samples != "all":
        check_int(samples, name="samples", low=2)
        if samples > len(latents):
            raise ValueError(f"samples={samples} but {latents_path} holds {len(latents)} latents")
        latents = latents[:samples]
    labels = None
    if labels_path is not None:
        labels = _class_labels(_files.load_npy(labels_path, "--labels"), len(latents), "--labels")
        if len(latents) <= METRIC_NEIGHBORS:
            raise ValueError(
                f"with --labels, embed more than {METRIC_NEIGHBORS} latents (the {METRIC_NEIGHBORS}"
                f"-NN accuracy needs them), got {len(latents)}"
            )
    kwargs = {"method": method} if method else {}
    tsne = TSNE(
        n_components=2,
        perplexity=perplexity,
        learning_rate=learning_rate,
        max_iter=max_iter,
        random_state=seed,
        **kwargs,
    )
    out = prepare_out_dir(out, marker=EMBED_RECORD, overwrite=overwrite)
    start = time.perf_counter()
    embedding = tsne.fit_transform(latents)
    seconds = time.perf_counter() - start
    _files.save_npy(os.path.join(out, "embedding.npy"), embedding)
    record = {
        "latents": latents_path,
        "n_samples": len(latents),
        "perplexity": perplexity,
        "learning_rate": tsne.learning_rate_,
        "max_iter": max_iter,
        "method": tsne.method,
        "seed": seed,
        "kl_divergence": float(tsne.kl_divergence_),
        "n_iter": int(tsne.n_iter_),
        "seconds": round(seconds, 2),
    }
    if labels is not None:
        record["knn_accuracy_10"] = knn_accuracy(embedding, labels, n_neighbors=METRIC_NEIGHBORS)
        coloured, n_classes = _coloured_by(labels)
        fig = plots.tsne_scatter(
            embedding, coloured, n_classes=n_classes, title=f"t-SNE of {len(latents)} latents"
        )
        record["figure"] = plots.save_figure(fig, os.path.join(out, "tsne_scatter.png"))
    _files.save_json(os.path.join(out, EMBED_RECORD), record)
    logger.info(
        "t-SNE of %d latents: KL %.4f in %.1f s", len(latents), record["kl_divergence"], seconds
    )
    return out


EMBED_RECORD = "embed.json"
"""The record :func:`embed_latents` writes last."""
