"""Resumable blockwise outputs: a job writes into a stage with a fixed hidden name beside its
output, keeps its manifest (:mod:`.manifest`) there, and is renamed into place (or, for a
product written elsewhere, removed) only when complete.

The one discipline for every blockwise verb (``predict``, ``postprocess mito``,
``postprocess synapse``):

- a new run refuses an earlier unfinished stage unless ``overwrite`` (which removes the stage
  only: the user's earlier output stays until its replacement is complete);
- a run that fails keeps a stage with finished blocks, and says how to resume it; one without
  finished blocks is removed, so nothing is left behind;
- ``resume`` continues the stage (and, for outputs written in place by an earlier version, the
  unfinished output itself).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable, TypeVar

from ..atomic import move_into_place, remove_path, writable_sibling
from ..errors import UserError
from .manifest import MANIFEST_NAME, read_manifest

T = TypeVar("T")


def check_resume_flags(resume: bool, overwrite: bool) -> None:
    """A one-line :class:`UserError` when a run is asked both to resume and to start again."""
    if resume and overwrite:
        raise UserError("--resume and --overwrite contradict each other; pass --resume to continue a run or --overwrite to start again")


def partial_path(out: str | Path) -> Path:
    """Where a job writing ``out`` is staged until complete: a hidden sibling with a fixed name,
    so that a ``--resume`` after a kill finds it."""
    out = Path(out)
    return out.parent / f".{out.name}.partial"


def manifest_progress(folder: Path) -> tuple[int, int | None]:
    """``(finished blocks, total)`` from the manifest in ``folder``; ``(0, None)`` without a readable one."""
    try:
        manifest = read_manifest(Path(folder) / MANIFEST_NAME)
        return len(manifest["done"]), manifest["total"]
    except (OSError, ValueError, KeyError, TypeError):
        return 0, None


def run_staged(
    out: str | Path,
    resume: bool,
    overwrite: bool,
    run: Callable[[Path, bool], T],
    *,
    what: str = "job",
    rename: bool = True,
) -> T:
    """Run ``run(stage, resuming)`` in the stage :func:`partial_path` of ``out``, then finish it.

    Args:
        out: the output the job makes.
        resume: continue an earlier stage of ``out`` (a new one when there is none).
        overwrite: a new run replaces an earlier unfinished stage (the output ``out`` itself is
            replaced only when the new one is complete, and only if ``rename``).
        run: does the work; ``stage`` is where it writes (a folder, with the manifest inside),
            ``resuming`` whether that folder holds an earlier run's finished blocks.
        what: how messages name the job (e.g. "prediction").
        rename: True: the complete stage becomes ``out`` (an existing ``out`` is set aside first
            and deleted once the stage is in place). False: the stage is a work folder, removed
            once ``run`` returns (the caller writes ``out`` itself, e.g. a points file).
    """
    out = Path(out)
    stage = partial_path(out)
    writable_sibling(out)  # a read-only folder is one line naming the output, before any work
    if rename and resume and not stage.exists() and out.exists():
        return run(out, True)  # ``out`` itself (finished, or unfinished from an earlier version): ``run`` checks its manifest
    if stage.exists() and not resume:
        if not overwrite:
            done, total = manifest_progress(stage)
            progress = f"{done} of {total} blocks done" if total is not None else "no readable manifest"
            raise UserError(f"an interrupted {what} into {out} is at {stage} ({progress}); "
                            "pass --resume to finish it or --overwrite to start again")
        remove_path(stage)  # our own unfinished stage, not the user's output: that stays until the new one is complete
    resuming = resume and stage.exists()
    try:
        result = run(stage, resuming)
    except BaseException:
        if stage.exists():
            if manifest_progress(stage)[0]:
                print(f"note: the finished blocks are kept in {stage}; rerun with --resume to finish {out}", file=sys.stderr, flush=True)
            else:
                remove_path(stage)  # nothing finished: nothing to resume, nothing left behind
        raise
    if not rename:
        remove_path(stage)
        return result
    move_into_place(stage, out)  # the earlier output goes only now that its replacement is complete
    return result
