"""Saving fitted estimators to one ``.npz`` file, and loading them, without pickle.

:func:`save_estimator` (or ``estimator.save(path)``) writes a tfclust estimator, fitted or not,
to a single ``.npz`` archive (``np.savez``, uncompressed); :func:`load_estimator` rebuilds it.
Loading reads the file with ``np.load(path, allow_pickle=False)`` only, and instantiates only
the classes of an allow-list (:data:`ESTIMATORS`), so a file cannot run code when it is loaded:
an archive holding Python objects is refused with a ``ValueError``.

File format (version 1). The archive's entries are ``.npy`` arrays:

``__tfclust__``
    a 0-d unicode array holding a JSON object: ``format`` (1), ``class`` (e.g. ``"KMeans"``,
    a key of :data:`ESTIMATORS`), ``module`` (where the class was defined, for information),
    ``tfclust_version`` (the writer's ``tfclust.__version__``), ``params`` (the constructor
    parameters, ``get_params(deep=False)``), ``attributes`` (the fitted state that is not an
    array: numbers, strings, booleans, None, and lists, tuples, dicts and namespaces of them),
    ``arrays`` (the names of the fitted array attributes, each stored as the entry of that
    name, e.g. ``cluster_centers_``) and ``array_kinds`` (for those of the ``arrays`` not
    restored as a plain numpy array: ``"scalar"`` for a numpy scalar, ``"tensor"`` for a
    ``tf.Tensor``, ``"variable"`` for a ``tf.Variable``, ``"object_str"`` for an object array of
    strings such as scikit-learn's ``feature_names_in_``, stored as a unicode array).
every other entry
    an array: a fitted array attribute (named as the attribute), or an array inside a parameter
    (``params.<name>``, e.g. ``params.init`` for KMeans' initial centres) or inside a
    non-array attribute (``<attribute>.<field>``).

In ``params`` and ``attributes``, JSON values stand for themselves (floats may be ``NaN`` or
``Infinity``, as Python's ``json`` writes them); other values are one-key objects: ``{"__array__":
[entry, kind]}`` (an array entry, ``kind`` as in ``array_kinds`` or ``"ndarray"``),
``{"__tuple__": [...]}``, ``{"__dict__": {...}}`` (a dict whose one key is one of these tags),
``{"__namespace__": {...}}`` (a ``types.SimpleNamespace``, as ``MiniBatchKMeans`` keeps its
validated parameters for ``partial_fit``), ``{"__dtype__": name}`` (a numpy dtype) and
``{"__tf_dtype__": name}`` (a ``tf.DType``). Numpy scalars keep their dtype, arrays their dtype
and shape, tuples stay tuples.

Parameters that cannot be saved raise ``TypeError``, naming the parameter and what to use
instead: a numpy ``RandomState``/``Generator`` as ``random_state`` (use an int or None), a
callable (``callbacks``, a callable ``metric`` or ``init``: their code would need pickle; save
without them and set them again after loading). A ``dtype`` parameter given as a numpy dtype or
type (``np.float32``) or a ``tf.DType`` is saved as its name (``"float32"``), which the
estimators accept as the same dtype; so the loaded estimator's ``dtype`` is that string.

Fitted state. By default it is every instance attribute (``vars(estimator)``) that is not a
constructor parameter: the fitted attributes ending in ``_`` (``cluster_centers_``,
``labels_``, ``embedding_``, ``n_iter_``, ``feature_names_in_``, ...) and the private ones
starting with ``_`` that later calls use (``MiniBatchKMeans``'s ``partial_fit`` state, say).
Numpy arrays, numpy scalars and eager ``tf.Tensor``/``tf.Variable`` values become entries
(restored as the same type, with the same dtype); the values listed above go to the JSON; any
other value raises ``TypeError`` naming the attribute.

Hooks. An estimator class whose state the default cannot store (a Keras model, say) defines:

``_get_saved_state(self) -> dict[str, value]``
    replaces the default collection: the state to save, by name (identifiers), each value an
    array, a numpy scalar, a tensor or a JSON-able value as above (e.g. a model's weights as
    arrays and its configuration as a dict).
``_set_saved_state(self, state: dict[str, value])``
    replaces the default ``setattr(estimator, name, value)`` loop when loading: it receives
    the decoded state, as ``_get_saved_state`` returned it, on an estimator built from the
    saved parameters.
"""

from __future__ import annotations

import importlib
import json
import os
import types
import zipfile

