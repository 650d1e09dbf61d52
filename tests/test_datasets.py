"""Dataset descriptors (volumes/*.yaml): loading, validation, split conversion, listing."""

import os
from pathlib import Path

import h5py
import numpy as np
import pytest
from PIL import Image

from cli_helpers import assert_user_error, run_cli
from masktwins3d.errors import UserError
from masktwins3d.io import open_volume
from masktwins3d.io.convert import LabelRule
from masktwins3d.io.datasets import DESCRIPTOR_DIR, convert_split, list_datasets, load_dataset

KNOWN = {"vnc3", "cdeep3m", "lucchi", "mitoem_h", "mitoem_r", "waspsyn"}


def test_all_descriptors_load_with_documented_voxel_sizes():
    assert KNOWN <= set(list_datasets())
    sizes = {name: load_dataset(name).voxel_size for name in KNOWN}
    assert sizes["vnc3"] == (50.0, 4.6, 4.6)
    assert sizes["lucchi"] == (5.0, 5.0, 5.0)
    assert sizes["mitoem_h"] == sizes["mitoem_r"] == (30.0, 8.0, 8.0)
    assert sizes["waspsyn"] == (8.0, 8.0, 8.0)
    assert sizes["cdeep3m"] is None  # not known: --voxel-size required
    for name in KNOWN:
        ds = load_dataset(name)
        assert ds.citation and ds.licence and ds.splits
    vnc3 = load_dataset("vnc3")
    assert vnc3.split("stack1").raw.path == "vnc3_stack1.h5:/raw"
    assert vnc3.split("stack1").labels["mito"].labels and vnc3.split("stack1").labels["mito"].rule is LabelRule.NONZERO
    mito_val = load_dataset("mitoem_r").split("val")
    assert mito_val.raw.sections == (400, 500) and mito_val.raw.pattern == "im*.png"


def test_descriptors_are_tracked_by_git():
    ignore = (DESCRIPTOR_DIR.parent / ".gitignore").read_text().splitlines()
    assert "!/volumes/*.yaml" in ignore


def test_unknown_names_and_keys(tmp_path):
    with pytest.raises(UserError, match="unknown dataset 'nope'; known datasets: cdeep3m, lucchi"):
        load_dataset("nope")
    with pytest.raises(UserError, match="has no split 'stack9'; its splits: stack1, stack2"):
        load_dataset("vnc3").split("stack9")
    with pytest.raises(UserError, match="data root .* is not a folder"):
        load_dataset("vnc3", tmp_path / "missing")
    bad = {
        "top.yaml": "name: x\nvoxel_size: [1, 1, 1]\ncolour: red\nsplits: {a: {raw: a.tif}}\n",
        "split.yaml": "splits: {a: {raw: a.tif, lables: {}}}\n",
        "vol.yaml": "splits: {a: {raw: {path: a, glob: '*.png'}}}\n",
        "vs.yaml": "voxel_size: [1, 1]\nsplits: {a: {raw: a.tif}}\n",
        "sections.yaml": "splits: {a: {raw: {path: a, sections: [5, 2]}}}\n",
        "rule.yaml": "splits: {a: {raw: a.tif, labels: {m: {path: m.tif, rule: otsu}}}}\n",
        "norule.yaml": "splits: {a: {raw: {path: a.tif, rule: half}}}\n",
    }
    needles = {"top.yaml": "unknown key 'colour'", "split.yaml": "unknown key 'lables'", "vol.yaml": "unknown key 'glob'",
               "vs.yaml": "voxel size", "sections.yaml": "sections", "rule.yaml": "otsu", "norule.yaml": "label volumes only"}
    for name, text in bad.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(UserError) as info:
            load_dataset(str(tmp_path / name))
        assert needles[name] in str(info.value) and "\n" not in str(info.value)


def _fake_mitoem(root: Path, n=6, shape=(8, 10)):
    """A MitoEM-like layout: im/im0000.png.. and label folders of seg*.tif instance ids."""
    import tifffile

    rng = np.random.default_rng(0)
    im = root / "EM30-R-im" / "im"
    im.mkdir(parents=True)
    raw = rng.integers(0, 256, (n, *shape), dtype=np.uint8)
    for z in range(n):
        Image.fromarray(raw[z]).save(im / f"im{z:04d}.png")
    (im / "README.txt").write_text("not a section")
    seg = (rng.random((n, *shape)) > 0.6) * rng.integers(1, 900, (n, *shape))
    for folder, zs in (("mito-train-v2", range(0, 4)), ("mito-val-v2", range(4, 6))):
        d = root / "EM30-R-mito-train-val-v2" / folder
        d.mkdir(parents=True)
        for z in zs:
            tifffile.imwrite(d / f"seg{z:04d}.tif", seg[z].astype(np.uint16))
    return raw, seg


