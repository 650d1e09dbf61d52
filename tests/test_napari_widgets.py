"""The napari dock widgets end to end in a real Qt viewer (pytest-xvfb): Predict, Post-process,
Evaluate and Export on tiny generated volumes with checkpoints trained in the test session;
Cancel; every bad input ends as a notification that leaves the layers untouched."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import torch

from masktwins3d.evaluate.mito import evaluate_mito
from masktwins3d.evaluate.synapse import score_synapses
from masktwins3d.io import open_volume
from masktwins3d.io.points import SynapsePoints, read_points, write_points_h5
from masktwins3d.napari.layers import points_layers
from masktwins3d.napari.overlay import OUTCOME_COLORS, mask_errors
from masktwins3d.postprocess.mito import probability_to_instances, probability_to_mask
from masktwins3d.postprocess.synapse import probabilities_to_points

from napari_helpers import colour_present, dock, mito_run, notes, synapse_ckpt, wait  # noqa: F401  (fixtures)

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::PendingDeprecationWarning")


def add_volume(viewer, spec: str):
    """Open a volume through the plugin's reader, as File > Open does."""
    layers = viewer.open(spec, plugin="masktwins3d")
    assert len(layers) == 1
    return layers[0]


def test_mito_predict_postprocess_evaluate_export(make_napari_viewer, qtbot, mito_run, notes, tmp_path):
    viewer = make_napari_viewer(show=True)
    raw = add_volume(viewer, mito_run["raw"])
    gt = add_volume(viewer, mito_run["label"])
    assert gt.__class__.__name__ == "Labels"

    predict = dock(viewer, "Predict")
    predict.image.value = raw
    predict.checkpoint.value = mito_run["checkpoint"]
    predict.patch.value = "32,32"
    predict.run.native.click()
    wait(qtbot, predict)
    prob_layer = viewer.layers[f"{raw.name} probabilities"]
    prob = np.asarray(prob_layer.data)
    assert prob.shape == (6, 64, 64) and prob.dtype == np.float32
    assert 0.0 <= prob.min() and prob.max() <= 1.0
    assert predict.progress.value == predict.progress.max >= 1
    assert tuple(prob_layer.scale) == (40.0, 5.0, 5.0)
    temporary = Path(prob_layer.metadata["masktwins3d"]["temporary"])
    assert (temporary / "prob.zarr").is_dir()

    post = dock(viewer, "Post-process")
    post.prob.value = prob_layer
    assert post.mode.value == "mitochondria"
    t = float(np.quantile(prob, 0.7))
    post.threshold.value = round(t, 2)
    preview = viewer.layers[f"{prob_layer.name} preview"]
    np.testing.assert_array_equal(np.asarray(preview.data[3]), probability_to_mask(prob[3], post.threshold.value))
    post.threshold.value = 0.9  # live: the same layer follows the slider
    assert viewer.layers[f"{prob_layer.name} preview"] is preview
    np.testing.assert_array_equal(np.asarray(preview.data[3]), probability_to_mask(prob[3], 0.9))
    post.threshold.value = round(t, 2)
    post.apply.native.click()
    wait(qtbot, post)
    mito = viewer.layers[f"{prob_layer.name} mito"]
    np.testing.assert_array_equal(mito.data, probability_to_instances(prob, post.threshold.value))

    ev = dock(viewer, "Evaluate")
    ev.pred.value, ev.gt.value = mito, gt
    ev.run_button.native.click()
    wait(qtbot, ev)
    truth = np.asarray(open_volume(mito_run["label"]).read())
    expected = evaluate_mito((mito.data > 0).astype(np.float32), truth, mode="2d")
    assert ev.scores["iou"] == pytest.approx(expected["iou"])
    table = dict(zip(ev.table.value["index"], (row[0] for row in ev.table.value["data"])))
    assert table["IoU"] == f"{100 * expected['iou']:.1f} %" and table["mAP"].startswith("n/a")
    errors = viewer.layers[f"{mito.name} errors"]
    np.testing.assert_array_equal(errors.data, mask_errors(mito.data, truth))

    # probabilities give mAP too
    ev.pred.value = prob_layer
    ev.threshold.value = 0.5
    ev.run_button.native.click()
    wait(qtbot, ev)
    expected = evaluate_mito(prob, truth, mode="2d", threshold=0.5)
    assert ev.scores["map"] == pytest.approx(expected["map"])

    export = dock(viewer, "Export")
    export.layer.value = mito
    assert export.format.value == "zarr"
    export.output.value = tmp_path / "mito.zarr"
    export.export.native.click()
    wait(qtbot, export)
    written = open_volume(str(tmp_path / "mito.zarr"))
    np.testing.assert_array_equal(written.read(), mito.data)
    assert written.voxel_size == (40.0, 5.0, 5.0)
    assert not [n for n in notes if n[0] == "error"], notes
    post.live.value = True
    assert f"{prob_layer.name} preview" in viewer.layers
    viewer.layers.remove(prob_layer)  # its temporary zarr goes with it, and so does its preview
    assert not temporary.exists()
    assert f"{prob_layer.name} preview" not in viewer.layers and post.prob.value is None


