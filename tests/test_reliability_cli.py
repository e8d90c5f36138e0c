"""Bad inputs to the command line's file-reading commands and the run's figures (issue 14's
battery): each is refused before any t-SNE or training, in one line, or handled correctly."""

import json

import numpy as np
import pytest
from idx_files import write_mnist_folder

from tfclust import plots
from tfclust.cli import main


@pytest.fixture
def latents(tmp_path):
    path = tmp_path / "latents.npy"
    np.save(path, np.random.default_rng(0).normal(size=(40, 8)).astype(np.float32))
    return path


def _write(path, kind):
    """A file that is not what ``tfclust embed`` expects."""
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "text":
        path.write_text("1,2,3\n4,5,6\n")
    elif kind == "npz":
        with open(path, "wb") as f:  # np.savez would add ".npz" to the name
            np.savez(f, a=np.zeros((40, 8)))
    elif kind == "objects":
        np.save(path, np.array([{"a": 1}] * 40), allow_pickle=True)
    elif kind == "strings":
        np.save(path, np.array(["x"] * 40))
    elif kind == "truncated":
        np.save(path, np.zeros((40, 8), np.float32))
        path.write_bytes(path.read_bytes()[:200])
    return path


@pytest.mark.parametrize(
    "kind, message",
    [
        ("empty", "is an empty file"),
        ("text", "is not a .npy file"),
        ("npz", "is a .npz archive"),
        ("objects", "holds Python objects"),
        ("strings", "not numbers"),
        ("truncated", "truncated or damaged .npy file"),
    ],
)
@pytest.mark.parametrize("which", ["--latents", "--labels"])
def test_embed_refuses_files_that_are_not_arrays(which, kind, message, latents, tmp_path, capsys):
    bad = _write(tmp_path / "bad.npy", kind)
    files = {"--latents": latents, "--labels": None, which: bad}
    argv = ["embed", "--out", str(tmp_path / "out"), "-q"]
    argv += [a for flag, path in files.items() if path for a in (flag, str(path))]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("tfclust embed: error: ") and message in err[-1]
    assert "Traceback" not in "\n".join(err)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "labels, message",
    [
        (np.zeros((40, 2), np.int64), "1-D array of class ids"),
        (np.zeros((), np.int64), "1-D array of class ids"),
        (np.arange(40) + 0.5, "integer class ids"),
        (np.full(40, -1), "negative class ids"),
        (np.zeros(30, np.int64), "has 30 labels but there are 40 latents"),
    ],
)
def test_embed_refuses_bad_labels_before_the_tsne(labels, message, latents, tmp_path, capsys):
    np.save(tmp_path / "labels.npy", labels)
    argv = ["embed", "--latents", str(latents), "--labels", str(tmp_path / "labels.npy")]
    assert main([*argv, "--out", str(tmp_path / "out"), "-q"]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_embed_colours_many_classes_and_refuses_a_used_folder(latents, tmp_path, capsys):
    np.save(tmp_path / "labels.npy", np.arange(40) * 7)  # 274 classes: grey points
    argv = ["embed", "--latents", str(latents), "--labels", str(tmp_path / "labels.npy")]
    argv += ["--out", str(tmp_path / "out"), "--perplexity", "5", "--max-iter", "250", "-q"]
    assert main(argv) == 0
    record = json.loads((tmp_path / "out" / "embed.json").read_text())
    assert record["n_samples"] == 40 and (tmp_path / "out" / "tsne_scatter.png").is_file()
    assert main(argv) == 2
    assert "pass --overwrite" in capsys.readouterr().err
    assert main([*argv, "--overwrite"]) == 0


@pytest.mark.slow
def test_a_run_with_labels_beyond_ten_classes_draws_its_figures(tmp_path, monkeypatch):
    write_mnist_folder(tmp_path, n_train=60)
    labels_file = tmp_path / "train-labels-idx1-ubyte.gz"
    from idx_files import write_idx

    write_idx(labels_file, np.arange(60, dtype=np.uint8) * 4)  # labels up to 236
    monkeypatch.setenv("TFCLUST_OFFLINE", "1")
    argv = ["run", "--dataset", "mnist", "--data-dir", str(tmp_path), "--epochs", "1"]
    argv += ["--min-steps", "0"]
    argv += ["--n-init", "1", "--tsne-samples", "30", "--tsne-max-iter", "250"]
    argv += ["--sweep-perplexities", "none", "--out", str(tmp_path / "o"), "-q"]
    assert main(argv) == 0
    metrics = json.loads((tmp_path / "o" / "metrics.json").read_text())
    assert metrics["stages"]["figures"]["ok"] and "tsne_scatter" in metrics["figures"]["files"]


def test_a_grid_of_many_clusters_is_capped():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (2000, 28, 28), dtype=np.uint8)
    clusters = np.repeat(np.arange(600), 4)[:2000]
    clusters[:40] = 599  # the largest cluster comes last by id
    fig = plots.cluster_grid(images, clusters, n_clusters=600, per_cluster=2)
    rows = fig.axes[::2]
    assert len(fig.axes) == plots.MAX_GRID_ROWS * 2
    assert rows[-1].get_ylabel().startswith("cluster 599")
    assert "50 largest of 600 clusters" in fig.get_suptitle()
