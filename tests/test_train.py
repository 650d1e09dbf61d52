import json

import pytest
import torch

from masktwins3d.adapt.trainer import load_checkpoint
from masktwins3d.config import load_config
from masktwins3d.errors import UserError
from masktwins3d.train import build_trainer, train

from conftest import tiny_overrides


@pytest.mark.parametrize("method", ["noadapt", "oracle", "mic", "rmask", "masktwins"])
def test_every_method_trains_and_writes_a_run_folder(tiny_pair, tmp_path, method):
    out = tmp_path / method
    ckpt = train(load_config(None, tiny_overrides(tiny_pair, method, out, iterations=3)))
    state = load_checkpoint(ckpt)
    assert state["step"] == 3
    assert state["teacher"] is not None  # every method keeps an EMA of its weights
    lines = [json.loads(l) for l in (out / "log.jsonl").read_text().splitlines()]
    assert [l["step"] for l in lines] == [1, 2, 3]
    if method == "masktwins":
        assert {"l_sup", "l_cl", "l_cm", "quality", "pl_foreground"} <= set(lines[-1])
        assert 0.0 <= lines[-1]["pl_foreground"] <= 1.0
    if method == "mic":
        assert "l_cl" in lines[-1] and "l_cm" not in lines[-1]
    assert (out / "config.yaml").is_file() and (out / "meta.json").is_file()
    assert any((out / "tensorboard").iterdir())


def test_resume_gives_the_same_weights_as_a_straight_run(tiny_pair, tmp_path):
    straight = load_checkpoint(train(load_config(None, tiny_overrides(tiny_pair, "masktwins", tmp_path / "a", iterations=4))))
    half = tiny_overrides(tiny_pair, "masktwins", tmp_path / "b", iterations=4)
    trainer = build_trainer(load_config(None, half))
    trainer.iterations = 2  # stop after the step-2 checkpoint, as a killed job would
    trainer.run()
    resumed = load_checkpoint(train(load_config(None, half), resume=True))
    assert resumed["step"] == 4
    for key in ("model", "teacher"):
        for name, value in straight[key].items():
            assert torch.equal(value, resumed[key][name]), f"{key}.{name} differs after resume"
    assert straight["optimizer"]["state"][0]["exp_avg"].equal(resumed["optimizer"]["state"][0]["exp_avg"])


def test_existing_run_folder_needs_overwrite(tiny_pair, tmp_path):
    run = load_config(None, tiny_overrides(tiny_pair, "noadapt", tmp_path / "r", iterations=1))
    train(run)
    with pytest.raises(UserError, match="pass --overwrite"):
        train(run)
    train(run, overwrite=True)
    with pytest.raises(UserError, match="--resume but"):
        train(load_config(None, tiny_overrides(tiny_pair, "noadapt", tmp_path / "new", iterations=1)), resume=True)


