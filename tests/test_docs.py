"""The README stays short and its links work; the generated references cover the code.

The site itself is built by ``make docs`` (``mkdocs build --strict``), which ``make test`` runs.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import re
from pathlib import Path

import yaml

from masktwins3d import config
from masktwins3d.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
README_LIMIT = 12 * 1024


def _hook():
    spec = importlib.util.spec_from_file_location("docs_reference_hook", ROOT / "docs" / "hooks" / "reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_is_short_and_keeps_the_two_commands():
    text = README.read_text(encoding="utf-8")
    assert len(text.encode("utf-8")) <= README_LIMIT
    assert re.search(r"^make demo\s+#", text, re.M)
    assert re.search(r"^make test\s+#", text, re.M)
    assert "BENCHMARKS.md" in text


def test_readme_relative_links_exist():
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", README.read_text(encoding="utf-8"))
    local = [link for link in links if "://" not in link]
    assert local, "the README links to the docs pages"
    missing = [link for link in local if not (ROOT / link).exists()]
    assert not missing, f"README links to files that do not exist: {missing}"


def test_every_nav_page_exists():
    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("", lambda loader, suffix, node: None)  # mkdocs' !!python tags, if any
    site = yaml.load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"), Loader=Loader)
    pages: list[str] = []

    def walk(node):
        if isinstance(node, str):
            pages.append(node)
        elif isinstance(node, list):
            for item in node:
                walk(item)
        elif isinstance(node, dict):
            for item in node.values():
                walk(item)

    walk(site["nav"])
    docs = ROOT / site["docs_dir"]
    assert not [p for p in pages if not (docs / p).is_file()]
    assert len(pages) >= 10


def test_cli_reference_has_every_subcommand():
    text = _hook().cli_reference()
    for verb in ("demo", "train", "predict", "postprocess mito", "postprocess synapse", "evaluate mito",
                 "evaluate synapse", "convert", "resample", "export bioimageio", "view", "datasets"):
        assert f"`masktwins3d {verb}`" in text, verb
    assert "--resume" in text and "--scheduler" in text
    assert build_parser().prog == "masktwins3d"


def test_config_reference_has_every_key():
    text = _hook().config_reference()

    def keys(cls, prefix=""):
        for f in dataclasses.fields(cls):
            key = f"{prefix}{f.name}"
            yield key
            default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
            if dataclasses.is_dataclass(default):
                yield from keys(type(default), key + ".")

    every = list(keys(config.RunConfig))
    assert "data.augmentations.cutblur_p" in every
    assert not [k for k in every if f"| `{k}` |" not in text]
    assert all(f"`{key}`" in text for key in config.RANGES)
