import itertools

import numpy as np
import pytest
import torch
import torch.nn as nn
from monai.data.utils import compute_importance_map, dense_patch_slices
from monai.inferers import sliding_window_inference
from monai.inferers.utils import _get_scan_interval

from masktwins3d.errors import UserError
from masktwins3d.inference.predict import predict_array, predict_volume
from masktwins3d.inference.window import BlendMode, importance_map, sliding_window, window_starts
from masktwins3d.io import create_volume, open_volume


def conv_net(spatial_dims: int, out_channels: int = 2, seed: int = 0) -> nn.Module:
    """A small random conv net whose outputs depend on window borders (zero padding)."""
    torch.manual_seed(seed)
    conv = nn.Conv2d if spatial_dims == 2 else nn.Conv3d
    return nn.Sequential(conv(1, 4, 3, padding=1), nn.Tanh(), conv(4, out_channels, 3, padding=1)).eval()


# ---- importance map ------------------------------------------------------------------------------


@pytest.mark.parametrize("patch", [(1,), (7,), (16, 16), (15, 32), (3, 5), (8, 8, 8), (5, 12, 9), (1, 4, 4)])
@pytest.mark.parametrize("mode", ["gaussian", "constant"])
def test_importance_map_equals_monai(patch, mode):
    ours = importance_map(patch, mode)
    ref = compute_importance_map(patch, mode=mode, sigma_scale=0.125)
    assert ours.shape == patch and ours.dtype == torch.float32
    assert torch.equal(ours, ref)


def test_importance_map_per_axis_sigma_and_floor():
    ref = compute_importance_map((12, 20), mode="gaussian", sigma_scale=(0.2, 0.1))
    assert torch.equal(importance_map((12, 20), BlendMode.GAUSSIAN, (0.2, 0.1)), ref)
    w = importance_map((65, 65), "gaussian")
    assert w.max() == 1.0 and w.min() == pytest.approx(1e-3)  # corners clamped to MONAI's floor


# ---- window placement ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "size,patch,overlap,expected",
    [
        (10, 10, 0.25, [0]),
        (7, 10, 0.5, [0]),
        (10, 4, 0.0, [0, 4, 6]),
        (10, 4, 0.5, [0, 2, 4, 6]),
        (11, 4, 0.25, [0, 3, 6, 7]),
        (5, 1, 0.9, [0, 1, 2, 3, 4]),
        (100, 3, 0.9, list(range(98))),
    ],
)
def test_window_starts_cases(size, patch, overlap, expected):
    assert window_starts(size, patch, overlap) == expected


def test_window_starts_cover_axis_like_monai():
    grid = itertools.product([1, 5, 16, 17, 31, 64, 100, 257], [1, 4, 16, 32], [0.0, 0.25, 0.5, 0.75, 0.9])
    for size, patch, overlap in grid:
        starts = window_starts(size, patch, overlap)
        extent = max(size, patch)  # an axis shorter than the patch is padded to it
        covered = np.zeros(extent, bool)
        for s in starts:
            assert 0 <= s <= extent - patch
            covered[s : s + patch] = True
        assert covered.all() and starts == sorted(starts) and starts[-1] == extent - patch
        interval = _get_scan_interval((extent,), (patch,), 1, (overlap,))
        assert starts == [sl[0].start for sl in dense_patch_slices((extent,), (patch,), interval)]


def test_window_starts_rejects_bad_arguments():
    for args in [(0, 4, 0.25), (10, 0, 0.25), (10, 4, 1.0), (10, 4, -0.1)]:
        with pytest.raises(ValueError):
            window_starts(*args)


# ---- sliding window ------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["constant", "gaussian"])
@pytest.mark.parametrize("shape,patch", [((2, 37, 50), (16, 16)), ((1, 3, 9, 21, 13), (4, 8, 8)), ((1, 5, 6), (8, 8))])
def test_identity_predictor_reproduces_input(mode, shape, patch):
    image = torch.randint(-50, 50, shape).float()
    out = sliding_window(image, lambda b: b.clone(), patch, 0.5, mode, batch_size=3)
    assert out.shape == image.shape and out.dtype == torch.float32
    if mode == "constant":
        assert torch.equal(out, image)  # integer sums of ones: exact
    else:
        torch.testing.assert_close(out, image, rtol=1e-6, atol=1e-5)


