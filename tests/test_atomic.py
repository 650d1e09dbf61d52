"""Replacing outputs: nothing existing is removed before its replacement is in place."""

import os
from pathlib import Path

import pytest

import masktwins3d.atomic as atomic
from masktwins3d.atomic import move_into_place, staged
from masktwins3d.errors import UserError


def _folder(path: Path, text: str) -> Path:
    path.mkdir()
    (path / "data.txt").write_text(text)
    return path


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_move_into_place_replaces_and_leaves_nothing_behind(tmp_path):
    old, new = _folder(tmp_path / "out.zarr", "old"), _folder(tmp_path / ".out.partial", "new")
    move_into_place(new, old)
    assert (old / "data.txt").read_text() == "new"
    assert _names(tmp_path) == ["out.zarr"]


def test_move_into_place_puts_the_old_output_back_when_the_rename_fails(tmp_path, monkeypatch):
    old, new = _folder(tmp_path / "out.zarr", "old"), _folder(tmp_path / ".out.partial", "new")
    real = os.replace

    def failing(src, dst):
        if Path(src) == new:
            raise OSError("disk full")
        return real(src, dst)

    monkeypatch.setattr(atomic.os, "replace", failing)
    with pytest.raises(OSError, match="disk full"):
        move_into_place(new, old)
    assert (old / "data.txt").read_text() == "old"
    assert _names(tmp_path) == [".out.partial", "out.zarr"]  # the stage is its caller's to remove


def test_staged_keeps_the_old_output_when_the_block_fails(tmp_path):
    old = _folder(tmp_path / "out.zarr", "old")
    with pytest.raises(RuntimeError):
        with staged(old, overwrite=True) as stage:
            _folder(stage, "half")
            raise RuntimeError("killed")
    assert (old / "data.txt").read_text() == "old"
    assert _names(tmp_path) == ["out.zarr"]
    with pytest.raises(UserError, match="out.zarr exists; pass --overwrite"):
        with staged(old) as stage:
            raise AssertionError("never reached: refused before the block runs")
    with staged(old, overwrite=True) as stage:
        _folder(stage, "new")
    assert (old / "data.txt").read_text() == "new" and _names(tmp_path) == ["out.zarr"]
