"""Saving and loading estimators (tfclust.persistence) and KMeans.from_cluster_centers."""

import json
import os
import pathlib
import types

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from tfclust import TSNE, KMeans, MiniBatchKMeans, load_estimator
from tfclust.persistence import FORMAT_VERSION, save_estimator
from tfclust.serving import save_centers


@pytest.fixture(scope="module")
def X():
    """90 points in 3 blobs of 4 features, float32."""
    rng = np.random.default_rng(0)
    centres = np.array([[0, 0, 0, 0], [6, 0, 6, 0], [0, 6, 0, 6]], dtype=np.float64)
    return np.concatenate([rng.normal(c, 0.7, (30, 4)) for c in centres]).astype(np.float32)


def assert_same(a, b, where="value"):
    """``a`` and ``b`` are equal, of the same type, arrays of the same dtype and shape."""
    assert type(a) is type(b), f"{where}: {type(a).__name__} != {type(b).__name__}"
    if isinstance(a, np.ndarray | np.generic):
        assert a.dtype == b.dtype, f"{where}: dtype {a.dtype} != {b.dtype}"
        assert np.shape(a) == np.shape(b), where
        assert np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"), where
    elif isinstance(a, tf.Tensor | tf.Variable):
        assert_same(a.numpy(), b.numpy(), where)
    elif isinstance(a, types.SimpleNamespace):
        assert_same(vars(a), vars(b), where)
    elif isinstance(a, dict):
        assert sorted(a) == sorted(b), f"{where}: keys {sorted(a)} != {sorted(b)}"
        for key in a:
            assert_same(a[key], b[key], f"{where}[{key!r}]")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), where
        for i, (u, v) in enumerate(zip(a, b, strict=True)):
            assert_same(u, v, f"{where}[{i}]")
    elif isinstance(a, float) and np.isnan(a):
        assert np.isnan(b), where
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def round_trip(est, tmp_path, name="est"):
    path = save_estimator(est, tmp_path / name)
    assert path == str(tmp_path / f"{name}.npz")
    loaded = load_estimator(path)
    assert type(loaded) is type(est)
    assert_same(est.get_params(), loaded.get_params(), "get_params()")
    assert repr(loaded) == repr(est)
    assert_same(vars(est), vars(loaded), "vars")
    return loaded


def test_assert_same_can_fail():
    with pytest.raises(AssertionError):
        assert_same(np.zeros(2, np.float32), np.zeros(2, np.float64))
    with pytest.raises(AssertionError):
        assert_same({"a": (1, 2)}, {"a": [1, 2]})
    with pytest.raises(AssertionError):
        assert_same(np.array([1.0, 2.0]), np.array([1.0, 2.5]))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_kmeans_round_trip(X, tmp_path, dtype):
    x = X.astype(dtype)
    km = KMeans(n_clusters=3, random_state=0).fit(x)
    loaded = round_trip(km, tmp_path)
    assert loaded.cluster_centers_.dtype == dtype
    assert loaded.labels_.dtype == km.labels_.dtype
    assert isinstance(loaded.inertia_, float) and loaded.inertia_ == km.inertia_
    assert isinstance(loaded.n_iter_, int) and loaded.n_iter_ == km.n_iter_
    assert_same(km.predict(x), loaded.predict(x))
    assert_same(km.transform(x), loaded.transform(x))
    assert loaded.score(x) == km.score(x)
    # The archive holds what the docstring says, readable without tfclust.
    with np.load(tmp_path / "est.npz", allow_pickle=False) as npz:
        meta = json.loads(str(npz["__tfclust__"]))
        assert meta["format"] == FORMAT_VERSION and meta["class"] == "KMeans"
        assert meta["arrays"] == ["cluster_centers_", "labels_"]
        assert meta["attributes"]["n_iter_"] == km.n_iter_
        np.testing.assert_array_equal(npz["cluster_centers_"], km.cluster_centers_)