@pytest.mark.parametrize(
    "shape,patch,overlap,batch",
    [
        ((1, 1, 64, 64), (32, 32), 0.25, 4),
        ((2, 1, 45, 70), (16, 24), 0.5, 3),  # not divisible by the stride, two images
        ((1, 1, 20, 50), (32, 16), 0.25, 2),  # first axis shorter than the patch: padded
        ((1, 1, 19, 26, 23), (8, 8, 8), 0.25, 4),
        ((1, 1, 6, 33, 17), (8, 16, 16), 0.5, 5),  # 3D, padded axis and odd sizes
    ],
)
@pytest.mark.parametrize("mode", ["gaussian", "constant"])
def test_sliding_window_equals_monai(shape, patch, overlap, batch, mode):
    net = conv_net(len(patch), out_channels=3)
    image = torch.randn(shape, generator=torch.Generator().manual_seed(1))
    ours = sliding_window(image, net, patch, overlap, mode, batch_size=batch)
    with torch.inference_mode():
        ref = sliding_window_inference(image, patch, batch, net, overlap=overlap, mode=mode, sigma_scale=0.125)
    assert ours.shape == ref.shape == (shape[0], 3, *shape[2:])
    torch.testing.assert_close(ours, ref.as_tensor() if hasattr(ref, "as_tensor") else ref, rtol=0, atol=1e-4)


def test_sliding_window_unbatched_input_and_bad_shapes():
    net = conv_net(2)
    image = torch.randn(1, 30, 40)
    out = sliding_window(image, net, (16, 16), 0.25)
    assert out.shape == (2, 30, 40)
    torch.testing.assert_close(out, sliding_window(image[None], net, (16, 16), 0.25)[0])
    with pytest.raises(ValueError, match="spatial axes"):
        sliding_window(torch.randn(30, 40), net, (16, 16))
    with pytest.raises(ValueError, match="predictor must map"):
        sliding_window(image, lambda b: b[:, :, :8], (16, 16))


# ---- predict_volume ------------------------------------------------------------------------------


class Counting(nn.Module):
    """Wraps a model and counts forward calls."""

    def __init__(self, net: nn.Module, out_channels: int | None = None):
        super().__init__()
        self.net, self.calls = net, 0
        if out_channels is not None:
            self.out_channels = out_channels

    def forward(self, x):
        self.calls += 1
        return self.net(x)


@pytest.fixture
def raw(tmp_path):
    data = np.random.default_rng(0).integers(0, 256, (3, 40, 52), dtype=np.uint8)
    vol = create_volume(tmp_path / "raw.zarr", data.shape, np.uint8, voxel_size=(40, 4, 4), offset=(2, 10, 20))
    vol[...] = data
    return open_volume(tmp_path / "raw.zarr"), data


def preprocess(section):
    return (section.astype(np.float32) - 128) / 64


@pytest.mark.parametrize("activation,k,channels", [("softmax", 2, 1), ("softmax", 3, 2), ("sigmoid", 2, 2)])
def test_predict_volume_writes_probabilities(tmp_path, raw, activation, k, channels):
    vol, data = raw
    model = Counting(conv_net(2, out_channels=k))
    out = predict_volume(model, vol, tmp_path / "prob.zarr", preprocess=preprocess, patch_size=(32, 32),
                         overlap=0.25, batch_size=4, activation=activation, progress=False)
    assert out.shape == (channels, 3, 40, 52) and out.axes == "czyx" and out.dtype == np.float32
    reopened = open_volume(tmp_path / "prob.zarr")
    assert reopened.voxel_size == (40.0, 4.0, 4.0) and reopened.offset == (2, 10, 20)
    prob = reopened[...]
    assert 0 <= prob.min() and prob.max() <= 1
    settings = dict(patch_size=(32, 32), overlap=0.25, activation=activation)
    expected = predict_array(model, data, preprocess=preprocess, **settings)
    np.testing.assert_allclose(prob, expected, atol=1e-6)
    # softmax: the written channels are classes 1..K-1 of a softmax over the K logits
    logits = sliding_window(torch.as_tensor(preprocess(data[1]))[None], model, (32, 32), 0.25)
    full = torch.softmax(logits, 0) if activation == "softmax" else torch.sigmoid(logits)
    np.testing.assert_allclose(prob[:, 1], full[k - channels :].numpy(), atol=1e-6)


