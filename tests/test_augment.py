"""Training-crop augmentation (data.augment): compatibility with the samplers' flips, seeding,
alignment of labels, image-only transforms, probability gates, spec checks and the numerics."""

import dataclasses

import numpy as np
import pytest
from scipy import ndimage

from masktwins3d.data.augment import AugmentSpec, Augmenter, cutblur, motion_blur_kernel, shift_sections
from masktwins3d.data.augment import random_dihedral, random_flips_3d
from masktwins3d.errors import UserError

OFF = AugmentSpec(dihedral=False)
IMAGE_ONLY_2D = ("intensity_p", "motion_blur_p", "cutblur_p")
IMAGE_ONLY_3D = IMAGE_ONLY_2D + ("missing_section_p", "misalign_p")
ALL_3D = AugmentSpec(**{k: 1.0 for k in ("elastic_p", "zoom_p") + IMAGE_ONLY_3D})
ALL_2D = dataclasses.replace(ALL_3D, missing_section_p=0.0, misalign_p=0.0)


def blobs(shape, seed=0):
    """Binary discs / balls (uint8) in a volume of ``shape``, smooth enough to survive resampling."""
    rng = np.random.default_rng(seed)
    field = ndimage.gaussian_filter(rng.normal(size=shape), 4)
    return (field > 0).astype(np.uint8)


def pair_2d(size=64, seed=0):
    label = blobs((size, size), seed)
    image = (label + 0.01 * np.random.default_rng(seed + 1).normal(size=label.shape)).astype(np.float32)
    return image, label


def pair_3d(shape=(8, 48, 48), seed=0):
    label = np.stack([blobs(shape, seed), blobs(shape, seed + 7)])  # (C, Z, Y, X)
    image = (label[0] + 0.01 * np.random.default_rng(seed + 1).normal(size=shape)).astype(np.float32)
    return image, label


def test_default_spec_is_random_dihedral_in_2d():
    image, label = pair_2d()
    for seed in range(8):
        ours, theirs = np.random.default_rng(seed), np.random.default_rng(seed)
        got = Augmenter(AugmentSpec(), 2)(image, label, ours)
        want = random_dihedral([image, label], theirs)
        assert all(np.array_equal(g, w) and g.dtype == w.dtype for g, w in zip(got, want))
        assert ours.bit_generator.state == theirs.bit_generator.state
        got_image, none = Augmenter(AugmentSpec(), 2)(image, None, ours)
        assert none is None and np.array_equal(got_image, random_dihedral([image], theirs)[0])
        assert ours.bit_generator.state == theirs.bit_generator.state


@pytest.mark.parametrize("shape", [(8, 48, 48), (8, 40, 48)])
def test_default_spec_is_random_flips_3d(shape):
    image, label = pair_3d(shape)
    for seed in range(8):
        ours, theirs = np.random.default_rng(seed), np.random.default_rng(seed)
        got = Augmenter(AugmentSpec(), 3)(image, label, ours)
        want = random_flips_3d([image, label], theirs, transpose_yx=shape[1] == shape[2])
        assert all(np.array_equal(g, w) for g, w in zip(got, want))
        assert ours.bit_generator.state == theirs.bit_generator.state


def test_rectangular_2d_crops_keep_their_shape_with_the_same_draws():
    image, label = pair_2d()
    image, label = image[:, :40], label[:, :40]
    for seed in range(8):
        ours, theirs = np.random.default_rng(seed), np.random.default_rng(seed)
        got_image, got_label = Augmenter(AugmentSpec(), 2)(image, label, ours)
        random_dihedral([image], theirs)
        assert got_image.shape == image.shape and got_label.shape == label.shape
        assert ours.bit_generator.state == theirs.bit_generator.state
        assert np.array_equal(got_image > 0.5, got_label.astype(bool))


def test_seeded_only_by_the_generator():
    image, label = pair_3d()
    augment = Augmenter(ALL_3D, 3)
    a = augment(image, label, np.random.default_rng(3))
    b = Augmenter(ALL_3D, 3)(image, label, np.random.default_rng(3))
    c = augment(image, label, np.random.default_rng(4))
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])


