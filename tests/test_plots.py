"""tfclust.plots: every figure renders to a PNG of the expected size, with content."""

import matplotlib.image
import matplotlib.pyplot as plt
import numpy as np
import pytest
import tensorflow as tf
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.offsetbox import AnnotationBbox

from tfclust import plots

DPI = 40  # small PNGs keep the tests fast; sizes scale exactly with dpi


@pytest.fixture(scope="module")
def data():
    """Fake MNIST-like data: 120 images with a bright square whose position depends on the class."""
    rng = np.random.default_rng(0)
    labels = np.arange(120) % 10
    images = rng.uniform(0.0, 0.2, size=(120, 28, 28)).astype(np.float32)
    for i, label in enumerate(labels):
        images[i, 4 + 2 * label : 10 + 2 * label, 8:20] = 1.0
    centres = np.stack([np.cos(labels * 0.63), np.sin(labels * 0.63)], axis=1) * 30.0
    embedding = centres + rng.normal(scale=3.0, size=(120, 2))
    return images, labels, embedding


@pytest.fixture(scope="module")
def rgb(data):
    """The same images in colour: the square is red, green or blue by class, on a grey noise."""
    images, labels, _ = data
    colours = np.eye(3, dtype=np.float32)[labels % 3]
    square = images >= 1.0
    rgb = np.repeat(images[..., np.newaxis], 3, axis=-1)
    rgb[square] = colours[np.nonzero(square)[0]]
    return rgb


def image_arrays(fig):
    """The arrays drawn by every AxesImage of ``fig``, in axes order."""
    return [np.asarray(image.get_array()) for ax in fig.axes for image in ax.images]


def colorbar_key(fig):
    """The last axes' (the colour bar's) tick labels and label."""
    bar = fig.axes[-1]
    return [t.get_text() for t in bar.get_yticklabels()], bar.get_ylabel()


def render(fig, tmp_path, name="figure.png"):
    """Save ``fig`` at DPI and return the PNG's pixels after checking size and content."""
    assert isinstance(fig, Figure)
    path = plots.save_figure(fig, tmp_path / name, dpi=DPI)
    pixels = matplotlib.image.imread(path)
    width, height = fig.get_size_inches()
    assert pixels.shape[:2] == (round(height * DPI), round(width * DPI))
    assert pixels[..., :3].std() > 0.01, "blank image"
    return pixels


def test_no_pyplot_figures_are_created(data):
    images, labels, embedding = data
    plots.tsne_scatter(embedding, labels)
    plots.sample_image(images[0])
    assert plt.get_fignums() == []


# ---------------------------------------------------------------- sizes and content


def test_save_figure_creates_directories_and_uses_dpi(data, tmp_path):
    fig = plots.t_vs_normal()
    path = plots.save_figure(fig, tmp_path / "a" / "b" / "t.png", dpi=50)
    assert path == str(tmp_path / "a" / "b" / "t.png")
    assert matplotlib.image.imread(path).shape[:2] == (240, 320)  # 6.4 x 4.8 in at 50 dpi


def test_save_figure_rejects_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="dpi"):
        plots.save_figure(plots.t_vs_normal(), tmp_path / "x.png", dpi=0)
    with pytest.raises(TypeError, match="Figure"):
        plots.save_figure(np.zeros((3, 3)), tmp_path / "x.png")


@pytest.mark.parametrize("shape", [(28, 28), (28, 28, 1), (784,)])
def test_sample_image(data, tmp_path, shape):
    images, labels, _ = data
    fig = plots.sample_image(images[3].reshape(shape), label=labels[3])
    render(fig, tmp_path)
    assert tuple(fig.get_size_inches()) == (5.0, 4.0)
    assert fig.axes[0].get_title() == "label: 3"
    assert len(fig.axes) == 2  # image and colour bar


def test_cluster_grid_default_size(data, tmp_path):
    images, labels, _ = data
    fig = plots.cluster_grid(images, labels)
    render(fig, tmp_path)
    assert tuple(fig.get_size_inches()) == (12.0, 12.0)
    assert len(fig.axes) == 100
    assert fig.get_suptitle() == "K-means clusters (rows): first 10 images of each"
    for row in range(10):
        first, *rest = fig.axes[10 * row : 10 * (row + 1)]
        assert first.get_ylabel() == f"cluster {row}\n(n=12)"
        assert not first.get_xticks().size and not first.get_yticks().size
        assert not any(ax.axison for ax in rest)


