"""precomputed:// and n5:// volumes (tensorstore): written with tensorstore here, opened with
open_volume (geometry carried, X,Y,Z read as Z,Y,X), written by create_volume and predict,
read by evaluate and the napari reader; bad inputs are one line, exit 2, nothing written."""

import json
import pickle
import socket

import numpy as np
import pytest

from masktwins3d.config import load_config
from masktwins3d.errors import UserError
from masktwins3d.io import create_volume, open_volume
from masktwins3d.io import tensorstore_io
from masktwins3d.io.tensorstore_io import copy_to_tensorstore, create_tensorstore
from masktwins3d.train import train

from cli_helpers import assert_user_error, run_cli
from conftest import tiny_overrides

ts = pytest.importorskip("tensorstore")

RNG = np.random.default_rng(0)
RAW = RNG.integers(0, 255, (12, 40, 36), dtype=np.uint8)  # Z, Y, X


def write_precomputed(path, data, resolution_zyx=(40, 4, 4), offset_zyx=(3, 5, 7), chunk_zyx=(4, 16, 16), scales=1,
                      kind="image"):
    """A precomputed volume at ``path`` written with tensorstore alone (X, Y, Z, channel order on disk)."""
    for i in range(scales):
        level = data[:, :: 2 ** i, :: 2 ** i]
        res = (resolution_zyx[0], resolution_zyx[1] * 2 ** i, resolution_zyx[2] * 2 ** i)
        store = ts.open({
            "driver": "neuroglancer_precomputed", "kvstore": f"file://{path}/",
            "multiscale_metadata": {"type": kind, "data_type": str(data.dtype), "num_channels": 1},
            "scale_metadata": {"size": list(level.shape[::-1]), "voxel_offset": list(offset_zyx[::-1]),
                               "resolution": list(res[::-1]), "encoding": "raw", "chunk_size": list(chunk_zyx[::-1])},
        }, create=True, open=i > 0).result()
        view = store[ts.d[:].translate_to[0]]
        view.write(level.transpose(2, 1, 0)[..., None]).result()  # X, Y, Z, channel
    return f"precomputed://{path}"


def write_n5(path, data, attrs=None, group_attrs=None):
    """An N5 dataset as Java tools write it: dimensions X, Y, Z; extra attributes merged in."""
    store = ts.open({"driver": "n5", "kvstore": f"file://{path}/",
                     "metadata": {"dimensions": list(data.shape[::-1]), "blockSize": [16, 16, 4], "dataType": str(data.dtype),
                                  "compression": {"type": "gzip"}}}, create=True).result()
    store.write(data.transpose(2, 1, 0)).result()
    meta = json.loads((path / "attributes.json").read_text())
    (path / "attributes.json").write_text(json.dumps({**meta, **(attrs or {})}))
    if group_attrs is not None:
        (path.parent / "attributes.json").write_text(json.dumps({"n5": "2.5.0", **group_attrs}))
    return f"n5://{path}"


def test_precomputed_round_trip(tmp_path):
    spec = write_precomputed(tmp_path / "raw", RAW, scales=2)
    vol = open_volume(spec)
    assert vol.axes == "zyx" and vol.shape == RAW.shape and vol.dtype == np.uint8
    assert vol.voxel_size == (40.0, 4.0, 4.0) and vol.offset == (3, 5, 7) and vol.chunks == (4, 16, 16)
    np.testing.assert_array_equal(vol[:], RAW)
    np.testing.assert_array_equal(vol[2:9, ::-3, 5], RAW[2:9, ::-3, 5])
    assert vol[1, 2, 3] == RAW[1, 2, 3]
    coarse = open_volume(spec, scale_index=1)
    assert coarse.shape == (12, 20, 18) and coarse.voxel_size == (40.0, 8.0, 8.0)
    np.testing.assert_array_equal(coarse[:], RAW[:, ::2, ::2])
    by_key = open_volume(f"{spec}/8_8_40")
    assert by_key.shape == coarse.shape and by_key.voxel_size == coarse.voxel_size
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(vol))[4], RAW[4])  # reopens in a worker


