"""The Evaluate dock widget: score a prediction layer against a ground-truth layer and draw the errors.

* **Masks**: the prediction is a probability layer (thresholded) or a labels layer (nonzero =
  foreground); the ground truth a labels layer (nonzero = foreground). Scores are the DA-ISC
  protocol of :func:`~masktwins3d.evaluate.mito.evaluate_mito` (IoU, F1, MCC and, from
  probabilities, mAP; per-section means in ``2d`` mode, the paper's protocol, or pooled in
  ``3d``). The error map is a labels layer: false negatives red, false positives green.
* **Synapse points**: the prediction and the ground truth are points layers (a pre layer; its
  post and links partners are found by their group, see :mod:`.layers`). Scores are the WASPSYN
  protocol of :func:`~masktwins3d.evaluate.synapse.score_synapses`; the points are redrawn by
  outcome, TP magenta, FN yellow, FP cyan (:mod:`.overlay`). When the two layers sit at different
  offsets (chunk-local predictions, global ground truth), the ground truth is shifted into the
  prediction's frame, as the scorer does.

The scores go into the table in the widget (percent).
"""

from __future__ import annotations

import numpy as np
from magicgui.widgets import ComboBox, FloatSpinBox, Label, PushButton, Table
from napari.layers import Image, Labels, Points

from ..errors import UserError
from ..evaluate.mito import evaluate_mito
from ..evaluate.synapse import R_POST, R_PRE, score_synapses
from ..io.points import SynapsePoints
from ..modes import EvalMode, values
from .common import WorkerWidget, layer_picker, notify
from .layers import KEY, full_data, POINT_SIZE, geometry, layer_offset, layer_voxel_size, points_from_layers, role
from .overlay import ERROR_COLORS, OUTCOME_COLORS, mask_errors, point_outcomes


def synapse_points(viewer, layer) -> SynapsePoints:
    """The :class:`SynapsePoints` of a pre (or post) points layer and its group partners.

    A points layer without a group is taken as pre points without posts.
    """
    meta = role(layer)
    group, kind = meta.get("group"), meta.get("kind")
    partners = {role(other).get("kind"): other for other in viewer.layers
                if isinstance(other, Points) and group is not None and role(other).get("group") == group}
    pre = partners.get("pre", layer if kind != "post" else None)
    post = partners.get("post")
    if pre is None:
        raise UserError(f"layer {layer.name!r} holds post points and its group has no pre layer; pick the pre points layer")
    post_data = post.data if post is not None else np.zeros((0, 3))
    return points_from_layers(pre.data, post_data, post.features if post is not None else None, pre.features,
                              where=f"layers {pre.name!r}{f' and {post.name!r}' if post is not None else ''}")


def full_resolution(layer, what: str):
    """The layer's (full-resolution) array, unread, checked to be ZYX."""
    data = full_data(layer)
    if data.ndim != 3:
        raise UserError(f"{what} layer {layer.name!r} has shape {tuple(data.shape)}; masks are scored as one ZYX volume (one channel)")
    return data


def table_value(rows: list[tuple[str, str]]) -> dict:
    return {"data": [[v] for _, v in rows], "index": [k for k, _ in rows], "columns": ["value"]}


def pct(v) -> str:
    return "n/a" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{100 * float(v):.1f} %"