def _tree(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_overwrite_keeps_the_earlier_run_until_the_new_one_finishes(tiny_pair, tmp_path, monkeypatch):
    from masktwins3d.adapt.trainer import Trainer

    out = tmp_path / "r"
    run = load_config(None, tiny_overrides(tiny_pair, "noadapt", out, iterations=1))
    train(run)
    before = _tree(out)

    def broken(self):  # the new run fails after it has written into the folder
        (self.out_dir / "partial.txt").write_text("half a run")
        raise RuntimeError("disk full")

    monkeypatch.setattr(Trainer, "run", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        train(run, overwrite=True)
    assert _tree(out) == before  # the earlier run is back, byte for byte, and the failed one is gone
    assert not list(tmp_path.glob(".r.*"))  # nothing left beside it
    monkeypatch.undo()
    train(load_config(None, tiny_overrides(tiny_pair, "noadapt", out, iterations=2)), overwrite=True)
    assert load_checkpoint(out / "checkpoint.pt")["step"] == 2
    assert not list(tmp_path.glob(".r.*"))  # the earlier run deleted once the new one finished


def test_a_failure_while_the_new_run_folder_is_written_puts_the_earlier_run_back(tiny_pair, tmp_path, monkeypatch):
    import masktwins3d.train as train_module

    out = tmp_path / "r"
    run = load_config(None, tiny_overrides(tiny_pair, "noadapt", out, iterations=1))
    train(run)
    before = _tree(out)

    def broken(out_dir, *args):  # build_trainer has set the earlier run aside, then writing fails
        out_dir.mkdir(parents=True)
        (out_dir / "config.yaml").write_text("half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(train_module, "_write_run_files", broken)
    with pytest.raises(OSError, match="No space"):
        build_trainer(run, overwrite=True)
    assert _tree(out) == before and not list(tmp_path.glob(".r.*"))


def test_a_bad_optimiser_value_with_overwrite_leaves_the_run_folder_alone(tiny_pair, tmp_path):
    out = tmp_path / "r"
    train(load_config(None, tiny_overrides(tiny_pair, "noadapt", out, iterations=1)))
    before = _tree(out)
    for bad in ("optim.lr=-1", "optim.betas=[2,2]", "optim.lr=nan"):
        with pytest.raises(UserError, match=bad.split("=")[0]):
            train(load_config(None, tiny_overrides(tiny_pair, "noadapt", out, iterations=1) + [bad]), overwrite=True)
    assert _tree(out) == before


def test_crop_larger_than_the_volume_is_refused_before_training(tiny_pair, tmp_path):
    ov = tiny_overrides(tiny_pair, "noadapt", tmp_path / "c") + ["data.crop=[128,128]", "mask.patch=8"]
    with pytest.raises(UserError, match=r"data.crop=\[128, 128\] does not fit"):
        build_trainer(load_config(None, ov))
    assert not (tmp_path / "c").exists()


def test_crop_not_multiple_of_mask_patch(tiny_pair, tmp_path):
    ov = tiny_overrides(tiny_pair, "masktwins", tmp_path / "m") + ["mask.patch=12"]
    with pytest.raises(UserError, match="not divisible by mask.patch=12"):
        build_trainer(load_config(None, ov))


def test_config_augmentations_reach_the_samplers(tiny_pair, tmp_path):
    from masktwins3d.train import build_trainer

    extra = ["data.augmentations.elastic_p=1.0", "data.augmentations.zoom_p=1.0", "data.augmentations.intensity_p=1.0",
             "data.augmentations.motion_blur_p=0.5", "data.augmentations.cutblur_p=0.5"]
    trainer = build_trainer(load_config(None, tiny_overrides(tiny_pair, "masktwins", tmp_path / "a", iterations=2) + extra))
    spec = trainer.next_batch.produce.__self__.labelled.augmenter.spec
    assert spec.elastic_p == 1.0 and spec.zoom_range == (0.8, 1.25)
    trainer.run()
    with pytest.raises(UserError, match="missing_section_p"):
        build_trainer(load_config(None, tiny_overrides(tiny_pair, "noadapt", tmp_path / "b") + ["data.augmentations.missing_section_p=0.5"]))
    with pytest.raises(UserError, match="zoom_range"):
        build_trainer(load_config(None, tiny_overrides(tiny_pair, "noadapt", tmp_path / "c") + ["data.augmentations.zoom_range=[0.8]"]))


def test_a_target_voxel_size_stated_twice_too_large_is_flagged_in_meta_and_on_stderr(tiny_pair, tmp_path, capsys):
    base = tiny_overrides(tiny_pair, "masktwins", tmp_path / "ok", iterations=1) + ["data.resample=never"]
    train(load_config(None, base + ["data.source.voxel_size=[10,10,10]", "data.target.voxel_size=[10,10,10]"]))
    ok = json.loads((tmp_path / "ok" / "meta.json").read_text())["scale_check"]
    assert ok["warning"] is None and 1 / 1.3 <= ok["ratio"] <= 1.3
    capsys.readouterr()
    wrong = tiny_overrides(tiny_pair, "masktwins", tmp_path / "wrong", iterations=1) + ["data.resample=never"]
    train(load_config(None, wrong + ["data.source.voxel_size=[10,10,10]", "data.target.voxel_size=[10,20,20]"]))
    meta = json.loads((tmp_path / "wrong" / "meta.json").read_text())["scale_check"]
    assert meta["ratio"] < 1 / 1.3 and "data.target.voxel_size" in meta["warning"]
    assert "warning: the image correlation length" in capsys.readouterr().err


def test_resume_with_another_model_is_one_line(tiny_pair, tmp_path):
    out = tmp_path / "r"
    run = tiny_overrides(tiny_pair, "noadapt", out, iterations=4)
    trainer = build_trainer(load_config(None, run))
    trainer.iterations = 2
    trainer.run()
    before = _tree(out)
    with pytest.raises(UserError, match=r"another model \(model.widths: \[4, 4, 8, 8, 8\] there, \[4, 4, 8, 8, 16\] here\)"):
        train(load_config(None, run + ["model.widths=[4,4,8,8,16]"]), resume=True)
    assert _tree(out) == before
