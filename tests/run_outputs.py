"""What a whole ``tfclust run`` writes, and the retracing it must not do: shared by the tests
of its data sources."""

import contextlib
import logging

EVERY_FIGURE = frozenset(
    {
        "sample_image",
        "t_vs_normal",
        "cluster_grid",
        "confusion_matrix",
        "tsne_scatter",
        "tsne_thumbnails",
        "perplexity_sweep",
        "loss_curve",
        "reconstructions",
    }
)
"""The figures of a run of labelled images with every stage (``choose_k`` too with
``n_clusters="auto"``; no ``confusion_matrix`` without labels)."""


@contextlib.contextmanager
def retracing_warnings():
    """The messages of TensorFlow's "triggered tf.function retracing" warnings in the block.

    TensorFlow warns when 5 of a function's last 10 calls traced it, at most twice per function
    and process; its counts start afresh for the block, as in a new process, so that what other
    tests traced before neither adds to nor uses up the block's warnings.
    """
    from tensorflow.python.eager.polymorphic_function import polymorphic_function

    counts = polymorphic_function._frequent_tracing_detector_manager
    polymorphic_function._frequent_tracing_detector_manager = type(counts)()
    messages = []

    class Collect(logging.Handler):
        def emit(self, record):
            if "retracing" in record.getMessage():
                messages.append(record.getMessage())

    handler = Collect(logging.WARNING)
    tf_logger = logging.getLogger("tensorflow")
    level = tf_logger.level
    if tf_logger.getEffectiveLevel() > logging.WARNING:
        tf_logger.setLevel(logging.WARNING)
    tf_logger.addHandler(handler)
    try:
        yield messages
    finally:
        tf_logger.removeHandler(handler)
        tf_logger.setLevel(level)
        polymorphic_function._frequent_tracing_detector_manager = counts
