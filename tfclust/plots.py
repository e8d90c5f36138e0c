"""The tutorial's figures, each returned as a :class:`matplotlib.figure.Figure`.

Figures are built with the object-oriented API on an Agg canvas, never through ``pyplot``: they
work headless, do not touch the user's backend, and are freed with the last reference (no
``plt.close`` needed). Write one to a PNG with :func:`save_figure`; its size in pixels is the
figure size in inches times ``dpi``.

Images may be grey, (N, H, W), (N, H, W, 1) or flattened (N, H*W) square images, or RGB,
(N, H, W, 3), as uint8 in [0, 255] or floats in [0, 1] (numpy arrays or tensors); grey images are
drawn in grey, RGB ones in colour. Labels are integer colour ids in ``[0, n_classes)``: classes or
K-means clusters; the figures coloured by them take ``class_names`` (the names of the ids, shown
on the colour bar) and ``color_label`` (what the colour means, the colour bar's label).
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Mapping, Sequence

import numpy as np
import scipy.stats
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import BoundaryNorm, Colormap
from matplotlib.figure import Figure
from matplotlib.offsetbox import AnnotationBbox, OffsetImage
from matplotlib.ticker import MaxNLocator

from tfclust._files import atomic_path
from tfclust._validation import check_float, check_int
from tfclust.data.pipeline import check_images


def _figure(width: float, height: float) -> Figure:
    """A new constrained-layout figure of ``width`` x ``height`` inches on an Agg canvas."""
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig: Figure, path: str | os.PathLike, dpi: float = 100) -> str:
    """Write ``fig`` as a PNG of ``figsize * dpi`` pixels, creating parent directories.

    Args:
      fig: a figure returned by this module (or any matplotlib figure).
      path: destination file; written as PNG whatever its extension.
      dpi: pixels per inch, > 0.

    Returns:
      ``path`` as a string.

    Examples:
      >>> import numpy as np
      >>> from tfclust import plots
      >>> import os, tempfile
      >>> fig = plots.t_vs_normal()
      >>> path = os.path.join(tempfile.mkdtemp(), "figures", "t.png")
      >>> path = plots.save_figure(fig, path, dpi=50)
      >>> os.path.basename(path), os.path.getsize(path) > 0
      ('t.png', True)
    """
    if not isinstance(fig, Figure):
        raise TypeError(f"fig must be a matplotlib Figure, got {type(fig).__name__}")
    dpi = check_float(dpi, name="dpi", low=0.0, low_inclusive=False)
    path = os.fspath(path)
    parent = os.path.dirname(path)
    if parent:
        os.makedirs(parent, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")
    return path


def _finite_array(values, name: str) -> np.ndarray:
    """``values`` as a float64 numpy array; raises on non-numeric or NaN/inf entries."""
    arr = np.asarray(values)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be numeric, got dtype {arr.dtype}")
    arr = arr.astype(np.float64)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinity")
    return arr


def _as_images(images, name: str = "images") -> np.ndarray:
    """Validate a non-empty stack of images (see :func:`tfclust.data.check_images`; rows of H*W
    pixels are taken for square grey images); returns (N, H, W) if grey, (N, H, W, 3) if RGB."""
    arr = np.asarray(images)
    if arr.ndim == 2:
        side = math.isqrt(arr.shape[1])
        if side * side != arr.shape[1] or side == 0:
            raise ValueError(
                f"{name} of shape {arr.shape}: rows of {arr.shape[1]} pixels are not square images"
            )
        arr = arr.reshape(-1, side, side)
    arr = check_images(arr, name)
    return arr[..., 0] if arr.shape[-1] == 1 else arr


def _is_grey(imgs: np.ndarray) -> bool:
    """Whether ``imgs`` from :func:`_as_images` are grey (N, H, W) rather than RGB."""
    return imgs.ndim == 3


def _as_embedding(embedding, name: str = "embedding") -> np.ndarray:
    """Validate a non-empty (N, 2) embedding; returns float64."""
    arr = _finite_array(embedding, name)
    if arr.ndim != 2 or arr.shape[1] != 2 or arr.shape[0] == 0:
        raise ValueError(f"{name} must have shape (N, 2) with N >= 1, got {arr.shape}")
    return arr


def _as_class_labels(labels, n: int, n_classes: int, name: str = "labels") -> np.ndarray:
    """Validate (n,) integer labels in ``[0, n_classes)``; returns int64."""
    arr = np.asarray(labels)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ValueError(f"{name} must have shape ({n},) to match the data, got {arr.shape}")
    if arr.dtype.kind not in "iu":
        raise TypeError(f"{name} must be integers, got dtype {arr.dtype}")
    if arr.size and (arr.min() < 0 or arr.max() >= n_classes):
        raise ValueError(
            f"{name} must lie in [0, {n_classes}), got values in [{arr.min()}, {arr.max()}]"
        )
    return arr.astype(np.int64)


MAX_CLASSES = 100
"""The most classes a figure colours apart (beyond that, neighbouring colours are too close)."""

MAX_GRID_ROWS = 50
"""The most clusters :func:`cluster_grid` shows (60 inches tall at 1.2 inches per row)."""

THUMBNAIL_MAX_INCHES = 0.5
"""The largest width or height of a thumbnail in :func:`tsne_thumbnails`."""


def _check_n_classes(n_classes) -> int:
    return check_int(n_classes, name="n_classes", low=1, high=MAX_CLASSES)


def _class_colors(n_classes: int) -> tuple[Colormap, BoundaryNorm]:
    """The tutorial's discrete rainbow palette: one colour per class, bins centred on 0..n-1."""
    cmap = colormaps["rainbow"].resampled(n_classes)
    return cmap, BoundaryNorm(np.arange(n_classes + 1) - 0.5, n_classes)


