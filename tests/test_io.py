"""Volume I/O: every format round-trips values, axes, voxel size and offset; user errors are one line."""

from __future__ import annotations

import json
import pickle
import re

import h5py
import numpy as np
import pytest
import tifffile
import zarr
from PIL import Image

from masktwins3d.errors import UserError
from masktwins3d.geometry import Roi, as_coordinate, to_voxels, to_world
from masktwins3d.io import Volume, create_volume, open_volume
from masktwins3d.io import tiff_io
from masktwins3d.io.stacks import open_stack
from masktwins3d.io.volume import normalize_index

RNG = np.random.default_rng(0)
DATA = RNG.integers(0, 250, size=(6, 20, 24), dtype=np.uint8)
REGION = (slice(2, 5), slice(3, 11), slice(7, 20))


def check_volume(vol: Volume, data: np.ndarray, axes: str, voxel_size=(1.0, 1.0, 1.0), offset=(0, 0, 0)):
    assert vol.shape == data.shape and vol.ndim == data.ndim and vol.dtype == data.dtype
    assert vol.axes == axes
    assert vol.voxel_size == pytest.approx(tuple(voxel_size)) and vol.offset == tuple(offset)
    assert vol.spatial_shape == data.shape[-len(axes.lstrip("c")) :]
    region = REGION[-data.ndim :] if data.ndim <= 3 else (slice(None), *REGION)
    np.testing.assert_array_equal(vol[region], data[region])
    np.testing.assert_array_equal(vol.read(), data)


def one_line_error(match: str):
    """pytest.raises for a UserError whose single-line message contains ``match`` (plain text)."""
    return pytest.raises(UserError, match=re.escape(match))


# ---- geometry -----------------------------------------------------------------------------------


def test_roi_operations():
    a, b = Roi((0, 0, 0), (10, 20, 30)), Roi((5, -5, 10), (10, 10, 10))
    assert a.intersect(b) == Roi((5, 0, 10), (5, 5, 10))
    assert a.end == (10, 20, 30) and a.size == 6000
    assert a.contains((9, 19, 29)) and not a.contains((10, 0, 0))
    assert a.contains(Roi((1, 1, 1), (2, 2, 2))) and not a.contains(b)
    assert a.grow((1, 2, 3)) == Roi((-1, -2, -3), (12, 24, 36))
    assert a.grow((0, 0, 0), (-20, 0, 0)).empty
    assert b.to_slices(origin=(5, -5, 0)) == (slice(0, 10), slice(0, 10), slice(10, 20))
    assert a.shift((1, 1, 1)).offset == (1, 1, 1)
    assert b.to_world((40, 4, 4)) == ((200.0, -20.0, 40.0), (400.0, 40.0, 40.0))
    assert to_voxels(to_world((1, 2, 3), (40, 4, 4)), (40, 4, 4)) == (1.0, 2.0, 3.0)
    with pytest.raises(ValueError):
        as_coordinate((1.5, 0, 0))


# ---- indexing -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "index",
    [3, -1, (slice(None), 2), (Ellipsis, 5), (1, Ellipsis, slice(2, 9, 3)), slice(None, None, -2),
     (slice(5, 1, -1), slice(-3, None), slice(30, 40)), (np.int64(2), 3, 4), slice(4, 2)],
)
def test_indexing_matches_numpy(index):
    vol = Volume(DATA, path="mem", axes="zyx")
    expected = DATA[index]
    got = vol[index]
    assert np.shape(got) == np.shape(expected)
    np.testing.assert_array_equal(got, expected)


def test_index_key_is_positive_and_in_range():
    key, out_shape, flip = normalize_index((slice(None, None, -2), -1), (5, 4))
    assert key == (slice(0, 5, 2), 3) and out_shape == (3,) and flip == (0,)
    with pytest.raises(IndexError):
        normalize_index(7, (5, 4))
    with pytest.raises(TypeError):
        normalize_index(([1, 2],), (5, 4))


