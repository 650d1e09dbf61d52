import numpy as np
import pytest
import torch

from masktwins3d.io import create_volume


@pytest.fixture(autouse=True)
def _few_threads():
    torch.set_num_threads(2)


@pytest.fixture(autouse=True)
def _fp32_on_every_cpu(monkeypatch):
    """The suite computes in fp32 whatever the CPU: ``amp=auto`` sees no native bf16 here (the
    tests of the bf16 path in test_precision.py ask for it). Subprocesses are not patched: tests
    that start one and compare it with an in-process run pass ``--amp off`` / ``train.amp=false``."""
    from masktwins3d import precision

    real = precision.native_bf16
    monkeypatch.setattr(precision, "native_bf16", lambda device_type: (False, "tests: fp32") if device_type == "cpu" else real(device_type))


def write_pair(root, name, shape=(4, 64, 64), seed=0, bright=1.0):
    """A tiny image/label pair: bright discs (label 1) on a noisy background."""
    rng = np.random.default_rng(seed)
    z, y, x = np.mgrid[: shape[0], : shape[1], : shape[2]]
    label = np.zeros(shape, np.uint8)
    for _ in range(6):
        cy, cx, r = rng.integers(8, shape[1] - 8), rng.integers(8, shape[2] - 8), rng.integers(4, 8)
        label[(y - cy) ** 2 + (x - cx) ** 2 < r * r] = 1
    raw = np.clip(80 + 100 * bright * label + rng.normal(0, 20, shape), 0, 255).astype(np.uint8)
    r = create_volume(f"{root}/{name}.zarr/raw", shape, np.uint8, voxel_size=(40, 5, 5))
    r[:] = raw
    m = create_volume(f"{root}/{name}.zarr/mito", shape, np.uint8, voxel_size=(40, 5, 5))
    m[:] = label
    return f"{root}/{name}.zarr/raw", f"{root}/{name}.zarr/mito"


@pytest.fixture
def tiny_pair(tmp_path):
    s_raw, s_lab = write_pair(tmp_path, "source", seed=1)
    t_raw, t_lab = write_pair(tmp_path, "target", seed=2, bright=-0.5)
    return {"source": (s_raw, s_lab), "target": (t_raw, t_lab), "root": tmp_path}


def tiny_overrides(pair, method, out_dir, iterations=4):
    return [
        f"method={method}",
        "model.widths=[4,4,8,8,8]",
        f"data.source.raw={pair['source'][0]}",
        f"data.source.label={pair['source'][1]}",
        f"data.target.raw={pair['target'][0]}",
        f"data.target.label={pair['target'][1]}",
        "data.crop=[32,32]",
        "data.batch_size=2",
        "mask.patch=8",
        f"optim.iterations={iterations}",
        "optim.lr=1e-3",
        "train.checkpoint_every=2",
        "train.log_every=1",
        "train.progress=false",
        f"train.out_dir={out_dir}",
    ]
