"""The Post-process dock widget: probabilities -> a mitochondria mask (labels) or synapse points.

Moving a threshold updates a **live preview**: a labels layer holding a lazy (dask) expression
of the package's own rule (:func:`~masktwins3d.postprocess.mito.probability_to_mask`, or
:func:`~masktwins3d.postprocess.synapse.foreground` per channel), so napari computes only the
sections on screen and the preview is exactly what Apply will use. Apply runs the full
post-processing in a thread worker:

* one channel (mitochondria): instances by :func:`~masktwins3d.postprocess.mito.probability_to_instances`
  (26-connected components, small ones removed) -> a labels layer ``<prob> mito``;
* two channels (pre, post): AdaSyn points by :func:`~masktwins3d.postprocess.synapse.probabilities_to_points`
  -> ``<prob> points pre``, ``... post`` and ``... links`` (posts linked to their pre).

The whole probability volume is read into memory by Apply; for volumes larger than memory use
``masktwins3d postprocess`` (blockwise, same results).
"""

from __future__ import annotations

import numpy as np
from magicgui.widgets import CheckBox, ComboBox, FloatSlider, Label, PushButton, SpinBox
from napari.layers import Image, Layer

from ..errors import UserError
from ..postprocess import mito as mito_pp
from ..postprocess import synapse as syn_pp
from .common import WorkerWidget, layer_picker, notify
from .layers import KEY, full_data, geometry, layer_offset, layer_voxel_size, points_layers, role

MODES = ("mitochondria", "synapses")
PREVIEW_COLORS = {None: "transparent", 0: "transparent", 1: "#ff7f0e", 2: "#1f9bff"}
"""Preview labels: 1 mito / pre foreground (orange), 2 post foreground (blue)."""


def is_probability(layer) -> bool:
    """Image layers that can hold probabilities: made by Predict or the reader as such, or any float image."""
    if not isinstance(layer, Image):
        return False
    data = full_data(layer)
    return role(layer).get("kind") == "probability" or np.dtype(data.dtype).kind == "f"


def channels_of(layer) -> int:
    """1 for a (Z, Y, X) probability layer, C for a (C, Z, Y, X) one."""
    data = full_data(layer)
    return int(data.shape[0]) if data.ndim == 4 else 1


def probability_data(layer):
    """The layer's full-resolution data as a dask array (lazy), checked to be probabilities-shaped."""
    import dask.array as da

    data = full_data(layer)
    if data.ndim not in (3, 4):
        raise UserError(f"layer {layer.name!r} has shape {data.shape}; Post-process takes a (Z, Y, X) or (C, Z, Y, X) probability layer from Predict")
    if np.dtype(data.dtype).kind != "f" and np.dtype(data.dtype) != np.uint8:
        raise UserError(f"layer {layer.name!r} has dtype {data.dtype}; probabilities are float in [0, 1] or uint8 0..255: pick the probability layer")
    return data if isinstance(data, da.Array) else da.from_array(data, chunks=(*([1] * (data.ndim - 2)), *data.shape[-2:]))


def mito_preview(prob, threshold: float):
    """Lazy uint8 preview: 1 where ``probability_to_mask`` is foreground."""
    t = mito_pp.check_threshold(threshold)
    return prob.map_blocks(lambda b: mito_pp.probability_to_mask(b, t).astype(np.uint8), dtype=np.uint8)


def synapse_preview(prob, delta_pre: float, delta_post: float):
    """Lazy uint8 preview of a (2, Z, Y, X) map: 2 post foreground, else 1 pre foreground, else 0."""
    syn_pp.check_options((delta_pre, delta_post), 1)

    def block(b: np.ndarray) -> np.ndarray:
        pre = syn_pp.foreground(b[0], delta_pre)
        post = syn_pp.foreground(b[1], delta_post)
        return np.where(post, 2, np.where(pre, 1, 0)).astype(np.uint8)[None]

    return prob.rechunk({0: 2}).map_blocks(block, dtype=np.uint8, chunks=(1, *prob.chunks[1:]))[0]