def test_cluster_grid_leaves_blank_cells(data, tmp_path):
    images, _, _ = data
    clusters = np.zeros(len(images), dtype=int)
    clusters[:3] = 1  # cluster 1 has 3 members, cluster 2 none
    fig = plots.cluster_grid(images, clusters, n_clusters=3, per_cluster=4)
    render(fig, tmp_path)
    assert tuple(fig.get_size_inches()) == pytest.approx((4.8, 3.6))
    per_row = [[len(ax.images) for ax in fig.axes[r * 4 : (r + 1) * 4]] for r in range(3)]
    assert per_row == [[1, 1, 1, 1], [1, 1, 1, 0], [0, 0, 0, 0]]
    # Row 1 shows the cluster's own first images, in order.
    np.testing.assert_array_equal(fig.axes[4].images[0].get_array(), images[0])


def test_cluster_grid_names_the_largest_clusters_it_shows(data):
    images, _, _ = data
    clusters = np.arange(len(images)) % 60  # 2 members each
    clusters[clusters == 59] = 7  # cluster 7 has 4, cluster 59 none
    fig = plots.cluster_grid(images, clusters, n_clusters=60, per_cluster=1)
    assert fig.get_suptitle() == (
        "K-means clusters (rows): first image of each\n(the 50 largest of 60 clusters)"
    )
    rows = [ax.get_ylabel() for ax in fig.axes]
    assert len(rows) == plots.MAX_GRID_ROWS
    assert rows[7] == "cluster 7\n(n=4)" and "cluster 59\n(n=0)" not in rows


def test_t_vs_normal(tmp_path):
    fig = plots.t_vs_normal(dof=2.74)
    render(fig, tmp_path)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "t-dist (dof=2.74)",
        "normal-dist",
    ]
    t_line, normal_line = ax.get_lines()
    assert normal_line.get_ydata().max() == pytest.approx(1 / np.sqrt(2 * np.pi), rel=1e-9)
    assert t_line.get_ydata().max() < normal_line.get_ydata().max()  # heavier tails, lower peak
    assert t_line.get_xdata()[[0, -1]].tolist() == [-5.0, 5.0]


def test_tsne_scatter_colours_and_centred_ticks(data, tmp_path):
    _, labels, embedding = data
    fig = plots.tsne_scatter(tf.constant(embedding), tf.constant(labels), title="map")
    render(fig, tmp_path)
    ax, bar_ax = fig.axes
    assert ax.get_title() == "map"
    points = ax.collections[0]
    expected = colormaps["rainbow"].resampled(10)(labels)
    np.testing.assert_allclose(points.get_facecolors(), expected)
    assert bar_ax.get_yticks().tolist() == list(range(10))
    assert bar_ax.get_ylim() == pytest.approx((-0.5, 9.5))  # each tick centred in its colour


def test_perplexity_grid_six_maps(data, tmp_path):
    _, labels, embedding = data
    maps = {p: embedding * (1 + i) for i, p in enumerate([5, 10, 15, 25, 50, 100])}
    fig = plots.perplexity_grid(maps, labels)
    render(fig, tmp_path)
    assert tuple(fig.get_size_inches()) == (8.0, 12.0)
    titles = [ax.get_title() for ax in fig.axes[:6]]
    assert titles == [f"perplexity: {p}" for p in [5, 10, 15, 25, 50, 100]]


def test_perplexity_grid_odd_count_hides_spare_axes(data, tmp_path):
    _, labels, embedding = data
    fig = plots.perplexity_grid({7.5: embedding, 30: embedding, 60: embedding}, labels)
    render(fig, tmp_path)
    assert fig.axes[0].get_title() == "perplexity: 7.5"
    assert not fig.axes[3].axison


def test_tsne_thumbnails(data, tmp_path):
    images, labels, embedding = data
    fig = plots.tsne_thumbnails(embedding, images[..., np.newaxis], n_thumbnails=30, labels=labels)
    render(fig, tmp_path)
    assert tuple(fig.get_size_inches()) == (16.0, 16.0)
    boxes = [a for a in fig.axes[0].artists if isinstance(a, AnnotationBbox)]
    assert len(boxes) == 30
    # Each thumbnail sits at its own point and shows that point's image.
    for box in boxes:
        index = int(np.flatnonzero((embedding == box.xy).all(axis=1))[0])
        np.testing.assert_array_equal(box.offsetbox.get_data(), images[index])