def _check_color_key(class_names, color_label, n_classes: int) -> list[str] | None:
    """Validate ``class_names`` (>= ``n_classes`` strings, or None) and ``color_label`` (a
    string); returns the names of colour ids 0..n_classes-1, or None."""
    if not isinstance(color_label, str):
        raise TypeError(f"color_label must be a string, got {color_label!r}")
    if class_names is None:
        return None
    if isinstance(class_names, str | bytes) or not isinstance(class_names, Sequence | np.ndarray):
        raise TypeError(f"class_names must be a sequence of strings, got {class_names!r}")
    names = list(class_names)
    if not all(isinstance(name, str) for name in names):
        raise TypeError(f"class_names must be strings, got {names!r}")
    if len(names) < n_classes:
        raise ValueError(
            f"class_names has {len(names)} names but n_classes is {n_classes}: "
            f"every colour needs a name"
        )
    return names[:n_classes]


def _class_colorbar(
    fig: Figure, mappable, ax, n_classes: int, names: list[str] | None, label: str, **kwargs
) -> None:
    """A colour bar with one tick centred on each colour, labelled with ``names`` if given."""
    bar = fig.colorbar(mappable, ax=ax, label=label, **kwargs)
    bar.set_ticks(np.arange(n_classes), labels=names)


def _class_scatter(ax, embedding: np.ndarray, labels: np.ndarray | None, n_classes: int):
    """Scatter an (N, 2) embedding with '.' markers, coloured by class when ``labels`` given."""
    if labels is None:
        return ax.scatter(embedding[:, 0], embedding[:, 1], marker=".", color="tab:grey")
    cmap, norm = _class_colors(n_classes)
    return ax.scatter(embedding[:, 0], embedding[:, 1], marker=".", c=labels, cmap=cmap, norm=norm)


def _hide_frame(ax) -> None:
    """Hide ticks and spines but keep the axis labels (which constrained layout makes room for)."""
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)


def sample_image(image, label=None) -> Figure:
    """One image: grey with a colour bar of its pixel values (the tutorial's first plot), or RGB.

    Args:
      image: one grey (H, W), (H, W, 1) or flattened (H*W,) square image, or one RGB
        (H, W, 3) image.
      label: optional class, an integer id or a class name (string), shown in the title as
        ``"label: <label>"``; None (the default) for no title.

    Returns:
      A 5 x 4 inch figure; grey images get a colour bar, RGB images none.

    Examples:
      >>> import numpy as np
      >>> from tfclust import plots
      >>> fig = plots.sample_image(np.zeros((28, 28), dtype=np.uint8), label=3)
      >>> type(fig).__name__
      'Figure'
    """
    imgs = _as_images(np.asarray(image)[np.newaxis], name="image")
    if label is not None and (
        isinstance(label, bool) or not isinstance(label, numbers.Integral | str)
    ):
        raise TypeError(f"label must be an integer, a string or None, got {label!r}")
    fig = _figure(5.0, 4.0)
    ax = fig.add_subplot()
    if _is_grey(imgs):
        fig.colorbar(ax.imshow(imgs[0], cmap="gray"), ax=ax)
    else:
        ax.imshow(imgs[0])
    if label is not None:
        ax.set_title(f"label: {label}")
    return fig