class PostprocessWidget(WorkerWidget):
    """Thresholds with a live preview; Apply makes a mito labels layer or synapse points with links."""

    step = "post-processing"

    def __init__(self, napari_viewer):
        self.prob = layer_picker(napari_viewer, "probabilities", is_probability, prefer="probability")
        self.mode = ComboBox(label="kind", choices=list(MODES), value="mitochondria")
        self.threshold = FloatSlider(label="threshold", value=mito_pp.THRESHOLD, min=0.01, max=1.0, step=0.01)
        self.min_size = SpinBox(label="min size", value=1, min=1, max=10**9, tooltip="mitochondria smaller than this (voxels) are dropped")
        self.delta_pre = FloatSlider(label="pre threshold", value=syn_pp.THRESHOLDS[0], min=0.0, max=1.0, step=0.01)
        self.delta_post = FloatSlider(label="post threshold", value=syn_pp.THRESHOLDS[1], min=0.0, max=1.0, step=0.01)
        self.min_pre = SpinBox(label="min pre voxels", value=syn_pp.MIN_PRE_VOXELS, min=1, max=10**6)
        self.live = CheckBox(text="live preview", value=True)
        self.apply = PushButton(text="Apply")
        self.status = Label(value="")
        super().__init__(napari_viewer, widgets=[self.prob, self.mode, self.threshold, self.min_size, self.delta_pre, self.delta_post,
                                                 self.min_pre, self.live, self.apply, self.status])
        self.preview_layer = None
        self.preview_source = None
        napari_viewer.layers.events.removed.connect(self._removed)
        self.prob.changed.connect(self._layer_changed)
        self.mode.changed.connect(self._mode_changed)
        for w in (self.threshold, self.delta_pre, self.delta_post, self.live):
            w.changed.connect(self.update_preview)
        self.apply.changed.connect(self.run)
        self._layer_changed()

    # ---- preview --------------------------------------------------------------------------
    def _layer_changed(self, *_):
        layer = self.prob.value
        if layer is not None:
            self.mode.value = "synapses" if channels_of(layer) == 2 else "mitochondria"
        self._mode_changed()

    def _mode_changed(self, *_):
        syn = self.mode.value == "synapses"
        for w in (self.delta_pre, self.delta_post, self.min_pre):
            w.visible = syn
        for w in (self.threshold, self.min_size):
            w.visible = not syn
        self.update_preview()

    def update_preview(self, *_):
        """Show (or hide) the lazy preview of the current thresholds."""
        with notify("preview"):
            layer = self.prob.value
            if not self.live.value or layer is None:
                self._drop_preview()
                return
            prob = probability_data(layer)
            if self.mode.value == "synapses":
                if prob.ndim != 4 or prob.shape[0] != 2:
                    raise UserError(f"layer {layer.name!r} has shape {prob.shape}; synapse post-processing needs (2, Z, Y, X) pre/post probabilities")
                data = synapse_preview(prob, self.delta_pre.value, self.delta_post.value)
            else:
                if prob.ndim == 4:
                    raise UserError(f"layer {layer.name!r} has {prob.shape[0]} channels; mitochondria take one channel: pick kind 'synapses' or a one-channel layer")
                data = mito_preview(prob, self.threshold.value)
            geo = geometry(layer_voxel_size(layer), layer_offset(layer), 3)
            if self.preview_layer is not None and self.preview_layer in self.viewer.layers and self.preview_layer.data.shape == data.shape:
                self.preview_layer.data = data
                self.preview_layer.name = f"{layer.name} preview"
            else:
                self._drop_preview()
                self.preview_layer = self.viewer.add_labels(data, name=f"{layer.name} preview", opacity=0.5, colormap=PREVIEW_COLORS,
                                                            metadata={KEY: {"kind": "preview"}}, **geo)
                self.viewer.layers.selection.active = layer
            self.preview_source = layer

    def _removed(self, event) -> None:
        """A removed probability layer takes its preview with it."""
        if event.value is self.preview_source:
            self._drop_preview()
            self.prob.reset_choices()
        elif event.value is self.preview_layer:
            self.preview_layer = self.preview_source = None

    def _drop_preview(self):
        layer, self.preview_layer, self.preview_source = self.preview_layer, None, None
        if layer is not None and layer in self.viewer.layers:
            self.viewer.layers.remove(layer)

    # ---- apply ----------------------------------------------------------------------------
    def busy(self, running: bool) -> None:
        self.apply.enabled = not running
        self.status.value = "running ..." if running else self.status.value

    def run(self, *_):
        """Post-process the whole probability layer in a thread worker."""
        with notify(self.step):
            layer = self.prob.value
            if layer is None:
                raise UserError("no probability layer is selected; run Predict or open a probability zarr, then pick it")
            prob = probability_data(layer)
            vs, off = layer_voxel_size(layer), layer_offset(layer)
            meta = {"voxel_size": list(vs), "offset": list(off), "source": layer.name}
            if self.mode.value == "synapses":
                thresholds = syn_pp.check_options((self.delta_pre.value, self.delta_post.value), int(self.min_pre.value))
                if prob.ndim != 4 or prob.shape[0] != 2:
                    raise UserError(f"layer {layer.name!r} has shape {prob.shape}; synapse post-processing needs (2, Z, Y, X) pre/post probabilities")
                min_pre = int(self.min_pre.value)

                def work():
                    return syn_pp.probabilities_to_points(np.asarray(prob), thresholds, min_pre)

                def done(points):
                    for data, kwargs, kind in points_layers(points, f"{layer.name} points", vs, off):
                        kwargs["metadata"][KEY].update(source=layer.name)
                        self.viewer.add_layer(Layer.create(data, kwargs, kind))
                    self.status.value = f"{len(points.pre)} pre, {len(points.post)} post points"
            else:
                if prob.ndim == 4:
                    raise UserError(f"layer {layer.name!r} has {prob.shape[0]} channels; mitochondria take one channel: pick kind 'synapses'")
                threshold, min_size = mito_pp.check_threshold(self.threshold.value), int(self.min_size.value)

                def work():
                    return mito_pp.probability_to_instances(np.asarray(prob), threshold, min_size=min_size)

                def done(labels):
                    self.viewer.add_labels(labels, name=f"{layer.name} mito", metadata={KEY: {"kind": "labels", **meta, "threshold": threshold}},
                                           **geometry(vs, off, 3))
                    self.status.value = f"{int(labels.max())} mitochondria at threshold {threshold:g}"
            self.start(work, done)
