"""Warm start (train.init), the EMA of supervised runs, snapshots and the collapse guard."""

import json

import pytest
import torch

from masktwins3d.adapt.trainer import load_checkpoint
from masktwins3d.config import load_config
from masktwins3d.errors import UserError
from masktwins3d.train import build_trainer, train

from conftest import tiny_overrides


def test_supervised_ema_is_the_running_mean_of_the_iterates(tiny_pair, tmp_path):
    out = tmp_path / "noadapt"
    ckpt = train(load_config(None, tiny_overrides(tiny_pair, "noadapt", out, iterations=4) + ["train.snapshot_every=1"]))
    snaps = sorted((out / "snapshots").glob("step_*.pt"))
    assert [p.name for p in snaps] == [f"step_{i:06d}.pt" for i in (1, 2, 3, 4)]
    iterates = [load_checkpoint(p)["model"] for p in snaps]  # the student after each optimiser step
    ema = load_checkpoint(ckpt)["teacher"]
    # alpha_t = 1 - 1/(t + 1) (the 0.999 cap is not reached): the EMA is the plain mean of the iterates
    for name, value in ema.items():
        if value.is_floating_point():
            by_hand = torch.stack([it[name] for it in iterates]).mean(dim=0)
            assert torch.allclose(value, by_hand, atol=1e-6), name
    assert not torch.equal(ema["head.weight"], iterates[-1]["head.weight"])


def test_warm_start_equals_loading_the_weights(tiny_pair, tmp_path):
    src = train(load_config(None, tiny_overrides(tiny_pair, "noadapt", tmp_path / "src", iterations=3)))
    state = load_checkpoint(src)
    for weights, key in (("ema", "teacher"), ("student", "model")):
        run = load_config(None, tiny_overrides(tiny_pair, "masktwins", tmp_path / f"mt_{weights}", iterations=2)
                          + [f"train.init={src}", f"train.init_weights={weights}"])
        trainer = build_trainer(run)
        for name, value in state[key].items():
            assert torch.equal(trainer.method.model.state_dict()[name], value), name
            assert torch.equal(trainer.method.teacher.model.state_dict()[name], value), name
        assert trainer.step == 0 and not trainer.optimizer.state  # a fresh optimiser and schedule
        ckpt = trainer.run()
        info = load_checkpoint(ckpt)["init"]
        assert info["path"] == str(src) and info["weights"] == weights and info["step"] == 3
        assert json.loads((tmp_path / f"mt_{weights}" / "meta.json").read_text())["init"]["sha256"] == info["sha256"]


def test_warm_start_with_another_model_is_one_line_before_writing(tiny_pair, tmp_path):
    src = train(load_config(None, tiny_overrides(tiny_pair, "noadapt", tmp_path / "src", iterations=2)))
    out = tmp_path / "mt"
    run = load_config(None, tiny_overrides(tiny_pair, "masktwins", out, iterations=2) + [f"train.init={src}", "model.widths=[4,4,8,8,16]"])
    with pytest.raises(UserError, match=r"model\.widths") as err:
        build_trainer(run)
    assert "\n" not in str(err.value) and "train.init" in str(err.value)
    assert not out.exists()
    run = load_config(None, tiny_overrides(tiny_pair, "masktwins", out, iterations=2) + [f"train.init={tmp_path / 'nope.pt'}"])
    with pytest.raises(UserError, match="does not exist"):
        build_trainer(run)
    # a checkpoint without EMA weights cannot give them
    no_ema = train(load_config(None, tiny_overrides(tiny_pair, "noadapt", tmp_path / "noema", iterations=2) + ["teacher.ema=false"]))
    run = load_config(None, tiny_overrides(tiny_pair, "masktwins", out, iterations=2) + [f"train.init={no_ema}"])
    with pytest.raises(UserError, match="init_weights=student"):
        build_trainer(run)


def test_collapse_guard_fires_on_a_constructed_collapse(tiny_pair, tmp_path, capsys):
    src = train(load_config(None, tiny_overrides(tiny_pair, "noadapt", tmp_path / "src", iterations=2)))
    state = load_checkpoint(src)
    # a source model that finds no mitochondria anywhere: background logit far above foreground
    state["teacher"]["head.bias"] = torch.tensor([20.0, -20.0])
    collapsed = tmp_path / "collapsed.pt"
    torch.save(state, collapsed)
    out = tmp_path / "mt"
    train(load_config(None, tiny_overrides(tiny_pair, "masktwins", out, iterations=4) + [f"train.init={collapsed}"]))
    lines = [json.loads(l) for l in (out / "log.jsonl").read_text().splitlines()]
    assert all(l["pl_foreground"] == 0.0 and l["source_foreground"] > 0 for l in lines)
    assert any(l.get("collapse_warning") for l in lines)
    assert "self-training may be collapsing" in capsys.readouterr().out
    # the same run from a healthy source model does not warn
    train(load_config(None, tiny_overrides(tiny_pair, "masktwins", tmp_path / "ok", iterations=4) + [f"train.init={src}", "loss.collapse_ratio=0.0"]))
    assert "collapsing" not in capsys.readouterr().out


def test_teacher_restart_at_target_start(tiny_pair, tmp_path):
    """With target_start > 0 the teacher is re-copied from the student there: at the end it is the
    running mean of the iterates from target_start on only."""
    out = tmp_path / "mt"
    ckpt = train(load_config(None, tiny_overrides(tiny_pair, "masktwins", out, iterations=5) + ["loss.target_start=2", "train.snapshot_every=1"]))
    iterates = [load_checkpoint(out / "snapshots" / f"step_{i:06d}.pt")["model"] for i in (3, 4, 5)]  # steps 2, 3, 4
    ema = load_checkpoint(ckpt)["teacher"]
    by_hand = torch.stack([it["head.weight"] for it in iterates]).mean(dim=0)
    assert torch.allclose(ema["head.weight"], by_hand, atol=1e-6)


def test_predict_with_ema_or_student_weights(tiny_pair, tmp_path, capsys):
    import numpy as np

    from masktwins3d.cli import main
    from masktwins3d.inference.checkpoint import predict_with_checkpoint
    from masktwins3d.inference.loading import model_from_checkpoint
    from masktwins3d.io import open_volume

    ckpt = train(load_config(None, tiny_overrides(tiny_pair, "noadapt", tmp_path / "run", iterations=3)))
    state = load_checkpoint(ckpt)
    ema_model = model_from_checkpoint(ckpt, "ema")
    for name, value in ema_model.state_dict().items():
        assert torch.equal(value, state["teacher"][name])
    raw = tiny_pair["target"][0]
    probs = {}
    for w in ("student", "ema"):
        assert main(["predict", "--checkpoint", str(ckpt), "--input", raw, "--output", str(tmp_path / f"{w}.zarr"),
                     "--patch", "32,32", "--weights", w]) == 0
        probs[w] = np.asarray(open_volume(str(tmp_path / f"{w}.zarr"))[:])
    assert not np.allclose(probs["student"], probs["ema"])
    no_ema = train(load_config(None, tiny_overrides(tiny_pair, "noadapt", tmp_path / "noema", iterations=2) + ["teacher.ema=false"]))
    with pytest.raises(UserError, match="--weights student") as err:
        predict_with_checkpoint(no_ema, raw, tmp_path / "x.zarr", patch_size=(32, 32), weights="ema")
    assert "\n" not in str(err.value) and not (tmp_path / "x.zarr").exists()
