"""Synthetic synapses in isotropic EM volumes: T-bars, vesicle clouds and post-synaptic densities.

A fly (polyadic) synapse, as drawn here: on the pre-synaptic side of a cell membrane a T-bar (a
dark pedestal standing on the membrane, capped by a wider platform) sits in a cloud of
vesicles; across the membrane, one to four neighbouring neurites carry a post-synaptic density
(PSD, a dark thickening of the membrane on their side). The ground truth follows WASPSYN: one
pre point at the centre of each T-bar, one post point at the centre of each PSD.

Decoys keep detection from being trivial: free vesicle clusters and dense-core vesicles (dark
round bodies) away from the membranes, and dark membrane thickenings with no T-bar.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from ..errors import UserError
from .cells import cell_membranes
from .fields import box_coords, clip_box
from .mito import FAR, place_mitochondria
from .render import image, stain_density
from .synapse_style import SynapseStyle, get_synapse_style
from .vesicles import place_dense_bodies, place_vesicles, sphere_sd


@dataclass
class SynapseFields:
    """Per-voxel fields and ground truth of the synapses of one volume.

    Args:
        tbar_sd: signed distance to the nearest T-bar, nm (negative inside, FAR far away).
        psd_sd: signed distance to the nearest post-synaptic density, nm.
        patch_sd: signed distance to the nearest decoy membrane thickening, nm.
        vesicle_centres: (V, 3) centres of the vesicles of the synaptic clouds, nm.
        vesicle_radii: (V,) their radii, nm.
        pre: (N, 3) int64 z, y, x voxel coordinates of the T-bar centres.
        post: (M, 4) int64 [pre row, z, y, x] of the PSD centres.
    """

    tbar_sd: np.ndarray
    psd_sd: np.ndarray
    patch_sd: np.ndarray
    vesicle_centres: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))
    vesicle_radii: np.ndarray = field(default_factory=lambda: np.zeros(0))
    pre: np.ndarray = field(default_factory=lambda: np.zeros((0, 3), np.int64))
    post: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.int64))


class _Sampler:
    """Nearest-voxel look-ups of ZYX fields at points given in nm."""

    def __init__(self, shape: Sequence[int], voxel_size: Sequence[float]):
        self.shape = np.asarray(shape)
        self.vs = np.asarray(voxel_size, dtype=np.float64)

    def voxels(self, pts_nm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Rounded voxel indices (K, 3) and whether each lies in the volume."""
        vox = np.round(np.atleast_2d(pts_nm) / self.vs).astype(np.int64)
        return vox, np.all((vox >= 0) & (vox < self.shape), axis=1)

    def values(self, array: np.ndarray, pts_nm: np.ndarray, outside=None) -> np.ndarray:
        """``array`` at the nearest voxel of every point; ``outside`` where a point is outside."""
        vox, inside = self.voxels(pts_nm)
        out = np.full(len(vox), outside if outside is not None else 0, dtype=array.dtype)
        out[inside] = array[tuple(vox[inside].T)]
        return out


