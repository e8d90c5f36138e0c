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

import numpy as np
import tensorflow as tf

from tfclust import autoencoder as ae_lib
from tfclust._validation import check_int
from tfclust.data import autoencoder_pipeline, load_dataset

logger = logging.getLogger("tfclust.pipeline")

STAGES = ("load_data", "autoencoder", "encode")
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
    stop_after: str | None = None

    def validate(self) -> None:
        """Check every setting before any long work starts (raises ``ValueError``)."""
        check_int(self.epochs, name="epochs", low=1)
        check_int(self.batch_size, name="batch_size", low=1)
        check_int(self.latent_dim, name="latent_dim", low=1)
        check_int(self.seed, name="seed", low=0)
        if self.model is not None and not os.path.isfile(self.model):
            raise ValueError(f"--model {self.model}: no such file")
        if self.stop_after is not None and self.stop_after not in STAGES:
            raise ValueError(f"stop_after must be one of {STAGES}, got {self.stop_after!r}")


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
        logger.info("stage %s %s in %.1f s", self.name, "done" if exc is None else "FAILED", seconds)
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
        with job.stage(name):
            _STAGE_FUNCTIONS[name](job, config, state)
        if name == config.stop_after:
            break
    job.write()
    return job.metrics


def _load_data(job: Run, config: RunConfig, state: dict) -> None:
    data = load_dataset(config.dataset, "train", config.data_dir)
    job.metrics["data"] = data.describe()
    state["images"], state["labels"] = data


def _autoencoder(job: Run, config: RunConfig, state: dict) -> None:
    if config.model:
        autoencoder, encoder, decoder = ae_lib.load_autoencoder(config.model)
        if tuple(autoencoder.input_shape) != (None, *ae_lib.IMAGE_SHAPE):
            raise ValueError(f"--model {config.model} takes input {autoencoder.input_shape}, "
                             f"expected (None, 28, 28, 1)")
        job.metrics["autoencoder"] = {"loaded_from": config.model}
    else:
        autoencoder, encoder, decoder = ae_lib.build_autoencoder(config.latent_dim,
                                                                 seed=config.seed)
        ds = autoencoder_pipeline(state["images"], batch_size=config.batch_size, seed=config.seed)
        history = ae_lib.train_autoencoder(autoencoder, ds, epochs=config.epochs, verbose=2)
        losses = [float(v) for v in history.history["loss"]]
        job.metrics["autoencoder"] = {"loss_per_epoch": losses, "final_loss": losses[-1],
                                      "saved_to": job.path("autoencoder.keras")}
        ae_lib.save_autoencoder(autoencoder, job.path("autoencoder.keras"))
    state.update(autoencoder=autoencoder, encoder=encoder, decoder=decoder)


def _encode(job: Run, config: RunConfig, state: dict) -> None:
    latents = ae_lib.encode(state["encoder"], state["images"])
    np.save(job.path("latents.npy"), latents)
    np.save(job.path("labels.npy"), state["labels"])
    job.metrics["latents"] = {"shape": list(latents.shape), "file": job.path("latents.npy")}
    state["latents"] = latents


_STAGE_FUNCTIONS = {"load_data": _load_data, "autoencoder": _autoencoder, "encode": _encode}
