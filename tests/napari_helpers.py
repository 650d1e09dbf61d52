"""Shared pieces of the napari tests: tiny checkpoints trained in the test session, docking the
plugin's widgets, waiting for their workers and collecting notifications."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from masktwins3d.config import load_config
from masktwins3d.io import create_volume
from masktwins3d.io.points import SynapsePoints, write_points_h5
from masktwins3d.train import train

from conftest import tiny_overrides, write_pair

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def mito_run(tmp_path_factory):
    """A 2D U-Net checkpoint trained 2 iterations on a tiny generated pair, and its target volume."""
    root = tmp_path_factory.mktemp("mito")
    s_raw, s_lab = write_pair(root, "source", seed=1)
    t_raw, t_lab = write_pair(root, "target", shape=(6, 64, 64), seed=2, bright=-0.5)
    pair = {"source": (s_raw, s_lab), "target": (t_raw, t_lab)}
    ckpt = train(load_config(None, tiny_overrides(pair, "noadapt", root / "run", iterations=2)))
    return {"checkpoint": Path(ckpt), "raw": t_raw, "label": t_lab, "root": root}


@pytest.fixture(scope="session")
def synapse_ckpt(tmp_path_factory):
    """A 3D two-channel (pre, post) ResUNet checkpoint trained 2 iterations on noise with one synapse."""
    root = tmp_path_factory.mktemp("syn")
    rng = np.random.default_rng(0)
    for name in ("s", "t"):
        v = create_volume(root / f"{name}.zarr/raw", (32, 32, 32), np.uint8, voxel_size=(8, 8, 8))
        v[:] = rng.integers(0, 255, (32, 32, 32), dtype=np.uint8)
    write_points_h5(root / "gt.h5", SynapsePoints(np.array([[16, 16, 16]]), np.array([[0, 16, 16, 21]])))
    run = load_config(ROOT / "configs" / "synapse_demo.yaml", [
        "method=noadapt", "model.widths=[4,4,8,8,8]", "data.crop=[32,32,32]", "mask.patch=4", "optim.iterations=2",
        f"train.out_dir={root / 'run'}", "train.progress=false", f"data.source.raw={root / 's.zarr/raw'}",
        f"data.source.points={root / 'gt.h5'}", f"data.target.raw={root / 't.zarr/raw'}"])
    return Path(train(run))


def dock(viewer, name: str):
    """Open the plugin's widget ``name`` through napari's plugin menu machinery (the npe2 manifest)."""
    _, widget = viewer.window.add_plugin_dock_widget("masktwins3d", name)
    return widget


def wait(qtbot, widget, timeout: int = 60_000) -> None:
    """Wait until the widget's worker has finished and its callbacks have run."""
    qtbot.waitUntil(lambda: widget.worker is None, timeout=timeout)
    qtbot.wait(20)


@pytest.fixture
def notes():
    """Messages of the napari notifications shown during the test, in order."""
    from napari.utils.notifications import notification_manager

    seen: list = []

    def collect(event):
        note = getattr(event, "value", event)
        seen.append((str(getattr(note, "severity", "")), str(getattr(note, "message", note))))

    notification_manager.notification_ready.connect(collect)
    yield seen
    notification_manager.notification_ready.disconnect(collect)


def colour_present(image: np.ndarray, rgb, tol: int = 30, min_pixels: int = 4) -> bool:
    """Whether ``image`` (H, W, 3|4 uint8) holds at least ``min_pixels`` pixels within ``tol`` of ``rgb``."""
    diff = np.abs(image[..., :3].astype(int) - np.asarray(rgb, int)).max(axis=-1)
    return int((diff <= tol).sum()) >= min_pixels