def test_kmeans_feature_names_round_trip(X, tmp_path):
    frame = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    km = KMeans(n_clusters=3, random_state=0, init="random", n_init=2).fit(frame)
    assert km.feature_names_in_.dtype == object
    loaded = round_trip(km, tmp_path)
    assert loaded.feature_names_in_.dtype == object
    assert loaded.feature_names_in_.tolist() == ["a", "b", "c", "d"]
    assert_same(km.predict(frame), loaded.predict(frame))
    with pytest.raises(ValueError, match="feature names"):
        loaded.predict(frame.rename(columns={"a": "z"}))


def test_minibatch_kmeans_round_trip_and_partial_fit_goes_on(X, tmp_path):
    init = X[[0, 30, 60]].astype(np.float64)
    mb = MiniBatchKMeans(n_clusters=3, batch_size=20, random_state=0, init=init, dtype="float64")
    mb.fit(X)
    loaded = round_trip(mb, tmp_path)
    assert isinstance(loaded._p, types.SimpleNamespace)
    assert isinstance(loaded._offset, tf.Tensor) and loaded._offset.dtype == tf.float64
    assert loaded._p.dtype == tf.float64
    assert_same(mb.predict(X), loaded.predict(X))
    assert_same(mb.transform(X), loaded.transform(X))
    # partial_fit continues from the saved state exactly as from the original.
    mb.partial_fit(X[:40])
    loaded.partial_fit(X[:40])
    assert_same(mb.cluster_centers_, loaded.cluster_centers_)
    assert_same(mb._counts, loaded._counts)


def test_tsne_round_trip(X, tmp_path):
    tsne = TSNE(perplexity=5, max_iter=250, random_state=0, metric_params=None).fit(X)
    loaded = round_trip(tsne, tmp_path)
    assert loaded.embedding_.dtype == np.float32
    for name in ("embedding_", "neighbors_", "affinities_"):
        assert_same(getattr(tsne, name), getattr(loaded, name), name)
    assert_same(tsne.transform(X[:5]), loaded.transform(X[:5]))
    # The loaded model is usable: more iterations from the saved map.
    before = loaded.embedding_.copy()
    loaded.optimize(50)
    assert loaded.n_iter_ == tsne.n_iter_ + 50
    assert not np.array_equal(before, loaded.embedding_)


def test_unfitted_round_trip_keeps_params(tmp_path):
    init = np.arange(6, dtype=np.float32).reshape(3, 2)
    km = KMeans(n_clusters=np.int64(3), init=init, tol=np.float64(1e-3), dtype=np.float32)
    km.max_iter = float("nan")
    path = save_estimator(km, tmp_path / "km.npz")
    loaded = load_estimator(path)
    assert_same(loaded.init, init, "init")
    assert loaded.dtype == "float32"  # a dtype type is saved by name
    assert_same(loaded.n_clusters, np.int64(3), "n_clusters")
    assert_same(loaded.tol, np.float64(1e-3), "tol")
    assert np.isnan(loaded.max_iter)
    assert not hasattr(loaded, "cluster_centers_")
    assert vars(loaded).keys() == vars(km).keys()

    params = {"V": (1.0, 2.0), "__tuple__": [1, (2, "x")], "nested": {"a": None, "b": True}}
    tsne = TSNE(metric="seuclidean", metric_params=params, init="random", perplexity=5)
    loaded = round_trip(tsne, tmp_path, "tsne")
    assert loaded.metric_params == params
    assert isinstance(loaded.metric_params["V"], tuple)
    assert isinstance(loaded.metric_params["__tuple__"], list)


def test_save_method_and_suffix(X, tmp_path):
    km = KMeans(n_clusters=2, random_state=0).fit(X)
    assert km.save(tmp_path / "a") == str(tmp_path / "a.npz")
    assert km.save(str(tmp_path / "b.npz")) == str(tmp_path / "b.npz")
    assert km.save(pathlib.Path(tmp_path, "c.bin")) == str(tmp_path / "c.bin.npz")
    assert sorted(os.listdir(tmp_path)) == ["a.npz", "b.npz", "c.bin.npz"]
    for name in ("a.npz", "b.npz", "c.bin.npz"):
        assert_same(km.cluster_centers_, load_estimator(tmp_path / name).cluster_centers_)
    km.save(tmp_path / "a")  # replaces the file
    assert sorted(os.listdir(tmp_path)) == ["a.npz", "b.npz", "c.bin.npz"]


