"""Blockwise post-processing of volumes larger than memory, identical to the whole-volume result.

Both products are driven the same way (numerics in :mod:`.stitch`):

1. **label** (one :class:`masktwins3d.parallel.Task` over the blocks): read the block's write
   region (no context), threshold it, label it with cc3d, and send back per-piece voxel counts,
   first voxels, integer coordinate sums and the block's six boundary planes of labels;
2. **stitch** (here, in the driving process): join pieces that touch across block faces, edges or
   corners under the chosen connectivity, resolve the equivalences (union-find), add up counts and
   sums per component, drop small components by their *global* size, and number the rest in
   raster order of their first voxel, exactly as cc3d numbers the whole volume;
3. **products**:

   - mitochondria (:func:`blockwise_instances`): a second task per block labels the block again
     (cc3d is deterministic) and writes its labels through the block's lookup table into a uint32
     (uint64 beyond 2**32 voxels) OME-Zarr whose chunks tile the blocks; equal to
     :func:`.mito.probability_to_instances` of the whole volume, label for label. A volume of
     at most :data:`WHOLE_VOLUME_VOXELS` voxels post-processed without a scheduler skips the
     blocks: one read, thresholded slab by slab, one cc3d label of the whole volume, one
     write with the fast codec (the same labels; 2.8x ``scipy.ndimage`` end to end on 256³
     where the stitched path is 1.1x, BENCHMARKS.md);
   - synapses (:func:`blockwise_points`): both channels in one pass, each component's centroid
     from its summed coordinates (exact), each reported once (by the block holding its first
     voxel, which fixes its place in the order), then nearest-pre links; equal to
     :func:`.synapse.probabilities_to_points` of the whole map, row for row.

The driver keeps every block's boundary planes (about ``2 * (1/bz + 1/by + 1/bx)`` of the
volume's voxels for a block of ``bz, by, bx``) and a few numbers per piece.
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Callable, Iterator, NamedTuple, Sequence

import numpy as np

from ..atomic import atomic_write, refuse_overlap, remove_path
from ..errors import UserError
from ..geometry import Roi
from ..io.points import SynapsePoints
from ..parallel import Block, Manifest, Task, block_chunks, check_reachable, parse_scheduler
from ..parallel.manifest import MANIFEST_NAME
from ..parallel.resumable import check_resume_flags, run_staged
from ..parallel.scheduler import Scheduler
from . import mito
from .stitch import BlockComponents, MergeTable, label_block, local_labels, merge_table, neighbour_directions, resolve, touching_pairs
from .synapse import MIN_PRE_VOXELS, THRESHOLDS, check_options, foreground, link_points

DEFAULT_BLOCK = (64, 512, 512)
"""Default block (write region) shape, voxels ZYX."""

CHUNK_CAP = (64, 256, 256)
"""Largest output chunk per axis, voxels ZYX (chunks divide the block shape)."""

WHOLE_VOLUME_VOXELS = 2**28
"""``postprocess synapse`` goes blockwise by itself above this many voxels per channel, and
``postprocess mito`` (without a scheduler) labels the whole volume in one pass at or below it
(~2.4 GB of working memory for a float32 map: the channel, its mask or codes and cc3d labels)."""

SLAB_VOXELS = 2**22
"""A whole-volume read goes slab by slab of at least this many voxels (whole chunks along z)."""


# ---- inputs -------------------------------------------------------------------------------------


class Source(NamedTuple):
    """A probability array to read blocks from: a :class:`~masktwins3d.io.Volume` or a numpy array.

    Args:
        array: CZYX or ZYX; indexed ``array[c, z0:z1, y0:y1, x0:x1]`` (or without ``c``).
        name: how messages call it.
        channels: channel count, or None for a ZYX array.
        shape: spatial shape, ZYX.
        voxel_size: nm, ZYX.
        offset: voxels, ZYX.
    """

    array: Any
    name: str
    channels: int | None
    shape: tuple[int, int, int]
    voxel_size: tuple[float, float, float]
    offset: tuple[int, int, int]

    def read(self, channel: int | None, roi: Roi) -> np.ndarray:
        """The ZYX block ``roi`` (array indices) of ``channel`` (None for a ZYX array)."""
        index = roi.to_slices()
        return np.asarray(self.array[((channel,) + index) if channel is not None else index])


def slab_depth(source: Source, target: int = SLAB_VOXELS) -> int:
    """Sections per slab of a whole-volume read: the fewest whole z chunks of the array (one
    section where it has no chunks) holding at least ``target`` voxels, at most the volume's depth."""
    z, y, x = source.shape
    chunks = getattr(source.array, "chunks", None)
    step = int(chunks[-3]) if chunks else 1
    return min(z, step * max(1, -(-int(target) // (step * y * x))))


def read_mask(source: Source, channel: int | None, rule: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """The boolean mask ``rule(probabilities)`` of the whole volume, read slab by slab
    (:func:`slab_depth`) and thresholded as each slab arrives: the float volume is never held
    whole (a quarter of the memory for float32, and each slab is thresholded while in cache)."""
    z, y, x = source.shape
    mask = np.empty(source.shape, bool)
    depth = slab_depth(source)
    for z0 in range(0, z, depth):
        roi = Roi((z0, 0, 0), (min(depth, z - z0), y, x))
        mask[roi.to_slices()] = rule(source.read(channel, roi))
    return mask


def open_source(prob: Any) -> Source:
    """A :class:`Source` from a volume spec, an open Volume, or a numpy array (voxel size 1, offset 0).

    Args:
        prob: ``prob.zarr``, ``x.h5:/key``, a Volume, or a ZYX / CZYX numpy array.
    """
    from ..io import Volume, open_volume

    if isinstance(prob, (str, Path)):
        prob = open_volume(prob)
    if isinstance(prob, Volume):
        prob.require_3d("post-processing")
        array, name, axes = prob, prob.path, prob.axes
        voxel_size, offset = prob.voxel_size, prob.offset
    else:
        array = np.asarray(prob)
        name, axes = "probabilities", {3: "zyx", 4: "czyx"}.get(array.ndim, "")
        voxel_size, offset = (1.0, 1.0, 1.0), (0, 0, 0)
        if not axes:
            raise UserError(f"probabilities of shape {array.shape} are not ZYX or CZYX; give a 3D (or channels-first 4D) array")
    dtype = np.dtype(array.dtype)
    if not (dtype == np.uint8 or dtype.kind == "f"):
        raise UserError(f"{name} has dtype {dtype}; give float probabilities in [0, 1] or uint8 scaled 0..255, not a mask or labels")
    shape = tuple(int(s) for s in array.shape)
    channels = shape[0] if axes == "czyx" else None
    return Source(array, name, channels, shape[-3:], tuple(voxel_size), tuple(offset))


def parse_block(text: str | Sequence[int] | None, default: Sequence[int] = DEFAULT_BLOCK) -> tuple[int, int, int]:
    """``--block Z,Y,X`` -> three positive ints (None: ``default``), or a one-line :class:`UserError`."""
    if text is None:
        return tuple(int(b) for b in default)  # type: ignore[return-value]
    try:
        values = tuple(int(v) for v in (text.replace("x", ",").split(",") if isinstance(text, str) else text))
    except (TypeError, ValueError):
        values = ()
    if len(values) != 3 or any(v < 1 for v in values):
        raise UserError(f"--block {text!r} must be three positive voxel counts Z,Y,X, e.g. 64,512,512")
    return values  # type: ignore[return-value]


@contextmanager
def scheduler_session(spec: str | Scheduler | None) -> Iterator[Scheduler]:
    """A scheduler for several task runs: ``local[:N]`` starts one LocalCluster for all."""
    sched = spec if isinstance(spec, Scheduler) else parse_scheduler(spec)
    if sched.kind != "local":
        yield sched
        return
    from distributed import LocalCluster

    with LocalCluster(n_workers=sched.workers, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        yield Scheduler("address", address=cluster.scheduler_address)


# ---- process functions of the block tasks (picklable: they run on dask workers) ----------------------


@dataclass(frozen=True)
class LabelBlock:
    """Pass 1: threshold and label one block per channel; return its :class:`BlockComponents` per channel.

    Args:
        source: where to read.
        channels: channel to read for each output (None for a ZYX source).
        rules: per output, a function probabilities -> boolean mask (elementwise).
        connectivity: 6, 18 or 26.
    """

    source: Source
    channels: tuple[int | None, ...]
    rules: tuple[Callable[[np.ndarray], np.ndarray], ...]
    connectivity: int

    def __call__(self, block: Block) -> tuple[BlockComponents, ...]:
        roi = block.write_roi
        return tuple(
            label_block(rule(self.source.read(ch, roi)), self.connectivity, block.index, roi.offset, self.source.shape)[1]
            for ch, rule in zip(self.channels, self.rules)
        )


@dataclass(frozen=True)
class WriteBlock:
    """Pass 2 (instances): label one block again and write ``table[labels]`` into ``out``.

    Args:
        source, channel, rule, connectivity: as in :class:`LabelBlock` (one channel).
        out: writable ZYX label Volume of the source's spatial shape.
    """

    source: Source
    channel: int | None
    rule: Callable[[np.ndarray], np.ndarray]
    connectivity: int
    out: Any

    def __call__(self, item: tuple[Block, np.ndarray]) -> None:
        block, table = item
        if len(table) == 1:  # no foreground: the output's fill value (0) already says so
            return
        labels = local_labels(self.rule(self.source.read(self.channel, block.write_roi)), self.connectivity)
        self.out[block.write_roi.to_slices()] = table[labels]


# ---- driver -----------------------------------------------------------------------------------


PIECES = ".pieces"
"""Folder, inside a resumable job's stage, of each labelled block's pieces (one ``.npz`` per block)."""


def save_pieces(path: Path, comps: tuple[BlockComponents, ...]) -> None:
    """Write one block's :class:`BlockComponents` (one per channel) to ``path`` (npz, atomically)."""
    arrays = {}
    for c, comp in enumerate(comps):
        arrays.update({f"{c}_index": np.asarray(comp.index, np.int64), f"{c}_counts": comp.counts, f"{c}_first": comp.first,
                       f"{c}_sums": comp.sums, **{f"{c}_face{i}": face for i, face in enumerate(comp.faces)}})

    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)

    atomic_write(path, write)


def load_pieces(path: Path, channels: int) -> tuple[BlockComponents, ...]:
    """The :class:`BlockComponents` per channel that :func:`save_pieces` wrote."""
    with np.load(path) as z:
        return tuple(
            BlockComponents(tuple(int(i) for i in z[f"{c}_index"]), z[f"{c}_counts"], z[f"{c}_first"], z[f"{c}_sums"],
                            tuple(z[f"{c}_face{i}"] for i in range(6)))
            for c in range(channels)
        )


def label_blocks(task: Task, channels: int, scheduler: str | Scheduler | None, progress: bool,
                 pieces_dir: Path | None = None) -> list[dict[tuple[int, ...], BlockComponents]]:
    """Run ``task`` (its process a :class:`LabelBlock` of ``channels`` outputs) on every block; per
    channel, the pieces keyed by block index.

    With a manifest (and ``pieces_dir``), each labelled block's pieces are saved and the block
    recorded as it finishes; the blocks it already records are loaded, not labelled again.
    """
    found: list[dict[tuple[int, ...], BlockComponents]] = [{} for _ in range(channels)]
    if task.manifest is not None:
        done = [b for b in task.blocks if task.is_done(b)]
        for b in done:
            for store, comps in zip(found, load_pieces(pieces_dir / f"{b.id}.npz", channels)):
                store[b.index] = comps
        if progress or done:
            print(f"{task.name}: {len(task.blocks) - len(done)} of {len(task.blocks)} blocks to label ({len(done)} already done)",
                  file=sys.stderr, flush=True)

    def keep(block: Block, result: tuple[BlockComponents, ...]) -> None:
        for store, comps in zip(found, result):
            store[block.index] = comps
        if task.manifest is not None:
            save_pieces(pieces_dir / f"{block.id}.npz", result)

    task.run(scheduler, progress=progress, on_result=keep)
    return found


def stitch(pieces: dict[tuple[int, ...], BlockComponents], connectivity: int, min_size: int = 1) -> tuple[MergeTable, dict]:
    """Whole-volume components from every block's pieces.

    Args:
        pieces: :class:`BlockComponents` keyed by block index (every block of the grid).
        connectivity: 6, 18 or 26 (the one the blocks were labelled with).
        min_size: components with fewer voxels in total are removed (default 1).

    Returns:
        ``(table, bases)``: the :class:`MergeTable` over all pieces, and per block index the node id
        of its first piece (piece with local label ``k`` is node ``bases[index] + k - 1``).
    """
    order = sorted(pieces)
    bases, total = {}, 0
    for index in order:
        bases[index] = total
        total += pieces[index].n
    pairs = []
    for index in order:
        a = pieces[index]
        if not a.n:
            continue
        for delta in neighbour_directions():
            other = tuple(i + d for i, d in zip(index, delta))
            b = pieces.get(other)
            if b is None or not b.n:
                continue
            found = touching_pairs(a.faces, b.faces, delta, connectivity)
            if len(found):
                pairs.append(np.stack([found[:, 0] - 1 + bases[index], found[:, 1] - 1 + bases[other]], axis=1))
    classes = resolve(total, np.concatenate(pairs) if pairs else np.zeros((0, 2), np.int64))

    def gather(name: str, width: int | None = None) -> np.ndarray:
        parts = [getattr(pieces[i], name) for i in order]
        empty = np.zeros((0,) if width is None else (0, width), np.int64)
        return np.concatenate(parts) if parts else empty

    table = merge_table(classes, gather("counts"), gather("first"), gather("sums", 3).reshape(-1, 3), min_size)
    return table, bases


class Instances(NamedTuple):
    """Result of :func:`blockwise_instances`: the label ``volume`` (open) and the instance ``count``."""

    volume: Any
    count: int


def check_instance_options(threshold: float, connectivity: int, min_size: int) -> tuple[float, int, int]:
    """Validated ``(threshold, connectivity, min_size)`` (see :mod:`.mito`)."""
    return mito.check_threshold(threshold), mito.check_connectivity(connectivity), mito.check_min_size(min_size)


def pick_channel(source: Source, channel: int | None) -> int | None:
    """The channel to read from ``source`` (None for ZYX), or a :class:`UserError` with the fix."""
    if source.channels is None:
        if channel is not None:
            raise UserError(f"{source.name} has no channel axis (ZYX); drop --channel {channel}")
        return None
    if channel is None:
        if source.channels != 1:
            raise UserError(
                f"{source.name} has {source.channels} channels (CZYX); choose the mitochondria one with --channel "
                "(e.g. --channel 1 for a 2-class softmax)"
            )
        return 0
    if not 0 <= int(channel) < source.channels:
        raise UserError(f"--channel {channel} is out of range for {source.name}, which has {source.channels} channels")
    return int(channel)


@dataclass(frozen=True)
class InstanceJob:
    """A checked :func:`blockwise_instances` job (:func:`check_instance_job` makes it).

    Args:
        source: the probabilities; channel: the channel read (None for a ZYX source).
        rule: probabilities -> foreground mask (elementwise); connectivity, min_size: see :mod:`.mito`.
        block: block write region, voxels ZYX; sched: the parsed scheduler.
        whole: label the whole volume in one pass instead of block by block.
        dtype: the labels' dtype; geometry: :func:`~masktwins3d.io.create_volume` keywords of the output.
        settings: what the manifest records (a resume with other values is refused); out: the output.
    """

    source: Source
    channel: int | None
    rule: Callable[[np.ndarray], np.ndarray]
    connectivity: int
    min_size: int
    block: tuple[int, int, int]
    sched: Scheduler
    whole: bool
    dtype: Any
    geometry: dict
    settings: dict
    out: Path


def check_instance_job(prob: Any, out: str | Path, threshold: float, channel: int | None, connectivity: int, min_size: int,
                       block_shape: Sequence[int], scheduler, overwrite: bool, resume: bool, whole: bool | None) -> InstanceJob:
    """Every option of :func:`blockwise_instances` checked, before any work: a one-line :class:`UserError` otherwise."""
    from ..io.zarr_io import is_zarr_node

    threshold, connectivity, min_size = check_instance_options(threshold, connectivity, min_size)
    source = open_source(prob)
    ch = pick_channel(source, channel)
    block = parse_block(block_shape)
    sched = parse_scheduler(scheduler) if not isinstance(scheduler, Scheduler) else scheduler
    check_reachable(sched)
    if isinstance(prob, (str, Path)):
        refuse_overlap({"--out": out}, {"--prob": prob})
    out = Path(out)
    check_output(out, overwrite, resume)
    if out.exists() and overwrite and not is_zarr_node(out):
        raise UserError(f"{out} exists and is not a zarr array or group; remove it yourself or choose another output")
    voxels = int(np.prod(source.shape, dtype=np.int64))
    if whole is None:
        whole = sched.kind == "none" and voxels <= WHOLE_VOLUME_VOXELS and not resume
    where = f"{source.name}" + (f" channel {ch}" if ch is not None else "")
    # labels compress well with any codec: the fast-to-write one (blosc-lz4, flat chunk keys)
    geometry = dict(voxel_size=source.voxel_size, offset=source.offset, axes="zyx", chunks=block_chunks(block, source.shape, CHUNK_CAP),
                    name=out.name, fast_write=True)
    settings = {"job": "mito instances", "input": source.name, "shape": list(source.shape), "dtype": str(np.dtype(source.array.dtype)),
                "channel": ch, "threshold": threshold, "connectivity": connectivity, "min_size": min_size, "block": list(block)}
    return InstanceJob(source, ch, partial(mito.probability_to_mask, threshold=threshold, where=where), connectivity, min_size,
                       block, sched, bool(whole), mito.label_dtype(voxels), geometry, settings, out)


def write_instances(job: InstanceJob, stage: Path, resuming: bool, progress: bool) -> int:
    """Label ``job`` into ``stage`` (whole or block by block, resuming an earlier stage); the instance count.

    The labels are written beside the output and moved into place only when complete (by
    :func:`~masktwins3d.parallel.resumable.run_staged`): a bad probability found in block 7
    leaves an earlier output as it was.
    """
    from ..io import create_volume, open_volume

    if job.whole:
        labels, count = mito.counted_instances(read_mask(job.source, job.channel, job.rule), job.connectivity, job.min_size)
        create_volume(stage, job.source.shape, job.dtype, **job.geometry)[...] = labels
        return count
    target = open_volume(str(stage), mode="r+") if resuming else create_volume(stage, job.source.shape, job.dtype, **job.geometry)
    roi = Roi((0, 0, 0), job.source.shape)
    label = Task("label blocks", roi, job.block, LabelBlock(job.source, (job.channel,), (job.rule,), job.connectivity), key="label:")
    label.manifest = Manifest.open(stage / MANIFEST_NAME, job.settings, 2 * len(label.blocks), resuming,
                                   fix=f"pass --overwrite to start {job.out} again")
    with scheduler_session(job.sched) as session:
        (pieces,) = label_blocks(label, 1, session, progress, stage / PIECES)
        table, bases = stitch(pieces, job.connectivity, job.min_size)
        node_label = table.node_label.astype(job.dtype)

        def with_table(b: Block) -> tuple[Block, np.ndarray]:
            return b, np.concatenate([np.zeros(1, job.dtype), node_label[bases[b.index] : bases[b.index] + pieces[b.index].n]])

        write = WriteBlock(job.source, job.channel, job.rule, job.connectivity, target)
        Task("write labels", roi, job.block, write, manifest=label.manifest, key="write:", payload=with_table).run(session, progress=progress)
    remove_path(stage / PIECES)  # complete: the output is a plain label volume
    remove_path(stage / MANIFEST_NAME)
    return len(table.counts)


def blockwise_instances(
    prob: Any,
    out: str | Path,
    *,
    threshold: float = mito.THRESHOLD,
    channel: int | None = None,
    connectivity: int = mito.CONNECTIVITY,
    min_size: int = 1,
    block_shape: Sequence[int] = DEFAULT_BLOCK,
    scheduler: str | Scheduler | None = None,
    overwrite: bool = False,
    resume: bool = False,
    progress: bool = True,
    whole: bool | None = None,
) -> Instances:
    """Mitochondria instances of a probability volume, block by block, written to an OME-Zarr.

    The labels equal :func:`.mito.probability_to_instances` of the whole volume (same numbering).
    They are written at ``.<out>.partial`` beside ``out`` and renamed into place when complete;
    the block-by-block path keeps a manifest there (``label:<block>`` then ``write:<block>``
    lines) and each labelled block's pieces, so ``resume`` after a kill labels and writes only
    the blocks not yet done (the output is the same as an uninterrupted run's).

    Args:
        prob: probability volume spec, Volume or numpy array: ZYX, or CZYX with ``channel``;
            float in [0, 1] or uint8 scaled 0..255.
        out: output zarr path (``out.zarr`` or ``out.zarr/name``); gets the input's voxel size and offset.
        threshold: foreground when ``p >= threshold`` (default 0.5).
        channel: channel of a CZYX volume (default: the only one; required when C > 1).
        connectivity: 6, 18 or 26 (default 26).
        min_size: instances with fewer voxels (whole-volume size) are removed (default 1: keep all).
        block_shape: block write region, voxels ZYX (default 64, 512, 512); output chunks divide it.
        scheduler: ``none`` (default, this process), ``local[:N]`` or a dask scheduler address.
        overwrite: replace an existing ``out`` (default False: refuse).
        resume: finish an interrupted block-by-block run into ``out`` (same settings required).
        progress: show progress bars.
        whole: label the whole volume in one pass in this process (True), or block by block with
            stitching (False); None (default): whole when ``scheduler`` is none, ``resume`` is
            not asked for and the volume has at most :data:`WHOLE_VOLUME_VOXELS` voxels. The
            labels are the same either way.
    """
    from ..io import open_volume

    job = check_instance_job(prob, out, threshold, channel, connectivity, min_size, block_shape, scheduler, overwrite, resume, whole)
    count = run_staged(job.out, resume, overwrite, lambda stage, resuming: write_instances(job, stage, resuming, progress),
                       what="mito post-processing")
    return Instances(open_volume(str(job.out), mode="r+"), count)


def check_output(out: Path, overwrite: bool, resume: bool) -> None:
    """One-line refusals before any work: ``out`` exists without ``overwrite`` / ``resume``, or both asked."""
    check_resume_flags(resume, overwrite)
    if out.exists() and not (overwrite or resume):
        raise UserError(f"{out} exists; pass --overwrite to replace it or choose another output")


def blockwise_points(
    prob: Any,
    *,
    thresholds: Sequence[float] = THRESHOLDS,
    min_pre_voxels: int = MIN_PRE_VOXELS,
    block_shape: Sequence[int] = DEFAULT_BLOCK,
    scheduler: str | Scheduler | None = None,
    progress: bool = True,
    work: Path | None = None,
    resuming: bool = False,
) -> SynapsePoints:
    """Pre/post synapse points of a ``(2, Z, Y, X)`` map by the AdaSyn protocol, block by block.

    The result equals :func:`.synapse.probabilities_to_points` of the whole map: same rows, same
    order, same links (in the map's array voxel coordinates). With a ``work`` folder, each
    labelled block's pieces and a manifest are kept there, so a rerun with ``resuming`` labels
    only the blocks not yet done (see :func:`~masktwins3d.parallel.resumable.run_staged`).

    Args:
        prob: probability volume spec, Volume or ``(2, Z, Y, X)`` numpy array (pre, post); float
            in [0, 1] or uint8 codes 0..255.
        thresholds: (delta_pre, delta_post), default (0.75, 0.65).
        min_pre_voxels: pre components with fewer voxels (whole-volume size) are dropped (default 2).
        block_shape: block write region, voxels ZYX (default 64, 512, 512).
        scheduler: ``none`` (default, this process), ``local[:N]`` or a dask scheduler address.
        progress: show a progress bar.
        work: folder for the manifest and the pieces (default None: kept in memory only).
        resuming: ``work`` holds an earlier run's manifest to continue (same settings required).
    """
    options = check_options(thresholds, min_pre_voxels)
    source = open_source(prob)
    if source.channels != 2:
        raise UserError(
            f"{source.name} has shape {tuple(np.shape(source.array))}; synapse post-processing needs a (2, Z, Y, X) "
            "probability map (channels pre, post)"
        )
    rules = tuple(
        partial(foreground, delta=options[c], where=f"{source.name} channel {c} ({name})") for c, name in ((0, "pre"), (1, "post"))
    )
    task = Task("synapse blocks", Roi((0, 0, 0), source.shape), parse_block(block_shape), LabelBlock(source, (0, 1), rules, 26), key="label:")
    if work is not None:
        settings = {"job": "synapse points", "input": source.name, "shape": list(source.shape), "dtype": str(np.dtype(source.array.dtype)),
                    "thresholds": list(options), "min_pre_voxels": int(min_pre_voxels), "block": list(task.block_shape)}
        task.manifest = Manifest.open(Path(work) / MANIFEST_NAME, settings, len(task.blocks), resuming, fix="pass --overwrite to start again")
    pre_pieces, post_pieces = label_blocks(task, 2, scheduler, progress, Path(work) / PIECES if work is not None else None)
    pre, _ = stitch(pre_pieces, 26, int(min_pre_voxels))
    post, _ = stitch(post_pieces, 26, 1)
    return link_points(pre.centroids(), post.centroids(), options[0], int(min_pre_voxels))
