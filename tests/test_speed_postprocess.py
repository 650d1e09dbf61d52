"""The fast paths of ``postprocess mito``: slab-by-slab thresholding of the whole volume, the
instance count from cc3d, and label volumes written with the fast codec; every one gives the
labels scipy.ndimage gives, numbering included."""

import json

import numpy as np
import pytest
import zarr
from scipy import ndimage

from masktwins3d.errors import UserError
from masktwins3d.io import create_volume, open_volume
from masktwins3d.postprocess import blockwise as bw
from masktwins3d.postprocess.mito import counted_instances, mask_to_instances, probability_to_mask

RANK = {6: 1, 18: 2, 26: 3}


def smooth_prob(rng, shape, sigma=1.0):
    prob = ndimage.gaussian_filter(rng.random(shape), sigma).astype(np.float32)
    return (prob - prob.min()) / (prob.max() - prob.min())


def zarr_prob(path, prob, chunks):
    vol = create_volume(path, prob.shape, np.float32, chunks=chunks, axes="zyx" if prob.ndim == 3 else "czyx")
    vol[:] = prob
    return open_volume(path)


def test_slab_depth_takes_whole_z_chunks(tmp_path):
    prob = np.zeros((20, 8, 8), np.float32)
    source = bw.open_source(zarr_prob(tmp_path / "p.zarr", prob, (3, 8, 8)))
    assert bw.slab_depth(source, target=1) == 3  # one chunk
    assert bw.slab_depth(source, target=4 * 64) == 6  # 4 sections needed: two chunks of 3
    assert bw.slab_depth(source, target=10**9) == 20  # never more than the volume
    assert bw.slab_depth(bw.open_source(prob), target=3 * 64) == 3  # no chunks: whole sections


@pytest.mark.parametrize("target", [1, 100, 500, 10**9])
def test_read_mask_equals_threshold_of_whole_volume(tmp_path, target, monkeypatch):
    monkeypatch.setattr(bw, "SLAB_VOXELS", target)
    rng = np.random.default_rng(target)
    prob = rng.random((2, 11, 7, 9)).astype(np.float32)
    vol = zarr_prob(tmp_path / "p.zarr", prob, (2, 2, 7, 9))
    rule = lambda p: probability_to_mask(p, 0.6)  # noqa: E731
    for source, ch, ref in ((bw.open_source(vol), 1, prob[1]), (bw.open_source(prob[0]), None, prob[0])):
        mask = bw.read_mask(source, ch, rule)
        assert mask.dtype == np.bool_ and np.array_equal(mask, ref >= 0.6)


def test_read_mask_refuses_a_bad_value_in_a_later_slab(tmp_path, monkeypatch):
    monkeypatch.setattr(bw, "SLAB_VOXELS", 1)
    prob = np.full((6, 4, 4), 0.2, np.float32)
    prob[5, 2, 1] = np.nan
    source = bw.open_source(zarr_prob(tmp_path / "p.zarr", prob, (2, 4, 4)))
    with pytest.raises(UserError, match="NaN"):
        bw.read_mask(source, None, lambda p: probability_to_mask(p, 0.5))


@pytest.mark.parametrize("min_size", [1, 3])
def test_counted_instances_count_is_the_largest_label(min_size):
    mask = np.random.default_rng(min_size).random((9, 10, 11)) < 0.2
    labels, count = counted_instances(mask, 6, min_size)
    assert np.array_equal(labels, mask_to_instances(mask, 6, min_size)) and count == int(labels.max()) and count > 3
    assert counted_instances(np.zeros((2, 3, 4), bool))[1] == 0


def test_fast_write_volume_is_plain_lz4_zarr_with_flat_chunk_keys(tmp_path):
    labels = np.arange(4 * 6 * 8, dtype=np.uint32).reshape(4, 6, 8)
    out = create_volume(tmp_path / "l.zarr", labels.shape, np.uint32, chunks=(2, 3, 4), voxel_size=(30, 4, 4), offset=(1, 2, 3),
                        fast_write=True)
    out[:] = labels
    back = open_volume(tmp_path / "l.zarr")
    assert np.array_equal(back[:], labels) and back.voxel_size == (30.0, 4.0, 4.0) and back.offset == (1, 2, 3)
    meta = json.loads((tmp_path / "l.zarr" / "0" / "zarr.json").read_text())
    assert meta["chunk_key_encoding"]["configuration"]["separator"] == "."
    assert [c["configuration"]["cname"] for c in meta["codecs"] if c["name"] == "blosc"] == ["lz4"]
    assert (tmp_path / "l.zarr" / "0" / "c.1.1.1").is_file() and not (tmp_path / "l.zarr" / "0" / "c").exists()
    assert np.array_equal(zarr.open_array(str(tmp_path / "l.zarr" / "0"), mode="r")[:], labels)  # any zarr reader


@pytest.mark.parametrize("connectivity", [6, 18, 26])
def test_one_pass_from_zarr_in_slabs_is_identical_to_scipy(tmp_path, connectivity, monkeypatch):
    monkeypatch.setattr(bw, "SLAB_VOXELS", 300)  # several slabs
    rng = np.random.default_rng(connectivity)
    prob = smooth_prob(rng, (17, 21, 13))
    zarr_prob(tmp_path / "p.zarr", prob, (4, 8, 8))
    ref, n = ndimage.label(prob >= 0.6, structure=ndimage.generate_binary_structure(3, RANK[connectivity]))
    got = bw.blockwise_instances(tmp_path / "p.zarr", tmp_path / "l.zarr", threshold=0.6, connectivity=connectivity,
                                 block_shape=(8, 8, 8), progress=False)
    assert n >= 3 and got.count == n and got.volume.dtype == np.uint32
    assert np.array_equal(got.volume[:], ref)
    # the stitched path writes the same fast-codec labels
    stitched = bw.blockwise_instances(tmp_path / "p.zarr", tmp_path / "s.zarr", threshold=0.6, connectivity=connectivity,
                                      block_shape=(8, 8, 8), progress=False, whole=False)
    assert np.array_equal(stitched.volume[:], ref) and (tmp_path / "s.zarr" / "0" / "c.0.0.0").is_file()