class EvaluateWidget(WorkerWidget):
    """Pick a prediction and a ground-truth layer; Run draws the errors and fills the table."""

    step = "evaluation"

    def __init__(self, napari_viewer):
        def scorable(layer) -> bool:
            return isinstance(layer, (Labels, Points)) or (isinstance(layer, Image) and role(layer).get("kind") == "probability")

        self.pred = layer_picker(napari_viewer, "prediction", scorable, prefer="labels")
        self.gt = layer_picker(napari_viewer, "ground truth", lambda layer: isinstance(layer, (Labels, Points)))
        self.threshold = FloatSpinBox(label="threshold", value=0.5, min=0.0, max=1.0, step=0.05, tooltip="probability predictions: foreground at p >= threshold")
        self.mode = ComboBox(label="mask protocol", choices=list(values(EvalMode)), value="2d", tooltip="2d: mean over z-sections (the paper's protocol); 3d: pooled")
        self.r_pre = FloatSpinBox(label="r pre", value=R_PRE, min=0.0, max=1000.0, step=0.5, tooltip="pre match radius, voxels (WASPSYN: 11)")
        self.r_post = FloatSpinBox(label="r post", value=R_POST, min=0.0, max=1000.0, step=0.5, tooltip="post match radius, voxels (WASPSYN: 6.5)")
        self.run_button = PushButton(text="Evaluate")
        self.table = Table(value=table_value([]))
        self.table.min_height = 300  # all rows visible
        self.status = Label(value="")
        super().__init__(napari_viewer, widgets=[self.pred, self.gt, self.threshold, self.mode, self.r_pre, self.r_post,
                                                 self.run_button, self.status, self.table])
        self.scores: dict | None = None
        self.run_button.changed.connect(self.run)
        self.pred.changed.connect(self._show_options)
        self._show_options()

    def _show_options(self, *_):
        """Mask options for masks, match radii for points."""
        points = isinstance(self.pred.value, Points)
        for w in (self.r_pre, self.r_post):
            w.visible = points
        self.mode.visible = not points
        self.threshold.visible = isinstance(self.pred.value, Image)

    def busy(self, running: bool) -> None:
        self.run_button.enabled = not running
        if running:
            self.status.value = "scoring ..."

    def run(self, *_):
        """Check the two layers, then score them in a thread worker."""
        with notify(self.step):
            pred, gt = self.pred.value, self.gt.value
            if pred is None or gt is None:
                raise UserError("pick a prediction and a ground-truth layer (a labels/probability layer against labels, or points against points)")
            if pred is gt:
                raise UserError(f"prediction and ground truth are the same layer {pred.name!r}; pick the ground-truth layer under 'ground truth'")
            if isinstance(pred, Points) != isinstance(gt, Points):
                raise UserError(f"{pred.name!r} and {gt.name!r} are not the same kind; score points against points and masks against labels")
            if isinstance(pred, Points):
                self._points(pred, gt)
            else:
                self._masks(pred, gt)

    def _masks(self, pred, gt) -> None:
        truth_data = full_resolution(gt, "ground truth")
        is_prob = isinstance(pred, Image)
        pred_data = full_resolution(pred, "probability" if is_prob else "prediction")
        if tuple(pred_data.shape) != tuple(truth_data.shape):
            raise UserError(f"{pred.name!r} has shape {tuple(pred_data.shape)} but {gt.name!r} has {tuple(truth_data.shape)}; "
                            "score a prediction of the same region as the ground truth")
        threshold, mode = float(self.threshold.value) if is_prob else 0.5, str(self.mode.value)

        def work():  # reads both volumes here, off the GUI thread
            import warnings

            truth = (np.asarray(truth_data) != 0).astype(np.uint8)
            prob = np.asarray(pred_data) if is_prob else (np.asarray(pred_data) != 0).astype(np.float32)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # empty sections: counted in the table instead
                scores = evaluate_mito(prob, truth, mode=mode, threshold=threshold)
            from ..postprocess.mito import probability_to_mask

            mask = probability_to_mask(prob, threshold) if is_prob else prob
            return scores, mask_errors(mask, truth)

        def done(result):
            scores, errors = result
            self.scores = scores
            rows = [("IoU", pct(scores["iou"])), ("F1", pct(scores["f1"])), ("MCC", pct(scores["mcc"])),
                    ("mAP", pct(scores["map"]) if is_prob else "n/a (needs probabilities)"),
                    ("protocol", scores["protocol"]), ("sections scored", f"{scores['n_scored']} of {scores['n_sections']}"),
                    ("false negatives (red)", f"{int((errors == 1).sum())} voxels"), ("false positives (green)", f"{int((errors == 2).sum())} voxels")]
            self.table.value = table_value(rows)
            name = f"{pred.name} errors"
            if name in self.viewer.layers:
                self.viewer.layers.remove(name)
            self.viewer.add_labels(errors, name=name, colormap=ERROR_COLORS, opacity=0.8,
                                   metadata={KEY: {"kind": "errors", "voxel_size": list(layer_voxel_size(gt)), "offset": list(layer_offset(gt))}},
                                   **geometry(layer_voxel_size(gt), layer_offset(gt), 3))
            self.status.value = f"IoU {pct(scores['iou'])}  (FN red, FP green)"

        self.start(work, done)

    def _points(self, pred, gt) -> None:
        p, g = synapse_points(self.viewer, pred), synapse_points(self.viewer, gt)
        shift = np.subtract(layer_offset(pred), layer_offset(gt))
        r_pre, r_post = float(self.r_pre.value), float(self.r_post.value)

        def work():
            return score_synapses(p, g, r_pre=r_pre, r_post=r_post, offset=shift), point_outcomes(p, g, r_pre, r_post, shift)

        def done(result):
            scores, outcomes = result
            self.scores = scores
            pre, post = scores["pre"], scores["post_linked"]
            rows = [("F1 (WASPSYN)", pct(scores["f1"])), ("F1 pre", pct(scores["f1_pre"])), ("F1 post", pct(scores["f1_post"])),
                    ("pre precision", pct(pre["precision"])), ("pre recall", pct(pre["recall"])),
                    ("pre TP / FP / FN", f"{pre['tp']} / {pre['fp']} / {pre['fn']}"),
                    ("post TP / FP / FN (in pairs)", f"{post['tp']} / {post['fp']} / {post['fn']}"),
                    ("connectivity", pct(scores["connectivity"]))]
            self.table.value = table_value(rows)
            geo = geometry(layer_voxel_size(pred), layer_offset(pred), 3)
            for kind, (points, labels) in outcomes.items():
                name = f"evaluation {kind}"
                if name in self.viewer.layers:
                    self.viewer.layers.remove(name)
                colors = [OUTCOME_COLORS[o] for o in labels] or "white"
                self.viewer.add_points(points.reshape(-1, 3), name=name, features={"outcome": np.asarray(labels, dtype=str)},
                                       face_color=colors, size=POINT_SIZE * 1.5, border_width=0.0,
                                       metadata={KEY: {"kind": "evaluation"}}, **geo)
            self.status.value = f"F1 {pct(scores['f1'])}  (TP magenta, FN yellow, FP cyan)"

        self.start(work, done)
