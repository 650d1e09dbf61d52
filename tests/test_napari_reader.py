"""The napari reader: every format, layer kinds, geometry, laziness, errors, and napari itself."""

import h5py
import numpy as np
import pytest
import tifffile
import zarr

from masktwins3d.errors import UserError
from masktwins3d.io import create_volume
from masktwins3d.io.points import SynapsePoints, write_points_csv, write_points_h5
from masktwins3d.io.volume import Volume
from masktwins3d.napari.layers import KEY
from masktwins3d.napari.reader import get_reader, layer_kind

da = pytest.importorskip("dask.array")

RNG = np.random.default_rng(0)
RAW = RNG.integers(0, 255, (4, 16, 20), dtype=np.uint8)
PTS = SynapsePoints(np.array([[1, 2, 3], [4, 5, 6]]), np.array([[0, 1, 2, 4], [1, 4, 5, 8], [1, 3, 6, 6]]))


def read(path):
    reader = get_reader(str(path))
    assert reader is not None, f"{path} refused"
    return reader(str(path))


def by_name(layers):
    return {kwargs["name"]: (data, kwargs, kind) for data, kwargs, kind in layers}


def check_volume(layer, values, kind, scale, translate=None):
    data, kwargs, layer_type = layer
    assert isinstance(data, da.Array)
    np.testing.assert_array_equal(np.asarray(data), values)
    assert kwargs["metadata"][KEY]["kind"] == kind
    assert layer_type == ("labels" if kind == "labels" else "image")
    assert kwargs["scale"] == pytest.approx(scale)
    assert kwargs["translate"] == pytest.approx(translate or [0.0] * len(scale))


def write_ome(path, levels, scales, axes="zyx"):
    """An OME-Zarr 0.5 multiscale image written with zarr directly (level i at path "i")."""
    group = zarr.open_group(str(path), mode="w", zarr_format=3)
    ax = [{"name": a, "type": "space", "unit": "nanometer"} for a in axes]
    datasets = [{"path": str(i), "coordinateTransformations": [{"type": "scale", "scale": list(scale)}]}
                for i, scale in enumerate(scales)]
    group.attrs["ome"] = {"version": "0.5", "multiscales": [{"axes": ax, "datasets": datasets}]}
    for i, level in enumerate(levels):
        group.create_array(str(i), shape=level.shape, dtype=level.dtype)[:] = level
    return path


# ---- zarr --------------------------------------------------------------------------------------


def test_zarr_array_with_attributes(tmp_path):
    arr = zarr.open_array(str(tmp_path / "plain.zarr"), mode="w", shape=RAW.shape, dtype=RAW.dtype, chunks=(1, 8, 8))
    arr[:] = RAW
    arr.attrs.update(resolution=[30, 6, 6], offset=[60, 12, 0])  # offset in nm
    (layer,) = read(tmp_path / "plain.zarr")
    assert layer[1]["name"] == "plain"
    check_volume(layer, RAW, "image", (30, 6, 6), (60, 12, 0))
    assert layer[1]["metadata"][KEY]["offset"] == [2, 2, 0]
    assert layer[0].chunksize == (1, 8, 8)


def test_ome_zarr_multiscale_is_one_layer_with_every_level(tmp_path):
    half = RAW[:, ::2, ::2]
    write_ome(tmp_path / "ms.zarr", [RAW, half], [(40, 8, 8), (40, 16, 16)])
    (layer,) = read(tmp_path / "ms.zarr")
    data, kwargs, kind = layer
    assert kind == "image" and kwargs["multiscale"] is True and kwargs["name"] == "ms"
    assert len(data) == 2 and all(isinstance(d, da.Array) for d in data)
    np.testing.assert_array_equal(np.asarray(data[0]), RAW)
    np.testing.assert_array_equal(np.asarray(data[1]), half)
    assert kwargs["scale"] == pytest.approx((40, 8, 8)) and kwargs["translate"] == pytest.approx((0, 0, 0))