import numpy as np
import tensorflow as tf

import tfclust
from tfclust._files import as_path, save_npz

__all__ = ["ESTIMATORS", "FORMAT_VERSION", "load_estimator", "save_estimator"]

FORMAT_VERSION = 1
"""The version of the file format that :func:`save_estimator` writes and
:func:`load_estimator` reads."""

ESTIMATORS = {
    "KMeans": "tfclust.kmeans:KMeans",
    "MiniBatchKMeans": "tfclust.kmeans:MiniBatchKMeans",
    "TSNE": "tfclust.tsne:TSNE",
    "ParametricTSNE": "tfclust.tsne.parametric:ParametricTSNE",
    "GaussianMixture": "tfclust.mixture:GaussianMixture",
    "ManifoldClustering": "tfclust.manifold_clustering:ManifoldClustering",
    "DEC": "tfclust.deep:DEC",
}
"""The classes :func:`load_estimator` may instantiate: saved class name -> ``"module:Class"``
(imported on first use)."""

_META = "__tfclust__"
_TAGS = ("__array__", "__tuple__", "__dict__", "__namespace__", "__dtype__", "__tf_dtype__")
_KINDS = ("ndarray", "scalar", "tensor", "variable", "object_str")
# np.savez's own keyword arguments cannot name entries.
_RESERVED = (_META, "file", "allow_pickle", "args", "kwds")
_PARAM_HINTS = {
    "callbacks": "use callbacks=None and set them again after loading (set_params)",
    "metric": "use a metric name such as 'euclidean' (a callable's code cannot be stored)",
    "init": "use 'k-means++', 'random', 'pca' or an array (a callable's code cannot be stored)",
}


def _valid_state_name(key) -> bool:
    """Whether ``key`` can name fitted state: an identifier, not a dunder (``__dict__``,
    ``__class__``), and not a name ``np.savez`` reserves."""
    return (
        isinstance(key, str)
        and key.isidentifier()
        and not key.startswith("__")
        and key not in _RESERVED
    )


def _resolve(name: str) -> type:
    """The class that the allow-list maps ``name`` to (imported now)."""
    module, _, attr = ESTIMATORS[name].partition(":")
    return getattr(importlib.import_module(module), attr)


def _is_array(value) -> bool:
    return isinstance(value, np.ndarray | np.generic | tf.Tensor | tf.Variable)


def _to_entry(value, where: str) -> tuple[np.ndarray, str]:
    """``(array, kind)``: how the array-like ``value`` is stored and how it comes back."""
    if isinstance(value, tf.Variable):
        array, kind = value.numpy(), "variable"
    elif isinstance(value, tf.Tensor):
        try:
            array, kind = value.numpy(), "tensor"
        except AttributeError as err:  # a symbolic tensor has no value
            raise TypeError(f"{where} is a symbolic tensor and cannot be saved") from err
        array = np.asarray(array)
    elif isinstance(value, np.generic):
        array, kind = np.asarray(value), "scalar"
    else:
        array, kind = np.asarray(value), "ndarray"
    if array.dtype.kind == "O":
        if kind != "ndarray" or not all(isinstance(v, str) for v in array.flat):
            raise TypeError(
                f"{where} is an array of Python objects and cannot be saved without pickle "
                "(only object arrays of str are, as unicode arrays)"
            )
        array, kind = array.astype(np.str_), "object_str"
    elif array.dtype.hasobject:
        raise TypeError(f"{where} has a dtype holding Python objects ({array.dtype})")
    return array, kind


def _from_entry(array: np.ndarray, kind: str):
    if kind == "scalar":
        return array[()]
    if kind == "tensor":
        return tf.constant(array)
    if kind == "variable":
        return tf.Variable(array)
    if kind == "object_str":
        return array.astype(object)
    return array


def _unsavable(where: str, value, hint: str | None = None) -> TypeError:
    if isinstance(value, np.random.RandomState | np.random.Generator):
        shown, hint = f"{type(value).__name__}(...)", hint or "use an int or None"
    else:
        shown = " ".join(repr(value).split())
        if len(shown) > 60:
            shown = shown[:57] + "..."
        if callable(value):
            hint = (
                hint
                or "a callable's code cannot be stored without pickle; set it again after loading"
            )
        else:
            hint = hint or (
                "use numbers, strings, booleans, None, lists, tuples, dicts or numpy arrays"
            )
    return TypeError(f"{where}={shown} cannot be saved: {hint}")


