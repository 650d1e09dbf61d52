"""WASPSYN points files: HDF5 and CSV round trips and every bad input."""

import h5py
import numpy as np
import pytest

from masktwins3d.errors import UserError
from masktwins3d.io.points import (
    SynapsePoints, check_inside, offset_from_gt_name, parse_offset, read_points, write_points_csv, write_points_h5,
)

PTS = SynapsePoints(np.array([[1, 2, 3], [10, 20, 30.5]]), np.array([[0, 1, 2, 7], [1, 10, 20, 36], [1, 12, 20, 30]]))


def test_h5_and_csv_round_trip(tmp_path):
    write_points_h5(tmp_path / "p.h5", PTS, voxel_size=(8, 8, 8), offset=(0, 5, 5))
    back = read_points(tmp_path / "p.h5")
    assert np.array_equal(back.pre, PTS.pre) and np.array_equal(back.post, PTS.post)
    with h5py.File(tmp_path / "p.h5") as f:
        assert f.attrs["voxel_size"].tolist() == [8, 8, 8] and f.attrs["offset"].tolist() == [0, 5, 5]
    write_points_csv(tmp_path / "csv", PTS)
    assert (tmp_path / "csv" / "post.csv").read_text().splitlines()[0] == "id,pre_id,z,y,x"
    back = read_points(tmp_path / "csv")
    assert np.array_equal(back.pre, PTS.pre) and np.array_equal(back.post, PTS.post)
    assert back.post_pre.tolist() == [0, 1, 1]


def test_empty_points_round_trip(tmp_path):
    empty = SynapsePoints(np.zeros((0, 3)), np.zeros((0, 4)))
    write_points_h5(tmp_path / "e.h5", empty)
    back = read_points(tmp_path / "e.h5")
    assert back.pre.shape == (0, 3) and back.post.shape == (0, 4)


def write_raw(path, **datasets):
    with h5py.File(path, "w") as f:
        for k, v in datasets.items():
            f[k] = v


@pytest.mark.parametrize("datasets,match", [
    ({"pre": np.zeros((1, 3))}, "no 'post' dataset"),
    ({"pre": np.zeros((1, 4)), "post": np.zeros((0, 4))}, r"'pre' has shape \(1, 4\)"),
    ({"pre": np.zeros((1, 3)), "post": np.zeros((1, 3))}, r"'post' has shape \(1, 3\)"),
    ({"pre": np.zeros((1, 3)), "post": np.array([[3, 1, 1, 1.0]])}, "names pre row 3"),
    ({"pre": np.zeros((1, 3)), "post": np.array([[-1, 1, 1, 1.0]])}, "names pre row -1"),
    ({"pre": np.array([[np.nan, 1, 1]]), "post": np.zeros((0, 4))}, "NaN"),
])
def test_bad_h5_files_name_the_file(tmp_path, datasets, match):
    write_raw(tmp_path / "bad.h5", **datasets)
    with pytest.raises(UserError, match=match) as info:
        read_points(tmp_path / "bad.h5")
    assert "bad.h5" in str(info.value)


def test_missing_and_non_h5_files(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        read_points(tmp_path / "nope.h5")
    (tmp_path / "x.h5").write_text("hello")
    with pytest.raises(UserError, match="not an HDF5 file"):
        read_points(tmp_path / "x.h5")
    (tmp_path / "csv").mkdir()
    (tmp_path / "csv" / "pre.csv").write_text("id,z,y,x\n0,1,2,3\n")
    (tmp_path / "csv" / "post.csv").write_text("id,pre_id,z,y,x\n0,5,1,2,3\n")
    with pytest.raises(UserError, match="pre_id 5"):
        read_points(tmp_path / "csv")


def test_points_inside_the_volume():
    check_inside(PTS, (13, 21, 37))
    with pytest.raises(UserError, match="outside the volume"):
        check_inside(PTS, (13, 21, 31), where="gt.h5")


def test_offsets():
    assert parse_offset("0,512,1024") == (0, 512, 1024)
    assert parse_offset(None) == (0, 0, 0)
    for bad in ("1,2", "a,b,c", "1.5,2,3"):
        with pytest.raises(UserError, match="--offset"):
            parse_offset(bad)
    assert offset_from_gt_name("syns_zyx_100-300_2000-2200_500-700.h5") == (100, 2000, 500)
    assert offset_from_gt_name("volume.h5") is None
