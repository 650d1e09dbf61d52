"""Blockwise work: a volume cut into blocks (:mod:`.blocks`), a manifest of finished blocks for
resuming (:mod:`.manifest`), a runner that computes blocks in this process or on a dask
cluster (:mod:`.scheduler`), and the task that ties them together (:mod:`.task`).

>>> task = Task("label", vol.roi, (64, 512, 512), process, context=(16, 64, 64), manifest=manifest)
>>> task.run("local:2")   # the blocks the manifest does not name, each recorded as it finishes
"""

from .blocks import Block, block_chunks, block_grid
from .manifest import Manifest, read_manifest
from .scheduler import check_reachable, parse_scheduler, run_blocks
from .task import Task

__all__ = ["Block", "Manifest", "Task", "block_chunks", "block_grid", "check_reachable", "parse_scheduler", "read_manifest", "run_blocks"]