def test_synapse_predict_gives_one_two_channel_layer(make_napari_viewer, qtbot, synapse_ckpt, notes):
    viewer = make_napari_viewer(show=True)
    raw = add_volume(viewer, str(synapse_ckpt.parents[1] / "t.zarr/raw"))
    predict = dock(viewer, "Predict")
    predict.image.value, predict.checkpoint.value, predict.patch.value = raw, synapse_ckpt, "32,32,32"
    predict.run.native.click()
    wait(qtbot, predict)
    layers = [layer for layer in viewer.layers if layer.name.endswith("probabilities")]
    assert len(layers) == 1 and layers[0].data.shape == (2, 32, 32, 32)
    assert not [n for n in notes if n[0] == "error"], notes


def synapse_scene(tmp_path):
    """A (2, 16, 64, 64) pre/post map and ground truth giving TP, FP and FN pre and post points."""
    p = np.zeros((2, 16, 64, 64), np.float32)
    p[0, 8, 10:12, 10:12] = 0.95     # pre A: matches GT pre 0 (TP)
    p[1, 8, 10, 16] = 0.9            # its post: matches GT post (TP)
    p[0, 8, 40:42, 40:42] = 0.95     # pre B: no GT near (FP)
    p[1, 8, 40, 47] = 0.9            # its post (FP)
    gt = SynapsePoints(np.array([[8, 10, 10], [8, 20, 54]]), np.array([[0, 8, 10, 17], [0, 8, 2, 10], [1, 8, 26, 54]]))
    write_points_h5(tmp_path / "gt.h5", gt, voxel_size=(8, 8, 8))
    return p, gt


