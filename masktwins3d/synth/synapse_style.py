"""Synapse styles: the parameters of one synthetic isotropic EM domain with synapses.

A :class:`SynapseStyle` is a :class:`~masktwins3d.synth.style.DomainStyle` (cells, mitochondria,
free vesicles, dense bodies, cytoplasm grain, stain and imaging; see its docstring) with new
defaults for Drosophila-like neuropil imaged at 8 nm isotropic (FIB-SEM, as WASPSYN), plus the
synapse parameters:

* **scene** (nm): synapse density and spacing, T-bar size, how many post-synaptic densities
  (PSDs) face a T-bar and how far they spread, the vesicle cloud around the T-bar, decoy
  membrane patches (dark thickenings with no T-bar) and the width of a vesicle's membrane;
* **stain**: how dark the T-bar, the PSDs and the decoy patches are (0 = unstained, 1 = black).

Registered styles (:data:`SYNAPSE_STYLES`):

* ``syn_source``: the labelled domain. Large T-bars in big clouds of light, dark-rimmed
  vesicles; crisp imaging (little blur and noise), a fine cytoplasm grain, a linear intensity
  mapping.
* ``syn_target``: another fly, stain and microscope. Objects: smaller T-bars, smaller vesicles
  with a dark lumen (dark dots rather than rings) in sparser clouds, thinner neurites with
  darker, wider membranes (so PSDs stand out less), more synapses, more dense-core vesicles and
  decoy patches. Imaging: a coarser grain, lower contrast with a gamma of 1.5 (a darker image,
  another histogram shape), more blur (more along z than in-plane) and about 1.5 times the
  noise. In the image a T-bar's contrast-to-noise is about half the source's, yet T-bars
  remain plainly visible.

Styles are immutable; derive a variant with ``dataclasses.replace(get_synapse_style("syn_target"), ...)``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import UserError
from .style import STYLES, DomainStyle, get_style


@dataclass(frozen=True)
class SynapseStyle(DomainStyle):
    """Parameters of one synthetic isotropic EM domain with synapses.

    Inherits every :class:`DomainStyle` field; these defaults differ from it: ``voxel_size``
    (8, 8, 8); ``cell_size`` 420 (thin neurites); ``cell_elongation`` 1.2 (neurites run in all
    directions in neuropil); ``cell_warp`` 0.3; ``membrane_width`` 6; ``mito_radius`` 75,
    ``mito_radius_sd`` 15, ``mito_length`` (50, 300), ``mito_axial`` 0.3, ``mito_fraction``
    0.03, ``cristae_period`` 40 (mitochondria are a background structure here); free vesicles
    ``vesicle_radius`` 20, ``vesicle_density`` 120, ``vesicle_cluster`` 10; dense bodies
    (dense-core vesicles, decoys for T-bars) ``dense_body_radius`` 32, ``dense_body_density``
    18; ``texture_scale`` 20, ``texture_amplitude`` 0.05; ``cytoplasm`` 0.22, ``membrane``
    0.5, ``vesicle_rim`` 0.55, ``vesicle_lumen`` 0.08, ``dense_body`` 0.62; ``blur`` 0.8,
    ``section_blur`` 0.8 (isotropic), ``noise`` 0.05, ``shot_noise`` 0.06, ``section_jitter``
    0.008.

    Args:
        synapse_density: synapses (T-bars) per cubic micrometre; placement stops earlier when
            no more fit. Default 40 (denser than real neuropil, so a 48^3 crop usually holds
            one).
        synapse_spacing: minimum distance between two T-bar centres, nm. Default 150.
        tbar_height: distance from the membrane to the top of the platform, nm. Default 60.
        tbar_platform_radius: radius of the platform (the bar of the T), nm. Default 50.
        tbar_platform_thickness: thickness of the platform, nm. Default 22.
        tbar_pedestal_radius: radius of the pedestal (the stem of the T), nm. Default 22.
        tbar_size_sd: relative standard deviation of a T-bar's size between synapses. Default
            0.12.
        post_count: (min, max) number of PSDs facing one T-bar (polyadic synapses); uniform,
            fewer where a PSD does not fit (every T-bar keeps at least one). Default (1, 4).
        post_spread: lateral distance of the PSD centres from the T-bar axis when there are
            several, nm. Default 34.
        post_depth: distance of a post point (the PSD centre) from the membrane, on the post
            side, nm. Default 14.
        psd_radius: radius of a PSD patch along the membrane, nm. Default 26.
        psd_thickness: thickness of a PSD, nm. Default 18.
        cloud_vesicles: mean number of vesicles around one T-bar (Poisson; fewer where they do
            not fit). Default 40.
        cloud_radius: spread (Gaussian sd) of the vesicle cloud along the membrane, nm. Default
            70.
        patch_density: decoy membrane thickenings (dark on both sides, no T-bar, no vesicles)
            per cubic micrometre. Default 10.
        vesicle_rim_width: Gaussian sigma of a vesicle membrane's dark profile (free and cloud
            vesicles alike), nm. Default 5.
        tbar: stain of a T-bar. Default 0.8.
        psd: extra stain of a PSD (added to the membrane's). Default 0.5.
        patch: extra stain of a decoy patch. Default 0.3.
    """

    name: str = "syn_custom"
    voxel_size: tuple[float, float, float] = (8.0, 8.0, 8.0)
    cell_size: float = 420.0
    cell_elongation: float = 1.2
    cell_warp: float = 0.3
    membrane_width: float = 6.0
    mito_radius: float = 75.0
    mito_radius_sd: float = 15.0
    mito_length: tuple[float, float] = (50.0, 300.0)
    mito_axial: float = 0.3
    mito_fraction: float = 0.03
    cristae_period: float = 40.0
    dense_body_radius: float = 32.0
    dense_body_density: float = 18.0
    vesicle_radius: float = 20.0
    vesicle_density: float = 120.0
    vesicle_cluster: float = 10.0
    texture_scale: float = 20.0
    texture_amplitude: float = 0.05
    cytoplasm: float = 0.22
    membrane: float = 0.5
    vesicle_rim: float = 0.55
    vesicle_lumen: float = 0.08
    dense_body: float = 0.62
    blur: float = 0.8
    section_blur: float = 0.8
    noise: float = 0.05
    shot_noise: float = 0.06
    section_jitter: float = 0.008
    # synapse scene
    synapse_density: float = 40.0
    synapse_spacing: float = 150.0
    tbar_height: float = 60.0
    tbar_platform_radius: float = 50.0
    tbar_platform_thickness: float = 22.0
    tbar_pedestal_radius: float = 22.0
    tbar_size_sd: float = 0.12
    post_count: tuple[int, int] = (1, 4)
    post_spread: float = 34.0
    post_depth: float = 14.0
    psd_radius: float = 26.0
    psd_thickness: float = 18.0
    cloud_vesicles: float = 40.0
    cloud_radius: float = 70.0
    patch_density: float = 10.0
    vesicle_rim_width: float = 5.0
    # synapse stain
    tbar: float = 0.8
    psd: float = 0.5
    patch: float = 0.3

    def __post_init__(self):
        super().__post_init__()
        lo, hi = self.post_count
        if not 1 <= lo <= hi:
            raise UserError(
                f"style {self.name!r}: post_count={self.post_count} must be (min, max) with 1 <= min <= max"
            )
        sizes = (self.tbar_height, self.tbar_platform_radius, self.tbar_platform_thickness, self.tbar_pedestal_radius,
                 self.psd_radius, self.psd_thickness, self.synapse_spacing)
        if min(sizes) <= 0:
            raise UserError(f"style {self.name!r}: T-bar, PSD sizes and synapse_spacing must be positive nm values")
        if self.synapse_density < 0 or self.cloud_vesicles < 0 or self.patch_density < 0:
            raise UserError(f"style {self.name!r}: synapse_density, cloud_vesicles and patch_density must be >= 0")


SYN_SOURCE = SynapseStyle(name="syn_source")

# Another fly, another stain and another microscope: the shift acts on the objects (smaller
# T-bars; PSDs on darker, wider membranes; smaller vesicles with a dark lumen; sparser clouds;
# thinner neurites; more synapses and more decoys) and on the imaging (coarser grain; lower
# contrast with a gamma; more blur, more along z; about 1.5x the noise) at once. A T-bar's
# stain is higher than the source's only to keep it visible through the gamma, blur and noise.
SYN_TARGET = SynapseStyle(
    name="syn_target",
    cell_size=360.0,
    membrane=0.6,
    membrane_width=7.0,
    vesicle_radius=16.0,
    vesicle_density=200.0,
    vesicle_rim=0.3,
    vesicle_lumen=0.4,
    dense_body_radius=28.0,
    dense_body_density=22.0,
    dense_body=0.55,
    texture_scale=42.0,
    texture_amplitude=0.06,
    cytoplasm=0.28,
    synapse_density=48.0,
    tbar_height=52.0,
    tbar_platform_radius=42.0,
    tbar_platform_thickness=20.0,
    tbar_pedestal_radius=18.0,
    post_spread=30.0,
    psd_radius=22.0,
    cloud_vesicles=28.0,
    cloud_radius=60.0,
    patch_density=20.0,
    tbar=0.9,
    psd=0.4,
    patch=0.3,
    blur=1.1,
    section_blur=1.3,
    brightness=0.9,
    contrast=0.8,
    gamma=1.5,
    noise=0.1,
    shot_noise=0.08,
    section_jitter=0.02,
)

#: style name -> :class:`SynapseStyle` (also in :data:`~.style.STYLES`, the one registry)
SYNAPSE_STYLES: dict[str, SynapseStyle] = {"syn_source": SYN_SOURCE, "syn_target": SYN_TARGET}
STYLES.update(SYNAPSE_STYLES)


def get_synapse_style(style: SynapseStyle | str) -> SynapseStyle:
    """Return the named synapse style (``"syn_source"``, ``"syn_target"``), or ``style`` itself
    (:func:`~.style.get_style` with ``kind=SynapseStyle``)."""
    return get_style(style, SynapseStyle)