@pytest.mark.parametrize("dims", [2, 3])
def test_shapes_dtypes_and_binary_labels(dims):
    image, label = pair_2d() if dims == 2 else pair_3d()
    augment = Augmenter(ALL_2D if dims == 2 else ALL_3D, dims)
    for seed in range(3):
        out_image, out_label = augment(image, label, np.random.default_rng(seed))
        assert out_image.shape == image.shape and out_image.dtype == np.float32 and out_image.flags.c_contiguous
        assert out_label.shape == label.shape and out_label.dtype == np.uint8 and out_label.flags.c_contiguous
        assert set(np.unique(out_label)) <= {0, 1}
        unlabelled, none = augment(image, None, np.random.default_rng(seed))
        assert none is None and unlabelled.shape == image.shape and unlabelled.dtype == np.float32


def boundary(label: np.ndarray, width: int) -> np.ndarray:
    """Voxels within ``width`` (in-plane) of a label edge or of the crop's border (padding)."""
    structure = np.zeros((3,) * label.ndim, bool)
    structure[(1,) * (label.ndim - 2) + (slice(None), 1)] = True
    structure[(1,) * (label.ndim - 2) + (1, slice(None))] = True
    grow = ndimage.binary_dilation(label, structure, iterations=width)
    shrink = ndimage.binary_erosion(label, structure, iterations=width, border_value=1)
    edge = grow & ~shrink
    if width:
        edge[..., :width, :] = edge[..., -width:, :] = edge[..., :width] = edge[..., -width:] = True
    return edge


@pytest.mark.parametrize("dims", [2, 3])
@pytest.mark.parametrize("transform, width, agree", [("dihedral", 0, 1.0), ("zoom_p", 1, 0.98), ("elastic_p", 2, 0.93)])
def test_labels_stay_aligned_with_the_image(dims, transform, width, agree):
    spec = AugmentSpec() if transform == "dihedral" else dataclasses.replace(OFF, **{transform: 1.0})
    image, label = pair_2d() if dims == 2 else pair_3d()
    augment = Augmenter(spec, dims)
    for seed in range(4):
        out_image, out_label = augment(image, label, np.random.default_rng(seed))
        first = out_label if dims == 2 else out_label[0]
        same = (out_image > 0.5) == first.astype(bool)
        assert same.mean() >= agree
        assert not (~same & ~boundary(first.astype(bool), width)).any()  # disagreement only at edges
        if transform != "dihedral":
            assert not np.array_equal(out_label, label)
        if dims == 3:  # every channel moves the same way
            assert np.array_equal(out_label[1], augment(image, label[1:], np.random.default_rng(seed))[1][0])


@pytest.mark.parametrize("dims, names", [(2, IMAGE_ONLY_2D), (3, IMAGE_ONLY_3D)])
def test_image_only_transforms_change_the_image_not_the_labels(dims, names):
    image, label = pair_2d() if dims == 2 else pair_3d()
    image = image + np.linspace(0, 1, image.shape[-1], dtype=np.float32)  # texture for blurs
    for name in names:
        augment = Augmenter(dataclasses.replace(OFF, **{name: 1.0}), dims)
        for seed in range(3):
            out_image, out_label = augment(image, label, np.random.default_rng(seed))
            assert np.array_equal(out_label, label), name
            assert not np.array_equal(out_image, image), name


def test_missing_section_blanks_exactly_one_section():
    image = np.random.default_rng(0).uniform(1, 2, (6, 16, 16)).astype(np.float32)
    augment = Augmenter(dataclasses.replace(OFF, missing_section_p=1.0), 3)
    for seed in range(6):
        out, _ = augment(image, None, np.random.default_rng(seed))
        blank = [z for z in range(6) if (out[z] == 0.0).all()]
        assert len(blank) == 1
        assert np.array_equal(np.delete(out, blank[0], 0), np.delete(image, blank[0], 0))


def test_misalignment_shifts_the_sections_from_one_z_on():
    image = np.random.default_rng(0).uniform(1, 2, (6, 32, 32)).astype(np.float32)
    augment = Augmenter(dataclasses.replace(OFF, misalign_p=1.0, misalign_max=3), 3)
    for seed in range(6):
        out, _ = augment(image, None, np.random.default_rng(seed))
        changed = [z for z in range(6) if not np.array_equal(out[z], image[z])]
        assert changed == list(range(changed[0], 6)) and changed[0] >= 1
        matches = [(dy, dx) for dy in range(-3, 4) for dx in range(-3, 4)
                   if np.array_equal(out[changed[0]:], shift_sections(image, changed[0], dy, dx)[changed[0]:])]
        assert len(matches) == 1 and matches[0] != (0, 0)


