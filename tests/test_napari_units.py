"""Unit tests of the napari plugin's pure functions (no viewer, no Qt event loop): mask error maps,
point outcomes against the WASPSYN scorer, layer geometry and the points <-> layers conventions,
lazy volumes, threshold previews, the Predict checks and the labels export."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest

napari = pytest.importorskip("napari")

from napari.layers import Image, Labels, Layer, Points  # noqa: E402

from masktwins3d.errors import UserError  # noqa: E402
from masktwins3d.evaluate.synapse import score_synapses  # noqa: E402
from masktwins3d.io import create_volume, open_volume  # noqa: E402
from masktwins3d.io.points import SynapsePoints  # noqa: E402
from masktwins3d.napari import layers, overlay  # noqa: E402
from masktwins3d.napari.export import write_labels_zarr  # noqa: E402
from masktwins3d.napari.postprocess import channels_of, mito_preview, probability_data, synapse_preview  # noqa: E402
from masktwins3d.napari.predict import IMAGE_DTYPES, LayerSource, check_image, image_volume, parse_patch  # noqa: E402
from masktwins3d.postprocess.mito import probability_to_mask  # noqa: E402
from masktwins3d.postprocess.synapse import foreground, link_to_nearest  # noqa: E402


# ---- 1. mask error maps ---------------------------------------------------------------------------


def test_mask_errors_by_hand():
    pred = np.array([[[0, 3, 3, 0],
                      [7, 0, 1, 0]]])
    gt = np.array([[[0, 1, 0, 5],
                    [2, 2, 0, 0]]], dtype=np.uint16)
    expected = np.array([[[0, 0, 2, 1],     # both bg | both fg (ids 3 vs 1) | FP | FN
                          [0, 1, 2, 0]]])   # both fg (7 vs 2) | FN | FP | both bg
    out = overlay.mask_errors(pred, gt)
    assert out.dtype == np.uint8 and out.shape == pred.shape
    np.testing.assert_array_equal(out, expected)
    assert overlay.FN == 1 and overlay.FP == 2
    # instance ids and bools count the same
    np.testing.assert_array_equal(overlay.mask_errors(pred != 0, (gt != 0).astype(bool)), expected)
    with pytest.raises(ValueError, match="shape"):
        overlay.mask_errors(np.zeros((2, 3, 4)), np.zeros((2, 4, 3)))


# ---- 2. point outcomes ----------------------------------------------------------------------------


def _labels(out, kind):
    return list(out[kind][1])


def test_point_outcomes_by_hand():
    off = np.array([10, 20, 30])
    # pred pres: A (matched to a), B (matched to b), C (no GT near: FP)
    pred_pre = np.array([[0, 0, 0], [50, 50, 50], [100, 0, 0]], float)
    # pred posts: p0 -> A (matches g0), p1 -> A (nothing near: FP), p2 -> B (near g2, but g2 belongs to the
    # unmatched GT pre d: FP), p3 -> C (post of an unmatched pre: FP)
    pred_post = np.array([[0, 0, 5, 0], [0, 0, -10, 0], [1, 50, 55, 50], [2, 100, 2, 0]], float)
    # GT (in the prediction's frame, then shifted by the offset): a near A, b near B, d far away (FN)
    gt_pre = np.array([[0, 0, 3], [50, 50, 55], [200, 200, 200]], float)
    # g0 -> a (TP with p0), g1 -> a (missed), g2 -> d (missed: its pre is unmatched), g3 -> b (missed)
    gt_post = np.array([[0, 0, 5, 2], [0, 0, 0, 20], [2, 50, 55, 51], [1, 50, 50, 70]], float)
    pred = SynapsePoints(pred_pre, pred_post)
    gt = SynapsePoints(gt_pre + off, np.column_stack([gt_post[:, 0], gt_post[:, 1:] + off]))

    out = overlay.point_outcomes(pred, gt, offset=off)
    assert _labels(out, "pre") == ["tp", "tp", "fp", "fn"]
    np.testing.assert_array_equal(out["pre"][0], np.vstack([pred_pre, gt_pre[2:]]))
    assert _labels(out, "post") == ["tp", "fp", "fp", "fp", "fn", "fn", "fn"]
    np.testing.assert_array_equal(out["post"][0], np.vstack([pred_post[:, 1:], gt_post[1:, 1:]]))

    score = score_synapses(pred, gt, offset=off)
    assert (score["pre"]["tp"], score["pre"]["fp"], score["pre"]["fn"]) == (2, 1, 1)
    assert score["post_linked"]["tp"] == 1

    # without the offset nothing is near: every prediction FP, every GT point FN (drawn at gt itself)
    out0 = overlay.point_outcomes(pred, gt)
    assert _labels(out0, "pre") == ["fp"] * 3 + ["fn"] * 3
    np.testing.assert_array_equal(out0["pre"][0][3:], gt.pre)
    # a smaller radius loses the pre match at distance 5 (B-b) and its posts with it
    out_r = overlay.point_outcomes(pred, gt, r_pre=4.0, offset=off)
    assert _labels(out_r, "pre") == ["tp", "fp", "fp", "fn", "fn"]


def _random_points(rng, n_max, box=40.0):
    n = int(rng.integers(0, n_max + 1))
    pre = rng.uniform(0, box, (n, 3)).round(rng.integers(0, 2))
    m = int(rng.integers(0, 3 * n + 1)) if n else 0
    links = rng.integers(0, max(n, 1), m)
    post = pre[links] + rng.normal(0, 4, (m, 3)) if m else np.zeros((0, 3))
    return pre, np.column_stack([links, post]).reshape(-1, 4)


@pytest.mark.parametrize("mode", ["waspsyn", "strict"])
def test_point_outcomes_agree_with_the_scorer(mode):
    checked_tp = 0
    for seed in range(30):
        rng = np.random.default_rng(seed)
        pred_pre, pred_post = _random_points(rng, 8)
        # GT: a jittered subset of the predicted pres plus extra ones, own posts
        keep = pred_pre[rng.random(len(pred_pre)) < 0.7]
        extra, _ = _random_points(rng, 4)
        gt_pre = np.vstack([keep + rng.normal(0, 5, keep.shape), extra]).round()
        gt_pre = gt_pre[rng.permutation(len(gt_pre))]
        m = int(rng.integers(0, 3 * len(gt_pre) + 1)) if len(gt_pre) else 0
        links = rng.integers(0, max(len(gt_pre), 1), m)
        gt_post = gt_pre[links] + rng.normal(0, 4, (m, 3)).round()
        off = rng.integers(-50, 50, 3)
        pred = SynapsePoints(pred_pre, pred_post)
        gt = SynapsePoints(gt_pre + off, np.column_stack([links, gt_post + off]).reshape(-1, 4))

        out = overlay.point_outcomes(pred, gt, offset=off, mode=mode)
        score = score_synapses(pred, gt, mode=mode, offset=off)
        pre_pts, pre_lab = out["pre"]
        post_pts, post_lab = out["post"]
        pre_lab, post_lab = np.asarray(pre_lab), np.asarray(post_lab)
        assert (pre_lab == "tp").sum() == score["pre"]["tp"], seed
        assert (pre_lab == "fp").sum() == score["pre"]["fp"], seed
        assert (pre_lab == "fn").sum() == score["pre"]["fn"], seed
        assert (post_lab == "tp").sum() == score["post_linked"]["tp"], seed
        # predictions first, in order, then the missed GT in the prediction's frame
        np.testing.assert_array_equal(pre_pts[: len(pred.pre)], pred.pre)
        assert set(pre_lab[: len(pred.pre)]) <= {"tp", "fp"} and set(pre_lab[len(pred.pre):]) <= {"fn"}
        np.testing.assert_array_equal(post_pts[: len(pred.post)], pred.post_zyx)
        assert (post_lab == "fn").sum() == len(gt.post) - (post_lab == "tp").sum()
        # each FN is a distinct GT point minus the offset
        for pts, ref in ((pre_pts[pre_lab == "fn"], gt.pre - off), (post_pts[post_lab == "fn"], gt.post_zyx - off)):
            rows = [int(np.flatnonzero((ref == p).all(1))[0]) for p in pts]
            assert len(set(rows)) == len(rows)
            np.testing.assert_array_equal(pts, ref[sorted(rows)])
        checked_tp += score["post_linked"]["tp"]
    assert checked_tp > 0  # the random sets do exercise post matches


# ---- 3. geometry and the points <-> layers conventions -------------------------------------------


def test_geometry():
    assert layers.geometry((40, 4, 5), (2, 3, 4)) == {"scale": (40.0, 4.0, 5.0), "translate": (80.0, 12.0, 20.0)}
    assert layers.geometry((40, 4, 5), (2, 3, 4), ndim=4) == {"scale": (1.0, 40.0, 4.0, 5.0), "translate": (0.0, 80.0, 12.0, 20.0)}
    assert layers.geometry((40, 4, 5), (2, 3, 4), ndim=2) == {"scale": (4.0, 5.0), "translate": (12.0, 20.0)}
    assert layers.geometry((8, 8, 8)) == {"scale": (8.0, 8.0, 8.0), "translate": (0.0, 0.0, 0.0)}


def test_layer_voxel_size_and_offset():
    data = np.zeros((3, 6, 7), np.uint8)
    plain = Image(data, scale=(40, 4, 5), translate=(80, 12, 21))
    assert layers.layer_voxel_size(plain) == (40.0, 4.0, 5.0)
    assert layers.layer_offset(plain) == (2, 3, 4)  # 21 / 5 = 4.2 rounds to 4
    # the recorded geometry wins over scale / translate
    meta = {layers.KEY: {"voxel_size": [8, 9, 10], "offset": [-1, 5, 6]}}
    recorded = Image(data, scale=(40, 4, 5), translate=(80, 12, 20), metadata=meta)
    assert layers.layer_voxel_size(recorded) == (8.0, 9.0, 10.0) and layers.layer_offset(recorded) == (-1, 5, 6)
    assert layers.role(recorded) == meta[layers.KEY] and layers.role(plain) == {}
    # leading channel axis: the last three axes
    four = Image(np.zeros((2, 3, 6, 7)), scale=(1, 40, 4, 5), translate=(0, 40, 8, 10))
    assert layers.layer_voxel_size(four) == (40.0, 4.0, 5.0) and layers.layer_offset(four) == (1, 2, 2)
    # a 2D layer: z is 1 nm and offset 0
    flat = Image(np.zeros((6, 7)), scale=(4, 5), translate=(12, 20))
    assert layers.layer_voxel_size(flat) == (1.0, 4.0, 5.0) and layers.layer_offset(flat) == (0, 3, 4)
    # geometry() of a layer's voxel size and offset gives its scale and translate back
    geo = layers.geometry(layers.layer_voxel_size(plain), layers.layer_offset(plain))
    np.testing.assert_allclose(geo["scale"], plain.scale)


def _random_synapses(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 9))
    m = int(rng.integers(0, 15))
    pre = rng.uniform(0, 50, (n, 3))
    post = np.column_stack([rng.integers(0, n, m), rng.uniform(0, 50, (m, 3))]).reshape(-1, 4)
    return SynapsePoints(pre, post)


def _make(triple):
    return [Layer.create(data, kwargs, kind) for data, kwargs, kind in triple]


@pytest.mark.parametrize("seed", range(6))
def test_points_layers_round_trip(seed):
    points = _random_synapses(seed)
    rng = np.random.default_rng(100 + seed)
    pre_ids = rng.choice(1000, len(points.pre), replace=False) if seed % 2 else None
    triple = layers.points_layers(points, "syn", voxel_size=(40, 4, 5), offset=(1, 2, 3), pre_ids=pre_ids)
    assert [k for _, _, k in triple] == ["points", "points", "vectors"]
    assert [kw["name"] for _, kw, _ in triple] == ["syn pre", "syn post", "syn links"]
    assert [kw["metadata"][layers.KEY]["kind"] for _, kw, _ in triple] == ["pre", "post", "links"]
    pre_l, post_l, links_l = _make(triple)
    assert pre_l.scale.tolist() == [40, 4, 5] and pre_l.translate.tolist() == [40, 8, 15]
    assert layers.layer_voxel_size(post_l) == (40.0, 4.0, 5.0) and layers.layer_offset(links_l) == (1, 2, 3)
    back = layers.points_from_layers(pre_l.data, post_l.data, post_l.features, pre_l.features)
    np.testing.assert_array_equal(back.pre, points.pre)
    np.testing.assert_array_equal(back.post, points.post)
    # links: from each post to its pre
    vec = links_l.data
    assert vec.shape == (len(points.post), 2, 3)
    np.testing.assert_array_equal(vec[:, 0], points.post_zyx)
    np.testing.assert_allclose(vec[:, 0] + vec[:, 1], points.pre[points.post_pre], atol=1e-12)


def test_posts_without_pre_id_go_to_the_nearest_pre():
    points = _random_synapses(7)
    rng = np.random.default_rng(7)
    posts = rng.uniform(0, 50, (12, 3))
    nearest = link_to_nearest(points.pre, posts)
    pre_l = Points(points.pre)
    for features in (None, {}, {"other": np.arange(12)}):
        got = layers.points_from_layers(pre_l.data, Points(posts, features=features).data, features, pre_l.features)
        np.testing.assert_array_equal(got.post_pre, nearest)
        np.testing.assert_array_equal(got.post_zyx, posts)
    # usable pre_ids are kept; NaN, fractions and unknown ids fall back to the nearest pre
    pre_ids = np.arange(len(points.pre)) * 10 + 3
    far = (nearest + 1) % len(points.pre)
    wanted = (pre_ids[far]).astype(float)
    wanted[[1, 4, 7]] = [np.nan, 999.0, pre_ids[far[7]] + 0.5]
    got = layers.points_from_layers(points.pre, posts, {"pre_id": wanted}, {"id": pre_ids})
    expected = far.copy()
    expected[[1, 4, 7]] = nearest[[1, 4, 7]]
    np.testing.assert_array_equal(got.post_pre, expected)
    # without an id feature on the pre layer, pre_id is the pre row
    got = layers.points_from_layers(points.pre, posts, {"pre_id": far})
    np.testing.assert_array_equal(got.post_pre, far)


def test_post_added_by_hand_goes_to_the_nearest_pre():
    points = SynapsePoints(np.array([[0, 0, 0], [40, 40, 40]], float), np.array([[0, 1, 1, 1], [1, 41, 41, 41]], float))
    pre_l, post_l, _ = _make(layers.points_layers(points, "syn"))
    post_l.add(np.array([[2.0, 0.0, 0.0]]))  # what napari's "add points" mode does on a click
    got = layers.points_from_layers(pre_l.data, post_l.data, post_l.features, pre_l.features)
    assert got.post_pre.tolist() == [0, 1, 0]


def test_points_from_layers_refusals():
    with pytest.raises(UserError, match="no pre points"):
        layers.points_from_layers(np.zeros((0, 3)), np.ones((2, 3)))
    with pytest.raises(UserError, match="3D"):
        layers.points_from_layers(np.ones((2, 2)), np.zeros((0, 2)))
    with pytest.raises(UserError, match="post layer.*3D"):
        layers.points_from_layers(np.ones((2, 3)), np.ones((1, 2)))
    empty = layers.points_from_layers(np.zeros((0, 3)), np.zeros((0, 3)))
    assert empty.pre.shape == (0, 3) and empty.post.shape == (0, 4)
    # empty layers round trip too
    pre_l, post_l, links_l = _make(layers.points_layers(SynapsePoints.empty(), "none"))
    assert len(pre_l.data) == len(post_l.data) == len(links_l.data) == 0


# ---- 4. lazy volumes ------------------------------------------------------------------------------


def _zarr(path, data, **kw):
    vol = create_volume(path, data.shape, data.dtype, voxel_size=(40, 4, 5), offset=(2, 3, 4), **kw)
    vol[...] = data
    return open_volume(path)


def test_lazy_volume_layer(tmp_path):
    data = np.random.default_rng(0).random((4, 6, 8)).astype(np.float32)
    vol = _zarr(tmp_path / "v.zarr", data)
    arr = layers.lazy(vol)
    assert isinstance(arr, da.Array) and arr.shape == data.shape and arr.dtype == data.dtype
    np.testing.assert_array_equal(arr.compute(), data)
    np.testing.assert_array_equal(arr[2, 1:3].compute(), data[2, 1:3])
    assert layers.lazy(vol, chunks=(1, 3, 8)).chunks == ((1,) * 4, (3, 3), (8,))
    value, kwargs, kind = layers.volume_layer(vol, "raw")
    assert kind == "image" and kwargs["name"] == "raw" and isinstance(value, da.Array)
    assert kwargs["scale"] == (40.0, 4.0, 5.0) and kwargs["translate"] == (80.0, 12.0, 20.0)
    assert kwargs["metadata"][layers.KEY] == {"kind": "image", "voxel_size": [40.0, 4.0, 5.0], "offset": [2, 3, 4], "path": vol.path}
    layer = Image(value, **kwargs)
    assert layers.layer_voxel_size(layer) == (40.0, 4.0, 5.0) and layers.layer_offset(layer) == (2, 3, 4)
    _, kwargs, kind = layers.volume_layer(vol, "lab", kind="labels", opacity=0.3)
    assert kind == "labels" and kwargs["opacity"] == 0.3
    # two arrays of the same path get their own names: a rewritten file is never read from dask's cache
    assert layers.lazy(vol).name != layers.lazy(vol).name


def test_lazy_channels(tmp_path):
    one = np.random.default_rng(1).random((1, 3, 5, 6)).astype(np.float32)
    value, kwargs, _ = layers.volume_layer(_zarr(tmp_path / "one.zarr", one), "p", kind="probability")
    assert value.shape == (3, 5, 6) and kwargs["scale"] == (40.0, 4.0, 5.0) and kwargs["translate"] == (80.0, 12.0, 20.0)
    np.testing.assert_array_equal(np.asarray(value), one[0])
    assert kwargs["contrast_limits"] == (0.0, 1.0)
    two = (np.random.default_rng(2).random((2, 3, 5, 6)) * 255).astype(np.uint8)
    value, kwargs, _ = layers.volume_layer(_zarr(tmp_path / "two.zarr", two), "p", kind="probability")
    assert value.shape == two.shape and kwargs["scale"] == (1.0, 40.0, 4.0, 5.0) and kwargs["translate"] == (0.0, 80.0, 12.0, 20.0)
    assert kwargs["contrast_limits"] == (0.0, 255.0)
    np.testing.assert_array_equal(np.asarray(value), two)
    assert channels_of(Image(value, **kwargs)) == 2 and channels_of(Image(value[0])) == 1


def test_lazy_sees_a_rewritten_file(tmp_path):
    path = tmp_path / "v.zarr"
    first = layers.lazy(_zarr(path, np.zeros((2, 4, 4), np.uint8)))
    assert first.sum().compute() == 0
    vol = create_volume(path, (2, 4, 4), np.uint8, overwrite=True)
    vol[...] = 7
    assert int(layers.lazy(open_volume(path)).sum().compute()) == 7 * 32


# ---- 5. previews ----------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float32", "uint8"])
def test_mito_preview_equals_probability_to_mask(dtype):
    rng = np.random.default_rng(3)
    if dtype == "uint8":
        prob = np.arange(256, dtype=np.uint8)[rng.permutation(256)].reshape(4, 8, 8)
    else:
        prob = rng.random((4, 8, 8)).astype(np.float32)
        prob.flat[:6] = [0.5, np.float32(0.5) - np.float32(3e-8), 128 / 255, 0.0, 1.0, 0.3]
    for t in (0.3, 0.5, 127 / 255, 128 / 255, 1.0):
        expected = probability_to_mask(prob, t).astype(np.uint8)
        for chunks in ((1, 8, 8), (3, 5, 2), (4, 8, 8)):
            got = mito_preview(da.from_array(prob, chunks=chunks), t)
            assert isinstance(got, da.Array) and got.dtype == np.uint8
            np.testing.assert_array_equal(got.compute(), expected, err_msg=f"threshold {t}, chunks {chunks}")
    if dtype == "uint8":  # the rounding edge by hand: 128 / 255 keeps code 128, drops 127
        np.testing.assert_array_equal(mito_preview(da.from_array(prob), 128 / 255).compute(), prob >= 128)
        np.testing.assert_array_equal(mito_preview(da.from_array(prob), 0.5).compute(), prob >= 128)
    with pytest.raises(UserError):
        mito_preview(da.from_array(prob), 0.0)


@pytest.mark.parametrize("dtype", ["float32", "uint8"])
def test_synapse_preview_by_hand(dtype):
    rng = np.random.default_rng(4)
    prob = rng.random((2, 3, 7, 9)).astype(np.float32)
    if dtype == "uint8":
        prob = (prob * 255).astype(np.uint8)
    for d_pre, d_post in ((0.75, 0.65), (0.2, 0.9), (0.5, 0.5)):
        pre, post = foreground(prob[0], d_pre), foreground(prob[1], d_post)
        expected = np.zeros(prob.shape[1:], np.uint8)
        expected[pre] = 1
        expected[post] = 2
        assert (expected == 1).any() and (expected == 2).any()
        for chunks in ((1, 1, 7, 9), (2, 2, 4, 5), (1, 3, 3, 9)):
            got = synapse_preview(da.from_array(prob, chunks=chunks), d_pre, d_post)
            assert got.shape == prob.shape[1:] and got.dtype == np.uint8
            np.testing.assert_array_equal(got.compute(), expected, err_msg=f"{d_pre}, {d_post}, chunks {chunks}")
    with pytest.raises(UserError):
        synapse_preview(da.from_array(prob), 1.5, 0.5)


def test_probability_data():
    prob = np.random.default_rng(5).random((3, 8, 9)).astype(np.float32)
    got = probability_data(Image(prob))
    assert isinstance(got, da.Array) and got.chunks == ((1, 1, 1), (8,), (9,))
    np.testing.assert_array_equal(got.compute(), prob)
    lazy = da.from_array(prob, chunks=(2, 4, 9))
    assert probability_data(Image(lazy)) is lazy
    with pytest.raises(UserError, match="dtype int32"):
        probability_data(Image(np.zeros((3, 8, 9), np.int32)))
    with pytest.raises(UserError, match="shape"):
        probability_data(Image(np.zeros((8, 9), np.float32)))


# ---- 6. Predict checks ----------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["int32", "int64", "float64", "uint32"])
def test_check_image_refuses_dtypes(dtype):
    with pytest.raises(UserError, match=f"dtype {dtype}"):
        check_image(Image(np.zeros((4, 8, 8), dtype), name="em"), 3)


def test_check_image_shapes():
    for dtype in ("uint8", "uint16", "float32"):
        assert dtype in IMAGE_DTYPES
        check_image(Image(np.zeros((4, 8, 8), dtype)), 3)
        check_image(Image(np.zeros((4, 8, 8), dtype)), 2)
    with pytest.raises(UserError, match="3D"):
        check_image(Image(np.zeros((8, 8), np.uint8)), 3)
    check_image(Image(np.zeros((8, 8), np.uint8)), 2)
    for dims in (2, 3):
        with pytest.raises(UserError, match=r"shape \(2, 4, 8, 8\)"):
            check_image(Image(np.zeros((2, 4, 8, 8), np.uint8)), dims)


def test_parse_patch():
    assert parse_patch("auto", 2) is None and parse_patch("", 3) is None and parse_patch("  AUTO ", 3) is None
    assert parse_patch("256,256", 2) == (256, 256)
    assert parse_patch("64x64x64", 3) == (64, 64, 64)
    assert parse_patch("16, 32, 48", 3) == (16, 32, 48)
    for text, dims in (("256,256", 3), ("64,64,64", 2), ("256", 2), ("250,256", 2), ("0,16", 2), ("-16,16", 2),
                       ("a,b", 2), ("16.0,16", 2), ("16,,16", 3), ("64x64", 3), ("64x64x60", 3), ("64x64x64x64", 3)):
        with pytest.raises(UserError, match="multiples of 16"):
            parse_patch(text, dims)


def test_image_volume():
    rng = np.random.default_rng(6)
    data = rng.integers(0, 255, (4, 10, 12), dtype=np.uint8)
    for array in (data, da.from_array(data, chunks=(1, 5, 12))):
        vol = image_volume(Image(array, name="em", scale=(40, 4, 5), translate=(80, 12, 20)))
        assert vol.axes == "zyx" and vol.shape == data.shape and vol.dtype == np.uint8
        assert vol.voxel_size == (40.0, 4.0, 5.0) and vol.offset == (2, 3, 4)
        np.testing.assert_array_equal(vol[...], data)
        np.testing.assert_array_equal(vol[1:3, 2:7, 4:], data[1:3, 2:7, 4:])
    assert image_volume(Image(da.from_array(data, chunks=(1, 5, 12)))).chunks == (1, 5, 12)
    assert image_volume(Image(data)).chunks is None
    flat = image_volume(Image(data[0], scale=(4, 5), translate=(12, 20)))
    assert flat.shape == (1, 10, 12) and flat.voxel_size == (1.0, 4.0, 5.0) and flat.offset == (0, 3, 4)
    np.testing.assert_array_equal(flat[...], data[:1])
    assert LayerSource(da.from_array(data, chunks=(2, 3, 4))).chunks == (2, 3, 4)
    assert LayerSource(da.from_array(data[0], chunks=(3, 4))[None]).chunks == (1, 3, 4)
    assert LayerSource(data).chunks is None and LayerSource(data).shape == data.shape


# ---- 7. labels export -----------------------------------------------------------------------------


def test_write_labels_zarr(tmp_path):
    rng = np.random.default_rng(7)
    first = rng.integers(0, 5, (3, 6, 7)).astype(np.uint32)
    out = tmp_path / "labels.zarr"
    assert write_labels_zarr(out, first, (40, 4, 5), (1, 2, 3), overwrite=False) == out

    def leftovers():
        return sorted(p.name for p in tmp_path.iterdir() if p.name != "labels.zarr")

    vol = open_volume(out)
    assert vol.axes == "zyx" and vol.dtype == np.uint32 and vol.voxel_size == (40.0, 4.0, 5.0) and vol.offset == (1, 2, 3)
    np.testing.assert_array_equal(vol[...], first)
    assert leftovers() == []
    second = rng.integers(0, 5, (2, 4, 4)).astype(np.uint16)
    with pytest.raises(UserError, match="exists"):
        write_labels_zarr(out, second, (8, 8, 8), (0, 0, 0), overwrite=False)
    vol = open_volume(out)
    assert vol.shape == first.shape and vol.voxel_size == (40.0, 4.0, 5.0)
    np.testing.assert_array_equal(vol[...], first)
    assert leftovers() == []
    write_labels_zarr(out, second, (8, 8, 8), (0, 0, 0), overwrite=True)
    vol = open_volume(out)
    assert vol.dtype == np.uint16 and vol.voxel_size == (8.0, 8.0, 8.0) and vol.offset == (0, 0, 0)
    np.testing.assert_array_equal(vol[...], second)
    assert leftovers() == []
    with pytest.raises(UserError, match="ZYX"):
        write_labels_zarr(tmp_path / "flat.zarr", np.zeros((4, 4)), (8, 8, 8), (0, 0, 0), overwrite=False)
    assert leftovers() == []
    # a Labels layer's data (what the Export widget passes) works the same
    layer = Labels(first)
    write_labels_zarr(tmp_path / "layer.zarr", layer.data, layers.layer_voxel_size(layer), layers.layer_offset(layer), overwrite=False)
    np.testing.assert_array_equal(open_volume(tmp_path / "layer.zarr")[...], first)
