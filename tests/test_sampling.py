"""Foreground-aware rejection of labelled crops (data.sampling.Rejection) in the 2D and 3D samplers."""

import warnings

import numpy as np
import pytest

from masktwins3d.data.normalize import volume_normalizer
from masktwins3d.data.sampling import PointCrops, Rejection, SectionCrops
from masktwins3d.errors import UserError


def section_pair(fg_x: int = 4):
    """A 4 x 64 x 64 volume whose labels are foreground only in the first ``fg_x`` columns."""
    raw = np.random.default_rng(0).integers(0, 255, (4, 64, 64), dtype=np.uint8)
    label = np.zeros_like(raw)
    label[:, :, :fg_x] = 1
    return raw, label


def crops(raw, label, rejection, n=200, seed=1):
    sampler = SectionCrops(raw, label, (16, 16), volume_normalizer(raw), np.random.default_rng(seed), augment=False, rejection=rejection)
    return sampler.sample(n)


def test_keep_counts_foreground_and_draws_only_when_short():
    rule = Rejection(min_foreground=0.25, reject_p=1.0)
    rng = np.random.default_rng(0)
    state = rng.bit_generator.state
    assert rule.keep(np.array([[1, 0], [0, 0]]), rng)  # 1/4 is enough
    assert rng.bit_generator.state == state  # no number drawn
    assert not rule.keep(np.array([[0, 0], [0, 0]]), rng)
    target = np.zeros((2, 2, 2, 2), np.uint8)
    target[1, 0, 0, :] = 1  # any channel counts: 2 of 8 voxels
    assert rule.keep(target, rng)
    assert Rejection(min_foreground=0.5, reject_p=0.0).keep(np.zeros((2, 2)), rng)


def test_off_by_default_gives_the_same_crops_as_before():
    raw, label = section_pair()
    sampler = SectionCrops(raw, label, (16, 16), volume_normalizer(raw), np.random.default_rng(1), augment=False)
    images, labels = sampler.sample(20)
    again = crops(raw, label, Rejection(), n=20)
    assert np.array_equal(images, again[0]) and np.array_equal(labels, again[1])


def test_rejection_raises_the_share_of_crops_with_foreground():
    raw, label = section_pair()
    _, plain = crops(raw, label, Rejection())
    _, picky = crops(raw, label, Rejection(min_foreground=0.01, reject_p=1.0, max_tries=1000))
    share = lambda labels: float(np.mean([lab.any() for lab in labels]))  # noqa: E731
    assert share(plain) < 0.2  # windows starting at x 0..3 of 49 touch the 4 columns: about 8 %
    assert share(picky) == 1.0
    some = share(crops(raw, label, Rejection(min_foreground=0.01, reject_p=0.5))[1])
    assert share(plain) < some < 1.0


def test_labels_stay_aligned_with_their_images():
    raw = np.random.default_rng(0).integers(0, 255, (2, 32, 32), dtype=np.uint8)
    label = (raw > 200).astype(np.uint8)
    sampler = SectionCrops(raw, label, (8, 8), lambda a: a.astype(np.float32), np.random.default_rng(3), augment=True,
                           rejection=Rejection(min_foreground=0.2, reject_p=0.9))
    images, labels = sampler.sample(30)
    assert np.array_equal(images[:, 0] > 200, labels.astype(bool))


def test_exhausted_tries_take_the_last_crop_and_warn_once():
    raw, label = section_pair(fg_x=0)  # no foreground anywhere
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _, labels = crops(raw, label, Rejection(min_foreground=0.1, reject_p=1.0, max_tries=3), n=5)
    assert labels.shape == (5, 16, 16) and not labels.any()
    messages = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    assert len(messages) == 1 and "3 crops in a row" in messages[0] and "data.min_foreground" in messages[0]


def test_unlabelled_target_is_never_rejected():
    raw, _ = section_pair()
    images, labels = crops(raw, None, Rejection(min_foreground=0.5, reject_p=1.0), n=5)
    assert labels is None and images.shape == (5, 1, 16, 16)


def test_point_crops_reject_crops_without_points():
    raw = np.random.default_rng(0).integers(0, 255, (32, 32, 32), dtype=np.uint8)
    points = [np.array([[4.0, 4.0, 4.0]]), np.zeros((0, 3))]  # one pre in a corner, no post
    sampler = PointCrops(raw, points, (8, 8, 8), volume_normalizer(raw), np.random.default_rng(0), augment=False,
                         rejection=Rejection(min_foreground=1e-6, reject_p=1.0, max_tries=500))
    _, targets = sampler.sample(10)
    assert all(t[0].any() for t in targets)


@pytest.mark.parametrize("kwargs, key", [({"min_foreground": 1.5}, "data.min_foreground"), ({"reject_p": -0.1}, "data.reject_p"),
                                         ({"max_tries": 0}, "data.max_tries")])
def test_bad_settings_are_one_line_errors(kwargs, key):
    with pytest.raises(UserError, match=key):
        Rejection(**kwargs)


def test_fixed_validation_crops_are_deterministic_and_leave_the_sampler_alone():
    import numpy as np

    from masktwins3d.data.normalize import Normalizer
    from masktwins3d.data.sampling import SectionCrops

    rng = np.random.default_rng(0)
    raw = rng.integers(0, 255, (3, 64, 64), dtype=np.uint8)
    label = (raw > 128).astype(np.uint8)
    a = SectionCrops(raw, label, (16, 16), Normalizer(0.5, 0.2), np.random.default_rng(1))
    b = SectionCrops(raw, label, (16, 16), Normalizer(0.5, 0.2), np.random.default_rng(1))
    a.sample(5)  # a has drawn before, b has not: the validation crops are the same
    va, vb = a.fixed(4, seed=7), b.fixed(4, seed=7)
    np.testing.assert_array_equal(va[0], vb[0])
    np.testing.assert_array_equal(va[1], vb[1])
    np.testing.assert_array_equal(a.fixed(4, seed=7)[0], va[0])
    assert not np.array_equal(a.fixed(4, seed=8)[0], va[0])
    # the training stream continues as if no validation crops had been taken
    c = SectionCrops(raw, label, (16, 16), Normalizer(0.5, 0.2), np.random.default_rng(1))
    c.sample(5)
    np.testing.assert_array_equal(a.sample(3)[0], c.sample(3)[0])