def test_tsne_thumbnails_caps_at_n_and_is_seeded(data, tmp_path):
    images, _, embedding = data
    fig = plots.tsne_thumbnails(embedding[:20], images[:20].reshape(20, -1), seed=3)
    render(fig, tmp_path)
    assert len(fig.axes[0].artists) == 20  # 200 requested, 20 available

    def positions(seed):
        fig = plots.tsne_thumbnails(embedding, images, n_thumbnails=5, seed=seed)
        return [tuple(a.xy) for a in fig.axes[0].artists]

    assert positions(1) == positions(1) != positions(2)


def test_loss_curve(tmp_path):
    losses = [0.0532, 0.0181, 0.0114, 0.0094, 0.0085]
    fig = plots.loss_curve(losses, val_losses=[0.02, 0.013, 0.011, 0.009, 0.0088])
    render(fig, tmp_path)
    ax = fig.axes[0]
    assert ax.get_yscale() == "log"
    assert ax.get_lines()[0].get_xdata().tolist() == [1, 2, 3, 4, 5]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["training", "validation"]
    assert plots.loss_curve([0.5, 0.0]).axes[0].get_yscale() == "linear"


def test_tsne_thumbnails_size_is_capped_for_large_images(data):
    _, _, embedding = data

    def size_in_inches(shape):
        fig = plots.tsne_thumbnails(embedding[:3], np.zeros((3, *shape), np.uint8), n_thumbnails=1)
        fig.canvas.draw()
        extent = fig.axes[0].artists[0].offsetbox.get_window_extent(fig.canvas.get_renderer())
        return extent.width / fig.dpi, extent.height / fig.dpi

    assert size_in_inches((28, 28)) == pytest.approx((28 / 72, 28 / 72))  # a pixel per point
    assert size_in_inches((128, 128)) == pytest.approx((0.5, 0.5))
    assert size_in_inches((128, 64, 3)) == pytest.approx((0.25, 0.5))  # aspect kept


def test_reconstructions(data, tmp_path):
    images, _, _ = data
    fig = plots.reconstructions(images, np.clip(images + 0.1, 0, 1), n=10)
    render(fig, tmp_path)
    assert tuple(fig.get_size_inches()) == pytest.approx((12.0, 2.8))
    assert [len(ax.images) for ax in fig.axes] == [1] * 20
    np.testing.assert_allclose(fig.axes[12].images[0].get_array(), np.clip(images[2] + 0.1, 0, 1))


def test_reconstructions_draw_each_dtype_on_its_own_scale(data):
    images, _, _ = data
    originals = np.round(images[:3] * 255).astype(np.uint8)
    fig = plots.reconstructions(originals, images[:3], n=3)
    assert [ax.images[0].get_clim() for ax in fig.axes] == [(0, 255)] * 3 + [(0, 1)] * 3
    assert all(ax.images[0].get_cmap().name == "gray" for ax in fig.axes)


# ---------------------------------------------------------------- RGB images


@pytest.mark.parametrize("dtype", [np.float32, np.uint8])
def test_sample_image_rgb_with_a_class_name(rgb, tmp_path, dtype):
    image = rgb[4] if dtype == np.float32 else np.round(rgb[4] * 255).astype(np.uint8)
    fig = plots.sample_image(image, label="cats")
    render(fig, tmp_path)
    assert len(fig.axes) == 1  # no colour bar for colour pixels
    (drawn,) = image_arrays(fig)
    np.testing.assert_array_equal(drawn, image)
    assert fig.axes[0].get_title() == "label: cats"


def test_cluster_grid_rgb(data, rgb, tmp_path):
    _, labels, _ = data
    fig = plots.cluster_grid(rgb, labels % 3, n_clusters=3, per_cluster=3)
    render(fig, tmp_path)
    drawn = image_arrays(fig)
    assert len(drawn) == 9 and all(a.shape == (28, 28, 3) for a in drawn)
    np.testing.assert_array_equal(drawn[3], rgb[1])  # row 1 starts with the first image of 1


