"""Mitochondria as wobbly capsules inside neurites, with the fields needed to draw their cristae."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy.special import ndtri

from .fields import box_coords, clip_box, coarse_smooth_noise
from .style import DomainStyle

FAR = np.float32(1e4)  # "no object nearby" signed distance, nm
_AXIS_SAMPLES = 9


@dataclass
class MitoFields:
    """Per-voxel fields of the mitochondria of one volume.

    Args:
        sd: signed distance to the nearest mitochondrion's outer membrane, nm (negative inside,
            :data:`FAR` far from any).
        cristae: cristae phase (cristae lie where it is close to an integer), dimensionless.
        tone: per-mitochondrion offset of the matrix stain (``style.mito_matrix_sd``).
        count: how many mitochondria were placed.
    """

    sd: np.ndarray
    cristae: np.ndarray
    tone: np.ndarray
    count: int

    @property
    def mask(self) -> np.ndarray:
        """uint8 0/1 mitochondria label."""
        return (self.sd < 0).astype(np.uint8)


def _direction(style: DomainStyle, rng: np.random.Generator) -> np.ndarray:
    """Unit axis (ZYX): along the neurite (z) with a tilt, or mostly in-plane."""
    if rng.random() < style.mito_axial:
        d = np.array([1.0, *rng.normal(0.0, 0.35, 2)])
    else:
        theta = rng.uniform(0, 2 * np.pi)
        d = np.array([rng.normal(0.0, 0.3), np.cos(theta), np.sin(theta)])
    return d / np.linalg.norm(d)


def _cristae_normal(axis: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Normal of the cristae lamellae: across the axis as seen in a section, else random in-plane."""
    inplane = np.array([0.0, axis[1], axis[2]])
    if np.linalg.norm(inplane) < 0.4:
        theta = rng.uniform(0, 2 * np.pi)
        inplane = np.array([0.0, np.cos(theta), np.sin(theta)])
    n = inplane + np.array([rng.normal(0, 0.1), *rng.normal(0, 0.25, 2)])
    n[0] = 0.0
    return n / np.linalg.norm(n)


def _stratified_normal(start: float, k: int) -> float:
    """k-th value of a golden-ratio (low-discrepancy) sequence mapped to a standard normal: any
    run of consecutive values covers the distribution evenly, so a volume with few mitochondria
    still shows the full spread of matrix tones and volumes of one style agree in their mean."""
    q = (start + k * 0.6180339887498949) % 1.0
    return float(ndtri(min(max(q, 0.02), 0.98)))


