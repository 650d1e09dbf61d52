"""Writes that never lose anything: every output is staged beside its destination and renamed
into place when complete, an earlier output is set aside and deleted only after its replacement
exists, and an output that is, contains or lies inside an input is refused.

A reader never sees a half-written report, manifest, checkpoint or volume, even if the writer
is killed.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from contextlib import contextmanager
from typing import Any, Callable, Iterator


def atomic_write(path: str | Path, write: Callable[[str], None]) -> Path:
    """Call ``write(tmp_path)`` and move the result to ``path`` atomically.

    Args:
        path: final destination; its parent folder is created if missing.
        write: callable that writes the complete file at the temp path it is given.
    """
    from .errors import UserError

    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise UserError(f"cannot write {path} ({exc.strerror or type(exc).__name__}); choose a folder you can write to") from None
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException as exc:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(exc, OSError) and exc.filename is not None and str(exc.filename) == str(tmp):
            # the error names the temporary file: name the output the user asked for instead
            raise UserError(f"cannot write {path} ({exc.strerror or type(exc).__name__}); check that the disk has space "
                            "and that you may write there") from None
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
    remove_path(Path(path))
    os.replace(aside, path)


@contextmanager
def restore_on_error(path: str | Path, aside: Path | None) -> Iterator[None]:
    """Run the block that makes the replacement of ``path``; if it raises (a Ctrl-C included),
    put the earlier output that :func:`set_aside` moved to ``aside`` back in place. On success
    the caller passes ``aside`` to :func:`discard` once the replacement is complete."""
    try:
        yield
    except BaseException:
        put_back(path, aside)
        raise


def discard(aside: Path | None) -> None:
    """Delete what :func:`set_aside` moved away (the replacement is complete)."""
    if aside is not None:
        remove_path(aside)


def spec_path(spec: str | Path) -> Path:
    """The file-system path a volume or output spec lives at, made absolute: the file of an
    HDF5 spec (``f.h5:/raw`` -> ``f.h5``), the path itself otherwise (a zarr array, a TIFF, a
    folder)."""
    from .io.hdf5_io import split_hdf5_spec  # local: io imports h5py

    hdf5 = split_hdf5_spec(str(spec))
    path = hdf5[0] if hdf5 is not None else Path(spec)
    return Path(os.path.realpath(path.expanduser()))


def overlaps(a: Path, b: Path) -> bool:
    """True when ``a`` and ``b`` (absolute) are the same path or one lies inside the other."""
    return a == b or a in b.parents or b in a.parents


def refuse_overlap(outputs: dict[str, Any], inputs: dict[str, Any]) -> None:
    """One :class:`~masktwins3d.errors.UserError` line when an output is, contains or lies inside
    an input (which writing it would destroy while it is read), or lies under a file; ``None``
    entries are skipped.

    Args:
        outputs: flag or name -> output spec, e.g. ``{"--output": "out.zarr"}``.
        inputs: flag or name -> input spec (a path, an HDF5 ``file:/key`` or an object with ``.path``).
    """
    from .errors import UserError

    for out_name, out in outputs.items():
        if out is None:
            continue
        o = spec_path(out)
        for parent in o.parents:
            if parent.exists():
                if not parent.is_dir():
                    raise UserError(f"{out_name} {out} lies under {parent}, which is a file, not a folder; choose a path in a folder")
                break
        for in_name, spec in inputs.items():
            spec = getattr(spec, "path", spec)
            if spec is None:
                continue
            i = spec_path(spec)
            if overlaps(o, i):
                how = "is" if o == i else ("contains" if o in i.parents else "lies inside")
                raise UserError(f"{out_name} {out} {how} the input {in_name} {spec}; writing it would destroy the input: "
                                "choose another path, outside every input")


def writable_sibling(path: str | Path, kind: str = "probe") -> Path:
    """A fresh hidden name beside ``path`` (``.<name>.<kind>-XXXX``, nothing there), after making
    ``path``'s folder and proving it writable by creating and removing it there.

    Raises:
        UserError: the folder cannot be made or written to, naming ``path`` (not the probe).
    """
    from .errors import UserError

    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.{kind}-", dir=path.parent))
    except OSError as exc:
        raise UserError(f"cannot write {path} ({exc.strerror or type(exc).__name__}); choose a folder you can write to") from None
    tmp.rmdir()
    return tmp


def remove_path(path: str | Path) -> None:
    """Delete a file, a link or a folder tree (nothing when ``path`` is absent)."""
    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


@contextmanager
def staged(path: str | Path, overwrite: bool = False) -> Iterator[Path]:
    """Stage an output: yield a fresh hidden sibling of ``path`` to write the complete output
    at; when the block ends without an error, move it into place (an existing ``path`` is set
    aside first and deleted only once the new one is there); on an error remove the stage and
    leave ``path`` as it was.

    Raises:
        UserError: ``path`` exists and ``overwrite`` is False, or its folder cannot be created.
    """
    from .errors import UserError

    path = Path(path)
    if (path.exists() or path.is_symlink()) and not overwrite:
        raise UserError(f"{path} exists; pass --overwrite to replace it or choose another output")
    tmp = writable_sibling(path, "partial")
    try:
        yield tmp
        move_into_place(tmp, path)
    except BaseException:
        remove_path(tmp)
        raise


def move_into_place(src: str | Path, dst: str | Path) -> None:
    """Rename the complete ``src`` to ``dst``: an existing ``dst`` is set aside first, put back if
    the rename fails, and deleted only once ``src`` is in place."""
    aside = set_aside(dst)
    try:
        os.replace(src, dst)
    except BaseException:
        put_back(dst, aside)
        raise
    discard(aside)
