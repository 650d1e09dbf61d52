"""Synapse points in the WASPSYN layout: HDF5 ``pre`` (N, 3) and ``post`` (M, 4), or CSV.

``pre`` rows are z, y, x voxel coordinates of pre-synaptic sites; ``post`` rows are
``[pre row, z, y, x]``: each post-synaptic site names the pre it belongs to (one pre, many
posts). CSV folders hold ``pre.csv`` (``id,z,y,x``) and ``post.csv`` (``id,pre_id,z,y,x``), where
``pre_id`` is the ``id`` (row) of the pre.
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

GT_NAME = re.compile(r"syns_zyx_(\d+)-(\d+)_(\d+)-(\d+)_(\d+)-(\d+)")
"""WASPSYN ground-truth file names: ``syns_zyx_{z0}-{z1}_{y0}-{y1}_{x0}-{x1}.h5``."""


@dataclass(frozen=True)
class SynapsePoints:
    """Pre and post points of one volume (voxel coordinates).

    Args:
        pre: ``(N, 3)`` z, y, x of the pre-synaptic sites.
        post: ``(M, 4)`` ``[pre row, z, y, x]`` of the post-synaptic sites.
    """

    pre: np.ndarray
    post: np.ndarray

    def __post_init__(self):
        for name, cols in (("pre", 3), ("post", 4)):
            a = np.asarray(getattr(self, name), dtype=np.float64)
            object.__setattr__(self, name, a.reshape(0, cols) if a.size == 0 else a)

    @property
    def post_zyx(self) -> np.ndarray:
        """``(M, 3)`` coordinates of the posts."""
        return self.post[:, 1:4]

    @property
    def post_pre(self) -> np.ndarray:
        """``(M,)`` int row of the pre each post belongs to."""
        return self.post[:, 0].astype(np.int64)


def validate(points: SynapsePoints, where: str) -> SynapsePoints:
    """Check shapes, finiteness and post -> pre links; a one-line :class:`UserError` otherwise."""
    pre, post = points.pre, points.post
    if pre.ndim != 2 or pre.shape[1] != 3:
        raise UserError(f"{where}: 'pre' has shape {pre.shape}; it must be (N, 3) rows of z, y, x")
    if post.ndim != 2 or post.shape[1] != 4:
        raise UserError(f"{where}: 'post' has shape {post.shape}; it must be (M, 4) rows of [pre row, z, y, x]")
    if not (np.isfinite(pre).all() and np.isfinite(post).all()):
        raise UserError(f"{where}: points hold NaN or inf; remove those rows")
    if len(post):
        link = post[:, 0]
        bad = (link < 0) | (link >= len(pre)) | (link != np.round(link))
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise UserError(f"{where}: post row {row} names pre row {post[row, 0]:g} but there are {len(pre)} pre points (rows 0..{len(pre) - 1}); fix the links")
    return points


def read_points(path: str | Path) -> SynapsePoints:
    """Read an HDF5 file (datasets ``pre`` and ``post``) or a CSV folder (``pre.csv``, ``post.csv``)."""
    path = Path(path)
    if path.is_dir():
        return _read_csv(path)
    if not path.is_file():
        raise UserError(f"points file {path} does not exist; give a WASPSYN .h5 file (pre, post) or a folder with pre.csv and post.csv")
    import h5py

    try:
        f = h5py.File(path, "r")
    except OSError:
        raise UserError(f"{path} is not an HDF5 file; give a WASPSYN .h5 file with 'pre' and 'post' datasets") from None
    with f:
        missing = [k for k in ("pre", "post") if k not in f]
        if missing:
            raise UserError(f"{path} has no '{missing[0]}' dataset (found {sorted(f.keys())}); WASPSYN points need 'pre' (N, 3) and 'post' (M, 4)")
        pre, post = np.asarray(f["pre"][()]), np.asarray(f["post"][()])
    return validate(SynapsePoints(pre, post), str(path))


def _read_csv(folder: Path) -> SynapsePoints:
    arrays = {}
    for name, cols in (("pre", ("id", "z", "y", "x")), ("post", ("id", "pre_id", "z", "y", "x"))):
        f = folder / f"{name}.csv"
        if not f.is_file():
            raise UserError(f"{f} does not exist; a CSV points folder needs pre.csv ({','.join(cols[:4])}) and post.csv (id,pre_id,z,y,x)")
        with open(f, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            if reader.fieldnames is None or any(c not in reader.fieldnames for c in cols):
                raise UserError(f"{f} has columns {reader.fieldnames}; it needs {list(cols)}")
            try:
                arrays[name] = [[float(row[c]) for c in cols] for row in reader]
            except ValueError as exc:
                raise UserError(f"{f}: a value is not a number ({exc}); fix the file") from None
    pre = np.asarray(arrays["pre"], dtype=np.float64).reshape(-1, 4)
    post = np.asarray(arrays["post"], dtype=np.float64).reshape(-1, 5)
    ids = {int(i): row for row, i in enumerate(pre[:, 0])}
    links = []
    for r, pid in enumerate(post[:, 1]):
        if int(pid) not in ids:
            raise UserError(f"{folder / 'post.csv'}: post id {int(post[r, 0])} names pre_id {int(pid)}, which is not in pre.csv; fix the links")
        links.append(ids[int(pid)])
    out_post = np.column_stack([np.asarray(links, dtype=np.float64), post[:, 2:5]]) if len(post) else np.zeros((0, 4))
    return validate(SynapsePoints(pre[:, 1:4], out_post), str(folder))


def write_points_h5(
    path: str | Path, points: SynapsePoints, voxel_size: Sequence[float] | None = None, offset: Sequence[int] | None = None
) -> Path:
    """Write ``pre`` and ``post`` (float64) atomically; voxel size (nm) and offset become attributes."""
    import h5py

    validate(points, str(path))

    def write(tmp: str) -> None:
        with h5py.File(tmp, "w") as f:
            f.create_dataset("pre", data=points.pre)
            f.create_dataset("post", data=points.post)
            if voxel_size is not None:
                f.attrs["voxel_size"] = np.asarray(voxel_size, dtype=np.float64)
            if offset is not None:
                f.attrs["offset"] = np.asarray(offset, dtype=np.int64)

    return atomic_write(path, write)


def write_points_csv(folder: str | Path, points: SynapsePoints) -> Path:
    """Write ``pre.csv`` (``id,z,y,x``) and ``post.csv`` (``id,pre_id,z,y,x``) into ``folder`` atomically."""
    folder = Path(folder)
    validate(points, str(folder))
    pre_lines = ["id,z,y,x"] + [f"{i},{z:g},{y:g},{x:g}" for i, (z, y, x) in enumerate(points.pre)]
    post_lines = ["id,pre_id,z,y,x"] + [f"{i},{int(p)},{z:g},{y:g},{x:g}" for i, (p, z, y, x) in enumerate(points.post)]
    atomic_write_text(folder / "pre.csv", "\n".join(pre_lines) + "\n")
    atomic_write_text(folder / "post.csv", "\n".join(post_lines) + "\n")
    return folder


def check_inside(points: SynapsePoints, shape: Sequence[int], where: str = "points") -> None:
    """Raise if any point lies outside a ZYX volume of ``shape`` (coordinates in ``[0, shape)``)."""
    shape = np.asarray(tuple(shape)[-3:], dtype=np.float64)
    for name, xyz in (("pre", points.pre), ("post", points.post_zyx)):
        bad = np.any((xyz < 0) | (xyz >= shape), axis=1) if len(xyz) else np.zeros(0, bool)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise UserError(f"{where}: {name} row {row} at z,y,x={tuple(float(v) for v in xyz[row])} lies outside the volume {tuple(int(s) for s in shape)}; use points in the volume's voxel coordinates")


def parse_offset(text: str | Sequence[int] | None) -> tuple[int, int, int]:
    """``"z,y,x"`` (or a sequence of 3 ints, or None for 0,0,0) to a tuple of 3 ints."""
    if text is None:
        return (0, 0, 0)
    try:
        values = [int(v) for v in (text.split(",") if isinstance(text, str) else text)]
    except (TypeError, ValueError):
        values = []
    if len(values) != 3:
        raise UserError(f"--offset {text!r} is not three whole numbers z,y,x; write e.g. --offset 0,512,1024")
    return tuple(values)  # type: ignore[return-value]


def offset_from_gt_name(name: str | Path) -> tuple[int, int, int] | None:
    """``(z0, y0, x0)`` from a WASPSYN GT name ``syns_zyx_{z0}-{z1}_{y0}-{y1}_{x0}-{x1}.h5``, else None."""
    m = GT_NAME.search(Path(name).name)
    return None if m is None else (int(m.group(1)), int(m.group(3)), int(m.group(5)))