def test_tsne_thumbnails_rgb(data, rgb, tmp_path):
    _, labels, embedding = data
    fig = plots.tsne_thumbnails(embedding, rgb, n_thumbnails=10, labels=labels)
    render(fig, tmp_path)
    boxes = fig.axes[0].artists
    assert len(boxes) == 10
    for box in boxes:
        index = int(np.flatnonzero((embedding == box.xy).all(axis=1))[0])
        np.testing.assert_array_equal(box.offsetbox.get_data(), rgb[index])
    grey = plots.tsne_thumbnails(embedding, rgb[..., 0], n_thumbnails=1)
    assert grey.axes[0].artists[0].offsetbox.get_children()[0].get_cmap().name == "gray_r"


def test_reconstructions_rgb(rgb, tmp_path):
    originals = np.round(rgb * 255).astype(np.uint8)
    fig = plots.reconstructions(originals, rgb * 0.5, n=4)
    render(fig, tmp_path)
    drawn = image_arrays(fig)
    assert len(drawn) == 8 and all(a.shape == (28, 28, 3) for a in drawn)
    np.testing.assert_array_equal(drawn[1], originals[1])
    np.testing.assert_allclose(drawn[5], rgb[1] * 0.5)


def test_rgb_and_grey_are_not_compared(rgb):
    with pytest.raises(ValueError, match="differ in shape"):
        plots.reconstructions(rgb, rgb[..., 0])


# ---------------------------------------------------------------- class names and colour label


def _scatter(embedding, labels, **kwargs):
    return plots.tsne_scatter(embedding, labels, 10, **kwargs)


def _grid(embedding, labels, **kwargs):
    return plots.perplexity_grid({5: embedding, 30: embedding}, labels, 10, **kwargs)


def _thumbnails(embedding, labels, **kwargs):
    images = np.zeros((len(embedding), 8, 8), np.uint8)
    return plots.tsne_thumbnails(embedding, images, 3, 0, labels, 10, **kwargs)


COLOURED_FIGURES = [_scatter, _grid, _thumbnails]
NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


@pytest.mark.parametrize("make", COLOURED_FIGURES)
def test_colour_bar_defaults_to_class_ids(data, make):
    _, labels, embedding = data
    assert colorbar_key(make(embedding, labels)) == ([str(i) for i in range(10)], "class")


@pytest.mark.parametrize("make", COLOURED_FIGURES)
def test_colour_bar_shows_class_names_and_color_label(data, make, tmp_path):
    _, labels, embedding = data
    fig = make(embedding, labels, class_names=NAMES, color_label="K-means cluster")
    render(fig, tmp_path)
    assert colorbar_key(fig) == (NAMES, "K-means cluster")
    assert fig.axes[-1].get_yticks().tolist() == list(range(10))  # one name per colour


def test_class_names_beyond_n_classes_are_unused(data):
    _, labels, embedding = data
    fig = plots.tsne_scatter(embedding, labels % 3, n_classes=3, class_names=("été", "b", "c", "d"))
    assert colorbar_key(fig) == (["été", "b", "c"], "class")


def test_class_names_without_labels_draw_no_colour_bar(data):
    _, _, embedding = data
    fig = plots.tsne_scatter(embedding, None, class_names=NAMES, color_label="K-means cluster")
    assert len(fig.axes) == 1


@pytest.mark.parametrize("make", COLOURED_FIGURES)
@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"class_names": NAMES[:9]}, ValueError, "class_names has 9 names but n_classes is 10"),
        ({"class_names": []}, ValueError, "has 0 names"),
        ({"class_names": "0123456789"}, TypeError, "sequence of strings"),
        ({"class_names": {str(i) for i in range(10)}}, TypeError, "sequence of strings"),
        ({"class_names": list(range(10))}, TypeError, "must be strings"),
        ({"class_names": [*NAMES[:9], None]}, TypeError, "must be strings"),
        ({"color_label": None}, TypeError, "color_label must be a string"),
    ],
)
def test_bad_class_names_and_color_label(data, make, kwargs, error, match):
    _, labels, embedding = data
    with pytest.raises(error, match=match):
        make(embedding, labels, **kwargs)
    with pytest.raises(error, match=match):  # checked with or without labels
        make(embedding, None, **kwargs)


def test_class_names_and_color_label_are_keyword_only(data):
    _, labels, embedding = data
    with pytest.raises(TypeError):
        plots.tsne_scatter(embedding, labels, 10, None, NAMES)


