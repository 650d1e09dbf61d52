"""Hostile but realistic user inputs on every verb: each ends in exit code 2 with one line
``error: ...`` naming the thing and the fix, no traceback, and every input and earlier output
byte-identical afterwards (the write discipline of :mod:`masktwins3d.atomic`)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from masktwins3d.config import load_config
from masktwins3d.io import create_volume
from masktwins3d.train import train

from cli_helpers import assert_user_error, run_cli
from conftest import tiny_overrides, write_pair

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "mito_demo.yaml"
PROGRESS = re.compile(r"\d+%\|")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A tiny pair, a trained 2D checkpoint, a probability map, labels and reports: the files a
    user has after a first run (module-scoped; each test copies what it may touch)."""
    root = tmp_path_factory.mktemp("world")
    pair = {"source": write_pair(root, "source", seed=1), "target": write_pair(root, "target", seed=2, bright=-0.5), "root": root}
    ckpt = train(load_config(None, tiny_overrides(pair, "noadapt", root / "run", iterations=1)))
    return {"pair": pair, "ckpt": ckpt}


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _prob(tmp: Path, value: float = 0.9, name: str = "prob.zarr") -> str:
    v = create_volume(tmp / name, (4, 32, 32), np.float32, voxel_size=(40, 5, 5))
    a = np.zeros((4, 32, 32), np.float32)
    a[:, 8:16, 8:16] = value
    v[:] = a
    return str(tmp / name)


def _labels(tmp: Path, name: str = "labels.zarr") -> str:
    v = create_volume(tmp / name, (4, 32, 32), np.uint8, voxel_size=(40, 5, 5))
    a = np.zeros((4, 32, 32), np.uint8)
    a[:, 2:6, 2:6] = 1
    v[:] = a
    return str(tmp / name)


def _h5(tmp: Path) -> str:
    import h5py

    with h5py.File(tmp / "gt.h5", "w") as f:
        f["mito"] = np.zeros((4, 32, 32), np.uint8)
    return str(tmp / "gt.h5")


def _train_args(world, tmp: Path, *extra: str) -> list[str]:
    pair = {**world["pair"], "root": tmp}
    return ["train", "--config", CONFIG, *tiny_overrides(pair, "noadapt", tmp / "run", iterations=1), *extra]


def _earlier_run(world, tmp: Path) -> None:
    train(load_config(None, tiny_overrides(world["pair"], "noadapt", tmp / "run", iterations=1)))


def _damaged(tmp: Path, how: str) -> str:
    """A dense raw zarr with one chunk overwritten by garbage or deleted."""
    v = create_volume(tmp / "raw.zarr", (4, 32, 32), np.uint8, voxel_size=(40, 5, 5), chunks=(1, 32, 32))
    v[:] = np.random.default_rng(0).integers(1, 255, (4, 32, 32), dtype=np.uint8)
    chunk = next(p for p in sorted((tmp / "raw.zarr").rglob("*")) if p.is_file() and "/c/" in p.as_posix())
    if how == "garbage":
        chunk.write_bytes(b"not a blosc chunk")
    else:
        chunk.unlink()
    return str(tmp / "raw.zarr")


