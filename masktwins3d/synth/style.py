"""Domain styles: every parameter in which two synthetic EM volumes (domains) may differ.

A :class:`DomainStyle` has three groups of parameters:

* the **scene** (biology of the tissue, in nm): cell size, mitochondria size and density,
  vesicle size and density, cytoplasm texture;
* the **stain** (how dark each structure is, 0 = unstained, 1 = black); a structure may be
  lighter than the cytoplasm (negative contrast), which is how a "partial inversion" between
  staining protocols is expressed;
* the **imaging** (microscope and sectioning): voxel size (section thickness is
  ``voxel_size[0]``), point-spread blur, intensity mapping and noise.

Styles are immutable; derive a variant with ``dataclasses.replace(get_style("target"), ...)``.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

from ..errors import UserError


@dataclass(frozen=True)
class DomainStyle:
    """Parameters of one synthetic EM domain.

    Args:
        name: label of the style (informative only).
        voxel_size: voxel size in nm, ZYX; ``voxel_size[0]`` is the section thickness. Default
            (40, 8, 8).
        cell_size: mean spacing of neurite centres in nm (sets how many cells a section shows).
            Default 1200.
        cell_elongation: how many times longer neurites are along z than across (membranes are
            smooth in z). Default 3.
        cell_warp: amplitude of the smooth warp that bends the cell boundaries, as a fraction of
            ``cell_size``. Default 0.25.
        membrane_width: Gaussian sigma of a cell membrane's dark profile, nm. Default 9.
        mito_radius: mean radius of a mitochondrion's cylindrical body, nm. Default 110.
        mito_radius_sd: standard deviation of the radius between mitochondria, nm. Default 20.
        mito_length: (min, max) length of the cylindrical part, nm; uniform. Default (100, 500).
        mito_axial: probability that a mitochondrion runs along its neurite (roughly along z,
            round profiles in a section) rather than in an arbitrary direction. Default 0.5.
        mito_fraction: volume fraction that mitochondria fill; placement stops when reached or
            when no more fit. Default 0.09.
        mito_wobble: relative amplitude of the smooth irregularity of a mitochondrion's outline.
            Default 0.12.
        mito_rim_gap: distance between the outer and inner mitochondrial membrane, nm. Default 16.
        cristae_period: spacing of the cristae lamellae, nm. Default 45.
        dense_body_radius: mean radius of the dense bodies (solid dark organelles), nm. Default 90.
        dense_body_density: dense bodies per cubic micrometre. Default 3.
        vesicle_radius: mean vesicle radius, nm (sd 20 %). Default 20.
        vesicle_density: vesicles per cubic micrometre, grouped in clusters. Default 250.
        vesicle_cluster: number of vesicles per cluster (mean). Default 12.
        texture_scale: correlation length of the cytoplasm grain, nm. Default 25.
        texture_amplitude: standard deviation of the cytoplasm grain in stain units. Default 0.06.
        cytoplasm: stain of the cytoplasm. Default 0.25.
        membrane: extra stain at a cell membrane's centre. Default 0.55.
        mito_matrix: stain of the mitochondrial matrix (may be below ``cytoplasm``: lighter
            mitochondria). Default 0.48.
        mito_matrix_sd: standard deviation of the matrix stain between mitochondria. Default 0.04.
        mito_membrane: extra stain at each of the two mitochondrial membranes. Default 0.45.
        cristae: extra stain at a crista. Default 0.3.
        vesicle_rim: extra stain at a vesicle's membrane. Default 0.5.
        vesicle_lumen: stain inside a vesicle. Default 0.1.
        dense_body: stain of a dense body. Default 0.6.
        blur: in-plane Gaussian point-spread sigma, pixels. Default 1.
        section_blur: Gaussian sigma along z, sections: a section's image averages the tissue
            through its thickness while the label is the tissue at its middle (0.29 is a box of
            one section). Default 0.3.
        brightness: intensity (0..1) of unstained tissue. Default 0.95.
        contrast: intensity lost per unit of stain. Default 0.9.
        gamma: exponent applied to the intensity in [0, 1] (> 1 darkens mid-tones). Default 1.
        noise: standard deviation of additive Gaussian noise, intensity units. Default 0.06.
        shot_noise: signal-dependent (Poisson-like) noise: sigma = shot_noise * sqrt(intensity).
            Default 0.08.
        section_jitter: standard deviation of the per-section brightness offset. Default 0.01.
    """

    name: str = "custom"
    voxel_size: tuple[float, float, float] = (40.0, 8.0, 8.0)
    # scene
    cell_size: float = 1200.0
    cell_elongation: float = 3.0
    cell_warp: float = 0.25
    membrane_width: float = 9.0
    mito_radius: float = 110.0
    mito_radius_sd: float = 20.0
    mito_length: tuple[float, float] = (100.0, 500.0)
    mito_axial: float = 0.5
    mito_fraction: float = 0.09
    mito_wobble: float = 0.12
    mito_rim_gap: float = 16.0
    cristae_period: float = 45.0
    dense_body_radius: float = 90.0
    dense_body_density: float = 3.0
    vesicle_radius: float = 20.0
    vesicle_density: float = 250.0
    vesicle_cluster: float = 12.0
    texture_scale: float = 25.0
    texture_amplitude: float = 0.06
    # stain
    cytoplasm: float = 0.25
    membrane: float = 0.55
    mito_matrix: float = 0.48
    mito_matrix_sd: float = 0.04
    mito_membrane: float = 0.45
    cristae: float = 0.3
    vesicle_rim: float = 0.5
    vesicle_lumen: float = 0.1
    dense_body: float = 0.6
    # imaging
    blur: float = 1.0
    section_blur: float = 0.3
    brightness: float = 0.95
    contrast: float = 0.9
    gamma: float = 1.0
    noise: float = 0.06
    shot_noise: float = 0.08
    section_jitter: float = 0.01

    def __post_init__(self):
        if len(self.voxel_size) != 3 or min(self.voxel_size) <= 0:
            raise UserError(f"style {self.name!r}: voxel_size={self.voxel_size} must be three positive nm values (Z, Y, X)")
        lo, hi = self.mito_length
        if not 0 <= lo <= hi:
            raise UserError(f"style {self.name!r}: mito_length={self.mito_length} must be (min, max) with 0 <= min <= max")
        if self.mito_radius <= 0 or self.cell_size <= 0 or self.gamma <= 0:
            raise UserError(f"style {self.name!r}: mito_radius, cell_size and gamma must be positive")
        if not 0 <= self.mito_fraction < 0.5:
            raise UserError(f"style {self.name!r}: mito_fraction={self.mito_fraction} must be in [0, 0.5)")


SOURCE = DomainStyle(name="source")

# Another animal/region imaged on another microscope: thinner sections and larger pixels, smaller
# and paler mitochondria whose matrix stain varies more, finer cristae, smaller neurites, more
# vesicles, a coarser cytoplasm grain, lower contrast with a gamma, more blur and more noise.
# Calibrated with the demo's protocol (configs/mito_demo.yaml, then every method warm-started
# from the source model, masktwins3d.demo): the source model's EMA reaches about half of the
# oracle's IoU on this target and noadapt continued far less, so the oracle - noadapt gap is
# well over 20 IoU points (BENCHMARKS.md, "demo calibration"); the milder style used before
# (gamma 1.6, blur 1.6, noise 0.09) left a gap of about 10 once every method kept an EMA.
TARGET = DomainStyle(
    name="target",
    voxel_size=(30.0, 10.0, 10.0),
    cell_size=1000.0,
    mito_radius=90.0,
    mito_radius_sd=15.0,
    mito_length=(80.0, 400.0),
    mito_fraction=0.08,
    cristae_period=35.0,
    vesicle_density=450.0,
    texture_scale=40.0,
    texture_amplitude=0.10,
    mito_matrix=0.36,
    mito_matrix_sd=0.06,
    mito_membrane=0.4,
    cristae=0.2,
    blur=2.0,
    brightness=0.92,
    contrast=0.75,
    gamma=2.0,
    noise=0.12,
    shot_noise=0.12,
    section_jitter=0.02,
)

STYLES: dict[str, DomainStyle] = {"source": SOURCE, "target": TARGET}
"""Every named synthetic style of both tracks, by name: the mitochondria styles here, the synapse
styles (:class:`~.synapse_style.SynapseStyle`) added by :mod:`.synapse_style`."""


IMAGING_FIELDS = ("blur", "section_blur", "brightness", "contrast", "gamma", "noise", "shot_noise", "section_jitter")
"""The imaging parameters of a style (microscope and sectioning; the voxel size left out)."""


def shifted_style(source: DomainStyle, target: DomainStyle, strength: float, name: str | None = None,
                  only: tuple[str, ...] | None = None) -> DomainStyle:
    """The style ``strength`` of the way from ``source`` to ``target``, along every parameter (or ``only``).

    Each numeric field becomes ``source + strength * (target - source)``, element by element for
    tuples; integer fields are rounded. ``strength`` 0 gives ``source``'s parameters, 1
    ``target``'s, above 1 a harsher shift in the same direction. The result is checked as any
    style is (a parameter pushed out of its range is a one-line :class:`UserError`).

    Args:
        source / target: two styles of one kind.
        strength: position along the shift, at least 0.
        name: the new style's name (default ``"<target>@<strength>"``).
        only: move only these fields (e.g. :data:`IMAGING_FIELDS`); every other field keeps
            ``target``'s value. Default: all.
    """
    if type(source) is not type(target):
        raise UserError(f"shifted_style: {source.name!r} and {target.name!r} are different kinds of style")
    if not strength >= 0:
        raise UserError(f"shift strength {strength} must be at least 0")
    names = {f.name for f in fields(source)} - {"name"}
    unknown = sorted(set(only or ()) - names)
    if unknown:
        raise UserError(f"shifted_style: {unknown[0]!r} is not a style parameter; choose from {sorted(names)}")

    def step(a, b):
        if isinstance(a, tuple):
            return tuple(step(x, y) for x, y in zip(a, b))
        value = a + strength * (b - a)
        return int(round(value)) if isinstance(a, int) and isinstance(b, int) else float(value)

    moved = names if only is None else set(only)
    changes = {n: step(getattr(source, n), getattr(target, n)) if n in moved else getattr(target, n) for n in names}
    return replace(source, name=name or f"{target.name}@{strength:g}", **changes)


_KIND_NAMES = {"DomainStyle": "synthetic style", "SynapseStyle": "synthetic synapse style"}


def get_style(style: DomainStyle | str, kind: type[DomainStyle] = DomainStyle) -> DomainStyle:
    """Return the named style of ``kind``, or ``style`` itself if it is one.

    Args:
        style: a ``kind`` instance or a key of :data:`STYLES` naming a style of exactly that kind
            (``"source"``, ``"target"`` for :class:`DomainStyle`; ``"syn_source"``,
            ``"syn_target"`` for :class:`~.synapse_style.SynapseStyle`).
        kind: the style class wanted (default :class:`DomainStyle`).
    """
    if isinstance(style, kind):
        return style
    names = sorted(name for name, known in STYLES.items() if type(known) is kind)
    if isinstance(style, str) and style in names:
        return STYLES[style]
    raise UserError(f"{_KIND_NAMES.get(kind.__name__, 'synthetic style')} {style!r} is unknown; use one of {names}")