def test_plain_group_gives_one_layer_per_array_and_image(tmp_path):
    root = zarr.open_group(str(tmp_path / "train.zarr"), mode="w")
    root.create_array("raw", shape=RAW.shape, dtype=RAW.dtype)[:] = RAW
    mito = (RAW > 128).astype(np.uint8)
    root.create_array("mito", shape=RAW.shape, dtype=np.uint8)[:] = mito
    root.create_array("line", shape=(5,), dtype=np.float32)  # 1-D: skipped
    prob = RNG.random(RAW.shape, dtype=np.float32)
    sub = root.create_group("pred")
    sub.create_array("prob_mito", shape=RAW.shape, dtype=np.float32)[:] = prob
    write_ome(tmp_path / "train.zarr" / "pred" / "ms", [RAW, RAW[:, ::2, ::2]], [(40, 4, 4), (40, 8, 8)])
    create_volume(tmp_path / "train.zarr" / "seg", RAW.shape, np.uint32, voxel_size=(40, 4, 4), offset=(1, 2, 3))[:] = 7
    layers = by_name(read(tmp_path / "train.zarr"))
    assert sorted(layers) == ["train mito", "train pred/ms", "train pred/prob_mito", "train raw", "train seg"]
    check_volume(layers["train raw"], RAW, "image", (1, 1, 1))
    check_volume(layers["train mito"], mito, "labels", (1, 1, 1))
    check_volume(layers["train pred/prob_mito"], prob, "probability", (1, 1, 1))
    check_volume(layers["train seg"], np.full(RAW.shape, 7, np.uint32), "labels", (40, 4, 4), (40, 8, 12))
    assert layers["train pred/ms"][1]["multiscale"] and len(layers["train pred/ms"][0]) == 2
    # a path inside the store: one array, named by its path in the store
    (one,) = read(tmp_path / "train.zarr" / "pred" / "prob_mito")
    assert one[1]["name"] == "train pred/prob_mito" and one[1]["metadata"][KEY]["kind"] == "probability"
    # a subgroup lists what is below it
    assert sorted(by_name(read(tmp_path / "train.zarr" / "pred"))) == ["train pred/ms", "train pred/prob_mito"]


def test_predict_output_with_two_channels_is_one_probability_layer(tmp_path):
    prob = RNG.random((2, *RAW.shape), dtype=np.float32)
    out = create_volume(tmp_path / "out.zarr", prob.shape, np.float32, voxel_size=(40, 8, 8), offset=(0, 4, 2))
    out[:] = prob
    (tmp_path / "out.zarr" / "blocks.jsonl").write_text("{}")
    (layer,) = read(tmp_path / "out.zarr")
    assert layer[1]["name"] == "out" and layer[0].ndim == 4
    check_volume(layer, prob, "probability", (1, 40, 8, 8), (0, 0, 32, 16))
    assert layer[1]["colormap"] == "magma" and layer[1]["contrast_limits"] == (0.0, 1.0)
    # the same float array without the manifest is an image
    (tmp_path / "out.zarr" / "blocks.jsonl").unlink()
    assert read(tmp_path / "out.zarr")[0][1]["metadata"][KEY]["kind"] == "image"


def test_single_channel_probability_drops_the_channel(tmp_path):
    prob = RNG.random((1, *RAW.shape), dtype=np.float32)
    create_volume(tmp_path / "p.zarr" / "prob", prob.shape, np.float32)[:] = prob
    (layer,) = read(tmp_path / "p.zarr")
    check_volume(layer, prob[0], "probability", (1, 1, 1))


@pytest.mark.parametrize(
    "word, dtype, kind",
    [
        ("mito", np.uint8, "labels"), ("Labels", np.int64, "labels"), ("gt_syn", np.uint16, "labels"),
        ("volumes/labels/neuron_ids", np.uint64, "image"), ("raw", np.uint8, "image"), ("mask", bool, "labels"),
        ("anything", bool, "labels"), ("prob", np.float32, "probability"),
        ("probability_mito", np.float16, "probability"),
        ("mito_prob", np.uint8, "probability"), ("mito", np.float32, "image"), ("raw", np.float32, "image"),
        ("prob", np.int32, "image"),
    ],
)
def test_layer_kind_rules(word, dtype, kind):
    assert layer_kind(word, dtype) == kind


