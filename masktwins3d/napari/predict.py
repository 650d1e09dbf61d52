"""The Predict dock widget: run a masktwins3d checkpoint on an image layer.

Everything the user chose is checked in the main thread first (the layer's dtype and
dimensions, the checkpoint, the patch, the output), so a mistake is one notification and no
computation. The package's blockwise engine
(:func:`~masktwins3d.inference.checkpoint.predict_with_checkpoint`) then runs in a thread worker
and writes a probability zarr (a temporary folder unless an output is given); a progress bar
follows the blocks and Cancel stops after the block in flight. The result is **one** probability
layer, read lazily from that zarr: ``(Z, Y, X)`` for a one-channel (mitochondria) model, with a
channel slider for a two-channel (pre, post) synapse model.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from pathlib import Path

import numpy as np
from magicgui.widgets import CheckBox, ComboBox, FileEdit, FloatSpinBox, Label, LineEdit, ProgressBar, PushButton
from napari.layers import Image
from napari.utils.notifications import show_info
from superqt.utils import ensure_main_thread

from ..errors import UserError
from ..io import Volume, open_volume
from ..modes import Device, Resample, Weights, values
from .common import Cancelled, WorkerWidget, layer_picker, notify
from .layers import full_data, layer_offset, layer_voxel_size, role, volume_layer

TEMP_PREFIX = "masktwins3d-predict-"
"""Prefix of the temporary folders that hold predictions made without an output path."""

IMAGE_DTYPES = ("uint8", "uint16", "int8", "int16", "float16", "float32")
"""Image dtypes Predict takes: EM intensities. int32/int64 are label arrays, float64 a computed one."""


def check_image(layer, dims: int) -> None:
    """A :class:`UserError` unless ``layer`` is an image the ``dims``-D model can predict."""
    data = full_data(layer)
    dtype = np.dtype(data.dtype)
    if dtype.name not in IMAGE_DTYPES:
        fix = "float32" if dtype.kind == "f" else "uint8 or uint16"
        raise UserError(
            f"layer {layer.name!r} has dtype {dtype}; Predict takes {', '.join(IMAGE_DTYPES)} EM images: "
            f"convert it to {fix} (e.g. layer.data = layer.data.astype('{fix.split()[0]}')) or pick the image layer"
        )
    if getattr(layer, "rgb", False):
        raise UserError(f"layer {layer.name!r} is RGB; Predict takes a grey-scale EM image: convert it to one channel")
    if data.ndim == 2 and dims == 3:
        raise UserError(f"layer {layer.name!r} is a 2D image of shape {data.shape}; this checkpoint is a 3D model: open a ZYX volume")
    if data.ndim not in (2, 3):
        raise UserError(f"layer {layer.name!r} has shape {data.shape}; Predict takes a ZYX volume (or a YX section for a 2D model)")


class LayerSource:
    """An array source (:mod:`masktwins3d.io.volume`) over a layer's array: numpy, dask or zarr."""

    def __init__(self, data):
        self.data = data
        self.shape = tuple(int(s) for s in data.shape)
        self.dtype = np.dtype(data.dtype)
        chunks = getattr(data, "chunksize", None) or getattr(data, "chunks", None)
        self.chunks = tuple(int(c) for c in chunks) if chunks and all(isinstance(c, (int, np.integer)) for c in chunks) else None

    def __getitem__(self, key):
        return np.asarray(self.data[key])


def image_volume(layer) -> Volume:
    """The image layer's (full-resolution) data as a ZYX :class:`~masktwins3d.io.Volume`, lazily;
    a YX section becomes one z-section."""
    data = full_data(layer)
    if data.ndim == 2:
        data = data[None]
    return Volume(LayerSource(data), path=f"layer {layer.name!r}", axes="zyx", voxel_size=layer_voxel_size(layer), offset=layer_offset(layer))


