"""train_autoencoder under tf.distribute: two logical CPU devices, and two local worker processes.

Logical devices must be configured before TensorFlow initialises, and a multi-worker strategy
owns its process, so each case trains in fresh interpreters and compares with a one-device run.
"""

import json
import os
import socket
import subprocess
import sys
import textwrap

import numpy as np

from tfclust.autoencoder import build_autoencoder, train_autoencoder
from tfclust.data import autoencoder_pipeline

MODEL = {"latent_dim": 8, "filters": (4, 8), "seed": 0}
BATCH, EPOCHS, SEED = 32, 2, 0
TIMEOUT = 150  # seconds per subprocess; a healthy one takes about 10 on two shared cores

MIRRORED = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from tfclust.autoencoder import build_autoencoder, train_autoencoder
    from tfclust.data import autoencoder_pipeline

    config = json.loads(sys.argv[2])
    ds = autoencoder_pipeline(np.load(sys.argv[1]), config["batch"], seed=config["seed"])
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
        autoencoder, _, _ = build_autoencoder(**config["model"])
    assert strategy.num_replicas_in_sync == 2
    assert isinstance(autoencoder.weights[0].value, tf.distribute.DistributedValues)
    history = train_autoencoder(autoencoder, ds, epochs=config["epochs"], verbose=0)
    refused = {}
    try:
        train_autoencoder(autoencoder, ds, epochs=1, verbose=0, steps_per_execution=2)
    except ValueError as err:
        refused["steps"] = str(err)
    one_device, _, _ = build_autoencoder(**config["model"])
    try:
        with strategy.scope():
            train_autoencoder(one_device, ds, epochs=1, verbose=0)
    except ValueError as err:
        refused["outside"] = str(err)
    print("RESULT" + json.dumps({"loss": history.history["loss"], "refused": refused}))
    """
)

WORKER = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import tensorflow as tf

    strategy = tf.distribute.MultiWorkerMirroredStrategy()  # reads TF_CONFIG
    from tfclust.autoencoder import build_autoencoder, train_autoencoder
    from tfclust.data import autoencoder_pipeline

    config = json.loads(sys.argv[2])
    ds = autoencoder_pipeline(np.load(sys.argv[1]), config["batch"], seed=config["seed"])
    with strategy.scope():
        autoencoder, _, _ = build_autoencoder(**config["model"])
    assert strategy.num_replicas_in_sync == 2
    history = train_autoencoder(autoencoder, ds, epochs=config["epochs"], verbose=0)
    np.savez(sys.argv[3], *autoencoder.get_weights())
    print("RESULT" + json.dumps({"loss": history.history["loss"]}))
    """
)


def _images(n=200):
    return np.random.default_rng(0).integers(0, 256, (n, 28, 28), dtype=np.uint8)


def _config() -> str:
    return json.dumps({"model": MODEL, "batch": BATCH, "epochs": EPOCHS, "seed": SEED})


def _one_device_losses(images) -> list[float]:
    autoencoder, _, _ = build_autoencoder(**MODEL)
    ds = autoencoder_pipeline(images, BATCH, seed=SEED)
    return train_autoencoder(autoencoder, ds, epochs=EPOCHS, verbose=0).history["loss"]


def _env(**extra) -> dict:
    return dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONWARNINGS="ignore", **extra)


def _result(stdout: str, what: str, stderr: str) -> dict:
    lines = [ln for ln in stdout.splitlines() if ln.startswith("RESULT")]
    assert lines, f"{what} printed no RESULT line; its stderr:\n{stderr[-3000:]}"
    return json.loads(lines[-1][len("RESULT") :])


def _free_ports(n: int) -> list[int]:
    """``n`` distinct ports free on localhost now (held open together, so never the same)."""
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("localhost", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def test_mirrored_strategy_on_two_devices_matches_one_device(tmp_path):
    images = _images()
    np.save(tmp_path / "images.npy", images)
    proc = subprocess.run(
        [sys.executable, "-c", MIRRORED, str(tmp_path / "images.npy"), _config()],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=TIMEOUT,
    )
    assert proc.returncode == 0, f"MirroredStrategy run failed:\n{proc.stderr[-3000:]}"
    out = _result(proc.stdout, "the MirroredStrategy run", proc.stderr)
    assert "keras-team/keras#19246" in out["refused"].get("steps", "")
    assert "built outside the current tf.distribute" in out["refused"].get("outside", "")
    # The same global batches, their gradients summed over two replicas in another order.
    np.testing.assert_allclose(out["loss"], _one_device_losses(images), rtol=1e-3)


def test_multi_worker_mirrored_strategy_with_two_local_workers(tmp_path):
    images = _images()
    np.save(tmp_path / "images.npy", images)
    cluster = {"worker": [f"localhost:{port}" for port in _free_ports(2)]}
    workers = []
    for index in range(2):
        tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        command = [sys.executable, "-c", WORKER, str(tmp_path / "images.npy"), _config()]
        command.append(str(tmp_path / f"weights{index}.npz"))
        workers.append(
            subprocess.Popen(
                command,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=_env(TF_CONFIG=tf_config),
            )
        )
    outputs = []
    try:
        for index, worker in enumerate(workers):
            try:
                outputs.append(worker.communicate(timeout=TIMEOUT))
            except subprocess.TimeoutExpired:
                raise AssertionError(f"worker {index} did not finish in {TIMEOUT} s") from None
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.communicate()
    results = []
    for index, (worker, (stdout, stderr)) in enumerate(zip(workers, outputs, strict=True)):
        assert worker.returncode == 0, (
            f"worker {index} exited {worker.returncode}:\n{stderr[-3000:]}"
        )
        results.append(_result(stdout, f"worker {index}", stderr))
    weights = [np.load(tmp_path / f"weights{index}.npz") for index in range(2)]
    for name in weights[0].files:
        np.testing.assert_array_equal(weights[0][name], weights[1][name], err_msg=name)
    assert results[0]["loss"] == results[1]["loss"]
    assert np.isfinite(results[0]["loss"]).all()
    np.testing.assert_allclose(results[0]["loss"], _one_device_losses(images), rtol=1e-3)