def cluster_grid(
    images, cluster_labels, n_clusters: int = 10, per_cluster: int = 10, method: str = "K-means"
) -> Figure:
    """Row i shows the first ``per_cluster`` images of cluster i; blank cells if it has fewer.

    Args:
      images: grey (N, H, W), (N, H, W, 1) or (N, H*W) images, or RGB (N, H, W, 3) images.
      cluster_labels: (N,) integer cluster ids in ``[0, n_clusters)``.
      n_clusters: number of clusters (default 10); with more than :data:`MAX_GRID_ROWS`, only
        the ``MAX_GRID_ROWS`` largest are shown (in order of cluster id) and the title says so.
      per_cluster: number of columns, 1 to 100 (default 10).
      method: the clustering's name, for the title (default "K-means").

    Returns:
      A figure of 1.2 inches per cell (12 x 12 inches for 10 x 10), no ticks or frames, titled
      "K-means clusters (rows): first 10 images of each" (with ``method``'s name); each row
      is labelled with its cluster id and size on two lines ("cluster 3", "(n=512)").

    Examples:
      >>> import numpy as np
      >>> from tfclust import plots
      >>> images = np.zeros((6, 28, 28), dtype=np.uint8)
      >>> fig = plots.cluster_grid(images, [0, 1, 0, 1, 2, 2], n_clusters=3, per_cluster=2)
      >>> type(fig).__name__
      'Figure'
    """
    imgs = _as_images(images)
    n_clusters = check_int(n_clusters, name="n_clusters", low=1)
    per_cluster = check_int(per_cluster, name="per_cluster", low=1, high=100)
    if not isinstance(method, str):
        raise TypeError(f"method must be a string, got {method!r}")
    labels = _as_class_labels(cluster_labels, imgs.shape[0], n_clusters, "cluster_labels")
    sizes = np.bincount(labels, minlength=n_clusters)
    shown = np.sort(np.argsort(-sizes, kind="stable")[:MAX_GRID_ROWS])
    fig = _figure(1.2 * per_cluster, 1.2 * len(shown))
    axes = fig.subplots(len(shown), per_cluster, squeeze=False)
    for cluster, row in zip(shown, axes, strict=True):
        members = np.flatnonzero(labels == cluster)
        for ax, index in zip(row, members[:per_cluster], strict=False):
            ax.imshow(imgs[index], cmap="gray" if _is_grey(imgs) else None)
        for ax in row[1:]:
            ax.set_axis_off()
        _hide_frame(row[0])
        row[0].set_ylabel(
            f"cluster {cluster}\n(n={members.size})",
            rotation=0,
            ha="right",
            va="center",
            fontsize=9,
        )
    images_of = f"{per_cluster} images" if per_cluster > 1 else "image"
    title = f"{method} clusters (rows): first {images_of} of each"
    if len(shown) < n_clusters:
        title += f"\n(the {len(shown)} largest of {n_clusters} clusters)"
    fig.suptitle(title)
    return fig


