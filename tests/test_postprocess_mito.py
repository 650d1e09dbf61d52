"""Whole-volume mitochondria post-processing: mask threshold rule, instances, connectivity, minimum size."""

import numpy as np
import pytest
from scipy import ndimage

from masktwins3d.errors import UserError
from masktwins3d.postprocess.mito import (
    label_dtype,
    mask_to_instances,
    probability_to_instances,
    probability_to_mask,
)


def test_mask_is_p_at_least_threshold_exactly_as_float64():
    p = np.array([0.0, 0.3, 0.4999999, 0.5, 0.7, 1.0], np.float32)
    assert probability_to_mask(p).tolist() == [False, False, False, True, True, True]
    rng = np.random.default_rng(0)
    for dtype in (np.float16, np.float32, np.float64):
        for t in (0.1, 0.3, 0.5, 0.7, 1 / 3):
            near = np.array([t], np.float64).astype(dtype)
            values = np.concatenate([rng.random(200).astype(dtype), near, np.nextafter(near, dtype(0)), np.nextafter(near, dtype(1))])
            expected = values.astype(np.float64) >= t
            assert np.array_equal(probability_to_mask(values, t), expected), (dtype, t)


def test_uint8_is_read_as_q_over_255():
    q = np.arange(256, dtype=np.uint8)
    for t in (0.5, 0.75, 1.0):
        assert np.array_equal(probability_to_mask(q, t), q / 255.0 >= t)
    assert probability_to_mask(q).sum() == 128  # 128/255 >= 0.5


@pytest.mark.parametrize(
    "prob, threshold, needle",
    [
        (np.array([0.2, np.nan], np.float32), 0.5, "NaN"),
        (np.array([-3.0, 4.0], np.float32), 0.5, "logits"),
        (np.array([0, 1], np.int32), 0.5, "dtype int32"),
        (np.array([0.2], np.float32), 0.0, "--threshold"),
        (np.array([0.2], np.float32), 1.5, "--threshold"),
    ],
)
def test_bad_probabilities_and_thresholds(prob, threshold, needle):
    with pytest.raises(UserError, match=needle):
        probability_to_mask(prob, threshold)


def test_instances_follow_connectivity():
    mask = np.zeros((2, 2, 9), bool)
    mask[0, 0, 0] = mask[1, 1, 1] = True  # corner neighbours
    mask[0, 0, 4] = mask[1, 0, 4] = True  # face neighbours
    mask[0, 0, 7] = mask[1, 1, 7] = True  # edge neighbours
    assert mask_to_instances(mask, 26).max() == 3
    lab18 = mask_to_instances(mask, 18)
    assert lab18.max() == 4 and lab18[0, 0, 0] != lab18[1, 1, 1] and lab18[0, 0, 7] == lab18[1, 1, 7]
    lab6 = mask_to_instances(mask, 6)
    assert lab6.max() == 5 and lab6[0, 0, 4] == lab6[1, 0, 4]


@pytest.mark.parametrize("connectivity, rank", [(6, 1), (18, 2), (26, 3)])
def test_instances_equal_scipy_label_numbering(connectivity, rank):
    rng = np.random.default_rng(connectivity)
    mask = rng.random((9, 11, 13)) < 0.3
    ours = mask_to_instances(mask, connectivity)
    theirs, n = ndimage.label(mask, structure=ndimage.generate_binary_structure(3, rank))
    assert ours.dtype == np.uint32 and ours.max() == n
    assert np.array_equal(ours, theirs)  # both number in raster order of first voxels


def test_min_size_removes_and_renumbers_in_order():
    mask = np.zeros((1, 5, 9), bool)
    mask[0, 0, 0:3] = True  # 3 voxels -> label 1
    mask[0, 0, 5] = True  # 1 voxel -> removed
    mask[0, 2, 0:2] = True  # 2 voxels -> label 2
    mask[0, 4, 4:8] = True  # 4 voxels -> label 3
    lab = mask_to_instances(mask, 26, min_size=2)
    assert lab[0, 0, 0] == 1 and lab[0, 0, 5] == 0 and lab[0, 2, 0] == 2 and lab[0, 4, 4] == 3 and lab.max() == 3
    assert mask_to_instances(mask, 26, min_size=4).max() == 1
    with pytest.raises(UserError, match="--min-size"):
        mask_to_instances(mask, 26, min_size=0)
    with pytest.raises(UserError, match="--connectivity"):
        mask_to_instances(mask, 8)


def test_probability_to_instances_and_dtype():
    p = np.zeros((2, 4, 4), np.float32)
    p[0, :2, :2] = 0.5
    p[1, 3, 3] = 0.9
    lab = probability_to_instances(p)
    assert lab.max() == 2 and lab[0, 0, 0] == 1 and lab[1, 3, 3] == 2
    assert label_dtype(2**32 - 1) == np.uint32 and label_dtype(2**32) == np.uint64