def _basis(n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two unit vectors orthogonal to the unit vector ``n`` and to each other."""
    helper = np.array([1.0, 0.0, 0.0]) if abs(n[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    e1 = np.cross(n, helper)
    e1 /= np.linalg.norm(e1)
    return e1, np.cross(n, e1)


def _cylinder_sd(u, rl, u0: float, u1: float, radius: float, rounding: float = 0.0):
    """Signed distance to a cylinder along the axis coordinate ``u`` in [u0, u1] of ``radius``,
    given the axial (``u``) and radial (``rl``) coordinates; ``rounding`` rounds its edges (nm)."""
    qa = np.abs(u - np.float32(0.5 * (u0 + u1))) - np.float32(0.5 * (u1 - u0) - rounding)
    qr = rl - np.float32(radius - rounding)
    outside = np.sqrt(np.square(np.maximum(qa, 0)) + np.square(np.maximum(qr, 0)))
    return outside + np.minimum(np.maximum(qa, qr), 0) - np.float32(rounding)


@dataclass(frozen=True)
class _TBar:
    """One T-bar: ``base`` on the membrane (nm), ``axis`` (unit, into the pre cell), sizes (nm),
    in-plane ``ellipticity`` of the platform and its direction ``e1``."""

    base: np.ndarray
    axis: np.ndarray
    height: float
    platform_radius: float
    platform_thickness: float
    pedestal_radius: float
    ellipticity: float
    e1: np.ndarray

    @property
    def extent(self) -> float:
        return self.height + self.platform_radius

    def sd(self, rel: list) -> np.ndarray:
        """Signed distance (nm) at positions ``rel`` relative to ``base`` (three broadcastable
        arrays, nm)."""
        a, e1 = self.axis, self.e1
        e2 = np.cross(a, e1)
        u = rel[0] * np.float32(a[0]) + rel[1] * np.float32(a[1]) + rel[2] * np.float32(a[2])
        v1 = rel[0] * np.float32(e1[0]) + rel[1] * np.float32(e1[1]) + rel[2] * np.float32(e1[2])
        v2 = rel[0] * np.float32(e2[0]) + rel[1] * np.float32(e2[1]) + rel[2] * np.float32(e2[2])
        rl = np.sqrt(np.square(v1 * np.float32(self.ellipticity)) + np.square(v2 / np.float32(self.ellipticity)))
        top, t = self.height, self.platform_thickness
        stem = _cylinder_sd(u, rl, 0.0, top - 0.5 * t, self.pedestal_radius, 0.3 * self.pedestal_radius)
        platform = _cylinder_sd(u, rl, top - t, top, self.platform_radius, 0.4 * t)
        return np.minimum(stem, platform)

    def sd_points(self, pts: np.ndarray) -> np.ndarray:
        """Signed distance (nm) at (K, 3) points in nm."""
        rel = np.atleast_2d(pts) - self.base
        return self.sd([rel[:, 0], rel[:, 1], rel[:, 2]])


def _draw(target: np.ndarray, vs: np.ndarray, centre: np.ndarray, half_nm: float, sd_fn) -> None:
    """Write min(target, sd_fn(rel)) in a box of half-size ``half_nm`` around ``centre`` (nm);
    ``sd_fn`` takes positions relative to ``centre``."""
    box = clip_box(centre / vs, np.full(3, half_nm) / vs, target.shape)
    if box is None:
        return
    lo, hi = box
    z, y, x = box_coords(lo, hi, vs)
    rel = [z - np.float32(centre[0]), y - np.float32(centre[1]), x - np.float32(centre[2])]
    sl = tuple(slice(a, b) for a, b in zip(lo, hi))
    np.minimum(target[sl], sd_fn(rel).astype(np.float32), out=target[sl])


def _disc_sd(axis: np.ndarray, radius: float, thickness: float):
    """sd function of a flat disc (normal ``axis``) centred at the origin of its coordinates."""

    def sd(rel):
        u = rel[0] * np.float32(axis[0]) + rel[1] * np.float32(axis[1]) + rel[2] * np.float32(axis[2])
        r2 = sum(np.square(r) for r in rel) - np.square(u)
        rl = np.sqrt(np.maximum(r2, 0))
        return _cylinder_sd(u, rl, -0.5 * thickness, 0.5 * thickness, radius, 0.4 * thickness)

    return sd


def _membrane_normal(membrane_dist: np.ndarray, cell: np.ndarray, vox: np.ndarray, vs: np.ndarray):
    """Unit gradient of the membrane distance at ``vox`` (pointing away from the nearest membrane,
    averaged over the 3x3x3 neighbours in the same cell), and its length; None near an edge or a
    ridge of the field."""
    lo = vox - 2
    if np.any(lo < 0) or np.any(vox + 3 > np.asarray(membrane_dist.shape)):
        return None
    sl = tuple(slice(a, a + 5) for a in lo)
    grads = np.gradient(membrane_dist[sl].astype(np.float64), *vs)
    same = cell[sl][1:4, 1:4, 1:4] == cell[tuple(vox)]
    g = np.array([gr[1:4, 1:4, 1:4][same].mean() for gr in grads])
    norm = float(np.linalg.norm(g))
    if norm < 0.75:
        return None
    return g / norm, norm


class _Placer:
    """Places synapses one candidate at a time against the fields of one volume."""

    def __init__(self, style: SynapseStyle, membrane_dist, cell, mito_sd, rng: np.random.Generator):
        self.style, self.md, self.cell, self.mito_sd, self.rng = style, membrane_dist, cell, mito_sd, rng
        self.shape = membrane_dist.shape
        self.vs = np.asarray(style.voxel_size, dtype=np.float64)
        self.at = _Sampler(self.shape, self.vs)
        w = style.membrane_width
        lo, hi = 1.0 * self.vs.min(), max(2.0 * self.vs.min(), 2.0 * w)
        margin = np.zeros(self.shape, bool)
        margin[3:-3, 3:-3, 3:-3] = True
        self.anchors = np.flatnonzero((membrane_dist >= lo) & (membrane_dist <= hi) & margin)

    def random_site(self):
        """A random membrane point seen from one side: (point on the membrane in nm, unit normal
        into the cell on that side, that cell's id); None where the normal is ill-defined."""
        if not self.anchors.size:
            return None
        vox = np.array(np.unravel_index(self.anchors[self.rng.integers(self.anchors.size)], self.shape))
        found = _membrane_normal(self.md, self.cell, vox, self.vs)
        if found is None:
            return None
        n, gnorm = found
        point = vox * self.vs
        return point - n * float(self.md[tuple(vox)]) / gnorm, n, int(self.cell[tuple(vox)])

    def _crossing(self, start: np.ndarray, direction: np.ndarray, own: int):
        """Walk from ``start`` along ``direction`` (from -16 to +48 nm) to the first point outside
        cell ``own``; return (distance along, other cell id) or None."""
        steps = np.arange(-16.0, 48.0, 2.0)
        pts = start + steps[:, None] * direction
        ids = self.at.values(self.cell, pts, outside=-1)
        start_at = np.flatnonzero(ids == own)
        if not start_at.size:
            return None
        after = np.flatnonzero((ids != own) & (np.arange(len(ids)) > start_at[0]))
        if not after.size or ids[after[0]] < 0:
            return None
        return float(steps[after[0]] - 1.0), int(ids[after[0]])

    def tbar(self, base: np.ndarray, n: np.ndarray) -> _TBar:
        """A T-bar standing on the membrane point ``base`` (nm), its axis ``n`` tilted a little,
        its size drawn around the style's."""
        s = self.style
        size = max(0.6, 1.0 + s.tbar_size_sd * self.rng.standard_normal())
        axis = n + self.rng.normal(0.0, 0.12, 3)
        axis /= np.linalg.norm(axis)
        e1, _ = _basis(axis)
        return _TBar(
            base=base - 0.5 * s.membrane_width * axis,
            axis=axis,
            height=s.tbar_height * size + 0.5 * s.membrane_width,
            platform_radius=s.tbar_platform_radius * size,
            platform_thickness=s.tbar_platform_thickness * size,
            pedestal_radius=s.tbar_pedestal_radius * size,
            ellipticity=float(self.rng.uniform(0.85, 1.15)),
            e1=e1,
        )

    def tbar_fits(self, tb: _TBar, own: int) -> bool:
        """Axis and platform rim inside cell ``own``, clear of other membranes and mitochondria."""
        a = tb.axis
        e1, e2 = _basis(a)
        u = np.linspace(0.5 * self.style.membrane_width, tb.height + 8.0, 8)
        axis_pts = tb.base + u[:, None] * a
        ang = np.linspace(0, 2 * np.pi, 8, endpoint=False)
        rim = tb.base + (tb.height - 0.5 * tb.platform_thickness) * a + tb.platform_radius * (
            np.cos(ang)[:, None] * e1 + np.sin(ang)[:, None] * e2
        )
        pts = np.concatenate([axis_pts, rim])
        _, inside = self.at.voxels(pts)
        ids = self.at.values(self.cell, pts[inside], outside=-1)
        if np.any(ids != own):
            return False
        md_axis = self.at.values(self.md, axis_pts[inside[: len(u)]])
        if np.any(md_axis < 0.6 * u[inside[: len(u)]] - 4.0):
            return False
        if np.any(self.at.values(self.md, rim[inside[len(u):]]) < 0.8 * self.style.membrane_width):
            return False
        return bool(np.all(self.at.values(self.mito_sd, pts[inside]) > 20.0))

    def posts(self, base: np.ndarray, n: np.ndarray, own: int) -> list[tuple[np.ndarray, np.ndarray, int]]:
        """PSDs across the membrane from a T-bar: list of (centre nm, normal into the post cell, cell id)."""
        s = self.style
        lo, hi = s.post_count
        k = int(self.rng.integers(lo, hi + 1))
        e1, e2 = _basis(n)
        theta0 = self.rng.uniform(0, 2 * np.pi)
        out = []
        for i in range(k):
            if k == 1:
                radius, theta = 0.3 * s.post_spread * self.rng.random(), theta0
            else:
                radius = s.post_spread * self.rng.uniform(0.85, 1.2)
                theta = theta0 + 2 * np.pi * i / k + self.rng.normal(0, 0.25)
            q = base + radius * (np.cos(theta) * e1 + np.sin(theta) * e2)
            found = self._crossing(q, -n, own)
            if found is None:
                continue
            t0, other = found
            centre = q - n * (t0 + s.post_depth)
            vox, inside = self.at.voxels(centre)
            if not inside[0] or self.cell[tuple(vox[0])] != other:
                continue
            if self.md[tuple(vox[0])] < 0.5 * s.post_depth or self.mito_sd[tuple(vox[0])] < s.psd_radius:
                continue
            if any(np.linalg.norm(centre - c) < 3.5 * self.vs.min() for c, _, _ in out):
                continue
            out.append((centre, -n, other))
        return out

    def cloud(self, tb: _TBar, own: int) -> tuple[np.ndarray, np.ndarray]:
        """Vesicles around a T-bar on its side of the membrane: centres (nm) and radii (nm)."""
        s = self.style
        count = int(self.rng.poisson(s.cloud_vesicles))
        if count == 0:
            return np.zeros((0, 3)), np.zeros(0)
        a = tb.axis
        e1, e2 = _basis(a)
        m = 3 * count
        u = tb.height * self.rng.uniform(0.2, 1.0, m) + np.abs(self.rng.normal(0, 0.7 * s.cloud_radius, m))
        lat = self.rng.normal(0, s.cloud_radius, (m, 2))
        pts = tb.base + u[:, None] * a + lat[:, :1] * e1 + lat[:, 1:] * e2
        radii = np.maximum(self.rng.normal(s.vesicle_radius, 0.15 * s.vesicle_radius, m), 0.5 * s.vesicle_radius)
        _, inside = self.at.voxels(pts)
        ok = inside & (self.at.values(self.cell, pts, outside=-1) == own)
        ok &= self.at.values(self.md, pts) > radii + s.membrane_width
        ok &= self.at.values(self.mito_sd, pts, outside=FAR) > radii + 10.0
        ok &= tb.sd_points(pts) > radii + 6.0
        keep: list[int] = []
        for i in np.flatnonzero(ok):
            if len(keep) >= count:
                break
            if keep:
                d = np.linalg.norm(pts[keep] - pts[i], axis=1)
                if np.any(d < radii[keep] + radii[i] + 3.0):
                    continue
            keep.append(int(i))
        return pts[keep], radii[keep]


def _place_decoys(style: SynapseStyle, patch_sd: np.ndarray, placer: "_Placer", centres: np.ndarray, n_patch: int,
                  rng: np.random.Generator) -> None:
    """Draw ``n_patch`` decoy membrane thickenings into ``patch_sd`` (in place), on membranes at least
    0.7 ``style.synapse_spacing`` from every T-bar centre in ``centres``; 20 candidates per patch at most."""
    vs = np.asarray(style.voxel_size, dtype=np.float64)
    w = style.membrane_width
    for _ in range(20 * n_patch):
        if n_patch <= 0:
            break
        site = placer.random_site()
        if site is None:
            continue
        base, n, _ = site
        if len(centres) and np.min(np.linalg.norm(centres - base, axis=1)) < 0.7 * style.synapse_spacing:
            continue
        radius = style.psd_radius * rng.uniform(0.9, 1.6)
        _draw(patch_sd, vs, base, radius + 3 * w, _disc_sd(n, radius, 2 * style.psd_thickness))
        n_patch -= 1


def place_synapses(
    style: SynapseStyle,
    shape: Sequence[int],
    membrane_dist: np.ndarray,
    cell: np.ndarray,
    mito_sd: np.ndarray,
    rng: np.random.Generator,
    max_tries_per_synapse: int = 60,
) -> SynapseFields:
    """Place synapses (T-bar, vesicle cloud, PSDs) and decoy membrane thickenings.

    ``style.synapse_density`` times the volume (µm³) synapses are wanted (rounded; a fixed
    number, so that volumes of one style and shape score alike). A candidate is a random point
    next to a membrane; it is kept when the T-bar fits in its cell (clear of other membranes
    and mitochondria), lies at least ``style.synapse_spacing`` from every T-bar placed, its
    centre is inside the volume and at least one PSD (centre inside the volume, in a
    neighbouring cell) faces it. Decoy patches (``style.patch_density``)
    are centred on membranes away from the synapses; their number is Poisson.

    Args:
        style: synapse style (sizes in nm, densities per µm³).
        shape: volume shape (Z, Y, X), voxels.
        membrane_dist: distance to the nearest cell membrane, nm (:func:`cell_membranes`).
        cell: cell index per voxel.
        mito_sd: signed distance to the nearest mitochondrion, nm.
        rng: random generator.
        max_tries_per_synapse: candidates drawn per wanted synapse at most.
    """
    shape = tuple(int(n) for n in shape)
    vs = np.asarray(style.voxel_size, dtype=np.float64)
    volume_um3 = float(np.prod(np.asarray(shape) * vs)) * 1e-9
    fields = SynapseFields(*(np.full(shape, FAR, dtype=np.float32) for _ in range(3)))
    placer = _Placer(style, membrane_dist, cell, mito_sd, rng)
    wanted = int(round(style.synapse_density * volume_um3))
    pre, post, ves_c, ves_r = [], [], [], []
    centres = np.zeros((0, 3))
    w = style.membrane_width
    for _ in range(max_tries_per_synapse * wanted):
        if len(pre) >= wanted:
            break
        site = placer.random_site()
        if site is None:
            continue
        base, n, own = site
        tb = placer.tbar(base, n)
        centre = tb.base + (0.55 * tb.height + 0.25 * w) * tb.axis
        cvox, inside = placer.at.voxels(centre)
        if not inside[0] or (len(centres) and np.min(np.linalg.norm(centres - centre, axis=1)) < style.synapse_spacing):
            continue
        if not placer.tbar_fits(tb, own):
            continue
        psds = placer.posts(base, n, own)
        if not psds:
            continue
        row = len(pre)
        pre.append(cvox[0])
        centres = np.concatenate([centres, centre[None]])
        _draw(fields.tbar_sd, vs, tb.base, tb.extent + 3 * w, lambda rel, tb=tb: tb.sd(rel))
        for pc, pn, _ in psds:
            post.append([row, *placer.at.voxels(pc)[0][0]])
            _draw(fields.psd_sd, vs, pc, style.psd_radius + 3 * w, _disc_sd(pn, style.psd_radius, style.psd_thickness))
        c, r = placer.cloud(tb, own)
        ves_c.append(c)
        ves_r.append(r)

    _place_decoys(style, fields.patch_sd, placer, centres, int(rng.poisson(style.patch_density * volume_um3)), rng)

    fields.pre = np.array(pre, dtype=np.int64).reshape(-1, 3)
    fields.post = np.array(post, dtype=np.int64).reshape(-1, 4)
    if ves_c:
        fields.vesicle_centres = np.concatenate(ves_c)
        fields.vesicle_radii = np.concatenate(ves_r)
    return fields


def synapse_stain(
    style: SynapseStyle, density: np.ndarray, vesicle_sd: np.ndarray, fields: SynapseFields
) -> np.ndarray:
    """Add vesicles, T-bars (solid, replacing what is there), PSDs and decoy patches (added to
    the membrane stain) to a stain density; returns the new float32 density.

    Vesicles are drawn here rather than by :func:`~masktwins3d.synth.render.stain_density`
    so that their membrane has its own width (``style.vesicle_rim_width``): at 8 nm voxels a
    cell-membrane-thin rim would vanish in the blur.

    Args:
        style: synapse style (``vesicle_rim``, ``vesicle_lumen``, ``tbar``, ``psd``, ``patch``
            stains; ``membrane_width`` sets the softness of the edges).
        density: stain density from :func:`~masktwins3d.synth.render.stain_density` (drawn
            without vesicles).
        vesicle_sd: signed distance to the nearest vesicle membrane, nm.
        fields: the synapse fields of the same volume.
    """
    wr = np.float32(style.vesicle_rim_width)
    lumen = np.clip(0.5 - vesicle_sd / np.float32(0.5 * wr), 0.0, 1.0)
    rim = np.exp(np.float32(-0.5) * np.square(vesicle_sd / wr))
    dens = density * (1 - lumen) + lumen * np.float32(style.vesicle_lumen) + np.float32(style.vesicle_rim) * rim
    edge = np.float32(0.6 * style.membrane_width)
    body = np.clip(0.5 - fields.tbar_sd / edge, 0.0, 1.0)
    dens = dens * (1 - body) + body * np.float32(style.tbar)
    dens += np.float32(style.psd) * np.clip(0.5 - fields.psd_sd / edge, 0.0, 1.0)
    dens += np.float32(style.patch) * np.clip(0.5 - fields.patch_sd / edge, 0.0, 1.0)
    return dens.astype(np.float32, copy=False)


def generate_synapse_volume(
    style: SynapseStyle | str,
    shape: Sequence[int] = (64, 128, 128),
    seed: int | np.random.Generator = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draw an isotropic EM-like volume with synapses and its WASPSYN-style ground truth.

    Cells (warped Voronoi neurites), a few mitochondria, synapses (T-bar, vesicle cloud, 1-4
    PSDs), free vesicle clusters, dense-core vesicles and decoy membrane thickenings are
    stained and imaged with the style's parameters. The same ``style``, ``shape`` and integer
    ``seed`` always give the same arrays.

    Args:
        style: a :class:`SynapseStyle` or a registered name (``"syn_source"``, ``"syn_target"``).
        shape: (Z, Y, X) in voxels (voxel size ``style.voxel_size``, 8 nm isotropic by default).
            Default (64, 128, 128).
        seed: integer seed or a numpy Generator (which is advanced).

    Returns:
        ``(raw, pre, post)``: uint8 ZYX image; int64 (N, 3) z, y, x voxel coordinates of the
        T-bar centres; int64 (M, 4) [row of ``pre``, z, y, x] of the PSD centres. Every point lies
        inside the volume.
    """
    style = get_synapse_style(style)
    shape = tuple(int(n) for n in shape)
    if len(shape) != 3 or min(shape) < 8:
        raise UserError(f"synthetic synapse volume shape {shape} must be three sizes (Z, Y, X) of at least 8 voxels")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    r_cells, r_mito, r_syn, r_ves, r_dense, r_stain, r_image = rng.spawn(7)
    membrane, cell = cell_membranes(
        shape, style.voxel_size, style.cell_size, style.cell_elongation, style.cell_warp, r_cells
    )
    mito = place_mitochondria(style, shape, membrane, cell, r_mito)
    syn = place_synapses(style, shape, membrane, cell, mito.sd, r_syn)
    obstacles = np.minimum(mito.sd, syn.tbar_sd)
    vesicles = place_vesicles(style, shape, membrane, obstacles, r_ves)
    if len(syn.vesicle_radii):
        cloud = sphere_sd(shape, style.voxel_size, syn.vesicle_centres, syn.vesicle_radii, 3.0 * style.membrane_width)
        np.minimum(vesicles, cloud, out=vesicles)
    dense = place_dense_bodies(style, shape, membrane, obstacles, r_dense)
    no_vesicles = np.full(shape, FAR, dtype=np.float32)
    density = stain_density(style, membrane, mito.sd, mito.cristae, mito.tone, no_vesicles, dense, r_stain)
    density = synapse_stain(style, density, vesicles, syn)
    return image(style, density, r_image), syn.pre, syn.post
