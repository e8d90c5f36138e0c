"""Input validation shared by the estimators, in the spirit of scikit-learn's ``check_array``.

Every public entry point converts its inputs here, so that bad input fails early with a
``ValueError``/``TypeError`` that names the argument, before any graph is traced or compiled.
"""

from __future__ import annotations

import numbers
import sys

import numpy as np
import tensorflow as tf

from tfclust._tiling import memory_budget_bytes

_FLOAT_DTYPES = {"float32": tf.float32, "float64": tf.float64}

INT32_MAX = 2**31 - 1
"""Largest value of an integer parameter that reaches int32 TensorFlow code (loop bounds,
counters, sizes): larger values would wrap around, so the checks refuse them."""

SEED_MAX = 2**32 - 1
"""Largest ``random_state``: as numpy's ``RandomState``, seeds are 0 .. 2**32 - 1."""


class NotFittedError(ValueError, AttributeError):
    """Raised when an estimator is used before ``fit``; as ``sklearn.exceptions.NotFittedError``.

    When scikit-learn has been imported, what is raised is a subclass of both this class and
    ``sklearn.exceptions.NotFittedError`` (:func:`sklearn_compatible`), so either ``except``
    catches it; tfclust never imports scikit-learn itself (it need not be installed).

    Examples:
      >>> from tfclust import KMeans, NotFittedError
      >>> try:
      ...     KMeans().predict([[0.0, 1.0]])
      ... except NotFittedError as err:
      ...     print(err)
      This KMeans instance is not fitted yet. Call 'fit' with appropriate arguments before ...
    """


class ConvergenceWarning(UserWarning):
    """Warned when a fit ends without the result it was asked for (fewer distinct clusters
    than ``n_clusters``, or a descent that stopped early); as
    ``sklearn.exceptions.ConvergenceWarning``, whose subclass it is when scikit-learn has been
    imported (:func:`sklearn_compatible`).

    Examples:
      >>> import warnings
      >>> from tfclust import ConvergenceWarning, KMeans
      >>> with warnings.catch_warnings(record=True) as caught:
      ...     warnings.simplefilter("always")
      ...     km = KMeans(n_clusters=3, random_state=0).fit([[0.0], [0.0], [1.0]])
      >>> [issubclass(w.category, ConvergenceWarning) for w in caught]
      [True]
    """


_SKLEARN_TWINS = {
    NotFittedError: "_SklearnNotFittedError",
    ConvergenceWarning: "_SklearnConvergenceWarning",
}


def sklearn_compatible(cls: type) -> type:
    """``cls`` (:class:`NotFittedError` or :class:`ConvergenceWarning`), or, when scikit-learn
    is already imported, a subclass of both it and scikit-learn's class of the same name. Code
    that names scikit-learn's class in an ``except`` or a warning filter has imported it; nobody
    else needs it, so the import cost (seconds) is never paid here."""
    exceptions = sys.modules.get("sklearn.exceptions")  # loaded, never imported here
    sklearn_cls = getattr(exceptions, cls.__name__, None)
    if sklearn_cls is None:
        return cls
    name = _SKLEARN_TWINS[cls]
    twin = globals().get(name)
    if twin is None:
        twin = type(name, (cls, sklearn_cls), {"__module__": __name__, "__doc__": cls.__doc__})
        globals()[name] = twin  # module-level, so instances pickle
    return twin


def __getattr__(name):
    for cls, twin in _SKLEARN_TWINS.items():
        if twin == name:  # unpickling in a process that has not made the class yet
            made = sklearn_compatible(cls)
            if made.__name__ == name:
                return made
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def check_is_fitted(estimator, attribute: str) -> None:
    """Raise :class:`NotFittedError` unless ``estimator`` has the fitted ``attribute``."""
    if getattr(estimator, attribute, None) is None:
        name = type(estimator).__name__
        raise sklearn_compatible(NotFittedError)(
            f"This {name} instance is not fitted yet. Call 'fit' with appropriate arguments "
            "before using this estimator."
        )


def resolve_dtype(dtype) -> tf.DType:
    """Map ``"float32"``/``"float64"`` (or the numpy/TF dtype) to a ``tf.DType``."""
    try:
        name = tf.as_dtype(dtype).name
    except TypeError as err:
        raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}") from err
    if name not in _FLOAT_DTYPES:
        raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    return _FLOAT_DTYPES[name]


def fit_dtype(x, dtype, default: tf.DType) -> tf.DType:
    """The float dtype an estimator computes in: the ``dtype`` parameter when it is set; for
    ``dtype=None``, the dtype of ``x`` (array, tensor, sparse matrix, DataFrame, list or
    ``tf.data.Dataset``) if it is float32 or float64, else ``default`` (scikit-learn's rule:
    other input becomes float64 in its k-means, float32 in its t-SNE)."""
    if dtype is not None:
        return resolve_dtype(dtype)
    if isinstance(x, tf.data.Dataset):
        x = tf.nest.flatten(x.element_spec)[0]
    try:
        if hasattr(x, "dtype"):
            found = x.dtype
        elif hasattr(x, "dtypes"):  # a pandas DataFrame: the dtype its columns share
            found = np.result_type(*x.dtypes)
        else:
            found = np.asarray(x).dtype
        name = tf.as_dtype(found).name
    except (TypeError, ValueError):  # objects, strings, pandas' own dtypes: checked later
        return default
    return _FLOAT_DTYPES.get(name, default)


