"""The demo's data set: a labelled source volume, a target training volume and a held-out target
volume, written as zarr groups with ``raw`` and ``mito`` arrays and their voxel size."""

from __future__ import annotations

import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from ..atomic import move_into_place
from ..errors import UserError
from ..io import create_volume
from .generate import generate_volume
from .style import get_style

#: volume name -> style name
DEMO_VOLUMES: dict[str, str] = {"source_train": "source", "target_train": "target", "target_test": "target"}
#: volume name -> default shape (Z, Y, X), voxels
DEMO_SHAPES: dict[str, tuple[int, int, int]] = {
    "source_train": (24, 256, 256),
    "target_train": (24, 256, 256),
    "target_test": (12, 256, 256),
}


def _resolve_shapes(shapes) -> dict[str, tuple[int, int, int]]:
    if shapes is None:
        return dict(DEMO_SHAPES)
    if isinstance(shapes, Mapping):
        unknown = sorted(set(shapes) - set(DEMO_VOLUMES))
        if unknown:
            raise UserError(f"demo volume {unknown[0]!r} is unknown; shapes may name {list(DEMO_VOLUMES)}")
        out = dict(DEMO_SHAPES)
        out.update({k: tuple(int(n) for n in v) for k, v in shapes.items()})
        return out
    shape = tuple(int(n) for n in shapes)
    return {name: shape for name in DEMO_VOLUMES}


def _write_group(path: Path, raw: np.ndarray, mito: np.ndarray, voxel_size: Sequence[float], attrs: dict) -> None:
    """Write ``raw`` and ``mito`` as OME-Zarr images in the (new) zarr v3 group at ``path``."""
    import zarr

    for key, data in (("raw", raw), ("mito", mito)):
        vol = create_volume(str(path / key), data.shape, data.dtype, voxel_size=tuple(voxel_size), offset=(0, 0, 0))
        vol[...] = data
    zarr.open_group(str(path), mode="a").attrs.update({"masktwins3d": attrs})


def write_demo_data(
    root: str | Path,
    *,
    shapes=None,
    seed: int = 0,
    overwrite: bool = False,
) -> dict[str, dict[str, str]]:
    """Generate and write the demo volumes ``source_train``, ``target_train`` and ``target_test``.

    Each volume is a zarr v3 group ``<root>/<name>.zarr`` holding two OME-Zarr images (written
    with :func:`masktwins3d.io.create_volume`): uint8 ``raw`` and uint8 0/1 ``mito``, ZYX, with
    the voxel size of the volume's style in nm; open them with
    :func:`masktwins3d.io.open_volume`. The group's attributes record the
    style and seed (``masktwins3d.synth``). Every volume has its own seed derived from ``seed``,
    so the two target volumes are independent draws of one domain. A group is written under a
    temporary name and renamed when complete.

    Args:
        root: folder to write into (created if missing).
        shapes: None for :data:`DEMO_SHAPES`; a mapping name -> (Z, Y, X) overriding some of them;
            or one (Z, Y, X) for all three. Voxels.
        seed: base seed. Default 0.
        overwrite: replace volumes that exist; otherwise an existing one is an error (checked
            before anything is written).

    Returns:
        ``{name: {"raw": "<root>/<name>.zarr/raw", "mito": "<root>/<name>.zarr/mito"}}``.
    """
    root = Path(root)
    shapes = _resolve_shapes(shapes)
    if root.exists() and not root.is_dir():
        raise UserError(f"{root} exists and is not a folder; choose another demo data folder")
    targets = {name: root / f"{name}.zarr" for name in DEMO_VOLUMES}
    if not overwrite:
        for path in targets.values():
            if path.exists():
                raise UserError(f"{path} exists; pass --overwrite to replace it")
    root.mkdir(parents=True, exist_ok=True)
    specs = {}
    for index, (name, style_name) in enumerate(DEMO_VOLUMES.items()):
        style = get_style(style_name)
        rng = np.random.default_rng(np.random.SeedSequence([int(seed), index]))
        raw, mito = generate_volume(style, shapes[name], rng)
        final, tmp = targets[name], root / f".{name}.partial.zarr"
        if tmp.exists():
            shutil.rmtree(tmp)
        attrs = {"synth": {"volume": name, "seed": int(seed), "style": asdict(style)}}
        _write_group(tmp, raw, mito, style.voxel_size, attrs)
        move_into_place(tmp, final)  # an earlier volume is set aside, and deleted once this one is in place
        specs[name] = {"raw": str(final / "raw"), "mito": str(final / "mito")}
    return specs
