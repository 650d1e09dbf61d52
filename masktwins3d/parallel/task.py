"""One blockwise task, in the style of daisy: a total ROI cut into blocks (each a write ROI and
the read ROI around it), a process function per block, an idempotent done-check and a manifest
of finished blocks.

Prediction and both post-processing products run through :class:`Task`, in this process or on a
dask cluster (:func:`~.scheduler.run_blocks`). The manifest (:mod:`.manifest`) gets one line per
finished block, appended here in the driving process once the block's result is complete; a
rerun skips the blocks it names, and a manifest with other settings is refused when opened
(:meth:`~.manifest.Manifest.open`).

>>> task = Task("label blocks", vol.roi, (64, 512, 512), LabelBlock(...), manifest=manifest, key="label:")
>>> task.run("local:4", on_result=keep)    # only the blocks the manifest does not name
"""

from __future__ import annotations

from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Callable, Sequence

from ..geometry import Roi
from .blocks import Block, block_grid
from .manifest import Manifest
from .scheduler import Scheduler, run_blocks


@dataclass
class Task:
    """A blockwise task: which blocks, what to do with each, which are done.

    Args:
        name: the progress bar's label (e.g. ``"predict"``).
        total_roi: the region the blocks' write ROIs tile, voxels.
        block_shape: write ROI per block, voxels per axis (blocks at the far end are cut to ``total_roi``).
        process: ``process(payload) -> result`` for one block; picklable when it runs on a dask
            cluster. It may return a :class:`~concurrent.futures.Future` of its result (a write
            still running in a background thread); the block counts as finished once it resolves.
        context: voxels read beyond the write ROI on each side, one value or one per axis
            (default 0); the read ROI is clipped to ``total_roi``.
        manifest: the finished blocks (default None: none is recorded, every block is computed).
            Several tasks may share one manifest, each with its own ``key``.
        key: prefix of this task's block ids in the manifest (default ``""``; e.g. ``"label:"``).
        payload: what ``process`` receives for a block, made here (default None: the :class:`Block`).
    """

    name: str
    total_roi: Roi
    block_shape: Sequence[int]
    process: Callable[[Any], Any]
    context: Sequence[int] | int = 0
    manifest: Manifest | None = None
    key: str = ""
    payload: Callable[[Block], Any] | None = field(default=None, repr=False)

    @cached_property
    def blocks(self) -> list[Block]:
        """Every block of the task, in C order (:func:`~.blocks.block_grid`)."""
        return block_grid(self.total_roi, self.block_shape, self.context)

    def block_id(self, block: Block) -> str:
        """The block's name in the manifest: ``key`` + its grid index (e.g. ``"label:0-2-1"``)."""
        return self.key + block.id

    def is_done(self, block: Block) -> bool:
        """Whether the manifest records ``block`` as finished (asking again changes nothing)."""
        return self.manifest is not None and self.manifest.is_done(self.block_id(block))

    def todo(self) -> list[Block]:
        """The blocks not yet done, in C order."""
        return [b for b in self.blocks if not self.is_done(b)]

    def run(
        self,
        scheduler: str | Scheduler | None = None,
        *,
        progress: bool = True,
        on_result: Callable[[Block, Any], None] | None = None,
        on_block: Callable[[int, int], None] | None = None,
        prefetch: Callable[[Any], None] | None = None,
        pending: int = 0,
    ) -> int:
        """Process every block not yet done, here or on a dask cluster; the number processed.

        Each finished block, in this process and in the order the results complete: its result
        goes to ``on_result(block, result)`` (e.g. saved), then the manifest records it, then
        ``on_block(done, total)`` reports it. An exception stops the run (blocks already recorded
        stay recorded, so a rerun continues).

        Args:
            scheduler: none (default) | local[:N] | an address, or a parsed :class:`~.scheduler.Scheduler`.
            progress: show a tqdm bar labelled :attr:`name`.
            on_result: called with each finished block and its result (a Future's, once resolved).
            on_block: called as ``on_block(0, total)`` before the first block and
                ``on_block(done, total)`` after each, ``total`` the blocks of this run.
            prefetch: in-process runs: called with the next payload before ``process`` runs on the
                current one (e.g. to read its input in the background).
            pending: results that are unresolved Futures may wait, at most this many, while the next
                blocks are processed (default 0: each is waited for before the next block).
        """
        todo = self.todo()
        payload = self.payload or (lambda block: block)
        items = [payload(b) for b in todo]
        block_of = {id(item): block for item, block in zip(items, todo)}
        waiting: deque = deque()
        finished = [0]

        def record(block: Block, result: Any) -> None:
            result = result.result() if isinstance(result, Future) else result
            if on_result is not None:
                on_result(block, result)
            if self.manifest is not None:
                self.manifest.mark_done(self.block_id(block))
            finished[0] += 1
            if on_block is not None:
                on_block(finished[0], len(todo))

        def done(item: Any, result: Any) -> None:
            waiting.append((block_of[id(item)], result))
            while waiting and (len(waiting) > pending or not isinstance(waiting[0][1], Future) or waiting[0][1].done()):
                record(*waiting.popleft())

        if on_block is not None:
            on_block(0, len(todo))
        run_blocks(self.process, items, scheduler, on_done=done, progress=progress, desc=self.name, prefetch=prefetch)
        while waiting:
            record(*waiting.popleft())
        return len(todo)