def test_predicted_flag_needs_float_or_uint8():
    assert layer_kind("out", np.float32, predicted=True) == "probability"
    assert layer_kind("out", np.uint8, predicted=True) == "probability"
    assert layer_kind("out", np.uint16, predicted=True) == "image"


# ---- HDF5 ------------------------------------------------------------------------------------


def test_hdf5_one_layer_per_volume_dataset(tmp_path):
    labels = (RAW > 100).astype(np.uint8)
    with h5py.File(tmp_path / "cremi.hdf", "w") as f:
        f.create_dataset("volumes/raw", data=RAW).attrs["resolution"] = [40.0, 4.0, 4.0]
        d = f.create_dataset("volumes/labels/mito", data=labels)
        d.attrs.update(resolution=[40.0, 4.0, 4.0], offset=[80.0, 0.0, 8.0])
        f.create_dataset("scalar", data=3.0)
        f.create_dataset("line", data=np.arange(5))
    layers = by_name(read(tmp_path / "cremi.hdf"))
    assert sorted(layers) == ["cremi volumes/labels/mito", "cremi volumes/raw"]
    check_volume(layers["cremi volumes/raw"], RAW, "image", (40, 4, 4))
    check_volume(layers["cremi volumes/labels/mito"], labels, "labels", (40, 4, 4), (80, 0, 8))
    # a file:key spec opens that dataset only
    (one,) = read(f"{tmp_path / 'cremi.hdf'}:/volumes/raw")
    assert one[1]["name"] == "cremi volumes/raw"
    check_volume(one, RAW, "image", (40, 4, 4))


def check_points(layers, group, scale, translate):
    assert [k["name"] for _, k, _ in layers] == [f"{group} pre", f"{group} post", f"{group} links"]
    assert [t for _, _, t in layers] == ["points", "points", "vectors"]
    (pre, pre_kw, _), (post, post_kw, _), (links, links_kw, _) = layers
    np.testing.assert_array_equal(pre, PTS.pre)
    np.testing.assert_array_equal(post, PTS.post[:, 1:])
    assert pre_kw["features"]["id"].tolist() == [0, 1]
    assert post_kw["features"]["id"].tolist() == [0, 1, 2] and post_kw["features"]["pre_id"].tolist() == [0, 1, 1]
    np.testing.assert_array_equal(links[:, 0], PTS.post[:, 1:])
    np.testing.assert_array_equal(links[:, 0] + links[:, 1], PTS.pre[[0, 1, 1]])  # each post points to its pre
    for kw in (pre_kw, post_kw, links_kw):
        assert kw["scale"] == pytest.approx(scale) and kw["translate"] == pytest.approx(translate)
        assert kw["metadata"][KEY]["group"] == group


def test_waspsyn_points_h5(tmp_path):
    write_points_h5(tmp_path / "syns_pred.h5", PTS, voxel_size=(40, 8, 8), offset=(1, 2, 3))
    check_points(read(tmp_path / "syns_pred.h5"), "syns_pred", (40, 8, 8), (40, 16, 24))


def test_waspsyn_points_h5_without_attributes_and_with_a_volume(tmp_path):
    write_points_h5(tmp_path / "gt.h5", PTS)
    with h5py.File(tmp_path / "gt.h5", "a") as f:
        f.create_dataset("raw", data=RAW)
    layers = read(tmp_path / "gt.h5")
    check_points(layers[:3], "gt", (1, 1, 1), (0, 0, 0))
    assert len(layers) == 4
    check_volume(layers[3], RAW, "image", (1, 1, 1))


def test_pre_and_post_not_shaped_like_points_are_volumes(tmp_path):
    with h5py.File(tmp_path / "odd.h5", "w") as f:
        f.create_dataset("pre", data=RAW)
        f.create_dataset("post", data=RAW[0])
    layers = by_name(read(tmp_path / "odd.h5"))
    assert sorted(layers) == ["odd post", "odd pre"] and layers["odd pre"][0].shape == RAW.shape


# ---- TIFF, CSV --------------------------------------------------------------------------------


