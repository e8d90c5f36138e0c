"""The tutorial end to end: data -> autoencoder -> latents -> K-means -> t-SNE -> outputs.

:func:`run` executes the stages in order. Each stage's wall time and results go into
``<out>/metrics.json``, which is rewritten after every stage, so a crash leaves the outputs of
the stages that finished.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import logging
import os
import platform
import time

import keras
import numpy as np
import tensorflow as tf

from tfclust import autoencoder as ae_lib
from tfclust._validation import check_float, check_int
from tfclust.data import autoencoder_pipeline, load_dataset

logger = logging.getLogger("tfclust.pipeline")

STAGES = (
    "load_data",
    "autoencoder",
    "encode",
    "kmeans",
    "tsne",
    "perplexity_sweep",
    "figures",
    "projector",
    "export",
)
"""The stages of a run, in order; ``RunConfig.stop_after`` ends a run after one of them."""


@dataclasses.dataclass
class RunConfig:
    """Everything a run needs; the defaults reproduce the tutorial."""

    dataset: str = "auto"
    data_dir: str | None = None
    out: str | None = None
    model: str | None = None
    epochs: int = 20
    batch_size: int = 256
    latent_dim: int = 64
    seed: int = 0
    n_clusters: int = 10
    n_init: int = 10
    kmeans_seed: int = 42
    tsne_samples: int | str = 5000
    perplexity: float = 15.0
    tsne_learning_rate: float = 100.0
    tsne_max_iter: int = 1000
    tsne_seed: int = 0
    tsne_method: str | None = None
    sweep_perplexities: tuple[float, ...] = (5, 10, 15, 25, 50, 100)
    sweep_samples: int = 5000
    export: bool = False
    stop_after: str | None = None
    verbose: int = 2
    """Keras' output while training: 0 silent, 1 progress bar, 2 one line per epoch."""

    @classmethod
    def quick(cls, **overrides) -> RunConfig:
        """A small run for smoke tests: about a minute on two CPU cores."""
        settings = dict(
            epochs=6,
            n_init=3,
            tsne_samples=1000,
            tsne_max_iter=300,
            sweep_perplexities=(5, 30),
            sweep_samples=500,
        )
        settings.update(overrides)
        return cls(**settings)

    def validate(self) -> None:
        """Check every setting before any long work starts (raises ``ValueError``)."""
        check_int(self.epochs, name="epochs", low=1)
        check_int(self.batch_size, name="batch_size", low=1)
        check_int(self.latent_dim, name="latent_dim", low=1)
        check_int(self.seed, name="seed", low=0)
        check_int(self.n_clusters, name="n_clusters", low=1)
        check_int(self.n_init, name="n_init", low=1)
        check_int(self.kmeans_seed, name="kmeans_seed", low=0)
        if self.tsne_samples != "all":
            check_int(self.tsne_samples, name="tsne_samples", low=0)
        check_float(self.perplexity, name="perplexity", low=0, low_inclusive=False)
        check_float(self.tsne_learning_rate, name="tsne_learning_rate", low=0, low_inclusive=False)
        check_int(self.tsne_max_iter, name="tsne_max_iter", low=250)
        check_int(self.tsne_seed, name="tsne_seed", low=0)
        for p in self.sweep_perplexities:
            check_float(p, name="sweep_perplexities", low=0, low_inclusive=False)
        check_int(self.sweep_samples, name="sweep_samples", low=0)
        check_int(self.verbose, name="verbose", low=0, high=2)
        if self.model is not None and not os.path.isfile(self.model):
            raise ValueError(f"--model {self.model}: no such file")
        if self.stop_after is not None and self.stop_after not in STAGES:
            raise ValueError(f"stop_after must be one of {STAGES}, got {self.stop_after!r}")

    def validate_sizes(self, n_samples: int) -> None:
        """Checks that need the data's size: done right after loading, before training."""
        if self.runs("kmeans") and self.n_clusters > n_samples:
            raise ValueError(f"n_clusters={self.n_clusters} > {n_samples} images")
        if self.runs("tsne"):
            if self.tsne_samples != "all" and self.tsne_samples > n_samples:
                raise ValueError(
                    f"tsne_samples={self.tsne_samples} but the data set has only "
                    f"{n_samples} images (use 'all' for every image)"
                )
            tsne_n = self.tsne_n(n_samples)
            if 0 < tsne_n <= self.perplexity:
                raise ValueError(
                    f"perplexity={self.perplexity} must be below the number of t-SNE samples "
                    f"({tsne_n})"
                )
        if self.runs("perplexity_sweep"):
            sweep_n = min(self.sweep_samples, n_samples)
            too_large = [p for p in self.sweep_perplexities if sweep_n and p >= sweep_n]
            if too_large:
                raise ValueError(
                    f"sweep perplexities {too_large} must be below sweep_samples ({sweep_n})"
                )

    def runs(self, stage: str) -> bool:
        """Whether ``stage`` is part of this run (it is unless ``stop_after`` comes earlier)."""
        if self.stop_after is None:
            return True
        return STAGES.index(stage) <= STAGES.index(self.stop_after)

    def tsne_n(self, n_samples: int) -> int:
        """How many of the first images the main t-SNE embeds."""
        return n_samples if self.tsne_samples == "all" else int(self.tsne_samples)


