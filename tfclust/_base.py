"""A small ``BaseEstimator``-like mixin: the scikit-learn estimator protocol without importing
scikit-learn (``get_params``/``set_params`` for ``clone``, grid search and pipelines, a
scikit-learn style ``repr``, and ``__sklearn_tags__``, which imports scikit-learn lazily: only
scikit-learn itself calls it)."""

from __future__ import annotations

import inspect
import sys
import warnings

import numpy as np

__all__ = [
    "BaseEstimator",
    "SavedStatePickle",
    "input_feature_names",
    "prefixed_feature_names",
]


def _is_default(value, default) -> bool:
    """Whether the parameter ``value`` equals its ``default`` (arrays never do)."""
    if value is default:
        return True
    if isinstance(value, np.ndarray) or isinstance(default, np.ndarray):
        return False
    try:
        return bool(value == default)
    except Exception:  # noqa: BLE001  (odd __eq__: treat as not default, as scikit-learn)
        return False


class BaseEstimator:
    """Parameters from the ``__init__`` signature, as ``sklearn.base.BaseEstimator``.

    Subclasses store every ``__init__`` argument unchanged in the attribute of the same name
    (validation happens in ``fit``) and take no ``*args``/``**kwargs``. Class attributes:
    ``_estimator_type`` (``"clusterer"`` or None, for the tags) and ``_fitted_attribute`` (set
    by ``fit``, for ``__sklearn_is_fitted__``). Estimators with ``fit_transform`` get
    transformer tags whose ``preserves_dtype`` is their ``dtype`` parameter.
    """

    _estimator_type: str | None = None

    @classmethod
    def _get_param_names(cls) -> list[str]:
        init = cls.__init__
        if init is object.__init__:
            return []
        params = [
            p
            for p in inspect.signature(init).parameters.values()
            if p.name != "self" and p.kind != p.VAR_KEYWORD
        ]
        for p in params:
            if p.kind == p.VAR_POSITIONAL:
                raise RuntimeError(
                    f"{cls.__name__} should not take *args in __init__ (scikit-learn convention)"
                )
        return sorted(p.name for p in params)

    def get_params(self, deep: bool = True) -> dict:
        """The constructor parameters, by name; with ``deep``, those of nested estimators too
        (as ``name__param``)."""
        out = {}
        for key in self._get_param_names():
            value = getattr(self, key)
            if deep and hasattr(value, "get_params") and not isinstance(value, type):
                out.update((f"{key}__{k}", v) for k, v in value.get_params().items())
            out[key] = value
        return out

    def set_params(self, **params):
        """Set constructor parameters (``name__param`` for nested estimators); returns self.

        Raises:
          ValueError: an unknown parameter name.
        """
        if not params:
            return self
        valid = self.get_params(deep=True)
        nested: dict[str, dict] = {}
        for key, value in params.items():
            name, delim, sub = key.partition("__")
            if name not in valid:
                raise ValueError(
                    f"Invalid parameter {name!r} for estimator {self}. Valid parameters are: "
                    f"{self._get_param_names()!r}."
                )
            if delim:
                nested.setdefault(name, {})[sub] = value
            else:
                setattr(self, name, value)
                valid[name] = value
        for name, sub_params in nested.items():
            valid[name].set_params(**sub_params)
        return self

    def _changed_params(self) -> dict:
        init = type(self).__init__
        defaults = {
            p.name: p.default
            for p in inspect.signature(init).parameters.values()
            if p.default is not inspect.Parameter.empty
        }
        return {
            k: v
            for k, v in self.get_params(deep=False).items()
            if k not in defaults or not _is_default(v, defaults[k])
        }

    def __repr__(self) -> str:
        parts = []
        for key, value in self._changed_params().items():
            text = " ".join(repr(value).split())
            if len(text) > 60:  # long arrays: elide, as scikit-learn does
                text = text[:28] + "..." + text[-28:]
            parts.append(f"{key}={text}")
        return f"{type(self).__name__}({', '.join(parts)})"

    def save(self, path) -> str:
        """Save this estimator, fitted or not, to one ``.npz`` file without pickle (``.npz`` is
        appended if missing); returns the path written. Load it with
        ``tfclust.load_estimator``. See :func:`tfclust.persistence.save_estimator`."""
        from tfclust.persistence import save_estimator

        return save_estimator(self, path)

    def __sklearn_is_fitted__(self) -> bool:
        return getattr(self, self._fitted_attribute, None) is not None

    _fitted_attribute = "n_features_in_"

    def __sklearn_tags__(self):
        """scikit-learn's ``Tags`` for this estimator, from the scikit-learn that calls this
        (tfclust imports none). 2-D numeric input, dense or sparse (densified), no NaN;
        pairwise when ``metric="precomputed"``; float32 and float64 preserved when the ``dtype``
        parameter is None, else that dtype."""
        utils = sys.modules["sklearn.utils"]
        InputTags, Tags = utils.InputTags, utils.Tags  # noqa: N806
        TargetTags, TransformerTags = utils.TargetTags, utils.TransformerTags  # noqa: N806

        pairwise = getattr(self, "metric", None) == "precomputed"
        tags = Tags(
            estimator_type=self._estimator_type,
            target_tags=TargetTags(required=False),
            transformer_tags=None,
            input_tags=InputTags(sparse=True, allow_nan=False, pairwise=pairwise),
        )
        if hasattr(self, "fit_transform"):
            dtype = getattr(self, "dtype", None)
            preserves = ["float64", "float32"] if dtype is None else [np.dtype(dtype).name]
            tags.transformer_tags = TransformerTags(preserves_dtype=preserves)
        return tags

    def _check_feature_names(self, X, *, reset: bool) -> None:
        """As scikit-learn: ``fit`` (``reset``) stores the string column names of a DataFrame X
        in ``feature_names_in_`` (or removes it); later calls check that X's names match (a
        ``ValueError`` if they differ, a ``UserWarning`` if only one side has names)."""
        names = input_feature_names(X)
        if reset:
            if names is None:
                self.__dict__.pop("feature_names_in_", None)
            else:
                self.feature_names_in_ = names
            return
        fitted = getattr(self, "feature_names_in_", None)
        name = type(self).__name__
        if fitted is None and names is not None:
            warnings.warn(
                f"X has feature names, but {name} was fitted without feature names",
                UserWarning,
                stacklevel=4,
            )
        elif fitted is not None and names is None:
            warnings.warn(
                f"X does not have valid feature names, but {name} was fitted with feature names",
                UserWarning,
                stacklevel=4,
            )
        elif fitted is not None and (len(fitted) != len(names) or np.any(fitted != names)):
            raise ValueError(
                "The feature names should match those that were passed during fit.\n"
                f"Fitted with: {list(fitted)}\nGot: {list(names)}"
            )