def test_n5_round_trip(tmp_path):
    vol = open_volume(write_n5(tmp_path / "a.n5" / "raw", RAW, {"resolution": [4, 4, 40], "offset": [28, 20, 120]}))
    assert vol.shape == RAW.shape and vol.voxel_size == (40.0, 4.0, 4.0) and vol.offset == (3, 5, 7)
    np.testing.assert_array_equal(vol[:], RAW)
    np.testing.assert_array_equal(vol[5, 3:30:4], RAW[5, 3:30:4])
    pix = open_volume(write_n5(tmp_path / "b.n5" / "raw", RAW, {"pixelResolution": {"dimensions": [0.004, 0.005, 0.05], "unit": "um"}}))
    assert pix.voxel_size == pytest.approx((50.0, 5.0, 4.0)) and pix.offset == (0, 0, 0)
    inherited = open_volume(write_n5(tmp_path / "c.n5" / "s0", RAW, group_attrs={"resolution": [8, 8, 8]}))
    assert inherited.voxel_size == (8.0, 8.0, 8.0)
    given = open_volume(write_n5(tmp_path / "d.n5" / "raw", RAW), voxel_size=(30, 6, 6))
    assert given.voxel_size == (30.0, 6.0, 6.0)


def test_create_precomputed_with_geometry(tmp_path):
    spec = f"precomputed://{tmp_path / 'prob'}"
    out = create_volume(spec, (2, 12, 40, 36), np.float32, voxel_size=(40, 4, 4), offset=(3, 5, 7), axes="czyx")
    values = RNG.random((2, 12, 40, 36), dtype=np.float32)
    out[:] = values
    back = open_volume(spec)
    assert back.axes == "czyx" and back.voxel_size == (40.0, 4.0, 4.0) and back.offset == (3, 5, 7)
    np.testing.assert_array_equal(back[:], values)
    info = json.loads((tmp_path / "prob" / "info").read_text())
    assert info["num_channels"] == 2 and info["scales"][0]["resolution"] == [4.0, 4.0, 40.0]
    assert info["scales"][0]["voxel_offset"] == [7, 5, 3] and info["scales"][0]["size"] == [36, 40, 12]
    with pytest.raises(UserError, match="--overwrite"):
        create_volume(spec, (12, 40, 36), np.uint8)
    with pytest.raises(UserError, match="float16"):
        create_volume(f"precomputed://{tmp_path / 'half'}", (12, 40, 36), np.float16)
    assert not (tmp_path / "half").exists()


def test_bad_tensorstore_inputs(tmp_path, monkeypatch):
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no precomputed 'info' file"):
        open_volume(f"precomputed://{tmp_path / 'empty'}")
    spec = write_precomputed(tmp_path / "raw", RAW)
    with pytest.raises(UserError, match=r"scale 2 is out of range; the volume has 1 scale\(s\).*--scale 0..0"):
        open_volume(spec, scale_index=2)
    with pytest.raises(UserError, match="--scale picks"):
        open_volume(str(tmp_path / "x.zarr"), scale_index=1)
    n5 = write_n5(tmp_path / "a.n5" / "raw", RAW)
    with pytest.raises(UserError, match="no resolution or pixelResolution.*--voxel-size"):
        open_volume(n5)
    with pytest.raises(UserError, match="N5 group, not a dataset"):
        (tmp_path / "g.n5").mkdir()
        (tmp_path / "g.n5" / "attributes.json").write_text('{"n5": "2.5.0"}')
        open_volume(f"n5://{tmp_path / 'g.n5'}")
    monkeypatch.setattr(tensorstore_io, "TIMEOUT_S", 2.0)
    with pytest.raises(UserError, match="http://127.0.0.1:9/vol.*(did not finish|failed)"):
        open_volume("precomputed://http://127.0.0.1:9/vol")