def default_out_dir() -> str:
    """A new timestamped folder under ``runs/``."""
    return os.path.join("runs", datetime.datetime.now().strftime("%Y%m%d-%H%M%S"))


def prepare_out_dir(path: str) -> str:
    """Create ``path`` and check that it is writable; raises ``ValueError`` if not."""
    try:
        os.makedirs(path, exist_ok=True)
        probe = os.path.join(path, ".write-test")
        with open(probe, "w"):
            pass
        os.remove(probe)
    except OSError as err:
        raise ValueError(f"output folder {path} is not writable ({err.strerror})") from err
    return path


class Run:
    """Records stage timings and results, and keeps ``metrics.json`` up to date."""

    def __init__(self, out: str, config: RunConfig):
        self.out = out
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

    def stage(self, name: str):
        return _Stage(self, name)

    def write(self) -> None:
        with open(self.path("metrics.json"), "w") as f:
            json.dump(self.metrics, f, indent=2, default=_json_default)


class _Stage:
    def __init__(self, run: Run, name: str):
        self.run, self.name = run, name

    def __enter__(self):
        logger.info("stage %s ...", self.name)
        self.start = time.perf_counter()
        return self

    def __exit__(self, exc_type, exc, tb):
        seconds = time.perf_counter() - self.start
        record = {"seconds": round(seconds, 3), "ok": exc_type is None}
        if exc is not None:
            record["error"] = f"{exc_type.__name__}: {exc}"
        self.run.metrics["stages"][self.name] = record
        self.run.write()
        logger.info(
            "stage %s %s in %.1f s", self.name, "done" if exc is None else "FAILED", seconds
        )
        return False


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def run(config: RunConfig) -> dict:
    """Run the tutorial's stages with ``config``; returns the metrics written to metrics.json."""
    config.validate()
    out = prepare_out_dir(config.out or default_out_dir())
    job = Run(out, config)
    logger.info("writing outputs to %s", out)
    state = {}
    for name in STAGES:
        if name == "export" and not config.export:
            continue
        with job.stage(name):
            _STAGE_FUNCTIONS[name](job, config, state)
        if name == config.stop_after:
            break
    job.write()
    return job.metrics


def _load_data(job: Run, config: RunConfig, state: dict) -> None:
    data = load_dataset(config.dataset, "train", config.data_dir)
    job.metrics["data"] = data.describe()
    config.validate_sizes(len(data.images))
    state["images"], state["labels"] = data


def _autoencoder(job: Run, config: RunConfig, state: dict) -> None:
    if config.model:
        autoencoder, encoder, decoder = ae_lib.load_autoencoder(config.model)
        if tuple(autoencoder.input_shape) != (None, *ae_lib.IMAGE_SHAPE):
            raise ValueError(
                f"--model {config.model} takes input {autoencoder.input_shape}, "
                f"expected (None, 28, 28, 1)"
            )
        job.metrics["autoencoder"] = {"loaded_from": config.model}
    else:
        autoencoder, encoder, decoder = ae_lib.build_autoencoder(
            config.latent_dim, seed=config.seed
        )
        ds = autoencoder_pipeline(state["images"], batch_size=config.batch_size, seed=config.seed)
        tensorboard = keras.callbacks.TensorBoard(log_dir=job.path("tensorboard"))
        history = ae_lib.train_autoencoder(
            autoencoder, ds, epochs=config.epochs, verbose=config.verbose, callbacks=[tensorboard]
        )
        losses = [float(v) for v in history.history["loss"]]
        job.metrics["autoencoder"] = {
            "loss_per_epoch": losses,
            "final_loss": losses[-1],
            "saved_to": job.path("autoencoder.keras"),
        }
        ae_lib.save_autoencoder(autoencoder, job.path("autoencoder.keras"))
    state.update(autoencoder=autoencoder, encoder=encoder, decoder=decoder)


def _encode(job: Run, config: RunConfig, state: dict) -> None:
    latents = ae_lib.encode(state["encoder"], state["images"])
    np.save(job.path("latents.npy"), latents)
    np.save(job.path("labels.npy"), state["labels"])
    job.metrics["latents"] = {"shape": list(latents.shape), "file": job.path("latents.npy")}
    state["latents"] = latents


