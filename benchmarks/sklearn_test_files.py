"""scikit-learn's own test files run with tfclust's classes in place of scikit-learn's.

Copies ``sklearn/cluster/tests/test_k_means.py`` and ``sklearn/manifold/tests/test_t_sne.py``
from the installed scikit-learn into a scratch folder, changes only the import of the classes
(``KMeans``, ``MiniBatchKMeans``, ``TSNE`` come from tfclust; scikit-learn's private helpers and
functions such as ``k_means`` stay scikit-learn's), runs them with pytest and scikit-learn's
conftest (its fixtures and random seeds), and writes every test's outcome and first error line to
``benchmarks/results/sklearn_test_files.json``; ``docs/sklearn_conformance.md`` groups the
failures by cause.

Usage: ``python benchmarks/sklearn_test_files.py [k_means|t_sne ...]`` (default both).
"""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "results", "sklearn_test_files.json")

# name -> (path inside the sklearn package, the import replaced, its replacement)
FILES = {
    "k_means": (
        "cluster/tests/test_k_means.py",
        "from sklearn.cluster import KMeans, MiniBatchKMeans, k_means, kmeans_plusplus",
        "from sklearn.cluster import k_means, kmeans_plusplus\n"
        "from tfclust import KMeans, MiniBatchKMeans",
    ),
    "t_sne": (
        "manifold/tests/test_t_sne.py",
        "from sklearn.manifold import (\n    TSNE,\n    _barnes_hut_tsne,\n)",
        "from sklearn.manifold import _barnes_hut_tsne\nfrom tfclust import TSNE",
    ),
}


# Why a test fails: the first (regex on "test name | first error line", cause) that matches;
# benchmarks/report.py groups the failures by it (docs/sklearn_conformance.md explains them).
CAUSES = [
    (
        r"has no attribute '_(n_init|init_centroids|init_size)'|_init_size at 0x"
        r"|^test_n_iter_without_progress ",
        "private attributes: the test reads or sets an implementation detail of scikit-learn's "
        "class (`_n_init`, `_init_size`, `_init_centroids`; t-SNE's `_N_ITER_CHECK`)",
    ),
    (
        r"^test_(bh_match_exact|init_ndarray) ",
        "approximate gradient: `barnes_hut` runs FIt-SNE's interpolation, not a Barnes-Hut tree "
        "(close to the exact gradient, not to 1e-4; identical points drift by ~1e-8)",
    ),
    (
        r"^test_tsne_with_different_distance_metrics",
        "bit-equal embeddings from two routes: `metric=m` against `metric='precomputed'` on "
        "scikit-learn's distances, to 1e-7 after 1,000 chaotic iterations (P agrees to 1e-6)",
    ),
    (
        r"method='fft' supports n_components 1 and 2",
        "3-D embedding with the default method (the FFT method embeds in 1 or 2 dimensions; "
        "`method='exact'` in any)",
    ),
]


def cause_of(name: str, reason: str) -> str:
    """The cause of a failed test, from :data:`CAUSES`; ``"unclassified"`` if none matches."""
    for pattern, cause in CAUSES:
        if re.search(pattern, f"{name} | {reason}"):
            return cause
    return "unclassified"


def _first_line(element) -> str:
    text = (element.get("message") or element.text or "").strip().splitlines()
    line = text[0] if text else element.tag
    return line if len(line) <= 300 else line[:297] + "..."


def run_file(name: str, folder: str) -> dict:
    """Run one rewritten test file; return its counts and per-test outcomes."""
    import sklearn

    relative, old, new = FILES[name]
    source = open(os.path.join(os.path.dirname(sklearn.__file__), relative)).read()
    if old not in source:
        raise RuntimeError(f"{relative}: the import to replace is not there: {old!r}")
    test_file = os.path.join(folder, os.path.basename(relative))
    with open(test_file, "w") as f:
        f.write(source.replace(old, new))
    with open(os.path.join(folder, "conftest.py"), "w") as f:
        f.write("from sklearn.conftest import *  # noqa: F403\n")
    report = os.path.join(folder, f"{name}.xml")
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--junitxml", report]
        + [os.path.basename(test_file)],
        cwd=folder,
        check=False,
        stdout=subprocess.DEVNULL,
    )
    seconds = time.perf_counter() - start
    tests = {}
    for case in ET.parse(report).iter("testcase"):
        outcome, reason = "passed", ""
        for tag in ("failure", "error", "skipped"):
            element = case.find(tag)
            if element is not None:
                outcome = "skipped" if tag == "skipped" else "failed"
                if element.get("type") == "pytest.xfail":
                    outcome = "xfailed"
                reason = _first_line(element)
                break
        tests[case.get("name")] = {"outcome": outcome, "reason": reason}
    counts = {}
    for test in tests.values():
        counts[test["outcome"]] = counts.get(test["outcome"], 0) + 1
    return {
        "file": relative,
        "total": len(tests),
        "counts": counts,
        "seconds": round(seconds, 1),
        "tests": tests,
    }


def main(names):
    import sklearn

    results = {}
    if os.path.exists(OUT):
        with open(OUT) as f:
            results = json.load(f)
    results["scikit-learn"] = sklearn.__version__
    results["machine"] = f"{platform.machine()}, {os.cpu_count()} cores"
    results["date"] = time.strftime("%Y-%m-%d")
    for name in names:
        with tempfile.TemporaryDirectory() as folder:
            results[name] = run_file(name, folder)
        counts = results[name]["counts"]
        print(
            f"test_{name}.py: {counts.get('passed', 0)} passed of {results[name]['total']} "
            f"({counts}), {results[name]['seconds']} s"
        )
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump(results, f, indent=1, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main(sys.argv[1:] or list(FILES))
