"""KMeans under MirroredStrategy over two logical CPU devices equals the one-device fit.

Logical devices must be configured before TensorFlow initialises, so the check runs in a fresh
interpreter. The same subprocess also proves ``tfclust.kmeans`` works with scikit-learn hidden.
"""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
from sklearn.datasets import make_blobs

SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import tensorflow as tf

    sys.modules["sklearn"] = None  # any import of scikit-learn now fails
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from tfclust.kmeans import KMeans

    data = np.load(sys.argv[1])
    x, init = data["x"], data["init"]
    one = KMeans(6, init=init, dtype="float64").fit(x)
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    ds = tf.data.Dataset.from_tensor_slices(x).batch(250)  # last batch uneven
    with strategy.scope():
        assert strategy.num_replicas_in_sync == 2
        two = KMeans(6, init=init, dtype="float64").fit(ds)
        two_array = KMeans(6, init=init, dtype="float64").fit(x)
    out = {name: {"labels": m.labels_.tolist(), "centers": m.cluster_centers_.tolist(),
                  "inertia": m.inertia_, "n_iter": m.n_iter_}
           for name, m in [("one", one), ("two", two), ("two_array", two_array)]}
    print("RESULT" + json.dumps(out))
    """
)


def test_mirrored_strategy_matches_one_device(tmp_path):
    x, _ = make_blobs(n_samples=1001, n_features=8, centers=6, cluster_std=2.5, random_state=3)
    init = x[:6].copy()
    init[2] = 500.0  # an empty cluster: the relocation pass runs distributed too
    np.savez(tmp_path / "data.npz", x=x, init=init)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path / "data.npz")],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT"))
    out = json.loads(line[len("RESULT") :])
    one = out["one"]
    for name in ("two", "two_array"):
        other = out[name]
        np.testing.assert_array_equal(other["labels"], one["labels"])
        np.testing.assert_allclose(other["centers"], one["centers"], rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(other["inertia"], one["inertia"], rtol=1e-9)
        assert other["n_iter"] == one["n_iter"]