def check_array(x, *, name: str = "X", dtype=tf.float32, min_samples: int = 1) -> tf.Tensor:
    """Validate a 2-D numeric matrix and return it as a ``tf.Tensor`` of ``dtype``.

    Args:
      x: array-like (numpy, pandas, lists, numeric object arrays), ``tf.Tensor`` or scipy
        sparse matrix (densified) of shape (n_samples, n_features); integers and booleans
        are cast, anything else non-numeric is a ``TypeError``.
      name: the argument's name, used in error messages.
      dtype: the float dtype of the result.
      min_samples: the smallest acceptable number of rows.

    Raises:
      ValueError: not 2-D, too few rows, no columns, or NaN/inf values.
      TypeError: non-numeric values.
    """
    dtype = resolve_dtype(dtype)
    if isinstance(x, tf.data.Dataset):
        raise TypeError(f"{name} must be an array or tensor here, not a tf.data.Dataset")
    if isinstance(x, tf.Tensor | tf.Variable):
        if not (x.dtype.is_floating or x.dtype.is_integer or x.dtype == tf.bool):
            raise TypeError(f"{name} must be numeric, got a tensor of dtype {x.dtype.name}")
        arr = tf.cast(x, dtype)
        shape = tuple(arr.shape)
    else:
        # The kernels run on dense tiles; no scipy import is needed to tell sparse input.
        sparse = type(x).__module__.startswith("scipy.sparse")
        np_arr = x.toarray() if sparse else np.asarray(x)
        if np_arr.dtype.kind == "c":
            raise ValueError(f"Complex data not supported: {name} has dtype {np_arr.dtype}")
        if np_arr.dtype.kind == "O":  # numbers stored as objects: as scikit-learn, convert
            try:
                np_arr = np_arr.astype(np.float64)
            except (TypeError, ValueError) as err:
                raise TypeError(
                    f"{name} must be numeric, got an array of dtype object: {err}"
                ) from err
        if np_arr.dtype.kind not in "biuf":
            raise TypeError(f"{name} must be numeric, got an array of dtype {np_arr.dtype}")
        shape = np_arr.shape
        arr = None
        if len(shape) == 2:
            with np.errstate(over="ignore"):  # values beyond the dtype: reported below
                arr = tf.convert_to_tensor(np_arr.astype(dtype.as_numpy_dtype, copy=False))
    if len(shape) != 2:
        hint = (
            " Reshape your data with X.reshape(-1, 1) or X.reshape(1, -1)."
            if len(shape) == 1
            else ""
        )
        raise ValueError(
            f"{name} must be a 2-D array of shape (n_samples, n_features), got shape {shape}.{hint}"
        )
    if shape[0] < min_samples:
        raise ValueError(f"{name} has {shape[0]} sample(s) but at least {min_samples} are required")
    if shape[1] < 1:
        raise ValueError(
            f"{name} has 0 feature(s) (shape={tuple(shape)}) while a minimum of 1 is required."
        )
    if not bool(tf.reduce_all(tf.math.is_finite(arr))):
        source = np.asarray(x) if isinstance(x, tf.Tensor | tf.Variable) else np_arr
        if source.dtype.kind == "f" and np.all(np.isfinite(source)):
            raise ValueError(
                f"{name} has values beyond the {dtype.name} range "
                f"(+-{np.finfo(dtype.as_numpy_dtype).max:.3g}); scale the data down or use "
                "dtype='float64'"
            )
        raise ValueError(f"{name} contains NaN or infinity")
    return arr


def check_sample_weight(sample_weight, n_samples: int, dtype=tf.float32) -> tf.Tensor:
    """``sample_weight`` as an (n_samples,) tensor of ``dtype``; None means all ones.

    As scikit-learn's ``_check_sample_weight``: a scalar is broadcast; weights must be finite,
    non-negative and not all zero.
    """
    dtype = resolve_dtype(dtype)
    if sample_weight is None:
        return tf.ones([n_samples], dtype)
    w = np.asarray(sample_weight.numpy() if isinstance(sample_weight, tf.Tensor) else sample_weight)
    if w.dtype.kind not in "biuf":
        raise TypeError(f"sample_weight must be numeric, got an array of dtype {w.dtype}")
    if w.ndim == 0:
        w = np.full(n_samples, w, dtype=np.float64)
    if w.shape != (n_samples,):
        raise ValueError(f"sample_weight.shape == {w.shape}, expected {(n_samples,)}!")
    w = w.astype(dtype.as_numpy_dtype)
    if not np.all(np.isfinite(w)):
        raise ValueError("sample_weight contains NaN or infinity")
    if np.any(w < 0):
        raise ValueError("Negative values in data passed to sample_weight")
    if not np.any(w > 0):
        raise ValueError("sample_weight must have at least one positive value (all are zero)")
    return tf.constant(w)