def test_convert_split_with_folder_pattern_and_sections(tmp_path):
    root = tmp_path / "data"
    raw, seg = _fake_mitoem(root)
    text = (DESCRIPTOR_DIR / "mitoem_r.yaml").read_text().replace("[0, 400]", "[0, 4]").replace("[400, 500]", "[4, 6]")
    (tmp_path / "mitoem_small.yaml").write_text(text)
    ds = load_dataset(str(tmp_path / "mitoem_small.yaml"), root)
    out = tmp_path / "out" / "mitoem.zarr"
    results = dict(convert_split(ds, "val", out))
    assert set(results) == {"raw", "mito"}
    r, m = open_volume(out / "raw"), open_volume(out / "mito")
    np.testing.assert_array_equal(r[:], raw[4:6])
    np.testing.assert_array_equal(m[:], (seg[4:6] > 0).astype(np.uint8))
    assert r.voxel_size == m.voxel_size == (30.0, 8.0, 8.0)
    assert "dataset descriptor" in results["raw"].voxel_size_from
    assert any("instance ids" in n for n in results["mito"].notes)
    # the opened Volume carries the descriptor's voxel size
    vol = ds.split("train").raw.open()
    assert vol.shape == (4, 8, 10) and vol.voxel_size == (30.0, 8.0, 8.0)
    np.testing.assert_array_equal(vol[1:3, 2:5], raw[1:3, 2:5])


def test_convert_split_checks_everything_before_writing(tmp_path, capsys):
    root = tmp_path / "data"
    _fake_mitoem(root)
    # the train labels cover 4 sections; a descriptor pairing them with 6 raw sections is caught
    text = (DESCRIPTOR_DIR / "mitoem_r.yaml").read_text().replace("[0, 400]", "[0, 6]")
    (tmp_path / "bad.yaml").write_text(text)
    out = tmp_path / "o.zarr"
    code, _, err = run_cli(capsys, "convert", "--dataset", tmp_path / "bad.yaml", "--data-root", root, "--split", "train", "--output", out)
    assert_user_error(code, err, "mito", "(4, 8, 10)", "(6, 8, 10)")
    assert not out.exists()
    code, _, err = run_cli(capsys, "convert", "--dataset", "waspsyn", "--data-root", root, "--split", "source", "--output", out)
    assert_user_error(code, err, "no raw volume recorded")
    code, _, err = run_cli(capsys, "convert", "--dataset", "vnc3", "--data-root", root, "--split", "stack1", "--output", out)
    assert_user_error(code, err, "does not exist")
    code, _, err = run_cli(capsys, "convert", "--dataset", "vnc3", "--data-root", root, "--split", "stack1", "--volumes", "nuclei", "--output", out)
    assert_user_error(code, err, "no volume 'nuclei'", "raw, mito, synapse, membrane")
    code, _, err = run_cli(capsys, "convert", "--dataset", "vnc3", "--split", "stack1", "--output", out)
    assert_user_error(code, err, "--data-root")
    assert not out.exists()


def test_cdeep3m_needs_voxel_size(tmp_path, capsys):
    root = tmp_path / "data"
    root.mkdir()
    with h5py.File(root / "cdeep3m_mito.h5", "w") as f:
        f["val_raw"] = np.zeros((2, 8, 8), np.uint8)
        f["val_mito"] = np.zeros((2, 8, 8), np.uint8)
    out = tmp_path / "c.zarr"
    code, _, err = run_cli(capsys, "convert", "--dataset", "cdeep3m", "--data-root", root, "--split", "val", "--output", out)
    assert_user_error(code, err, "no voxel size", "--voxel-size")
    assert not out.exists()
    code, stdout, err = run_cli(capsys, "convert", "--dataset", "cdeep3m", "--data-root", root, "--split", "val", "--output", out,
                                "--voxel-size", "30,10,10")
    assert code == 0, err
    assert open_volume(out / "mito").voxel_size == (30.0, 10.0, 10.0) and "[cdeep3m val mito]" in stdout


def test_datasets_listing(capsys):
    code, out, err = run_cli(capsys, "datasets")
    assert code == 0, err
    for name in KNOWN:
        assert f"{name}: " in out
    assert "50, 4.6, 4.6 nm" in out and "not known" in out
    code, _, err = run_cli(capsys, "datasets", "nope")
    assert_user_error(code, err, "unknown dataset 'nope'")


def _data_dir() -> Path:
    root = Path(__file__).resolve().parents[1]
    return Path(os.environ.get("MASKTWINS3D_DATA", root.parent / "shared" / "data"))


def test_real_data_descriptors_resolve(capsys):
    data = _data_dir()
    if not (data / "vnc3_stack1.h5").is_file():
        pytest.skip(f"real data not found: {data} (set MASKTWINS3D_DATA)")
    code, out, err = run_cli(capsys, "datasets", "vnc3", "--data-root", data)
    assert code == 0 and "(missing)" not in out, out
    ds = load_dataset("vnc3", data)
    with ds.split("stack1").labels["mito"].open() as vol:
        assert vol.shape == (20, 1024, 1024)
        np.testing.assert_allclose(vol.voxel_size, (50, 4.6, 4.6))  # from the file's resolution_zyx_nm
    if (data / "cdeep3m_mito.h5").is_file():
        cd = load_dataset("cdeep3m", data)
        assert all(v.exists() for s in cd.splits.values() for v in s.volumes().values())
