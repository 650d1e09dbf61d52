"""Tests of the synthetic EM generator (small shapes: the whole file runs in a few seconds)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy import ndimage

from masktwins3d.errors import UserError
from masktwins3d.io import open_volume
from masktwins3d.synth import STYLES, DomainStyle, generate_volume, get_style, write_demo_data

SHAPE = (8, 96, 96)


@pytest.fixture(scope="module")
def volumes():
    return {name: generate_volume(name, SHAPE, seed=3) for name in ("source", "target")}


def test_deterministic_for_a_seed():
    a = generate_volume("source", (4, 64, 64), seed=11)
    b = generate_volume("source", (4, 64, 64), seed=np.random.default_rng(11))
    c = generate_volume("source", (4, 64, 64), seed=12)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])


@pytest.mark.parametrize("name", ["source", "target"])
def test_dtypes_shapes_and_labels(volumes, name):
    raw, mito = volumes[name]
    assert raw.shape == SHAPE and mito.shape == SHAPE
    assert raw.dtype == np.uint8 and mito.dtype == np.uint8
    assert set(np.unique(mito)) <= {0, 1}
    assert 0.03 <= mito.mean() <= 0.20
    assert 30 < raw.mean() < 225 and raw.std() > 10  # neither saturated nor flat
    assert (raw == 0).mean() < 0.01 and (raw == 255).mean() < 0.01


def test_styles_differ_in_intensity_statistics(volumes):
    (src, src_m), (tgt, tgt_m) = volumes["source"], volumes["target"]
    assert abs(float(src.mean()) - float(tgt.mean())) > 10
    # the shift is in appearance of the mitochondria too, relative to the rest of the section
    def mito_contrast(raw, m):
        return (raw[m == 0].mean() - raw[m == 1].mean()) / raw.std()

    assert mito_contrast(src, src_m) - mito_contrast(tgt, tgt_m) > 0.2
    assert get_style("source").voxel_size != get_style("target").voxel_size


@pytest.mark.parametrize("name", ["source", "target"])
def test_mitochondria_have_a_dark_rim(volumes, name):
    raw, mito = volumes[name]
    raw = raw.astype(np.float32)
    lab = mito.astype(bool)
    rows = []
    for z in range(lab.shape[0]):
        rim = lab[z] & ~ndimage.binary_erosion(lab[z], iterations=2)
        core = ndimage.binary_erosion(lab[z], iterations=5)
        ring = ndimage.binary_dilation(lab[z], iterations=8) & ~ndimage.binary_dilation(lab[z], iterations=4)
        rows.append((raw[z][rim].sum(), rim.sum(), raw[z][core].sum(), core.sum(), raw[z][ring].sum(), ring.sum()))
    s = np.sum(rows, axis=0)
    rim_mean, core_mean, outside_mean = s[0] / s[1], s[2] / s[3], s[4] / s[5]
    assert rim_mean < core_mean - 5
    assert rim_mean < outside_mean - 10


def test_style_registry_and_override():
    assert set(STYLES) >= {"source", "target"}
    assert get_style("target") is STYLES["target"]
    custom = dataclasses.replace(get_style("source"), mito_radius=80.0, name="small")
    assert get_style(custom) is custom
    raw, mito = generate_volume(custom, (4, 64, 64), seed=0)
    assert raw.shape == (4, 64, 64)
    with pytest.raises(UserError, match="unknown"):
        get_style("nope")
    with pytest.raises(UserError):
        DomainStyle(voxel_size=(0.0, 5.0, 5.0))


def test_write_demo_data_and_refuse_overwrite(tmp_path):
    root = tmp_path / "demo"
    shapes = {"source_train": (4, 64, 64), "target_train": (4, 64, 64), "target_test": (2, 64, 64)}
    specs = write_demo_data(root, shapes=shapes, seed=1)
    assert set(specs) == {"source_train", "target_train", "target_test"}
    for name, spec in specs.items():
        raw, mito = open_volume(spec["raw"]), open_volume(spec["mito"])
        assert raw.shape == shapes[name] and mito.shape == shapes[name]
        assert raw.dtype == np.uint8 and mito.dtype == np.uint8
        style = get_style("source" if name.startswith("source") else "target")
        assert tuple(raw.voxel_size) == tuple(mito.voxel_size) == style.voxel_size
        assert set(np.unique(mito.read())) == {0, 1}
        assert spec["raw"] == str(root / f"{name}.zarr" / "raw")
    first = open_volume(specs["target_test"]["raw"]).read()
    with pytest.raises(UserError, match="exists; pass --overwrite to replace it"):
        write_demo_data(root, shapes=shapes, seed=2)
    assert np.array_equal(open_volume(specs["target_test"]["raw"]).read(), first)
    write_demo_data(root, shapes=shapes, seed=2, overwrite=True)
    assert not np.array_equal(open_volume(specs["target_test"]["raw"]).read(), first)
    assert sorted(p.name for p in root.iterdir()) == ["source_train.zarr", "target_test.zarr", "target_train.zarr"]


def _synth_script():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "scripts" / "synth_volumes.py"
    spec = importlib.util.spec_from_file_location("synth_volumes", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_synth_script_writes_volumes_and_rejects_bad_input(tmp_path, capsys):
    script = _synth_script()
    out = tmp_path / "synth"
    assert script.main(["--out", str(out), "--shape", "2,48,40", "--seed", "5"]) == 0
    assert open_volume(str(out / "target_test.zarr" / "raw")).shape == (2, 48, 40)
    assert "source_train" in capsys.readouterr().out
    assert script.main(["--out", str(out), "--shape", "2,48,40"]) == 2  # exists, no --overwrite
    assert "--overwrite" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        script.main(["--out", str(tmp_path / "other"), "--shape", "2,48"])
    assert exc.value.code == 2 and not (tmp_path / "other").exists()
    assert "three positive integers Z,Y,X" in capsys.readouterr().err