def test_create_n5_as_java_tools_read_it(tmp_path):
    spec = f"n5://{tmp_path / 'out.n5' / 'prob'}"
    out = create_tensorstore(spec, (2, 12, 40, 36), np.float32, voxel_size=(40, 4, 5), offset=(3, 5, 7), axes="czyx")
    values = RNG.random((2, 12, 40, 36), dtype=np.float32)
    out[:] = values
    back = open_volume(spec)
    assert back.axes == "czyx" and back.voxel_size == (40.0, 4.0, 5.0) and back.offset == (3, 5, 7)
    np.testing.assert_array_equal(back[:], values)
    attrs = json.loads((tmp_path / "out.n5" / "prob" / "attributes.json").read_text())
    assert attrs["dimensions"] == [36, 40, 12, 2] and attrs["dataType"] == "float32"  # X, Y, Z, C
    assert attrs["resolution"][:3] == [5.0, 4.0, 40.0] and attrs["units"][:3] == ["nm"] * 3
    assert attrs["pixelResolution"] == {"dimensions": [5.0, 4.0, 40.0], "unit": "nm"}
    assert attrs["offset"] == [35.0, 20.0, 120.0]  # nm, X, Y, Z
    assert json.loads((tmp_path / "out.n5" / "attributes.json").read_text()) == {"n5": "2.5.0"}
    labels = create_volume(tmp_path / "l.zarr", (12, 40, 36), np.uint8, voxel_size=(40, 4, 5), offset=(3, 5, 7))
    labels[:] = RAW
    copied = copy_to_tensorstore(labels, f"n5://{tmp_path / 'out.n5' / 'labels'}")
    assert copied.voxel_size == (40.0, 4.0, 5.0) and copied.offset == (3, 5, 7)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(copied))[:], RAW)
    assert sorted(p.name for p in (tmp_path / "out.n5").iterdir()) == ["attributes.json", "labels", "prob"]  # no stage left
    before = (tmp_path / "out.n5" / "prob" / "attributes.json").read_bytes()
    with pytest.raises(UserError, match="exists; pass --overwrite"):
        create_tensorstore(spec, (12, 40, 36), np.uint8, voxel_size=(40, 4, 4), offset=(0, 0, 0), axes="zyx")
    with pytest.raises(UserError, match="exists; pass --overwrite"):
        copy_to_tensorstore(labels, f"n5://{tmp_path / 'out.n5' / 'labels'}")
    assert (tmp_path / "out.n5" / "prob" / "attributes.json").read_bytes() == before
    with pytest.raises(UserError, match="N5 volumes cannot hold float16"):
        create_tensorstore(f"n5://{tmp_path / 'h.n5' / 'x'}", (12, 40, 36), np.float16, voxel_size=(40, 4, 4), offset=(0, 0, 0), axes="zyx")
    with pytest.raises(UserError, match="fill value"):
        create_tensorstore(f"n5://{tmp_path / 'h.n5' / 'x'}", (12, 40, 36), np.uint8, voxel_size=(40, 4, 4), offset=(0, 0, 0), axes="zyx",
                           fill_value=3)
    with pytest.raises(UserError, match="not an N5 dataset"):
        (tmp_path / "other").mkdir()
        (tmp_path / "other" / "notes.txt").write_text("mine")
        create_tensorstore(f"n5://{tmp_path / 'other'}", (4, 4, 4), np.uint8, voxel_size=(1, 1, 1), offset=(0, 0, 0), axes="zyx",
                           overwrite=True)
    assert not (tmp_path / "h.n5").exists() and (tmp_path / "other" / "notes.txt").read_text() == "mine"


@pytest.fixture(scope="module")
def mito_run(tmp_path_factory):
    from conftest import write_pair

    root = tmp_path_factory.mktemp("run")
    pair = {"source": write_pair(root, "source", seed=1), "target": write_pair(root, "target", seed=2, bright=-0.5)}
    target = open_volume(pair["target"][0])  # training reads its target from precomputed
    trained_on = {**pair, "target": (write_precomputed(root / "target_pc", target[:], target.voxel_size, (0, 0, 0)), pair["target"][1])}
    ckpt = train(load_config(None, tiny_overrides(trained_on, "masktwins", root / "run", iterations=1)))
    return ckpt, pair, root


