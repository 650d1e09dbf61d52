"""bf16 autocast where the hardware has it: the ``auto`` choice (hardware mocked), the settings'
spellings, and bf16 predictions close to fp32 ones."""

import json

import numpy as np
import pytest
import torch

from masktwins3d import precision
from masktwins3d.config import load_config
from masktwins3d.errors import UserError
from masktwins3d.inference.predict import predict_array
from masktwins3d.parallel import read_manifest
from masktwins3d.models.resunet3d import ResUNet3D
from masktwins3d.models.unet2d import UNet2D
from masktwins3d.precision import Precision, choose_precision, parse_amp, resolve_precision

NATIVE = (True, "this CPU has native bf16 (amx_bf16)")
EMULATED = (False, "this CPU has no native bf16")

BF16_TOLERANCE = {"max": 0.03, "mean": 0.005}
"""bf16 against fp32 probabilities of the same model: largest and mean absolute difference."""


@pytest.mark.parametrize(
    "amp, device, native, bf16",
    [
        ("auto", "cpu", NATIVE, True),  # Sapphire Rapids / Zen 4: bf16
        ("auto", "cpu", EMULATED, False),  # older CPUs: fp32, bf16 would be slower
        ("auto", "cuda", (True, "GPU has bf16"), True),
        ("auto", "cuda", (False, "no bf16 before Ampere"), False),
        ("auto", "mps", (False, "no"), False),
        ("on", "cpu", EMULATED, True),
        ("off", "cpu", NATIVE, False),
        ("off", "cuda", (True, "GPU has bf16"), False),
    ],
)
def test_choose_precision(amp, device, native, bf16):
    p = choose_precision(amp, device, native)
    assert p.bf16 is bf16 and p.name == ("bf16" if bf16 else "fp32")
    assert p.reason.startswith(f"{'amp ' if amp != 'auto' else ''}{amp}")
    if amp == "auto" and device in ("cpu", "cuda"):
        assert native[1] in p.reason  # the reason names what the hardware said


@pytest.mark.parametrize("native, bf16", [(NATIVE, True), (EMULATED, False)])
def test_resolve_auto_asks_the_hardware(monkeypatch, native, bf16):
    asked = []
    monkeypatch.setattr(precision, "native_bf16", lambda device_type: asked.append(device_type) or native)
    assert resolve_precision("auto", "cpu").bf16 is bf16
    assert resolve_precision("auto", torch.device("cuda", 0)).bf16 is bf16
    assert asked == ["cpu", "cuda"]
    assert resolve_precision("off", "cpu") == Precision(False, "amp off: fp32")


def test_native_bf16_reports_a_reason():
    has, why = precision.native_bf16("cpu")
    assert isinstance(has, bool) and why
    assert precision.native_bf16("mps") == (False, "no bf16 autocast used on mps")


@pytest.mark.parametrize("value, mode", [("auto", "auto"), (True, "on"), ("true", "on"), ("ON", "on"), (False, "off"), ("false", "off"), ("off", "off")])
def test_parse_amp_spellings(value, mode):
    assert parse_amp(value) == mode


@pytest.mark.parametrize("value", ["fast", 1, None, "bf16"])
def test_parse_amp_refuses_other_values(value):
    with pytest.raises(UserError, match="--amp=.* is not one of auto, true, false"):
        parse_amp(value, "--amp")


def test_config_amp_keeps_old_true_false_and_defaults_to_auto():
    assert load_config(None).train.amp == "auto"
    assert load_config(None, ["train.amp=true"]).train.amp == "true"  # an old bool config
    assert load_config(None, ["train.amp=false"]).train.amp == "false"
    assert load_config(None, ["train.amp=off"]).train.amp == "false"
    with pytest.raises(UserError, match="train.amp"):
        load_config(None, ["train.amp=sometimes"])


def test_autocast_context_runs_convolutions_in_bf16():
    conv = torch.nn.Conv2d(1, 2, 3)
    with Precision(True, "test").autocast("cpu"):
        assert conv(torch.randn(1, 1, 8, 8)).dtype == torch.bfloat16
    with Precision(False, "test").autocast("cpu"):
        assert conv(torch.randn(1, 1, 8, 8)).dtype == torch.float32


