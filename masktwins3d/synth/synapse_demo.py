"""The synapse demo's data set: a labelled source volume, a target training volume, a held-out
target volume and a held-out source volume, each a zarr group with a ``raw`` image plus a
WASPSYN-layout HDF5 point file."""

from __future__ import annotations

import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from ..atomic import atomic_write, move_into_place
from ..errors import UserError
from ..io import create_volume
from .synapse import generate_synapse_volume
from .synapse_style import SynapseStyle, get_synapse_style

#: volume name -> synapse style name
SYNAPSE_DEMO_VOLUMES: dict[str, str] = {
    "source_train": "syn_source",
    "target_train": "syn_target",
    "target_test": "syn_target",
    "source_test": "syn_source",  # held out: judges the source model with source labels only
}
#: volume name -> default shape (Z, Y, X), voxels (8 nm isotropic: 0.5 x 1.3 x 1.3 µm for training).
#: The held-out target holds about 100 pre points: at 64 x 128 x 128 (26 of them) the test volume
#: alone moved a one-seed masktwins - noadapt F1 by 0.05 (sd over independent draws; BENCHMARKS.md
#: "how much of a one-seed synapse score is the test volume").
SYNAPSE_DEMO_SHAPES: dict[str, tuple[int, int, int]] = {
    "source_train": (64, 160, 160),
    "target_train": (64, 160, 160),
    "target_test": (64, 256, 256),
    "source_test": (64, 128, 128),
}


def _resolve_shapes(shapes) -> dict[str, tuple[int, int, int]]:
    if shapes is None:
        return dict(SYNAPSE_DEMO_SHAPES)
    if isinstance(shapes, Mapping):
        unknown = sorted(set(shapes) - set(SYNAPSE_DEMO_VOLUMES))
        if unknown:
            raise UserError(
                f"synapse demo volume {unknown[0]!r} is unknown; shapes may name {list(SYNAPSE_DEMO_VOLUMES)}"
            )
        out = dict(SYNAPSE_DEMO_SHAPES)
        out.update({k: tuple(int(n) for n in v) for k, v in shapes.items()})
        return out
    shape = tuple(int(n) for n in shapes)
    return {name: shape for name in SYNAPSE_DEMO_VOLUMES}


def _write_points(path: Path, pre: np.ndarray, post: np.ndarray, voxel_size: Sequence[float]) -> None:
    """Write ``pre`` (N, 3) and ``post`` (M, 4) as a WASPSYN-layout HDF5 file, atomically; the file's
    attribute ``voxel_size`` holds the voxel size in nm (Z, Y, X)."""
    import h5py

    def write(tmp: str) -> None:
        with h5py.File(tmp, "w") as f:
            f.create_dataset("pre", data=np.asarray(pre).reshape(-1, 3))
            f.create_dataset("post", data=np.asarray(post).reshape(-1, 4))
            f.attrs["voxel_size"] = np.asarray(voxel_size, dtype=np.float64)

    atomic_write(path, write)


def write_synapse_demo_data(
    root: str | Path,
    *,
    shapes=None,
    seed: int = 0,
    overwrite: bool = False,
    target_style: SynapseStyle | str = "syn_target",
) -> dict[str, dict[str, str]]:
    """Generate and write the synapse demo volumes ``source_train``, ``target_train``, ``target_test``
    and ``source_test``.

    Each volume is a zarr v3 group ``<root>/<name>.zarr`` holding one OME-Zarr image ``raw``
    (uint8, ZYX, voxel size 8 nm isotropic, written with :func:`masktwins3d.io.create_volume`;
    the group's attributes record the style and seed under ``masktwins3d.synth``) and a point
    file ``<root>/<name>_points.h5`` in the WASPSYN layout: ``pre`` int64 (N, 3) z, y, x voxel
    coordinates of the T-bar centres, ``post`` int64 (M, 4) [row of ``pre``, z, y, x] of the
    post-synaptic densities, and the attribute ``voxel_size`` (nm). Every volume has its own
    seed derived from ``seed``, so the two target volumes are independent draws of one domain, and
    so are the two source volumes (``source_test`` is held out: a source model is judged on it
    with source labels only, before it adapts).
    A group is written under a temporary name and renamed when complete; a point file is written
    atomically.

    Args:
        root: folder to write into (created if missing).
        shapes: None for :data:`SYNAPSE_DEMO_SHAPES`; a mapping name -> (Z, Y, X) overriding some
            of them; or one (Z, Y, X) for every volume. Voxels.
        seed: base seed. Default 0.
        overwrite: replace volumes that exist; otherwise an existing one is an error (checked
            before anything is written).
        target_style: the style of both target volumes (a :class:`SynapseStyle` or a registered
            name); default ``"syn_target"``.

    Returns:
        ``{name: {"raw": "<root>/<name>.zarr/raw", "points": "<root>/<name>_points.h5"}}``.
    """
    import zarr

    root = Path(root)
    shapes = _resolve_shapes(shapes)
    target = get_synapse_style(target_style)
    if root.exists() and not root.is_dir():
        raise UserError(f"{root} exists and is not a folder; choose another demo data folder")
    targets = {name: (root / f"{name}.zarr", root / f"{name}_points.h5") for name in SYNAPSE_DEMO_VOLUMES}
    if not overwrite:
        for paths in targets.values():
            for path in paths:
                if path.exists():
                    raise UserError(f"{path} exists; pass --overwrite to replace it")
    root.mkdir(parents=True, exist_ok=True)
    specs = {}
    for index, (name, style_name) in enumerate(SYNAPSE_DEMO_VOLUMES.items()):
        style = target if style_name == "syn_target" else get_synapse_style(style_name)
        rng = np.random.default_rng(np.random.SeedSequence([int(seed), index]))
        raw, pre, post = generate_synapse_volume(style, shapes[name], rng)
        (final, points), tmp = targets[name], root / f".{name}.partial.zarr"
        if tmp.exists():
            shutil.rmtree(tmp)
        vol = create_volume(
            str(tmp / "raw"), raw.shape, raw.dtype, voxel_size=tuple(style.voxel_size), offset=(0, 0, 0)
        )
        vol[...] = raw
        attrs = {
            "synth": {"volume": name, "seed": int(seed), "style": asdict(style), "n_pre": len(pre), "n_post": len(post)}
        }
        zarr.open_group(str(tmp), mode="a").attrs.update({"masktwins3d": attrs})
        move_into_place(tmp, final)  # an earlier volume is set aside, and deleted once this one is in place
        _write_points(points, pre, post, style.voxel_size)
        specs[name] = {"raw": str(final / "raw"), "points": str(points)}
    return specs
