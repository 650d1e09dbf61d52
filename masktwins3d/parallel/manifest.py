"""The manifest of a blockwise job: its settings and the blocks already finished.

Written atomically (temp file + rename) after every finished block, so a job killed at any
moment can be rerun: the blocks the manifest names are skipped, the others computed again (a
block's output is rewritten whole, so a block cut off mid-write is simply redone). A rerun
whose settings differ from the recorded ones is refused, because its blocks would not fit
together with the finished ones.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..atomic import atomic_write_json
from ..errors import UserError

FORMAT = "masktwins3d-blocks/1"

MANIFEST_NAME = "blocks.json"
"""The manifest's file name inside a blockwise job's output zarr."""


class Manifest:
    """Settings and finished block ids of one job, kept in a JSON file.

    Args:
        path: the manifest file (e.g. ``prob.zarr/blocks.json``).
        settings: everything that decides the output (checkpoint digest, patch, overlap, dtype,
            block shape, ...): JSON-able values; compared on resume.
        total: number of blocks of the job.
    """

    def __init__(self, path: str | Path, settings: dict[str, Any], total: int):
        self.path = Path(path)
        self.settings = json.loads(json.dumps(settings))  # as JSON would give it back
        self.total = int(total)
        self.done: set[str] = set()

    @classmethod
    def resume(cls, path: str | Path, settings: dict[str, Any], total: int, fix: str) -> Manifest:
        """Open an existing manifest for a rerun; refuse if its settings differ from ``settings``.

        Args:
            path, settings, total: as for the constructor.
            fix: what the user can do instead, ending the error line (e.g. "pass --overwrite to start again").
        """
        new = cls(path, settings, total)
        try:
            old = json.loads(new.path.read_text(encoding="utf-8"))
            recorded, done = old["settings"], old["done"]
        except (OSError, ValueError, KeyError, TypeError):
            raise UserError(f"{new.path} is not a readable blockwise manifest; {fix}") from None
        changed = sorted(k for k in set(recorded) | set(new.settings) if recorded.get(k) != new.settings.get(k))
        if changed:
            detail = ", ".join(f"{k}: {recorded.get(k)!r} -> {new.settings.get(k)!r}" for k in changed[:3])
            raise UserError(f"{new.path} was written with other settings ({detail}); rerun with the same settings, or {fix}")
        new.done = set(done)
        return new

    def is_done(self, block_id: str) -> bool:
        return block_id in self.done

    def mark_done(self, block_id: str) -> None:
        """Record a finished block and rewrite the manifest atomically."""
        self.done.add(block_id)
        self.save()

    @property
    def complete(self) -> bool:
        return len(self.done) >= self.total

    def save(self) -> None:
        atomic_write_json(
            self.path,
            {"format": FORMAT, "settings": self.settings, "total": self.total, "complete": self.complete, "done": sorted(self.done)},
        )