def test_tiff_stack_is_read_page_by_page(tmp_path):
    tifffile.imwrite(tmp_path / "stack_seg.tif", RAW, photometric="minisblack")
    (layer,) = read(tmp_path / "stack_seg.tif")
    assert layer[1]["name"] == "stack_seg" and layer[0].chunksize == (1, *RAW.shape[1:])
    check_volume(layer, RAW, "labels", (1, 1, 1))


def test_csv_folder_and_single_file(tmp_path):
    write_points_csv(tmp_path / "annot", PTS)
    check_points(read(tmp_path / "annot"), "annot", (1, 1, 1), (0, 0, 0))
    check_points(read(tmp_path / "annot" / "pre.csv"), "annot", (1, 1, 1), (0, 0, 0))
    check_points(read(tmp_path / "annot" / "post.csv"), "annot", (1, 1, 1), (0, 0, 0))


def test_several_paths_at_once(tmp_path):
    tifffile.imwrite(tmp_path / "a.tif", RAW, photometric="minisblack")
    write_points_h5(tmp_path / "p.h5", PTS)
    paths = [str(tmp_path / "a.tif"), str(tmp_path / "p.h5")]
    assert [k["name"] for _, k, _ in get_reader(paths)(paths)] == ["a", "p pre", "p post", "p links"]
    assert get_reader([str(tmp_path / "a.tif"), str(tmp_path / "x.png")]) is None


# ---- laziness ---------------------------------------------------------------------------------


def test_opening_a_huge_zarr_reads_nothing(tmp_path, monkeypatch):
    shape = (64, 4096, 4096)  # 1 GiB uint8; only two chunks are stored
    arr = zarr.open_array(str(tmp_path / "big.zarr"), mode="w", shape=shape, dtype=np.uint8, chunks=(1, 512, 512))
    arr[3, :512, :512] = 9
    arr[60, -512:, -512:] = 5
    reads = []
    original = Volume.__getitem__

    def counting(self, index):
        out = original(self, index)
        reads.append(out.size)
        return out

    monkeypatch.setattr(Volume, "__getitem__", counting)
    (layer,) = read(tmp_path / "big.zarr")
    data = layer[0]
    assert isinstance(data, da.Array) and data.shape == shape and sum(reads) == 0
    section = data[3].compute()
    assert section[:512, :512].min() == 9 and section[512:].max() == 0
    assert sum(reads) == 4096 * 4096  # one section, not the volume
    assert data[60, -1, -1].compute() == 5


# ---- errors -----------------------------------------------------------------------------------


def test_not_ours_gives_none(tmp_path):
    (tmp_path / "x.png").write_bytes(b"\x89PNG")
    (tmp_path / "table.csv").write_text("a,b\n1,2\n")
    (tmp_path / "folder").mkdir()
    paths = ("x.png", "table.csv", "folder", "missing.h5", "missing.zarr", "missing.tif", "gone/pre.csv",
             "missing.h5:/raw")
    for path in paths:
        assert get_reader(str(tmp_path / path)) is None, path
    assert get_reader([]) is None


BAD = ["empty_h5", "corrupt_h5", "empty_zarr", "corrupt_zarr", "plain_folder_zarr", "bad_csv"]


@pytest.mark.parametrize("case", BAD)
def test_bad_content_in_our_paths_is_a_one_line_user_error(tmp_path, case):
    if case == "empty_h5":
        h5py.File(tmp_path / "empty.h5", "w").close()
        path, words = tmp_path / "empty.h5", "no 2D-4D numeric dataset"
    elif case == "corrupt_h5":
        (tmp_path / "bad.h5").write_bytes(b"not hdf5 at all")
        path, words = tmp_path / "bad.h5", "not a readable HDF5 file"
    elif case == "empty_zarr":
        zarr.open_group(str(tmp_path / "e.zarr"), mode="w").create_group("sub")
        path, words = tmp_path / "e.zarr", "zarr group without 2D-4D numeric arrays"
    elif case == "corrupt_zarr":
        zarr.open_group(str(tmp_path / "c.zarr"), mode="w")
        (tmp_path / "c.zarr" / "zarr.json").write_text("{garbage")
        path, words = tmp_path / "c.zarr", "not a readable zarr"
    elif case == "plain_folder_zarr":
        (tmp_path / "f.zarr").mkdir()
        path, words = tmp_path / "f.zarr", "not a zarr array or group"
    else:
        (tmp_path / "pts").mkdir()
        (tmp_path / "pts" / "pre.csv").write_text("id,z,y\n0,1,2\n")
        path, words = tmp_path / "pts" / "pre.csv", "lacks ['x']"
    reader = get_reader(str(path))
    assert reader is not None
    with pytest.raises(UserError) as info:
        reader(str(path))
    message = str(info.value)
    assert path.parent.name in message and path.name.split(".")[0] in message and words in message
    assert "\n" not in message