# ---- zarr -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", ["out.zarr", "out.zarr/pred/prob"])
def test_create_open_round_trip(tmp_path, spec):
    path = tmp_path / spec
    data = RNG.random((2, *DATA.shape), dtype=np.float32)
    vol = create_volume(path, data.shape, "float32", voxel_size=(40, 4, 4), offset=(3, -2, 5))
    assert vol.writable and vol.axes == "czyx" and vol.chunks == (2, 1, 20, 24)
    vol[:, :3] = data[:, :3]
    vol[:, 3:] = data[:, 3:]
    again = open_volume(path)
    check_volume(again, data, "czyx", (40, 4, 4), (3, -2, 5))
    check_volume(open_volume(f"{path}/0"), data, "czyx", (40, 4, 4), (3, -2, 5))  # the array inside the image
    meta = json.loads((path / "zarr.json").read_text())["attributes"]["ome"]["multiscales"][0]
    assert meta["datasets"][0]["coordinateTransformations"][1]["translation"] == [0.0, 120.0, -8.0, 20.0]
    assert [a["unit"] for a in meta["axes"][1:]] == ["nanometer"] * 3
    with one_line_error("is open read-only"):
        again[0, 0, 0, 0] = 1
    writable = open_volume(path, mode="r+")
    writable[0, 0, 0, 0] = 7
    assert open_volume(path)[0, 0, 0, 0] == 7


def test_create_zyx_fill_and_pickle(tmp_path):
    vol = create_volume(tmp_path / "m.zarr", (4, 300, 10), np.uint8, fill_value=9)
    assert vol.axes == "zyx" and vol.chunks == (1, 256, 10) and vol[3, 299, 9] == 9
    vol[1] = 2
    clone = pickle.loads(pickle.dumps(vol))
    assert clone.writable and clone[1, 5, 5] == 2 and clone.shape == vol.shape
    again = pickle.loads(pickle.dumps(clone))  # a worker's copy goes on to the next worker, and reopens
    assert again.writable and again[1, 5, 5] == 2 and again.reopen()[1, 5, 5] == 2


def test_create_refuses_existing_and_bad_paths(tmp_path):
    path = tmp_path / "o.zarr"
    create_volume(path, (2, 3, 4), "uint8")
    with one_line_error(f"{path} exists; pass --overwrite to replace it or choose another output"):
        create_volume(path, (2, 3, 4), "uint8")
    assert create_volume(path, (5, 3, 4), "uint16", overwrite=True).shape == (5, 3, 4)
    assert open_volume(path).dtype == np.uint16
    plain = create_volume(tmp_path / "plain" / ".x.partial" / "raw", (2, 3, 4), "uint8", voxel_size=(9, 9, 9))
    plain[0] = 1
    renamed = (tmp_path / "plain" / ".x.partial").rename(tmp_path / "x.zarr")  # written under a temporary name
    assert open_volume(renamed / "raw").voxel_size == (9.0, 9.0, 9.0) and open_volume(renamed / "raw")[0, 0, 0] == 1
    (tmp_path / "notzarr.zarr").mkdir()
    (tmp_path / "notzarr.zarr" / "keep.txt").write_text("x")
    with one_line_error("is not a zarr array or group; remove it yourself"):
        create_volume(tmp_path / "notzarr.zarr", (2, 3, 4), "uint8", overwrite=True)
    with one_line_error("is not a numpy dtype"):
        create_volume(tmp_path / "d.zarr", (2, 3, 4), "flot32")


def test_plain_zarr_v3_array_with_attrs(tmp_path):
    group = zarr.open_group(tmp_path / "x.zarr", mode="w")
    arr = group.create_array("volumes/raw", shape=DATA.shape, dtype=DATA.dtype, chunks=(1, 10, 10))
    arr[:] = DATA
    arr.attrs.update({"resolution": [30, 8, 8], "offset": [60, 80, 0]})
    check_volume(open_volume(tmp_path / "x.zarr/volumes/raw"), DATA, "zyx", (30, 8, 8), (2, 10, 0))
    with one_line_error("name an array inside it: " + f"{tmp_path / 'x.zarr'}/volumes/raw"):
        open_volume(tmp_path / "x.zarr")
    with one_line_error("x.zarr/volumes has no array 'labels'; arrays in it: raw"):
        open_volume(tmp_path / "x.zarr/volumes/labels")


def test_zarr_v2_array(tmp_path):
    arr = zarr.create_array(tmp_path / "v2.zarr", shape=DATA.shape, dtype=DATA.dtype, chunks=(2, 8, 8), zarr_format=2)
    arr[:] = DATA
    arr.attrs["voxel_size"] = [40, 4, 4]
    assert (tmp_path / "v2.zarr" / ".zarray").is_file()
    check_volume(open_volume(str(tmp_path / "v2.zarr")), DATA, "zyx", (40, 4, 4))