def confusion_matrix(labels, cluster_labels, class_names=None, method: str = "K-means") -> Figure:
    """Classes (rows) against clusters (columns), the columns in the order of their matched
    classes (:func:`tfclust.metrics.contingency_matrix` with ``match=True``), so a good
    clustering shows a bright diagonal.

    Args:
      labels: (N,) integer class labels.
      cluster_labels: (N,) integer cluster ids.
      class_names: names of the classes 0, 1, ... for the row ticks (a sequence of strings
        covering every label), or None (default): the label values.
      method: the clustering's name, for the title (default "K-means").

    Returns:
      A figure of about 0.5 inch per cell (at least 5 x 4 inches): counts in each cell, colour by
      the fraction of the class's samples in it, titled with ``method`` and the clustering
      accuracy.

    Raises:
      TypeError: non-integer labels, bad ``class_names`` or ``method``.
      ValueError: labels not 1-D, empty, of different lengths, or a label without a name.

    Examples:
      >>> from tfclust import plots
      >>> fig = plots.confusion_matrix([0, 0, 1, 1, 2], [1, 1, 0, 0, 0], ["a", "b", "c"])
      >>> fig.axes[0].get_title()
      'K-means clusters vs classes: accuracy 0.800'
    """
    from tfclust.metrics import cluster_accuracy, contingency_matrix

    for name, values in (("labels", labels), ("cluster_labels", cluster_labels)):
        if np.asarray(values).dtype.kind not in "iu":
            raise TypeError(f"{name} must be integers, got dtype {np.asarray(values).dtype}")
    if not isinstance(method, str):
        raise TypeError(f"method must be a string, got {method!r}")
    table, classes, clusters = contingency_matrix(labels, cluster_labels, match=True)
    names = [str(c) for c in classes]
    if class_names is not None:
        known = _check_color_key(class_names, "", int(classes.max()) + 1)
        names = [known[c] for c in classes]
    fraction = table / table.sum(axis=1, keepdims=True)
    fig = _figure(max(5.0, 0.5 * len(clusters) + 2.5), max(4.0, 0.45 * len(classes) + 1.5))
    ax = fig.subplots()
    image = ax.imshow(fraction, cmap="Blues", vmin=0.0, vmax=1.0, aspect="auto")
    if table.size <= 40 * 40:
        for (row, col), count in np.ndenumerate(table):
            colour = "white" if fraction[row, col] > 0.5 else "black"
            ax.text(col, row, str(count), ha="center", va="center", fontsize=7, color=colour)
    ax.set_xticks(np.arange(len(clusters)), labels=[str(c) for c in clusters])
    ax.set_yticks(np.arange(len(classes)), labels=names)
    ax.set_xlabel("cluster (in the order of the matched classes)")
    ax.set_ylabel("class")
    accuracy = cluster_accuracy(labels, cluster_labels)
    ax.set_title(f"{method} clusters vs classes: accuracy {accuracy:.3f}")
    fig.colorbar(image, ax=ax, label="fraction of the class")
    return fig


def t_vs_normal(dof: float = 2.74) -> Figure:
    """Student's t density with ``dof`` degrees of freedom against the standard normal's.

    Args:
      dof: degrees of freedom, > 0 (the tutorial uses 2.74).

    Returns:
      A 6.4 x 4.8 inch figure of both pdfs on [-5, 5] with a legend.

    Examples:
      >>> import numpy as np
      >>> from tfclust import plots
      >>> fig = plots.t_vs_normal(dof=1.0)
      >>> len(fig.axes)
      1
    """
    dof = check_float(dof, name="dof", low=0.0, low_inclusive=False)
    x = np.linspace(-5.0, 5.0, 201)
    fig = _figure(6.4, 4.8)
    ax = fig.add_subplot()
    ax.plot(x, scipy.stats.t(dof).pdf(x), c="red", label=f"t-dist (dof={dof:g})")
    ax.plot(x, scipy.stats.norm().pdf(x), c="blue", label="normal-dist")
    ax.set_xlabel("x")
    ax.set_ylabel("probability density")
    ax.set_title("Student's t vs normal distribution")
    ax.legend()
    return fig


