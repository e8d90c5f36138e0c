"""Fashion-MNIST as 70,000 PNG files: the loader against Keras', and ``tfclust run --images``.

Writes Fashion-MNIST (train + test) as PNG files in one sub-folder per class under
``benchmarks/.cache/fashion_png`` (once), then times, each in a fresh process and taking turns
round after round:

* ``tfclust.load_images(folder)``: list, scan (decode once for sizes and corrupt files), decode
  into uint8 numpy;
* ``keras.utils.image_dataset_from_directory(folder, ...)`` iterated to the end (its peer:
  list, decode, resize to 28 x 28, float32 batches);
* ``tfclust.data.image_dataset(folder)`` iterated to the end (streaming, the scan included).

Last, ``tfclust run --images folder`` with the default settings, in a fresh process with an
empty compilation cache, then ``--resume --n-clusters auto`` on its run folder: per-stage wall
times and metrics from ``metrics.json``.

    python benchmarks/bench_image_folder.py [--n 70000] [--rounds 2] [--loaders-only]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from common import CACHE_DIR, FASHION_MNIST_CLASSES, RESULTS_DIR, report  # noqa: E402

CLASS_NAMES = [name.replace(" ", "_").replace("/", "_") for name in FASHION_MNIST_CLASSES]

LOADERS = {
    "tfclust.load_images": (
        "from tfclust.data import load_images  # imports TensorFlow, as the others do\n"
        "start = time.perf_counter()\n"
        "n = len(load_images(FOLDER).images)\n"
    ),
    "tfclust image_dataset (streamed)": (
        "from tfclust.data import image_dataset\n"
        "start = time.perf_counter()\n"
        "dataset, info = image_dataset(FOLDER)\n"
        "n = sum(1 for _ in dataset.batch(256))\n"
        "n = info.n_images\n"
    ),
    "keras image_dataset_from_directory": (
        "import keras\n"
        "start = time.perf_counter()\n"
        "dataset = keras.utils.image_dataset_from_directory(FOLDER, color_mode='grayscale',\n"
        "    image_size=(28, 28), batch_size=256, shuffle=False, verbose=False)\n"
        "n = sum(int(x.shape[0]) for x, _ in dataset)\n"
    ),
}


def write_folder(folder: str, n: int) -> int:
    """Fashion-MNIST's first ``n`` images (train, then test) as PNGs; returns how many."""
    marker = os.path.join(folder, f".complete-{n}")
    if os.path.exists(marker):
        return n
    import numpy as np
    import tensorflow as tf

    import tfclust

    train, test = (tfclust.load_dataset("fashion_mnist", split) for split in ("train", "test"))
    images = np.concatenate([train.images, test.images])[:n]
    labels = np.concatenate([train.labels, test.labels])[:n]
    for name in CLASS_NAMES:
        os.makedirs(os.path.join(folder, name), exist_ok=True)
    start = time.perf_counter()
    for i, (image, label) in enumerate(zip(images, labels, strict=True)):
        path = os.path.join(folder, CLASS_NAMES[label], f"{i:05d}.png")
        tf.io.write_file(path, tf.io.encode_png(image[..., None]))
    print(f"wrote {n} PNG files in {time.perf_counter() - start:.0f} s", file=sys.stderr)
    open(marker, "w").close()
    return n


def time_loader(code: str, folder: str) -> tuple[float, int]:
    """Seconds the loader takes in a fresh process (imports excluded), and images loaded."""
    program = (
        f"import json, os, time\nFOLDER = {folder!r}\n{code}"
        "print(json.dumps({'seconds': time.perf_counter() - start, 'n': n}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", program], check=True, capture_output=True, text=True
    ).stdout
    result = json.loads(out.strip().splitlines()[-1])
    return result["seconds"], result["n"]


def time_run(folder: str, out: str, cache: str, *flags: str) -> dict:
    """``tfclust run --images folder --out out FLAGS`` in a fresh process, with the compilation
    cache in ``cache``: its metrics.json, with the process's wall time."""
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "tfclust.cli", "run", "--images", folder, "--out", out, "-q"]
        + list(flags),
        check=True,
        env={**os.environ, "TFCLUST_CACHE_DIR": cache},
    )
    seconds = time.perf_counter() - start
    with open(os.path.join(out, "metrics.json")) as f:
        metrics = json.load(f)
    metrics["process_seconds"] = seconds
    return metrics


def run_record(metrics: dict) -> dict:
    """What the notes keep of a run's metrics."""
    return {
        "process_seconds": metrics["process_seconds"],
        "stages_seconds": {name: s["seconds"] for name, s in metrics["stages"].items()},
        "resumed": sorted(n for n, s in metrics["stages"].items() if s.get("resumed")),
        "kmeans": metrics["kmeans"],
        "tsne": metrics["tsne"],
        "autoencoder": {k: v for k, v in metrics["autoencoder"].items() if k != "loss_per_epoch"},
        "data": {k: v for k, v in metrics["data"].items() if k != "class_names"},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=70000, help="images written (default 70000)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of the loaders")
    parser.add_argument(
        "--loaders-only",
        action="store_true",
        help="time the loaders only, keeping the runs of the last results file",
    )
    args = parser.parse_args()

    folder = os.path.join(CACHE_DIR, f"fashion_png_{args.n}")
    n = write_folder(folder, args.n)
    times = {name: [] for name in LOADERS}
    for round_ in range(args.rounds):
        for name, code in LOADERS.items():
            seconds, loaded = time_loader(code, folder)
            assert loaded == n, (name, loaded, n)
            times[name].append(seconds)
            print(f"round {round_ + 1}: {name} {seconds:.1f} s", file=sys.stderr)
    keras_seconds = statistics.median(times["keras image_dataset_from_directory"])
    rows = [
        {
            "case": f"load {n} PNG files",
            "loader": name,
            "first round s": t[0],
            "median s": statistics.median(t),
            "images/s": n / statistics.median(t),
            "time vs keras": statistics.median(t) / keras_seconds,
        }
        for name, t in times.items()
    ]
    notes = {"rounds": args.rounds, "folder": "Fashion-MNIST train+test as 28x28 grey PNG"}
    if args.loaders_only:
        with open(os.path.join(RESULTS_DIR, "image_folder.json")) as f:
            last = json.load(f)
        rows += [r for r in last["rows"] if "images/s" not in r]
        notes.update({k: v for k, v in last["notes"].items() if k.startswith("run")})
    else:
        with tempfile.TemporaryDirectory() as tmp:
            out, cache = os.path.join(tmp, "run"), os.path.join(tmp, "cache")
            # an empty compilation cache: every program is compiled, as on a new machine
            notes["run"] = run_record(time_run(folder, out, cache))
            # the same folder again with k chosen: the autoencoder and latents are reused
            notes["run_n_clusters_auto"] = run_record(
                time_run(folder, out, cache, "--resume", "--n-clusters", "auto")
            )
        for key, what in (
            ("run", "defaults"),
            ("run_n_clusters_auto", "--resume --n-clusters auto"),
        ):
            rows.append(
                {
                    "case": f"tfclust run --images ({n} PNG files, {what})",
                    "loader": "whole run, fresh process",
                    "first round s": notes[key]["process_seconds"],
                    "median s": notes[key]["process_seconds"],
                }
            )
    report("image_folder", rows, notes=notes)


if __name__ == "__main__":
    main()