def _capsule_distance(
    a: np.ndarray, axis: np.ndarray, length: float, lo: np.ndarray, hi: np.ndarray, vs: np.ndarray
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Distance (nm) from every voxel of the box [lo, hi) to the segment ``a + t * length * axis``
    (t in [0, 1]), and the voxels' positions relative to ``a`` (three broadcastable arrays, nm)."""
    z, y, x = box_coords(lo, hi, vs)
    rel = [z - np.float32(a[0]), y - np.float32(a[1]), x - np.float32(a[2])]
    t = np.clip((rel[0] * axis[0] + rel[1] * axis[1] + rel[2] * axis[2]) / max(length, 1e-6), 0.0, 1.0)
    dist = np.sqrt(sum((rc - t * np.float32(length * ac)) ** 2 for rc, ac in zip(rel, axis)))
    return dist, rel


class _Placed:
    """Axis samples and outer radii of the mitochondria placed so far (for the overlap test)."""

    def __init__(self):
        self.points = np.zeros((0, 3))
        self.radii = np.zeros(0)

    def clear_of(self, pts: np.ndarray, r: float, gap: float) -> bool:
        if not self.points.size:
            return True
        dists = np.linalg.norm(pts[:, None, :] - self.points[None, :, :], axis=-1)
        return not np.any(dists < r + self.radii[None, :] + gap)

    def add(self, pts: np.ndarray, r: float) -> None:
        self.points = np.concatenate([self.points, pts])
        self.radii = np.concatenate([self.radii, np.full(len(pts), r)])


def place_mitochondria(
    style: DomainStyle,
    shape: Sequence[int],
    membrane_dist: np.ndarray,
    cell: np.ndarray,
    rng: np.random.Generator,
    max_tries: int = 3000,
) -> MitoFields:
    """Place non-overlapping mitochondria inside cells until ``style.mito_fraction`` is reached.

    Each candidate capsule (radius, length, axis and centre drawn from the style) is kept only
    if its axis stays in one cell, clear of the membrane, and clear of the mitochondria already
    placed; kept ones are drawn at once into the signed-distance field (a box around each, so
    the cost is per object, not per voxel and object).

    Args:
        style: domain style (sizes in nm, ``mito_fraction``).
        shape: volume shape (Z, Y, X), voxels.
        membrane_dist: distance to the nearest cell membrane, nm (from :func:`cell_membranes`).
        cell: cell index per voxel.
        rng: random generator.
        max_tries: candidates drawn at most (placement stops earlier once the fraction is met).
    """
    shape = tuple(int(n) for n in shape)
    vs = np.asarray(style.voxel_size, dtype=np.float64)
    extent = np.asarray(shape) * vs
    sd = np.full(shape, FAR, dtype=np.float32)
    phase = np.zeros(shape, dtype=np.float32)
    tone = np.zeros(shape, dtype=np.float32)
    wobble = style.mito_wobble * np.clip(coarse_smooth_noise(shape, vs, 1.5 * style.mito_radius, rng), -2.0, 2.0)
    bend = coarse_smooth_noise(shape, vs, 2.0 * style.cristae_period, rng)
    goal = style.mito_fraction * float(np.prod(shape))
    grow = 1.0 + 2.0 * style.mito_wobble  # the wobble field is clipped at 2 sd
    margin = 2.0 * style.membrane_width + 10.0
    placed = _Placed()
    filled = count = 0
    tone_start = rng.random()
    for _ in range(max_tries):
        if filled >= goal:
            break
        r = max(0.4 * style.mito_radius, rng.normal(style.mito_radius, style.mito_radius_sd))
        length = rng.uniform(*style.mito_length)
        axis = _direction(style, rng)
        centre = rng.uniform(0, 1, 3) * extent
        a, b = centre - 0.5 * length * axis, centre + 0.5 * length * axis
        pts = a + np.linspace(0, 1, _AXIS_SAMPLES)[:, None] * (b - a)
        vox = np.round(pts / vs).astype(int)
        inside = np.all((vox >= 0) & (vox < np.asarray(shape)), axis=1)
        if not inside.any():
            continue
        iv = tuple(vox[inside].T)
        if membrane_dist[iv].min() < r * grow + margin or np.unique(cell[iv]).size > 1:
            continue
        slack = 0.5 * length / (_AXIS_SAMPLES - 1)  # axis samples are this far from any axis point
        if not placed.clear_of(pts, r, margin + slack):
            continue
        box = clip_box(centre / vs, (np.abs(b - a) / 2 + r * grow + margin) / vs, shape)
        if box is None:
            continue
        lo, hi = box
        sl = tuple(slice(l, h) for l, h in zip(lo, hi))
        dist, rel = _capsule_distance(a, axis, length, lo, hi, vs)
        local = (dist - r * (1.0 + wobble[sl])).astype(np.float32)
        normal = _cristae_normal(axis, rng)
        ph = (rel[0] * normal[0] + rel[1] * normal[1] + rel[2] * normal[2]) / style.cristae_period
        ph = ph + 0.35 * bend[sl] + rng.uniform(0, 1)
        old = sd[sl]
        closer = local < old
        new = np.where(closer, local, old)
        filled += int(np.count_nonzero(new < 0) - np.count_nonzero(old < 0))
        sd[sl] = new
        phase[sl] = np.where(closer, ph, phase[sl])
        tone[sl] = np.where(closer, np.float32(style.mito_matrix_sd * _stratified_normal(tone_start, count)), tone[sl])
        placed.add(pts, r * grow)
        count += 1
    return MitoFields(sd=sd, cristae=phase, tone=tone, count=count)
