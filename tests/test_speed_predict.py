"""The prediction engine's fast paths: probability zarrs written with the fast codec (and
readable as before)."""

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
