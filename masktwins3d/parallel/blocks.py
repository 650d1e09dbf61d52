"""A volume cut into blocks: each writes one region and reads that region plus some context.

Write regions tile the volume without overlap (the last block along an axis may be shorter), so
blocks can run in any order, on any machine, and write their outputs without touching each
other's voxels; with a block shape that is a multiple of the output's chunks no two blocks share
a chunk either (:func:`block_chunks` gives such chunks). The read region is the write region
grown by ``context`` on each side and clipped to the volume.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Sequence

from ..errors import UserError
from ..geometry import Roi


@dataclass(frozen=True)
class Block:
    """One unit of blockwise work.

    Args:
        index: position in the block grid, per axis (also the block's id, see :attr:`id`).
        write_roi: voxels this block writes (global voxel coordinates).
        read_roi: voxels it reads: ``write_roi`` grown by the context, clipped to the volume.
    """

    index: tuple[int, ...]
    write_roi: Roi
    read_roi: Roi

    @property
    def id(self) -> str:
        """Stable name of the block, e.g. ``"0-2-1"`` (used in manifests)."""
        return "-".join(str(i) for i in self.index)


def block_grid(roi: Roi, block_shape: Sequence[int], context: Sequence[int] | int = 0) -> list[Block]:
    """Blocks whose write regions tile ``roi``, in C order (last axis fastest).

    Args:
        roi: the volume's region (global voxels).
        block_shape: write-region shape per axis, voxels (each >= 1); blocks at the far end of an
            axis are cut to the volume.
        context: voxels of extra input read on each side, one value or one per axis (>= 0).

    Returns:
        Every :class:`Block`; ``read_roi`` is clipped to ``roi``.
    """
    ndim = roi.ndim
    shape = tuple(int(b) for b in block_shape)
    if len(shape) != ndim or any(b < 1 for b in shape):
        raise UserError(f"block shape {tuple(block_shape)} must be {ndim} positive sizes (Z, Y, X), e.g. 64,512,512")
    ctx = (int(context),) * ndim if isinstance(context, int) else tuple(int(c) for c in context)
    if len(ctx) != ndim or any(c < 0 for c in ctx):
        raise UserError(f"block context {context} must be {ndim} sizes >= 0")
    counts = [-(-s // b) for s, b in zip(roi.shape, shape)]
    blocks = []
    for index in itertools.product(*(range(n) for n in counts)):
        begin = tuple(o + i * b for o, i, b in zip(roi.offset, index, shape))
        write = Roi.from_bounds(begin, tuple(min(x + b, e) for x, b, e in zip(begin, shape, roi.end)))
        blocks.append(Block(tuple(index), write, write.grow(ctx).intersect(roi)))
    return blocks


def block_chunks(block_shape: Sequence[int], shape: Sequence[int], cap: Sequence[int]) -> tuple[int, ...]:
    """Output chunks for blocks of ``block_shape`` over a volume of ``shape``: the one rule of every
    blockwise product, so that no two blocks write one chunk.

    Per axis the block edge is cut to the volume, and the chunk edge is its largest divisor up to
    ``cap``; where that divisor is under a quarter of ``cap`` (a block edge with no good divisor,
    e.g. a prime), the chunk is the whole block edge instead of a sliver.

    Args:
        block_shape: write region per block, voxels (per axis, >= 1).
        shape: the volume's shape, voxels.
        cap: largest chunk edge wanted per axis, voxels (a block edge over it is split).
    """
    chunks = []
    for b, s, c in zip(block_shape, shape, cap):
        b = min(int(b), int(s))
        d = next(d for d in range(min(b, int(c)), 0, -1) if b % d == 0)
        chunks.append(d if b <= c or d * 4 >= c else b)
    return tuple(chunks)
