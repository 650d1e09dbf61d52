"""Synapse points in the WASPSYN layout: HDF5 ``pre`` (N, 3) and ``post`` (M, 4), or two CSV files.

``pre`` rows are z, y, x voxel coordinates of pre-synaptic sites; ``post`` rows are
``[pre row, z, y, x]``: each post-synaptic site names the row of the pre it belongs to (one pre,
many posts). Coordinates are voxels, ZYX; WASPSYN ground truth is in global coordinates and
predictions are chunk-local (see ``docs/EVALUATION.md``).

CSV layout (a folder)::

    pre.csv    id,z,y,x            one row per pre; ``id`` any unique integer
    post.csv   id,pre_id,z,y,x     one row per post; ``pre_id`` is the ``id`` of its pre

The pre *row* (what ``post[:, 0]`` holds) is the order of the rows in ``pre.csv``; ``id`` values
need not be 0..N-1. :func:`write_points_csv` writes ``id`` = row, so the two agree. Extra columns
are ignored.

HDF5 files are written with int64 datasets when every value is a whole number (AdaSyn points
always are), float64 otherwise; in memory :class:`SynapsePoints` holds float64.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ..atomic import atomic_write, atomic_write_text
from ..errors import UserError

GT_NAME = re.compile(r"syns_zyx_(\d+)-(\d+)_(\d+)-(\d+)_(\d+)-(\d+)\.h5")
"""WASPSYN ground-truth file names: ``syns_zyx_{z0}-{z1}_{y0}-{y1}_{x0}-{x1}.h5``."""

PRE_COLUMNS = ("id", "z", "y", "x")
POST_COLUMNS = ("id", "pre_id", "z", "y", "x")


def _check_arrays(pre, post, where: str) -> tuple[np.ndarray, np.ndarray]:
    """``pre`` (N, 3) and ``post`` (M, 4) as float64, or a one-line :class:`UserError` naming ``where``."""
    out = []
    layouts = (("pre", pre, 3, "(N, 3) rows of z, y, x"), ("post", post, 4, "(M, 4) rows of [pre row, z, y, x]"))
    for name, value, cols, layout in layouts:
        try:
            a = np.array(value, dtype=np.float64)
        except (TypeError, ValueError):
            raise UserError(f"{where}: '{name}' is not numeric; it must be {layout}") from None
        if a.ndim == 1 and a.size == 0:
            a = a.reshape(0, cols)  # an empty 1-D dataset means no points
        if a.ndim != 2 or a.shape[1] != cols:
            raise UserError(f"{where}: '{name}' has shape {a.shape}; it must be {layout}")
        if not np.isfinite(a).all():
            row = int(np.flatnonzero(~np.isfinite(a).all(axis=1))[0])
            raise UserError(f"{where}: '{name}' row {row} holds NaN or inf; remove or fix that row")
        out.append(a)
    pre, post = out
    if len(post):
        link = post[:, 0]
        bad = (link < 0) | (link >= len(pre)) | (link != np.round(link))
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            rows = f"rows 0..{len(pre) - 1}" if len(pre) else "none"
            raise UserError(
                f"{where}: post row {row} names pre row {link[row]:g} but there are {len(pre)} pre points ({rows}); "
                "fix the links in column 0"
            )
    return pre, post


@dataclass(frozen=True)
class SynapsePoints:
    """Pre and post points of one volume (voxel coordinates, ZYX), checked on construction.

    The arrays are stored as read-only float64 copies; empty inputs become ``(0, 3)`` / ``(0, 4)``.

    Args:
        pre: ``(N, 3)`` z, y, x of the pre-synaptic sites (int or float).
        post: ``(M, 4)`` ``[pre row, z, y, x]`` of the post-synaptic sites; ``pre row`` is an
            integer in ``[0, N)``.
    """

    pre: np.ndarray
    post: np.ndarray

    def __post_init__(self):
        pre, post = _check_arrays(self.pre, self.post, "SynapsePoints")
        for name, a in (("pre", pre), ("post", post)):
            a.flags.writeable = False
            object.__setattr__(self, name, a)

    @property
    def post_zyx(self) -> np.ndarray:
        """``(M, 3)`` coordinates of the posts."""
        return self.post[:, 1:4]

    @property
    def post_pre(self) -> np.ndarray:
        """``(M,)`` int64 row of the pre each post belongs to."""
        return self.post[:, 0].astype(np.int64)

    @classmethod
    def empty(cls) -> SynapsePoints:
        """No points at all."""
        return cls(np.zeros((0, 3)), np.zeros((0, 4)))


def read_points(path: str | Path) -> SynapsePoints:
    """Read WASPSYN points, checked (shapes, finite values, post -> pre links).

    Args:
        path: an HDF5 file with datasets ``pre`` and ``post``; or a CSV folder holding
            ``pre.csv`` and ``post.csv`` (module doc), or the path of either of those two files.
    """
    path = Path(path)
    if path.is_dir():
        return _read_csv(path)
    if path.name in ("pre.csv", "post.csv"):
        return _read_csv(path.parent)
    if not path.is_file():
        raise UserError(
            f"points file {path} does not exist; give a WASPSYN .h5 file (pre, post) "
            "or a folder with pre.csv and post.csv"
        )
    import h5py

    try:
        f = h5py.File(path, "r")
    except OSError:
        raise UserError(
            f"{path} is not an HDF5 file; give a WASPSYN .h5 file with 'pre' and 'post' datasets or a CSV folder"
        ) from None
    with f:
        for key in ("pre", "post"):
            if key not in f or not isinstance(f[key], h5py.Dataset):
                raise UserError(
                    f"{path} has no '{key}' dataset (found {sorted(f.keys())}); "
                    "WASPSYN points need 'pre' (N, 3) and 'post' (M, 4)"
                )
        pre, post = _check_arrays(f["pre"][()], f["post"][()], str(path))
    return SynapsePoints(pre, post)


def _read_table(file: Path, columns: Sequence[str]) -> np.ndarray:
    if not file.is_file():
        raise UserError(
            f"{file} does not exist; a CSV points folder needs pre.csv ({','.join(PRE_COLUMNS)}) "
            f"and post.csv ({','.join(POST_COLUMNS)})"
        )
    with open(file, newline="", encoding="utf-8-sig") as fh:  # -sig: tolerate a spreadsheet's BOM
        reader = csv.DictReader(fh)
        names = [n.strip() for n in reader.fieldnames or []]
        missing = [c for c in columns if c not in names]
        if missing:
            raise UserError(f"{file} has columns {names} and lacks {missing}; its header must be {','.join(columns)}")
        reader.fieldnames = names
        rows = []
        for line, row in enumerate(reader, start=2):
            try:
                rows.append([float(row[c]) for c in columns])
            except (TypeError, ValueError):
                values = {c: row.get(c) for c in columns}
                raise UserError(f"{file} line {line}: {values} is not all numbers; fix that row") from None
    table = np.asarray(rows, dtype=np.float64).reshape(-1, len(columns))
    ids = table[:, 0]
    if len(ids) and not (np.isfinite(ids).all() and (ids == np.round(ids)).all()):
        raise UserError(f"{file}: column 'id' holds a value that is not a whole number; ids must be integers")
    unique, count = np.unique(ids, return_counts=True)
    if (count > 1).any():
        raise UserError(f"{file}: id {unique[count > 1][0]:g} appears more than once; give every row its own id")
    return table


def _read_csv(folder: Path) -> SynapsePoints:
    pre = _read_table(folder / "pre.csv", PRE_COLUMNS)
    post = _read_table(folder / "post.csv", POST_COLUMNS)
    row_of_id = {int(i): r for r, i in enumerate(pre[:, 0])}
    links = np.zeros(len(post))
    for r, (post_id, pre_id) in enumerate(post[:, :2]):
        if not np.isfinite(pre_id) or pre_id != round(pre_id) or int(pre_id) not in row_of_id:
            raise UserError(
                f"{folder / 'post.csv'}: post id {post_id:g} names pre_id {pre_id:g}, which is not an id in pre.csv; "
                "fix the links"
            )
        links[r] = row_of_id[int(pre_id)]
    pre_arr, post_arr = _check_arrays(pre[:, 1:4], np.column_stack([links, post[:, 2:5]]), str(folder))
    return SynapsePoints(pre_arr, post_arr)


def _storage(a: np.ndarray) -> np.ndarray:
    """int64 when every value is a whole number, else float64."""
    return a.astype(np.int64) if np.array_equal(a, np.round(a)) and (np.abs(a) < 2**62).all() else a


def write_points_h5(
    path: str | Path,
    points: SynapsePoints,
    voxel_size: Sequence[float] | None = None,
    offset: Sequence[int] | None = None,
) -> Path:
    """Write ``pre`` and ``post`` in the WASPSYN layout, atomically (temp file, then rename).

    Args:
        path: output ``.h5`` file; its folder is created if missing; an existing file is replaced
            (callers check ``--overwrite``).
        points: the points; datasets are int64 when all values are whole numbers, else float64.
        voxel_size: nm per voxel, ZYX, stored as attribute ``voxel_size`` when given.
        offset: voxel offset of the volume the points are local to, stored as attribute ``offset``.
    """
    import h5py

    def write(tmp: str) -> None:
        with h5py.File(tmp, "w") as f:
            f.create_dataset("pre", data=_storage(points.pre))
            f.create_dataset("post", data=_storage(points.post))
            if voxel_size is not None:
                f.attrs["voxel_size"] = np.asarray(tuple(voxel_size), dtype=np.float64)
            if offset is not None:
                f.attrs["offset"] = np.asarray(tuple(offset), dtype=np.int64)

    return atomic_write(path, write)


def _num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else repr(float(v))


def write_points_csv(folder: str | Path, points: SynapsePoints) -> Path:
    """Write ``pre.csv`` (``id,z,y,x``) and ``post.csv`` (``id,pre_id,z,y,x``) into ``folder``.

    Each file is written atomically; ``id`` is the row, whole numbers are written without a
    decimal point and other values exactly (shortest round-trip repr).

    Args:
        folder: output folder, created if missing; existing files are replaced.
        points: the points.
    """
    folder = Path(folder)
    pre_lines = [",".join(PRE_COLUMNS)] + [",".join([str(i), *map(_num, row)]) for i, row in enumerate(points.pre)]
    post_lines = [",".join(POST_COLUMNS)] + [",".join([str(i), *map(_num, row)]) for i, row in enumerate(points.post)]
    atomic_write_text(folder / "pre.csv", "\n".join(pre_lines) + "\n")
    atomic_write_text(folder / "post.csv", "\n".join(post_lines) + "\n")
    return folder


def check_inside(points: SynapsePoints, shape: Sequence[int], where: str = "points") -> None:
    """Raise a :class:`UserError` if any point lies outside a ZYX volume of ``shape``.

    Args:
        points: the points, in the volume's voxel coordinates.
        shape: the volume's shape; the last three entries are Z, Y, X (channels first are fine).
            A point is inside when ``0 <= coordinate < size`` on every axis.
        where: what to name in the message (a file or config key).
    """
    size = np.asarray(tuple(shape)[-3:], dtype=np.float64)
    for name, zyx in (("pre", points.pre), ("post", points.post_zyx)):
        bad = np.any((zyx < 0) | (zyx >= size), axis=1)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            at = tuple(float(v) for v in zyx[row])
            raise UserError(
                f"{where}: {name} row {row} at z,y,x={at} lies outside the volume of shape "
                f"{tuple(int(s) for s in size)}; use points in the volume's voxel coordinates"
            )


def parse_offset(text: str | Sequence[int] | None, flag: str = "--offset") -> tuple[int, int, int]:
    """Parse ``"z,y,x"`` (whole numbers, may be negative) into a tuple of 3 ints.

    Args:
        text: ``"z,y,x"``, a sequence of 3 whole numbers, or None for ``(0, 0, 0)``.
        flag: the option or key to name in the error message.
    """
    if text is None:
        return (0, 0, 0)
    try:
        parts = text.split(",") if isinstance(text, str) else list(text)
        values = [_whole(p) for p in parts]
    except (TypeError, ValueError):
        values = []
    if len(values) != 3:
        raise UserError(f"{flag} {text!r} is not three whole numbers z,y,x; write e.g. {flag} 0,512,1024")
    return (values[0], values[1], values[2])  # type: ignore[return-value]


def _whole(value) -> int:
    if isinstance(value, str):
        return int(value.strip())
    if not float(value).is_integer():
        raise ValueError(value)
    return int(value)


def offset_from_gt_name(name: str | Path) -> tuple[int, int, int] | None:
    """``(z0, y0, x0)`` of a WASPSYN ground-truth name ``syns_zyx_{z0}-{z1}_{y0}-{y1}_{x0}-{x1}.h5``.

    Args:
        name: a file name or path; only the last component is looked at and it must match the
            pattern exactly (so ``..._predict.h5`` does not). Returns None when it does not match.
    """
    m = GT_NAME.fullmatch(Path(name).name)
    return None if m is None else (int(m.group(1)), int(m.group(3)), int(m.group(5)))