def test_synapse_postprocess_evaluate_screenshot_export(make_napari_viewer, qtbot, notes, tmp_path):
    from masktwins3d.io import create_volume

    p, gt = synapse_scene(tmp_path)
    vol = create_volume(tmp_path / "prob.zarr", p.shape, np.float32, voxel_size=(8, 8, 8), axes="czyx")
    vol[:] = p
    viewer = make_napari_viewer(show=True)
    prob_layer = add_volume(viewer, str(tmp_path / "prob.zarr"))
    assert prob_layer.data.shape == p.shape

    post = dock(viewer, "Post-process")
    post.prob.value = prob_layer
    assert post.mode.value == "synapses"
    preview = viewer.layers[f"{prob_layer.name} preview"]
    assert set(np.unique(np.asarray(preview.data[8]))) == {0, 1, 2}
    post.apply.native.click()
    wait(qtbot, post)
    expected = probabilities_to_points(p)
    pre_layer = viewer.layers[f"{prob_layer.name} points pre"]
    np.testing.assert_array_equal(pre_layer.data, expected.pre)
    np.testing.assert_array_equal(viewer.layers[f"{prob_layer.name} points post"].data, expected.post_zyx)
    assert viewer.layers[f"{prob_layer.name} points links"].data.shape == (len(expected.post), 2, 3)

    gt_layers = viewer.open(str(tmp_path / "gt.h5"), plugin="masktwins3d")
    gt_pre = [layer for layer in gt_layers if layer.name.endswith("pre")][0]
    ev = dock(viewer, "Evaluate")
    ev.pred.value, ev.gt.value = pre_layer, gt_pre
    ev.run_button.native.click()
    wait(qtbot, ev)
    assert ev.scores["f1"] == pytest.approx(score_synapses(expected, gt)["f1"])
    outcome = viewer.layers["evaluation pre"].features["outcome"].tolist()
    assert sorted(outcome) == ["fn", "fp", "tp"]
    assert sorted(viewer.layers["evaluation post"].features["outcome"].tolist()) == ["fn", "fn", "fp", "tp"]

    for layer in viewer.layers:
        layer.visible = layer.name.startswith("evaluation")
    viewer.dims.set_point(viewer.dims.ndim - 3, 8 * 8)  # z (a 4D probability layer adds a channel axis in front)
    viewer.reset_view()
    qtbot.wait(50)
    shot = viewer.screenshot(canvas_only=True, flash=False)
    from PIL import Image

    Image.fromarray(shot).save(tmp_path / "evaluate.png")
    for name, colour in OUTCOME_COLORS.items():
        rgb = tuple(int(colour[i:i + 2], 16) for i in (1, 3, 5))
        assert colour_present(shot, rgb), f"{name} colour {colour} not in the screenshot"

    export = dock(viewer, "Export")
    export.layer.value = pre_layer
    export.output.value = tmp_path / "pred.h5"
    export.export.native.click()
    wait(qtbot, export)
    back = read_points(tmp_path / "pred.h5")
    np.testing.assert_array_equal(back.pre, expected.pre)
    np.testing.assert_array_equal(back.post, expected.post)
    export.format.value = "CSV folder"
    export.output.value = tmp_path / "csv"
    export.export.native.click()
    wait(qtbot, export)
    np.testing.assert_array_equal(read_points(tmp_path / "csv").post, expected.post)
    assert not [n for n in notes if n[0] == "error"], notes


def test_cancel_stops_a_running_prediction(make_napari_viewer, qtbot, mito_run, notes, monkeypatch, tmp_path):
    from masktwins3d.inference.blockwise import BlockJob

    call = BlockJob.__call__

    def slow(self, block):
        time.sleep(0.2)
        return call(self, block)

    monkeypatch.setattr(BlockJob, "__call__", slow)
    viewer = make_napari_viewer(show=True)
    raw = add_volume(viewer, mito_run["raw"])
    before = [layer.name for layer in viewer.layers]
    predict = dock(viewer, "Predict")
    predict.image.value, predict.checkpoint.value, predict.patch.value = raw, mito_run["checkpoint"], "32,32"
    predict.block_shape = (1, 64, 64)  # 6 blocks of 0.2 s or more
    predict.output.value = str(tmp_path / "named.zarr")
    predict.run.native.click()
    qtbot.waitUntil(lambda: predict.progress.value >= 1, timeout=30_000)
    assert predict.cancel.enabled
    predict.cancel.native.click()
    wait(qtbot, predict)
    assert predict.progress.value < 6
    assert [layer.name for layer in viewer.layers] == before
    assert predict.status.value == "cancelled"
    assert any("cancelled" in msg for _, msg in notes), notes
    assert predict.run.enabled and not predict.cancel.enabled
    assert not (tmp_path / "named.zarr").exists() and not list(tmp_path.glob(".named.zarr*"))  # nothing left behind
    predict.run.native.click()  # and the next run starts afresh
    wait(qtbot, predict)
    assert predict.status.value.startswith("done"), predict.status.value


def _bad_predict_cases(tmp_path, mito_run, synapse_ckpt):
    junk = tmp_path / "junk.pt"
    junk.write_text("not a checkpoint")
    rng = np.random.default_rng(0)
    return {
        "int32 image": (rng.integers(0, 9, (4, 64, 64)).astype(np.int32), mito_run["checkpoint"], "dtype int32"),
        "float64 image": (rng.random((4, 64, 64)), mito_run["checkpoint"], "dtype float64"),
        "2D layer, 3D model": (rng.integers(0, 255, (64, 64)).astype(np.uint8), synapse_ckpt, "2D image"),
        "missing checkpoint": (rng.integers(0, 255, (4, 64, 64)).astype(np.uint8), tmp_path / "nope.pt", "does not exist"),
        "not a checkpoint": (rng.integers(0, 255, (4, 64, 64)).astype(np.uint8), junk, "not a readable torch checkpoint"),
    }