def test_bad_points_attributes_name_the_file(tmp_path):
    write_points_h5(tmp_path / "p.h5", PTS, voxel_size=(40, 8, 8))
    with h5py.File(tmp_path / "p.h5", "a") as f:
        f.attrs["voxel_size"] = [40.0, 0.0, 8.0]
    with pytest.raises(UserError, match="p.h5 attribute 'voxel_size'"):
        read(tmp_path / "p.h5")


# ---- napari -----------------------------------------------------------------------------------


def test_viewer_opens_ome_zarr_multiscale(make_napari_viewer, tmp_path):
    write_ome(tmp_path / "em.zarr", [RAW, RAW[:, ::2, ::2]], [(40, 8, 8), (40, 16, 16)])
    viewer = make_napari_viewer(show=True)
    layers = viewer.open(str(tmp_path / "em.zarr"), plugin="masktwins3d")
    assert len(layers) == 1 and viewer.layers[0].name == "em"
    assert viewer.layers[0].multiscale and len(viewer.layers[0].data) == 2
    assert tuple(viewer.layers[0].scale) == pytest.approx((40, 8, 8))


def test_viewer_opens_waspsyn_points_and_labels(make_napari_viewer, tmp_path):
    write_points_h5(tmp_path / "syn.h5", PTS, voxel_size=(40, 8, 8), offset=(0, 1, 0))
    create_volume(tmp_path / "v.zarr" / "mito", RAW.shape, np.uint8, voxel_size=(40, 8, 8))[:] = RAW > 128
    viewer = make_napari_viewer(show=True)
    viewer.open(str(tmp_path / "syn.h5"), plugin="masktwins3d")
    viewer.open(str(tmp_path / "v.zarr"), plugin="masktwins3d")
    kinds = [type(layer).__name__ for layer in viewer.layers]
    assert kinds == ["Points", "Points", "Vectors", "Labels"]
    assert [layer.name for layer in viewer.layers] == ["syn pre", "syn post", "syn links", "v mito"]
    np.testing.assert_array_equal(viewer.layers["syn post"].data, PTS.post[:, 1:])
    assert viewer.layers["syn post"].features["pre_id"].tolist() == [0, 1, 1]
    assert tuple(viewer.layers["syn pre"].translate) == pytest.approx((0, 8, 0))
    assert tuple(viewer.layers["v mito"].scale) == pytest.approx((40, 8, 8))


def test_viewer_opens_hdf5_tiff_and_csv(make_napari_viewer, tmp_path):
    with h5py.File(tmp_path / "vol.h5", "w") as f:
        f.create_dataset("raw", data=RAW).attrs["resolution_zyx_nm"] = (40, 8, 8)
    tifffile.imwrite(tmp_path / "stack.tif", RAW, photometric="minisblack")
    write_points_csv(tmp_path / "annot", PTS)
    viewer = make_napari_viewer(show=True)
    for path in ("vol.h5", "stack.tif", "annot"):
        viewer.open(str(tmp_path / path), plugin="masktwins3d")
    assert [(layer.name, type(layer).__name__) for layer in viewer.layers] == [
        ("vol raw", "Image"), ("stack", "Image"), ("annot pre", "Points"), ("annot post", "Points"), ("annot links", "Vectors")]
    assert tuple(viewer.layers["vol raw"].scale) == pytest.approx((40, 8, 8))
    np.testing.assert_array_equal(np.asarray(viewer.layers["stack"].data[2]), RAW[2])
    np.testing.assert_array_equal(viewer.layers["annot pre"].data, PTS.pre)