@pytest.mark.parametrize("out_dtype", ["float16", "uint8"])
def test_predict_volume_dtypes_and_large_patch(tmp_path, raw, out_dtype):
    vol, data = raw
    model = conv_net(2, seed=3)
    out = predict_volume(model, vol, tmp_path / "p.zarr", preprocess=preprocess, patch_size=(64, 64),
                         out_dtype=out_dtype, progress=False)
    assert out.shape == (1, 3, 40, 52) and out.dtype == np.dtype(out_dtype)
    ref = predict_array(model, data, preprocess=preprocess, patch_size=(64, 64))
    got = out[...].astype(np.float32) / (255.0 if out_dtype == "uint8" else 1.0)
    np.testing.assert_allclose(got, ref, atol=0.5 / 255 + 1e-6 if out_dtype == "uint8" else 1e-3)


def test_predict_volume_refuses_existing_output_before_computing(tmp_path, raw):
    vol, _ = raw
    model = Counting(conv_net(2))  # no out_channels: a probe forward would count as a call
    predict_volume(model, vol, tmp_path / "p.zarr", preprocess=preprocess, patch_size=(32, 32), progress=False)
    before = open_volume(tmp_path / "p.zarr")[...]
    model.calls = 0
    with pytest.raises(UserError, match="exists; pass --overwrite"):
        predict_volume(model, vol, tmp_path / "p.zarr", preprocess=preprocess, patch_size=(32, 32), progress=False)
    assert model.calls == 0
    out = predict_volume(Counting(conv_net(2, seed=5), out_channels=2), vol, tmp_path / "p.zarr",
                         preprocess=preprocess, patch_size=(32, 32), overwrite=True, progress=False)
    assert not np.array_equal(out[...], before)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"patch_size": (32,)}, "--patch"),
        ({"patch_size": (32, 0)}, "--patch"),
        ({"patch_size": (32, 32, 32)}, "--patch"),
        ({"overlap": 1.0}, "--overlap"),
        ({"overlap": -0.1}, "--overlap"),
        ({"blend": "cosine"}, "--blend"),
        ({"batch_size": 0}, "--batch-size"),
        ({"out_dtype": "int32"}, "--dtype"),
        ({"activation": "relu"}, "activation"),
    ],
)
def test_predict_volume_bad_settings(tmp_path, raw, kwargs, match):
    vol, _ = raw
    model = Counting(conv_net(2))
    with pytest.raises(UserError, match=match) as info:
        predict_volume(model, vol, tmp_path / "p.zarr", preprocess=preprocess, progress=False, **kwargs)
    assert "\n" not in str(info.value)
    assert model.calls == 0 and not (tmp_path / "p.zarr").exists()


def test_voxel_size_mismatch_by_hand():
    from masktwins3d.inference.checkpoint import voxel_size_mismatch

    assert voxel_size_mismatch((8, 8, 8), (8, 8, 8)) == 1.0
    assert voxel_size_mismatch((8, 8, 8), (30, 10, 10)) == pytest.approx(30 / 8)
    assert voxel_size_mismatch((40, 4, 4), (40, 8, 2)) == pytest.approx(2.0)
    assert voxel_size_mismatch(None, (8, 8, 8)) is None
    assert voxel_size_mismatch((8, 8, 8), (1, 1, 1)) is None  # not recorded


def test_a_3d_model_on_another_voxel_size_is_noted_or_refused(monkeypatch, capsys):
    from types import SimpleNamespace

    from masktwins3d.inference import checkpoint as ck

    monkeypatch.setattr(ck, "load_checkpoint", lambda path: {"voxel_size": [8.0, 8.0, 8.0]})
    vol = SimpleNamespace(path="v.zarr", voxel_size=(30.0, 10.0, 10.0))
    with pytest.raises(UserError, match=r"v.zarr has 30 x 10 x 10 nm voxels.*--resample never"):
        ck.check_voxel_size_3d("c.pt", vol, 3, "auto")
    ck.check_voxel_size_3d("c.pt", vol, 3, "never")
    assert "note: v.zarr has 30 x 10 x 10 nm" in capsys.readouterr().err
    ck.check_voxel_size_3d("c.pt", SimpleNamespace(path="w.zarr", voxel_size=(10.0, 8.0, 8.0)), 3, "auto")
    assert "x1.25" in capsys.readouterr().err
    ck.check_voxel_size_3d("c.pt", SimpleNamespace(path="w.zarr", voxel_size=(8.0, 8.0, 8.0)), 3, "auto")
    assert capsys.readouterr().err == ""