def test_bad_predict_inputs_notify_and_leave_layers_untouched(make_napari_viewer, qtbot, mito_run, synapse_ckpt, notes, tmp_path):
    viewer = make_napari_viewer(show=True)
    predict = dock(viewer, "Predict")
    cases = _bad_predict_cases(tmp_path, mito_run, synapse_ckpt)
    if not torch.cuda.is_available():
        cases["cuda without a GPU"] = (np.zeros((4, 64, 64), np.uint8), mito_run["checkpoint"], "no CUDA GPU")
    for case, (data, ckpt, needle) in cases.items():
        predict.device.value = "cuda" if "cuda" in case else "auto"
        layer = viewer.add_image(data, name=case)
        snapshot = [(lay.name, lay.data) for lay in viewer.layers]
        copy = np.array(data, copy=True)
        predict.image.value, predict.checkpoint.value = layer, ckpt
        notes.clear()
        predict.run.native.click()
        assert predict.worker is None, case
        errors = [msg for sev, msg in notes if sev == "error"]
        assert len(errors) == 1 and needle in errors[0], (case, notes)
        assert [(lay.name, lay.data) for lay in viewer.layers] == snapshot, case
        np.testing.assert_array_equal(layer.data, copy)


def test_bad_postprocess_evaluate_export_inputs_notify(make_napari_viewer, qtbot, notes, tmp_path):
    viewer = make_napari_viewer(show=True)
    flat = viewer.add_image(np.zeros((32, 32), np.float32), name="flat")
    labels = viewer.add_labels(np.zeros((4, 32, 32), np.uint8), name="labels")
    other = viewer.add_labels(np.zeros((4, 16, 16), np.uint8), name="smaller")
    for data, kwargs, kind in points_layers(SynapsePoints(np.array([[1, 2, 3]]), np.zeros((0, 4))), "pts"):
        getattr(viewer, f"add_{kind}")(data, **kwargs)
    names = [layer.name for layer in viewer.layers]

    notes.clear()
    post = dock(viewer, "Post-process")
    post.prob.value = flat
    assert any("Post-process takes" in msg for _, msg in notes), notes

    ev = dock(viewer, "Evaluate")
    ev.pred.value, ev.gt.value = labels, other
    notes.clear()
    ev.run_button.native.click()
    assert any("has shape" in msg and "same region" in msg for _, msg in notes), notes
    ev.pred.value, ev.gt.value = viewer.layers["pts pre"], labels
    notes.clear()
    ev.run_button.native.click()
    assert any("not the same kind" in msg for _, msg in notes), notes

    export = dock(viewer, "Export")
    existing = tmp_path / "taken.h5"
    existing.write_bytes(b"keep me")
    export.layer.value, export.output.value = viewer.layers["pts pre"], existing
    notes.clear()
    export.export.native.click()
    assert any("exists" in msg and "overwrite" in msg for _, msg in notes), notes
    assert existing.read_bytes() == b"keep me"
    export.format.value = "zarr"
    export.output.value = tmp_path / "x.zarr"
    notes.clear()
    export.export.native.click()
    assert any("holds points" in msg for _, msg in notes), notes
    assert [layer.name for layer in viewer.layers if "preview" not in layer.name] == names


def test_screenshot_script_refuses_to_overwrite_and_bad_sizes(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "scripts" / "screenshot_evaluate.py"
    taken = tmp_path / "shot.png"
    taken.write_bytes(b"keep")
    run = subprocess.run([sys.executable, str(script), "--out", str(taken)], capture_output=True, text=True)
    assert run.returncode == 2 and "--overwrite" in run.stderr.strip().splitlines()[-1]
    assert taken.read_bytes() == b"keep"
    run = subprocess.run([sys.executable, str(script), "--out", str(tmp_path / "new.png"), "--size", "big"], capture_output=True, text=True)
    assert run.returncode == 2 and "--size 'big'" in run.stderr