def _kmeans(job: Run, config: RunConfig, state: dict) -> None:
    from tfclust.kmeans import KMeans
    from tfclust.metrics import adjusted_rand_index, cluster_accuracy, normalized_mutual_info

    km = KMeans(
        n_clusters=config.n_clusters,
        n_init=config.n_init,
        random_state=config.kmeans_seed,
        verbose=1,
    ).fit(state["latents"])
    np.save(job.path("kmeans_centers.npy"), km.cluster_centers_)
    np.save(job.path("kmeans_labels.npy"), km.labels_)
    labels = state["labels"]
    job.metrics["kmeans"] = {
        "n_clusters": config.n_clusters,
        "n_init": config.n_init,
        "seed": config.kmeans_seed,
        "inertia": float(km.inertia_),
        "n_iter": int(km.n_iter_),
        "accuracy": cluster_accuracy(labels, km.labels_),
        "nmi": normalized_mutual_info(labels, km.labels_),
        "ari": adjusted_rand_index(labels, km.labels_),
    }
    state["kmeans"] = km


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
        verbose=1,
        **kwargs,
    )
    return tsne, tsne.fit_transform(latents)


def _tsne(job: Run, config: RunConfig, state: dict) -> None:
    from tfclust.metrics import knn_accuracy, trustworthiness

    n = config.tsne_n(len(state["latents"]))
    if n == 0:
        return
    latents, labels = state["latents"][:n], state["labels"][:n]
    tsne, embedding = _embed(latents, config.perplexity, config)
    np.save(job.path("tsne_embedding.npy"), embedding)
    job.metrics["tsne"] = {
        "n_samples": n,
        "perplexity": config.perplexity,
        "learning_rate": config.tsne_learning_rate,
        "seed": config.tsne_seed,
        "method": tsne.method,
        "kl_divergence": float(tsne.kl_divergence_),
        "n_iter": int(tsne.n_iter_),
        "trustworthiness_10": trustworthiness(latents, embedding, n_neighbors=10),
        "knn_accuracy_10": knn_accuracy(embedding, labels, n_neighbors=10),
    }
    state["embedding"] = embedding
    state["tsne_settings"] = _tsne_settings(config, n, config.perplexity)


def _perplexity_sweep(job: Run, config: RunConfig, state: dict) -> None:
    """t-SNE of the first ``sweep_samples`` latents at each sweep perplexity. The main t-SNE's
    embedding stands in for a fit with the very same settings on the same points."""
    n = min(config.sweep_samples, len(state["latents"]))
    if n == 0 or not config.sweep_perplexities:
        return
    sweep, records = {}, {}
    for perplexity in config.sweep_perplexities:
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
            tsne, sweep[perplexity] = _embed(state["latents"][:n], perplexity, config)
            records[f"{perplexity:g}"] = {
                "kl_divergence": float(tsne.kl_divergence_),
                "n_iter": int(tsne.n_iter_),
            }
        job.metrics["perplexity_sweep"] = records
    np.savez(job.path("perplexity_sweep.npz"), **{f"{p:g}": e for p, e in sweep.items()})
    state["sweep"] = sweep


def _figures(job: Run, config: RunConfig, state: dict) -> None:
    from tfclust import plots

    images, labels = state["images"], state["labels"]
    folder = job.path("figures")
    os.makedirs(folder, exist_ok=True)
    figures = {
        "sample_image": plots.sample_image(images[0], label=labels[0]),
        "t_vs_normal": plots.t_vs_normal(2.74),
    }
    if "kmeans" in state:
        figures["cluster_grid"] = plots.cluster_grid(
            images, state["kmeans"].labels_, n_clusters=config.n_clusters
        )
    if "embedding" in state:
        n = len(state["embedding"])
        figures["tsne_scatter"] = plots.tsne_scatter(
            state["embedding"], labels[:n], title=f"t-SNE of {n} latents"
        )
        figures["tsne_thumbnails"] = plots.tsne_thumbnails(
            state["embedding"], images[:n], labels=labels[:n]
        )
    if "sweep" in state:
        n = len(next(iter(state["sweep"].values())))
        figures["perplexity_sweep"] = plots.perplexity_grid(state["sweep"], labels[:n])
    losses = job.metrics["autoencoder"].get("loss_per_epoch")
    if losses:
        figures["loss_curve"] = plots.loss_curve(losses)
    originals = images[:10].astype(np.float32)[..., None] / 255.0
    figures["reconstructions"] = plots.reconstructions(
        originals, state["autoencoder"].predict(originals, verbose=0)
    )
    written = {}
    for name, fig in figures.items():
        written[name] = plots.save_figure(fig, os.path.join(folder, f"{name}.png"))
    job.metrics["figures"] = written


