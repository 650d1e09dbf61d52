"""Checks for binary label volumes (0/1, 0/255 or bool) before any long work."""

from __future__ import annotations

import numpy as np

from ..errors import UserError

ALLOWED = ({0, 1}, {0, 255})


def check_binary_values(values: np.ndarray, where: str) -> None:
    """Raise unless the unique ``values`` fit {0, 1}, {0, 255} or bool."""
    found = {int(v) for v in np.unique(values)} if values.dtype != bool else {0, 1}
    if not any(found <= allowed for allowed in ALLOWED):
        shown = sorted(found)[:8]
        raise UserError(
            f"labels {where} hold values {shown}{'...' if len(found) > 8 else ''}; "
            "masktwins3d needs binary labels (0/1, 0/255 or bool): binarise them first, e.g. with `label > 0`"
        )


def check_binary_volume(volume, max_bytes: int = 1 << 30, max_sections: int = 64) -> None:
    """Check a label Volume section by section (all sections when small, else evenly spaced ones).

    Args:
        volume: ZYX label volume.
        max_bytes: volumes up to this size are checked completely.
        max_sections: otherwise, how many evenly spaced sections are checked.
    """
    nz = volume.shape[0]
    nbytes = int(np.prod(volume.shape)) * np.dtype(volume.dtype).itemsize
    zs = range(nz) if nbytes <= max_bytes else np.unique(np.linspace(0, nz - 1, max_sections).astype(int))
    seen: set[int] = set()
    for z in zs:
        sec = np.asarray(volume[int(z)])
        if sec.dtype == bool:
            return
        seen |= {int(v) for v in np.unique(sec)}
        if len(seen) > 2:
            break
    check_binary_values(np.array(sorted(seen)), f"in {getattr(volume, 'path', 'the label volume')}")


def binarize(labels: np.ndarray) -> np.ndarray:
    """0/1, 0/255 or bool labels to uint8 0/1."""
    return (np.asarray(labels) > 0).astype(np.uint8)