def tsne_scatter(
    embedding,
    labels,
    n_classes: int = 10,
    title: str | None = None,
    *,
    class_names: Sequence[str] | None = None,
    color_label: str = "class",
) -> Figure:
    """A 2-D map coloured by class, with a colour bar ticked at the centre of each class colour.

    Args:
      embedding: (N, 2) coordinates (e.g. t-SNE output).
      labels: (N,) integer classes (or clusters) in ``[0, n_classes)``, or None for grey points.
      n_classes: number of discrete colours (rainbow colormap), at most :data:`MAX_CLASSES`
        (default 10).
      title: optional axes title.
      class_names: names of the colour ids 0..n_classes-1 (e.g. folder names), at least
        ``n_classes`` strings (extra ones are unused); they label the colour bar's ticks instead
        of the ids. None (the default) keeps the ids.
      color_label: what the colour means, the colour bar's label (default "class"; e.g.
        "K-means cluster" when colouring by cluster).

    Returns:
      An 8 x 7 inch figure.

    Examples:
      >>> import numpy as np
      >>> from tfclust import plots
      >>> embedding = np.random.default_rng(0).normal(size=(30, 2))
      >>> fig = plots.tsne_scatter(embedding, np.arange(30) % 3, n_classes=3, title="t-SNE")
      >>> fig.axes[0].get_title()
      't-SNE'
      >>> fig = plots.tsne_scatter(embedding, np.arange(30) % 3, n_classes=3,
      ...                          class_names=["cats", "dogs", "owls"], color_label="cluster")
      >>> [t.get_text() for t in fig.axes[1].get_yticklabels()], fig.axes[1].get_ylabel()
      (['cats', 'dogs', 'owls'], 'cluster')
    """
    emb = _as_embedding(embedding)
    n_classes = _check_n_classes(n_classes)
    names = _check_color_key(class_names, color_label, n_classes)
    if labels is not None:
        labels = _as_class_labels(labels, emb.shape[0], n_classes)
    fig = _figure(8.0, 7.0)
    ax = fig.add_subplot()
    points = _class_scatter(ax, emb, labels, n_classes)
    if labels is not None:
        _class_colorbar(fig, points, ax, n_classes, names, color_label)
    if title is not None:
        ax.set_title(title)
    return fig


def placed_points(
    reference,
    new,
    labels,
    n_classes: int = 10,
    title: str | None = None,
    *,
    class_names: Sequence[str] | None = None,
    color_label: str = "class",
) -> Figure:
    """New points placed on an existing map: the map in light grey, the new points on top,
    coloured by class (e.g. from :meth:`tfclust.TSNE.transform` or
    :meth:`tfclust.ParametricTSNE.transform`).

    Args:
      reference: (N, 2) coordinates of the existing map.
      new: (M, 2) coordinates of the new points.
      labels: (M,) integer classes (or clusters) of the new points in ``[0, n_classes)``, or
        None for black points.
      n_classes, title, class_names, color_label: as :func:`tsne_scatter`.

    Returns:
      An 8 x 7 inch figure.

    Examples:
      >>> import numpy as np
      >>> from tfclust import plots
      >>> rng = np.random.default_rng(0)
      >>> fig = plots.placed_points(rng.normal(size=(50, 2)), rng.normal(size=(5, 2)),
      ...                           np.arange(5) % 2, n_classes=2, title="new points")
      >>> fig.axes[0].get_title(), len(fig.axes[0].collections)
      ('new points', 2)
    """
    ref = _as_embedding(reference, "reference")
    emb = _as_embedding(new, "new")
    n_classes = _check_n_classes(n_classes)
    names = _check_color_key(class_names, color_label, n_classes)
    if labels is not None:
        labels = _as_class_labels(labels, emb.shape[0], n_classes)
    fig = _figure(8.0, 7.0)
    ax = fig.add_subplot()
    ax.scatter(ref[:, 0], ref[:, 1], marker=".", s=12, color="0.85", label="map")
    if labels is None:
        ax.scatter(emb[:, 0], emb[:, 1], marker="o", s=14, color="black", label="new points")
    else:
        cmap, norm = _class_colors(n_classes)
        points = ax.scatter(
            emb[:, 0],
            emb[:, 1],
            marker="o",
            s=14,
            c=labels,
            cmap=cmap,
            norm=norm,
            edgecolors="black",
            linewidths=0.3,
            label="new points",
        )
        _class_colorbar(fig, points, ax, n_classes, names, color_label)
    ax.legend(loc="best", markerscale=1.5)
    if title is not None:
        ax.set_title(title)
    return fig


