"""The demo end to end at toy scale: both tracks, the report and the figure."""

import json
from pathlib import Path

import pytest
import torch

from masktwins3d.config import load_config
from masktwins3d.demo import ADAPT_SETTINGS, default_config, run_demo
from masktwins3d.errors import UserError


def test_demo_both_tracks_tiny(tmp_path, capsys):
    report = run_demo(
        data_dir=tmp_path / "vol",
        out_dir=tmp_path / "run",
        methods=["noadapt", "masktwins", "oracle"],  # the oracle warm-starts on the target, of another voxel size
        synapse_methods=["noadapt", "masktwins"],
        iterations=2,
        synapse_iterations=2,
        adapt_iterations=2,
        synapse_adapt_iterations=2,
        tracks=["mito", "synapse"],
        shapes={"source_train": (4, 128, 128), "target_train": (4, 128, 128), "target_test": (2, 128, 128)},
        synapse_shapes={"source_train": (48, 48, 48), "target_train": (48, 48, 48), "target_test": (48, 64, 64),
                        "source_test": (48, 48, 48)},
    )
    out = capsys.readouterr().out
    assert "DA-ISC 2d" in out and "WASPSYN" in out and "F1_pre" in out
    saved = json.loads((tmp_path / "run" / "report.json").read_text())
    assert set(saved) == {"mito", "synapse", "seconds"}
    assert set(saved["mito"]["methods"]) == {"noadapt", "masktwins", "oracle"}
    for name in ("noadapt", "masktwins"):
        for w in ("student", "ema"):  # every run scored with both weights
            assert set(saved["mito"]["methods"][name][w]) == {"iou", "f1", "mcc", "map"}
            s = saved["synapse"]["methods"][name][w]
            assert 0.0 <= s["f1"] <= 1.0 and s["f1"] == pytest.approx(0.5 * (s["f1_pre"] + s["f1_post"]))
            assert (tmp_path / "run" / "synapse" / name / f"points_target_test_{w}.h5").is_file()
        # warm-started from the source model, which is scored too
        init = torch.load(tmp_path / "run" / name / "checkpoint.pt", weights_only=True)["init"]
        assert init["path"] == str(tmp_path / "run" / "source" / "checkpoint.pt") and init["weights"] == "ema"
        # the adapt phase's own settings (a fine-tune), the source phase the config's
        adapted = load_config(tmp_path / "run" / name / "config.yaml")
        assert f"optim.lr={adapted.optim.lr:.0e}".replace("e-0", "e-") in ADAPT_SETTINGS["mito"] and adapted.loss.target_start == 0
    assert load_config(tmp_path / "run" / "source" / "config.yaml").optim.lr == load_config(default_config()).optim.lr
    assert set(saved["mito"]["source"]["scores"]) == {"ema", "student"}
    assert saved["mito"]["gains"]["masktwins - noadapt"]["ema"] == pytest.approx(
        saved["mito"]["methods"]["masktwins"]["ema"]["iou"] - saved["mito"]["methods"]["noadapt"]["ema"]["iou"])
    assert "masktwins - noadapt" in out
    assert report["synapse"]["gt"]["n_pre"] > 0
    # the synapse source model is checked on the held-out source volume; every method starts from its EMA
    held_out = saved["synapse"]["source"]["held_out_source"]
    assert set(held_out) == {"ema", "student"} and all(0.0 <= held_out[w]["f1"] <= 1.0 for w in held_out)
    assert "[synapse source] held-out source volume: ema F1" in out
    for name in ("noadapt", "masktwins"):
        init = torch.load(tmp_path / "run" / "synapse" / name / "checkpoint.pt", weights_only=True)["init"]
        assert init["path"] == str(tmp_path / "run" / "synapse" / "source" / "checkpoint.pt") and init["weights"] == "ema"
    assert (tmp_path / "run" / "errors.png").stat().st_size > 1000


def test_demo_rejects_unknown_track_before_work(tmp_path):
    with pytest.raises(UserError, match="--tracks"):
        run_demo(data_dir=tmp_path / "v", out_dir=tmp_path / "r", tracks=["mitochondria"])
    assert not (tmp_path / "v").exists() and not (tmp_path / "r").exists()


def _earlier_demo(tmp_path):
    for name in ("v", "r"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "earlier.txt").write_text(name)


def test_demo_overwrite_that_fails_puts_the_earlier_demo_back(tmp_path, monkeypatch):
    import masktwins3d.demo as demo

    _earlier_demo(tmp_path)

    def broken(config, data_dir, out_dir, *args):
        (Path(out_dir) / "source").mkdir(parents=True)  # part of a new demo exists when it fails
        raise KeyboardInterrupt

    monkeypatch.setattr(demo, "mito_track", broken)
    with pytest.raises(KeyboardInterrupt):
        run_demo(data_dir=tmp_path / "v", out_dir=tmp_path / "r", tracks=["mito"], overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r", "v"]  # nothing set aside is left over
    for name in ("v", "r"):
        assert [p.name for p in (tmp_path / name).iterdir()] == ["earlier.txt"]


def test_demo_overwrite_removes_the_earlier_demo_only_when_complete(tmp_path, monkeypatch):
    import masktwins3d.demo as demo

    _earlier_demo(tmp_path)
    seen = []

    def track(config, data_dir, out_dir, *args):
        seen.append(sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")))  # the earlier ones, set aside
        Path(out_dir).mkdir(parents=True)
        Path(data_dir).mkdir(parents=True)
        return {"methods": {}, "train_seconds": {}, "source_iterations": 1, "adapt_iterations": 1}

    monkeypatch.setattr(demo, "mito_track", track)
    monkeypatch.setattr(demo, "print_report", lambda report, out_dir: None)
    run_demo(data_dir=tmp_path / "v", out_dir=tmp_path / "r", tracks=["mito"], overwrite=True)
    assert len(seen[0]) == 2 and all(".replaced-" in name for name in seen[0])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r", "v"]
    assert not (tmp_path / "r" / "earlier.txt").exists() and (tmp_path / "r" / "report.json").is_file()


def test_demo_refuses_an_existing_demo_without_overwrite(tmp_path):
    _earlier_demo(tmp_path)
    with pytest.raises(UserError, match="--overwrite"):
        run_demo(data_dir=tmp_path / "v", out_dir=tmp_path / "r", tracks=["mito"])
    assert (tmp_path / "r" / "earlier.txt").is_file()


def test_source_check_warns_only_when_the_ema_weights_find_no_synapse():
    from masktwins3d.demo import source_check_warning

    assert source_check_warning({"ema": {"n_pre": 3, "f1": 0.4}, "student": {"n_pre": 0, "f1": 0.0}}) is None
    line = source_check_warning({"ema": {"n_pre": 0, "f1": 0.0}, "student": {"n_pre": 29, "f1": 0.632}})
    assert "find no synapse on held-out source data" in line and "optim.iterations" in line
