"""Write docs/parameters.md: every estimator parameter and every CLI option, from the code.

One source of truth: the estimators' ``__init__`` signatures (names, defaults; ``inspect``), the
``Args:`` sections of their class docstrings (descriptions), ``tfclust.pipeline.RunConfig``'s
fields, and the argparse parser of ``tfclust.cli`` (options per sub-command). The page is
generated, never edited by hand; ``tests/test_docs.py`` checks that it is current.

    python docs/gen_parameters.py            # rewrite docs/parameters.md
    python docs/gen_parameters.py --check    # exit 1 if docs/parameters.md is stale
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import inspect
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "docs", "parameters.md")


def estimators() -> list[tuple[str, str, str]]:
    """(public name, module, class) of every estimator: those that tfclust saves and loads."""
    from tfclust.persistence import ESTIMATORS

    return [(f"tfclust.{name}", *where.split(":")) for name, where in ESTIMATORS.items()]


def _cell(text) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def parse_args_section(doc: str | None) -> dict[str, str]:
    """``{name: description}`` from a Google-style ``Args:`` section (continuations joined)."""
    if not doc:
        return {}
    lines = inspect.cleandoc(doc).splitlines()
    out: dict[str, str] = {}
    inside = False
    indent = None
    current = None
    for line in lines:
        if not inside:
            inside = line.strip() in ("Args:", "Arguments:", "Parameters:")
            continue
        if not line.strip():
            current = None
            continue
        this = len(line) - len(line.lstrip())
        if this == 0:  # the next section, or prose after the arguments
            break
        if indent is None:
            indent = this
        match = re.match(r"\s*\**([A-Za-z_][A-Za-z0-9_]*)\s*(\([^)]*\))?\s*:\s*(.*)", line)
        if this == indent and match:
            current = match.group(1)
            out[current] = match.group(3).strip()
        elif current is not None and this > indent:
            out[current] = (out[current] + " " + line.strip()).strip()
    return out


def _default(param: inspect.Parameter) -> str:
    if param.default is inspect.Parameter.empty:
        return "(required)"
    return f"`{param.default!r}`"


def estimator_section(public: str, module: str, name: str) -> list[str]:
    cls = getattr(importlib.import_module(module), name)
    sig = inspect.signature(cls.__init__)
    docs = parse_args_section(cls.__doc__)
    summary = inspect.cleandoc(cls.__doc__ or "").splitlines()[0] if cls.__doc__ else ""
    out = [f"## `{public}`", "", summary, "", "| parameter | default | description |"]
    out.append("|---|---|---|")
    for pname, param in sig.parameters.items():
        if pname == "self" or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        desc = docs.get(pname, "*(not documented in the docstring's Args section)*")
        out.append(f"| `{pname}` | {_cell(_default(param))} | {_cell(desc)} |")
    undocumented_extra = sorted(set(docs) - set(sig.parameters))
    if undocumented_extra:
        out += ["", "Documented but not in the signature: " + ", ".join(undocumented_extra)]
    return out


def run_config_section() -> list[str]:
    from tfclust.pipeline import RunConfig

    out = [
        "## `tfclust.pipeline.RunConfig`",
        "",
        "What `tfclust run` (and `tfclust.pipeline.run`) does; the defaults reproduce the "
        "tutorial. The CLI options of `tfclust run` below set these fields.",
        "",
        "| field | type | default |",
        "|---|---|---|",
    ]
    for field in dataclasses.fields(RunConfig):
        if field.default is not dataclasses.MISSING:
            default = f"`{field.default!r}`"
        elif field.default_factory is not dataclasses.MISSING:
            default = f"`{field.default_factory()!r}`"
        else:
            default = "(required)"
        ftype = field.type if isinstance(field.type, str) else getattr(field.type, "__name__", "")
        out.append(f"| `{field.name}` | `{_cell(ftype)}` | {_cell(default)} |")
    return out


def _option_row(action: argparse.Action) -> str:
    names = ", ".join(f"`{s}`" for s in action.option_strings) or f"`{action.dest}`"
    if action.required:
        default = "(required)"
    elif isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction)):
        default = "off" if isinstance(action, argparse._StoreTrueAction) else "on"
    elif action.default is None:
        default = ""
    else:
        default = f"`{action.default!r}`"
    arg = ""
    if action.choices:
        arg = "{" + ", ".join(map(str, action.choices)) + "}"
    elif action.nargs != 0 and action.option_strings:
        metavar = action.metavar or action.dest.upper()
        arg = metavar if isinstance(metavar, str) else " ".join(metavar)
        if action.nargs in ("+", "*"):
            arg += " ..."
    helptext = action.help or ""
    if "%(default)" in helptext:
        helptext = helptext % {"default": action.default}
    return f"| {names} | {_cell(arg)} | {_cell(default)} | {_cell(helptext)} |"


def cli_section() -> list[str]:
    from tfclust.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    helps = {a.dest: a.help for a in sub._choices_actions}
    out = [
        "## Command line: `tfclust COMMAND`",
        "",
        "`tfclust COMMAND --help` prints the same. Every sub-command also takes `-q/--quiet` "
        "and `-v/--verbose` (listed under each).",
    ]
    for name, p in sub.choices.items():
        out += ["", f"### `tfclust {name}`", "", _cell(helps.get(name) or p.description or "")]
        if p.description:
            out += ["", _cell(p.description)]
        out += ["", "| option | argument | default | description |", "|---|---|---|---|"]
        for action in p._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            out.append(_option_row(action))
    return out


def render() -> str:
    lines = [
        "# Parameters",
        "",
        "Generated by `python docs/gen_parameters.py` from the code (the estimators' signatures "
        "and docstrings, `RunConfig`, the CLI's argparse parser); do not edit by hand "
        "(`tests/test_docs.py` fails when this page is stale).",
        "",
        "Estimator parameters follow scikit-learn's names and defaults "
        "(`get_params` / `set_params` / `clone` work as in scikit-learn).",
        "",
    ]
    for public, module, name in estimators():
        lines += estimator_section(public, module, name)
        lines.append("")
    lines += run_config_section()
    lines.append("")
    lines += cli_section()
    return "\n".join(lines).rstrip("\n") + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the page is stale")
    parser.add_argument("--out", default=OUT, help="where to write (default docs/parameters.md)")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        try:
            with open(args.out, encoding="utf-8") as f:
                current = f.read()
        except FileNotFoundError:
            current = None
        if current != text:
            print(f"{args.out} is stale: run python docs/gen_parameters.py", file=sys.stderr)
            return 1
        return 0
    with open(args.out, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, ROOT)
    sys.exit(main())
