"""Exact stitching of connected components computed block by block (pure numerics).

A mask cut into blocks (:func:`masktwins3d.parallel.block_grid`) is labelled block by block with
cc3d (:func:`label_block`). A component of the whole volume is then a set of *pieces*, one per
block it enters, and two pieces belong together exactly when a voxel of one touches a voxel of
the other across a block boundary under the chosen connectivity: across a face (6, 18, 26), an
edge (18, 26) or a corner (26) of the block grid (:func:`touching_pairs`). The equivalence
classes of these pairs (:func:`resolve`, graph components: union-find done by scipy) are the
whole-volume components. :func:`merge_table` numbers them as cc3d numbers a whole volume, in
raster order of each component's first voxel (its smallest global linear index), after adding
up voxel counts and integer coordinate sums over the pieces, so sizes and centroids are exact.

Every piece is described by :class:`BlockComponents` (a few numbers per piece and the six faces
of the block's labels), which is all the driver needs; the block's labels themselves stay on the
worker.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Sequence

import numpy as np

NORM_LIMIT = {6: 1, 18: 2, 26: 3}
"""Largest number of axes a neighbour step may change, per connectivity."""


@dataclass(frozen=True)
class BlockComponents:
    """The pieces of one block: per-piece statistics and the block's boundary labels.

    Args:
        index: the block's position in the block grid, ZYX.
        counts: ``(n,)`` int64 voxels of each piece; piece ``k`` has local label ``k + 1``.
        first: ``(n,)`` int64 global linear (C-order) index of each piece's first voxel.
        sums: ``(n, 3)`` int64 sums of the pieces' voxel coordinates (global array indices, ZYX).
        faces: the six boundary planes of the block's local labels, ``(z low, z high, y low,
            y high, x low, x high)``; each is the label array with that axis taken at its first or
            last index.
    """

    index: tuple[int, int, int]
    counts: np.ndarray
    first: np.ndarray
    sums: np.ndarray
    faces: tuple[np.ndarray, ...]

    @property
    def n(self) -> int:
        return len(self.counts)


def local_labels(mask: np.ndarray, connectivity: int) -> np.ndarray:
    """cc3d labels of one block's mask (deterministic: the same mask gives the same labels).

    Args:
        mask: boolean (or 0/1) ZYX array.
        connectivity: 6, 18 or 26.
    """
    import cc3d

    return cc3d.connected_components(np.ascontiguousarray(mask, dtype=np.uint8), connectivity=int(connectivity))


def label_block(
    mask: np.ndarray, connectivity: int, index: Sequence[int], origin: Sequence[int], volume_shape: Sequence[int]
) -> tuple[np.ndarray, BlockComponents]:
    """Label one block's mask with cc3d and describe its pieces.

    Args:
        mask: the block's boolean ZYX mask (its write region only; no context is needed).
        connectivity: 6, 18 or 26.
        index: the block's grid index.
        origin: global array index of the block's first voxel, ZYX.
        volume_shape: shape of the whole volume, ZYX (for linear indices).

    Returns:
        ``(labels, components)``: cc3d's local labels (1..n in the block's raster order, which is
        also the global raster order of the block's voxels) and their :class:`BlockComponents`.
    """
    import cc3d

    labels = local_labels(mask, connectivity)
    stats = cc3d.statistics(labels)
    counts = np.asarray(stats["voxel_counts"], np.int64)[1:]
    n = len(counts)
    # cc3d's centroid is the float64 sum divided by the count: multiplying back and rounding
    # recovers the integer sum exactly while it stays below 2**50
    centroids = np.asarray(stats["centroids"], np.float64).reshape(-1, 3)[1:]
    local_sums = np.rint(centroids * counts[:, None]).astype(np.int64)
    sums = local_sums + counts[:, None] * np.asarray(origin, np.int64)[None, :]
    # labels first appear in increasing order, so each label's first voxel is where the running
    # maximum steps up
    flat = labels.reshape(-1)
    if n:
        running = np.maximum.accumulate(flat)
        steps = np.flatnonzero(running[1:] != running[:-1]) + 1
        first_local = np.concatenate([[0], steps]) if flat[0] else steps
        coords = np.unravel_index(first_local, labels.shape)
        first = np.ravel_multi_index(
            tuple(c + int(o) for c, o in zip(coords, origin)), tuple(int(s) for s in volume_shape)
        ).astype(np.int64)
    else:
        first = np.zeros(0, np.int64)
    faces = tuple(np.ascontiguousarray(labels.take(i, axis=a)) for a in range(3) for i in (0, -1))
    return labels, BlockComponents(tuple(int(i) for i in index), counts, first, sums, faces)


def neighbour_directions() -> list[tuple[int, int, int]]:
    """The 13 block-grid steps ``delta`` (each axis -1, 0 or 1) whose first non-zero entry is +1."""
    return [d for d in itertools.product((-1, 0, 1), repeat=3) if any(d) and next(v for v in d if v) > 0]


def _boundary(faces: Sequence[np.ndarray], delta: Sequence[int], toward: int) -> np.ndarray:
    """Labels of a block on its boundary toward (``toward`` = +1) or away from (-1) ``delta``.

    The result has one axis for each zero entry of ``delta`` (in ZYX order): a plane for a face
    neighbour, a line for an edge neighbour, one voxel for a corner neighbour.
    """
    axes = [a for a in range(3) if delta[a]]
    a0 = axes[0]
    plane = faces[2 * a0 + int(delta[a0] * toward > 0)]
    index = []
    for a in range(3):
        if a == a0:
            continue
        index.append((-1 if delta[a] * toward > 0 else 0) if delta[a] else slice(None))
    return plane[tuple(index)]


def touching_pairs(
    faces_a: Sequence[np.ndarray], faces_b: Sequence[np.ndarray], delta: Sequence[int], connectivity: int
) -> np.ndarray:
    """``(k, 2)`` unique pairs ``(label in a, label in b)`` of pieces that touch across the boundary.

    Block b sits at grid step ``delta`` from block a (each entry -1, 0 or 1, not all 0); along
    the axes where ``delta`` is 0 both blocks have the same extent. Voxels p in a and q in b are
    neighbours when ``q - p`` changes at most 1, 2 or 3 axes for connectivity 6, 18 or 26.

    Args:
        faces_a, faces_b: :attr:`BlockComponents.faces` of the two blocks (local labels).
        delta: grid step from a to b, ZYX.
        connectivity: 6, 18 or 26.
    """
    delta = tuple(int(d) for d in delta)
    free = NORM_LIMIT[int(connectivity)] - sum(abs(d) for d in delta)
    if free < 0:
        return np.zeros((0, 2), np.int64)
    side_a, side_b = _boundary(faces_a, delta, +1), _boundary(faces_b, delta, -1)
    found = []
    for step in itertools.product((-1, 0, 1), repeat=side_a.ndim):
        if sum(abs(s) for s in step) > free:
            continue
        # p at index i in a touches q at index i + step in b
        cut_a = tuple(slice(max(-s, 0), n - max(s, 0)) for s, n in zip(step, side_a.shape))
        cut_b = tuple(slice(max(s, 0), n - max(-s, 0)) for s, n in zip(step, side_b.shape))
        la, lb = side_a[cut_a], side_b[cut_b]
        both = (la > 0) & (lb > 0)
        if both.any():
            found.append(np.stack([la[both].astype(np.int64), lb[both].astype(np.int64)], axis=1))
    if not found:
        return np.zeros((0, 2), np.int64)
    pairs = np.concatenate(found)
    width = int(pairs[:, 1].max()) + 1
    keys = np.unique(pairs[:, 0] * width + pairs[:, 1])  # one sort of int64 keys, rows in (a, b) order
    return np.stack([keys // width, keys % width], axis=1)


def resolve(n_nodes: int, pairs: np.ndarray) -> np.ndarray:
    """Equivalence classes of ``n_nodes`` nodes joined by ``pairs``: ``(n_nodes,)`` class ids 0..K-1.

    Union-find semantics (transitive closure of the pairs); computed as the connected components
    of the undirected graph (``scipy.sparse.csgraph``). Class ids are arbitrary; :func:`merge_table`
    renumbers them.

    Args:
        n_nodes: number of nodes (pieces), ids 0..n_nodes-1.
        pairs: ``(k, 2)`` node ids to join.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    pairs = np.asarray(pairs, np.int64).reshape(-1, 2)
    if n_nodes == 0:
        return np.zeros(0, np.int64)
    graph = coo_matrix((np.ones(len(pairs), np.int8), (pairs[:, 0], pairs[:, 1])), shape=(n_nodes, n_nodes))
    _, classes = connected_components(graph, directed=False)
    return classes.astype(np.int64)


