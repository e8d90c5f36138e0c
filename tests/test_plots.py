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
    for row in range(10):
        first, *rest = fig.axes[10 * row : 10 * (row + 1)]
        assert first.get_ylabel() == f"{row}\n(n=12)"
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


def test_reconstructions(data, tmp_path):
    images, _, _ = data
    fig = plots.reconstructions(images, np.clip(images + 0.1, 0, 1), n=10)
    render(fig, tmp_path)
    assert tuple(fig.get_size_inches()) == pytest.approx((12.0, 2.8))
    assert [len(ax.images) for ax in fig.axes] == [1] * 20
    np.testing.assert_allclose(fig.axes[12].images[0].get_array(), np.clip(images[2] + 0.1, 0, 1))


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
    with pytest.raises(ValueError, match=r"\(N, H, W\)"):
        plots.cluster_grid(np.zeros((5, 28, 28, 3)), np.zeros(5, int))
    with pytest.raises(ValueError, match="cluster_labels must have shape"):
        plots.cluster_grid(images, labels[:-1])
    with pytest.raises(ValueError, match="images has 119 images"):
        plots.tsne_thumbnails(embedding, images[:-1])
    with pytest.raises(ValueError, match="differ in shape"):
        plots.reconstructions(images, images[:, :27])
    with pytest.raises(ValueError, match="n must be <= 120"):
        plots.reconstructions(images, images, n=121)


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
