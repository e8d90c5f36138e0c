"""The tutorial's autoencoder (Sequential, model.fit on numpy) vs tfclust's (Functional, tf.data).

Same data (Fashion-MNIST 60k by default, offline through Debian's package), same seed, same
epochs and batch size. The two are trained in alternation, one epoch each in turn, so that load
from other processes on a shared machine hits both alike. Reports the loss and the seconds of
every epoch, and the ratios tfclust / tutorial.

    python benchmarks/bench_autoencoder.py [--dataset fashion_mnist] [--epochs 20]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
from common import report  # noqa: E402

import tfclust  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="fashion_mnist")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    images, _ = data = tfclust.load_dataset(args.dataset, "train")
    print(f"data: {data.source}, {len(images)} images", file=sys.stderr)

    # The tutorial: numpy arrays divided by 255.0, model.fit(..., batch_size=256).
    train_x = (images / 255.0).reshape(-1, 28, 28, 1)
    keras.utils.set_random_seed(args.seed)
    tutorial = tfclust.autoencoder.tutorial_model()
    tutorial.compile(optimizer=keras.optimizers.Adam(), loss="mse")

    ours, _, _ = tfclust.build_autoencoder(seed=args.seed)
    ds = tfclust.data.autoencoder_pipeline(images, batch_size=256, seed=args.seed)

    rows = []
    for epoch in range(args.epochs):
        start = time.perf_counter()
        h_tut = tutorial.fit(
            train_x, train_x, batch_size=256, epochs=epoch + 1, initial_epoch=epoch, verbose=0
        )
        t_tut = time.perf_counter() - start
        start = time.perf_counter()
        if epoch == 0:
            h_ours = tfclust.train_autoencoder(ours, ds, epochs=1, verbose=0)
        else:  # continue the same compiled model and optimiser state
            h_ours = ours.fit(ds, epochs=epoch + 1, initial_epoch=epoch, verbose=0)
        t_ours = time.perf_counter() - start
        loss_tut, loss_ours = h_tut.history["loss"][-1], h_ours.history["loss"][-1]
        rows.append(
            {
                "epoch": epoch + 1,
                "tutorial_loss": loss_tut,
                "tfclust_loss": loss_ours,
                "loss_ratio": loss_ours / loss_tut,
                "tutorial_s": t_tut,
                "tfclust_s": t_ours,
                "time_ratio": t_ours / t_tut,
            }
        )
        print(
            f"epoch {epoch + 1}: tutorial {loss_tut:.5f} {t_tut:.1f}s | "
            f"tfclust {loss_ours:.5f} {t_ours:.1f}s",
            file=sys.stderr,
        )

    # The first epoch includes tracing and compilation for both; steady state is epochs 2..
    steady = rows[1:] or rows
    summary = {
        "dataset": data.source,
        "epochs": args.epochs,
        "seed": args.seed,
        "final_loss_ratio": rows[-1]["loss_ratio"],
        "median_time_ratio_after_first_epoch": statistics.median(r["time_ratio"] for r in steady),
        "total_time_ratio": sum(r["tfclust_s"] for r in rows) / sum(r["tutorial_s"] for r in rows),
        "goals": "final loss ratio <= 1.02; seconds per epoch ratio <= 1.05",
    }
    report("autoencoder", rows, notes=summary)
    for key, value in summary.items():
        print(f"{key}: {value}")


if __name__ == "__main__":
    main()
