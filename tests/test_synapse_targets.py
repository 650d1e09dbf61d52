"""Synapse points as 3x3x3 training cubes and the 3D crop sampler."""

import numpy as np

from masktwins3d.data.augment import random_flips_3d
from masktwins3d.data.normalize import Normalizer
from masktwins3d.data.points import cube_targets
from masktwins3d.data.sampling import PointCrops


def test_cube_around_a_point_by_hand():
    out = cube_targets([np.array([[5, 5, 5]]), np.zeros((0, 3))], origin=(0, 0, 0), shape=(10, 10, 10))
    assert out.shape == (2, 10, 10, 10) and out.dtype == np.uint8
    assert out[0].sum() == 27 and out[1].sum() == 0
    assert out[0, 4:7, 4:7, 4:7].all()


def test_cubes_are_clipped_at_the_window_and_follow_the_origin():
    # a point one voxel outside the window still marks the 9 voxels of its cube inside
    out = cube_targets([np.array([[-1, 3, 3]])], origin=(0, 0, 0), shape=(4, 8, 8))
    assert out.sum() == 9 and out[0, 0, 2:5, 2:5].all()
    # the same point seen from a window starting at (10, 10, 10)
    shifted = cube_targets([np.array([[12.9, 12, 12]])], origin=(10, 10, 10), shape=(4, 4, 4))
    assert shifted[0, 1:4, 1:4, 1:4].all() and shifted.sum() == 27  # 12.9 truncates to 12
    far = cube_targets([np.array([[30, 30, 30]])], origin=(0, 0, 0), shape=(4, 4, 4))
    assert far.sum() == 0


def test_cube_edge_is_configurable():
    out = cube_targets([np.array([[4, 4, 4]])], origin=(0, 0, 0), shape=(9, 9, 9), cube=5)
    assert out.sum() == 125 and out[0, 2:7, 2:7, 2:7].all()


def test_flips_keep_image_and_targets_aligned():
    rng = np.random.default_rng(0)
    img = rng.random((8, 8, 8)).astype(np.float32)
    tgt = np.stack([(img > 0.9), (img < 0.1)]).astype(np.uint8)
    for _ in range(10):
        a, b = random_flips_3d([img, tgt], rng)
        assert np.array_equal(b[0], (a > 0.9).astype(np.uint8)) and np.array_equal(b[1], (a < 0.1).astype(np.uint8))


def test_point_crops_are_seeded_and_aligned():
    rng = np.random.default_rng(0)
    raw = rng.integers(0, 100, (20, 24, 24), dtype=np.uint8)
    pre = np.array([[10, 12, 12], [3, 4, 20]])
    post = np.array([[10, 12, 15]])
    raw[9:12, 11:14, 11:14] = 255  # the pre cube is bright in the image
    norm = Normalizer(mean=0.3, std=0.2)
    a = PointCrops(raw, [pre, post], (16, 16, 16), norm, np.random.default_rng(1)).sample(6)
    b = PointCrops(raw, [pre, post], (16, 16, 16), norm, np.random.default_rng(1)).sample(6)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    images, targets = a
    assert images.shape == (6, 1, 16, 16, 16) and targets.shape == (6, 2, 16, 16, 16)
    bright = norm(np.array([255], np.uint8))[0]
    for img, tgt in zip(images[:, 0], targets):
        inside = tgt[0] == 1
        # voxels of the bright pre cube coincide with its target wherever the cube is in the crop
        assert np.all(np.isclose(img[inside & (img == bright)], bright))
        assert np.array_equal(np.isclose(img, bright), inside & np.isclose(img, bright))
    unlabelled = PointCrops(raw, None, (16, 16, 16), norm, np.random.default_rng(1)).sample(2)
    assert unlabelled[1] is None and unlabelled[0].shape == (2, 1, 16, 16, 16)
