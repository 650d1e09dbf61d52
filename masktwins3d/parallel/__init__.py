"""Blockwise work: a volume cut into blocks (:mod:`.blocks`), a manifest of finished blocks for
resuming (:mod:`.manifest`), and a runner that computes blocks in this process or on a dask
cluster (:mod:`.scheduler`).

>>> blocks = block_grid(vol.roi, block_shape=(64, 512, 512), context=(16, 64, 64))
>>> run_blocks(work, blocks, scheduler="local:2", on_done=manifest.mark_done)
"""

from .blocks import Block, block_grid
from .manifest import Manifest, read_manifest
from .scheduler import check_reachable, parse_scheduler, run_blocks

__all__ = ["Block", "Manifest", "block_grid", "check_reachable", "parse_scheduler", "read_manifest", "run_blocks"]
