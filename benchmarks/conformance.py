"""scikit-learn's estimator checks (``sklearn.utils.estimator_checks.check_estimator``) on
tfclust's estimators and, for comparison, on scikit-learn's own.

Each estimator is built with the small settings scikit-learn's own test suite uses for it
(``sklearn/utils/_test_common/instance_generator.py``: ``n_clusters=2, n_init=2, max_iter=5``
for the k-means, ``perplexity=2`` for t-SNE; ``max_iter=250`` added to t-SNE on both sides for
speed). Prints a table and writes ``benchmarks/results/conformance.json``; see
``docs/sklearn_conformance.md``.

Usage: ``python benchmarks/conformance.py [name ...]`` (names: tfclust.KMeans,
sklearn.KMeans, ...; default all). Results of a partial run are merged into the JSON.
"""

from __future__ import annotations

import json
import os
import sys
import time
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "results", "conformance.json")


def estimators():
    import sklearn.cluster
    import sklearn.manifold

    import tfclust

    kmeans = dict(n_clusters=2, n_init=2, max_iter=5, random_state=0)
    minibatch = dict(kmeans, batch_size=10)
    tsne = dict(perplexity=2, max_iter=250, random_state=0)
    return {
        "tfclust.KMeans": lambda: tfclust.KMeans(**kmeans),
        "tfclust.MiniBatchKMeans": lambda: tfclust.MiniBatchKMeans(**minibatch),
        "tfclust.TSNE": lambda: tfclust.TSNE(**tsne),
        "sklearn.KMeans": lambda: sklearn.cluster.KMeans(**kmeans),
        "sklearn.MiniBatchKMeans": lambda: sklearn.cluster.MiniBatchKMeans(**minibatch),
        "sklearn.TSNE": lambda: sklearn.manifold.TSNE(**tsne),
    }


def _reason(exc) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    text = f"{type(exc).__name__}: {text}"
    return text if len(text) <= 220 else text[:217] + "..."


def _run_clustering_checks(estimator, results):
    """scikit-learn yields its clustering checks only for subclasses of its ``ClusterMixin``
    (``isinstance``), which tfclust's clusterers cannot be without importing scikit-learn;
    run those checks directly on them (marked ``"direct": True``)."""
    from sklearn.base import ClusterMixin
    from sklearn.utils import get_tags
    from sklearn.utils.estimator_checks import _check_name, _yield_clustering_checks

    if isinstance(estimator, ClusterMixin) or get_tags(estimator).estimator_type != "clusterer":
        return
    name = type(estimator).__name__
    for check in _yield_clustering_checks(estimator):
        entry = {"check": _check_name(check), "direct": True, "reason": None}
        try:
            check(name, estimator)
        except Exception as exc:  # noqa: BLE001  (any failure is a failed check)
            skipped = type(exc).__name__ == "SkipTest"
            entry.update(status="skipped" if skipped else "failed", reason=_reason(exc))
        else:
            entry["status"] = "passed"
        results.append(entry)


def run(name, make):
    from sklearn.utils.estimator_checks import check_estimator

    results = []
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_estimator(
            make(),
            on_fail=None,
            on_skip=None,
            callback=lambda **r: results.append(
                {
                    "check": r["check_name"],
                    "status": r["status"],
                    "reason": None if r["exception"] is None else _reason(r["exception"]),
                }
            ),
        )
        _run_clustering_checks(make(), results)
    counts = {s: sum(r["status"] == s for r in results) for s in ("passed", "failed", "skipped")}
    return {
        "estimator": repr(make()),
        "total": len(results),
        **counts,
        "seconds": round(time.perf_counter() - start, 1),
        "checks": results,
    }


def main(argv):
    import sklearn

    table = estimators()
    names = argv or list(table)
    new = {}
    for name in names:
        new[name] = r = run(name, table[name])
        print(
            f"{name:26s} passed {r['passed']:3d} / {r['total']:3d}  ({r['seconds']} s)", flush=True
        )
    data = {}
    if os.path.exists(OUT):  # merge with the other estimators' last results
        with open(OUT) as f:
            data = json.load(f).get("results", {})
    data.update(new)
    data = {name: data[name] for name in table if name in data}
    print()
    print("| estimator | passed | failed | skipped | total |")
    print("|---|---|---|---|---|")
    for name, r in data.items():
        print(f"| {name} | {r['passed']} | {r['failed']} | {r['skipped']} | {r['total']} |")
    for name, r in data.items():
        failed = [c for c in r["checks"] if c["status"] == "failed"]
        if failed:
            print(f"\n{name} failures:")
            for c in failed:
                direct = " (run directly)" if c.get("direct") else ""
                print(f"- {c['check']}{direct}: {c['reason']}")
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump({"sklearn_version": sklearn.__version__, "results": data}, f, indent=1)


if __name__ == "__main__":
    main(sys.argv[1:])
