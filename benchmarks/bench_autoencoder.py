"""The tutorial's autoencoder (Sequential, model.fit on numpy) vs tfclust's (Functional, tf.data),
and tfclust's training against a baseline checkout of tfclust (its code before a change).

Same data (Fashion-MNIST 60k by default, offline through Debian's package), same seed, same
epochs and batch size. Each tfclust variant trains in its own worker process (the baseline
importing tfclust from the baseline checkout); the tutorial trains in this process. All take
turns, one epoch each, so that load from other processes on a shared machine hits them alike.
Besides tfclust at its default ``steps_per_execution``, variants at other values measure that
default (docs/distributed.md). Reports the loss and the seconds of every epoch, the 1-minute load
average, and the ratios tfclust / tutorial and tfclust / baseline.

    git worktree add /tmp/ae_base <commit>   # the baseline, read only
    python benchmarks/bench_autoencoder.py [--baseline /tmp/ae_base] [--epochs 6]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
from common import report  # noqa: E402

import tfclust  # noqa: E402

# A worker: trains one epoch per line read on stdin and answers with a JSON line. Uses only the
# public API that the baseline has too (train_autoencoder's steps_per_execution only if asked).
WORKER = """
import json, os, sys, time
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
dataset, seed, spe, checkout = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
if checkout:  # import tfclust from there, not from the working directory or the install
    sys.path.insert(0, checkout)
import tfclust
images, _ = tfclust.load_dataset(dataset, "train")
model, _, _ = tfclust.build_autoencoder(seed=seed)
ds = tfclust.data.autoencoder_pipeline(images, batch_size=256, seed=seed)
extra = {} if spe == "baseline" else {"steps_per_execution": int(spe)}
print(json.dumps({"ready": tfclust.__file__}), flush=True)
for epoch, _ in enumerate(sys.stdin):
    start = time.perf_counter()
    if epoch == 0:
        history = tfclust.train_autoencoder(model, ds, epochs=1, verbose=0, **extra)
    else:  # continue the same compiled model and optimiser state
        history = model.fit(ds, epochs=epoch + 1, initial_epoch=epoch, verbose=0)
    seconds = time.perf_counter() - start
    print(json.dumps({"loss": history.history["loss"][-1], "s": seconds}), flush=True)
"""


class Worker:
    """One tfclust variant in its own process, trained an epoch at a time."""

    def __init__(self, name, args, spe, checkout=""):
        command = [sys.executable, "-c", WORKER, args.dataset, str(args.seed), spe, checkout]
        self.name = name
        self.proc = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        self.module = self._answer()["ready"]
        print(f"{name}: {self.module}", file=sys.stderr)

    def _answer(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"worker {self.name} died (exit {self.proc.wait()})")
        return json.loads(line)

    def epoch(self) -> dict:
        self.proc.stdin.write("epoch\n")
        self.proc.stdin.flush()
        return self._answer()

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="fashion_mnist")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--baseline", default="/tmp/ae_base", help="checkout of the old tfclust")
    parser.add_argument("--sweep", default="1,8,128", help="other steps_per_execution to time")
    args = parser.parse_args()

    images, _ = data = tfclust.load_dataset(args.dataset, "train")
    print(f"data: {data.source}, {len(images)} images", file=sys.stderr)
    default = tfclust.autoencoder.STEPS_PER_EXECUTION
    sweep = [int(v) for v in args.sweep.split(",") if v and int(v) != default]

    # The tutorial: numpy arrays divided by 255.0, model.fit(..., batch_size=256).
    train_x = (images / 255.0).reshape(-1, 28, 28, 1)
    keras.utils.set_random_seed(args.seed)
    tutorial = tfclust.autoencoder.tutorial_model()
    tutorial.compile(optimizer=keras.optimizers.Adam(), loss="mse")

    workers = {"baseline": Worker("baseline", args, "baseline", args.baseline)}
    workers["tfclust"] = Worker("tfclust", args, str(default))
    for spe in sweep:
        workers[f"spe_{spe}"] = Worker(f"spe_{spe}", args, str(spe))

    rows = []
    for epoch in range(args.epochs):
        row = {"epoch": epoch + 1, "load_1min": os.getloadavg()[0]}
        start = time.perf_counter()
        h_tut = tutorial.fit(
            train_x, train_x, batch_size=256, epochs=epoch + 1, initial_epoch=epoch, verbose=0
        )
        row["tutorial_s"] = time.perf_counter() - start
        row["tutorial_loss"] = h_tut.history["loss"][-1]
        # Alternate the order of the variants from epoch to epoch.
        names = list(workers) if epoch % 2 == 0 else list(reversed(workers))
        for name in names:
            out = workers[name].epoch()
            row[f"{name}_s"], row[f"{name}_loss"] = out["s"], out["loss"]
        row["loss_ratio"] = row["tfclust_loss"] / row["tutorial_loss"]
        row["time_ratio"] = row["tfclust_s"] / row["tutorial_s"]
        row["vs_baseline_loss_ratio"] = row["tfclust_loss"] / row["baseline_loss"]
        row["vs_baseline_time_ratio"] = row["tfclust_s"] / row["baseline_s"]
        rows.append(row)
        print(
            f"epoch {epoch + 1} (load {row['load_1min']:.1f}): "
            + " | ".join(
                f"{n} {row[f'{n}_loss']:.5f} {row[f'{n}_s']:.1f}s" for n in ["tutorial", *workers]
            ),
            file=sys.stderr,
        )
    for worker in workers.values():
        worker.close()

    # The first epoch includes tracing and compilation for all; steady state is epochs 2..
    steady = rows[1:] or rows

    def median(key):
        return statistics.median(r[key] for r in steady)

    summary = {
        "dataset": data.source,
        "epochs": args.epochs,
        "seed": args.seed,
        "baseline": "tfclust at commit 8a3c1fc (before steps_per_execution and the uint8 "
        "pipeline), in a worker process like tfclust's",
        "steps_per_execution": default,
        "final_loss_ratio": rows[-1]["loss_ratio"],
        "median_time_ratio_after_first_epoch": median("time_ratio"),
        "total_time_ratio": sum(r["tfclust_s"] for r in rows) / sum(r["tutorial_s"] for r in rows),
        "final_vs_baseline_loss_ratio": rows[-1]["vs_baseline_loss_ratio"],
        "median_vs_baseline_time_ratio_after_first_epoch": median("vs_baseline_time_ratio"),
        "first_epoch_vs_baseline_time_ratio": rows[0]["vs_baseline_time_ratio"],
        "median_seconds_after_first_epoch": {
            name: median(f"{name}_s") for name in ["tutorial", *workers]
        },
        "median_load_1min": statistics.median(r["load_1min"] for r in rows),
        "goals": "final loss ratio <= 1.02; seconds per epoch ratio <= 1.05; vs the baseline: "
        "seconds per epoch ratio <= 0.8, loss within 1%",
    }
    report("autoencoder", rows, notes=summary)
    for key, value in summary.items():
        print(f"{key}: {value}")


if __name__ == "__main__":
    main()
