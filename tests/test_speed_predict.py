"""The prediction engine's fast paths: probability zarrs written with the fast codec (and
readable as before), and each block written in the background while the next is computed
(bit-identical to writing in turn; a block is recorded in the manifest only once written)."""

import json

import numpy as np
import torch
import torch.nn as nn

from masktwins3d.inference import predict_blockwise
from masktwins3d.io import Volume, open_volume
from masktwins3d.parallel import read_manifest


def conv_net(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.Tanh(), nn.Conv2d(4, 2, 3, padding=1)).eval()
    net.spatial_dims = 2
    return net


def memory_volume(data: np.ndarray) -> Volume:
    return Volume(data, path="<memory>", axes="zyx", voxel_size=(30, 4, 4), offset=(3, 5, 7))


def as_float(x):
    return np.asarray(x, dtype=np.float32) / 100.0


KWARGS = dict(preprocess=as_float, patch_size=(16, 16), block_shape=(1, 32, 32), threads=1, progress=False)


def test_probabilities_are_written_with_the_fast_codec(tmp_path):
    data = np.random.default_rng(1).integers(0, 256, (3, 20, 40)).astype(np.uint8)
    out = predict_blockwise(conv_net(1), memory_volume(data), tmp_path / "p.zarr", **KWARGS)
    meta = json.loads((tmp_path / "p.zarr" / "0" / "zarr.json").read_text())
    assert meta["chunk_key_encoding"]["configuration"]["separator"] == "."
    assert [c["configuration"]["cname"] for c in meta["codecs"] if c["name"] == "blosc"] == ["lz4"]
    back = open_volume(tmp_path / "p.zarr")
    assert back.voxel_size == (30.0, 4.0, 4.0) and back.offset == (3, 5, 7) and back.shape == (1, 3, 20, 40)
    assert np.array_equal(back[...], out[...]) and read_manifest(tmp_path / "p.zarr" / "blocks.jsonl")["complete"]


# ---- background writes: one block written while the next is computed ---------------------------------


def serial_writes(monkeypatch):
    """Make in-process runs write each block before computing the next (the engine before background writes)."""
    from masktwins3d.inference.blockwise import BlockJob

    monkeypatch.setattr(BlockJob, "write_in_background", lambda self: None)


def test_background_writes_are_bit_identical_to_serial_writes(tmp_path, monkeypatch):
    from masktwins3d.inference.blockwise import BlockJob

    data = np.random.default_rng(2).integers(0, 256, (5, 40, 44)).astype(np.uint8)
    threads = []
    write = BlockJob.write

    def spy(self, block, prob):
        threads.append(__import__("threading").current_thread().name)
        return write(self, block, prob)

    monkeypatch.setattr(BlockJob, "write", spy)
    calls = []
    fast = predict_blockwise(conv_net(2), memory_volume(data), tmp_path / "fast.zarr", block_shape=(2, 16, 32),
                             on_block=lambda d, n: calls.append((d, n)), **{k: v for k, v in KWARGS.items() if k != "block_shape"})
    n = len(threads)
    assert n == 3 * 3 * 2 and all(t.startswith("write-block") for t in threads)  # every write in the background
    assert calls == [(i, n) for i in range(n + 1)]  # each block reported once written, in order
    serial_writes(monkeypatch)
    slow = predict_blockwise(conv_net(2), memory_volume(data), tmp_path / "slow.zarr", block_shape=(2, 16, 32),
                             **{k: v for k, v in KWARGS.items() if k != "block_shape"})
    assert all(t.startswith("write-block") for t in threads[:n]) and not any(t.startswith("write-block") for t in threads[n:])
    assert np.array_equal(fast[...], slow[...]) and fast.dtype == slow.dtype
    manifest = read_manifest(tmp_path / "fast.zarr" / "blocks.jsonl")
    assert manifest["complete"] and len(manifest["done"]) == n


def test_a_failed_background_write_is_not_recorded_and_resume_finishes(tmp_path, monkeypatch):
    import pytest

    from masktwins3d.errors import UserError
    from masktwins3d.inference.blockwise import BlockJob

    data = np.random.default_rng(3).integers(0, 256, (4, 20, 24)).astype(np.uint8)
    ref = predict_blockwise(conv_net(3), memory_volume(data), tmp_path / "ref.zarr", **KWARGS)[...]
    write = BlockJob.write

    def fail_at_2(self, block, prob):
        if block.id == "2-0-0":
            raise UserError("disk full (a test)")
        return write(self, block, prob)

    monkeypatch.setattr(BlockJob, "write", fail_at_2)
    out = tmp_path / "p.zarr"
    with pytest.raises(UserError, match="disk full"):
        predict_blockwise(conv_net(3), memory_volume(data), out, **KWARGS)
    done = read_manifest(out / "blocks.jsonl")["done"]
    assert done == ["0-0-0", "1-0-0"]  # recorded in order: nothing after the failed block
    written = open_volume(out)[...]
    for block in done:  # every recorded block is on disk
        z = int(block.split("-")[0])
        assert np.array_equal(written[:, z], ref[:, z])
    monkeypatch.setattr(BlockJob, "write", write)
    assert np.array_equal(predict_blockwise(conv_net(3), memory_volume(data), out, resume=True, **KWARGS)[...], ref)
