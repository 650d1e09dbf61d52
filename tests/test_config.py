from pathlib import Path

import pytest

from masktwins3d.config import load_config, to_yaml
from masktwins3d.errors import UserError

ROOT = Path(__file__).resolve().parents[1]


def test_defaults_follow_the_method_presets():
    mt = load_config(None, ["method=masktwins"])
    assert (mt.mask.kind, mt.mask.ratio, mt.loss.cl, mt.loss.cm, mt.teacher.ema) == ("complementary", 0.5, True, True, True)
    mic = load_config(None, ["method=mic"])
    assert (mic.mask.kind, mic.mask.ratio, mic.loss.cm) == ("single", 0.7, False)
    rm = load_config(None, ["method=rmask"])
    assert rm.mask.kind == "independent"
    no = load_config(None, ["method=noadapt"])
    assert not no.loss.cl and no.teacher.ema  # every method keeps an EMA of its weights (scored with it)


def test_ablation_switches_override_the_preset():
    run = load_config(None, ["method=masktwins", "teacher.ema=false", "loss.cm=false", "mask.kind=independent", "model.adain=true"])
    assert (run.teacher.ema, run.loss.cm, run.mask.kind, run.model.adain) == (False, False, "independent", True)


@pytest.mark.parametrize("name", ["mito_demo.yaml", "mito_paper.yaml", "synapse_demo.yaml", "synapse_waspsyn.yaml"])
def test_shipped_configs_load(name):
    run = load_config(ROOT / "configs" / name)
    assert run.method == "masktwins"
    assert "method: masktwins" in to_yaml(run)


def test_unknown_key_in_file_is_named(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("optim:\n  lrate: 0.1\n")
    with pytest.raises(UserError, match=r"unknown config key .*lrate.*c.yaml"):
        load_config(f)


def test_unknown_override_key_and_bad_type():
    with pytest.raises(UserError, match="unknown config key"):
        load_config(None, ["mask.size=3"])
    with pytest.raises(UserError, match="bad value for config key"):
        load_config(None, ["optim.iterations=many"])


def test_misspelled_method_and_choice():
    with pytest.raises(UserError, match="method='masktwin' is unknown"):
        load_config(None, ["method=masktwin"])
    with pytest.raises(UserError, match="loss.cm_space='prob'"):
        load_config(None, ["loss.cm_space=prob"])
    with pytest.raises(UserError, match="threshold_rule=prior is for sigmoid heads"):
        load_config(None, ["loss.threshold_rule=prior"])  # the default model is the softmax mito U-Net
    with pytest.raises(UserError, match="negative_threshold=0.9 is for sigmoid heads"):
        load_config(None, ["loss.negative_threshold=0.9"])
    sigmoid = ["model.head=sigmoid", "loss.threshold_rule=prior"]
    with pytest.raises(UserError, match="debias_fallback=0.25 switches .* set loss.debias_pos_weight=true"):
        load_config(None, [*sigmoid, "loss.debias_fallback=0.25"])
    with pytest.raises(UserError, match=r"debias_fallback=1.5 must be a fraction in \(0, 1\]"):
        load_config(None, [*sigmoid, "loss.debias_pos_weight=true", "loss.debias_fallback=1.5"])
    assert load_config(None, [*sigmoid, "loss.debias_pos_weight=true", "loss.debias_fallback=0.25"]).loss.debias_fallback == 0.25
    with pytest.raises(UserError, match="negative_band=10.0 widens the negatives of threshold_rule=prior; set loss.threshold_rule=prior"):
        load_config(None, ["model.head=sigmoid", "loss.negative_band=10"])
    with pytest.raises(UserError, match="loss.negative_band=0.5 .* must be null or a finite multiple >= 1"):
        load_config(None, [*sigmoid, "loss.negative_band=0.5"])
    assert load_config(None, [*sigmoid, "loss.negative_band=10"]).loss.negative_band == 10.0


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [1,\n")
    with pytest.raises(UserError, match="not valid YAML"):
        load_config(bad)
    with pytest.raises(UserError, match="not key=value"):
        load_config(None, ["optim.lr"])


def test_synapse_paper_config_matches_the_paper():
    run = load_config(ROOT / "configs" / "synapse_waspsyn.yaml")
    assert (run.model.name, run.model.widths, run.model.adain) == ("resunet3d", [28, 36, 48, 64, 80], True)
    assert (run.data.crop, run.data.batch_size, run.mask.patch, run.mask.kind) == ([96, 96, 96], 4, 6, "complementary")
    assert (run.loss.lambda_cm, run.loss.threshold) == (0.1, [0.75, 0.65])
    assert (run.optim.lr, run.optim.warmup, run.optim.iterations) == (1e-4, 1000, 200_000)
