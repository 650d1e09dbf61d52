"""WASPSYN points files: HDF5 and CSV round trips, offsets, and every bad input."""

import h5py
import numpy as np
import pytest

from masktwins3d.errors import UserError
from masktwins3d.io.points import (
    SynapsePoints, check_inside, offset_from_gt_name, parse_offset, read_points, write_points_csv, write_points_h5,
)

PTS = SynapsePoints(np.array([[1, 2, 3], [10, 20, 30.5]]), np.array([[0, 1, 2, 7], [1, 10, 20, 36], [1, 12, 20, 30]]))
INTS = SynapsePoints(np.array([[1, 2, 3], [10, 20, 30]]), np.array([[1, 10, 20, 36]]))


def same(a: SynapsePoints, b: SynapsePoints) -> bool:
    return np.array_equal(a.pre, b.pre) and np.array_equal(a.post, b.post)


def test_h5_round_trip_with_attributes_and_storage_dtype(tmp_path):
    write_points_h5(tmp_path / "p.h5", PTS, voxel_size=(8, 8, 8), offset=(0, 5, 5))
    write_points_h5(tmp_path / "sub" / "i.h5", INTS)  # the folder is created
    assert same(read_points(tmp_path / "p.h5"), PTS) and same(read_points(tmp_path / "sub" / "i.h5"), INTS)
    with h5py.File(tmp_path / "p.h5") as f:
        assert f.attrs["voxel_size"].tolist() == [8.0, 8.0, 8.0] and f.attrs["offset"].tolist() == [0, 5, 5]
        assert f["pre"].dtype == np.float64 and f["post"].dtype == np.int64  # 30.5 keeps pre float
    with h5py.File(tmp_path / "sub" / "i.h5") as f:
        assert f["pre"].dtype == np.int64 and f["post"][()].tolist() == [[1, 10, 20, 36]]
        assert "voxel_size" not in f.attrs and "offset" not in f.attrs
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.h5", "sub"]  # atomic: no temp file left


def test_csv_layout_and_round_trip(tmp_path):
    write_points_csv(tmp_path / "csv", PTS)
    assert (tmp_path / "csv" / "pre.csv").read_text() == "id,z,y,x\n0,1,2,3\n1,10,20,30.5\n"
    assert (tmp_path / "csv" / "post.csv").read_text() == "id,pre_id,z,y,x\n0,0,1,2,7\n1,1,10,20,36\n2,1,12,20,30\n"
    back = read_points(tmp_path / "csv")
    assert same(back, PTS) and back.post_pre.tolist() == [0, 1, 1]
    assert same(read_points(tmp_path / "csv" / "post.csv"), PTS)  # either file names the folder
    exact = SynapsePoints(np.array([[0.1, 1 / 3, 123456789.25]]), np.zeros((0, 4)))
    write_points_csv(tmp_path / "exact", exact)
    assert same(read_points(tmp_path / "exact"), exact)  # no precision lost


def test_csv_ids_are_mapped_to_rows(tmp_path):
    (tmp_path / "pre.csv").write_text("id,z,y,x\n10,1,1,1\n20,2,2,2\n")
    # spaces in the header and an extra column are fine
    (tmp_path / "post.csv").write_text("id, pre_id, z, y, x, score\n7,20,3,3,3,0.9\n8,10,4,4,4,0.5\n")
    pts = read_points(tmp_path)
    assert pts.post.tolist() == [[1, 3, 3, 3], [0, 4, 4, 4]]


def test_empty_points(tmp_path):
    empty = SynapsePoints.empty()
    assert empty.pre.shape == (0, 3) and empty.post.shape == (0, 4)
    write_points_h5(tmp_path / "e.h5", empty)
    write_points_csv(tmp_path / "e", empty)
    for path in (tmp_path / "e.h5", tmp_path / "e"):
        back = read_points(path)
        assert back.pre.shape == (0, 3) and back.post.shape == (0, 4)
    with h5py.File(tmp_path / "flat.h5", "w") as f:  # 1-D empty datasets mean no points too
        f["pre"], f["post"] = np.zeros(0), np.zeros(0)
    assert read_points(tmp_path / "flat.h5").post.shape == (0, 4)


def test_points_are_checked_and_read_only():
    with pytest.raises(UserError, match=r"'pre' has shape \(2,\)"):
        SynapsePoints(np.array([1, 2]), np.zeros((0, 4)))
    with pytest.raises(UserError, match="post row 0 names pre row 1"):
        SynapsePoints(np.zeros((1, 3)), np.array([[1, 0, 0, 0]]))
    with pytest.raises(ValueError):
        PTS.pre[0, 0] = 5


def write_raw(path, **datasets):
    with h5py.File(path, "w") as f:
        for k, v in datasets.items():
            f[k] = v


