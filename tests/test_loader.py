"""Crops drawn in DataLoader workers (data.loader): seeding per worker, reproducibility, labels."""

import functools
import itertools
import pickle

import numpy as np
import pytest
import torch

from masktwins3d.data.loader import CropStream, crop_loader
from masktwins3d.data.normalize import volume_normalizer
from masktwins3d.data.sampling import PointCrops, SectionCrops
from masktwins3d.io import create_volume, open_volume


def section_sampler(raw_spec, label_spec, rng):
    """Module level, so that it pickles: 16 x 16 crops read chunk by chunk from zarr."""
    raw = open_volume(raw_spec)
    label = None if label_spec is None else open_volume(label_spec)
    return SectionCrops(raw, label, (16, 16), volume_normalizer(raw), rng, preload_bytes=0)


def point_sampler(raw_spec, points, rng):
    raw = open_volume(raw_spec)
    return PointCrops(raw, points, (4, 16, 16), volume_normalizer(raw), rng, preload_bytes=0)


@pytest.fixture
def volume(tmp_path):
    rng = np.random.default_rng(0)
    raw = create_volume(f"{tmp_path}/v.zarr/raw", (6, 48, 48), np.uint8, chunks=(1, 16, 16))
    raw[:] = rng.integers(0, 256, (6, 48, 48), dtype=np.uint8)
    label = create_volume(f"{tmp_path}/v.zarr/mito", (6, 48, 48), np.uint8, chunks=(1, 16, 16))
    label[:] = (rng.random((6, 48, 48)) < 0.3).astype(np.uint8)
    return f"{tmp_path}/v.zarr/raw", f"{tmp_path}/v.zarr/mito"


def take(loader, n):
    return list(itertools.islice(iter(loader), n))


def by_hand(make_sampler, seed, worker, batch_size, n):
    sampler = make_sampler(np.random.default_rng([seed, worker]))
    return [sampler.sample(batch_size) for _ in range(n)]


def same(batch, expected):
    images, labels = batch
    want_images, want_labels = expected
    if want_labels is None:
        return torch.equal(images, torch.from_numpy(want_images)) and labels.numel() == 0
    return torch.equal(images, torch.from_numpy(want_images)) and torch.equal(labels, torch.from_numpy(want_labels))


def test_without_workers_the_stream_is_worker_zeros(volume):
    make = functools.partial(section_sampler, *volume)
    batches = take(crop_loader(make, seed=5, batch_size=3, workers=0), 3)
    assert all(same(b, e) for b, e in zip(batches, by_hand(make, 5, 0, 3, 3)))
    images, labels = batches[0]
    assert images.shape == (3, 1, 16, 16) and images.dtype == torch.float32
    assert labels.shape == (3, 16, 16) and labels.dtype == torch.uint8


def test_two_workers_take_turns_reproducibly(volume):
    make = functools.partial(section_sampler, *volume)
    first = take(crop_loader(make, seed=5, batch_size=2, workers=2, prefetch_factor=2), 4)
    again = take(crop_loader(make, seed=5, batch_size=2, workers=2, prefetch_factor=2), 4)
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(first, again))
    zero, one = by_hand(make, 5, 0, 2, 2), by_hand(make, 5, 1, 2, 2)
    assert same(first[0], zero[0]) and same(first[2], zero[1])
    assert same(first[1], one[0]) and same(first[3], one[1])
    assert not torch.equal(first[0][0], first[1][0])  # the workers draw different crops
    other = take(crop_loader(make, seed=6, batch_size=2, workers=0), 1)
    assert not torch.equal(other[0][0], first[0][0])


def test_unlabelled_and_point_streams(volume):
    unlabelled = take(crop_loader(functools.partial(section_sampler, volume[0], None), 1, 2, workers=0), 2)
    assert all(labels.numel() == 0 for _, labels in unlabelled)
    points = [np.array([[2.0, 10.0, 10.0], [3.0, 30.0, 30.0]]), np.array([[1.0, 20.0, 20.0]])]
    make = functools.partial(point_sampler, volume[0], points)
    (images, targets), = take(crop_loader(make, 1, 2, workers=1, prefetch_factor=1), 1)
    assert images.shape == (2, 1, 4, 16, 16) and targets.shape == (2, 2, 4, 16, 16) and targets.dtype == torch.uint8
    assert same((images, targets), by_hand(make, 1, 0, 2, 1)[0])


def test_the_stream_pickles(volume):
    stream = CropStream(functools.partial(section_sampler, *volume), seed=2, batch_size=2)
    copy = pickle.loads(pickle.dumps(stream))
    a, b = next(iter(stream)), next(iter(copy))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_bad_arguments():
    with pytest.raises(ValueError):
        CropStream(section_sampler, 0, 0)
    with pytest.raises(ValueError):
        crop_loader(section_sampler, 0, 1, workers=-1)
