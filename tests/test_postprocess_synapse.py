"""Probabilities to pre/post points: the AdaSyn protocol on hand-made maps."""

import warnings

import numpy as np
import pytest

from masktwins3d.errors import UserError
from masktwins3d.io import create_volume
from masktwins3d.postprocess.synapse import (
    DroppedPostsWarning, link_to_nearest, points_from_volume, probabilities_to_points, quantise,
)


def empty(shape=(12, 12, 12)):
    return np.zeros((2, *shape), np.float32)


def test_one_voxel_pre_is_dropped_posts_of_any_size_kept():
    p = empty()
    p[0, 2, 2, 2] = 0.9  # one voxel: dropped
    p[0, 8, 8, 8:10] = 0.9  # two voxels: kept
    p[1, 8, 2, 2] = 0.9  # one-voxel post: kept
    pts = probabilities_to_points(p)
    assert pts.pre.tolist() == [[8, 8, 8]]  # centroid (8, 8, 8.5) truncated
    assert pts.post.tolist() == [[0, 8, 2, 2]]
    assert probabilities_to_points(p, min_pre_voxels=1).pre.tolist() == [[2, 2, 2], [8, 8, 8]]
    with pytest.warns(DroppedPostsWarning, match="1 post components dropped"):
        assert probabilities_to_points(p, min_pre_voxels=3).pre.shape == (0, 3)


def test_centroids_are_truncated_and_in_raster_order():
    p = empty()
    p[0, 8, 5, 5] = p[0, 9, 5, 5] = p[0, 9, 5, 6] = 0.9  # centroid (8.67, 5, 5.33) -> (8, 5, 5)
    p[0, 3:5, 1, 1] = 0.9  # centroid z = 3.5 -> 3
    p[0, 0, 10, 9:12] = 0.9  # centroid (0, 10, 10)
    pts = probabilities_to_points(p)
    assert pts.pre.tolist() == [[0, 10, 10], [3, 1, 1], [8, 5, 5]]  # by first voxel in z, y, x order


def test_nearest_pre_linking():
    p = empty((20, 20, 20))
    p[0, 2:4, 2, 2] = 0.9  # pre row 0 at (2, 2, 2)
    p[0, 15:17, 15, 15] = 0.9  # pre row 1 at (15, 15, 15)
    p[1, 4, 3, 2] = 0.8  # post nearest to row 0
    p[1, 14, 14, 14] = 0.8  # post nearest to row 1 ...
    p[1, 9, 9, 9] = 0.8  # ... and this one too: 6*sqrt(3) vs 7*sqrt(3), no distance cap
    pts = probabilities_to_points(p)
    assert pts.pre.tolist() == [[2, 2, 2], [15, 15, 15]]
    assert pts.post.tolist() == [[0, 4, 3, 2], [1, 9, 9, 9], [1, 14, 14, 14]]


def test_equal_distances_link_to_the_lower_pre_row():
    pre = np.array([[0, 0, 10], [0, 0, 0], [0, 0, 20]])
    post = np.array([[0, 0, 5], [0, 0, 15], [0, 3, 5]])
    assert link_to_nearest(pre, post).tolist() == [0, 0, 0]
    assert link_to_nearest(pre[[1, 0, 2]], post).tolist() == [0, 1, 0]
    rng = np.random.default_rng(0)  # many exact ties on a small integer grid: the brute-force argmin
    pre, post = rng.integers(0, 6, (40, 3)), rng.integers(0, 6, (300, 3))
    brute = np.argmin(((post[:, None, :] - pre[None, :, :]) ** 2).sum(-1), axis=1)
    assert link_to_nearest(pre, post).tolist() == brute.tolist()


def test_26_connectivity_joins_corner_neighbours():
    p = empty()
    p[0, 1, 1, 1] = p[0, 2, 2, 2] = 0.9
    assert probabilities_to_points(p).pre.tolist() == [[1, 1, 1]]  # one component, centroid 1.5 -> 1


def test_uint8_quantisation_truncates_like_adasyn():
    p = np.float32([0.0, 0.5, 191.9 / 255, 192.1 / 255, 0.999, 1.0])
    assert quantise(p).tolist() == [0, 127, 191, 192, 254, 255]  # 0.5 * 255 = 127.5 -> 127
    rng = np.random.default_rng(1)
    for dtype in (np.float32, np.float64):
        r = rng.random(10000).astype(dtype)
        assert np.array_equal(quantise(r), (r * 255).astype(np.uint8))
    q = np.array([3, 250], np.uint8)
    assert quantise(q) is q


