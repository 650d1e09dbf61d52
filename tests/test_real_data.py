"""Real EM data (VNC III -> CDeep3M) through the config's dataset keys; skips cleanly without the data folder."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("MASKTWINS3D_DATA", ROOT.parent / "shared" / "data"))


def _bench():
    spec = importlib.util.spec_from_file_location("real_mito", ROOT / "benchmarks" / "real_mito.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_benchmark_skips_in_one_line_without_the_data(tmp_path, capsys):
    assert _bench().main(["--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and out[0].startswith("skipped: real data not found")
    assert not (tmp_path / "out").exists()


@pytest.fixture
def real_data():
    if not ((DATA / "vnc3_stack1.h5").is_file() and (DATA / "cdeep3m_mito.h5").is_file()):
        pytest.skip(f"real data not found: {DATA} (set MASKTWINS3D_DATA)")
    return DATA


def test_real_config_trains_from_dataset_names(real_data, tmp_path, capsys):
    from masktwins3d.adapt.trainer import load_checkpoint
    from masktwins3d.config import load_config
    from masktwins3d.train import train

    run = load_config(ROOT / "configs" / "real_mito.yaml", [
        f"data.root={real_data}", "model.widths=[4,4,8,8,8]", "data.crop=[64,64]", "mask.patch=8",
        "optim.iterations=2", "train.progress=false", f"train.out_dir={tmp_path / 'run'}",
        "data.augmentations.elastic_p=0.5", "data.augmentations.intensity_p=0.5",
    ])
    state = load_checkpoint(train(run))
    assert state["voxel_size"] == pytest.approx([50.0, 4.6, 4.6])  # VNC III, from the file root
    # CDeep3M records no voxel size: the pipeline says so and does not resample
    assert "voxel size is not recorded" in capsys.readouterr().err


def test_real_benchmark_scaled_volumes_keep_geometry(real_data, tmp_path):
    from masktwins3d.io import open_volume

    specs = _bench().prepare_scaled(real_data, tmp_path, 0.25)
    src, val = open_volume(specs["source_raw"]), open_volume(specs["val_raw"])
    assert src.shape == (20, 256, 256) and src.voxel_size == pytest.approx((50, 18.4, 18.4))
    assert val.shape == (10, 256, 256) and val.voxel_size == (1.0, 1.0, 1.0)  # unknown stays unknown
    labels = open_volume(specs["source_label"])[:]
    assert set(labels.ravel().tolist()) <= {0, 1} and 0.03 < labels.mean() < 0.08  # ~5.4 % mitochondria


def test_benchmark_refuses_bad_arguments_before_touching_its_output(real_data, tmp_path, capsys):
    """--overwrite removes an earlier output only after every argument has been checked."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("an earlier run")
    bench = _bench()
    for args, message in ((["--scale", "2"], "--scale 2.0 must be in (0, 1]"),
                          (["--scale", "0.5", "--target-voxel-size", "50", "4.6", "4.6"], "--target-voxel-size goes with --scale 1")):
        assert bench.main(["--data", str(real_data), "--out", str(out), "--overwrite", *args]) == 2
        assert message in capsys.readouterr().err
        assert (out / "keep.txt").read_text() == "an earlier run"