@pytest.mark.parametrize("kind", ["unet2d", "resunet3d"])
def test_bf16_prediction_is_within_tolerance_of_fp32(kind):
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    if kind == "unet2d":
        model, image, patch = UNet2D(widths=(8, 8, 16, 16, 16)), rng.random((3, 64, 64), np.float32), (32, 32)
    else:
        model, image, patch = ResUNet3D(widths=(4, 4, 8, 8, 8)), rng.random((32, 48, 48), np.float32), (32, 32, 32)
    fp32 = predict_array(model, image, patch_size=patch, amp="off")
    bf16 = predict_array(model, image, patch_size=patch, amp="on")
    assert fp32.dtype == bf16.dtype == np.float32 and fp32.shape == bf16.shape
    diff = np.abs(fp32 - bf16)
    assert 0 < diff.max() <= BF16_TOLERANCE["max"], diff.max()  # > 0: bf16 did run
    assert diff.mean() <= BF16_TOLERANCE["mean"], diff.mean()


def test_train_records_precision_in_meta_and_checkpoint(tiny_pair, tmp_path, monkeypatch, capsys):
    from conftest import tiny_overrides

    from masktwins3d.train import train

    monkeypatch.setattr(precision, "native_bf16", lambda device_type: NATIVE)
    out = tmp_path / "run"
    run = load_config(None, tiny_overrides(tiny_pair, "masktwins", out, iterations=2) + ["train.device=cpu"])
    assert run.train.amp == "auto"
    train(run)
    meta = json.loads((out / "meta.json").read_text())
    assert meta["precision"] == "bf16" and meta["precision_reason"] == f"auto: {NATIVE[1]}"
    assert "precision: bf16 (auto: this CPU has native bf16 (amx_bf16))" in capsys.readouterr().err


def test_predict_manifest_records_the_choice(tmp_path, monkeypatch, capsys):
    from masktwins3d.data.normalize import Normalizer
    from masktwins3d.inference.predict import predict_volume
    from masktwins3d.io import create_volume

    raw = create_volume(tmp_path / "raw.zarr", (2, 32, 32), np.uint8)
    raw[:] = np.random.default_rng(0).integers(0, 255, (2, 32, 32), dtype=np.uint8)
    torch.manual_seed(0)
    model = UNet2D(widths=(4, 4, 8, 8, 8))
    for amp, native, recorded in (("auto", NATIVE, True), ("auto", EMULATED, False), ("on", EMULATED, True)):
        monkeypatch.setattr(precision, "native_bf16", lambda device_type, n=native: n)
        out = tmp_path / f"{amp}-{recorded}.zarr"
        predict_volume(model, raw, out, preprocess=Normalizer(0.0, 255.0), patch_size=(32, 32), amp=amp, progress=True)
        assert read_manifest(out / "blocks.jsonl")["settings"]["amp"] is recorded
        assert f"precision {'bf16' if recorded else 'fp32'} (" in capsys.readouterr().err


def test_resunet_pooling_stays_bf16_with_the_same_values():
    from masktwins3d.models.resunet3d import MaxPool3d

    x = torch.randn(1, 3, 8, 8, 8).bfloat16()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        kept = MaxPool3d(2)(x)
        upcast = torch.nn.MaxPool3d(2)(x)  # what autocast does to a plain max-pool: fp32
    assert kept.dtype == torch.bfloat16 and upcast.dtype == torch.float32
    assert torch.equal(kept.float(), upcast)


def test_predict_cli_amp_flag(tmp_path, monkeypatch, capsys):
    from cli_helpers import run_cli

    from masktwins3d.config import ModelConfig
    from masktwins3d.io import create_volume
    from masktwins3d.models import build_model

    monkeypatch.setattr(precision, "native_bf16", lambda device_type: NATIVE)
    cfg = {"name": "unet2d", "in_channels": 1, "out_channels": 2, "widths": [4, 4, 8, 8, 8], "head": "softmax", "adain": False, "norm": None}
    torch.manual_seed(0)
    torch.save({"model": build_model(ModelConfig(**cfg)).state_dict(), "model_config": cfg}, tmp_path / "c.pt")
    raw = create_volume(tmp_path / "raw.zarr", (2, 32, 32), np.uint8)
    raw[:] = np.random.default_rng(0).integers(0, 255, (2, 32, 32), dtype=np.uint8)
    base = ["predict", "--checkpoint", tmp_path / "c.pt", "--input", tmp_path / "raw.zarr", "--patch", "32,32", "--device", "cpu"]
    for flag, recorded, said in ((None, True, "precision bf16 (auto: this CPU has native bf16"), ("off", False, "precision fp32 (amp off")):
        out = tmp_path / f"{flag}.zarr"
        code, _, err = run_cli(capsys, *base, "--output", out, *(["--amp", flag] if flag else []))
        assert code == 0, err
        assert read_manifest(out / "blocks.jsonl")["settings"]["amp"] is recorded and said in err
    with pytest.raises(SystemExit):  # argparse: one of auto, on, off
        run_cli(capsys, *base, "--output", tmp_path / "x.zarr", "--amp", "fast")
    assert "--amp: invalid choice" in capsys.readouterr().err