def _odd(tmp: Path, kind: str) -> str:
    """A zarr with a zero-length axis, an int8 zarr, or a multi-page TIFF cut in half."""
    import tifffile
    import zarr

    if kind == "empty":
        zarr.create_array(str(tmp / "z0.zarr"), shape=(0, 32, 32), dtype="uint8", chunks=(1, 32, 32))
        return str(tmp / "z0.zarr")
    if kind == "int8":
        a = zarr.create_array(str(tmp / "i8.zarr"), shape=(4, 32, 32), dtype="int8", chunks=(1, 32, 32))
        a[:] = np.random.default_rng(0).integers(-100, 100, (4, 32, 32))
        return str(tmp / "i8.zarr")
    tifffile.imwrite(tmp / "t.tif", np.random.default_rng(0).integers(0, 255, (8, 64, 64), dtype=np.uint8))
    with open(tmp / "t.tif", "r+b") as f:
        f.truncate((tmp / "t.tif").stat().st_size // 2)
    return str(tmp / "t.tif")


# (name, set-up(world, tmp) -> argv, needles in the one line)
CASES = [
    ("predict onto its own input", lambda w, t: ["predict", "--checkpoint", w["ckpt"], "--input", _prob(t) + "/0", "--output",
                                                 t / "prob.zarr/0", "--overwrite", "--patch", "32,32"], ["is the input", "another path"]),
    ("predict into the store around its input", lambda w, t: ["predict", "--checkpoint", w["ckpt"], "--input", _prob(t), "--output",
                                                              t, "--overwrite", "--patch", "32,32"], ["contains the input"]),
    ("predict over the checkpoint's folder", lambda w, t: ["predict", "--checkpoint", w["ckpt"], "--input", _prob(t), "--output",
                                                           Path(w["ckpt"]).parent, "--overwrite"], ["--checkpoint"]),
    ("evaluate mito --json onto the ground truth", lambda w, t: ["evaluate", "mito", "--pred", _prob(t), "--gt", _h5(t), "--json",
                                                                  t / "gt.h5", "--overwrite"], ["--json", "is the input --gt"]),
    ("evaluate mito --csv into the prediction", lambda w, t: ["evaluate", "mito", "--pred", _prob(t), "--gt", _labels(t), "--json",
                                                               t / "r.json", "--csv", t / "prob.zarr" / "r.csv"], ["--csv", "lies inside"]),
    ("postprocess mito out of range over earlier labels", lambda w, t: ["postprocess", "mito", "--prob", _prob(t, 1.7), "--out",
                                                                         _labels(t), "--overwrite"], ["prob.zarr"]),
    ("postprocess mito onto its input", lambda w, t: ["postprocess", "mito", "--prob", _prob(t), "--out", t / "prob.zarr",
                                                       "--overwrite"], ["is the input --prob"]),
    ("postprocess synapse onto its input", lambda w, t: ["postprocess", "synapse", "--prob", _prob(t), "--out", t / "prob.zarr",
                                                          "--overwrite"], ["is the input --prob"]),
    ("train optim.lr=-1 --overwrite", lambda w, t: (_earlier_run(w, t), _train_args(w, t, "optim.lr=-1", "--overwrite"))[1],
     ["optim.lr=-1.0", "optim.lr=1e-4"]),
    ("train optim.betas=[2,2] --overwrite", lambda w, t: (_earlier_run(w, t), _train_args(w, t, "optim.betas=[2,2]", "--overwrite"))[1],
     ["optim.betas"]),
    ("train optim.lr=nan", lambda w, t: _train_args(w, t, "optim.lr=nan"), ["optim.lr=nan"]),
    ("train model.widths=[4,8]", lambda w, t: _train_args(w, t, "model.widths=[4,8]"), ["model.widths", "five"]),
    ("train loss.lambda_cm=-3", lambda w, t: _train_args(w, t, "loss.lambda_cm=-3"), ["loss.lambda_cm"]),
    ("train loss.threshold=[1.5]", lambda w, t: _train_args(w, t, "loss.threshold=[1.5]"), ["loss.threshold"]),
    ("train teacher.alpha_max=2", lambda w, t: _train_args(w, t, "teacher.alpha_max=2"), ["teacher.alpha_max"]),
    ("train mask.ratio=1.5", lambda w, t: _train_args(w, t, "mask.ratio=1.5"), ["mask.ratio"]),
    ("train a probability above 1", lambda w, t: _train_args(w, t, "data.augmentations.elastic_p=3"), ["elastic_p"]),
    ("train --config a folder", lambda w, t: ["train", "--config", t], ["is a folder"]),
    ("predict into a path under a file", lambda w, t: ((t / "afile").write_text("x"), ["predict", "--checkpoint", w["ckpt"], "--input",
                                                        _prob(t), "--output", t / "afile" / "p.zarr", "--patch", "32,32"])[1],
     ["afile", "which is a file"]),
    ("predict a zarr with a damaged chunk", lambda w, t: ["predict", "--checkpoint", w["ckpt"], "--input", _damaged(t, "garbage"),
                                                           "--output", t / "p.zarr", "--patch", "32,32", "--resample", "never"],
     ["raw.zarr", "cannot be read", "damaged"]),
    ("predict a zarr with a missing chunk", lambda w, t: ["predict", "--checkpoint", w["ckpt"], "--input", _damaged(t, "missing"),
                                                           "--output", t / "p.zarr", "--patch", "32,32"], ["1 of its 4 chunks are missing", "--allow-missing"]),
    ("convert a zarr with a damaged chunk", lambda w, t: ["convert", "--input", _damaged(t, "garbage"), "--output", t / "c.zarr"],
     ["cannot be read"]),
    ("convert a zarr with a missing chunk", lambda w, t: ["convert", "--input", _damaged(t, "missing"), "--output", t / "c.zarr"],
     ["chunks are missing"]),
    ("train on a zarr with a missing chunk", lambda w, t: _train_args(w, t, f"data.source.raw={_damaged(t, 'missing')}"),
     ["data.source.raw", "data.allow_missing=true"]),
    ("predict on a scheduler nobody runs", lambda w, t: ["predict", "--checkpoint", w["ckpt"], "--input", _prob(t), "--output",
                                                          t / "p.zarr", "--patch", "32,32", "--scheduler", "tcp://127.0.0.1:1"],
     ["tcp://127.0.0.1:1", "no dask scheduler"]),
    ("postprocess mito on a scheduler nobody runs", lambda w, t: ["postprocess", "mito", "--prob", _prob(t), "--out", t / "l.zarr",
                                                                   "--scheduler", "tcp://127.0.0.1:1"], ["no dask scheduler"]),
    ("predict on a GPU this torch cannot see", lambda w, t: ["predict", "--checkpoint", w["ckpt"], "--input", _prob(t), "--output",
                                                              t / "p.zarr", "--device", "cuda"], ["--device cuda", "--device cpu"]),
    ("predict a zarr with a zero-length axis", lambda w, t: ["predict", "--checkpoint", w["ckpt"], "--input", _odd(t, "empty"),
                                                              "--output", t / "p.zarr"], ["z0.zarr", "length 0"]),
    ("predict an int8 image", lambda w, t: ["predict", "--checkpoint", w["ckpt"], "--input", _odd(t, "int8"), "--output", t / "p.zarr",
                                            "--patch", "32,32"], ["int8", "uint8"]),
    ("convert a truncated multi-page TIFF", lambda w, t: ["convert", "--input", _odd(t, "tiff"), "--output", t / "c.zarr",
                                                          "--voxel-size", "40,5,5"], ["t.tif", "truncated"]),
    ("train with a malformed override", lambda w, t: _train_args(w, t, "optim.iterations=[3"), ["optim.iterations=[3", "not valid YAML"]),
    ("demo --iterations 0", lambda w, t: ["demo", "--iterations", "0", "--out", t / "demo", "--data", t / "vol"], ["--iterations 0"]),
    ("evaluate synapse --json onto its ground truth", lambda w, t: ["evaluate", "synapse", "--pred", _h5(t), "--gt", _h5(t), "--json",
                                                                     t / "gt.h5", "--overwrite"], ["--json", "is the input"]),
]


@pytest.mark.parametrize("name,setup,needles", CASES, ids=[c[0] for c in CASES])
def test_user_mistake_is_one_line_and_loses_nothing(capsys, world, tmp_path, name, setup, needles):
    import torch

    if "GPU" in name and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    argv = setup(world, tmp_path)
    before, world_before = snapshot(tmp_path), snapshot(world["pair"]["root"])
    capsys.readouterr()
    code, _, err = run_cli(capsys, *argv)
    # a progress bar drawn before the error is not a second message (the error may follow it on its line)
    err = "\n".join(line[line.index("error: "):] if "error: " in line else line
                     for line in err.splitlines() if "error: " in line or not PROGRESS.search(line))
    assert_user_error(code, err, *needles)
    assert "Traceback" not in err
    assert snapshot(tmp_path) == before, f"{name}: a file changed"
    assert snapshot(world["pair"]["root"]) == world_before, f"{name}: an input changed"


def _unprivileged() -> list[str]:
    """A command prefix under which the file system's permission bits hold: nothing for a normal
    user; for root, ``setpriv`` without the capabilities that let root write anywhere."""
    import os
    import shutil

    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv: a read-only folder cannot be made read-only for this user")
    caps = "-dac_override,-dac_read_search"
    return ["setpriv", f"--bounding-set={caps}", f"--inh-caps={caps}", "--"]


def _prob2(tmp: Path) -> str:
    v = create_volume(tmp / "syn.zarr", (2, 16, 32, 32), np.float32, voxel_size=(8, 8, 8), axes="czyx")
    a = np.zeros((2, 16, 32, 32), np.float32)
    a[:, 6:9, 10:13, 10:13] = 0.95
    v[:] = a
    return str(tmp / "syn.zarr")


READ_ONLY = [
    ("predict", lambda w, t: ["predict", "--checkpoint", w["ckpt"], "--input", _prob(t), "--output", t / "ro" / "p.zarr", "--patch", "32,32"]),
    ("postprocess mito", lambda w, t: ["postprocess", "mito", "--prob", _prob(t), "--out", t / "ro" / "l.zarr"]),
    ("postprocess synapse", lambda w, t: ["postprocess", "synapse", "--prob", _prob2(t), "--out", t / "ro" / "pts.h5"]),
    ("evaluate mito", lambda w, t: ["evaluate", "mito", "--pred", _prob(t), "--gt", _labels(t), "--json", t / "ro" / "r.json"]),
]


@pytest.mark.parametrize("name,setup", READ_ONLY, ids=[c[0] for c in READ_ONLY])
def test_an_output_in_a_read_only_folder_is_one_line(world, tmp_path, name, setup):
    """The output folder exists but this user may not write there: exit 2, one line naming it, nothing written."""
    import subprocess
    import sys

    argv = [str(a) for a in setup(world, tmp_path)]
    ro = tmp_path / "ro"
    ro.mkdir()
    before = snapshot(tmp_path)
    ro.chmod(0o555)
    try:
        proc = subprocess.run([*_unprivileged(), sys.executable, "-m", "masktwins3d", *argv], capture_output=True, text=True, timeout=300)
    finally:
        ro.chmod(0o755)
    err = "\n".join(line[line.index("error: "):] if "error: " in line else line
                     for line in proc.stderr.splitlines() if "error: " in line or not PROGRESS.search(line))
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith(("note:", "precision:", "warning:"))]
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and lines[0].startswith("error: ") and str(ro) in lines[0], proc.stderr
    assert f"{ro}/." not in lines[0], "the line names a temporary file instead of the output"
    assert "Traceback" not in proc.stderr
    assert snapshot(tmp_path) == before and not any(ro.iterdir()), f"{name}: something was written"


def test_a_full_disk_names_the_output_not_its_temporary_file(tmp_path):
    from masktwins3d.atomic import atomic_write
    from masktwins3d.errors import UserError

    (tmp_path / "r.json").write_text("earlier")

    def full(tmp: str) -> None:
        raise OSError(28, "No space left on device", tmp)

    with pytest.raises(UserError, match=r"cannot write .*r\.json \(No space left on device\)") as info:
        atomic_write(tmp_path / "r.json", full)
    assert ".tmp" not in str(info.value)
    assert (tmp_path / "r.json").read_text() == "earlier" and [p.name for p in tmp_path.iterdir()] == ["r.json"]
