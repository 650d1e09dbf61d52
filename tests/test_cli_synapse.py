"""Synapse verbs end to end: train a tiny 3D model, predict, post-process, score; every bad input."""

import json
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np

from masktwins3d.io import create_volume
from masktwins3d.io.points import SynapsePoints, write_points_h5

from cli_helpers import assert_user_error, run_cli

ROOT = Path(__file__).resolve().parents[1]


def prob_map(path, channels=2):
    """A (C, 16, 24, 24) map with one pre blob and two post blobs."""
    p = np.zeros((channels, 16, 24, 24), np.float32)
    p[0, 7:9, 10:12, 10:12] = 0.95
    p[1, 8, 10, 16] = 0.9
    p[1, 8, 4, 10:12] = 0.9
    vol = create_volume(path, p.shape, np.float32, voxel_size=(8, 8, 8), axes="czyx")
    vol[:] = p
    return path


GT = SynapsePoints(np.array([[7, 10, 10]]), np.array([[0, 8, 10, 16], [0, 8, 4, 10]]))


def test_postprocess_then_evaluate(capsys, tmp_path):
    prob = prob_map(tmp_path / "prob.zarr")
    code, out, _ = run_cli(capsys, "postprocess", "synapse", "--prob", prob, "--out", tmp_path / "pts.h5", "--csv", tmp_path / "csv")
    assert code == 0 and "1 pre and 2 post" in out
    with h5py.File(tmp_path / "pts.h5") as f:
        assert f["pre"][()].tolist() == [[7, 10, 10]] and f.attrs["voxel_size"].tolist() == [8, 8, 8]
    assert (tmp_path / "csv" / "pre.csv").is_file()
    write_points_h5(tmp_path / "syns_zyx_100-116_0-24_50-74.h5", SynapsePoints(GT.pre + [100, 0, 50], GT.post + [0, 100, 0, 50]))
    code, out, _ = run_cli(capsys, "evaluate", "synapse", "--pred", tmp_path / "pts.h5", "--gt", tmp_path / "syns_zyx_100-116_0-24_50-74.h5", "--json", tmp_path / "s.json")
    assert code == 0 and "offset 100,0,50" in out
    report = json.loads((tmp_path / "s.json").read_text())
    assert report["f1"] == 1.0 and report["offset"] == [100, 0, 50]
    # an explicit offset wins over the name
    code, _, _ = run_cli(capsys, "evaluate", "synapse", "--pred", tmp_path / "pts.h5", "--gt", tmp_path / "syns_zyx_100-116_0-24_50-74.h5",
                         "--offset", "0,0,0", "--json", tmp_path / "s0.json")
    assert json.loads((tmp_path / "s0.json").read_text())["f1"] == 0.0
    code, _, err = run_cli(capsys, "evaluate", "synapse", "--pred", tmp_path / "pts.h5", "--gt", tmp_path / "pts.h5", "--json", tmp_path / "s.json")
    assert_user_error(code, err, "s.json", "--overwrite")


def test_bad_synapse_inputs_write_nothing(capsys, tmp_path):
    prob3 = prob_map(tmp_path / "p3.zarr", channels=3)
    code, _, err = run_cli(capsys, "postprocess", "synapse", "--prob", prob3, "--out", tmp_path / "o.h5")
    assert_user_error(code, err, "p3.zarr", "2, Z, Y, X")
    assert not (tmp_path / "o.h5").exists()
    with h5py.File(tmp_path / "nopost.h5", "w") as f:
        f["pre"] = np.zeros((1, 3))
    write_points_h5(tmp_path / "ok.h5", GT)
    code, _, err = run_cli(capsys, "evaluate", "synapse", "--pred", tmp_path / "ok.h5", "--gt", tmp_path / "nopost.h5", "--json", tmp_path / "j.json")
    assert_user_error(code, err, "nopost.h5", "'post'")
    with h5py.File(tmp_path / "cols.h5", "w") as f:
        f["pre"], f["post"] = np.zeros((1, 3)), np.zeros((1, 5))
    code, _, err = run_cli(capsys, "evaluate", "synapse", "--pred", tmp_path / "cols.h5", "--gt", tmp_path / "ok.h5", "--json", tmp_path / "j.json")
    assert_user_error(code, err, "cols.h5", "(M, 4)")
    with h5py.File(tmp_path / "link.h5", "w") as f:
        f["pre"], f["post"] = np.zeros((1, 3)), np.array([[4.0, 1, 1, 1]])
    code, _, err = run_cli(capsys, "evaluate", "synapse", "--pred", tmp_path / "link.h5", "--gt", tmp_path / "ok.h5", "--json", tmp_path / "j.json")
    assert_user_error(code, err, "link.h5", "pre row 4")
    code, _, err = run_cli(capsys, "evaluate", "synapse", "--pred", tmp_path / "ok.h5", "--gt", tmp_path / "ok.h5", "--offset", "1,x,2", "--json", tmp_path / "j.json")
    assert_user_error(code, err, "--offset")
    assert not (tmp_path / "j.json").exists()


def synapse_train_args(tmp_path, points, method="noadapt"):
    rng = np.random.default_rng(0)
    for name in ("s", "t"):
        v = create_volume(tmp_path / f"{name}.zarr/raw", (32, 32, 32), np.uint8, voxel_size=(8, 8, 8))
        v[:] = rng.integers(0, 255, (32, 32, 32), dtype=np.uint8)
    return ["train", "--config", ROOT / "configs" / "synapse_demo.yaml", f"method={method}", "model.widths=[4,4,8,8,8]",
            "data.crop=[32,32,32]", "mask.patch=4", "optim.iterations=2", f"train.out_dir={tmp_path / 'run'}", "train.progress=false",
            f"data.source.raw={tmp_path / 's.zarr/raw'}", f"data.source.points={points}", f"data.target.raw={tmp_path / 't.zarr/raw'}"]


