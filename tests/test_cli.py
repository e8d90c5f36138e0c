import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tfclust.cli import build_parser, main


def test_help_names_every_command(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for command in ("run", "train", "encode"):
        assert command in out


def test_console_script_is_installed():
    result = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "tfclust"), "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0 and "autoencoder" in result.stdout


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "--epochs", "0"], "epochs must be >= 1"),
        (["train", "--batch-size", "-3"], "batch_size must be >= 1"),
        (["encode", "--model", "/nonexistent.keras"], "no such file"),
    ],
)
def test_bad_flags_fail_before_work(argv, message, capsys, tmp_path):
    assert main(argv + ["--out", str(tmp_path / "o")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_unwritable_output_folder(capsys, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main(["train", "--out", str(blocker / "sub")]) == 2
    assert "not writable" in capsys.readouterr().err


def test_unknown_dataset_is_an_argparse_error():
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--dataset", "cifar"])


def test_train_then_encode(tmp_path, monkeypatch):
    from idx_files import write_mnist_folder

    write_mnist_folder(tmp_path, n_train=40)
    monkeypatch.setenv("TFCLUST_OFFLINE", "1")
    common = ["--dataset", "mnist", "--data-dir", str(tmp_path), "-q"]
    assert main(["train", "--epochs", "1", "--out", str(tmp_path / "t"), *common]) == 0
    metrics = json.loads((tmp_path / "t" / "metrics.json").read_text())
    assert metrics["data"]["source"].startswith("data_dir")
    assert len(metrics["autoencoder"]["loss_per_epoch"]) == 1
    assert set(metrics["stages"]) == {"load_data", "autoencoder"}

    model = str(tmp_path / "t" / "autoencoder.keras")
    assert main(["encode", "--model", model, "--out", str(tmp_path / "e"), *common]) == 0
    latents = np.load(tmp_path / "e" / "latents.npy")
    assert latents.shape == (40, 64) and latents.dtype == np.float32
    assert np.load(tmp_path / "e" / "labels.npy").shape == (40,)
