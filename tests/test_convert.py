"""``masktwins3d convert``: section folders, TIFF and HDF5 to OME-Zarr; label rules; bad inputs."""

import os
from pathlib import Path

import h5py
import numpy as np
import pytest
import tifffile
from PIL import Image

from cli_helpers import assert_user_error, run_cli
from masktwins3d.errors import UserError
from masktwins3d.io import open_volume
from masktwins3d.io.convert import LabelRule, binarize_section, convert_stack
from masktwins3d.io.stacks import open_stack

SHAPE = (3, 12, 16)


def _labels01(shape=SHAPE, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.random(shape) > 0.7).astype(np.uint8)


def _write_pngs(folder: Path, sections, mode="L", palette=None):
    folder.mkdir(parents=True, exist_ok=True)
    for z, sec in enumerate(sections):
        if mode == "P":
            sec = np.ascontiguousarray(sec, np.uint8)
            im = Image.frombytes("P", (sec.shape[1], sec.shape[0]), sec.tobytes())
            im.putpalette(palette)
        elif mode in ("RGB", "RGBA"):
            sec = np.asarray(sec, np.uint8)
            planes = [sec, 255 - sec, np.full_like(sec, 7)] + ([np.full_like(sec, 255)] if mode == "RGBA" else [])
            im = Image.fromarray(np.stack(planes, -1), mode=mode)
        elif mode == "I;16":
            im = Image.fromarray(np.asarray(sec, np.uint16))
        else:
            im = Image.fromarray(np.asarray(sec, np.uint8), mode="L")
        im.save(folder / f"s{z}.png")
    return folder


def _nothing_written(tmp_path, out):
    assert not Path(out).exists()
    assert not [p for p in Path(out).parent.iterdir() if ".partial-" in p.name]


# ---- images ------------------------------------------------------------------------------------


def test_png_folder_image_roundtrip_with_geometry(tmp_path, capsys):
    raw = np.random.default_rng(1).integers(0, 256, SHAPE, dtype=np.uint8)
    folder = _write_pngs(tmp_path / "sec", raw)
    out = tmp_path / "out.zarr"
    code, stdout, err = run_cli(capsys, "convert", "--input", folder, "--output", out, "--voxel-size", "40,4,4", "--offset", "2,3,4")
    assert code == 0, err
    vol = open_volume(out)
    assert vol.dtype == np.uint8 and vol.voxel_size == (40.0, 4.0, 4.0) and vol.offset == (2, 3, 4)
    np.testing.assert_array_equal(vol[:], raw)
    assert "3 sections of 12 x 16" in stdout and "from --voxel-size" in stdout and "folder of 3 PNG sections" in stdout
    assert "range 0 .. 255" in stdout or "values {" in stdout


@pytest.mark.parametrize("dtype", ["uint16", "float32", "float64"])
def test_tiff_sections_keep_image_dtype(tmp_path, dtype):
    data = (np.random.default_rng(2).random(SHAPE) * 1000).astype(dtype)
    folder = tmp_path / "tifs"
    folder.mkdir()
    for z in range(SHAPE[0]):
        tifffile.imwrite(folder / f"sec_{z:03d}.tif", data[z])
    summary = convert_stack(folder, tmp_path / "o.zarr", voxel_size=(30, 8, 8))
    vol = open_volume(tmp_path / "o.zarr")
    assert vol.dtype == np.dtype(dtype) and summary.out_dtype == dtype
    np.testing.assert_array_equal(vol[:], data)


def test_16bit_png_and_natural_order(tmp_path):
    data = np.random.default_rng(3).integers(0, 65535, (11, 5, 6), dtype=np.uint16)
    folder = _write_pngs(tmp_path / "p16", data, mode="I;16")  # s0 .. s10: natural order, s10 last
    convert_stack(folder, tmp_path / "o.zarr", voxel_size=(1, 1, 1))
    np.testing.assert_array_equal(open_volume(tmp_path / "o.zarr")[:], data)


def test_rgb_image_keeps_channel_0_with_note(tmp_path):
    raw = np.random.default_rng(4).integers(0, 256, SHAPE, dtype=np.uint8)
    folder = _write_pngs(tmp_path / "rgb", raw, mode="RGB")
    summary = convert_stack(folder, tmp_path / "o.zarr", voxel_size=(1, 1, 1))
    np.testing.assert_array_equal(open_volume(tmp_path / "o.zarr")[:], raw)
    assert any("RGB images: channel 0 kept" in n for n in summary.notes)


