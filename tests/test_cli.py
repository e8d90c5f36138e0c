import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from tfclust import cli
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
    argv = ["train", "--epochs", "1", "--min-steps", "0", "--out", str(tmp_path / "t")]
    assert main([*argv, *common]) == 0
    metrics = json.loads((tmp_path / "t" / "metrics.json").read_text())
    assert metrics["data"]["source"].startswith("data_dir")
    assert len(metrics["autoencoder"]["loss_per_epoch"]) == 1
    assert set(metrics["stages"]) == {"load_data", "autoencoder"}

    model = str(tmp_path / "t" / "autoencoder.keras")
    assert main(["encode", "--model", model, "--out", str(tmp_path / "e"), *common]) == 0
    latents = np.load(tmp_path / "e" / "latents.npy")
    assert latents.shape == (40, 64) and latents.dtype == np.float32
    assert np.load(tmp_path / "e" / "labels.npy").shape == (40,)


# TensorFlow 2.21's start-up lines on a CPU-only machine (stderr of `import tensorflow` and the
# first op), with the cpu_feature_guard message's second line.
TF_STARTUP = """\
WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
I0000 00:00:1796138583.228895    5864 port.cc:153] oneDNN custom operations are on. You may \
see slightly different numerical results due to floating-point round-off errors.
I0000 00:00:1796138583.234405    5864 cudart_stub.cc:31] Could not find cuda drivers on your \
machine, GPU will not be used.
I0000 00:00:1796138583.315231    5864 cpu_feature_guard.cc:227] This TensorFlow binary is \
optimized to use available CPU instructions in performance-critical operations.
To enable the following instructions: AVX2 FMA, in other operations, rebuild TensorFlow.
W0000 00:00:1796138589.288441    5864 some_file.cc:12] a warning
E0000 00:00:1796138589.288441    5864 cuda_platform.cc:52] failed call to cuInit: INTERNAL: \
CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)
2025-09-17 14:44:05.157831: I external/local_xla/xla/tsl/cuda/cudart_stub.cc:32] Could not \
find cuda drivers on your machine, GPU will not be used.
"""
TF_LOG_LINE = re.compile(r"^[IWEF]\d{4} \d\d:\d\d:\S+ +\d+ \S+:\d+\]", re.MULTILINE)
STARTUP_MARKERS = (
    "oneDNN",
    "cuda drivers",
    "cpu_feature_guard",
    "To enable the following instructions",
    "absl::InitializeLog",
    "cuInit",
)


@pytest.mark.parametrize(
    "min_level, kept",
    [
        (0, TF_STARTUP.splitlines()),
        (1, TF_STARTUP.splitlines()[0:1] + TF_STARTUP.splitlines()[5:7]),
        (2, [TF_STARTUP.splitlines()[6]]),
        (3, []),
    ],
)
def test_tensorflow_lines_are_filtered_by_severity(min_level, kept):
    text = "before\n" + TF_STARTUP + "/a/b.py:3: UserWarning: from Python\n  import b\n"
    filtered = cli._filter_tensorflow_lines(text, min_level).splitlines()
    assert filtered == ["before", *kept, "/a/b.py:3: UserWarning: from Python", "  import b"]


def test_tensorflow_log_level_keeps_the_users_choice():
    environ = {}
    assert cli._tensorflow_log_level(False, environ) == 3
    assert environ == {"TF_CPP_MIN_LOG_LEVEL": "3"}
    environ = {"TF_CPP_MIN_LOG_LEVEL": "1"}
    assert cli._tensorflow_log_level(False, environ) == 1
    assert environ == {"TF_CPP_MIN_LOG_LEVEL": "1"}
    environ = {}
    assert cli._tensorflow_log_level(True, environ) is None  # -v: TensorFlow's own default
    assert environ == {}


def test_verbose_and_quiet_exclude_each_other():
    parser = build_parser()
    for command in (["run"], ["embed", "--latents", "z.npy", "--out", "o"]):
        assert parser.parse_args([*command, "-v"]).verbose_logs
        assert not parser.parse_args(command).verbose_logs
        with pytest.raises(SystemExit):
            parser.parse_args([*command, "-v", "-q"])


def test_tensorflow_startup_lines_only_with_verbose(tmp_path):
    """`tfclust embed` in subprocesses: nothing of TensorFlow's on stderr in a t-SNE of 40
    latents; its start-up lines with -v (in a run that stops after importing TensorFlow: no such
    latents file). The user's own TF_CPP_MIN_LOG_LEVEL: the two tests above."""
    rng = np.random.default_rng(0)
    np.save(tmp_path / "z.npy", rng.normal(size=(40, 8)).astype(np.float32))
    tfclust = os.path.join(os.path.dirname(sys.executable), "tfclust")
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    embed = [tfclust, "embed", "--latents", str(tmp_path / "z.npy"), "--out", str(tmp_path / "o")]
    embed += ["--perplexity", "5", "--max-iter", "250", "--method", "exact"]
    missing = [tfclust, "embed", "--latents", str(tmp_path / "missing.npy"), "--out", "x"]
    runs = {"quiet": embed, "verbose": missing + ["-v"]}
    processes = {
        name: subprocess.Popen(
            argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for name, argv in runs.items()
    }
    results = {name: p.communicate(timeout=300) + (p.returncode,) for name, p in processes.items()}

    out, err, code = results["quiet"]
    assert code == 0 and "tfclust embed: done" in out, err
    assert "TSNE fit end" in err  # tfclust's own log lines stay
    assert not TF_LOG_LINE.search(err), err
    for marker in STARTUP_MARKERS:
        assert marker not in err

    out, err, code = results["verbose"]
    assert code == 2 and "missing.npy" in err, err
    assert TF_LOG_LINE.search(err), err


def test_parsing_does_not_import_tensorflow():
    """TF_CPP_MIN_LOG_LEVEL only works if it is set before TensorFlow is imported."""
    code = (
        "import sys; from tfclust.cli import build_parser; "
        "build_parser().parse_args(['run', '-v']); print('tensorflow' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert result.stdout.strip() == "False", result.stderr