def _encode(value, key: str, entries: dict, where: str, hint: str | None = None):
    """``value`` as a JSON value; its arrays go to ``entries`` under names starting ``key``."""
    if _is_array(value):  # first: np.float64 is a float, but keeps its dtype as an entry
        if key in entries:
            raise TypeError(f"{where}: the entry name {key!r} is taken; rename the field")
        entries[key], kind = _to_entry(value, where)
        return {"__array__": [key, kind]}
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, tuple | list):
        items = [
            _encode(v, f"{key}.{i}", entries, f"{where}[{i}]", hint) for i, v in enumerate(value)
        ]
        return {"__tuple__": items} if isinstance(value, tuple) else items
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise _unsavable(where, value, "a dict needs str keys to be saved")
        out = {
            k: _encode(v, f"{key}.{k}", entries, f"{where}[{k!r}]", hint) for k, v in value.items()
        }
        return {"__dict__": out} if len(out) == 1 and next(iter(out)) in _TAGS else out
    if isinstance(value, types.SimpleNamespace):
        fields = vars(value)
        return {
            "__namespace__": {
                k: _encode(v, f"{key}.{k}", entries, f"{where}.{k}", hint)
                for k, v in fields.items()
            }
        }
    if isinstance(value, np.dtype):
        return {"__dtype__": value.name}
    if isinstance(value, tf.DType):
        return {"__tf_dtype__": value.name}
    raise _unsavable(where, value, hint)


