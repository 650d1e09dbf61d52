"""mkdocs hook: generate the CLI and configuration references at build time.

A page that holds the line ``<!-- generated: cli -->`` gets every subcommand's ``--help`` from
:func:`masktwins3d.cli.build_parser`; one that holds ``<!-- generated: config -->`` gets a table
per config dataclass of :mod:`masktwins3d.config` (dotted key, type, default) under the class's
docstring, and the value checks of :data:`masktwins3d.config.RANGES`. Nothing is copied by hand,
so the pages follow the code.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import sys
from pathlib import Path

CLI_MARKER = "<!-- generated: cli -->"
CONFIG_MARKER = "<!-- generated: config -->"
HELP_COLUMNS = "100"  # argparse wraps at the terminal width; fixed so every build is the same

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _walk(parser: argparse.ArgumentParser, words: tuple[str, ...] = ()):
    yield words, parser
    for name, child in _subparsers(parser).items():
        yield from _walk(child, words + (name,))


def cli_reference() -> str:
    """Every (sub)command's ``--help`` text, one section each, in the parser's order."""
    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = HELP_COLUMNS
    try:
        from masktwins3d.cli import build_parser

        parts = []
        for words, parser in _walk(build_parser()):
            title = " ".join(("masktwins3d",) + words)
            level = "#" * min(3 + max(len(words) - 1, 0), 5)
            parts.append(f"{level} `{title}`\n\n```text\n{parser.format_help().rstrip()}\n```\n")
        return "\n".join(parts)
    finally:
        if old is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = old


def _default(f: dataclasses.Field) -> str:
    if f.default is not dataclasses.MISSING:
        value = f.default
    elif f.default_factory is not dataclasses.MISSING:
        value = f.default_factory()
    else:
        return "(required)"
    if dataclasses.is_dataclass(value):
        return f"see `{type(value).__name__}`"
    if value is None:
        return "`null`"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, list) and value and dataclasses.is_dataclass(value[0]):
        return "`[]`"
    return f"`{value!r}`".replace("'", "")


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _sections(cls, prefix: str):
    """(dotted prefix, dataclass) for cls and every dataclass field below it, depth first."""
    yield prefix, cls
    hints = {f.name: f for f in dataclasses.fields(cls)}
    for name, f in hints.items():
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        if dataclasses.is_dataclass(default):
            yield from _sections(type(default), f"{prefix}.{name}" if prefix else name)


def config_reference() -> str:
    """A table per config dataclass (key, type, default) after its docstring, then the range checks."""
    import inspect

    from masktwins3d import config

    parts = []
    for prefix, cls in _sections(config.RunConfig, ""):
        title = f"`{prefix}` ({cls.__name__})" if prefix else f"top level ({cls.__name__})"
        doc = inspect.cleandoc(cls.__doc__ or "")
        rows = ["| key | type | default |", "|---|---|---|"]
        for f in dataclasses.fields(cls):
            key = f"{prefix}.{f.name}" if prefix else f.name
            rows.append(f"| `{key}` | `{_cell(str(f.type))}` | {_cell(_default(f))} |")
        doc = re.sub(r"(^|\n\n)Args: ", r"\1**Fields:** ", doc)
        parts.append(f"## {title}\n\n{doc}\n\n" + "\n".join(rows) + "\n")
    rows = ["| key | must be | for example |", "|---|---|---|"]
    for key, (_, what, example) in config.RANGES.items():
        rows.append(f"| `{key}` | {_cell(what)} | `{example}` |")
    probs = ", ".join(f"`data.augmentations.{name}`" for name in config._PROBABILITIES)
    parts.append("## Value checks\n\n`load_config` refuses a value outside these ranges with one line naming the key "
                 "(`masktwins3d.config.RANGES`; NaN and infinities fail every check). "
                 f"The probabilities {probs} must lie in [0, 1].\n\n" + "\n".join(rows) + "\n")
    return "\n".join(parts)


def on_page_markdown(markdown: str, page, config, files) -> str:  # noqa: ARG001 (mkdocs hook signature)
    if CLI_MARKER in markdown:
        markdown = markdown.replace(CLI_MARKER, cli_reference())
    if CONFIG_MARKER in markdown:
        markdown = markdown.replace(CONFIG_MARKER, config_reference())
    return markdown