def test_palette_image_becomes_grey(tmp_path):
    idx = np.random.default_rng(5).integers(0, 2, SHAPE, dtype=np.uint8)
    palette = [0, 0, 0, 200, 200, 200] + [0] * (256 * 3 - 6)
    folder = _write_pngs(tmp_path / "pal", idx, mode="P", palette=palette)
    summary = convert_stack(folder, tmp_path / "o.zarr", voxel_size=(1, 1, 1))
    np.testing.assert_array_equal(open_volume(tmp_path / "o.zarr")[:], idx * 200)
    assert any("grey levels" in n for n in summary.notes)


def test_multipage_tiff_with_chunks(tmp_path):
    data = np.random.default_rng(6).integers(0, 256, (5, 12, 16), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "stack.tif", data, photometric="minisblack")
    summary = convert_stack(tmp_path / "stack.tif", tmp_path / "o.zarr", voxel_size=(50, 5, 5), chunks=(2, 8, 8))
    vol = open_volume(tmp_path / "o.zarr")
    np.testing.assert_array_equal(vol[:], data)
    assert vol.chunks == (2, 8, 8) and summary.chunks == (2, 8, 8) and "TIFF stack of 5 pages" in summary.kind


def test_multipage_rgb_tiff_labels(tmp_path):
    lab = _labels01() * 255
    rgb = np.stack([lab, np.zeros_like(lab), np.full_like(lab, 9)], -1).astype(np.uint8)
    tifffile.imwrite(tmp_path / "rgb.tif", rgb, photometric="rgb")
    summary = convert_stack(tmp_path / "rgb.tif", tmp_path / "o.zarr", labels=True, voxel_size=(1, 1, 1))
    np.testing.assert_array_equal(open_volume(tmp_path / "o.zarr")[:], lab // 255)
    assert any("channel 0" in n for n in summary.notes)


def test_imagej_tiff_voxel_size_from_metadata(tmp_path):
    data = np.zeros((2, 8, 8), np.uint8)
    tifffile.imwrite(tmp_path / "ij.tif", data, imagej=True, resolution=(1 / 0.004, 1 / 0.004),
                     metadata={"axes": "ZYX", "spacing": 0.04, "unit": "um"})
    summary = convert_stack(tmp_path / "ij.tif", tmp_path / "o.zarr")
    assert summary.voxel_size_from == "ImageJ TIFF metadata"
    np.testing.assert_allclose(open_volume(tmp_path / "o.zarr").voxel_size, (40, 4, 4))


def test_hdf5_voxel_size_from_file_attribute_and_dataset_offset(tmp_path, capsys):
    data = np.random.default_rng(7).integers(0, 256, SHAPE, dtype=np.uint8)
    with h5py.File(tmp_path / "v.h5", "w") as f:
        f.attrs["resolution_zyx_nm"] = (50, 4.6, 4.6)  # on the file root, as in VNC III
        f["raw"] = data
        g = f.create_group("volumes")
        d = g.create_dataset("img", data=data)
        d.attrs["resolution"] = (40, 4, 4)
        d.attrs["offset"] = (80, 8, 12)  # nm
    code, out, err = run_cli(capsys, "convert", "--input", f"{tmp_path}/v.h5:/raw", "--output", tmp_path / "a.zarr")
    assert code == 0, err
    assert "HDF5 attribute 'resolution_zyx_nm' of the file" in out
    vol = open_volume(tmp_path / "a.zarr")
    np.testing.assert_allclose(vol.voxel_size, (50, 4.6, 4.6))
    np.testing.assert_array_equal(vol[:], data)
    summary = convert_stack(f"{tmp_path}/v.h5:/volumes/img", tmp_path / "b.zarr")
    vol = open_volume(tmp_path / "b.zarr")
    assert vol.voxel_size == (40.0, 4.0, 4.0) and vol.offset == (2, 2, 3)
    assert "of the dataset" in summary.voxel_size_from


def test_sections_range(tmp_path, capsys):
    data = np.random.default_rng(8).integers(0, 256, (6, 8, 8), dtype=np.uint8)
    with h5py.File(tmp_path / "v.h5", "w") as f:
        f["raw"] = data
    code, out, err = run_cli(capsys, "convert", "--input", f"{tmp_path}/v.h5:/raw", "--output", tmp_path / "o.zarr",
                             "--voxel-size", "1,1,1", "--sections", "2,5")
    assert code == 0, err
    np.testing.assert_array_equal(open_volume(tmp_path / "o.zarr")[:], data[2:5])


# ---- labels ----------------------------------------------------------------------------------


def _label_case(kind, lab):
    """(PNG mode, stored sections, palette) for a 0/1 label ``lab`` stored as ``kind``."""
    palette = [0, 0, 0, 255, 0, 0] + [0] * (256 * 3 - 6)  # index 1 is red: read as RGB it would not be 1
    return {
        "gray01": ("L", lab, None),
        "gray0255": ("L", lab * 255, None),
        "one_and_255": ("L", np.where(lab > 0, np.where(np.arange(lab.shape[-1]) % 2, 255, 1), 0), None),
        "palette01": ("P", lab, palette),
        "rgb": ("RGB", lab * 255, None),
        "rgba": ("RGBA", lab * 255, None),
    }[kind]


@pytest.mark.parametrize("kind", ["gray01", "gray0255", "one_and_255", "palette01", "rgb", "rgba"])
def test_png_labels_rule_nonzero(tmp_path, capsys, kind):
    lab = _labels01()
    mode, stored, palette = _label_case(kind, lab)
    folder = _write_pngs(tmp_path / kind, stored, mode=mode, palette=palette)
    out = tmp_path / "lab.zarr"
    code, stdout, err = run_cli(capsys, "convert", "--input", folder, "--output", out, "--label", "--voxel-size", "50,4.6,4.6")
    assert code == 0, err
    vol = open_volume(out)
    assert vol.dtype == np.uint8
    np.testing.assert_array_equal(vol[:], lab)
    assert "rule nonzero (value > 0 is foreground)" in stdout
    assert f"foreground {100 * lab.mean():.2f} %" in stdout
    if kind == "palette01":
        assert "values {0, 1}" in stdout and "palette indices" in stdout
    if kind == "one_and_255":
        assert "values {0, 1, 255}" in stdout


def test_rule_half_for_antialiased_masks(tmp_path, capsys):
    lab = _labels01()
    noisy = lab * 255
    noisy[0, 0, :4] = [30, 100, 128, 200]  # edge noise: only 128 and 200 are foreground
    folder = _write_pngs(tmp_path / "aa", noisy)
    out = tmp_path / "lab.zarr"
    code, stdout, err = run_cli(capsys, "convert", "--input", folder, "--output", out, "--label", "--rule", "half", "--voxel-size", "1,1,1")
    assert code == 0, err
    np.testing.assert_array_equal(open_volume(out)[:], (noisy > 127).astype(np.uint8))
    assert "rule half (value > 127 is foreground)" in stdout
    # the default rule on the same input says what it did with the grey values
    code, stdout, err = run_cli(capsys, "convert", "--input", folder, "--output", tmp_path / "nz.zarr", "--label", "--voxel-size", "1,1,1")
    assert code == 0 and "--rule half" in stdout


def test_rule_half_on_01_labels_warns_empty(tmp_path):
    folder = _write_pngs(tmp_path / "z", _labels01())
    summary = convert_stack(folder, tmp_path / "o.zarr", labels=True, rule="half", voxel_size=(1, 1, 1))
    assert summary.foreground == 0.0
    assert any("use --rule nonzero" in n for n in summary.notes)


def test_label_hdf5_and_multipage_tiff(tmp_path):
    lab = _labels01()
    with h5py.File(tmp_path / "l.h5", "w") as f:
        f["mito"] = lab.astype(bool)
    convert_stack(f"{tmp_path}/l.h5:/mito", tmp_path / "a.zarr", labels=True, voxel_size=(1, 1, 1))
    np.testing.assert_array_equal(open_volume(tmp_path / "a.zarr")[:], lab)
    tifffile.imwrite(tmp_path / "l.tif", lab * 255, photometric="minisblack")
    convert_stack(tmp_path / "l.tif", tmp_path / "b.zarr", labels=True, voxel_size=(1, 1, 1))
    np.testing.assert_array_equal(open_volume(tmp_path / "b.zarr")[:], lab)


def test_binarize_section_rules():
    sec = np.array([0, 1, 127, 128, 255], np.uint8)
    assert binarize_section(sec, LabelRule.NONZERO).tolist() == [0, 1, 1, 1, 1]
    assert binarize_section(sec, LabelRule.HALF).tolist() == [0, 0, 0, 1, 1]


def test_like_lends_geometry_and_matches(tmp_path):
    raw = np.random.default_rng(9).integers(0, 256, SHAPE, dtype=np.uint8)
    convert_stack(_write_pngs(tmp_path / "raw", raw), tmp_path / "d.zarr/raw", voxel_size=(30, 8, 8), offset=(1, 0, 0))
    summary = convert_stack(_write_pngs(tmp_path / "lab", _labels01()), tmp_path / "d.zarr/mito", labels=True, like=tmp_path / "d.zarr/raw")
    vol = open_volume(tmp_path / "d.zarr/mito")
    assert vol.voxel_size == (30.0, 8.0, 8.0) and vol.offset == (1, 0, 0) and summary.voxel_size_from.startswith("--like")


# ---- bad input: one line, exit 2, nothing written ----------------------------------------------


def test_mixed_section_sizes_name_the_odd_file(tmp_path, capsys):
    folder = _write_pngs(tmp_path / "mixed", np.zeros((3, 12, 16), np.uint8))
    Image.fromarray(np.zeros((12, 20), np.uint8)).save(folder / "s1.png")
    out = tmp_path / "o.zarr"
    code, _, err = run_cli(capsys, "convert", "--input", folder, "--output", out, "--voxel-size", "1,1,1")
    assert_user_error(code, err, "s1.png", "12x20", "12x16", "same size")
    _nothing_written(tmp_path, out)


def test_empty_folder_and_no_images(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    out = tmp_path / "o.zarr"
    code, _, err = run_cli(capsys, "convert", "--input", empty, "--output", out, "--voxel-size", "1,1,1")
    assert_user_error(code, err, "holds no image sections")
    (empty / "notes.txt").write_text("x")
    code, _, err = run_cli(capsys, "convert", "--input", empty, "--output", out, "--voxel-size", "1,1,1")
    assert_user_error(code, err, "holds no image sections")
    _nothing_written(tmp_path, out)


def test_existing_output_needs_overwrite(tmp_path, capsys):
    folder = _write_pngs(tmp_path / "a", np.ones(SHAPE, np.uint8))
    out = tmp_path / "o.zarr"
    assert run_cli(capsys, "convert", "--input", folder, "--output", out, "--voxel-size", "1,1,1")[0] == 0
    folder2 = _write_pngs(tmp_path / "b", np.full(SHAPE, 7, np.uint8))
    code, _, err = run_cli(capsys, "convert", "--input", folder2, "--output", out, "--voxel-size", "1,1,1")
    assert_user_error(code, err, str(out), "--overwrite")
    assert int(open_volume(out)[0, 0, 0]) == 1
    code, _, err = run_cli(capsys, "convert", "--input", folder2, "--output", out, "--voxel-size", "1,1,1", "--overwrite")
    assert code == 0, err
    assert int(open_volume(out)[0, 0, 0]) == 7


def test_label_shape_differs_from_like(tmp_path, capsys):
    convert_stack(_write_pngs(tmp_path / "raw", np.zeros(SHAPE, np.uint8)), tmp_path / "raw.zarr", voxel_size=(1, 1, 1))
    labels = _write_pngs(tmp_path / "lab", np.zeros((4, 12, 16), np.uint8))
    out = tmp_path / "lab.zarr"
    code, _, err = run_cli(capsys, "convert", "--input", labels, "--output", out, "--label", "--like", tmp_path / "raw.zarr")
    assert_user_error(code, err, "4x12x16", "3x12x16", "--like")
    _nothing_written(tmp_path, out)


def test_missing_voxel_size_and_bad_options(tmp_path, capsys):
    folder = _write_pngs(tmp_path / "a", np.zeros(SHAPE, np.uint8))
    out = tmp_path / "o.zarr"
    cases = [
        (("--input", folder), ("no voxel size", "--voxel-size")),
        (("--input", folder, "--label", "--rule", "otsu", "--voxel-size", "1,1,1"), ("otsu", "nonzero", "half")),
        (("--input", folder, "--voxel-size", "1,1"), ("voxel size",)),
        (("--input", folder, "--voxel-size", "a,b,c"), ("--voxel-size",)),
        (("--input", tmp_path / "nope"), ("does not exist",)),
        (("--input", folder, "--dataset", "vnc3"), ("either --input",)),
        ((), ("either --input",)),
        (("--input", folder, "--voxel-size", "1,1,1", "--sections", "2,9"), ("sections",)),
    ]
    for argv, needles in cases:
        code, _, err = run_cli(capsys, "convert", "--output", out, *argv)
        assert_user_error(code, err, *needles)
    _nothing_written(tmp_path, out)


def test_unknown_dataset_lists_known_names(tmp_path, capsys):
    out = tmp_path / "o.zarr"
    code, _, err = run_cli(capsys, "convert", "--dataset", "nosuch", "--data-root", tmp_path, "--split", "a", "--output", out)
    assert_user_error(code, err, "unknown dataset 'nosuch'", "vnc3", "cdeep3m", "lucchi", "mitoem_h", "mitoem_r", "waspsyn")
    _nothing_written(tmp_path, out)


def test_failure_mid_write_leaves_nothing_and_keeps_old_output(tmp_path):
    folder = _write_pngs(tmp_path / "a", np.full(SHAPE, 3, np.uint8))
    out = tmp_path / "store.zarr" / "raw"

    def broken_stack():
        stack = open_stack(folder)
        base = stack.read

        def read(z):
            if z >= 2:
                raise RuntimeError("disk gone")
            return base(z)

        stack.read = read
        return stack

    with pytest.raises(RuntimeError):
        convert_stack(broken_stack(), out, voxel_size=(1, 1, 1))
    assert not out.exists() and not (tmp_path / "store.zarr").exists()
    convert_stack(folder, out, voxel_size=(1, 1, 1))
    with pytest.raises(RuntimeError):
        convert_stack(broken_stack(), out, voxel_size=(1, 1, 1), overwrite=True)
    assert int(open_volume(out)[2, 0, 0]) == 3  # the old output survives
    assert [p.name for p in (tmp_path / "store.zarr").iterdir() if "partial" in p.name] == []


def test_reads_one_section_at_a_time(tmp_path):
    folder = _write_pngs(tmp_path / "a", np.zeros((4, 8, 8), np.uint8))
    stack = open_stack(folder)
    seen = []
    base = stack.read

    def read(z):
        seen.append(z)
        return base(z)

    stack.read = read
    convert_stack(stack, tmp_path / "o.zarr", voxel_size=(1, 1, 1))
    assert seen == [0, 1, 2, 3]


def test_user_error_is_one_line_for_unreadable_section(tmp_path):
    folder = _write_pngs(tmp_path / "a", np.zeros(SHAPE, np.uint8))
    (folder / "s9.png").write_bytes(b"not a png")
    with pytest.raises(UserError, match="s9.png is not a readable image"):
        open_stack(folder)


# ---- real data ---------------------------------------------------------------------------------


def _data_dir() -> Path:
    root = Path(__file__).resolve().parents[1]
    return Path(os.environ.get("MASKTWINS3D_DATA", root.parent / "shared" / "data"))


def test_real_vnc3_sections(tmp_path, capsys):
    data = _data_dir()
    if not (data / "vnc3_stack1.h5").is_file():
        pytest.skip(f"real data not found: {data}/vnc3_stack1.h5 (set MASKTWINS3D_DATA)")
    h5 = data / "vnc3_stack1.h5"
    code, out, err = run_cli(capsys, "convert", "--input", f"{h5}:/raw", "--output", tmp_path / "vnc3.zarr/raw", "--sections", "0,3")
    assert code == 0, err
    code, out_l, err = run_cli(capsys, "convert", "--input", f"{h5}:/mito", "--output", tmp_path / "vnc3.zarr/mito",
                               "--sections", "0,3", "--label", "--like", tmp_path / "vnc3.zarr/raw")
    assert code == 0, err
    raw, mito = open_volume(tmp_path / "vnc3.zarr/raw"), open_volume(tmp_path / "vnc3.zarr/mito")
    assert raw.shape == mito.shape == (3, 1024, 1024)
    np.testing.assert_allclose(raw.voxel_size, (50, 4.6, 4.6))
    np.testing.assert_allclose(mito.voxel_size, (50, 4.6, 4.6))
    with h5py.File(h5, "r") as f:
        np.testing.assert_array_equal(raw[:], f["raw"][0:3])
        np.testing.assert_array_equal(mito[:], f["mito"][0:3] > 0)
    assert "resolution_zyx_nm" in out and "values {0, 1}" in out_l


@pytest.mark.parametrize("verb", [["convert"], ["datasets"]])
def test_help(capsys, verb):
    from masktwins3d.cli import main

    with pytest.raises(SystemExit) as exc:
        main([*verb, "--help"])
    assert exc.value.code == 0
    assert "usage: masktwins3d" in capsys.readouterr().out