def perplexity_grid(
    embeddings_by_perplexity: Mapping[float, np.ndarray],
    labels,
    n_classes: int = 10,
    *,
    class_names: Sequence[str] | None = None,
    color_label: str = "class",
) -> Figure:
    """One map per perplexity, two per row (3 x 2 for the tutorial's six), titled by perplexity.

    Args:
      embeddings_by_perplexity: perplexity -> (N, 2) embedding, all of the same N; shown in
        the mapping's order.
      labels: (N,) integer classes (or clusters) in ``[0, n_classes)``, or None for grey points.
      n_classes: number of discrete colours, at most :data:`MAX_CLASSES` (default 10).
      class_names: names of the colour ids 0..n_classes-1 (e.g. folder names), at least
        ``n_classes`` strings (extra ones are unused); they label the colour bar's ticks instead
        of the ids. None (the default) keeps the ids.
      color_label: what the colour means, the colour bar's label (default "class"; e.g.
        "K-means cluster" when colouring by cluster).

    Returns:
      A figure 8 inches wide and 4 inches per row, with one shared colour bar.

    Examples:
      >>> import numpy as np
      >>> from tfclust import plots
      >>> rng = np.random.default_rng(0)
      >>> maps = {5.0: rng.normal(size=(20, 2)), 10.0: rng.normal(size=(20, 2))}
      >>> fig = plots.perplexity_grid(maps, np.arange(20) % 2, n_classes=2)
      >>> type(fig).__name__
      'Figure'
    """
    if not isinstance(embeddings_by_perplexity, Mapping) or not embeddings_by_perplexity:
        raise ValueError("embeddings_by_perplexity must be a non-empty mapping")
    embeddings = {
        p: _as_embedding(e, f"embedding for perplexity {p}")
        for p, e in embeddings_by_perplexity.items()
    }
    n = next(iter(embeddings.values())).shape[0]
    for perplexity, emb in embeddings.items():
        if emb.shape[0] != n:
            raise ValueError(
                f"embedding for perplexity {perplexity} has {emb.shape[0]} points, expected {n}"
            )
    n_classes = _check_n_classes(n_classes)
    names = _check_color_key(class_names, color_label, n_classes)
    if labels is not None:
        labels = _as_class_labels(labels, n, n_classes)
    n_rows = math.ceil(len(embeddings) / 2)
    fig = _figure(8.0, 4.0 * n_rows)
    axes = fig.subplots(n_rows, 2, squeeze=False).ravel()
    for ax, (perplexity, emb) in zip(axes, embeddings.items(), strict=False):
        points = _class_scatter(ax, emb, labels, n_classes)
        ax.set_title(f"perplexity: {perplexity:g}")
    for ax in axes[len(embeddings) :]:
        ax.set_axis_off()
    if labels is not None:
        _class_colorbar(fig, points, axes, n_classes, names, color_label, shrink=0.8, aspect=50)
    return fig


def tsne_thumbnails(
    embedding,
    images,
    n_thumbnails: int = 200,
    seed: int = 0,
    labels=None,
    n_classes: int = 10,
    *,
    class_names: Sequence[str] | None = None,
    color_label: str = "class",
) -> Figure:
    """The 2-D map with ``n_thumbnails`` randomly chosen images drawn at their points.

    Args:
      embedding: (N, 2) coordinates.
      images: the same points' images: grey (N, H, W), (N, H, W, 1) or (N, H*W), drawn dark on
        white, or RGB (N, H, W, 3), drawn as they are. One image pixel is one typographic point
        (a 28 x 28 digit is 0.39 inches wide at any dpi), shrunk so that no thumbnail is more
        than :data:`THUMBNAIL_MAX_INCHES` wide or tall (a 128 x 128 image is 0.5 inches).
      n_thumbnails: how many images to draw (all N if fewer; default 200).
      seed: seed of the choice of images (default 0).
      labels: optional (N,) integer classes (or clusters) in ``[0, n_classes)`` colouring the
        points (grey points without them).
      n_classes: number of discrete colours (default 10).
      class_names: names of the colour ids 0..n_classes-1 (e.g. folder names), at least
        ``n_classes`` strings (extra ones are unused); they label the colour bar's ticks instead
        of the ids. None (the default) keeps the ids.
      color_label: what the colour means, the colour bar's label (default "class"; e.g.
        "K-means cluster" when colouring by cluster).

    Returns:
      A 16 x 16 inch figure without ticks (with a class colour bar when labels are given).

    Examples:
      >>> import numpy as np
      >>> from tfclust import plots
      >>> rng = np.random.default_rng(0)
      >>> embedding, images = rng.normal(size=(20, 2)), np.zeros((20, 28, 28), dtype=np.uint8)
      >>> fig = plots.tsne_thumbnails(embedding, images, n_thumbnails=5)
      >>> type(fig).__name__
      'Figure'
    """
    emb = _as_embedding(embedding)
    imgs = _as_images(images)
    if imgs.shape[0] != emb.shape[0]:
        raise ValueError(
            f"images has {imgs.shape[0]} images but embedding has {emb.shape[0]} points"
        )
    n_thumbnails = check_int(n_thumbnails, name="n_thumbnails", low=0)
    seed = check_int(seed, name="seed", low=0)
    n_classes = _check_n_classes(n_classes)
    names = _check_color_key(class_names, color_label, n_classes)
    if labels is not None:
        labels = _as_class_labels(labels, emb.shape[0], n_classes)
    fig = _figure(16.0, 16.0)
    ax = fig.add_subplot()
    points = _class_scatter(ax, emb, labels, n_classes)
    if labels is not None:
        _class_colorbar(fig, points, ax, n_classes, names, color_label, shrink=0.6)
    chosen = np.random.default_rng(seed).choice(
        emb.shape[0], size=min(n_thumbnails, emb.shape[0]), replace=False
    )
    # OffsetImage draws one pixel per point (1/72 inch) at zoom 1.
    zoom = min(1.0, 72.0 * THUMBNAIL_MAX_INCHES / max(imgs.shape[1:3]))
    cmap = "gray_r" if _is_grey(imgs) else None
    for index in chosen:
        thumbnail = OffsetImage(imgs[index], zoom=zoom, cmap=cmap)
        ax.add_artist(AnnotationBbox(thumbnail, emb[index], frameon=False, pad=0.0))
    ax.set_xticks([])
    ax.set_yticks([])
    return fig


