"""Every public class and function has an ``Examples`` section, and every example runs.

The examples are the documentation users copy from (scikit-learn's convention): they are run
here as doctests, so they cannot rot. A public name without an ``Examples`` section fails
``test_every_public_name_has_examples``; add one (small arrays, fast, temporary folders for
files, deterministic output).
"""

import doctest
import importlib
import inspect
import tempfile

import pytest

# Modules whose docstrings hold examples (where the public objects are defined).
DOCTEST_MODULES = [
    "tfclust.autoencoder",
    "tfclust.data.idx",
    "tfclust.data.images",
    "tfclust.data.pipeline",
    "tfclust.data.sources",
    "tfclust.metrics",
    "tfclust.persistence",
    "tfclust.pipeline",
    "tfclust.plots",
    "tfclust.projector",
    "tfclust.serving",
    "tfclust.kmeans._choose_k",
    "tfclust.kmeans._estimator",
    "tfclust.kmeans._minibatch_estimator",
    "tfclust.mixture._estimator",
    "tfclust.manifold_clustering",
    "tfclust.deep._layer",
    "tfclust.deep._estimator",
    "tfclust.tsne.estimator",
    "tfclust.tsne.parametric",
    "tfclust._validation",  # NotFittedError
]

# Modules whose public names (``__all__``, else every name without a leading underscore that
# the module defines) must have examples; plus tfclust's own exports (``tfclust._EXPORTS``).
PUBLIC_MODULES = [
    "tfclust.autoencoder",
    "tfclust.data",
    "tfclust.kmeans",
    "tfclust.metrics",
    "tfclust.mixture",
    "tfclust.manifold_clustering",
    "tfclust.deep",
    "tfclust.persistence",
    "tfclust.pipeline",
    "tfclust.plots",
    "tfclust.projector",
    "tfclust.serving",
    "tfclust.tsne",
]

FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def _public_objects() -> dict[str, object]:
    """``{public name: object}``, each object once, under its shortest public name."""
    import tfclust

    found: dict[int, tuple[str, object]] = {}

    def add(name, obj):
        if not (inspect.isclass(obj) or inspect.isfunction(obj)):
            return
        if id(obj) not in found or len(name) < len(found[id(obj)][0]):
            found[id(obj)] = (name, obj)

    for name in tfclust._EXPORTS:
        add(f"tfclust.{name}", getattr(tfclust, name))
    for modname in PUBLIC_MODULES:
        module = importlib.import_module(modname)
        names = getattr(module, "__all__", None)
        if names is None:
            names = [
                n
                for n, v in vars(module).items()
                if not n.startswith("_")
                and getattr(v, "__module__", None) == modname
                and (inspect.isclass(v) or inspect.isfunction(v))
            ]
        for n in names:
            add(f"{modname}.{n}", getattr(module, n))
    return {name: obj for name, obj in found.values()}


def _has_examples(obj) -> bool:
    doc = inspect.getdoc(obj) or ""
    lines = [line.strip() for line in doc.splitlines()]
    return ("Examples:" in lines or "Examples" in lines) and ">>>" in doc


def test_every_public_name_has_examples():
    missing = sorted(name for name, obj in _public_objects().items() if not _has_examples(obj))
    assert not missing, f"public names without an Examples section: {missing}"


def test_every_documented_module_is_run():
    """Each public object's examples live in a module that ``test_doctests`` runs."""
    for name, obj in _public_objects().items():
        if _has_examples(obj):
            assert obj.__module__ in DOCTEST_MODULES, f"{name}: add {obj.__module__}"


@pytest.mark.parametrize("modname", DOCTEST_MODULES)
def test_doctests(modname, monkeypatch):
    module = importlib.import_module(modname)
    # Examples that write files use tempfile; keep them inside one folder removed afterwards.
    with tempfile.TemporaryDirectory(prefix="tfclust-doctest-") as tmp:
        monkeypatch.setattr(tempfile, "tempdir", tmp)
        monkeypatch.chdir(tmp)  # anything written relative to the working folder lands here
        finder = doctest.DocTestFinder(exclude_empty=True)
        runner = doctest.DocTestRunner(optionflags=FLAGS)
        tests = [t for t in finder.find(module, modname) if t.examples]
        for test in sorted(tests, key=lambda t: t.name):
            runner.run(test)
        result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {modname}"
