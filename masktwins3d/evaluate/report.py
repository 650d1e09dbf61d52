"""Write a mitochondria score report: JSON (summary + sections) and CSV (one row per section, or one row).

Both files are written atomically (temp file + rename) and neither is written when either one
already exists, unless ``overwrite`` is set. Undefined scores (NaN, or None for skipped sections)
become ``null`` in JSON and empty cells in CSV; JSON stays strict (no NaN literals).
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any

from .. import __version__
from ..atomic import atomic_write_json, atomic_write_text
from ..errors import UserError

SECTION_COLUMNS = ("z", "empty", "map", "f1", "mcc", "iou", "tp", "fp", "fn", "tn")
VOLUME_COLUMNS = (
    "protocol", "map", "f1", "mcc", "iou", "n_sections", "n_empty", "n_scored", "threshold",
    "tp", "fp", "fn", "tn",
)  # fmt: skip


def _strict(value: Any) -> Any:
    """Replace non-finite floats by None, recursively, so the JSON has no NaN/Infinity literals."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _strict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strict(v) for v in value]
    return value


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, float) else str(value)


def mito_csv_text(result: dict) -> str:
    """The CSV text of a result: per-section rows in 2d mode, a single summary row in 3d mode."""
    if result.get("mode") == "2d":
        columns, rows = SECTION_COLUMNS, result["sections"]
    else:
        columns, rows = VOLUME_COLUMNS, [result]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(c)) for c in columns])
    return buffer.getvalue()


def write_mito_report(
    result: dict, json_path: str | Path, csv_path: str | Path | None = None, overwrite: bool = False
) -> list[Path]:
    """Write ``result`` of :func:`~masktwins3d.evaluate.mito.evaluate_mito` as JSON (and CSV).

    Args:
        result: the dict returned by ``evaluate_mito``.
        json_path: JSON destination: the whole result (summary, settings and, in 2d, the sections)
            plus ``masktwins3d_version``.
        csv_path: optional CSV destination: columns ``z, empty, map, f1, mcc, iou, tp, fp, fn, tn``
            (2d, one row per section) or the summary row (3d).
        overwrite: replace existing files; otherwise an existing file stops with a UserError.

    Returns:
        The paths written.
    """
    paths = [Path(json_path)] + ([Path(csv_path)] if csv_path is not None else [])
    if len(paths) == 2 and paths[0].resolve() == paths[1].resolve():
        raise UserError(f"the JSON and CSV reports both point at {paths[0]}; give them different names")
    for path in paths:
        if path.is_dir():
            raise UserError(f"{path} is a folder; give a file name for the report")
        if path.exists() and not overwrite:
            raise UserError(f"{path} exists; pass --overwrite to replace it")
    atomic_write_json(paths[0], _strict({**result, "masktwins3d_version": __version__}))
    if csv_path is not None:
        atomic_write_text(paths[1], mito_csv_text(result))
    return paths