def test_train_predict_postprocess_3d(capsys, tmp_path):
    write_points_h5(tmp_path / "gt.h5", SynapsePoints(np.array([[16, 16, 16]]), np.array([[0, 16, 16, 21]])))
    code, out, err = run_cli(capsys, *synapse_train_args(tmp_path, tmp_path / "gt.h5", "masktwins"))
    assert code == 0, err
    code, _, err = run_cli(capsys, "predict", "--checkpoint", tmp_path / "run" / "checkpoint.pt", "--input", tmp_path / "t.zarr/raw",
                           "--output", tmp_path / "prob.zarr", "--patch", "32,32,32")
    assert code == 0, err
    code, _, err = run_cli(capsys, "postprocess", "synapse", "--prob", tmp_path / "prob.zarr", "--out", tmp_path / "pts.h5")
    assert code == 0, err
    code, _, err = run_cli(capsys, "predict", "--checkpoint", tmp_path / "run" / "checkpoint.pt", "--input", tmp_path / "t.zarr/raw",
                           "--output", tmp_path / "p2.zarr", "--patch", "32,32")
    assert_user_error(code, err, "--patch", "3D")


def test_training_points_outside_the_volume(capsys, tmp_path):
    write_points_h5(tmp_path / "gt.h5", SynapsePoints(np.array([[40, 16, 16]]), np.zeros((0, 4))))
    code, _, err = run_cli(capsys, *synapse_train_args(tmp_path, tmp_path / "gt.h5"))
    assert_user_error(code, err, "gt.h5", "outside the volume")
    assert not (tmp_path / "run").exists()


def run_script(*args):
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "evaluate_waspsyn.py"), *map(str, args)], capture_output=True, text=True)


def test_evaluate_waspsyn_script(tmp_path):
    gt_dir, pred_dir = tmp_path / "gt", tmp_path / "pred"
    names = ["syns_zyx_0-16_0-24_0-24", "syns_zyx_100-116_200-224_300-324"]
    for name, off in zip(names, ([0, 0, 0], [100, 200, 300])):
        write_points_h5(gt_dir / f"{name}.h5", SynapsePoints(GT.pre + off, GT.post + [0, *off]))
    write_points_h5(pred_dir / f"{names[0]}_predict.h5", GT)  # perfect
    write_points_h5(pred_dir / f"{names[1]}_predict.h5", SynapsePoints(GT.pre, GT.post[:1]))  # one post missed
    r = run_script(pred_dir, gt_dir, "--out", tmp_path / "scores")
    assert r.returncode == 0, r.stderr
    expected = 0.5 * (1.0 + 0.5 * (1.0 + 2 / 3))
    line = (tmp_path / "scores" / "scores.txt").read_text().strip()
    assert line.startswith("correct: ") and abs(float(line.split()[1]) - expected) < 1e-12
    assert json.loads((tmp_path / "scores" / f"{names[1]}.json").read_text())["f1_post"] == 2 / 3
    assert (tmp_path / "scores" / "summary.json").is_file()
    again = run_script(pred_dir, gt_dir, "--out", tmp_path / "scores")
    assert again.returncode == 2 and "--overwrite" in again.stderr
    (pred_dir / f"{names[1]}_predict.h5").unlink()
    missing = run_script(pred_dir, gt_dir, "--out", tmp_path / "other")
    assert missing.returncode == 2 and missing.stderr.startswith("error: ") and "_predict.h5" in missing.stderr
    assert not (tmp_path / "other").exists()


def test_prior_rule_resumes_exactly(tmp_path):
    """threshold_rule=prior keeps a running source fraction: a resumed run continues it (same weights)."""
    import torch

    from masktwins3d.adapt.trainer import load_checkpoint
    from masktwins3d.config import load_config
    from masktwins3d.train import build_trainer, train

    write_points_h5(tmp_path / "gt.h5", SynapsePoints(np.array([[16, 16, 16], [8, 20, 12]]), np.array([[0, 16, 16, 21], [1, 8, 20, 16]])))
    args = synapse_train_args(tmp_path, tmp_path / "gt.h5", "masktwins")
    config, overrides = args[2], [a for a in args[3:] if "=" in str(a)]
    common = [*overrides, "optim.iterations=4", "loss.target_start=0", "loss.threshold_rule=prior", "train.checkpoint_every=2"]
    straight = load_checkpoint(train(load_config(config, [*common, f"train.out_dir={tmp_path / 'a'}"])))
    half = load_config(config, [*common, f"train.out_dir={tmp_path / 'b'}"])
    trainer = build_trainer(half)
    trainer.iterations = 2
    trainer.run()
    assert load_checkpoint(tmp_path / "b" / "checkpoint.pt")["method_state"]["source_fg_count"] == 2
    resumed = load_checkpoint(train(half, resume=True))
    assert resumed["method_state"] == straight["method_state"] and straight["method_state"]["source_fg_count"] == 4
    for key in ("model", "teacher"):
        for name, value in straight[key].items():
            assert torch.equal(value, resumed[key][name]), f"{key}.{name} differs after resume"
