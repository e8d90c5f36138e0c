"""The ``tfclust`` command: the tutorial's steps from the shell."""

from __future__ import annotations

import argparse
import logging
import os
import sys

DESCRIPTION = """\
Unsupervised clustering and visualisation of images in TensorFlow.

  run      the whole tutorial: load data, train the autoencoder, encode every image
  train    load data and train the autoencoder (saves <out>/autoencoder.keras)
  encode   encode images with a saved autoencoder (saves <out>/latents.npy, labels.npy)

Data: --dataset auto uses full MNIST where it can be had (local files, Keras' cache,
TensorFlow Datasets) and otherwise the 5,000-digit MNIST sample, with a warning.
"""


def _add_data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", default="auto",
                   choices=["auto", "mnist", "fashion_mnist", "mnist_sample"],
                   help="data set to use (default: auto = MNIST, else the MNIST sample)")
    p.add_argument("--data-dir", default=None,
                   help="folder with IDX files or a .npz (default: $TFCLUST_DATA_DIR)")
    p.add_argument("--out", default=None,
                   help="output folder (default: a new timestamped folder under runs/)")


def _add_training_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--epochs", type=int, default=20, help="autoencoder epochs (default 20)")
    p.add_argument("--batch-size", type=int, default=256, help="batch size (default 256)")
    p.add_argument("--latent-dim", type=int, default=64, help="latent size (default 64)")
    p.add_argument("--seed", type=int, default=0, help="seed for weights and shuffling")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tfclust", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("run", parents=[common], help="the whole tutorial, end to end",
                       description="Load data, train the autoencoder (or --model), encode.")
    _add_data_args(p)
    _add_training_args(p)
    p.add_argument("--model", default=None, help="reuse a saved autoencoder instead of training")

    p = sub.add_parser("train", parents=[common], help="train the autoencoder",
                       description="Load data, train the autoencoder, save it as "
                                   "<out>/autoencoder.keras with metrics.json.")
    _add_data_args(p)
    _add_training_args(p)

    p = sub.add_parser("encode", parents=[common], help="encode images with a saved autoencoder",
                       description="Encode every image of a data set with a saved autoencoder; "
                                   "save <out>/latents.npy (float32 N x latent) and labels.npy.")
    _add_data_args(p)
    p.add_argument("--model", required=True, help="a saved autoencoder (.keras)")
    return parser


def _config_from_args(args: argparse.Namespace):
    from tfclust.pipeline import RunConfig

    fields = {k: v for k, v in vars(args).items() if k in RunConfig.__dataclass_fields__}
    config = RunConfig(**fields)
    config.stop_after = {"train": "autoencoder", "encode": "encode"}.get(args.command)
    return config


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    from tfclust.data import DataUnavailableError
    from tfclust.pipeline import run

    config = _config_from_args(args)
    try:
        metrics = run(config)
    except (ValueError, TypeError, DataUnavailableError) as err:
        print(f"tfclust {args.command}: error: {err}", file=sys.stderr)
        return 2
    stages = ", ".join(f"{k} {v['seconds']:.1f}s" for k, v in metrics["stages"].items())
    print(f"tfclust {args.command}: done ({stages}); outputs in {metrics['out']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