def _projector(job: Run, config: RunConfig, state: dict) -> None:
    from tfclust.projector import export_projector

    n = max(config.tsne_n(len(state["latents"])), 1)
    metadata = {"label": state["labels"][:n]}
    if "kmeans" in state:
        metadata["cluster"] = state["kmeans"].labels_[:n]
    export_projector(
        job.path("tensorboard"), state["latents"][:n], metadata, images=state["images"][:n]
    )
    job.metrics["projector"] = {"log_dir": job.path("tensorboard"), "n_points": n}


def _export(job: Run, config: RunConfig, state: dict) -> None:
    from tfclust import serving

    path = serving.export(job.path("serving"), state["encoder"], state["kmeans"], overwrite=True)
    job.metrics["serving"] = {"saved_model": path}


_STAGE_FUNCTIONS = {
    "load_data": _load_data,
    "autoencoder": _autoencoder,
    "encode": _encode,
    "kmeans": _kmeans,
    "tsne": _tsne,
    "perplexity_sweep": _perplexity_sweep,
    "figures": _figures,
    "projector": _projector,
    "export": _export,
}


def summary(metrics: dict) -> str:
    """A short human-readable account of a run's metrics."""
    lines = [f"outputs: {metrics['out']}"]
    if "data" in metrics:
        d = metrics["data"]
        lines.append(f"data: {d['name']}/{d['split']}, {d['n_samples']} images ({d['source']})")
    ae = metrics.get("autoencoder", {})
    if "final_loss" in ae:
        lines.append(
            f"autoencoder: final MSE {ae['final_loss']:.5f} after "
            f"{len(ae['loss_per_epoch'])} epochs"
        )
    if "kmeans" in metrics:
        k = metrics["kmeans"]
        lines.append(
            f"K-means (k={k['n_clusters']}): inertia {k['inertia']:.6g}, {k['n_iter']} "
            f"iterations; accuracy {k['accuracy']:.3f}, NMI {k['nmi']:.3f}, "
            f"ARI {k['ari']:.3f}"
        )
    if "tsne" in metrics:
        t = metrics["tsne"]
        lines.append(
            f"t-SNE ({t['n_samples']} points, {t['method']}): KL {t['kl_divergence']:.4f}, "
            f"trustworthiness {t['trustworthiness_10']:.3f}, "
            f"10-NN accuracy {t['knn_accuracy_10']:.3f}"
        )
    stages = ", ".join(f"{name} {s['seconds']:.1f}s" for name, s in metrics["stages"].items())
    lines.append(f"stages: {stages}")
    return "\n".join(lines)


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
) -> str:
    """t-SNE of latents saved as .npy (``tfclust embed``); returns the output folder.

    Writes ``embedding.npy`` (float32 (N, 2)), ``embed.json`` (sizes, settings, KL divergence,
    wall time, and with labels the 10-NN label accuracy) and, with labels,
    ``tsne_scatter.png``.
    """
    from tfclust import plots
    from tfclust.metrics import knn_accuracy
    from tfclust.tsne import TSNE

    latents = np.load(latents_path)
    if samples != "all":
        check_int(samples, name="samples", low=2)
        if samples > len(latents):
            raise ValueError(f"samples={samples} but {latents_path} holds {len(latents)} latents")
        latents = latents[:samples]
    labels = None
    if labels_path is not None:
        labels = np.load(labels_path)[: len(latents)]
        if len(labels) != len(latents):
            raise ValueError(f"{labels_path} has fewer labels than there are latents")
    out = prepare_out_dir(out)
    kwargs = {"method": method} if method else {}
    tsne = TSNE(
        n_components=2,
        perplexity=perplexity,
        learning_rate=learning_rate,
        max_iter=max_iter,
        random_state=seed,
        verbose=1,
        **kwargs,
    )
    start = time.perf_counter()
    embedding = tsne.fit_transform(latents)
    seconds = time.perf_counter() - start
    np.save(os.path.join(out, "embedding.npy"), embedding)
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
        record["knn_accuracy_10"] = knn_accuracy(embedding, labels, n_neighbors=10)
        fig = plots.tsne_scatter(embedding, labels, title=f"t-SNE of {len(latents)} latents")
        record["figure"] = plots.save_figure(fig, os.path.join(out, "tsne_scatter.png"))
    with open(os.path.join(out, "embed.json"), "w") as f:
        json.dump(record, f, indent=2, default=_json_default)
    logger.info(
        "t-SNE of %d latents: KL %.4f in %.1f s", len(latents), record["kl_divergence"], seconds
    )
    return out