@dataclass(frozen=True)
class MergeTable:
    """Whole-volume components assembled from pieces.

    Args:
        node_label: ``(n_nodes,)`` final label of every piece (0 for pieces of removed components).
        counts: ``(K,)`` voxels of each kept component, in label order (label ``i + 1``).
        first: ``(K,)`` global linear index of each kept component's first voxel (increasing).
        sums: ``(K, 3)`` integer coordinate sums of each kept component, ZYX.
    """

    node_label: np.ndarray
    counts: np.ndarray
    first: np.ndarray
    sums: np.ndarray

    def centroids(self) -> np.ndarray:
        """``(K, 3)`` int64 centroids truncated toward zero, computed as cc3d does (float64 sum / count)."""
        return (self.sums.astype(np.float64) / self.counts[:, None]).astype(np.int64).reshape(-1, 3)


def merge_table(
    classes: np.ndarray, counts: np.ndarray, first: np.ndarray, sums: np.ndarray, min_size: int = 1
) -> MergeTable:
    """Number whole-volume components 1..K in raster order of first voxels, dropping small ones.

    Args:
        classes: ``(n_nodes,)`` class of every piece (:func:`resolve`; any integer ids).
        counts: ``(n_nodes,)`` voxels of every piece.
        first: ``(n_nodes,)`` global linear index of every piece's first voxel.
        sums: ``(n_nodes, 3)`` integer coordinate sums of every piece.
        min_size: components with fewer voxels (summed over their pieces) are removed (default 1).
    """
    classes = np.unique(np.asarray(classes, np.int64), return_inverse=True)[1].reshape(-1)  # 0..K-1, all used
    n_classes = int(classes.max()) + 1 if len(classes) else 0
    order = np.argsort(classes, kind="stable")
    starts = np.flatnonzero(np.diff(classes[order], prepend=-1)) if len(classes) else np.zeros(0, np.int64)
    if n_classes:
        c_counts = np.add.reduceat(np.asarray(counts, np.int64)[order], starts)
        c_first = np.minimum.reduceat(np.asarray(first, np.int64)[order], starts)
        c_sums = np.add.reduceat(np.asarray(sums, np.int64).reshape(-1, 3)[order], starts, axis=0)
    else:
        c_counts, c_first, c_sums = np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 3), np.int64)
    rank = np.argsort(c_first, kind="stable")
    kept = rank[c_counts[rank] >= int(min_size)]
    class_label = np.zeros(n_classes, np.int64)
    class_label[kept] = np.arange(1, len(kept) + 1)
    return MergeTable(class_label[classes], c_counts[kept], c_first[kept], c_sums[kept].reshape(-1, 3))
