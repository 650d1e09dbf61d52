"""Voxel and world geometry: coordinates, regions of interest and the conversions between them.

Conventions (as everywhere in masktwins3d):
- Axis order is ZYX; a :class:`Roi` has no channel axis.
- A *voxel* coordinate is an integer position on the global voxel grid of a volume. A volume's
  ``offset`` is the voxel coordinate of its array index 0, so array index ``i`` sits at voxel
  ``offset + i``.
- A *world* coordinate is in nanometres: ``world = voxel * voxel_size`` (voxel corner convention,
  the same as OME-Zarr's ``translation = offset * scale``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

Coordinate = tuple[int, ...]
"""Integer voxel coordinate, ZYX."""


def as_coordinate(values: Iterable[float], name: str = "coordinate") -> Coordinate:
    """``values`` as a tuple of ints; raises ``ValueError`` if one is not a whole number.

    Args:
        values: numbers (ints, or floats that are whole).
        name: what the values are, for the error message.
    """
    values = tuple(values)
    out = []
    for v in values:
        r = round(float(v))
        if abs(float(v) - r) > 1e-6:
            raise ValueError(f"{name} {values} has a non-integer entry {v}")
        out.append(int(r))
    return tuple(out)


def to_world(voxels: Sequence[float], voxel_size: Sequence[float]) -> tuple[float, ...]:
    """Voxel coordinate (or extent) -> nanometres, per axis.

    Args:
        voxels: position in voxels, ZYX.
        voxel_size: nm per voxel, ZYX.
    """
    _same_len(voxels, voxel_size)
    return tuple(float(v) * float(s) for v, s in zip(voxels, voxel_size))


def to_voxels(world: Sequence[float], voxel_size: Sequence[float]) -> tuple[float, ...]:
    """Nanometres -> voxel coordinate (float; round or floor it as the caller needs), per axis.

    Args:
        world: position in nm, ZYX.
        voxel_size: nm per voxel, ZYX.
    """
    _same_len(world, voxel_size)
    return tuple(float(w) / float(s) for w, s in zip(world, voxel_size))


def _same_len(a: Sequence, b: Sequence) -> None:
    if len(a) != len(b):
        raise ValueError(f"{tuple(a)} and {tuple(b)} have different numbers of axes")


@dataclass(frozen=True)
class Roi:
    """An axis-aligned box on the voxel grid: ``offset`` (first voxel) and ``shape`` (voxels).

    Args:
        offset: first voxel of the box, ZYX (voxels; may be negative).
        shape: extent of the box, ZYX (voxels; each >= 0).
    """

    offset: Coordinate
    shape: Coordinate

    def __post_init__(self):
        offset = as_coordinate(self.offset, "Roi offset")
        shape = as_coordinate(self.shape, "Roi shape")
        if len(offset) != len(shape):
            raise ValueError(f"Roi offset {offset} and shape {shape} have different numbers of axes")
        if any(s < 0 for s in shape):
            raise ValueError(f"Roi shape {shape} has a negative extent")
        object.__setattr__(self, "offset", offset)
        object.__setattr__(self, "shape", shape)

    @classmethod
    def from_bounds(cls, begin: Sequence[int], end: Sequence[int]) -> Roi:
        """The box from ``begin`` (inclusive) to ``end`` (exclusive); empty where end < begin."""
        return cls(tuple(begin), tuple(max(e - b, 0) for b, e in zip(begin, end)))

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def begin(self) -> Coordinate:
        return self.offset

    @property
    def end(self) -> Coordinate:
        """One past the last voxel, per axis."""
        return tuple(o + s for o, s in zip(self.offset, self.shape))

    @property
    def size(self) -> int:
        """Number of voxels."""
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def empty(self) -> bool:
        return self.size == 0

    def contains(self, other: Roi | Sequence[int]) -> bool:
        """Whether a voxel coordinate, or a whole (non-empty) Roi, lies inside this box."""
        if isinstance(other, Roi):
            if other.empty:
                return True
            return all(b <= ob and oe <= e for b, e, ob, oe in zip(self.begin, self.end, other.begin, other.end))
        return all(b <= c < e for b, e, c in zip(self.begin, self.end, other))

    def intersect(self, other: Roi) -> Roi:
        """The overlap of two boxes (possibly empty)."""
        begin = tuple(max(a, b) for a, b in zip(self.begin, other.begin))
        end = tuple(min(a, b) for a, b in zip(self.end, other.end))
        return Roi.from_bounds(begin, end)

    def shift(self, by: Sequence[int]) -> Roi:
        """The box moved by ``by`` voxels."""
        return Roi(tuple(o + b for o, b in zip(self.offset, by)), self.shape)

    def grow(self, before: Sequence[int], after: Sequence[int] | None = None) -> Roi:
        """The box enlarged by ``before`` voxels at the start and ``after`` (default: ``before``) at the end.

        Negative amounts shrink it (never below an empty box).
        """
        after = before if after is None else after
        begin = tuple(b - n for b, n in zip(self.begin, before))
        end = tuple(e + n for e, n in zip(self.end, after))
        return Roi.from_bounds(begin, end)

    def to_slices(self, origin: Sequence[int] | None = None) -> tuple[slice, ...]:
        """Slices that cut this box out of an array whose index 0 is at voxel ``origin`` (default 0s)."""
        origin = (0,) * self.ndim if origin is None else tuple(origin)
        return tuple(slice(b - o, e - o) for b, e, o in zip(self.begin, self.end, origin))

    def to_world(self, voxel_size: Sequence[float]) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """``(offset_nm, shape_nm)`` of this box for a voxel size in nm (ZYX)."""
        return to_world(self.offset, voxel_size), to_world(self.shape, voxel_size)