def test_ome_zarr_05_group_units_and_time_axis(tmp_path):
    group = zarr.open_group(tmp_path / "img.zarr", mode="w", zarr_format=3)
    axes = [{"name": "t", "type": "time"}, {"name": "c", "type": "channel"}] + [
        {"name": a, "type": "space", "unit": "micrometer"} for a in "zyx"
    ]
    datasets = [
        {"path": "s0", "coordinateTransformations": [
            {"type": "scale", "scale": [1, 1, 0.04, 0.004, 0.004]},
            {"type": "translation", "translation": [0, 0, 0.4, 0.0, 0.04]},
        ]},
        {"path": "s1", "coordinateTransformations": [{"type": "scale", "scale": [1, 1, 0.08, 0.008, 0.008]}]},
    ]
    group.attrs["ome"] = {"version": "0.5", "multiscales": [{"axes": axes, "datasets": datasets}]}
    group.create_array("s0", shape=(1, 1, *DATA.shape), dtype=DATA.dtype)[:] = DATA[None, None]
    group.create_array("s1", shape=(1, 1, 3, 10, 12), dtype=DATA.dtype)
    check_volume(open_volume(tmp_path / "img.zarr"), DATA[None], "czyx", (40, 4, 4), (10, 0, 10))
    check_volume(open_volume(tmp_path / "img.zarr/s0"), DATA[None], "czyx", (40, 4, 4), (10, 0, 10))
    assert open_volume(tmp_path / "img.zarr/s1").voxel_size == pytest.approx((80, 8, 8))
    # overrides win over metadata
    vol = open_volume(tmp_path / "img.zarr", voxel_size=(30, 5, 5), offset=(0, 1, 2))
    assert vol.voxel_size == (30.0, 5.0, 5.0) and vol.offset == (0, 1, 2)


def test_ome_zarr_04_v2_group_with_top_level_scale(tmp_path):
    group = zarr.open_group(tmp_path / "old.zarr", mode="w", zarr_format=2)
    group.create_array("0", shape=DATA.shape, dtype=DATA.dtype)[:] = DATA
    group.attrs["multiscales"] = [{
        "version": "0.4",
        "axes": [{"name": a, "type": "space", "unit": "nanometer"} for a in "zyx"],
        "datasets": [{"path": "0", "coordinateTransformations": [
            {"type": "scale", "scale": [20, 2, 2]}, {"type": "translation", "translation": [40, 4, 6]}]}],
        "coordinateTransformations": [{"type": "scale", "scale": [2, 2, 2]}],
    }]
    assert (tmp_path / "old.zarr" / ".zattrs").is_file()
    check_volume(open_volume(tmp_path / "old.zarr"), DATA, "zyx", (40, 4, 4), (2, 2, 3))


def test_ome_zarr_unknown_unit_and_half_voxel_offset(tmp_path):
    group = zarr.open_group(tmp_path / "u.zarr", mode="w")
    group.create_array("0", shape=(2, 3, 4), dtype="uint8")
    ms = {"axes": [{"name": a, "type": "space", "unit": "pixel"} for a in "zyx"],
          "datasets": [{"path": "0", "coordinateTransformations": [
              {"type": "scale", "scale": [1, 1, 1]}, {"type": "translation", "translation": [0, 0, 0.5]}]}]}
    group.attrs["ome"] = {"version": "0.5", "multiscales": [ms]}
    with one_line_error("unit 'pixel' is not a length unit; pass voxel_size="):
        open_volume(tmp_path / "u.zarr")
    with one_line_error("not a whole number of voxels"):
        open_volume(tmp_path / "u.zarr", voxel_size=(1, 1, 1))
    assert open_volume(tmp_path / "u.zarr", voxel_size=(1, 2, 2), offset=(0, 0, 0)).voxel_size == (1.0, 2.0, 2.0)


# ---- HDF5 -----------------------------------------------------------------------------------------