def parse_patch(text: str, dims: int) -> tuple[int, ...] | None:
    """``"auto"``/empty -> None (the engine's default); ``"256,256"`` -> (256, 256)."""
    text = text.strip().lower()
    if text in ("", "auto"):
        return None
    try:
        patch = tuple(int(v) for v in text.replace("x", ",").split(","))
    except ValueError:
        patch = ()
    if len(patch) != dims or any(p <= 0 or p % 16 for p in patch):
        example = "256,256" if dims == 2 else "64,64,64"
        raise UserError(f"patch {text!r} must be {dims} multiples of 16 for this {dims}D model, e.g. {example}, or auto")
    return patch


def zoom_note(ckpt: Path, volume: Volume, dims: int) -> str:
    """What ``resample="auto"`` will do for this checkpoint and input, in words ("" when nothing)."""
    from ..inference.checkpoint import resample_factors

    factors = resample_factors(ckpt, volume, dims)
    if factors is None:
        return ""
    return (f"input zoomed by {factors[0]:.3g} x {factors[1]:.3g} to the checkpoint's training voxel size "
            f"and back; resample 'never' turns this off")


class PredictWidget(WorkerWidget):
    """Pick an image layer and a checkpoint; patch, overlap, device; Run / Cancel with progress."""

    step = "prediction"

    def __init__(self, napari_viewer):
        from ..inference.settings import DEFAULT_PATCH, PredictSettings

        default = PredictSettings()  # the engine's defaults, stated there once
        auto = " or ".join(",".join(map(str, DEFAULT_PATCH[d])) for d in (2, 3))
        self.image = layer_picker(napari_viewer, "image", lambda layer: isinstance(layer, Image))
        self.checkpoint = FileEdit(label="checkpoint", mode="r", filter="*.pt")
        self.patch = LineEdit(label="patch", value="auto", tooltip=f"window in voxels: Y,X for 2D models, Z,Y,X for 3D; auto = {auto}")
        self.overlap = FloatSpinBox(label="overlap", value=default.overlap, min=0.0, max=0.9, step=0.05)
        self.device = ComboBox(label="device", choices=list(values(Device)), value=default.device)
        self.resample = ComboBox(label="resample", choices=list(values(Resample)), value=default.resample.value,
                                 tooltip="auto: a 2D model predicts at the voxel size it was trained at (zoom in-plane and back) when the layer's differs by more than 5 %")
        self.weights = ComboBox(label="weights", choices=list(values(Weights)), value=default.weights.value,
                                tooltip="student: the last iterate; ema: the running average of the weights that every training run keeps")
        self.output = FileEdit(label="output", mode="d", value="", tooltip="probability zarr to write (empty: a temporary folder)")
        self.overwrite = CheckBox(text="overwrite output", value=default.overwrite)
        self.run = PushButton(text="Run")
        self.cancel = PushButton(text="Cancel", enabled=False)
        self.progress = ProgressBar(label="blocks", value=0, min=0, max=1)
        self.status = Label(value="")
        super().__init__(napari_viewer, widgets=[self.image, self.checkpoint, self.weights, self.patch, self.overlap, self.device, self.resample, self.output,
                                                 self.overwrite, self.run, self.cancel, self.progress, self.status])
        self.block_shape = None  # engine default; tests and power users may set (Z, Y, X)
        self._stop = threading.Event()
        self.run.changed.connect(self.predict)
        self.cancel.changed.connect(self.request_cancel)
        napari_viewer.layers.events.removed.connect(self._forget)

    @staticmethod
    def _forget(event) -> None:
        """Delete the temporary zarr of a probability layer this widget made once the layer is removed."""
        tmp = role(event.value).get("temporary")
        if tmp and Path(tmp).name.startswith(TEMP_PREFIX):
            shutil.rmtree(tmp, ignore_errors=True)

    def busy(self, running: bool) -> None:
        self.run.enabled = not running
        self.cancel.enabled = running

    def request_cancel(self) -> None:
        """Stop the running prediction after its current block."""
        if self.worker is not None:
            self._stop.set()
            self.status.value = "cancelling ..."

    @ensure_main_thread
    def _progress(self, done: int, total: int) -> None:
        self.progress.max = max(total, 1)
        self.progress.value = done
        self.status.value = f"{done} of {total} blocks"

    def _output(self) -> tuple[Path, Path | None]:
        text = str(self.output.value).strip()
        if text in ("", "."):
            tmp = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX))
            return tmp / "prob.zarr", tmp
        out = Path(text)
        if out.exists() and not self.overwrite.value:
            raise UserError(f"{out} exists; tick 'overwrite output' to replace it, or choose another output")
        return out, None

    def settings(self, patch: tuple[int, ...] | None = None):
        """The widget's choices as checked :class:`~masktwins3d.inference.settings.PredictSettings`
        (``patch`` parsed for the model by :func:`parse_patch`; the rest the engine's defaults)."""
        from ..inference.settings import PredictSettings

        return PredictSettings(patch_size=patch, overlap=float(self.overlap.value), device=str(self.device.value),
                               block_shape=self.block_shape, resample=str(self.resample.value), weights=str(self.weights.value),
                               overwrite=bool(self.overwrite.value))

    def predict(self) -> None:
        """Check the choices, then start the prediction in a thread worker."""
        from ..inference.blockwise import CheckpointModel

        with notify(self.step):
            layer = self.image.value
            if layer is None:
                raise UserError("no image layer is selected; open a volume (File > Open) and pick it under 'image'")
            ckpt = Path(str(self.checkpoint.value))
            if not ckpt.is_file():
                raise UserError(f"checkpoint {ckpt} does not exist; pick the checkpoint.pt of a training run")
            if self.device.value == "cuda":
                import torch

                if not torch.cuda.is_available():
                    raise UserError("device cuda: torch sees no CUDA GPU on this machine; pick device auto or cpu")
            model = CheckpointModel.of(ckpt, str(self.weights.value)).load("cpu")  # a UserError for anything that is not a checkpoint
            dims = getattr(model, "spatial_dims", 2)
            check_image(layer, dims)
            patch = parse_patch(self.patch.value, dims)
            volume = image_volume(layer)
            note = zoom_note(ckpt, volume, dims) if self.resample.value == "auto" else ""
            settings = self.settings(patch)
            out, tmp = self._output()
            self._launch(layer, ckpt, volume, out, tmp, settings, note)

    def _launch(self, layer, ckpt: Path, volume: Volume, out: Path, tmp: Path | None, settings, note: str = "") -> None:
        from ..inference.checkpoint import predict_with_checkpoint
        from ..parallel.resumable import partial_path

        self._stop.clear()
        flat = full_data(layer).ndim == 2
        weights = settings.weights.value

        def on_block(done: int, total: int) -> None:
            self._progress(done, total)
            if self._stop.is_set():
                raise Cancelled(f"prediction cancelled after {done} of {total} blocks; no layer was added")

        def work() -> Volume:
            return predict_with_checkpoint(ckpt, volume, out, settings, progress=False, on_block=on_block)

        def done(_result) -> None:
            prob = open_volume(str(out))
            data, kwargs, _ = volume_layer(prob, f"{layer.name} probabilities", kind="probability")
            if flat:
                data = data[..., 0, :, :]
                kwargs.update(scale=kwargs["scale"][:-3] + kwargs["scale"][-2:], translate=kwargs["translate"][:-3] + kwargs["translate"][-2:])
            kwargs["metadata"]["masktwins3d"].update(checkpoint=str(ckpt), weights=weights, source=layer.name)
            if tmp is not None:
                kwargs["metadata"]["masktwins3d"]["temporary"] = str(tmp)
            self.viewer.add_image(data, **kwargs)
            self.status.value = f"done: {out}"
            show_info(f"prediction written to {out}" + (f" ({note})" if note else ""))

        def failed(_exc: BaseException) -> None:
            self.status.value = "cancelled" if isinstance(_exc, Cancelled) else "failed"
            if isinstance(_exc, Cancelled):  # the widget has no resume: its finished blocks are not kept
                shutil.rmtree(partial_path(out), ignore_errors=True)
            if tmp is not None:
                shutil.rmtree(tmp, ignore_errors=True)

        self.status.value = note or "starting ..."
        self.start(work, done, failed)