def loss_curve(
    history_losses: Sequence[float], val_losses: Sequence[float] | None = None
) -> Figure:
    """Training (and validation) loss per epoch; log-scaled y axis when every loss is > 0.

    Args:
      history_losses: (n_epochs,) training losses, e.g. ``history.history["loss"]``.
      val_losses: optional (n_epochs,) validation losses.

    Returns:
      A 7 x 4.5 inch figure.

    Examples:
      >>> import numpy as np
      >>> from tfclust import plots
      >>> fig = plots.loss_curve([0.04, 0.02, 0.015], val_losses=[0.03, 0.02, 0.016])
      >>> fig.axes[0].get_yscale()
      'log'
    """
    train = _finite_array(history_losses, "history_losses")
    if train.ndim != 1 or train.size == 0:
        raise ValueError(f"history_losses must be a non-empty 1-D sequence, got {train.shape}")
    curves = {"training": train}
    if val_losses is not None:
        val = _finite_array(val_losses, "val_losses")
        if val.shape != train.shape:
            raise ValueError(f"val_losses has shape {val.shape}, history_losses {train.shape}")
        curves["validation"] = val
    fig = _figure(7.0, 4.5)
    ax = fig.add_subplot()
    epochs = np.arange(1, train.size + 1)
    for name, values in curves.items():
        ax.plot(epochs, values, marker="o", markersize=3, label=name)
    if all(np.all(values > 0) for values in curves.values()):
        ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_title("autoencoder training loss")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    return fig


def reconstructions(originals, reconstructed, n: int = 10) -> Figure:
    """The first ``n`` originals (top row) above their reconstructions (bottom row).

    Args:
      originals: grey (N, H, W), (N, H, W, 1) or (N, H*W) images, or RGB (N, H, W, 3) images.
      reconstructed: the autoencoder's outputs for them, of the same shape. Each row is drawn
        on its own dtype's scale: uint8 pixels from 0 to 255, floats from 0 to 1, so uint8
        originals and float reconstructions compare directly.
      n: number of columns, ``1 <= n <= N`` (default 10).

    Returns:
      A figure 1.2 inches per column and 2.8 inches high, axes off.

    Examples:
      >>> import numpy as np
      >>> from tfclust import plots
      >>> originals = np.zeros((4, 28, 28), dtype=np.uint8)
      >>> fig = plots.reconstructions(originals, originals / 255.0, n=4)
      >>> type(fig).__name__
      'Figure'
    """
    top = _as_images(originals, "originals")
    bottom = _as_images(reconstructed, "reconstructed")
    if top.shape != bottom.shape:
        raise ValueError(f"originals {top.shape} and reconstructed {bottom.shape} differ in shape")
    n = check_int(n, name="n", low=1, high=top.shape[0])
    fig = _figure(1.2 * n, 2.8)
    axes = fig.subplots(2, n, squeeze=False)
    for row, imgs, name in ((axes[0], top, "original"), (axes[1], bottom, "reconstruction")):
        for ax, img in zip(row, imgs[:n], strict=False):
            if _is_grey(imgs):
                ax.imshow(img, cmap="gray", vmin=0, vmax=255 if imgs.dtype == np.uint8 else 1)
            else:
                ax.imshow(img)  # imshow scales RGB by dtype the same way
            ax.set_axis_off()
        row[0].set_title(name, loc="left", fontsize=10)
    return fig