def test_hdf5_key_attributes_and_lazy_handle(tmp_path):
    file = tmp_path / "cremi.hdf"
    with h5py.File(file, "w") as f:
        ds = f.create_dataset("volumes/raw", data=DATA, chunks=(1, 10, 12))
        ds.attrs["resolution"] = (40.0, 4.0, 4.0)
        ds.attrs["offset"] = (80.0, 40.0, 0.0)
        f.create_dataset("volumes/labels/mito", data=(DATA > 100).astype(np.uint8)).attrs["resolution_zyx_nm"] = (30, 6, 6)
    vol = open_volume(f"{file}:/volumes/raw")
    check_volume(vol, DATA, "zyx", (40, 4, 4), (2, 10, 0))
    assert vol.chunks == (1, 10, 12)
    check_volume(open_volume(f"{file}/volumes/raw"), DATA, "zyx", (40, 4, 4), (2, 10, 0))
    assert open_volume(f"{file}:volumes/labels/mito").voxel_size == (30.0, 6.0, 6.0)
    clone = pickle.loads(pickle.dumps(vol))
    np.testing.assert_array_equal(clone[1], DATA[1])
    vol.close()
    with one_line_error(f"{file} holds 2 datasets; name one as file:/key: {file}:/volumes/labels/mito, {file}:/volumes/raw"):
        open_volume(file)
    with one_line_error(f"{file}: key 'volumes/gt' is missing; datasets in the file: {file}:/volumes/labels/mito"):
        open_volume(f"{file}:/volumes/gt")
    with one_line_error("is a group, not a dataset"):
        open_volume(f"{file}:/volumes")
    with one_line_error("HDF5 volumes are read only"):
        open_volume(f"{file}:/volumes/raw", mode="r+")


def test_hdf5_single_dataset_defaults_and_bad_offset(tmp_path):
    with h5py.File(tmp_path / "one.h5", "w") as f:
        f["data"] = DATA
    check_volume(open_volume(tmp_path / "one.h5"), DATA, "zyx")
    with h5py.File(tmp_path / "off.h5", "w") as f:
        f["data"] = DATA
        f["data"].attrs["voxel_size"] = (40, 4, 4)
        f["data"].attrs["offset"] = (0, 0, 6)
    with one_line_error("attribute 'offset' (nm) is [0.0, 0.0, 6.0], not a whole number of voxels"):
        open_volume(f"{tmp_path / 'off.h5'}:/data")
    assert open_volume(f"{tmp_path / 'off.h5'}:/data", offset=(0, 0, 1)).offset == (0, 0, 1)



def test_hdf5_voxel_size_from_the_nearest_group_or_the_root(tmp_path):
    """VNC III keeps resolution_zyx_nm on the file's root; a dataset's own attribute wins."""
    with h5py.File(tmp_path / "root.h5", "w") as f:
        f.attrs["resolution_zyx_nm"] = (50, 4.6, 4.6)
        f["raw"] = DATA
        f.create_group("labels").attrs["voxel_size"] = (30, 8, 8)
        f["labels/mito"] = DATA
        f["labels/own"] = DATA
        f["labels/own"].attrs["resolution"] = (10, 2, 2)
    assert open_volume(f"{tmp_path / 'root.h5'}:/raw").voxel_size == (50.0, 4.6, 4.6)
    assert open_volume(f"{tmp_path / 'root.h5'}:/labels/mito").voxel_size == (30.0, 8.0, 8.0)
    assert open_volume(f"{tmp_path / 'root.h5'}:/labels/own").voxel_size == (10.0, 2.0, 2.0)

# ---- TIFF -----------------------------------------------------------------------------------------


def test_multipage_tiff_with_imagej_voxel_size(tmp_path):
    data = DATA.astype(np.uint16) * 200
    tifffile.imwrite(tmp_path / "stack.tif", data, imagej=True, resolution=(1 / 0.004, 1 / 0.005),
                     metadata={"spacing": 0.04, "unit": "micron", "axes": "ZYX"})
    vol = open_volume(tmp_path / "stack.tif")
    check_volume(vol, data, "zyx", (40, 5, 4))
    assert vol.chunks == (1, 20, 24)
    tifffile.imwrite(tmp_path / "plain.tiff", DATA)
    check_volume(open_volume(tmp_path / "plain.tiff", voxel_size=(8, 8, 8), offset=(1, 2, 3)), DATA, "zyx", (8, 8, 8), (1, 2, 3))


def test_tiff_stack_reads_only_the_pages_it_needs(tmp_path, monkeypatch):
    tifffile.imwrite(tmp_path / "stack.tif", DATA)
    vol = open_volume(tmp_path / "stack.tif")
    pages = []
    original = tiff_io.TiffStackSource._page
    monkeypatch.setattr(tiff_io.TiffStackSource, "_page", lambda self, z: pages.append(z) or original(self, z))
    np.testing.assert_array_equal(vol[2:4, 5:9], DATA[2:4, 5:9])
    assert pages == [2, 3]


def test_single_page_tiff_is_2d_and_require_3d(tmp_path):
    tifffile.imwrite(tmp_path / "img.tif", DATA[0])
    vol = open_volume(tmp_path / "img.tif")
    check_volume(vol, DATA[0], "yx")
    with one_line_error(f"{tmp_path / 'img.tif'} is a 2D array of shape (20, 24); prediction needs a ZYX volume: give a 3D stack"):
        vol.require_3d("prediction")
    stack = open_volume(tmp_path / "img.tif", voxel_size=(1, 1, 1))
    assert stack.roi == Roi((0, 0, 0), (1, 20, 24))