# ---------------------------------------------------------------- choose_k


KS = [2, 3, 4, 5, 6]
INERTIA = [900.0, 400.0, 300.0, 260.0, 240.0]
SILHOUETTE = [0.41, 0.62, 0.50, 0.44, 0.40]


def test_choose_k(tmp_path):
    fig = plots.choose_k(np.array(KS), INERTIA, SILHOUETTE, chosen=3, rule="highest silhouette")
    render(fig, tmp_path)
    assert tuple(fig.get_size_inches()) == (10.0, 4.0)
    assert fig.get_supxlabel() == "rule: highest silhouette"
    inertia_ax, silhouette_ax = fig.axes
    assert [inertia_ax.get_title(), silhouette_ax.get_title()] == [
        "K-means inertia",
        "silhouette score",
    ]
    for ax, values in ((inertia_ax, INERTIA), (silhouette_ax, SILHOUETTE)):
        curve, marker = ax.get_lines()
        assert curve.get_xdata().tolist() == KS and curve.get_ydata().tolist() == values
        assert marker.get_xdata() == [3, 3]  # the vertical line at the chosen k
        assert [t.get_text() for t in ax.get_legend().get_texts()] == ["chosen k = 3"]
        assert ax.get_xlabel() == "k (number of clusters)"
        assert all(tick == int(tick) for tick in ax.get_xticks())


def test_choose_k_without_rule_and_single_k(tmp_path):
    fig = plots.choose_k([4], [10.0], [-0.2], chosen=np.int64(4))
    render(fig, tmp_path)
    assert fig.get_supxlabel() == ""


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"ks": [2.0, 3.0, 4.0, 5.0, 6.0]}, TypeError, "ks must be integers"),
        ({"ks": ["2", "3", "4", "5", "6"]}, TypeError, "ks must be integers"),
        ({"ks": []}, TypeError, "ks must be integers"),  # np.asarray([]) is float
        ({"ks": np.array([], int), "inertia": [], "silhouette": []}, ValueError, "non-empty"),
        ({"ks": [[2, 3, 4, 5, 6]]}, ValueError, "1-D"),
        ({"ks": [0, 3, 4, 5, 6]}, ValueError, ">= 1 in increasing order"),
        ({"ks": [2, 4, 3, 5, 6]}, ValueError, "increasing order"),
        ({"ks": [2, 3, 3, 5, 6]}, ValueError, "distinct"),
        ({"ks": np.array([6, 5, 4, 3, 2], np.uint8)}, ValueError, "increasing order"),
        ({"inertia": INERTIA[:4]}, ValueError, r"inertia has shape \(4,\) but ks has \(5,\)"),
        ({"silhouette": [*SILHOUETTE, 0.1]}, ValueError, r"silhouette has shape \(6,\)"),
        ({"inertia": [900.0, np.nan, 300.0, 260.0, 240.0]}, ValueError, "inertia contains NaN"),
        ({"silhouette": [0.4, np.inf, 0.5, 0.4, 0.4]}, ValueError, "silhouette contains NaN"),
        ({"inertia": ["a"] * 5}, TypeError, "inertia must be numeric"),
        ({"inertia": [900.0, -1.0, 300.0, 260.0, 240.0]}, ValueError, "inertia must be >= 0"),
        ({"silhouette": [0.4, 1.5, 0.5, 0.4, 0.4]}, ValueError, r"\[-1, 1\]"),
        ({"chosen": 7}, ValueError, r"chosen k = 7 is not one of ks \[2, 3, 4, 5, 6\]"),
        ({"chosen": 3.0}, TypeError, "chosen must be an integer"),
        ({"chosen": True}, TypeError, "chosen must be an integer"),
        ({"rule": 3}, TypeError, "rule must be a string"),
    ],
)
def test_choose_k_rejects_bad_input(kwargs, error, match):
    args = {"ks": KS, "inertia": INERTIA, "silhouette": SILHOUETTE, "chosen": 3, **kwargs}
    with pytest.raises(error, match=match):
        plots.choose_k(**args)


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "embedding, labels, match",
    [
        (np.zeros((10, 3)), np.zeros(10, int), r"shape \(N, 2\)"),
        (np.zeros((0, 2)), np.zeros(0, int), r"shape \(N, 2\)"),
        (np.zeros((10, 2)), np.zeros(9, int), "labels must have shape"),
        (np.zeros((10, 2)), np.full(10, 10), r"\[0, 10\)"),
        (np.zeros((10, 2)), np.full(10, -1), r"\[0, 10\)"),
        (np.full((10, 2), np.nan), np.zeros(10, int), "NaN"),
    ],
)
def test_tsne_scatter_rejects_bad_input(embedding, labels, match):
    with pytest.raises(ValueError, match=match):
        plots.tsne_scatter(embedding, labels)