def test_threshold_edges_pre_191_background_192_foreground():
    assert int(255 * 0.75) == 191 and int(255 * 0.65) == 165
    p = empty()
    p[0, 2, 2, 2:4] = 191.9 / 255  # code 191: not > 191, background
    p[0, 8, 8, 2:4] = 192.1 / 255  # code 192: foreground
    assert probabilities_to_points(p).pre.tolist() == [[8, 8, 2]]
    q = (p * 255).astype(np.uint8)  # uint8 codes are used as they are
    assert q[0, 2, 2, 2] == 191 and q[0, 8, 8, 2] == 192
    assert probabilities_to_points(q).pre.tolist() == [[8, 8, 2]]
    p = empty()  # posts at delta 0.65: code 165 background, 166 foreground
    p[0, 6, 6, 8:10] = 0.9
    p[1, 3, 3, 3] = 165.5 / 255
    p[1, 6, 6, 6] = 166.5 / 255
    assert probabilities_to_points(p).post.tolist() == [[0, 6, 6, 6]]


def test_posts_without_any_pre_are_dropped_with_a_count():
    p = empty()
    p[1, 5, 5, 5] = p[1, 1, 1, 1] = 0.9
    p[0, 2, 2, 2:4] = 0.6  # below delta_pre 0.75
    with pytest.warns(DroppedPostsWarning, match="2 post components dropped"):
        pts = probabilities_to_points(p)
    assert pts.pre.shape == (0, 3) and pts.post.shape == (0, 4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a pre now passes: nothing dropped, no warning
        pts = probabilities_to_points(p, thresholds=(0.5, 0.5))
    assert pts.pre.tolist() == [[2, 2, 2]] and pts.post.tolist() == [[0, 1, 1, 1], [0, 5, 5, 5]]


def test_empty_map_gives_no_points():
    pts = probabilities_to_points(empty())
    assert pts.pre.shape == (0, 3) and pts.post.shape == (0, 4)


@pytest.mark.parametrize("prob,kwargs,match", [
    (np.zeros((3, 4, 4, 4), np.float32), {}, r"shape \(3, 4, 4, 4\) are not \(2, Z, Y, X\)"),
    (np.zeros((2, 4, 4), np.float32), {}, r"shape \(2, 4, 4\)"),
    (np.full((2, 4, 4, 4), 3.0, np.float32), {}, r"range from 3 to 3, not \[0, 1\]; give sigmoid/softmax probabilities"),
    (np.full((2, 4, 4, 4), np.nan, np.float32), {}, "NaN or inf"),
    (np.zeros((2, 4, 4, 4), np.int16), {}, "dtype int16"),
    (np.zeros((2, 4, 4, 4), np.float32), {"thresholds": (0.75,)}, "two values in \\[0, 1\\]"),
    (np.zeros((2, 4, 4, 4), np.float32), {"thresholds": (0.75, 1.5)}, "two values in \\[0, 1\\]"),
    (np.zeros((2, 4, 4, 4), np.float32), {"min_pre_voxels": 0}, "min_pre_voxels 0 must be a whole number >= 1"),
])
def test_bad_maps_and_options_are_user_errors(prob, kwargs, match):
    with pytest.raises(UserError, match=match):
        probabilities_to_points(prob, **kwargs)


def test_round_off_above_one_is_clipped():
    p = empty()
    p[0, 4, 4, 4:6] = 1.0000001
    assert probabilities_to_points(p).pre.tolist() == [[4, 4, 4]]


def test_points_from_a_volume_spec(tmp_path):
    p = empty((10, 12, 14))
    p[0, 3:5, 6, 6] = 0.95
    p[1, 4, 6, 9] = 0.9
    vol = create_volume(tmp_path / "prob.zarr", p.shape, np.float32, voxel_size=(8, 8, 8), axes="czyx")
    vol[:] = p
    pts, opened = points_from_volume(str(tmp_path / "prob.zarr"))
    assert pts.pre.tolist() == [[3, 6, 6]] and pts.post.tolist() == [[0, 4, 6, 9]]
    assert tuple(opened.voxel_size) == (8, 8, 8)
    with pytest.warns(DroppedPostsWarning):
        assert points_from_volume(opened, thresholds=(0.96, 0.5))[0].pre.shape == (0, 3)
    create_volume(tmp_path / "p3.zarr", (3, 4, 4, 4), np.float32, axes="czyx")
    with pytest.raises(UserError, match=r"p3.zarr.* has shape \(3, 4, 4, 4\); synapse post-processing needs a \(2, Z,"):
        points_from_volume(tmp_path / "p3.zarr")
    bad = create_volume(tmp_path / "logits.zarr", (2, 4, 4, 4), np.float32, axes="czyx")
    bad[:] = 5.0
    with pytest.raises(UserError, match="logits.zarr channel 0 \\(pre\\) range from 5 to 5"):
        points_from_volume(bad)