def choose_k(ks, inertia, silhouette, chosen: int, rule: str | None = None) -> Figure:
    """K-means inertia (left) and silhouette score (right) against the number of clusters k,
    with the chosen k marked by a dashed vertical line on both panels.

    Args:
      ks: (n_k,) the numbers of clusters tried, distinct integers >= 1 in increasing order.
      inertia: (n_k,) K-means inertia (sum of squared distances to the nearest centre, >= 0)
        for each k.
      silhouette: (n_k,) mean silhouette score in [-1, 1] for each k.
      chosen: the chosen k, one of ``ks``.
      rule: optional sentence saying how ``chosen`` was picked (e.g. "highest silhouette"),
        shown as a caption under the panels; None (the default) for no caption.

    Returns:
      A 10 x 4 inch figure of two panels titled "K-means inertia" and "silhouette score",
      under the title "choosing the number of clusters k".

    Raises:
      TypeError: ``ks`` or ``chosen`` not integers, non-numeric scores, a non-string rule.
      ValueError: empty or mismatched lengths, NaN/inf, ``ks`` < 1 or not increasing, negative
        inertia, silhouette outside [-1, 1], or ``chosen`` not in ``ks``.

    Examples:
      >>> from tfclust import plots
      >>> fig = plots.choose_k([2, 3, 4, 5], [90.0, 40.0, 30.0, 26.0], [0.41, 0.62, 0.50, 0.44],
      ...                      chosen=3, rule="highest silhouette")
      >>> [ax.get_title() for ax in fig.axes], fig.get_supxlabel()
      (['K-means inertia', 'silhouette score'], 'rule: highest silhouette')
    """
    ks_arr = np.asarray(ks)
    if ks_arr.dtype.kind not in "iu":
        raise TypeError(f"ks must be integers, got dtype {ks_arr.dtype}")
    ks_arr = ks_arr.astype(np.int64)  # unsigned differences would wrap around
    if ks_arr.ndim != 1 or ks_arr.size == 0:
        raise ValueError(f"ks must be a non-empty 1-D sequence, got shape {ks_arr.shape}")
    if ks_arr.min() < 1 or np.any(np.diff(ks_arr) <= 0):
        raise ValueError(f"ks must be distinct integers >= 1 in increasing order, got {ks_arr}")
    scores = {
        "inertia": _finite_array(inertia, "inertia"),
        "silhouette": _finite_array(silhouette, "silhouette"),
    }
    for name, values in scores.items():
        if values.shape != ks_arr.shape:
            raise ValueError(f"{name} has shape {values.shape} but ks has {ks_arr.shape}")
    if np.any(scores["inertia"] < 0):
        raise ValueError("inertia must be >= 0")
    if np.any(np.abs(scores["silhouette"]) > 1):
        raise ValueError("silhouette scores must lie in [-1, 1]")
    chosen = check_int(chosen, name="chosen")
    if chosen not in ks_arr:
        raise ValueError(f"chosen k = {chosen} is not one of ks {ks_arr.tolist()}")
    if rule is not None and not isinstance(rule, str):
        raise TypeError(f"rule must be a string or None, got {rule!r}")
    fig = _figure(10.0, 4.0)
    axes = fig.subplots(1, 2)
    titles = {"inertia": "K-means inertia", "silhouette": "silhouette score"}
    for ax, (name, values) in zip(axes, scores.items(), strict=True):
        ax.plot(ks_arr, values, marker="o")
        ax.axvline(chosen, color="tab:red", linestyle="--", label=f"chosen k = {chosen}")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("k (number of clusters)")
        ax.set_ylabel(name)
        ax.set_title(titles[name])
        ax.grid(True, alpha=0.3)
        ax.legend()
    fig.suptitle("choosing the number of clusters k")
    if rule is not None:
        fig.supxlabel(f"rule: {rule}", fontsize=10)
    return fig