def test_float_labels_are_rejected(data):
    _, labels, embedding = data
    with pytest.raises(TypeError, match="integers"):
        plots.tsne_scatter(embedding, labels.astype(float))


def test_image_shapes_are_checked(data):
    images, labels, embedding = data
    with pytest.raises(ValueError, match="not square"):
        plots.sample_image(np.zeros(780))
    with pytest.raises(ValueError, match=r"\(N, H, W, 3\), got \(5, 28, 28, 4\)"):
        plots.cluster_grid(np.zeros((5, 28, 28, 4)), np.zeros(5, int))  # RGBA
    with pytest.raises(ValueError, match=r"got \(1, 28, 28, 2\)"):
        plots.sample_image(np.zeros((28, 28, 2)))
    with pytest.raises(ValueError, match="not square"):
        plots.tsne_thumbnails(embedding, np.zeros((120, 28 * 28 * 3)))  # flattened RGB
    with pytest.raises(ValueError, match="cluster_labels must have shape"):
        plots.cluster_grid(images, labels[:-1])
    with pytest.raises(ValueError, match="images has 119 images"):
        plots.tsne_thumbnails(embedding, images[:-1])
    with pytest.raises(ValueError, match="differ in shape"):
        plots.reconstructions(images, images[:, :27])
    with pytest.raises(ValueError, match="n must be <= 120"):
        plots.reconstructions(images, images, n=121)


@pytest.mark.parametrize("label", [1.5, True, b"cats", ["cats"]])
def test_sample_image_rejects_bad_labels(data, label):
    images, _, _ = data
    with pytest.raises(TypeError, match="label must be an integer, a string or None"):
        plots.sample_image(images[0], label=label)


def test_other_bad_input(data):
    _, labels, embedding = data
    with pytest.raises(ValueError, match="non-empty mapping"):
        plots.perplexity_grid({}, labels)
    with pytest.raises(ValueError, match="has 119 points"):
        plots.perplexity_grid({5: embedding, 10: embedding[:-1]}, labels)
    with pytest.raises(ValueError, match="dof"):
        plots.t_vs_normal(dof=0)
    with pytest.raises(ValueError, match="non-empty"):
        plots.loss_curve([])
    with pytest.raises(ValueError, match="val_losses"):
        plots.loss_curve([1.0, 0.5], val_losses=[1.0])
    with pytest.raises(ValueError, match="NaN"):
        plots.loss_curve([1.0, float("nan")])


def test_confusion_matrix_orders_clusters_by_their_classes(tmp_path):
    labels = np.repeat(np.arange(3), 10)
    clusters = (labels + 1) % 3  # cluster 1 is class 0, 2 is 1, 0 is 2
    clusters[0] = 2  # one class-0 image in class 1's cluster
    fig = plots.confusion_matrix(labels, clusters, ["a", "b", "c"], method="GMM")
    ax = fig.axes[0]
    assert ax.get_title() == "GMM clusters vs classes: accuracy 0.967"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "2", "0"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a", "b", "c"]
    counts = [[int(t.get_text()) for t in ax.texts[i : i + 3]] for i in (0, 3, 6)]
    assert counts == [[9, 1, 0], [0, 10, 0], [0, 0, 10]]
    plots.save_figure(fig, tmp_path / "confusion.png")
    with pytest.raises(TypeError, match="integers"):
        plots.confusion_matrix(labels.astype(float), clusters)
    with pytest.raises(ValueError, match="different lengths"):
        plots.confusion_matrix(labels, clusters[:-1])
    with pytest.raises(ValueError, match="every colour needs a name"):
        plots.confusion_matrix(labels, clusters, ["a", "b"])
    with pytest.raises(TypeError, match="method"):
        plots.cluster_grid(np.zeros((30, 28, 28)), clusters, n_clusters=3, method=None)