def write_sections(folder, data, suffix, names=None):
    folder.mkdir()
    names = names or [f"s{z}{suffix}" for z in range(len(data))]
    for name, section in zip(names, data):
        if suffix == ".png":
            Image.fromarray(section).save(folder / name)
        else:
            tifffile.imwrite(folder / name, section)
    return names


@pytest.mark.parametrize("suffix", [".tif", ".png"])
def test_section_folder_natural_order_and_laziness(tmp_path, monkeypatch, suffix):
    data = RNG.integers(0, 250, size=(12, 9, 11), dtype=np.uint8)
    write_sections(tmp_path / "secs", data, suffix)  # s0..s11: natural order, not s0, s1, s10, s11, s2
    (tmp_path / "secs" / "notes.txt").write_text("ignored")
    vol = open_volume(tmp_path / "secs", voxel_size=(40, 4, 4))
    check_volume(vol, data, "zyx", (40, 4, 4))
    opened = []
    original = tiff_io.read_section
    monkeypatch.setattr(tiff_io, "read_section", lambda p, **kw: opened.append(p.name) or original(p, **kw))
    np.testing.assert_array_equal(vol[3], data[3])
    assert opened == [f"s3{suffix}"]
    opened.clear()
    np.testing.assert_array_equal(vol[10:7:-1, 2:5], data[10:7:-1, 2:5])
    assert sorted(opened) == sorted(f"s{z}{suffix}" for z in (8, 9, 10))


def test_section_folder_of_16bit_png(tmp_path):
    data = RNG.integers(0, 60000, size=(3, 5, 6), dtype=np.uint16)
    write_sections(tmp_path / "p16", data, ".png")
    check_volume(open_volume(tmp_path / "p16"), data, "zyx")


def test_section_folder_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with one_line_error(f"{tmp_path / 'empty'} holds no image sections (.tif, .tiff or .png); give a folder of 2D images"):
        open_volume(tmp_path / "empty")
    write_sections(tmp_path / "mixed", [DATA[0], DATA[1], DATA[2, :10]], ".tif")
    with one_line_error(f"{tmp_path / 'mixed' / 's2.tif'} is 10x24 uint8 but s0.tif is 20x24 uint8"):
        open_volume(tmp_path / "mixed")
    (tmp_path / "rgb").mkdir()
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "rgb" / "a.png")
    with one_line_error("is a RGB image; sections must be grayscale"):
        open_volume(tmp_path / "rgb")


def test_section_files_is_the_one_reader(tmp_path):
    """SectionFiles reads folders for open_volume and convert alike: natural order, lazy reads equal
    eager reads, and the first odd section is named in one line with the fix."""
    data = RNG.integers(0, 250, size=(11, 6, 7), dtype=np.uint8)
    names = write_sections(tmp_path / "secs", data, ".png", names=[f"im{z}.png" for z in (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10)])
    files = tiff_io.SectionFiles.in_folder(tmp_path / "secs", "secs")
    assert [f.name for f in files.files] == names  # im2 before im10
    assert files.shape == data.shape and files.dtype == np.uint8 and files.chunks == (1, 6, 7) and files.notes == []
    eager = np.stack([np.asarray(Image.open(f)) for f in files.files])
    np.testing.assert_array_equal(np.stack([files.read(z) for z in range(11)]), eager)
    np.testing.assert_array_equal(files[slice(2, 9, 1), slice(1, 4, 1), slice(0, 7, 1)], eager[2:9, 1:4])  # as Volume indexes it
    np.testing.assert_array_equal(open_volume(tmp_path / "secs")[:], eager)
    with open_stack(tmp_path / "secs") as stack:
        np.testing.assert_array_equal(np.stack([stack.read(z) for z in range(stack.shape[0])]), eager)
    assert [f.name for f in tiff_io.section_files(tmp_path / "secs", "im1*.png")] == ["im1.png", "im10.png"]

    Image.fromarray(data[5, :4]).save(tmp_path / "secs" / "im5.png")
    Image.fromarray(data[6].astype(np.uint16)).save(tmp_path / "secs" / "im6.png")
    size = f"{tmp_path / 'secs' / 'im5.png'} is 4x7 uint8 but im0.png is 6x7 uint8; all sections must have the same size: crop or pad them"
    for reader in (lambda: tiff_io.SectionFiles.in_folder(tmp_path / "secs", "secs"),
                   lambda: open_volume(tmp_path / "secs"), lambda: open_stack(tmp_path / "secs")):
        with one_line_error(size) as exc:
            reader()
        assert "\n" not in str(exc.value)
    Image.fromarray(data[5]).save(tmp_path / "secs" / "im5.png")
    with one_line_error(f"{tmp_path / 'secs' / 'im6.png'} is 6x7 uint16 but im0.png is 6x7 uint8; all sections must have the same dtype"):
        open_volume(tmp_path / "secs")