def test_shift_sections_by_hand():
    image = np.arange(2 * 3 * 3, dtype=np.float32).reshape(2, 3, 3) + 1
    out = shift_sections(image, 1, 1, -1)
    assert np.array_equal(out[0], image[0])
    assert np.array_equal(out[1], [[0, 0, 0], [11, 12, 0], [14, 15, 0]])


def test_probability_gates():
    image, label = pair_3d()
    spec = dataclasses.replace(ALL_3D, dihedral=False, **{k: 0.0 for k in ("elastic_p", "zoom_p") + IMAGE_ONLY_3D})
    rng = np.random.default_rng(0)
    state = rng.bit_generator.state
    out_image, out_label = Augmenter(spec, 3)(image, label, rng)
    assert np.array_equal(out_image, image) and np.array_equal(out_label, label)
    assert rng.bit_generator.state == state  # p = 0 draws nothing
    for name in ("elastic_p", "zoom_p") + IMAGE_ONLY_3D:
        always = Augmenter(dataclasses.replace(spec, **{name: 1.0}), 3)
        half = Augmenter(dataclasses.replace(spec, **{name: 0.5}), 3)
        assert all(not np.array_equal(always(image, label, np.random.default_rng(s))[0], image) for s in range(4)), name
        changed = [not np.array_equal(half(image, label, np.random.default_rng(s))[0], image) for s in range(40)]
        assert 5 < sum(changed) < 35, name


@pytest.mark.parametrize("key, value", [
    ("elastic_p", 1.5), ("zoom_p", -0.1), ("intensity_p", float("nan")), ("cutblur_p", "0.5"),
    ("elastic_spacing", 0.0), ("elastic_magnitude", -1.0), ("zoom_range", (1.2, 0.9)), ("zoom_range", (0.0, 1.0)),
    ("misalign_max", 0), ("misalign_max", 2.5), ("dihedral", 1),
])
def test_bad_specs_name_the_key(key, value):
    with pytest.raises(UserError, match=rf"data\.augmentations\.{key}="):
        AugmentSpec(**{key: value})


@pytest.mark.parametrize("key", ["missing_section_p", "misalign_p"])
def test_3d_only_defects_are_refused_for_2d_crops(key):
    spec = AugmentSpec(**{key: 0.5})
    Augmenter(spec, 3)
    with pytest.raises(UserError, match=rf"data\.augmentations\.{key}=0\.5"):
        Augmenter(spec, 2)


@pytest.mark.parametrize("length", [5, 8, 11])
@pytest.mark.parametrize("angle", [0.0, 0.4, np.pi / 2, 2.5])
def test_motion_blur_kernel(length, angle):
    kernel = motion_blur_kernel(length, angle)
    assert kernel.shape == (length, length) and kernel.dtype == np.float32
    assert np.isclose(kernel.sum(), 1.0) and (kernel >= 0).all()
    if length % 2:
        c = length // 2
        assert kernel[c, c] > 0
        if angle == 0.0:
            assert np.allclose(kernel[c], 1 / length) and kernel.sum(axis=1)[c] == pytest.approx(1.0)
        if angle == np.pi / 2:
            assert np.allclose(kernel[:, c], 1 / length)
    assert np.allclose(kernel, kernel[::-1, ::-1])  # a line through the centre


def test_cutblur_changes_the_box_only():
    image = np.random.default_rng(0).normal(size=(4, 32, 32)).astype(np.float32)
    box = (slice(1, 3), slice(4, 20), slice(10, 18))
    out = cutblur(image, box, 2.0)
    outside = np.ones(image.shape, bool)
    outside[box] = False
    assert np.array_equal(out[outside], image[outside])
    assert not np.array_equal(out[box], image[box])
    flat = np.full((16, 16), 3.0, np.float32)
    assert np.allclose(cutblur(flat, (slice(2, 10), slice(0, 16)), 3.3), 3.0)  # averages keep a constant
