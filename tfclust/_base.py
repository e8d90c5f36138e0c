"""A small ``BaseEstimator``-like mixin: the scikit-learn estimator protocol without importing
scikit-learn (``get_params``/``set_params`` for ``clone``, grid search and pipelines, a
scikit-learn style ``repr``, and ``__sklearn_tags__``, which imports scikit-learn lazily: only
scikit-learn itself calls it)."""

from __future__ import annotations

import inspect
import sys

import numpy as np

__all__ = ["BaseEstimator", "prefixed_feature_names"]


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

    def __sklearn_is_fitted__(self) -> bool:
        return getattr(self, self._fitted_attribute, None) is not None

    _fitted_attribute = "n_features_in_"

    def __sklearn_tags__(self):
        """scikit-learn's ``Tags`` for this estimator, from the scikit-learn that calls this
        (tfclust imports none). Dense 2-D float input only: no sparse matrices, no NaN."""
        utils = sys.modules["sklearn.utils"]
        InputTags, Tags = utils.InputTags, utils.Tags  # noqa: N806
        TargetTags, TransformerTags = utils.TargetTags, utils.TransformerTags  # noqa: N806

        tags = Tags(
            estimator_type=self._estimator_type,
            target_tags=TargetTags(required=False),
            transformer_tags=None,
            input_tags=InputTags(sparse=False, allow_nan=False, pairwise=False),
        )
        if hasattr(self, "fit_transform"):
            dtype = getattr(self, "dtype", "float32")
            tags.transformer_tags = TransformerTags(
                preserves_dtype=[dtype] if isinstance(dtype, str) else []
            )
        return tags


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