def test_section_files_colour_palette_and_byte_order(tmp_path):
    """Colour and palette sections: refused for open_volume, channel 0 / indices / grey for convert;
    big-endian TIFF sections read in native byte order."""
    (tmp_path / "rgb").mkdir()
    rgb = RNG.integers(0, 250, size=(5, 6, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "rgb" / "a.png")
    with one_line_error("is a RGB image; sections must be grayscale"):
        tiff_io.SectionFiles.in_folder(tmp_path / "rgb", "rgb")
    files = tiff_io.SectionFiles.in_folder(tmp_path / "rgb", "rgb", colour=True)
    np.testing.assert_array_equal(files.read(0), rgb[..., 0])
    assert files.notes == ["RGB images: channel 0 kept"]

    idx = np.array([[0, 1], [1, 0]], np.uint8)
    im = Image.fromarray(idx, mode="P")
    im.putpalette([0, 0, 0, 200, 200, 200] + [0] * (256 * 3 - 6))
    im.save(tmp_path / "p.png")
    np.testing.assert_array_equal(tiff_io.SectionFiles([tmp_path / "p.png"], colour=True, labels=True).read(0), idx)
    np.testing.assert_array_equal(tiff_io.SectionFiles([tmp_path / "p.png"], colour=True).read(0), idx * 200)

    big = RNG.integers(0, 60000, size=(2, 4, 5), dtype=np.uint16)
    (tmp_path / "be").mkdir()
    for z in range(2):
        tifffile.imwrite(tmp_path / "be" / f"s{z}.tif", big[z], byteorder=">")
    vol = open_volume(tmp_path / "be")
    assert vol.dtype == np.dtype("uint16")
    np.testing.assert_array_equal(vol[:], big)


def test_single_png_image(tmp_path):
    Image.fromarray(DATA[0]).save(tmp_path / "a.png")
    check_volume(open_volume(tmp_path / "a.png"), DATA[0], "yx")


# ---- other user errors ------------------------------------------------------------------------------


def test_missing_and_unknown_inputs(tmp_path):
    with one_line_error(f"{tmp_path / 'nope.tif'} does not exist; check the path"):
        open_volume(tmp_path / "nope.tif")
    with one_line_error(f"{tmp_path / 'nope.h5'} does not exist; check the path"):
        open_volume(f"{tmp_path / 'nope.h5'}:/raw")
    with one_line_error(f"{tmp_path / 'nope.zarr'} does not exist; check the path"):
        open_volume(tmp_path / "nope.zarr")
    (tmp_path / "vol.mrc").write_bytes(b"\0" * 16)
    with one_line_error(f"{tmp_path / 'vol.mrc'}: unknown volume format '.mrc'; masktwins3d reads zarr"):
        open_volume(tmp_path / "vol.mrc")
    (tmp_path / "bad.h5").write_bytes(b"not hdf5")
    with one_line_error("is not a readable HDF5 file"):
        open_volume(tmp_path / "bad.h5")
    with h5py.File(tmp_path / "five.h5", "w") as f:
        f["x"] = np.zeros((1, 1, 2, 2, 2))
        f["s"] = np.zeros((2, 2, 2), dtype="S3")
    with one_line_error("has 5 dimensions; masktwins3d reads YX, ZYX or CZYX arrays"):
        open_volume(f"{tmp_path / 'five.h5'}:/x")
    with one_line_error("has dtype |S3; masktwins3d reads bool, integer or float arrays"):
        open_volume(f"{tmp_path / 'five.h5'}:/s")


def test_every_user_error_is_one_line(tmp_path):
    (tmp_path / "empty").mkdir()
    for spec in [tmp_path / "empty", tmp_path / "x.unknown", tmp_path / "a.zarr"]:
        with pytest.raises(UserError) as info:
            open_volume(spec)
        assert "\n" not in str(info.value) and str(spec) in str(info.value)
