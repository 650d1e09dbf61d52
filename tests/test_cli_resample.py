"""``masktwins3d resample``: in-plane zoom of a volume's sections, and back onto a grid with --like."""

import numpy as np

from cli_helpers import assert_user_error, run_cli
from masktwins3d.io import create_volume, open_volume


def _volumes(tmp_path):
    raw = create_volume(str(tmp_path / "in.zarr" / "raw"), (3, 32, 48), np.uint8, voxel_size=(50, 4.6, 4.6), offset=(0, 0, 0))
    raw[...] = np.arange(3 * 32 * 48, dtype=np.int64).reshape(3, 32, 48) % 251
    lab = create_volume(str(tmp_path / "in.zarr" / "mito"), (3, 32, 48), np.uint8, voxel_size=(50, 4.6, 4.6), offset=(0, 0, 0))
    lab[...] = 0
    lab[:, 8:24, 8:24] = 1
    return raw, lab


def test_resample_halves_the_sections_and_doubles_the_voxel_size(tmp_path, capsys):
    _volumes(tmp_path)
    code, out, _ = run_cli(capsys, "resample", "--input", tmp_path / "in.zarr" / "raw", "--output", tmp_path / "half.zarr" / "raw",
                           "--scale", "0.5", "--dtype", "uint8")
    assert code == 0 and "(3, 16, 24)" in out
    half = open_volume(str(tmp_path / "half.zarr" / "raw"))
    assert half.shape == (3, 16, 24) and half.dtype == np.uint8
    assert np.allclose(half.voxel_size, (50, 9.2, 9.2))
    code, _, _ = run_cli(capsys, "resample", "--input", tmp_path / "in.zarr" / "mito", "--output", tmp_path / "half.zarr" / "mito",
                         "--scale", "0.5", "--label")
    lab = open_volume(str(tmp_path / "half.zarr" / "mito"))[:]
    assert code == 0 and set(np.unique(lab)) == {0, 1}  # nearest: no values in between
    assert lab[:, 4:12, 4:12].all() and lab.sum() == 3 * 8 * 8  # the 16-pixel square becomes an 8-pixel one


def test_resample_like_brings_a_volume_back_onto_the_grid(tmp_path, capsys):
    _volumes(tmp_path)
    run_cli(capsys, "resample", "--input", tmp_path / "in.zarr" / "mito", "--output", tmp_path / "half.zarr" / "mito", "--scale", "0.5", "--label")
    code, _, _ = run_cli(capsys, "resample", "--input", tmp_path / "half.zarr" / "mito", "--output", tmp_path / "back.zarr" / "mito",
                         "--scale", "2", "--label", "--like", tmp_path / "in.zarr" / "raw")
    back = open_volume(str(tmp_path / "back.zarr" / "mito"))
    assert code == 0 and back.shape == (3, 32, 48) and np.allclose(back.voxel_size, (50, 4.6, 4.6))
    assert np.array_equal(back[:], open_volume(str(tmp_path / "in.zarr" / "mito"))[:])


def test_resample_refuses_what_would_lose_data(tmp_path, capsys):
    _volumes(tmp_path)
    raw = tmp_path / "in.zarr" / "raw"
    before = open_volume(str(raw))[:].copy()
    code, _, err = run_cli(capsys, "resample", "--input", raw, "--output", raw, "--scale", "0.5")
    assert_user_error(code, err, "--output")  # the output would be the input
    code, _, err = run_cli(capsys, "resample", "--input", raw, "--output", tmp_path / "in.zarr" / "mito", "--scale", "0.5")
    assert_user_error(code, err, "exists", "--overwrite")
    code, _, err = run_cli(capsys, "resample", "--input", raw, "--output", tmp_path / "o.zarr" / "raw", "--scale", "0")
    assert_user_error(code, err, "--scale")
    assert np.array_equal(open_volume(str(raw))[:], before) and not (tmp_path / "o.zarr").exists()