def check_memory_budget(value) -> int:
    """``memory_budget`` in bytes: a positive integer, or None for the device profile's
    (:func:`tfclust._tiling.memory_budget_bytes`)."""
    if value is None:
        return memory_budget_bytes()
    return check_int(value, name="memory_budget", low=1)


def check_int(value, *, name: str, low: int | None = None, high: int | None = None) -> int:
    """Return ``value`` as ``int`` if it is an integer within ``[low, high]``, else raise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if low is not None and value < low:
        raise ValueError(f"{name} must be >= {low}, got {value}")
    if high is not None and value > high:
        raise ValueError(f"{name} must be <= {high}, got {value}")
    return value


def check_layer_sizes(value, *, name: str) -> tuple[int, ...]:
    """Sizes of a network's hidden layers: an int or a tuple/list of ints >= 1, as a tuple."""
    if isinstance(value, int | np.integer) and not isinstance(value, bool):
        value = (value,)
    if not isinstance(value, list | tuple):
        raise TypeError(f"{name} must be a tuple of ints, got {value!r}")
    return tuple(check_int(u, name=name, low=1, high=INT32_MAX) for u in value)


def check_float(
    value,
    *,
    name: str,
    low: float | None = None,
    low_inclusive: bool = True,
    high: float | None = None,
) -> float:
    """Return ``value`` as a finite ``float`` within bounds, else raise a ``ValueError``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if low is not None and (value < low or (value == low and not low_inclusive)):
        op = ">=" if low_inclusive else ">"
        raise ValueError(f"{name} must be {op} {low}, got {value}")
    if high is not None and value > high:
        raise ValueError(f"{name} must be <= {high}, got {value}")
    return value


def check_random_state(random_state) -> int:
    """Turn ``random_state`` into a seed in 0 .. 2**32 - 1 for stateless TF random ops (see
    :func:`stateless_seed`).

    As scikit-learn's: an int (numpy integers included; every seed of 0 .. 2**32 - 1 is valid
    and distinct seeds give distinct streams) gives reproducible results on the same device;
    ``None`` draws fresh entropy; a ``np.random.RandomState`` or ``np.random.Generator`` is
    drawn from (one seed per call, so it advances).
    """
    if random_state is None:
        return int(np.random.SeedSequence().generate_state(1)[0])
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(0, SEED_MAX + 1, dtype=np.int64))
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(0, SEED_MAX + 1))
    if isinstance(random_state, bool) or not isinstance(random_state, numbers.Integral):
        raise TypeError(
            "random_state must be None, an int, a numpy RandomState or a numpy Generator, got "
            f"{random_state!r}"
        )
    return check_int(random_state, name="random_state", low=0, high=SEED_MAX)


def stateless_seed(seed: int, salt: int = 0) -> tf.Tensor:
    """(2,) int32 seed of TF's stateless random ops from a :func:`check_random_state` seed.

    The 32 bits of ``seed`` become the first element (as a two's-complement int32, so no two
    seeds collide), ``salt`` (an int32) the second.
    """
    seed = check_int(seed, name="random_state", low=0, high=SEED_MAX)
    signed = seed - 2**32 if seed > INT32_MAX else seed
    return tf.constant([signed, salt], tf.int32)


def power_of_two_scale(max_abs: float, n_terms: int, dtype, *, always: bool = False) -> float:
    """A power of two ``s`` such that data of largest magnitude ``max_abs`` times ``s`` have
    finite, normal squared distances in ``dtype``; 1.0 when the data need no scaling.

    Scaling by a power of two is exact (no rounding), so labels, neighbours and ranks computed on
    the scaled data are those of the data; sums of squares scale back by ``1 / s**2``. Data are
    rescaled, to ``max_abs * s`` in [0.5, 1), when sums of ``n_terms`` squared differences (each
    up to ``(2 max_abs)**2``) could overflow, or when ``max_abs`` is so small that squares would
    lose digits to underflow; or always, if ``always``.
    """
    finfo = np.finfo(resolve_dtype(dtype).as_numpy_dtype)
    high = np.sqrt(float(finfo.max) / (16.0 * max(int(n_terms), 1)))
    low = float(finfo.tiny) ** 0.25
    max_abs = float(max_abs)
    if max_abs == 0.0 or not np.isfinite(max_abs) or (not always and low <= max_abs <= high):
        return 1.0
    return float(np.ldexp(1.0, -int(np.frexp(max_abs)[1])))


def max_abs(x) -> float:
    """Largest absolute value of the tensor/array ``x`` (0.0 if empty), as a Python float."""
    return float(tf.reduce_max(tf.abs(x))) if int(tf.size(x)) else 0.0
