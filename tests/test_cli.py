"""The command line: --help everywhere, end to end on tiny volumes, and every bad input."""

import json

import h5py
import numpy as np
import pytest
from sklearn.metrics import average_precision_score, f1_score, jaccard_score, matthews_corrcoef

from masktwins3d.cli import main
from masktwins3d.io import create_volume

from cli_helpers import assert_user_error, run_cli
from conftest import tiny_overrides


@pytest.mark.parametrize("verb", [[], ["demo"], ["train"], ["predict"], ["evaluate"], ["evaluate", "mito"], ["evaluate", "synapse"], ["postprocess"], ["postprocess", "synapse"], ["postprocess", "mito"], ["resample"]])
def test_help_on_every_verb(capsys, verb):
    with pytest.raises(SystemExit) as exc:
        main([*verb, "--help"])
    assert exc.value.code == 0
    assert "usage: masktwins3d" in capsys.readouterr().out


def train_args(pair, method, out, *extra):
    return ["train", "--config", "configs/mito_demo.yaml", *tiny_overrides(pair, method, out, iterations=2), *extra]


def test_train_predict_evaluate_end_to_end(capsys, tiny_pair, tmp_path, monkeypatch):
    monkeypatch.chdir(tiny_pair["root"])
    (tiny_pair["root"] / "configs").mkdir()
    from pathlib import Path

    src = Path(__file__).resolve().parents[1] / "configs" / "mito_demo.yaml"
    (tiny_pair["root"] / "configs" / "mito_demo.yaml").write_text(src.read_text())
    code, out, err = run_cli(capsys, *train_args(tiny_pair, "masktwins", tmp_path / "run"))
    assert code == 0, err
    ckpt = tmp_path / "run" / "checkpoint.pt"
    assert ckpt.is_file()
    prob = tmp_path / "prob.zarr"
    code, out, err = run_cli(capsys, "predict", "--checkpoint", ckpt, "--input", tiny_pair["target"][0], "--output", prob, "--patch", "32,32")
    assert code == 0, err
    code, out, err = run_cli(capsys, "evaluate", "mito", "--pred", prob, "--gt", tiny_pair["target"][1], "--json", tmp_path / "s.json", "--csv", tmp_path / "s.csv")
    assert code == 0, err
    report = json.loads((tmp_path / "s.json").read_text())
    assert {"iou", "f1", "mcc", "map"} <= set(report)
    # predicting again into the same output is refused
    code, _, err = run_cli(capsys, "predict", "--checkpoint", ckpt, "--input", tiny_pair["target"][0], "--output", prob)
    assert_user_error(code, err, str(prob), "--overwrite")


@pytest.mark.parametrize("mode", ["2d", "3d"])
@pytest.mark.parametrize("fmt", ["zarr", "h5"])
def test_evaluate_mito_equals_sklearn(capsys, tmp_path, mode, fmt):
    rng = np.random.default_rng(3)
    gt = (rng.random((5, 20, 24)) < 0.3).astype(np.uint8)
    pred = np.clip(gt * 0.3 + rng.random(gt.shape) * 0.7, 0, 1).astype(np.float32)
    if fmt == "zarr":
        p = create_volume(tmp_path / "p.zarr", pred.shape, np.float32)
        p[:] = pred
        g = create_volume(tmp_path / "g.zarr", gt.shape, np.uint8)
        g[:] = gt * 255
        pspec, gspec = tmp_path / "p.zarr", tmp_path / "g.zarr"
    else:
        with h5py.File(tmp_path / "v.h5", "w") as f:
            f["pred"] = pred
            f["gt"] = gt.astype(bool)
        pspec, gspec = f"{tmp_path}/v.h5:/pred", f"{tmp_path}/v.h5:/gt"
    code, _, err = run_cli(capsys, "evaluate", "mito", "--pred", pspec, "--gt", gspec, "--mode", mode, "--json", tmp_path / "r.json")
    assert code == 0, err
    r = json.loads((tmp_path / "r.json").read_text())
    sections = [(pred[z].ravel(), gt[z].ravel()) for z in range(5)] if mode == "2d" else [(pred.ravel(), gt.ravel())]
    ref = {
        "map": np.mean([average_precision_score(g, p) for p, g in sections]),
        "f1": np.mean([f1_score(g, p >= 0.5) for p, g in sections]),
        "mcc": np.mean([matthews_corrcoef(g, p >= 0.5) for p, g in sections]),
        "iou": np.mean([jaccard_score(g, p >= 0.5) for p, g in sections]),
    }
    for k, v in ref.items():
        assert abs(r[k] - v) < 1e-6, k


# ---- bad input: one line naming the thing and the fix, exit 2, nothing written ----


def test_missing_file_and_missing_h5_key(capsys, tmp_path):
    code, _, err = run_cli(capsys, "evaluate", "mito", "--pred", tmp_path / "nope.zarr", "--gt", tmp_path / "g.zarr", "--json", tmp_path / "r.json")
    assert_user_error(code, err, "nope.zarr")
    with h5py.File(tmp_path / "v.h5", "w") as f:
        f["raw"] = np.zeros((2, 8, 8), np.uint8)
        f["other"] = np.zeros((2, 8, 8), np.uint8)
    code, _, err = run_cli(capsys, "evaluate", "mito", "--pred", f"{tmp_path}/v.h5:/prob", "--gt", f"{tmp_path}/v.h5:/raw", "--json", tmp_path / "r.json")
    assert_user_error(code, err, "prob", "raw")
    assert not (tmp_path / "r.json").exists()


