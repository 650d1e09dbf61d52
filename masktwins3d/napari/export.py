"""The Export dock widget: synapse points to WASPSYN HDF5 or CSV, masks and labels to OME-Zarr.

Points layers are written with :func:`~masktwins3d.io.points.write_points_h5` (``pre`` (N, 3),
``post`` (M, 4) ``[pre row, z, y, x]``, attributes ``voxel_size`` and ``offset``) or
:func:`~masktwins3d.io.points.write_points_csv` (``pre.csv``, ``post.csv``), each file
atomically; the post layer and its links are found from the pre layer's group (:mod:`.layers`).
Labels layers are written as an OME-Zarr ``zyx`` volume with the layer's voxel size and offset,
built in a hidden sibling folder and renamed into place when complete. An existing output is
replaced only with "overwrite" ticked.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
from magicgui.widgets import CheckBox, ComboBox, FileEdit, Label, PushButton
from napari.layers import Labels, Points
from napari.utils.notifications import show_info

from ..atomic import move_into_place
from ..errors import UserError
from ..io import create_volume
from ..io.points import write_points_csv, write_points_h5
from .common import WorkerWidget, layer_picker, notify
from .evaluate import synapse_points
from .layers import full_data, layer_offset, layer_voxel_size

FORMATS = ("WASPSYN h5", "CSV folder", "zarr")


def write_labels_zarr(path: Path, data, voxel_size, offset, overwrite: bool) -> Path:
    """Write a ZYX labels array as an OME-Zarr volume at ``path`` (a folder), complete or not at all."""
    data = np.asarray(data)
    if data.ndim != 3:
        raise UserError(f"labels of shape {data.shape} are not ZYX; Export writes 3D label volumes")
    if path.exists() and not overwrite:
        raise UserError(f"{path} exists; tick 'overwrite' to replace it, or choose another output")
    partial = path.parent / f".{path.name}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    vol = create_volume(partial, data.shape, data.dtype, voxel_size=voxel_size, offset=offset, axes="zyx")
    vol[:] = data
    if path.exists():
        if not overwrite:
            shutil.rmtree(partial, ignore_errors=True)
            raise UserError(f"{path} exists; tick 'overwrite' to replace it, or choose another output")
    move_into_place(partial, path)  # an earlier output is set aside, and deleted once this one is in place
    return path


class ExportWidget(WorkerWidget):
    """Pick a labels or points layer, a format and an output path; Export writes it."""

    step = "export"

    def __init__(self, napari_viewer):
        self.layer = layer_picker(napari_viewer, "layer", lambda layer: isinstance(layer, (Labels, Points)))
        self.format = ComboBox(label="format", choices=list(FORMATS), value="WASPSYN h5")
        self.output = FileEdit(label="output", mode="w", value="")
        self.overwrite = CheckBox(text="overwrite", value=False)
        self.export = PushButton(text="Export")
        self.status = Label(value="")
        super().__init__(napari_viewer, widgets=[self.layer, self.format, self.output, self.overwrite, self.export, self.status])
        self.layer.changed.connect(self._suggest_format)
        self.export.changed.connect(self.run)
        self._suggest_format()

    def _suggest_format(self, *_):
        layer = self.layer.value
        if isinstance(layer, Labels):
            self.format.value = "zarr"
        elif isinstance(layer, Points) and self.format.value == "zarr":
            self.format.value = "WASPSYN h5"

    def busy(self, running: bool) -> None:
        self.export.enabled = not running

    def run(self, *_):
        """Check the choices and write the output."""
        with notify(self.step):
            layer, fmt = self.layer.value, str(self.format.value)
            if layer is None:
                raise UserError("no labels or points layer is selected; pick the layer to export")
            text = str(self.output.value).strip()
            if text in ("", "."):
                raise UserError("no output is given; choose a file (.h5), a folder (CSV) or a .zarr folder under 'output'")
            out = Path(text)
            if out.exists() and not self.overwrite.value:
                raise UserError(f"{out} exists; tick 'overwrite' to replace it, or choose another output")
            vs, off = layer_voxel_size(layer), layer_offset(layer)
            if isinstance(layer, Points):
                if fmt == "zarr":
                    raise UserError(f"layer {layer.name!r} holds points; export points as 'WASPSYN h5' or 'CSV folder'")
                points = synapse_points(self.viewer, layer)
                if fmt == "WASPSYN h5":
                    def work():
                        return write_points_h5(out, points, voxel_size=vs, offset=off)
                else:
                    if out.exists() and not out.is_dir():
                        raise UserError(f"{out} is a file; CSV export writes pre.csv and post.csv into a folder: choose a folder")

                    def work():
                        return write_points_csv(out, points)
                summary = f"{len(points.pre)} pre and {len(points.post)} post points"
            else:
                if fmt != "zarr":
                    raise UserError(f"layer {layer.name!r} is a labels layer; export it as 'zarr'")
                data = full_data(layer)
                overwrite = bool(self.overwrite.value)

                def work():
                    return write_labels_zarr(out, data, vs, off, overwrite)
                summary = f"labels {tuple(data.shape)}"

            def done(path):
                self.status.value = f"wrote {path}"
                show_info(f"exported {summary} to {path}")

            self.start(work, done)