def test_unsavable_params_raise_type_error(tmp_path):
    with pytest.raises(TypeError, match=r"random_state=RandomState\(\.\.\.\) cannot be saved: "):
        save_estimator(KMeans(random_state=np.random.RandomState(0)), tmp_path / "x")
    with pytest.raises(TypeError, match=r"random_state=Generator\(\.\.\.\).*use an int or None"):
        save_estimator(KMeans(random_state=np.random.default_rng(0)), tmp_path / "x")
    with pytest.raises(TypeError, match=r"callbacks\[0\]=.*callbacks=None"):
        save_estimator(TSNE(callbacks=[lambda *args: None]), tmp_path / "x")
    with pytest.raises(TypeError, match=r"metric=.*cannot be saved: use a metric name"):
        save_estimator(TSNE(metric=lambda u, v: 0.0), tmp_path / "x")
    with pytest.raises(TypeError, match=r"init=.*cannot be saved"):
        save_estimator(KMeans(init=lambda X, k, random_state: X[:k]), tmp_path / "x")
    assert os.listdir(tmp_path) == []  # nothing written


def test_unsavable_state_and_classes_raise_type_error(X, tmp_path):
    km = KMeans(n_clusters=2, random_state=0).fit(X)
    km.extra_ = object()
    with pytest.raises(TypeError, match="fitted attribute extra_"):
        km.save(tmp_path / "x")
    km.extra_ = np.array([{"a": 1}], dtype=object)
    with pytest.raises(TypeError, match="extra_ is an array of Python objects"):
        km.save(tmp_path / "x")

    class MyKMeans(KMeans):
        pass

    with pytest.raises(TypeError, match="saves tfclust's estimators"):
        save_estimator(MyKMeans(), tmp_path / "x")
    assert os.listdir(tmp_path) == []


def test_hooks_replace_the_default_state(X, tmp_path, monkeypatch):
    calls = {}

    def get_state(self):
        return {"centres": self.cluster_centers_, "info": {"k": 2, "shape": (2, 4)}}

    def set_state(self, state):
        calls["state"] = state
        self.cluster_centers_ = state["centres"]
        self.n_features_in_ = state["centres"].shape[1]

    monkeypatch.setattr(KMeans, "_get_saved_state", get_state, raising=False)
    monkeypatch.setattr(KMeans, "_set_saved_state", set_state, raising=False)
    km = KMeans(n_clusters=2, random_state=0).fit(X)
    path = km.save(tmp_path / "hook")
    with np.load(path, allow_pickle=False) as npz:
        assert sorted(npz.files) == ["__tfclust__", "centres"]
    loaded = load_estimator(path)
    assert_same(calls["state"]["info"], {"k": 2, "shape": (2, 4)})
    assert not hasattr(loaded, "labels_")
    assert_same(km.predict(X), loaded.predict(X))


def rewrite(path, out, change=None, **extra):
    """Copy the archive ``path`` to ``out``, with ``change(meta)`` applied and ``extra``
    entries added (allow_pickle=True so that tests can plant object arrays)."""
    with np.load(path, allow_pickle=False) as npz:
        entries = {k: npz[k] for k in npz.files}
    meta = json.loads(str(entries["__tfclust__"]))
    if change is not None:
        change(meta)
    entries["__tfclust__"] = np.array(json.dumps(meta))
    entries.update(extra)
    np.savez(out, allow_pickle=True, **entries)
    return str(out)


@pytest.fixture
def saved(X, tmp_path):
    return KMeans(n_clusters=2, random_state=0).fit(X).save(tmp_path / "good")


