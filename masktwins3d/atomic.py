"""Atomic writes: a temp file in the same folder, then ``os.replace``.

A reader never sees a half-written report, manifest or checkpoint, even if the writer is killed.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable


def atomic_write(path: str | Path, write: Callable[[str], None]) -> Path:
    """Call ``write(tmp_path)`` and move the result to ``path`` atomically.

    Args:
        path: final destination; its parent folder is created if missing.
        write: callable that writes the complete file at the temp path it is given.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""

    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)

    return atomic_write(path, write)


def atomic_write_json(path: str | Path, obj: Any) -> Path:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def set_aside(path: str | Path) -> Path | None:
    """Move an existing ``path`` (file or folder) to a unique hidden sibling and return where it
    went (None when nothing is there). The sibling is on the same file system, so the move is one
    rename; pair it with :func:`put_back` on failure and :func:`discard` once the replacement is
    complete, so an overwrite never removes anything before its replacement exists."""
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        return None
    aside = Path(tempfile.mkdtemp(prefix=f".{path.name}.replaced-", dir=path.parent))
    aside.rmdir()
    os.replace(path, aside)
    return aside


def put_back(path: str | Path, aside: Path | None) -> None:
    """Undo :func:`set_aside`: remove whatever is at ``path`` now and move ``aside`` back."""
    if aside is None:
        return
    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()
    os.replace(aside, path)


def discard(aside: Path | None) -> None:
    """Delete what :func:`set_aside` moved away (the replacement is complete)."""
    if aside is None:
        return
    if aside.is_dir() and not aside.is_symlink():
        shutil.rmtree(aside)
    else:
        aside.unlink()