def test_2d_array_where_a_volume_is_expected(capsys, tiny_pair, tmp_path):
    with h5py.File(tmp_path / "flat.h5", "w") as f:
        f["raw"] = np.zeros((64, 64), np.uint8)
    pair = dict(tiny_pair, source=(f"{tmp_path}/flat.h5:/raw", tiny_pair["source"][1]))
    code, _, err = run_cli(capsys, *train_args(pair, "noadapt", tmp_path / "run"))
    assert_user_error(code, err, "flat.h5", "2D")
    assert not (tmp_path / "run").exists()


def test_crop_larger_than_the_volume(capsys, tiny_pair, tmp_path):
    code, _, err = run_cli(capsys, *train_args(tiny_pair, "noadapt", tmp_path / "run", "data.crop=[256,256]"))
    assert_user_error(code, err, "data.crop", "section")
    assert not (tmp_path / "run").exists()


def test_labels_that_are_not_binary(capsys, tiny_pair, tmp_path):
    bad = create_volume(tmp_path / "bad.zarr", (4, 64, 64), np.uint8)
    bad[:] = np.arange(4 * 64 * 64).reshape(4, 64, 64) % 7
    pair = dict(tiny_pair, source=(tiny_pair["source"][0], str(tmp_path / "bad.zarr")))
    code, _, err = run_cli(capsys, *train_args(pair, "noadapt", tmp_path / "run"))
    assert_user_error(code, err, "bad.zarr", "binary")
    assert not (tmp_path / "run").exists()


def test_nan_in_the_image(capsys, tiny_pair, tmp_path):
    img = create_volume(tmp_path / "nan.zarr", (4, 64, 64), np.float32)
    data = np.random.default_rng(0).random((4, 64, 64)).astype(np.float32)
    data[2, 5, 5] = np.nan
    img[:] = data
    pair = dict(tiny_pair, source=(str(tmp_path / "nan.zarr"), tiny_pair["source"][1]))
    code, _, err = run_cli(capsys, *train_args(pair, "noadapt", tmp_path / "run"))
    assert_user_error(code, err, "nan.zarr", "NaN")
    assert not (tmp_path / "run").exists()


def test_unknown_config_key_and_misspelled_method(capsys, tiny_pair, tmp_path):
    code, _, err = run_cli(capsys, *train_args(tiny_pair, "noadapt", tmp_path / "run", "optim.learning_rate=1"))
    assert_user_error(code, err, "learning_rate")
    code, _, err = run_cli(capsys, *train_args(tiny_pair, "masktwinz", tmp_path / "run"))
    assert_user_error(code, err, "masktwinz", "masktwins")
    assert not (tmp_path / "run").exists()


def test_existing_output_folder_without_overwrite(capsys, tiny_pair, tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "keep.txt").write_text("mine")
    code, _, err = run_cli(capsys, *train_args(tiny_pair, "noadapt", tmp_path / "run"))
    assert_user_error(code, err, "run", "--overwrite")
    assert (tmp_path / "run" / "keep.txt").read_text() == "mine"
    code, _, err = run_cli(capsys, "demo", "--out", tmp_path / "run", "--data", tmp_path / "d")
    assert_user_error(code, err, "--overwrite")
    assert not (tmp_path / "d").exists()


def test_demo_adapt_iterations_flag_checked_before_work(capsys, tmp_path):
    code, _, err = run_cli(capsys, "demo", "--adapt-iterations", "0", "--out", tmp_path / "run", "--data", tmp_path / "d")
    assert_user_error(code, err, "--adapt-iterations")
    assert not (tmp_path / "d").exists() and not (tmp_path / "run").exists()


def test_not_a_checkpoint(capsys, tiny_pair, tmp_path):
    (tmp_path / "x.pt").write_bytes(b"not a checkpoint")
    code, _, err = run_cli(capsys, "predict", "--checkpoint", tmp_path / "x.pt", "--input", tiny_pair["target"][0], "--output", tmp_path / "o.zarr")
    assert_user_error(code, err, "x.pt")
    assert not (tmp_path / "o.zarr").exists()


def test_a_negative_value_after_a_flag_is_a_value():
    from masktwins3d.cli import join_negative_values

    assert join_negative_values(["convert", "--offset", "-5,0,0", "--input", "a"]) == ["convert", "--offset=-5,0,0", "--input", "a"]
    assert join_negative_values(["train", "optim.lr=-1", "--overwrite"]) == ["train", "optim.lr=-1", "--overwrite"]
    assert join_negative_values(["evaluate", "--offset=-1,2,3"]) == ["evaluate", "--offset=-1,2,3"]


def test_demo_synapse_methods_flag_checked_before_work(capsys, tmp_path):
    code, _, err = run_cli(capsys, "demo", "--synapse-methods", "noadapt", "selftrain",
                           "--out", tmp_path / "run", "--data", tmp_path / "d")
    assert_user_error(code, err, "--synapse-methods 'selftrain'")
    assert not (tmp_path / "d").exists() and not (tmp_path / "run").exists()
