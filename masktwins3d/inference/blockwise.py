"""Out-of-core prediction: a volume cut into blocks, each predicted with a sliding window and
written to a chunk-aligned probability zarr; resumable, in this process or on a dask cluster.

One engine for 2D and 3D models. The volume is cut by :func:`~masktwins3d.parallel.block_grid`
into blocks whose write regions tile it; each block reads its write region plus a context
(default half a patch per axis, none in z for a 2D model), normalises it with the one
volume-level normaliser, predicts it with :func:`.region.predict_region`, crops the write
region, converts it to the output dtype and writes it. The block shape is a multiple of the
output chunks, so no two blocks write one chunk, and a block's result depends only on its input:
the output is the same whatever the order of the blocks or the worker that computes them (bit
for bit, given the same torch thread count, batch size and device).

In this process the next block is read and the previous one written in background threads
while a block is computed (the same arrays, so the same output). The output zarr holds a
manifest (``blocks.jsonl``, one line appended per block once it is written): a rerun
with ``resume=True`` computes only the blocks it does not name, and is refused if the settings
(checkpoint digest, input, patch, overlap, blend, TTA, batch, block shape, dtype, ...) differ.

>>> predict_blockwise(CheckpointModel.of("run/checkpoint.pt"), open_volume("raw.zarr"), "prob.zarr",
...                   preprocess=volume_normalizer(vol), patch_size=(256, 256), scheduler="local:4")
"""

from __future__ import annotations

import hashlib
import os
import pickle
import sys
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from ..errors import UserError
from ..parallel import Block, Manifest, Task, block_grid, parse_scheduler
from ..parallel.manifest import MANIFEST_NAME
from ..parallel.scheduler import Scheduler
from ..precision import resolve_precision
from .region import WindowSettings, output_channels, predict_region
from .settings import PredictSettings, check_output_flags, resolve_device

PENDING_WRITES = 1
"""In-process runs: blocks whose write may still run in a background thread while the next
block is computed (each holds one block's probabilities in memory)."""

_MODELS: dict[tuple, torch.nn.Module] = {}
"""Per-process model cache: ``(checkpoint path, sha256, device) -> model``."""


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for part in iter(lambda: f.read(chunk), b""):
            digest.update(part)
    return digest.hexdigest()