def test_predict_precomputed_equals_zarr(capsys, tmp_path, mito_run):
    ckpt, pair, _ = mito_run
    raw = open_volume(pair["target"][0])
    pc_raw = write_precomputed(tmp_path / "raw", raw[:], resolution_zyx=raw.voxel_size, offset_zyx=(0, 0, 0), chunk_zyx=(2, 32, 32))
    args = ["--checkpoint", ckpt, "--patch", "32,32"]
    code, _, err = run_cli(capsys, "predict", *args, "--input", pair["target"][0], "--output", tmp_path / "z.zarr")
    assert code == 0, err
    out = f"precomputed://{tmp_path / 'prob'}"
    code, stdout, err = run_cli(capsys, "predict", *args, "--input", pc_raw, "--output", out)
    assert code == 0, err
    assert "precomputed://" in stdout
    want, got = open_volume(tmp_path / "z.zarr"), open_volume(out)
    assert want.shape == (1, *raw.shape) and got.shape == raw.shape  # the softmax foreground; one channel reads as ZYX
    assert got.voxel_size == raw.voxel_size and got.offset == raw.offset
    assert np.abs(got[:] - want[0]).max() <= 1e-6
    assert sorted(p.name for p in tmp_path.iterdir()) == ["prob", "raw", "z.zarr"]  # no staging left
    code, _, err = run_cli(capsys, "predict", *args, "--input", pc_raw, "--output", out)
    assert_user_error(code, err, "prob", "--overwrite")
    # evaluate mito reads precomputed predictions and labels
    gt = write_precomputed(tmp_path / "gt", open_volume(pair["target"][1])[:], resolution_zyx=raw.voxel_size, offset_zyx=(0, 0, 0),
                           kind="segmentation")
    code, stdout, err = run_cli(capsys, "evaluate", "mito", "--pred", out, "--gt", gt, "--json", tmp_path / "r.json")
    assert code == 0, err
    code, _, err = run_cli(capsys, "evaluate", "mito", "--pred", tmp_path / "z.zarr", "--gt", pair["target"][1], "--json", tmp_path / "r0.json")
    assert code == 0, err
    report, ref = json.loads((tmp_path / "r.json").read_text()), json.loads((tmp_path / "r0.json").read_text())
    assert report["iou"] == pytest.approx(ref["iou"]) and report["map"] == pytest.approx(ref["map"])
    # postprocess mito reads the precomputed probabilities
    code, _, err = run_cli(capsys, "postprocess", "mito", "--prob", out, "--threshold", "0.3", "--out", tmp_path / "mito.zarr")
    assert code == 0, err
    code, _, err = run_cli(capsys, "postprocess", "mito", "--prob", tmp_path / "z.zarr", "--channel", "0", "--threshold", "0.3",
                           "--out", tmp_path / "mito0.zarr")
    assert code == 0, err
    np.testing.assert_array_equal(open_volume(tmp_path / "mito.zarr")[:], open_volume(tmp_path / "mito0.zarr")[:])
    assert open_volume(tmp_path / "mito.zarr").voxel_size == raw.voxel_size


def test_predict_bad_tensorstore_inputs_write_nothing(capsys, tmp_path, mito_run):
    ckpt, _, _ = mito_run
    base = ["predict", "--checkpoint", ckpt, "--patch", "32,32"]
    (tmp_path / "empty").mkdir()
    code, _, err = run_cli(capsys, *base, "--input", f"precomputed://{tmp_path / 'empty'}", "--output", tmp_path / "o.zarr")
    assert_user_error(code, err, "empty", "info")
    spec = write_precomputed(tmp_path / "raw", RAW[:, :32, :32])
    code, _, err = run_cli(capsys, *base, "--input", spec, "--scale", "3", "--output", f"precomputed://{tmp_path / 'o'}")
    assert_user_error(code, err, "scale 3", "--scale 0..0")
    n5 = write_n5(tmp_path / "a.n5" / "raw", RAW[:, :32, :32])
    code, _, err = run_cli(capsys, *base, "--input", n5, "--output", tmp_path / "o.zarr")
    assert_user_error(code, err, "a.n5", "--voxel-size")
    code, _, err = run_cli(capsys, *base, "--input", spec, "--output", f"precomputed://{tmp_path / 'o'}", "--resume")
    assert_user_error(code, err, "--resume")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.n5", "empty", "raw"]
    code, _, err = run_cli(capsys, *base, "--input", n5, "--voxel-size", "40,4,4", "--output", f"precomputed://{tmp_path / 'o'}")
    assert code == 0, err
    assert open_volume(f"precomputed://{tmp_path / 'o'}").voxel_size == (40.0, 4.0, 4.0)