def input_feature_names(X):
    """The column names of a DataFrame ``X`` as an object array, if all are strings; else None
    (scikit-learn's rule: other names are not feature names)."""
    columns = getattr(X, "columns", None)
    if columns is None or not hasattr(X, "iloc"):
        return None
    names = np.asarray(columns, dtype=object)
    if names.size == 0 or not all(isinstance(n, str) for n in names):
        return None
    return names


def prefixed_feature_names(estimator, attribute, input_features):
    """``f"{class name lower}{i}"`` for the columns of the fitted ``attribute``'s rows."""
    from tfclust._validation import check_is_fitted

    check_is_fitted(estimator, attribute)
    if input_features is not None and len(input_features) != estimator.n_features_in_:
        raise ValueError(
            f"input_features should have length equal to number of features "
            f"({estimator.n_features_in_}), got {len(input_features)}"
        )
    prefix = type(estimator).__name__.lower()
    n_out = np.shape(getattr(estimator, attribute))[0 if attribute == "cluster_centers_" else 1]
    return np.asarray([f"{prefix}{i}" for i in range(n_out)], dtype=object)


class SavedStatePickle:
    """Pickling through the persistence hooks: for estimators whose fitted state is not plain
    attributes (a Keras model, fitted estimators inside), ``pickle`` stores the parameters and
    what ``_get_saved_state`` returns, and restores them with ``_set_saved_state``."""

    def __getstate__(self):
        return {"params": self.get_params(deep=False), "state": self._get_saved_state()}

    def __setstate__(self, data):
        for name, value in data["params"].items():
            setattr(self, name, value)
        self._set_saved_state(data["state"])
