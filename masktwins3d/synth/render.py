"""The imaging model: scene fields -> stain density -> blurred, gamma-mapped, noisy uint8 sections."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from .fields import coarse_smooth_noise
from .style import DomainStyle


def _ridge(d: np.ndarray, width: float) -> np.ndarray:
    """Gaussian line profile of sigma ``width`` (nm) at distance ``d`` (nm)."""
    return np.exp(np.float32(-0.5 / width**2) * np.square(d))


def stain_density(
    style: DomainStyle,
    membrane_dist: np.ndarray,
    mito_sd: np.ndarray,
    cristae_phase: np.ndarray,
    mito_tone: np.ndarray,
    vesicle_sd: np.ndarray,
    dense_sd: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """How much stain each voxel holds (0 none, about 1 black), before imaging.

    Args:
        style: domain style (stain levels, widths in nm, texture).
        membrane_dist: distance to the nearest cell membrane, nm.
        mito_sd: signed distance to the nearest mitochondrion's outer membrane, nm.
        cristae_phase: cristae phase inside mitochondria (lamellae at integer values).
        mito_tone: per-mitochondrion offset of the matrix stain.
        vesicle_sd: signed distance to the nearest vesicle membrane, nm.
        dense_sd: signed distance to the nearest dense body, nm.
        rng: random generator (cytoplasm grain, cristae gaps).
    """
    shape = membrane_dist.shape
    vs = style.voxel_size
    w = style.membrane_width
    dens = np.float32(style.cytoplasm) + np.float32(style.texture_amplitude) * coarse_smooth_noise(
        shape, vs, style.texture_scale, rng
    )
    dens += np.float32(style.membrane) * _ridge(membrane_dist, w)

    # mitochondria: matrix, cristae (broken lamellae, kept off the envelope), double membrane
    inside = np.clip(0.5 - mito_sd / np.float32(w), 0.0, 1.0)  # soft edge over ~one membrane width
    near = mito_sd < 4 * w + style.mito_rim_gap
    inner = np.clip((-mito_sd - style.mito_rim_gap - w) / np.float32(w), 0.0, 1.0)
    crista_line = np.cos(np.float32(2 * np.pi) * cristae_phase)
    crista_line = np.clip((crista_line - 0.6) / 0.4, 0.0, 1.0) ** 2
    gaps = coarse_smooth_noise(shape, vs, 1.5 * style.cristae_period, rng) > -0.6
    dens = np.where(
        near,
        dens * (1 - inside)
        + inside * (np.float32(style.mito_matrix) + mito_tone + np.float32(style.cristae) * crista_line * inner * gaps)
        + np.float32(style.mito_membrane)
        * (_ridge(mito_sd, 0.8 * w) + _ridge(mito_sd + style.mito_rim_gap, 0.8 * w)),
        dens,
    ).astype(np.float32)

    # vesicles: lighter lumen, dark membrane
    near = vesicle_sd < 3 * w
    lumen = np.clip(0.5 - vesicle_sd / np.float32(0.5 * w), 0.0, 1.0)
    dens = np.where(
        near,
        dens * (1 - lumen) + lumen * np.float32(style.vesicle_lumen) + np.float32(style.vesicle_rim) * _ridge(vesicle_sd, 0.7 * w),
        dens,
    ).astype(np.float32)

    # dense bodies: solid, dark, soft-edged
    near = dense_sd < 3 * w
    body = np.clip(0.5 - dense_sd / np.float32(w), 0.0, 1.0)
    dens = np.where(near, dens * (1 - body) + body * np.float32(style.dense_body), dens).astype(np.float32)
    return dens


def image(style: DomainStyle, density: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Image a stain density like a serial-section EM: blur, intensity mapping, noise, uint8.

    Intensity ``I = brightness - contrast * density``, blurred in-plane by ``style.blur``
    pixels and across sections by ``style.section_blur`` sections, clipped to [0, 1], raised to ``style.gamma``, offset per section by
    ``style.section_jitter``, then Gaussian plus shot noise
    (sigma = sqrt(noise^2 + shot_noise^2 * I)) and quantised to uint8.

    Args:
        style: domain style (imaging parameters).
        density: stain density, ZYX float32.
        rng: random generator (noise, section offsets).
    """
    inten = np.float32(style.brightness) - np.float32(style.contrast) * density
    if style.blur > 0 or style.section_blur > 0:
        sigma = (style.section_blur, style.blur, style.blur)
        inten = ndimage.gaussian_filter(inten, sigma=sigma, mode="reflect", truncate=3.0)
    inten = np.clip(inten, 0.0, 1.0) ** np.float32(style.gamma)
    inten += np.float32(style.section_jitter) * rng.standard_normal((inten.shape[0], 1, 1), dtype=np.float32)
    sigma = np.sqrt(np.float32(style.noise) ** 2 + np.float32(style.shot_noise) ** 2 * np.clip(inten, 0.0, 1.0))
    inten += sigma * rng.standard_normal(inten.shape, dtype=np.float32)
    return np.clip(np.round(inten * 255.0), 0, 255).astype(np.uint8)
