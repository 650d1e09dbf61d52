"""Probabilities to pre/post points: the AdaSyn protocol on hand-made maps."""

import numpy as np
import pytest

from masktwins3d.errors import UserError
from masktwins3d.postprocess.synapse import probabilities_to_points, quantise


def empty(shape=(12, 12, 12)):
    return np.zeros((2, *shape), np.float32)


def test_one_voxel_pre_is_dropped_two_voxels_kept():
    p = empty()
    p[0, 2, 2, 2] = 0.9
    p[0, 8, 8, 8:10] = 0.9
    pts = probabilities_to_points(p)
    assert pts.pre.tolist() == [[8, 8, 8]]  # centroid (8, 8, 8.5) truncated


def test_centroids_are_truncated():
    p = empty()
    p[0, 3:5, 1, 1] = 0.9  # centroid z = 3.5 -> 3
    p[0, 8, 5, 5] = p[0, 9, 5, 5] = p[0, 9, 5, 6] = 0.9  # centroid (8.67, 5, 5.33) -> (8, 5, 5)
    pts = probabilities_to_points(p)
    assert sorted(pts.pre.tolist()) == [[3, 1, 1], [8, 5, 5]]


def test_post_components_of_any_size_and_nearest_pre_linking():
    p = empty((20, 20, 20))
    p[0, 2:4, 2, 2] = 0.9  # pre near the origin
    p[0, 15:17, 15, 15] = 0.9  # pre far away
    p[1, 14, 14, 14] = 0.8  # one-voxel post near the far pre
    p[1, 4, 3, 2] = 0.8  # post near the first pre
    pts = probabilities_to_points(p)
    pre = pts.pre.tolist()
    links = {tuple(row[1:]): pre[int(row[0])] for row in pts.post.tolist()}
    assert links[(14.0, 14.0, 14.0)] == [15, 15, 15] and links[(4.0, 3.0, 2.0)] == [2, 2, 2]


def test_26_connectivity_joins_diagonal_voxels():
    p = empty()
    p[0, 1, 1, 1] = p[0, 2, 2, 2] = 0.9
    assert len(probabilities_to_points(p).pre) == 1


def test_uint8_quantisation_edge_at_the_threshold():
    # delta 0.75 -> int(255 * 0.75) = 191; foreground is q > 191
    assert quantise(np.float32([191.9 / 255]))[0] == 191
    p = empty()
    p[0, 2, 2, 2:4] = 191.9 / 255  # truncates to 191: background
    p[0, 8, 8, 2:4] = 192.1 / 255  # truncates to 192: foreground
    assert probabilities_to_points(p).pre.tolist() == [[8, 8, 2]]
    q = (p * 255).astype(np.uint8)  # uint8 input is used as is
    assert probabilities_to_points(q).pre.tolist() == [[8, 8, 2]]
    # posts at delta 0.65 -> int(165.75) = 165
    p = empty()
    p[1, 3, 3, 3] = 165.5 / 255
    p[1, 6, 6, 6] = 166.5 / 255
    p[0, 6, 6, 8:10] = 0.9
    assert probabilities_to_points(p).post[:, 1:].tolist() == [[6, 6, 6]]


def test_posts_without_any_pre_are_dropped_and_thresholds_are_configurable():
    p = empty()
    p[1, 5, 5, 5] = 0.9
    pts = probabilities_to_points(p)
    assert pts.pre.shape == (0, 3) and pts.post.shape == (0, 4)
    p[0, 2, 2, 2:4] = 0.6
    assert len(probabilities_to_points(p).pre) == 0
    assert len(probabilities_to_points(p, thresholds=(0.5, 0.5)).pre) == 1


def test_wrong_channel_count_is_a_user_error():
    with pytest.raises(UserError, match="2 channels"):
        probabilities_to_points(np.zeros((3, 4, 4, 4)))
