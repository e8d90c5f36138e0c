"""The generated documentation pages are current, and the README links what exists.

docs/benchmarks.md comes from benchmarks/results/*.json (``python benchmarks/report.py``) and
docs/parameters.md from the code (``python docs/gen_parameters.py``); these tests fail when a
page was not regenerated after its source changed, so the pages cannot go stale.
"""

import glob
import importlib.util
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _load(relpath: str, name: str):
    spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, relpath))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _read(relpath: str) -> str:
    with open(os.path.join(ROOT, relpath), encoding="utf-8") as f:
        return f.read()


def test_benchmarks_page_is_current():
    report = _load("benchmarks/report.py", "_tfclust_bench_report")
    expected = report.render()
    assert _read("docs/benchmarks.md") == expected, (
        "docs/benchmarks.md is stale: run `python benchmarks/report.py`"
    )
    readme = _read("README.md")
    assert readme == report.readme_with_headline(readme), (
        "README.md's headline table is stale: run `python benchmarks/report.py`"
    )


def test_benchmarks_page_is_deterministic_and_covers_every_result():
    report = _load("benchmarks/report.py", "_tfclust_bench_report")
    text = report.render()
    assert text == report.render()
    names = {name for name, _ in report.SECTIONS}
    for path in glob.glob(os.path.join(ROOT, "benchmarks", "results", "*.json")):
        name = os.path.basename(path)[: -len(".json")]
        assert name in names, f"benchmarks/report.py has no section for {name}.json"


def test_benchmark_report_does_not_import_tensorflow():
    source = _read("benchmarks/report.py")
    assert not re.search(r"^\s*(import|from)\s+(tensorflow|tfclust)\b", source, re.M)


def test_parameters_page_is_current():
    gen = _load("docs/gen_parameters.py", "_tfclust_gen_parameters")
    assert _read("docs/parameters.md") == gen.render(), (
        "docs/parameters.md is stale: run `python docs/gen_parameters.py`"
    )


def test_args_section_parser():
    gen = _load("docs/gen_parameters.py", "_tfclust_gen_parameters")
    doc = """Summary.

    Args:
      alpha: first line
        continued.
      beta (int): second.

    Returns:
      gamma: not an argument.
    """
    assert gen.parse_args_section(doc) == {"alpha": "first line continued.", "beta": "second."}


def test_readme_links_resolve_and_lists_every_figure():
    readme = _read("README.md")
    for target in re.findall(r"\]\(([^)#\s]+)", readme):
        if "://" in target:
            continue
        assert os.path.exists(os.path.join(ROOT, target)), f"README links a missing {target}"
    for png in sorted(glob.glob(os.path.join(ROOT, "docs", "*", "*.png"))):
        rel = os.path.relpath(png, ROOT).replace(os.sep, "/")
        assert rel in readme, f"README does not list the figure {rel}"
    for page in sorted(glob.glob(os.path.join(ROOT, "docs", "*.md"))):
        rel = os.path.relpath(page, ROOT).replace(os.sep, "/")
        assert rel in readme, f"README does not link {rel}"


def test_readme_quick_start_is_what_ci_runs():
    readme = _read("README.md")
    assert '.venv/bin/pip install -e ".[test]"' in readme
    assert ".venv/bin/python -m pytest" in readme
    assert len(readme.splitlines()) <= 220
