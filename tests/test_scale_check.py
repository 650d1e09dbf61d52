"""The label-free voxel-size check (data/scale_check.py): hand-computed radii, zoom invariance,
the warning when a stated voxel size is off, and equivalent diameters of drawn disks."""

import numpy as np
import pytest
from scipy import ndimage

from masktwins3d.data.scale_check import (
    TOLERANCE,
    check_object_scale,
    check_scale,
    correlation_length,
    equivalent_diameters,
    level_radius,
    radial_autocorrelation,
    _power,
)
from masktwins3d.errors import UserError


def _blobs(side: int, sigma: float, seed: int = 0, nz: int = 2) -> np.ndarray:
    """Smoothed white noise: structure of a known size (``sigma`` pixels), ZYX float32."""
    rng = np.random.default_rng(seed)
    out = np.stack([ndimage.gaussian_filter(rng.standard_normal((side, side)), sigma, mode="wrap") for _ in range(nz)])
    out = (out - out.min()) / (out.max() - out.min())
    return out.astype(np.float32)


def test_level_radius_interpolates_between_bins():
    radii = np.array([0.0, 2.0, 4.0, 6.0])
    acf = np.array([1.0, 0.8, 0.4, 0.1])
    # falls below 0.5 between r=2 (0.8) and r=4 (0.4): 2 + 2 * 0.3 / 0.4 = 3.5
    assert level_radius(radii, acf, 0.5) == pytest.approx(3.5)
    assert np.isnan(level_radius(radii, np.array([1.0, 0.9, 0.8, 0.7]), 0.5))


def test_radial_autocorrelation_of_a_gaussian_blob_field_matches_theory():
    # white noise smoothed by a Gaussian of sigma s has an autocorrelation exp(-r^2 / (4 s^2)):
    # half maximum at r = 2 s sqrt(ln 2)
    sigma = 4.0
    img = _blobs(256, sigma, nz=1)[0]
    radii, acf = radial_autocorrelation(_power(img), img.shape, (1.0, 1.0))
    assert acf[0] == pytest.approx(1.0)
    assert level_radius(radii, acf, 0.5) == pytest.approx(2 * sigma * np.sqrt(np.log(2)), rel=0.1)


def test_constant_image_has_no_length():
    assert np.isnan(correlation_length(np.full((2, 64, 64), 0.5, np.float32), (10, 10, 10)))


def test_zooming_by_k_scales_the_length_in_pixels_by_k():
    img = _blobs(192, 3.0)
    base = correlation_length(img, (1, 1, 1))
    zoomed = ndimage.zoom(img, (1, 2, 2), order=1)
    assert correlation_length(zoomed, (1, 1, 1)) == pytest.approx(2 * base, rel=0.1)
    # stated correctly (half the pixel) the physical lengths agree
    assert correlation_length(zoomed, (1, 0.5, 0.5)) == pytest.approx(base, rel=0.1)


def test_check_scale_is_silent_when_the_voxel_sizes_are_right_and_warns_when_one_is_off():
    src = _blobs(128, 3.0, seed=1)
    tgt = ndimage.zoom(src, (1, 1.5, 1.5), order=1)  # the same image at 1.5x finer pixels
    right = check_scale(src, tgt, (10, 10, 10), (10, 10 / 1.5, 10 / 1.5))
    assert right.warning is None and right.ratio == pytest.approx(1.0, abs=TOLERANCE)
    wrong = check_scale(src, tgt, (10, 10, 10), (10, 10, 10))  # the target's pixel stated 1.5x too coarse
    assert wrong.ratio < 1 / (1 + TOLERANCE)
    assert "data.target.voxel_size" in wrong.warning and "\n" not in wrong.warning
    # the suggested pixel is close to the true one
    suggested = 10 * wrong.ratio
    assert suggested == pytest.approx(10 / 1.5, rel=0.1)
    d = wrong.as_dict()
    assert set(d) == {"source_nm", "target_nm", "ratio", "warning"}


def test_unmeasurable_volume_gives_a_note_not_an_error():
    res = check_scale(_blobs(64, 2.0), np.zeros((1, 64, 64), np.float32), (10, 10, 10), (10, 10, 10))
    assert np.isnan(res.ratio) and "could not be measured" in res.warning
    assert res.as_dict()["ratio"] is None


def test_bad_arguments_are_one_line_user_errors():
    with pytest.raises(UserError, match="voxel_size"):
        correlation_length(_blobs(32, 2.0), (10, 0, 10))
    with pytest.raises(UserError, match="tolerance"):
        check_scale(_blobs(64, 2.0), _blobs(64, 2.0), (1, 1, 1), (1, 1, 1), tolerance=0)


def test_equivalent_diameters_of_drawn_disks():
    yy, xx = np.mgrid[:64, :64]
    mask = np.zeros((1, 64, 64), np.uint8)
    mask[0][(yy - 20) ** 2 + (xx - 20) ** 2 <= 8**2] = 1
    mask[0][(yy - 45) ** 2 + (xx - 45) ** 2 <= 5**2] = 1
    mask[0, 0:3, 60:64] = 1  # touches the border: ignored
    d = np.sort(equivalent_diameters(mask, (10, 2, 2)))
    areas = np.sort([((yy - 45) ** 2 + (xx - 45) ** 2 <= 25).sum(), ((yy - 20) ** 2 + (xx - 20) ** 2 <= 64).sum()])
    np.testing.assert_allclose(d, 2 * np.sqrt(areas * 4.0 / np.pi))


def test_object_scale_flags_a_target_whose_objects_look_twice_as_large():
    yy, xx = np.mgrid[:64, :64]
    src = np.zeros((1, 64, 64), np.uint8)
    src[0][(yy - 32) ** 2 + (xx - 32) ** 2 <= 6**2] = 1
    tgt = np.zeros((1, 64, 64), np.uint8)
    tgt[0][(yy - 32) ** 2 + (xx - 32) ** 2 <= 12**2] = 1
    assert check_object_scale(src, tgt, (10, 10, 10), (10, 5, 5)).warning is None
    res = check_object_scale(src, tgt, (10, 10, 10), (10, 10, 10))
    assert res.ratio == pytest.approx(0.5, rel=0.05) and res.warning is not None
