"""The manifest of a blockwise job: its settings and the blocks already finished, as JSON lines.

The first line holds the job's settings and block count (written atomically: temp file +
rename); every finished block then appends one line, ``{"done": "0-2-1"}``, and a finished job
one ``{"complete": true}``. An append costs the same whatever the number of blocks already
done (a 100k-block volume), and a job killed at any moment can be rerun: the blocks the
manifest names are skipped, the others computed again (a block's output is rewritten whole, so a
block cut off mid-write is simply redone; a line cut off mid-write is not a finished block). A
rerun whose settings differ from the recorded ones is refused, because its blocks would not fit
together with the finished ones.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..atomic import atomic_write_text
from ..errors import UserError

FORMAT = "masktwins3d-blocks/2"

MANIFEST_NAME = "blocks.jsonl"
"""The manifest's file name inside a blockwise job's output zarr."""

LEGACY_NAME = "blocks.json"
"""The one-JSON-document manifest of masktwins3d before JSON lines (recognised, not resumed)."""


def read_manifest(path: str | Path) -> dict[str, Any]:
    """``{"settings", "total", "done" (ids in the order finished), "complete"}`` of a manifest file.

    A line cut off by a kill (the last one written before it) is skipped: its block was not
    recorded as finished, so a resume computes it again.

    Raises:
        OSError: the file cannot be read.
        ValueError: the first line is not a manifest header.
    """
    lines = Path(path).read_text(encoding="utf-8").split("\n")
    header = json.loads(lines[0])
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ValueError(f"not a {FORMAT} manifest")
    done: dict[str, None] = {}
    complete = False
    for line in lines[1:]:
        try:
            entry = json.loads(line) if line else None
        except ValueError:
            continue
        if isinstance(entry, dict):
            if "done" in entry:
                done[str(entry["done"])] = None
            complete = complete or entry.get("complete") is True
    total = int(header["total"])
    return {"settings": header["settings"], "total": total, "done": list(done), "complete": complete or len(done) >= total}


class Manifest:
    """Settings and finished block ids of one job, kept in a JSON-lines file.

    Args:
        path: the manifest file (e.g. ``prob.zarr/blocks.jsonl``).
        settings: everything that decides the output (checkpoint digest, patch, overlap, dtype,
            block shape, ...): JSON-able values; compared on resume.
        total: number of blocks of the job.
    """

    def __init__(self, path: str | Path, settings: dict[str, Any], total: int):
        self.path = Path(path)
        self.settings = json.loads(json.dumps(settings))  # as JSON would give it back
        self.total = int(total)
        self.done: set[str] = set()
        self._complete_written = False

    @classmethod
    def resume(cls, path: str | Path, settings: dict[str, Any], total: int, fix: str) -> Manifest:
        """Open an existing manifest for a rerun; refuse if its settings differ from ``settings``.

        Args:
            path, settings, total: as for the constructor.
            fix: what the user can do instead, ending the error line (e.g. "pass --overwrite to start again").
        """
        new = cls(path, settings, total)
        legacy = new.path.with_name(LEGACY_NAME)
        if not new.path.is_file() and legacy.is_file():
            raise UserError(f"{legacy} was written by an earlier masktwins3d and cannot be resumed; {fix}")
        try:
            old = read_manifest(new.path)
        except (OSError, ValueError, KeyError, TypeError):
            raise UserError(f"{new.path} is not a readable blockwise manifest; {fix}") from None
        recorded = old["settings"]
        changed = sorted(k for k in set(recorded) | set(new.settings) if recorded.get(k) != new.settings.get(k))
        if changed:
            detail = ", ".join(f"{k}: {recorded.get(k)!r} -> {new.settings.get(k)!r}" for k in changed[:3])
            raise UserError(f"{new.path} was written with other settings ({detail}); rerun with the same settings, or {fix}")
        new.done = set(old["done"])
        new._complete_written = old["complete"]
        new._ensure_line_end()
        return new

    @classmethod
    def open(cls, path: str | Path, settings: dict[str, Any], total: int, resuming: bool, fix: str) -> Manifest:
        """The manifest of a job: the earlier one at ``path`` when ``resuming`` (refused, naming the
        first differences, if its settings differ: see :meth:`resume`), else a new one (its folder
        made, its header written).

        Args:
            path, settings, total: as for the constructor.
            resuming: continue the manifest already at ``path``.
            fix: what the user can do instead, ending a refusal (e.g. "pass --overwrite to start again").
        """
        if resuming:
            return cls.resume(path, settings, total, fix=fix)
        manifest = cls(path, settings, total)
        manifest.path.parent.mkdir(parents=True, exist_ok=True)
        manifest.start()
        return manifest

    def start(self) -> None:
        """Write the header (settings and block count) of a new job, replacing any earlier file."""
        atomic_write_text(self.path, json.dumps({"format": FORMAT, "settings": self.settings, "total": self.total}) + "\n")

    def is_done(self, block_id: str) -> bool:
        return block_id in self.done

    def mark_done(self, block_id: str) -> None:
        """Record a finished block: one line appended (constant cost per block)."""
        if block_id in self.done:
            return
        self.done.add(block_id)
        self._append({"done": block_id})
        self.finish()

    @property
    def complete(self) -> bool:
        return len(self.done) >= self.total

    def finish(self) -> None:
        """Append the ``complete`` line once every block is done (nothing otherwise)."""
        if self.complete and not self._complete_written:
            self._append({"complete": True})
            self._complete_written = True

    def _append(self, entry: dict) -> None:
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(entry) + "\n")  # one write of one whole line

    def _ensure_line_end(self) -> None:
        """After a kill mid-line, start the next entry on a line of its own."""
        with open(self.path, "rb") as f:
            f.seek(0, 2)
            if f.tell() == 0:
                return
            f.seek(-1, 2)
            last = f.read(1)
        if last != b"\n":
            with open(self.path, "a", encoding="utf-8") as f:
                f.write("\n")
