"""Voxel-size-aware resampling: factors, section resizing, whole volumes, sampler and prediction."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from masktwins3d.data.normalize import Normalizer
from masktwins3d.data.resample import (
    resample_volume,
    resampled_shape,
    resize_section,
    source_extent,
    voxel_size_known,
    zoom_factors,
)
from masktwins3d.data.sampling import SectionCrops
from masktwins3d.errors import UserError
from masktwins3d.io import create_volume, open_volume


def test_zoom_factors_by_hand():
    # target 9.2 nm pixels, model trained at 4.6 nm: target sections are enlarged 2x
    assert zoom_factors((50, 9.2, 9.2), (50, 4.6, 4.6)) == pytest.approx((2.0, 2.0))
    assert zoom_factors((30, 4, 6), (50, 8, 3)) == pytest.approx((0.5, 2.0))
    assert zoom_factors((50, 4.6, 4.6), (40, 4.7, 4.5)) is None  # within 5 %: left alone
    assert zoom_factors((1, 1, 1), (50, 4.6, 4.6)) is None  # unknown voxel size: never resampled
    assert not voxel_size_known((1.0, 1.0, 1.0)) and voxel_size_known((1.0, 4.0, 4.0))


def test_extent_and_shape_round():
    assert source_extent((192, 192), (2.0, 0.5)) == (96, 384)
    assert resampled_shape((7, 100, 60), (1.5, 0.5)) == (7, 150, 30)


def test_resize_section_constant_and_labels():
    img = np.full((40, 60), 3.5, np.float32)
    out = resize_section(img, (20, 90))
    assert out.shape == (20, 90) and out.dtype == np.float32
    np.testing.assert_allclose(out, 3.5, rtol=1e-6)
    lab = np.zeros((40, 60), np.uint8)
    lab[10:30, 20:40] = 1
    big = resize_section(lab, (80, 120), labels=True)
    assert big.dtype == np.uint8 and set(np.unique(big)) == {0, 1}
    # nearest neighbour with pixel areas aligned: the block doubles exactly
    np.testing.assert_array_equal(big[::2, ::2], lab)
    assert big.sum() == 4 * lab.sum()


def test_resize_section_antialiases_when_shrinking():
    stripes = np.tile(np.array([0.0, 1.0], np.float32), (64, 32))  # period-2 stripes along X
    half = resize_section(stripes, (32, 32))
    # without the Gaussian prefilter, sampling every other column would alias to all 0 or all 1
    assert abs(float(half.mean()) - 0.5) < 0.05 and float(half.std()) < 0.2


def test_resize_matches_scipy_zoom_when_enlarging():
    rng = np.random.default_rng(0)
    img = rng.random((16, 24)).astype(np.float32)
    out = resize_section(img, (32, 48))
    ref = ndimage.zoom(img, (2, 2), order=1, mode="nearest", grid_mode=True)
    np.testing.assert_allclose(out, ref, atol=1e-6)


def test_resample_volume_geometry_and_round_trip(tmp_path):
    rng = np.random.default_rng(1)
    base = ndimage.gaussian_filter(rng.random((3, 64, 80)), (0, 4, 4))
    data = (255 * (base - base.min()) / np.ptp(base)).astype(np.uint8)
    src = create_volume(tmp_path / "a.zarr", data.shape, np.uint8, voxel_size=(50, 10, 10), offset=(2, 8, 4))
    src[:] = data
    up = resample_volume(open_volume(str(tmp_path / "a.zarr")), str(tmp_path / "b.zarr"), (2.0, 2.0), out_dtype=np.uint8)
    assert up.shape == (3, 128, 160) and up.dtype == np.uint8
    assert up.voxel_size == pytest.approx((50, 5, 5)) and up.offset == (2, 16, 8)
    back = resample_volume(up, str(tmp_path / "c.zarr"), (0.5, 0.5), out_dtype=np.uint8, like=src)
    assert back.shape == src.shape and back.voxel_size == src.voxel_size and back.offset == src.offset
    # smooth images survive the round trip within a few grey levels
    assert np.abs(back[:].astype(int) - data.astype(int)).mean() < 3
    with pytest.raises(UserError, match="exists"):
        resample_volume(src, str(tmp_path / "b.zarr"), (2.0, 2.0))


def test_section_crops_read_scaled_regions(tmp_path):
    raw = np.zeros((2, 200, 200), np.uint8)
    raw[:, 100:, :] = 200
    label = (raw > 0).astype(np.uint8)
    crops = SectionCrops(raw, label, (32, 32), Normalizer(0.0, 1.0), np.random.default_rng(0), augment=False, scale=(0.5, 0.5))
    assert crops.extent == (64, 64)
    img, lab = crops.sample(6)
    assert img.shape == (6, 1, 32, 32) and lab.shape == (6, 32, 32)
    # the label's edge stays where the image's is (the anti-aliased image edge may shift by a pixel)
    img_rows = (img[:, 0] > 0.39).all(axis=2)
    lab_rows = (lab > 0).all(axis=2)
    assert (np.abs(img_rows.sum(1).astype(int) - lab_rows.sum(1).astype(int)) <= 1).all()
    assert (lab.min(axis=2) == lab.max(axis=2)).all()  # the edge is horizontal in labels too
    with pytest.raises(UserError, match="does not fit"):
        SectionCrops(raw, label, (128, 128), Normalizer(0.0, 1.0), np.random.default_rng(0), scale=(0.5, 0.5))


def test_section_crops_stay_inside_valid_mask():
    raw = np.arange(2 * 64 * 64, dtype=np.uint16).reshape(2, 64, 64)
    valid = np.zeros_like(raw, dtype=np.uint8)
    valid[:, 16:48, 8:56] = 1
    crops = SectionCrops(raw, None, (16, 16), Normalizer(0.0, 1.0), np.random.default_rng(3), augment=False, valid=valid)
    img, _ = crops.sample(30)  # the crop's top-left value tells where it came from
    first = np.rint(img[:, 0, 0, 0] * 65535).astype(int)
    y, x = (first % (64 * 64)) // 64, first % 64
    assert (y >= 16).all() and (y + 16 <= 48).all() and (x >= 8).all() and (x + 16 <= 56).all()
    # a mask with no valid crop at all is an error after max_tries
    none = np.zeros_like(valid)
    with pytest.raises(UserError, match="valid mask"):
        SectionCrops(raw, None, (16, 16), Normalizer(0.0, 1.0), np.random.default_rng(0), valid=none).sample(1)
    with pytest.raises(UserError, match="shape"):
        SectionCrops(raw, None, (16, 16), Normalizer(0.0, 1.0), np.random.default_rng(0), valid=valid[:, :32])


def _tiny(pair, method, out, extra=()):
    from conftest import tiny_overrides

    return tiny_overrides(pair, method, out, iterations=2) + list(extra)


def test_training_zooms_target_crops_and_records_voxel_size(tiny_pair, tmp_path, capsys):
    from masktwins3d.adapt.trainer import load_checkpoint
    from masktwins3d.config import load_config
    from masktwins3d.train import train

    # the target's pixels are 2x coarser than the source's 5 nm: its crops are read at 16x16 and enlarged
    ckpt = train(load_config(None, _tiny(tiny_pair, "masktwins", tmp_path / "r", ["data.target.voxel_size=[40,10,10]"])))
    assert "zoomed by 2 x 2" in capsys.readouterr().err
    assert load_checkpoint(ckpt)["voxel_size"] == [40.0, 5.0, 5.0]
    train(load_config(None, _tiny(tiny_pair, "masktwins", tmp_path / "o", ["data.target.voxel_size=[40,10,10]", "data.resample=never"])))
    assert "zoomed" not in capsys.readouterr().err


def test_prediction_resamples_to_training_voxel_size(tiny_pair, tmp_path):
    from masktwins3d.config import load_config
    from masktwins3d.inference.checkpoint import predict_with_checkpoint
    from masktwins3d.train import train

    ckpt = train(load_config(None, _tiny(tiny_pair, "noadapt", tmp_path / "r")))  # trained at 5 nm
    src = open_volume(tiny_pair["target"][0])
    coarse = create_volume(tmp_path / "coarse.zarr", (2, 32, 32), np.uint8, voxel_size=(40, 10, 10), offset=(0, 3, 3))
    coarse[:] = src[:2, ::2, ::2]
    out = predict_with_checkpoint(ckpt, str(tmp_path / "coarse.zarr"), tmp_path / "p.zarr", patch_size=(32, 32), progress=False)
    assert out.shape == (1, 2, 32, 32) and out.voxel_size == (40, 10, 10) and out.offset == (0, 3, 3)
    assert not (tmp_path / "p.zarr.resample").exists()
    prob = out[:]
    assert prob.min() >= 0 and prob.max() <= 1
    # the same as predicting the 2x-enlarged input by hand and shrinking the result back
    from masktwins3d.data.resample import resample_volume

    up = resample_volume(open_volume(str(tmp_path / "coarse.zarr")), str(tmp_path / "up.zarr"), (2, 2), out_dtype=np.uint8)
    by_hand = predict_with_checkpoint(ckpt, str(tmp_path / "up.zarr"), tmp_path / "q.zarr", patch_size=(32, 32), progress=False)
    back = resample_volume(by_hand, str(tmp_path / "back.zarr"), (0.5, 0.5), like=coarse)
    np.testing.assert_allclose(prob, back[:], atol=1e-5)
    off = predict_with_checkpoint(ckpt, str(tmp_path / "coarse.zarr"), tmp_path / "n.zarr", patch_size=(32, 32), progress=False, resample="never")
    assert off.shape == out.shape and not np.allclose(off[:], prob, atol=1e-3)
    with pytest.raises(UserError, match="--resume is not supported"):
        predict_with_checkpoint(ckpt, str(tmp_path / "coarse.zarr"), tmp_path / "p.zarr", patch_size=(32, 32), progress=False, resume=True)


def test_cli_predict_resample_flag(tiny_pair, tmp_path, capsys):
    from cli_helpers import run_cli

    from masktwins3d.config import load_config
    from masktwins3d.train import train

    ckpt = train(load_config(None, _tiny(tiny_pair, "noadapt", tmp_path / "r")))
    coarse = create_volume(tmp_path / "c.zarr", (1, 32, 32), np.uint8, voxel_size=(40, 10, 10))
    coarse[:] = open_volume(tiny_pair["target"][0])[:1, ::2, ::2]
    args = ["--checkpoint", ckpt, "--input", tmp_path / "c.zarr", "--patch", "32,32"]
    code, _, err = run_cli(capsys, "predict", *args, "--output", tmp_path / "a.zarr")
    assert code == 0 and "zoomed by 2 x 2" in err
    code, _, err = run_cli(capsys, "predict", *args, "--output", tmp_path / "b.zarr", "--resample", "never")
    assert code == 0 and "zoomed" not in err


def test_config_names_a_dataset_and_a_data_root(tiny_pair, tmp_path, monkeypatch):
    from masktwins3d.adapt.trainer import load_checkpoint
    from masktwins3d.config import load_config
    from masktwins3d.train import train

    root = tiny_pair["root"]
    desc = tmp_path / "tiny.yaml"
    desc.write_text(
        "name: tiny\nvoxel_size: [40, 5, 5]\nsplits:\n"
        "  a: {raw: source.zarr/raw, labels: {mito: source.zarr/mito}}\n"
        "  b: {raw: target.zarr/raw}\n"
    )
    base = ["method=noadapt", "model.widths=[4,4,8,8,8]", "data.crop=[32,32]", "optim.iterations=1", "train.progress=false",
            f"data.source.dataset={desc}:a", f"data.target.dataset={desc}:b"]
    monkeypatch.delenv("MASKTWINS3D_DATA", raising=False)
    with pytest.raises(UserError, match="data.root"):
        train(load_config(None, base + [f"train.out_dir={tmp_path / 'x'}"]))
    ckpt = train(load_config(None, base + [f"data.root={root}", f"train.out_dir={tmp_path / 'r'}"]))
    assert load_checkpoint(ckpt)["voxel_size"] == [40.0, 5.0, 5.0]
    monkeypatch.setenv("MASKTWINS3D_DATA", str(root))  # the environment gives the root as well
    train(load_config(None, base + [f"train.out_dir={tmp_path / 'e'}"]))
    with pytest.raises(UserError, match="NAME:SPLIT"):
        train(load_config(None, base + ["data.source.dataset=tiny", f"train.out_dir={tmp_path / 'y'}"]))
    with pytest.raises(UserError, match="label_name"):
        train(load_config(None, base + ["data.source.label_name=synapse", f"train.out_dir={tmp_path / 'z'}"]))
    with pytest.raises(UserError, match="unknown dataset"):
        train(load_config(None, base + ["data.source.dataset=nosuch:a", f"train.out_dir={tmp_path / 'w'}"]))


def test_point_crops_stay_inside_valid_mask():
    from masktwins3d.data.sampling import PointCrops

    raw = np.arange(32 * 32 * 32, dtype=np.uint16).reshape(32, 32, 32)
    valid = np.zeros_like(raw, dtype=np.uint8)
    valid[4:28, 8:32, 0:20] = 1
    pts = [np.array([[16.0, 16.0, 10.0]]), np.array([[16.0, 18.0, 10.0]])]
    crops = PointCrops(raw, pts, (8, 8, 8), Normalizer(0.0, 1.0), np.random.default_rng(2), augment=False, valid=valid)
    img, target = crops.sample(20)
    first = np.rint(img[:, 0, 0, 0, 0] * 65535).astype(int)
    z, y, x = first // 1024, (first // 32) % 32, first % 32
    assert (z >= 4).all() and (z + 8 <= 28).all() and (y >= 8).all() and (x + 8 <= 20).all()
    assert target.shape == (20, 2, 8, 8, 8)
    with pytest.raises(UserError, match="valid mask"):
        PointCrops(raw, None, (8, 8, 8), Normalizer(0.0, 1.0), np.random.default_rng(0), valid=np.zeros_like(valid)).sample(1)


def test_train_voxel_size_zooms_every_volume_and_warm_starts_only_at_its_scale(tiny_pair, tmp_path, capsys):
    """data.train_voxel_size: source and target sections (both 5 nm) are read at 64x64 and shrunk to the
    32x32 crop of a 10 nm model; the checkpoint records 10 nm with the source's Z; a warm start from it
    at another scale is one line, at its own it runs."""
    from masktwins3d.adapt.trainer import load_checkpoint
    from masktwins3d.config import load_config
    from masktwins3d.train import build_samplers, open_training_data, train

    coarse = ["data.train_voxel_size=[40,10,10]"]
    run = load_config(None, _tiny(tiny_pair, "masktwins", tmp_path / "r", coarse))
    data = open_training_data(run, resume=False)
    labelled, target, _ = build_samplers(run, data, np.random.default_rng(0), np.random.default_rng(1))
    assert labelled.extent == (64, 64) and target.extent == (64, 64)
    img, lab = labelled.sample(2)
    assert img.shape == (2, 1, 32, 32) and lab.shape == (2, 32, 32)
    err = capsys.readouterr().err
    assert "data.source sections 5 x 5 nm are zoomed by 0.5 x 0.5 to data.train_voxel_size's 10 x 10 nm" in err
    assert "target sections 5 x 5 nm are zoomed by 0.5 x 0.5 to data.train_voxel_size's 10 x 10 nm" in err
    ckpt = train(run)
    assert load_checkpoint(ckpt)["voxel_size"] == [40.0, 10.0, 10.0]
    # the model's own scale: no zoom, the source's voxel size recorded as before
    plain = load_config(None, _tiny(tiny_pair, "masktwins", tmp_path / "p"))
    assert open_training_data(plain, resume=False).source_scale is None
    with pytest.raises(UserError, match=r"learned at 40 x 10 x 10 nm but this run learns at 40 x 5 x 5 nm; "
                                        r"set data.train_voxel_size=\[40, 10, 10\]"):
        train(load_config(None, _tiny(tiny_pair, "masktwins", tmp_path / "w", [f"train.init={ckpt}"])))
    assert not (tmp_path / "w").exists()  # refused before anything is written
    warm = train(load_config(None, _tiny(tiny_pair, "masktwins", tmp_path / "w", [f"train.init={ckpt}", *coarse])))
    assert load_checkpoint(warm)["voxel_size"] == [40.0, 10.0, 10.0]
    # data.resample=never leaves voxel sizes to the user (the demo's oracle adapts its source model on a target
    # of another voxel size): no check
    never = train(load_config(None, _tiny(tiny_pair, "masktwins", tmp_path / "n", [f"train.init={ckpt}", "data.resample=never"])))
    assert load_checkpoint(never)["voxel_size"] == [40.0, 5.0, 5.0]


def test_train_voxel_size_refusals(tiny_pair, tmp_path):
    from masktwins3d.config import load_config
    from masktwins3d.train import open_training_data

    coarse = ["data.train_voxel_size=[40,10,10]"]
    with pytest.raises(UserError, match="data.resample=never; set data.resample=auto or data.train_voxel_size=null"):
        load_config(None, _tiny(tiny_pair, "noadapt", tmp_path / "r", [*coarse, "data.resample=never"]))
    with pytest.raises(UserError, match=r"data.crop=\[32, 32, 32\] is 3D"):
        load_config(None, _tiny(tiny_pair, "noadapt", tmp_path / "r", [*coarse, "data.crop=[32,32,32]"]))
    unknown = create_volume(tmp_path / "u.zarr/raw", (4, 64, 64), np.uint8)  # no voxel size recorded
    unknown[:] = open_volume(tiny_pair["source"][0])[:]
    run = load_config(None, _tiny(tiny_pair, "noadapt", tmp_path / "r", [*coarse, f"data.source.raw={tmp_path / 'u.zarr/raw'}"]))
    with pytest.raises(UserError, match=r"data.source's voxel size is not recorded; set data.source.voxel_size=\[Z,Y,X\]"):
        open_training_data(run, resume=False)