def module_sha256(module: torch.nn.Module) -> str:
    """Hex sha256 of a module's class name and state dict (names, dtypes, shapes, values)."""
    digest = hashlib.sha256(type(module).__qualname__.encode())
    for name, tensor in sorted(module.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        digest.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()


@dataclass(frozen=True)
class CheckpointModel:
    """A model to be loaded from a training checkpoint, once per process (cached by path, digest, device).

    Args:
        path: the ``checkpoint.pt`` file.
        sha256: hex digest of its bytes (recorded in the manifest; a changed file is refused).
        weights: ``student`` (the last iterate, default) or ``ema`` (the EMA of the weights).
    """

    path: str
    sha256: str
    weights: str = "student"

    @classmethod
    def of(cls, path: str | Path, weights: str = "student") -> CheckpointModel:
        """The checkpoint at ``path`` with its digest; a :class:`UserError` if it is missing."""
        if not Path(path).is_file():
            raise UserError(f"checkpoint {path} does not exist; pass the checkpoint.pt of a training run")
        return cls(str(Path(path).resolve()), file_sha256(path), weights)

    def load(self, device: str | torch.device = "cpu") -> torch.nn.Module:
        key = (self.path, self.sha256, self.weights, str(device))
        if key not in _MODELS:
            from .loading import model_from_checkpoint  # local: loading imports the trainer

            if file_sha256(self.path) != self.sha256:
                raise UserError(f"checkpoint {self.path} changed while predicting; rerun with the checkpoint you want")
            _MODELS.clear()  # one model per process
            _MODELS[key] = model_from_checkpoint(self.path, self.weights).to(device).eval()
        return _MODELS[key]

    @property
    def identity(self) -> str:
        return f"sha256:{self.sha256}" + ("" if self.weights == "student" else f":{self.weights}")


@dataclass(frozen=True)
class ModuleModel:
    """An in-memory model (pickled to workers as is).

    Args:
        module: the network; ``load`` moves it to the device and sets eval mode.
    """

    module: torch.nn.Module

    def load(self, device: str | torch.device = "cpu") -> torch.nn.Module:
        return self.module.to(device).eval()

    @property
    def identity(self) -> str:
        return f"module:{module_sha256(self.module)}"


@dataclass
class BlockJob:
    """Predicts one block (``job(block) -> block.id``); picklable for dask when its parts are.

    Args:
        model: :class:`CheckpointModel` or :class:`ModuleModel`.
        source: input ZYX :class:`~masktwins3d.io.Volume` (or CZYX with one channel).
        target: output CZYX Volume, open for writing, same voxel grid as ``source``.
        preprocess: raw ``(Z, Y, X)`` -> float32 normalised array of the same shape (elementwise,
            e.g. a :class:`~masktwins3d.data.normalize.Normalizer`).
        settings: :class:`~.region.WindowSettings`.
        out_dtype: float32 | float16 | uint8.
        device: torch device of the model and the stitching.
        threads: torch intra-op threads while computing a block (None: leave as is).
    """

    model: Any
    source: Any
    target: Any
    preprocess: Callable[[np.ndarray], np.ndarray]
    settings: WindowSettings
    out_dtype: str
    device: str = "cpu"
    threads: int | None = None
    _pending: dict = field(default_factory=dict, repr=False, compare=False)
    _reader: ThreadPoolExecutor | None = field(default=None, repr=False, compare=False)
    _writer: ThreadPoolExecutor | None = field(default=None, repr=False, compare=False)

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_pending"], state["_reader"], state["_writer"] = {}, None, None
        return state

    def read(self, block: Block) -> np.ndarray:
        """The block's normalised float32 ``(Z, Y, X)`` read region."""
        key = block.read_roi.to_slices(self.source.offset)
        raw = self.source[key] if self.source.axes == "zyx" else self.source[(0, *key)]
        region = np.asarray(self.preprocess(np.asarray(raw)), dtype=np.float32)
        if region.shape != raw.shape:
            raise ValueError(f"preprocess turned a block of shape {raw.shape} into {region.shape}; keep the shape")
        return region

    def prefetch(self, block: Block) -> None:
        """Start reading ``block`` in a background thread (in-process runs: reading overlaps compute)."""
        if self._reader is None:
            self._reader = ThreadPoolExecutor(1, thread_name_prefix="read-block")
        self._pending[block.id] = self._reader.submit(self.read, block)

    def write_in_background(self) -> None:
        """From now on a call hands its block's write to a background thread and returns the
        write's Future (of the block id): in-process runs write one block while computing the next."""
        if self._writer is None:
            self._writer = ThreadPoolExecutor(1, thread_name_prefix="write-block")

    def write(self, block: Block, prob: np.ndarray) -> str:
        """Write one block's probabilities (its write region of the target); its id."""
        self.target[(slice(None), *block.write_roi.to_slices(self.target.offset))] = prob
        return block.id

    def close(self) -> None:
        """Stop the background threads, after the writes already started (none is left running)."""
        for pool in (self._reader, self._writer):
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
        self._reader = self._writer = None
        self._pending.clear()

    def __call__(self, block: Block) -> str | Future:
        if self.threads and torch.get_num_threads() != self.threads:
            torch.set_num_threads(self.threads)
        model = self.model.load(self.device)
        pending: Future | None = self._pending.pop(block.id, None)
        region = pending.result() if pending is not None else self.read(block)
        crop = block.write_roi.to_slices(block.read_roi.offset)
        prob = predict_region(model, region, self.settings, self.device, crop=crop, out_dtype=self.out_dtype)
        if self._writer is None:
            return self.write(block, prob)
        return self._writer.submit(self.write, block, prob)


def check_source(volume) -> None:
    """A :class:`UserError` unless ``volume`` is ZYX or CZYX with one channel."""
    axes = getattr(volume, "axes", "zyx")
    if axes == "zyx" or (axes == "czyx" and volume.shape[0] == 1):
        return
    raise UserError(
        f"{getattr(volume, 'path', 'the input')} has axes {axes!r} and shape {tuple(volume.shape)}; "
        "prediction needs a ZYX volume of one channel: give the image volume"
    )


def default_context(settings: WindowSettings) -> tuple[int, int, int]:
    """Half a patch per axis (Z, Y, X); 0 in z for a 2D model."""
    half = tuple(p // 2 for p in settings.patch_size)
    return (0, *half) if settings.dims == 2 else half  # type: ignore[return-value]


def default_threads(workers: int) -> int:
    """Torch threads per block worker: the CPU cores shared among ``workers`` (at least 1)."""
    return max(1, (os.cpu_count() or 1) // max(workers, 1))


def manifest_settings(ref, volume, preprocess, settings: WindowSettings, block, ctx, out_dtype: str, identity: dict | None) -> dict:
    """Everything that decides a prediction's output, as the manifest records it (a resume with
    other values is refused)."""
    return {
        "model": ref.identity,
        **(identity or {}),
        "input_shape": list(volume.shape[-3:]),
        "input_offset": list(volume.offset),
        "preprocess": repr(preprocess) if hasattr(type(preprocess), "__dataclass_fields__") else type(preprocess).__name__,
        "patch": list(settings.patch_size),
        "overlap": list(settings.overlap),
        "blend": settings.blend.value,
        "tta": settings.tta,
        "batch_size": settings.batch_size,
        "activation": settings.activation.value,
        "amp": settings.amp,
        "block": list(block),
        "context": list(ctx),
        "dtype": out_dtype,
    }


def open_target(out_path: Path, volume, recorded: dict, total: int, channels: int, chunks, out_dtype: str, resume: bool, overwrite: bool):
    """``(target, manifest)``: the probability zarr and its manifest, continued (``resume`` into an
    existing ``out_path``, same settings, shape and dtype) or new."""
    from ..io import create_volume, open_volume

    spatial = tuple(volume.shape[-3:])
    manifest_path = out_path / MANIFEST_NAME
    fix = f"pass --overwrite to start {out_path} again"
    if resume and out_path.exists():
        manifest = Manifest.open(manifest_path, recorded, total, resuming=True, fix=fix)
        target = open_volume(out_path, mode="r+")
        expected = (channels, *spatial)
        if tuple(target.shape) != expected or target.dtype != np.dtype(out_dtype):
            raise UserError(f"{out_path} has shape {target.shape} and dtype {target.dtype}, not {expected} {out_dtype}; {fix}")
        return target, manifest
    # probabilities barely compress with any codec (blosc-zstd saves 6 % more than lz4 on the
    # demo's): the fast-to-write one (fast_write: blosc-lz4, flat chunk keys, twice as fast)
    target = create_volume(
        out_path, (channels, *spatial), out_dtype, voxel_size=volume.voxel_size, offset=volume.offset,
        axes="czyx", chunks=(channels, *chunks), overwrite=overwrite, fast_write=True,
    )
    return target, Manifest.open(manifest_path, recorded, total, resuming=False, fix=fix)


def run_job(task: Task, sched: Scheduler, progress: bool, on_block: Callable[[int, int], None] | None) -> None:
    """Run the prediction ``task`` (its process a :class:`BlockJob`): here prefetching the next
    block and writing the previous one in the background, or on the cluster; each block is
    recorded and reported to ``on_block`` only once its write is complete, in order. After an
    error the writes already started finish, unrecorded: a resume computes those blocks again."""
    job: BlockJob = task.process  # type: ignore[assignment]
    before = torch.get_num_threads()
    here = sched.kind == "none"
    try:
        if here:
            job.write_in_background()
        task.run(sched, progress=progress, on_block=on_block, prefetch=job.prefetch if here else None, pending=PENDING_WRITES)
    finally:
        job.close()
        torch.set_num_threads(before)


def check_picklable(scheduler: str, job) -> None:
    """A job for dask workers must pickle; one line naming ``--scheduler`` otherwise."""
    try:
        pickle.dumps(job)
    except Exception as exc:  # noqa: BLE001  (anything unpicklable: a lambda, an in-memory volume)
        raise UserError(f"--scheduler {scheduler}: the job cannot be sent to workers ({exc}); predict from files (a checkpoint and a volume path) or use --scheduler none") from None


def predict_blockwise(
    model: torch.nn.Module | CheckpointModel,
    volume,
    out_path: str | Path,
    *,
    preprocess: Callable[[np.ndarray], np.ndarray],
    settings: PredictSettings | None = None,
    progress: bool = True,
    identity: dict | None = None,
    on_block: Callable[[int, int], None] | None = None,
    **options,
):
    """Predict ``volume`` block by block into the probability zarr ``out_path``; resumable.

    Every setting, the output path and the scheduler are checked before anything is computed
    (a :class:`UserError` naming the flag and the fix).

    Args:
        model: a network (2D or 3D by its ``spatial_dims``, default 2) or a :class:`CheckpointModel`
            (loaded once per worker process; needed for dask clusters beyond this machine).
        volume: input ZYX :class:`~masktwins3d.io.Volume` (or CZYX with one channel); read lazily.
        out_path: output zarr (``prob.zarr`` or ``x.zarr/group``): OME-Zarr ``czyx`` with the input's
            voxel size and offset, and the manifest ``blocks.jsonl`` inside.
        preprocess: elementwise raw -> float32 normalisation, the same for every block (e.g. a
            :class:`~masktwins3d.data.normalize.Normalizer`; picklable for dask).
        settings: patch, overlap, blend, batch size, TTA, activation, dtype, device, amp, block,
            context, scheduler, threads, resume, overwrite (:class:`~.settings.PredictSettings`);
            default: built from ``options``, on device cpu unless they name one. The amp choice
            is recorded in the manifest (``amp``) and, with its reason, printed.
        progress: tqdm bar over blocks (default True).
        identity: extra entries for the manifest's settings (e.g. the input spec); JSON-able.
        on_block: called here as ``on_block(done, total)`` once before the first block and after
            each finished block (blocks of this run). An exception it raises stops the run; the
            finished blocks stay recorded, so ``resume`` continues it (how a GUI cancels).
        **options: fields of :class:`~.settings.PredictSettings`, instead of ``settings``.

    Returns:
        The output :class:`~masktwins3d.io.Volume` ``(C, Z, Y, X)``, open for writing.
    """
    settings = PredictSettings.build(settings, options, device="cpu")
    ref = model if isinstance(model, CheckpointModel) else ModuleModel(model)
    sched = parse_scheduler(settings.scheduler)
    out_path = Path(out_path)
    check_output_flags(out_path, settings.resume, settings.overwrite)
    check_source(volume)
    device = resolve_device(settings.device)
    precision = resolve_precision(settings.amp.value, device)
    net = ref.load(device) if isinstance(ref, CheckpointModel) else ref.module
    dims = getattr(net, "spatial_dims", 2)
    window = settings.window(dims, getattr(net, "head_kind", "softmax"), precision.bf16)
    block, chunks = settings.layout(dims, tuple(volume.shape[-3:]))
    ctx = settings.context if settings.context is not None else default_context(window)
    n_blocks = len(block_grid(volume.roi, block, ctx))
    net = net.to(device).eval()
    channels = output_channels(net, window, device)
    recorded = manifest_settings(ref, volume, preprocess, window, block, ctx, settings.out_dtype, identity)
    if sched.kind != "none":
        check_picklable(settings.scheduler, (ref, volume, preprocess))
    target, manifest = open_target(out_path, volume, recorded, n_blocks, channels, chunks, settings.out_dtype,
                                   settings.resume, settings.overwrite)
    threads = settings.threads or default_threads(sched.workers if sched.kind == "local" else 1)
    task = Task("predict", volume.roi, block, BlockJob(ref, volume, target, preprocess, window, settings.out_dtype, device, threads),
                context=ctx, manifest=manifest)
    if progress or settings.resume:
        todo = len(task.todo())
        print(f"predict: {todo} of {len(task.blocks)} blocks to compute ({len(task.blocks) - todo} already done), block {block}, context {ctx}; "
              f"precision {precision.name} ({precision.reason})", file=sys.stderr, flush=True)
    run_job(task, sched, progress, on_block)
    task.manifest.finish()
    return target
