"""One synthetic EM volume with its mitochondria labels, from a style and a seed."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..errors import UserError
from .cells import cell_membranes
from .mito import place_mitochondria
from .render import image, stain_density
from .style import DomainStyle, get_style
from .vesicles import place_dense_bodies, place_vesicles


def generate_volume(
    style: DomainStyle | str,
    shape: Sequence[int] = (24, 256, 256),
    seed: int | np.random.Generator = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Draw an EM-like volume and its mitochondria mask.

    The same ``style``, ``shape`` and integer ``seed`` always give the same arrays.

    Args:
        style: a :class:`DomainStyle` or a registered name (``"source"``, ``"target"``).
        shape: (Z, Y, X) in voxels; the voxel size (nm) is ``style.voxel_size``. Default
            (24, 256, 256).
        seed: integer seed or a numpy Generator (which is advanced).

    Returns:
        ``(raw, mito)``: uint8 ZYX image, uint8 ZYX 0/1 mitochondria label.
    """
    style = get_style(style)
    shape = tuple(int(n) for n in shape)
    if len(shape) != 3 or min(shape) < 1:
        raise UserError(f"synthetic volume shape {shape} must be three positive sizes (Z, Y, X)")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    r_cells, r_mito, r_ves, r_dense, r_stain, r_image = rng.spawn(6)
    membrane, cell = cell_membranes(
        shape, style.voxel_size, style.cell_size, style.cell_elongation, style.cell_warp, r_cells
    )
    mito = place_mitochondria(style, shape, membrane, cell, r_mito)
    vesicles = place_vesicles(style, shape, membrane, mito.sd, r_ves)
    dense = place_dense_bodies(style, shape, membrane, mito.sd, r_dense)
    density = stain_density(style, membrane, mito.sd, mito.cristae, mito.tone, vesicles, dense, r_stain)
    return image(style, density, r_image), mito.mask