def test_files_that_are_not_ours_raise_value_error(saved, tmp_path):
    text = tmp_path / "text.npz"
    text.write_text("hello")
    with pytest.raises(ValueError, match=f"{text} is not an estimator file"):
        load_estimator(text)
    other = tmp_path / "other.npz"
    np.savez(other, a=np.zeros(3))
    with pytest.raises(ValueError, match=f"{other} is not a valid estimator file: no __tfclust__"):
        load_estimator(other)
    npy = tmp_path / "centers.npy"
    np.save(npy, np.zeros((2, 2)))
    with pytest.raises(ValueError, match="not an estimator file"):
        load_estimator(npy)
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_estimator(tmp_path / "missing.npz")


def test_corrupt_files_raise_value_error(saved, tmp_path):
    data = pathlib.Path(saved).read_bytes()
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=str(truncated)):
        load_estimator(truncated)
    # Flip bytes inside the centres' data: the zip CRC check refuses it.
    with np.load(saved) as npz:
        centres = npz["cluster_centers_"].tobytes()
    flipped = tmp_path / "flipped.npz"
    flipped.write_bytes(data.replace(centres, bytes(len(centres))))
    with pytest.raises(ValueError, match=f"{flipped} is a corrupt or truncated"):
        load_estimator(flipped)

    def not_json(out):
        with np.load(saved) as npz:
            entries = {k: npz[k] for k in npz.files}
        entries["__tfclust__"] = np.array("{not json")
        np.savez(out, **entries)
        return out

    with pytest.raises(ValueError, match="is not valid JSON"):
        load_estimator(not_json(tmp_path / "json.npz"))

    def drop_entry(meta):
        meta["arrays"].append("missing_")

    with pytest.raises(ValueError, match="no entry 'missing_'"):
        load_estimator(rewrite(saved, tmp_path / "missing.npz", drop_entry))
    with pytest.raises(ValueError, match="'__class__' is not an attribute name"):
        load_estimator(
            rewrite(saved, tmp_path / "d.npz", lambda m: m["attributes"].update(__class__=1))
        )
    with pytest.raises(ValueError, match="no valid 'params'"):
        load_estimator(rewrite(saved, tmp_path / "p.npz", lambda m: m.update(params=[1])))
    with pytest.raises(ValueError, match="parameters do not fit KMeans"):
        load_estimator(rewrite(saved, tmp_path / "q.npz", lambda m: m["params"].update(bogus=1)))


def test_wrong_version_and_unknown_class_raise_value_error(saved, tmp_path):
    out = rewrite(saved, tmp_path / "v2.npz", lambda m: m.update(format=2))
    with pytest.raises(
        ValueError, match=f"{out}: file format version 2; this tfclust reads version 1"
    ):
        load_estimator(out)
    out = rewrite(saved, tmp_path / "cls.npz", lambda m: m.update({"class": "os.system"}))
    with pytest.raises(ValueError, match=f"{out}: the file holds a 'os.system', which"):
        load_estimator(out)