@pytest.mark.parametrize("datasets,match", [
    ({"pre": np.zeros((1, 3))}, "has no 'post' dataset"),
    ({"post": np.zeros((0, 4))}, "has no 'pre' dataset"),
    ({"pre": np.zeros((1, 4)), "post": np.zeros((0, 4))}, r"'pre' has shape \(1, 4\); it must be \(N, 3\)"),
    ({"pre": np.zeros((1, 3)), "post": np.zeros((1, 3))}, r"'post' has shape \(1, 3\); it must be \(M, 4\)"),
    ({"pre": np.zeros((1, 3)), "post": np.array([[3, 1, 1, 1.0]])}, "post row 0 names pre row 3 but there are 1 pre"),
    ({"pre": np.zeros((1, 3)), "post": np.array([[0, 1, 1, 1], [-1, 1, 1, 1.0]])}, "post row 1 names pre row -1"),
    ({"pre": np.zeros((2, 3)), "post": np.array([[0.5, 1, 1, 1.0]])}, "names pre row 0.5"),
    ({"pre": np.zeros((0, 3)), "post": np.array([[0, 1, 1, 1.0]])}, r"there are 0 pre points \(none\)"),
    ({"pre": np.array([[0, 0, 0], [np.nan, 1, 1]]), "post": np.zeros((0, 4))}, "'pre' row 1 holds NaN or inf"),
    ({"pre": np.zeros((1, 3)), "post": np.array([[0, np.inf, 1, 1]])}, "'post' row 0 holds NaN or inf"),
    ({"pre": np.array([b"a", b"b", b"c"]), "post": np.zeros((0, 4))}, "'pre' is not numeric"),
])
def test_bad_h5_files_name_the_file(tmp_path, datasets, match):
    write_raw(tmp_path / "bad.h5", **datasets)
    with pytest.raises(UserError, match=match) as info:
        read_points(tmp_path / "bad.h5")
    assert str(tmp_path / "bad.h5") in str(info.value) and "\n" not in str(info.value)


def test_missing_and_non_h5_files(tmp_path):
    with pytest.raises(UserError, match="nope.h5 does not exist"):
        read_points(tmp_path / "nope.h5")
    (tmp_path / "x.h5").write_text("hello")
    with pytest.raises(UserError, match="x.h5 is not an HDF5 file"):
        read_points(tmp_path / "x.h5")
    with h5py.File(tmp_path / "g.h5", "w") as f:
        f.create_group("pre")
        f["post"] = np.zeros((0, 4))
    with pytest.raises(UserError, match="g.h5 has no 'pre' dataset"):
        read_points(tmp_path / "g.h5")


@pytest.mark.parametrize("pre,post,match", [
    ("id,z,y,x\n0,1,2,3\n", None, "post.csv does not exist"),
    ("id,z,y\n0,1,2\n", "id,pre_id,z,y,x\n", r"pre.csv has columns \['id', 'z', 'y'\] and lacks \['x'\]"),
    ("id,z,y,x\n0,1,2,3\n", "id,pre_id,z,y,x\n0,5,1,2,3\n", "post id 0 names pre_id 5, which is not an id in pre.csv"),
    ("id,z,y,x\n0,1,2,3\n", "id,pre_id,z,y,x\n0,0,1,two,3\n", "post.csv line 2: .* is not all numbers"),
    ("id,z,y,x\n0,1,2,3\n", "id,pre_id,z,y,x\n0,0,1,2\n", "post.csv line 2"),  # a missing cell
    ("id,z,y,x\n0,1,2,3\n0,4,5,6\n", "id,pre_id,z,y,x\n", "pre.csv: id 0 appears more than once"),
    ("id,z,y,x\n0.5,1,2,3\n", "id,pre_id,z,y,x\n", "pre.csv: column 'id' holds a value that is not a whole number"),
    ("id,z,y,x\n0,1,nan,3\n", "id,pre_id,z,y,x\n", "'pre' row 0 holds NaN or inf"),
])
def test_bad_csv_folders_name_the_file(tmp_path, pre, post, match):
    folder = tmp_path / "pts"
    folder.mkdir()
    (folder / "pre.csv").write_text(pre)
    if post is not None:
        (folder / "post.csv").write_text(post)
    with pytest.raises(UserError, match=match) as info:
        read_points(folder)
    assert str(folder) in str(info.value) and "\n" not in str(info.value)


def test_points_inside_the_volume():
    check_inside(PTS, (13, 21, 37))  # largest coordinates 12, 20, 36: inside
    check_inside(PTS, (2, 13, 21, 37))  # a leading channel axis is ignored
    outside = r"gt.h5: post row 1 at z,y,x=\(10.0, 20.0, 36.0\) lies outside the volume of shape \(13, 21, 36\)"
    with pytest.raises(UserError, match=outside):
        check_inside(PTS, (13, 21, 36), where="gt.h5")
    with pytest.raises(UserError, match="pre row 0"):
        check_inside(SynapsePoints(np.array([[0, -1, 0]]), np.zeros((0, 4))), (5, 5, 5))
    check_inside(SynapsePoints.empty(), (1, 1, 1))


def test_offsets():
    assert parse_offset("0,512,1024") == (0, 512, 1024)
    assert parse_offset(" 1, -2 ,3") == (1, -2, 3)
    assert parse_offset((4, 5.0, 6)) == (4, 5, 6)
    assert parse_offset(None) == (0, 0, 0)
    for bad in ("1,2", "a,b,c", "1.5,2,3", "1,2,3,4", "", (1, 2.5, 3)):
        with pytest.raises(UserError, match="is not three whole numbers z,y,x; write e.g. --offset 0,512,1024"):
            parse_offset(bad)
    with pytest.raises(UserError, match="^data.offset"):
        parse_offset("x", flag="data.offset")
    assert offset_from_gt_name("syns_zyx_100-300_2000-2200_500-700.h5") == (100, 2000, 500)
    assert offset_from_gt_name("/data/ref/vol1/syns_zyx_3680-4096_2944-3360_4448-4864.h5") == (3680, 2944, 4448)
    for other in ("volume.h5", "syns_zyx_1-2_3-4_5-6_predict.h5", "syns_zyx_1-2_3-4.h5", "syns_zyx_1-2_3-4_5-6.zarr"):
        assert offset_from_gt_name(other) is None