def test_predict_n5_equals_zarr(capsys, tmp_path, mito_run):
    ckpt, pair, _ = mito_run
    raw = open_volume(pair["target"][0])
    args = ["--checkpoint", ckpt, "--patch", "32,32", "--input", pair["target"][0]]
    code, _, err = run_cli(capsys, "predict", *args, "--output", tmp_path / "z.zarr")
    assert code == 0, err
    out = f"n5://{tmp_path / 'pred.n5' / 'prob'}"
    code, stdout, err = run_cli(capsys, "predict", *args, "--output", out)
    assert code == 0, err
    want, got = open_volume(tmp_path / "z.zarr"), open_volume(out)
    assert got.shape == raw.shape and got.voxel_size == raw.voxel_size and got.offset == raw.offset
    assert np.abs(got[:] - want[0]).max() <= 1e-6
    attrs = json.loads((tmp_path / "pred.n5" / "prob" / "attributes.json").read_text())
    assert attrs["resolution"] == list(raw.voxel_size[::-1]) and attrs["units"] == ["nm"] * 3
    assert sorted(p.name for p in (tmp_path / "pred.n5").iterdir()) == ["attributes.json", "prob"]  # no staging left
    code, _, err = run_cli(capsys, "evaluate", "mito", "--pred", out, "--gt", pair["target"][1], "--json", tmp_path / "r.json")
    assert code == 0, err
    from masktwins3d.napari.reader import get_reader

    [(data, kwargs, _)] = get_reader(out)(out)
    assert kwargs["scale"] == pytest.approx(raw.voxel_size)
    before = {p: p.read_bytes() for p in (tmp_path / "pred.n5").rglob("*") if p.is_file()}
    code, _, err = run_cli(capsys, "predict", *args, "--output", out)
    assert_user_error(code, err, "prob", "--overwrite")
    code, _, err = run_cli(capsys, "predict", *args, "--output", f"n5://{tmp_path / 'half.n5' / 'prob'}", "--dtype", "float16")
    assert_user_error(code, err, "float16", "--dtype")
    code, _, err = run_cli(capsys, "predict", *args, "--output", f"precomputed://{tmp_path / 'half'}", "--dtype", "float16")
    assert_user_error(code, err, "float16", "--dtype")
    code, _, err = run_cli(capsys, "predict", *args, "--output", "n5://gs://bucket/pred.n5/prob")
    assert_user_error(code, err, "gs://bucket", "local")
    assert {p: p.read_bytes() for p in (tmp_path / "pred.n5").rglob("*") if p.is_file()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pred.n5", "r.json", "z.zarr"]


def test_url_without_answer_times_out_in_one_line(capsys, tmp_path, mito_run, monkeypatch):
    ckpt, _, _ = mito_run
    monkeypatch.setattr(tensorstore_io, "TIMEOUT_S", 2.0)
    with socket.socket() as server:  # accepts connections on loopback and never answers: a stalled network
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        url = f"http://127.0.0.1:{server.getsockname()[1]}/vol"
        code, _, err = run_cli(capsys, "predict", "--checkpoint", ckpt, "--patch", "32,32", "--input", f"precomputed://{url}",
                               "--output", tmp_path / "o.zarr")
    assert_user_error(code, err, url, "did not finish within 2 s", "network")
    assert not any(tmp_path.iterdir())


def test_convert_reads_precomputed_and_n5(capsys, tmp_path):
    spec = write_precomputed(tmp_path / "raw", RAW)
    code, out, err = run_cli(capsys, "convert", "--input", spec, "--output", tmp_path / "a.zarr/raw")
    assert code == 0, err
    assert "precomputed volume" in out and "from precomputed info" in out
    vol = open_volume(tmp_path / "a.zarr/raw")
    assert vol.voxel_size == (40.0, 4.0, 4.0) and vol.offset == (3, 5, 7)
    np.testing.assert_array_equal(vol[:], RAW)
    n5 = write_n5(tmp_path / "b.n5" / "raw", RAW)
    code, _, err = run_cli(capsys, "convert", "--input", n5, "--output", tmp_path / "b.zarr/raw")
    assert_user_error(code, err, "b.n5", "--voxel-size")
    assert not (tmp_path / "b.zarr").exists()
    code, _, err = run_cli(capsys, "convert", "--input", n5, "--output", tmp_path / "b.zarr/raw", "--voxel-size", "30,6,6")
    assert code == 0, err
    assert open_volume(tmp_path / "b.zarr/raw").voxel_size == (30.0, 6.0, 6.0)


def test_napari_reader_opens_precomputed(tmp_path):
    from masktwins3d.napari.layers import KEY
    from masktwins3d.napari.reader import get_reader

    spec = write_precomputed(tmp_path / "raw", RAW, scales=2)
    for path in (spec, str(tmp_path / "raw")):
        reader = get_reader(path)
        assert reader is not None
        [(data, kwargs, kind)] = reader(path)
        assert kwargs["multiscale"] and len(data) == 2 and kind == "image"
        np.testing.assert_array_equal(np.asarray(data[0]), RAW)
        assert kwargs["scale"] == pytest.approx([40, 4, 4]) and kwargs["translate"] == pytest.approx([120, 20, 28])
        assert kwargs["metadata"][KEY]["voxel_size"] == [40.0, 4.0, 4.0]
    n5 = write_n5(tmp_path / "a.n5" / "prob", RNG.random((4, 8, 8), dtype=np.float32), {"resolution": [8, 8, 8]})
    [(data, kwargs, kind)] = get_reader(n5)(n5)
    assert kwargs["metadata"][KEY]["kind"] == "probability" and kwargs["scale"] == pytest.approx([8, 8, 8])


def test_view_serves_volumes_and_points_to_neuroglancer(capsys, tmp_path):
    ng = pytest.importorskip("neuroglancer")
    import io
    import urllib.request
    import zlib

    from masktwins3d.io.points import SynapsePoints, write_points_h5
    from masktwins3d.view import neuroglancer_viewer

    raw = write_precomputed(tmp_path / "raw", RAW)
    prob = create_volume(tmp_path / "prob.zarr", (2, *RAW.shape), np.float32, voxel_size=(40, 4, 4), offset=(3, 5, 7), axes="czyx")
    prob[:] = 0.5
    labels = create_volume(tmp_path / "mito.zarr", RAW.shape, np.uint32, voxel_size=(40, 4, 4), offset=(3, 5, 7))
    labels[2:4, 5:9, 5:9] = 7
    write_points_h5(tmp_path / "pts.h5", SynapsePoints(np.array([[1, 2, 3]]), np.array([[0, 2, 3, 4]])))
    try:
        viewer = neuroglancer_viewer(raw, pred=[str(tmp_path / "prob.zarr")], labels=[str(tmp_path / "mito.zarr")],
                                     points=str(tmp_path / "pts.h5"))
        assert [layer.name for layer in viewer.state.layers] == ["raw", "prob.zarr", "mito.zarr", "synapses"]
        assert viewer.state.dimensions.scales.tolist() == pytest.approx([40e-9, 4e-9, 4e-9])
        assert viewer.state.layers["mito.zarr"].type == "segmentation"
        assert len(viewer.state.layers["synapses"].annotations) == 2
        assert urllib.request.urlopen(viewer.get_viewer_url(), timeout=10).status == 200
        # the browser's requests: the LocalVolume serving our Volume, read from the precomputed file
        token = viewer.state.layers["raw"].source[0].url.split("python://volume/")[1]
        base = viewer.get_viewer_url().split("/v/")[0]
        info = json.loads(urllib.request.urlopen(f"{base}/neuroglancer/info/{token}", timeout=10).read())
        assert info["dataType"] == "uint8"
        end = ",".join(map(str, RAW.shape))
        data = urllib.request.urlopen(f"{base}/neuroglancer/npz/{token}/1,1,1/0,0,0/{end}", timeout=10).read()
        served = np.load(io.BytesIO(zlib.decompress(data)))
        assert served.shape == RAW.shape, served.shape
        np.testing.assert_array_equal(served, RAW)
        code, out, err = run_cli(capsys, "view", "--raw", raw, "--no-wait")
        assert code == 0, err
        assert out.startswith("neuroglancer: http://127.0.0.1:")
        code, _, err = run_cli(capsys, "view", "--raw", f"precomputed://{tmp_path / 'nothing'}", "--no-wait")
        assert_user_error(code, err, "nothing", "info")
    finally:
        ng.stop()