class Bomb:
    """Unpickling this makes the folder ``marker``: proof that unpickling happened."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def test_loading_never_unpickles(saved, tmp_path):
    marker = str(tmp_path / "unpickled")
    bomb = np.array([Bomb(marker)], dtype=object)

    def plant(meta):
        meta["arrays"].append("bomb_")

    out = rewrite(saved, tmp_path / "bomb.npz", plant, bomb_=bomb)
    with np.load(out, allow_pickle=True) as npz:  # the bomb is live...
        npz["bomb_"]
    assert os.path.isdir(marker)
    os.rmdir(marker)
    with pytest.raises(ValueError, match="'bomb_' holds Python objects"):  # ...but not loaded
        load_estimator(out)
    assert not os.path.exists(marker)

    # A bomb as the metadata itself, or referenced from the parameters.
    path = tmp_path / "meta_bomb.npz"
    np.savez(path, allow_pickle=True, __tfclust__=bomb)
    with pytest.raises(ValueError, match=str(path)):
        load_estimator(path)

    def in_params(meta):
        meta["params"]["init"] = {"__array__": ["bomb_", "ndarray"]}

    with pytest.raises(ValueError, match="holds Python objects"):
        load_estimator(rewrite(saved, tmp_path / "p_bomb.npz", in_params, bomb_=bomb))
    assert not os.path.exists(marker)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_from_cluster_centers_array(X, dtype):
    x = X.astype(dtype)
    km = KMeans(n_clusters=3, random_state=0).fit(x)
    rebuilt = KMeans.from_cluster_centers(km.cluster_centers_, random_state=0)
    assert rebuilt.n_clusters == 3 and rebuilt.n_features_in_ == 4
    assert rebuilt.cluster_centers_.dtype == dtype
    assert rebuilt.labels_ is None and rebuilt.inertia_ is None and rebuilt.n_iter_ == 0
    assert rebuilt.get_params() == KMeans(n_clusters=3, random_state=0).get_params()
    assert_same(km.predict(x), rebuilt.predict(x))
    assert_same(km.transform(x), rebuilt.transform(x))
    assert rebuilt.score(x) == km.score(x)
    assert rebuilt.cluster_centers_ is not km.cluster_centers_
    # dtype parameter: the centres follow it
    as32 = KMeans.from_cluster_centers(km.cluster_centers_, dtype="float32")
    assert as32.cluster_centers_.dtype == np.float32 and as32.dtype == "float32"
    # integer centres become float64, as KMeans' rule for other input
    ints = KMeans.from_cluster_centers([[0, 0], [10, 0]])
    assert ints.cluster_centers_.dtype == np.float64
    assert ints.predict([[1, 0], [8, 0]]).tolist() == [0, 1]


def test_from_cluster_centers_npy_path(X, tmp_path):
    km = KMeans(n_clusters=3, random_state=0).fit(X)  # float32, as a run's centres
    path = save_centers(km, tmp_path / "kmeans_centers.npy")
    for source in (path, pathlib.Path(path)):
        rebuilt = KMeans.from_cluster_centers(source)
        assert rebuilt.cluster_centers_.dtype == np.float32
        assert_same(km.predict(X), rebuilt.predict(X))
        assert_same(km.transform(X), rebuilt.transform(X))
    as64 = KMeans.from_cluster_centers(path, dtype="float64")
    assert as64.cluster_centers_.dtype == np.float64
    assert_same(km.predict(X), as64.predict(X.astype(np.float64)))
    # A rebuilt KMeans saves and loads like a fitted one.
    loaded = load_estimator(rebuilt.save(tmp_path / "rebuilt"))
    assert loaded.labels_ is None and loaded.inertia_ is None
    assert_same(km.predict(X), loaded.predict(X))


def test_from_cluster_centers_bad_centres(tmp_path):
    with pytest.raises(ValueError, match="2-D"):
        KMeans.from_cluster_centers(np.zeros(4))
    with pytest.raises(ValueError, match="2-D"):
        KMeans.from_cluster_centers(np.zeros((2, 2, 2)))
    with pytest.raises(ValueError, match="NaN|infinity"):
        KMeans.from_cluster_centers(np.array([[0.0, np.nan], [1.0, 1.0]]))
    with pytest.raises(ValueError, match="0 sample"):
        KMeans.from_cluster_centers(np.zeros((0, 2)))
    with pytest.raises(ValueError, match="n_clusters=3 but cluster_centers has 2"):
        KMeans.from_cluster_centers(np.eye(2), n_clusters=3)
    bad = tmp_path / "bad.npy"
    np.save(bad, np.array([[0.0, np.inf]]))
    with pytest.raises(ValueError, match="NaN|infinity"):
        KMeans.from_cluster_centers(bad)
    text = tmp_path / "text.npy"
    text.write_text("0 0\n1 1\n")
    with pytest.raises(ValueError, match="not a .npy file"):
        KMeans.from_cluster_centers(text)
    with pytest.raises(FileNotFoundError):
        KMeans.from_cluster_centers(tmp_path / "missing.npy")
