"""The ``tfclust`` command: the tutorial's steps from the shell."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import re
import sys
import tempfile

DESCRIPTION = """\
Unsupervised clustering and visualisation of images in TensorFlow.

  run      the whole tutorial: data -> autoencoder -> latents -> K-means -> t-SNE ->
           figures, metrics.json, TensorBoard projector (and a SavedModel with --export)
  train    load data and train the autoencoder (saves <out>/autoencoder.keras)
  encode   encode images with a saved autoencoder (saves <out>/latents.npy, labels.npy)
  embed    t-SNE of saved latents, e.g. all 60,000 (saves the embedding and a scatter plot)
  export   a saved autoencoder + K-means centres -> SavedModel for TF Serving

Data: --images DIR clusters your own images (a folder of PNG/JPEG/BMP/GIF files, class
sub-folders giving labels, or a .npy/.npz array). Otherwise --dataset auto uses full MNIST where
it can be had (local files, Keras' cache, TensorFlow Datasets) and else the 5,000-digit MNIST
sample, with a warning.
"""


def _positive_or_all(text: str):
    return "all" if text == "all" else int(text)


def _float_list(text: str) -> tuple[float, ...]:
    if text in ("", "none"):
        return ()
    return tuple(float(v) for v in text.split(","))


def _image_size(text: str) -> tuple[int, int]:
    """``"64"``, ``"64x48"`` or ``"64,48"`` (height x width) -> (64, 64) or (64, 48)."""
    parts = re.split(r"[x,]", text.strip().lower())
    try:
        sizes = [int(v) for v in parts]
    except ValueError:
        sizes = []
    if len(sizes) not in (1, 2) or min(sizes) < 1:
        raise argparse.ArgumentTypeError(
            f"expected HEIGHTxWIDTH or SIZE in pixels (e.g. 64x48 or 32), got {text!r}"
        )
    return (sizes[0], sizes[-1])


def _n_clusters(text: str):
    if text == "auto":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or 'auto', got {text!r}") from None


def _k_range(text: str) -> tuple[int, int]:
    try:
        low, high = (int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LOW,HIGH (e.g. 2,15), got {text!r}") from None
    return low, high


def _add_data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--images",
        default=None,
        metavar="PATH",
        help="your own images: a folder of PNG/JPEG/BMP/GIF files (searched recursively; class "
        "sub-folders give labels) or a .npy/.npz array; replaces --dataset",
    )
    p.add_argument(
        "--image-size",
        type=_image_size,
        metavar="HxW",
        help="resize --images to HEIGHTxWIDTH pixels (default: keep their size)",
    )
    p.add_argument(
        "--color-mode",
        choices=["auto", "grayscale", "rgb"],
        help="--images as grey or RGB (default auto: grey when every image is grey)",
    )
    p.add_argument(
        "--skip-bad-images",
        action="store_const",
        const="skip",
        dest="on_error",
        help="leave out image files that cannot be decoded, with a warning (default: error)",
    )
    p.add_argument(
        "--dataset",
        default="auto",
        choices=["auto", "mnist", "fashion_mnist", "mnist_sample"],
        help="data set to use (default: auto = MNIST, else the MNIST sample)",
    )
    p.add_argument(
        "--data-dir",
        default=None,
        help="folder with IDX files or a .npz (default: $TFCLUST_DATA_DIR)",
    )
    p.add_argument(
        "--out", default=None, help="output folder (default: a new timestamped folder under runs/)"
    )
    existing = p.add_mutually_exclusive_group()
    existing.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --out: reuse each stage that finished there with the same "
        "settings and inputs, recompute the rest",
    )
    existing.add_argument(
        "--overwrite", action="store_true", help="clear --out (a tfclust run folder) first"
    )


def _add_training_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--epochs", type=int, help="autoencoder epochs (default 20)")
    p.add_argument(
        "--min-steps",
        type=int,
        help="train at least this many batches: more epochs on small data sets (default 400)",
    )
    p.add_argument("--batch-size", type=int, help="batch size (default 256)")
    p.add_argument("--latent-dim", type=int, help="latent size (default 64)")
    p.add_argument("--seed", type=int, help="seed for weights and shuffling (default 0)")


def _add_run_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", help="reuse a saved autoencoder (.keras) instead of training")
    p.add_argument(
        "--quick",
        action="store_true",
        help="a small run for smoke tests (6 epochs, 1,000 t-SNE points, ...); "
        "explicit flags still win",
    )
    g = p.add_argument_group("K-means")
    g.add_argument(
        "--n-clusters",
        type=_n_clusters,
        help="clusters, or 'auto': the k in --k-range with the highest silhouette score "
        "(default 10)",
    )
    g.add_argument(
        "--k-range",
        type=_k_range,
        metavar="LOW,HIGH",
        help="the k tried by --n-clusters auto (default 2,15)",
    )
    g.add_argument("--n-init", type=int, help="restarts (default 10)")
    g.add_argument("--kmeans-seed", type=int, help="K-means random_state (default 42)")
    g = p.add_argument_group("clustering")
    g.add_argument(
        "--clustering",
        choices=["kmeans", "gmm", "manifold", "dec"],
        help="the clustering that colours the figures and fills metrics.json's 'clustering': "
        "the tutorial's kmeans (default), gmm (Gaussian mixture on the latents), manifold "
        "(Gaussian mixture on a t-SNE map of all latents) or dec (IDEC: fine-tunes the "
        "autoencoder); K-means always runs too",
    )
    g = p.add_argument_group("t-SNE")
    g.add_argument(
        "--tsne-samples",
        type=_positive_or_all,
        help="embed N latents (all if there are fewer): a data set's first, your own images "
        "drawn at random; or 'all' (default 5000; 0 skips t-SNE)",
    )
    g.add_argument("--perplexity", type=float, help="perplexity (default 15)")
    g.add_argument("--tsne-learning-rate", type=float, help="learning rate (default 100)")
    g.add_argument("--tsne-max-iter", type=int, help="iterations (default 1000)")
    g.add_argument("--tsne-seed", type=int, help="t-SNE random_state (default 0)")
    g.add_argument(
        "--tsne-method",
        choices=["exact", "fft"],
        help="t-SNE gradient method (default: TSNE's default)",
    )
    g.add_argument(
        "--sweep-perplexities",
        type=_float_list,
        help="comma-separated perplexities for the sweep figure, or 'none' "
        "(default 5,10,15,25,50,100)",
    )
    g.add_argument("--sweep-samples", type=int, help="latents in the sweep (default 5000)")
    p.add_argument(
        "--color-by",
        choices=["auto", "label", "cluster"],
        help="colour the maps by class label or by --clustering's cluster (default auto: by "
        "label when the images have labels)",
    )
    p.add_argument(
        "--export",
        action="store_true",
        help="also export encoder + K-means as a SavedModel for TF Serving",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tfclust",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    common = argparse.ArgumentParser(add_help=False)
    loudness = common.add_mutually_exclusive_group()
    loudness.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    loudness.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        dest="verbose_logs",  # not RunConfig.verbose, Keras' progress output
        help="also show TensorFlow's own log lines (its C++ start-up and runtime messages) and "
        "other libraries' INFO logs",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "run",
        parents=[common],
        help="the whole tutorial, end to end",
        description="The whole tutorial: load data, train the autoencoder (or "
        "--model), encode every image, K-means on all latents, t-SNE "
        "of --tsne-samples of them, a perplexity sweep, figures, "
        "metrics.json and a TensorBoard projector.",
    )
    _add_data_args(p)
    _add_training_args(p)
    _add_run_args(p)

    p = sub.add_parser(
        "train",
        parents=[common],
        help="train the autoencoder",
        description="Load data, train the autoencoder, save it as "
        "<out>/autoencoder.keras with metrics.json.",
    )
    _add_data_args(p)
    _add_training_args(p)

    p = sub.add_parser(
        "encode",
        parents=[common],
        help="encode images with a saved autoencoder",
        description="Encode every image of a data set with a saved autoencoder; "
        "save <out>/latents.npy (float32 N x latent), labels.npy (with labels) and "
        "file_names.txt (with --images of a folder).",
    )
    _add_data_args(p)
    p.add_argument("--model", required=True, help="a saved autoencoder (.keras)")

    p = sub.add_parser(
        "embed",
        parents=[common],
        help="t-SNE of saved latents",
        description="t-SNE of latents saved by 'tfclust encode' (all of them by "
        "default); saves <out>/embedding.npy, tsne_scatter.png and "
        "embed.json with the KL divergence and timings.",
    )
    p.add_argument("--latents", required=True, help="a .npy of latents (N x d)")
    p.add_argument("--labels", help="a .npy of labels to colour the scatter plot by")
    p.add_argument(
        "--samples",
        type=_positive_or_all,
        default="all",
        help="embed the first N latents, or 'all' (default)",
    )
    p.add_argument("--perplexity", type=float, default=30.0, help="perplexity (default 30)")
    p.add_argument(
        "--learning-rate",
        default="auto",
        help="learning rate, or 'auto' (default: max(N / 12 / 4, 50))",
    )
    p.add_argument("--max-iter", type=int, default=750, help="iterations (default 750)")
    p.add_argument(
        "--method",
        choices=["exact", "fft"],
        default=None,
        help="gradient method (default: TSNE's default)",
    )
    p.add_argument("--seed", type=int, default=0, help="random_state (default 0)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument(
        "--overwrite", action="store_true", help="replace the outputs of an earlier embed in --out"
    )

    p = sub.add_parser(
        "export",
        parents=[common],
        help="SavedModel for TF Serving",
        description="Write <out>/<version>/, a SavedModel with the signatures "
        "serving_default (float images), serving_uint8 (uint8 images) "
        "and encode, from a saved autoencoder and K-means centres.",
    )
    p.add_argument("--model", required=True, help="a saved autoencoder (.keras)")
    p.add_argument("--kmeans", required=True, help="K-means centres (.npy, k x latent)")
    p.add_argument(
        "--map",
        help="a saved ParametricTSNE (.npz, e.g. a run's parametric_tsne.npz): adds the "
        "output 'map', each image's position on the t-SNE map",
    )
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--version", type=int, default=1, help="model version folder (default 1)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing version")
    return parser


_RUN_STOPS = {"train": "autoencoder", "encode": "encode", "run": None}


def _run_config(args: argparse.Namespace):
    from tfclust.pipeline import RunConfig

    if args.images is None:
        given = [f for f in ("image_size", "color_mode", "on_error") if vars(args)[f] is not None]
        if given:
            flags = ", ".join("--" + f.replace("_", "-") for f in given)
            flags = flags.replace("--on-error", "--skip-bad-images")
            raise ValueError(f"{flags} apply to --images only")

    fields = {
        k: v for k, v in vars(args).items() if k in RunConfig.__dataclass_fields__ and v is not None
    }
    fields["stop_after"] = _RUN_STOPS[args.command]
    if args.quiet:
        fields["verbose"] = 0
    return RunConfig.quick(**fields) if getattr(args, "quick", False) else RunConfig(**fields)


def _run(args: argparse.Namespace) -> str:
    from tfclust.pipeline import run, summary

    metrics = run(_run_config(args))
    if not args.quiet:
        print(summary(metrics))
    return metrics["out"]


def _embed(args: argparse.Namespace) -> str:
    from tfclust.pipeline import embed_latents

    learning_rate = (
        args.learning_rate if args.learning_rate == "auto" else float(args.learning_rate)
    )
    return embed_latents(
        args.latents,
        args.out,
        labels_path=args.labels,
        samples=args.samples,
        perplexity=args.perplexity,
        learning_rate=learning_rate,
        max_iter=args.max_iter,
        method=args.method,
        seed=args.seed,
        overwrite=args.overwrite,
    )


def _export(args: argparse.Namespace) -> str:
    from tfclust.serving import export_from_files

    return export_from_files(
        args.model,
        args.kmeans,
        args.out,
        version=args.version,
        overwrite=args.overwrite,
        map_path=args.map,
    )


_COMMANDS = {"run": _run, "train": _run, "encode": _run, "embed": _embed, "export": _export}


_TF_LOG_LEVEL = "TF_CPP_MIN_LOG_LEVEL"
_QUIET_TF_LOG_LEVEL = 3
"""TensorFlow's C++ logging threshold unless -v or the user's own TF_CPP_MIN_LOG_LEVEL: fatal
messages only. At 2 (errors) TensorFlow 2.21 still prints ``failed call to cuInit`` on every
CPU-only machine, and three ERROR lines (``Error parsing text-format
tensorflow.XlaSerializedCacheEntry``, ``cpu_aot_loader ... Target machine feature ... is not
supported``) for every program it loads from the persistent XLA cache. A run's real errors reach
the user as Python exceptions."""

# A line of TensorFlow's C++ logging: absl's format (severity letter, MMDD, time, thread,
# file:line], as TF 2.21 writes) or TensorFlow's older one ("2025-09-17 14:44:05.157831: I ").
_TF_LOG_LINE = re.compile(
    r"(?:([IWEF])\d{4} \d\d:\d\d:\d+\.\d+ +\d+ [^\s\]]+:\d+\] )"
    r"|(?:\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: ([IWEF]) )"
)
_TF_SEVERITY = {"I": 0, "W": 1, "E": 2, "F": 3}
_ABSL_PREINIT = "WARNING: All log messages before absl::InitializeLog() is called"
_PYTHON_WARNING = re.compile(r"\S.*:\d+: \w*Warning: ")


def _tensorflow_log_level(verbose: bool, environ=os.environ) -> int | None:
    """Set TF_CPP_MIN_LOG_LEVEL for a run and return the level to filter start-up lines at.

    ``None`` (-v): nothing is set or filtered. A level the user set is kept and also applied to
    the start-up lines that TensorFlow prints before it reads the variable.
    """
    if verbose:
        return None
    if _TF_LOG_LEVEL not in environ:
        environ[_TF_LOG_LEVEL] = str(_QUIET_TF_LOG_LEVEL)
    try:
        return int(environ[_TF_LOG_LEVEL])
    except ValueError:
        return 0  # TensorFlow treats an unparsable level as 0: show everything


def _filter_tensorflow_lines(text: str, min_level: int) -> str:
    """``text`` without TensorFlow's C++ log messages below ``min_level`` (0 I ... 3 F).

    absl's notice that messages go to stderr before ``absl::InitializeLog()`` counts as a
    warning. Other lines continue the message before them (cpu_feature_guard's has two lines),
    except Python warnings; before any message they are kept.
    """
    kept, keep, in_message = [], True, False
    for line in text.splitlines(keepends=True):
        match = _TF_LOG_LINE.match(line)
        if match:
            severity = match.group(1) or match.group(2)
            keep, in_message = _TF_SEVERITY[severity] >= min_level, True
        elif line.startswith(_ABSL_PREINIT):
            keep, in_message = min_level <= _TF_SEVERITY["W"], False
        elif _PYTHON_WARNING.match(line):
            keep, in_message = True, False
        elif not in_message:
            keep = True
        if keep:
            kept.append(line)
    return "".join(kept)


@contextlib.contextmanager
def _stderr_captured(min_level: int):
    """Collect what is written to file descriptor 2 (C++ code included) and write it back
    through :func:`_filter_tensorflow_lines` at the end; unfiltered if the body raises."""
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no stderr to capture
        yield
        return
    with tempfile.TemporaryFile() as buffer:
        os.dup2(buffer.fileno(), 2)
        failed = True
        try:
            yield
            failed = False
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            buffer.seek(0)
            text = buffer.read().decode("utf-8", "replace")
            if not failed:
                text = _filter_tensorflow_lines(text, min_level)
            sys.stderr.write(text)
            sys.stderr.flush()


def _import_tensorflow(verbose: bool) -> None:
    """Import TensorFlow with its start-up lines shown only with -v (or the user's own
    TF_CPP_MIN_LOG_LEVEL). TensorFlow 2.21 prints the oneDNN and CUDA-driver notices through
    absl before it reads TF_CPP_MIN_LOG_LEVEL, so these are filtered from stderr here."""
    level = _tensorflow_log_level(verbose)
    filtered = level is not None and "tensorflow" not in sys.modules
    with _stderr_captured(level) if filtered else contextlib.nullcontext():
        import tensorflow  # noqa: F401


def _tfclust_or_warning(record: logging.LogRecord) -> bool:
    return record.levelno >= logging.WARNING or record.name.split(".")[0] == "tfclust"


def _configure_logging(quiet: bool, verbose: bool) -> None:
    """tfclust's INFO logs (unless -q) and other libraries' warnings on stderr; with -v other
    libraries' INFO logs too (absl's, TensorFlow's). Leaves logging alone if it is set up."""
    root = logging.getLogger()
    if root.handlers:
        return
    logging.basicConfig(
        level=logging.WARNING if quiet else logging.INFO,
        format="%(asctime)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    if not verbose:
        for handler in root.handlers:
            handler.addFilter(_tfclust_or_warning)


def _one_line(err) -> str:
    """A TensorFlow error as one line: its type and the first line of its message, without the
    ``{{function_node ...}}`` prefix of errors raised inside a graph."""
    message = re.sub(r"\{\{function_node [^}]*\}\}\s*", "", err.message).strip()
    return f"{type(err).__name__}: {message.splitlines()[0] if message else ''}"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _configure_logging(args.quiet, args.verbose_logs)
    _import_tensorflow(args.verbose_logs)
    import tensorflow as tf

    from tfclust.data import DataUnavailableError

    try:
        out = _COMMANDS[args.command](args)
    except (ValueError, TypeError, OSError, DataUnavailableError) as err:
        print(f"tfclust {args.command}: error: {err}", file=sys.stderr)
        return 2
    except tf.errors.OpError as err:  # e.g. a full disk or too little memory, met inside TF
        logging.getLogger("tfclust.cli").debug("TensorFlow error", exc_info=True)
        print(f"tfclust {args.command}: error: {_one_line(err)}", file=sys.stderr)
        return 2
    print(f"tfclust {args.command}: done; outputs in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