def _decode(value, read):
    """Undo :func:`_encode`; ``read(entry, kind)`` returns an entry's value."""
    if isinstance(value, list):
        return [_decode(v, read) for v in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1 and next(iter(value)) in _TAGS:
        tag, inner = next(iter(value.items()))
        if tag == "__array__":
            if not (
                isinstance(inner, list)
                and len(inner) == 2
                and all(isinstance(v, str) for v in inner)
                and inner[1] in _KINDS
            ):
                raise _Corrupt(f"a malformed array reference {inner!r}")
            return read(*inner)
        if tag == "__tuple__" and isinstance(inner, list):
            return tuple(_decode(v, read) for v in inner)
        if tag == "__dict__" and isinstance(inner, dict):
            return {k: _decode(v, read) for k, v in inner.items()}
        if tag == "__namespace__" and isinstance(inner, dict):
            return types.SimpleNamespace(**{k: _decode(v, read) for k, v in inner.items()})
        try:
            if tag == "__dtype__":
                return np.dtype(inner)
            if tag == "__tf_dtype__":
                return tf.as_dtype(inner)
        except TypeError as err:
            raise _Corrupt(f"an unknown dtype {inner!r}") from err
        raise _Corrupt(f"a malformed {tag} value")
    return {k: _decode(v, read) for k, v in value.items()}


class _Corrupt(Exception):
    """A malformed file; :func:`load_estimator` turns it into a ``ValueError`` naming it."""


class _Refused(Exception):
    """A well-formed file that this tfclust does not load (version, class): a ``ValueError``."""


def _encode_param(name: str, value, entries: dict):
    """A constructor parameter as a JSON value (its arrays to ``entries``)."""
    if isinstance(value, np.dtype | tf.DType) or (
        isinstance(value, type) and (issubclass(value, np.generic) or value in (float, int, bool))
    ):
        return np.dtype(value.as_numpy_dtype if isinstance(value, tf.DType) else value).name
    return _encode(value, f"params.{name}", entries, name, _PARAM_HINTS.get(name))


def _collect_state(estimator) -> dict:
    """The fitted state to save: the ``_get_saved_state`` hook's, else every attribute that is
    not a constructor parameter."""
    if hasattr(estimator, "_get_saved_state"):
        state = estimator._get_saved_state()
        if not isinstance(state, dict):
            raise TypeError(
                f"{type(estimator).__name__}._get_saved_state must return a dict, "
                f"got {type(state).__name__}"
            )
        return state
    params = set(estimator._get_param_names())
    return {k: v for k, v in vars(estimator).items() if k not in params}


def save_estimator(estimator, path: str | os.PathLike) -> str:
    """Save a tfclust estimator, fitted or not, to one ``.npz`` file, without pickle.

    The file holds the constructor parameters and the fitted state (format in this module's
    docstring); :func:`load_estimator` rebuilds the estimator from it. The file is written
    atomically: a crash never leaves a partial file under ``path``.

    Args:
      estimator: a ``KMeans``, ``MiniBatchKMeans``, ``TSNE`` or ``ParametricTSNE`` (a class of
        :data:`ESTIMATORS`).
      path: destination file; ``.npz`` is appended if it does not end so (as ``np.savez``
        does). An existing file is replaced.

    Returns:
      The path written (str), ``.npz`` suffix included.

    Raises:
      TypeError: an estimator of another class, a parameter that cannot be saved (a
        ``RandomState`` as ``random_state``, a callable; the message says what to use
        instead), or fitted state of a type the format does not hold.

    Examples:
      >>> import os, tempfile
      >>> import numpy as np
      >>> from tfclust import KMeans
      >>> from tfclust.persistence import load_estimator, save_estimator
      >>> X = np.array([[0, 0], [0, 1], [5, 5], [5, 6]], dtype=np.float32)
      >>> km = KMeans(n_clusters=2, random_state=0).fit(X)
      >>> path = save_estimator(km, os.path.join(tempfile.mkdtemp(), "kmeans"))
      >>> os.path.basename(path)
      'kmeans.npz'
      >>> sorted(np.load(path, allow_pickle=False).files)
      ['__tfclust__', 'cluster_centers_', 'labels_']
      >>> load_estimator(path).cluster_centers_.dtype
      dtype('float32')
    """
    cls = type(estimator)
    name = cls.__name__
    try:
        known = name in ESTIMATORS and _resolve(name) is cls
    except (ImportError, AttributeError):  # e.g. a module not written yet
        known = False
    if not known:
        raise TypeError(
            f"save_estimator saves tfclust's estimators ({', '.join(ESTIMATORS)}), "
            f"not {cls.__module__}.{cls.__qualname__}"
        )
    path = as_path(path, name="path", what="a file path (str or os.PathLike)")
    if not path.endswith(".npz"):
        path += ".npz"
    entries: dict[str, np.ndarray] = {}
    params = {
        key: _encode_param(key, value, entries)
        for key, value in estimator.get_params(deep=False).items()
    }
    attributes, arrays, kinds = {}, [], {}
    for key, value in _collect_state(estimator).items():
        if not _valid_state_name(key):
            raise ValueError(f"{name}: the state name {key!r} cannot name an entry")
        where = f"{name} fitted attribute {key}"
        if _is_array(value):
            entries[key], kind = _to_entry(value, where)
            arrays.append(key)
            if kind != "ndarray":
                kinds[key] = kind
        else:
            attributes[key] = _encode(
                value,
                key,
                entries,
                where,
                f"define _get_saved_state/_set_saved_state on {name} to store it",
            )
    meta = {
        "format": FORMAT_VERSION,
        "class": name,
        "module": cls.__module__,
        "tfclust_version": tfclust.__version__,
        "params": params,
        "attributes": attributes,
        "arrays": arrays,
        "array_kinds": kinds,
    }
    entries[_META] = np.array(json.dumps(meta))
    with np.errstate(all="ignore"):
        return save_npz(path, entries)


def _read_meta(npz, path: str) -> dict:
    if _META not in npz.files:
        raise _Corrupt(f"no {_META} entry: not written by tfclust.persistence.save_estimator")
    raw = npz[_META]
    if raw.shape != () or raw.dtype.kind != "U":
        raise _Corrupt(f"the {_META} entry is not a JSON string")
    try:
        meta = json.loads(str(raw))
    except json.JSONDecodeError as err:
        raise _Corrupt(f"the {_META} entry is not valid JSON ({err})") from err
    if not isinstance(meta, dict):
        raise _Corrupt(f"the {_META} entry is not a JSON object")
    version = meta.get("format")
    if version != FORMAT_VERSION or isinstance(version, bool):
        raise _Refused(
            f"file format version {version!r}; this tfclust reads version "
            f"{FORMAT_VERSION} (written by tfclust {meta.get('tfclust_version', '?')})"
        )
    checks = {
        "class": str,
        "params": dict,
        "attributes": dict,
        "arrays": list,
        "array_kinds": dict,
    }
    for key, kind in checks.items():
        if not isinstance(meta.get(key, {} if key == "array_kinds" else None), kind):
            raise _Corrupt(f"the {_META} entry has no valid {key!r}")
    for key in [*meta["arrays"], *meta["attributes"]]:
        if not _valid_state_name(key):
            raise _Corrupt(f"the state name {key!r} is not an attribute name")
    return meta


def load_estimator(path: str | os.PathLike):
    """Load an estimator saved by :func:`save_estimator` (or ``estimator.save``).

    The file is read with ``np.load(path, allow_pickle=False)``, so loading never unpickles
    (never runs code from the file), and only the classes of :data:`ESTIMATORS` are built.

    Args:
      path: the ``.npz`` file.

    Returns:
      The estimator, of the saved class, with the saved parameters (``get_params()`` equal to
      the saved estimator's; a ``dtype`` given as a numpy type comes back as its name) and
      fitted state (same attributes, types and dtypes).

    Raises:
      FileNotFoundError: no such file.
      ValueError: a file that is not one of these (not a ``.npz``, no ``__tfclust__`` entry),
        a corrupt or truncated one, an entry holding Python objects (pickled data), another
        format version, or a class outside :data:`ESTIMATORS`; the message names the file.

    Examples:
      >>> import os, tempfile
      >>> import numpy as np
      >>> from tfclust import TSNE
      >>> from tfclust.persistence import load_estimator, save_estimator
      >>> path = save_estimator(TSNE(perplexity=5, metric_params={"p": 3}),
      ...                       os.path.join(tempfile.mkdtemp(), "tsne.npz"))
      >>> load_estimator(path)  # an unfitted estimator: its parameters only
      TSNE(metric_params={'p': 3}, perplexity=5)
    """
    path = as_path(path, name="path", what="a file path (str or os.PathLike)")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such file")
    if not zipfile.is_zipfile(path):
        raise ValueError(
            f"{path} is not an estimator file (a .npz archive written by "
            "tfclust.persistence.save_estimator)"
        )
    try:
        with np.load(path, allow_pickle=False) as npz:
            meta = _read_meta(npz, path)
            name = meta["class"]
            if name not in ESTIMATORS:
                raise _Refused(
                    f"the file holds a {name!r}, which load_estimator does not build (it "
                    f"builds {', '.join(ESTIMATORS)})"
                )

            def read(entry, kind):
                if entry == _META or entry not in npz.files:
                    raise _Corrupt(f"no entry {entry!r}")
                try:
                    array = npz[entry]
                except ValueError as err:
                    if "pickle" in str(err):
                        raise _Corrupt(
                            f"the entry {entry!r} holds Python objects (pickled data), "
                            "which load_estimator never unpickles"
                        ) from err
                    raise
                return _from_entry(array, kind)

            params = {k: _decode(v, read) for k, v in meta["params"].items()}
            state = {k: _decode(v, read) for k, v in meta["attributes"].items()}
            kinds = meta["array_kinds"]
            for key in meta["arrays"]:
                kind = kinds.get(key, "ndarray")
                if kind not in _KINDS:
                    raise _Corrupt(f"an unknown array kind {kind!r}")
                state[key] = read(key, kind)
    except _Refused as err:
        raise ValueError(f"{path}: {err}") from None
    except _Corrupt as err:
        raise ValueError(f"{path} is not a valid estimator file: {err}") from None
    except (zipfile.BadZipFile, OSError, EOFError, KeyError, ValueError) as err:
        raise ValueError(f"{path} is a corrupt or truncated estimator file ({err})") from err
    try:
        return _build(name, params, state)
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from err


def _build(name: str, params: dict, state: dict):
    """An estimator of the allow-listed class ``name`` with these parameters and fitted state."""
    if name not in ESTIMATORS:
        raise ValueError(f"{name!r} is not one of the estimators tfclust loads")
    try:
        cls = _resolve(name)
    except (ImportError, AttributeError) as err:
        raise ValueError(f"this installation of tfclust cannot import {name} ({err})") from err
    try:
        estimator = cls(**params)
    except TypeError as err:
        raise ValueError(f"the saved parameters do not fit {name} ({err})") from err
    if hasattr(estimator, "_set_saved_state"):
        estimator._set_saved_state(state)
    else:
        for key, value in state.items():
            setattr(estimator, key, value)
    return estimator


def estimator_record(estimator) -> dict:
    """A fitted estimator held inside another's saved state (``_get_saved_state``): a dict of
    its class name, parameters and fitted state, which :func:`estimator_from_record` rebuilds.
    """
    return {
        "class": type(estimator).__name__,
        "params": estimator.get_params(deep=False),
        "state": _collect_state(estimator),
    }


def estimator_from_record(record: dict):
    """The estimator of an :func:`estimator_record` (an allow-listed class only)."""
    return _build(record["class"], record["params"], record["state"])
