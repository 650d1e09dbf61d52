"""PredictSettings: checked once, in one line per mistake, and built alike by the CLI, the
checkpoint entry point and the napari widget."""

from types import SimpleNamespace

import pytest

from masktwins3d.cli import build_parser, predict_settings
from masktwins3d.errors import UserError
from masktwins3d.inference import checkpoint
from masktwins3d.inference.settings import DEFAULT_BLOCK, DEFAULT_PATCH, PredictSettings
from masktwins3d.modes import Amp, BlendMode, Resample, Weights

SAME = dict(patch_size=(32, 32), overlap=0.5, blend="bump", batch_size=2, device="cpu", out_dtype="uint8", tta=True,
            block_shape=(2, 64, 64), scheduler="local:2", threads=1, resample="never", weights="ema", amp="off",
            allow_missing=True, overwrite=True)
FLAGS = ["--patch", "32,32", "--overlap", "0.5", "--blend", "bump", "--batch-size", "2", "--device", "cpu", "--dtype", "uint8", "--tta",
         "--block", "2,64,64", "--scheduler", "local:2", "--threads", "1", "--resample", "never", "--weights", "ema", "--amp", "off",
         "--allow-missing", "--overwrite"]


def cli_args(*flags):
    return build_parser().parse_args(["predict", "--checkpoint", "c.pt", "--input", "in.zarr", "--output", "o.zarr", *flags])


@pytest.mark.parametrize("kwargs, needles", [
    ({"overlap": "half"}, None),
    ({"blend": "cosine"}, ("--blend", "'cosine'", "gaussian")),
    ({"batch_size": 0}, ("--batch-size", "0", "e.g. 4")),
    ({"batch_size": True}, ("--batch-size",)),
    ({"out_dtype": "int32"}, ("--dtype", "'int32'", "float32")),
    ({"activation": "relu"}, ("activation", "'relu'", "model.head")),
    ({"amp": "sometimes"}, ("--amp", "'sometimes'", "auto")),
    ({"scheduler": "local:x"}, ("--scheduler", "local:4")),
    ({"threads": 0}, ("--threads", "0", "e.g. 1")),
    ({"resample": "always"}, ("--resample", "'always'", "never")),
    ({"weights": "teacher"}, ("--weights", "'teacher'", "ema")),
    ({"resume": True, "overwrite": True}, ("--resume", "--overwrite")),
])
def test_bad_values_are_refused_in_one_line(kwargs, needles):
    if needles is None:  # the overlap needs the model's axes: refused by the window settings
        with pytest.raises(UserError, match="--overlap 'half'") as info:
            PredictSettings(**kwargs).window(2)
    else:
        with pytest.raises(UserError) as info:
            PredictSettings(**kwargs)
        for needle in needles:
            assert needle in str(info.value), str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("kwargs, dims, needle", [
    ({"patch_size": (32,)}, 2, "--patch (32,) must be 2 positive whole numbers"),
    ({"patch_size": (32, 32)}, 3, "--patch (32, 32) must be 3 positive whole numbers"),
    ({"overlap": (0.25, 0.25, 0.25)}, 2, "--overlap (0.25, 0.25, 0.25) must be one fraction in [0, 1) or one per patch axis (Y, X)"),
    ({"overlap": 1.0}, 3, "--overlap 1.0 must be one fraction"),
])
def test_what_needs_the_model_is_refused_by_the_window(kwargs, dims, needle):
    with pytest.raises(UserError) as info:
        PredictSettings(**kwargs).window(dims)
    assert needle in str(info.value) and "\n" not in str(info.value)


def test_block_layout_refusal_and_defaults():
    with pytest.raises(UserError, match=r"--block \(0, 4, 4\) must be 3 whole numbers >= 1 \(Z, Y, X voxels\), e.g. 128,256,256"):
        PredictSettings(block_shape=(0, 4, 4)).layout(3, (100, 100, 100))
    assert PredictSettings().layout(2, (10, 4096, 4096)) == (DEFAULT_BLOCK[2], (1, 1024, 1024))
    assert PredictSettings(block_shape=[10, 12, 20]).layout(3, (20, 24, 30)) == ((10, 12, 20), (10, 12, 20))


def test_defaults_are_stated_once_and_normalised():
    s = PredictSettings()
    assert (s.patch_size, s.overlap, s.blend, s.batch_size, s.out_dtype, s.device) == (None, 0.25, BlendMode.GAUSSIAN, 4, "float32", "auto")
    assert (s.amp, s.resample, s.weights, s.scheduler) == (Amp.AUTO, Resample.AUTO, Weights.STUDENT, "none")
    assert s.window(2).patch_size == DEFAULT_PATCH[2] and s.window(3).patch_size == DEFAULT_PATCH[3]
    assert s.window(3).overlap == (0.25, 0.25, 0.25)
    # the spellings the entry points use come out equal
    assert PredictSettings(overlap=[0.5], patch_size=[32, 32], amp=False, scheduler=None) == PredictSettings(
        overlap=(0.5,), patch_size=(32, 32), amp="off", scheduler="none")
    assert predict_settings(cli_args()) == s  # the CLI's defaults are these
    with pytest.raises(TypeError, match="not both"):
        PredictSettings.build(s, {"overlap": 0.5})
    with pytest.raises(TypeError, match="unknown prediction options"):
        PredictSettings.build(None, {"overlaps": 0.5})


class Built(Exception):
    pass


def test_the_three_entry_points_build_equal_settings(monkeypatch):
    from masktwins3d.napari.predict import PredictWidget, parse_patch

    expected = PredictSettings(**SAME)
    # the CLI
    seen = {}
    monkeypatch.setattr(checkpoint, "predict_with_checkpoint", lambda ckpt, spec, out, settings: seen.setdefault("cli", settings))
    from masktwins3d.cli import main

    main(["predict", "--checkpoint", "c.pt", "--input", "in.zarr", "--output", "o.zarr", *FLAGS])
    # the checkpoint entry point (stopped right after it built its settings)
    monkeypatch.undo()

    def stop(out, resume, overwrite):
        raise Built

    class Spy(PredictSettings):
        @classmethod
        def build(cls, settings=None, options=None, **defaults):
            seen["checkpoint"] = PredictSettings.build(settings, options, **defaults)
            return seen["checkpoint"]

    monkeypatch.setattr(checkpoint, "PredictSettings", Spy)
    monkeypatch.setattr(checkpoint, "check_output_flags", stop)
    with pytest.raises(Built):
        checkpoint.predict_with_checkpoint("c.pt", "in.zarr", "o.zarr", **SAME)
    # the napari widget (its choices as widgets would hold them)
    widget = SimpleNamespace(overlap=SimpleNamespace(value=0.5), device=SimpleNamespace(value="cpu"), block_shape=(2, 64, 64),
                             resample=SimpleNamespace(value="never"), weights=SimpleNamespace(value="ema"), overwrite=SimpleNamespace(value=True))
    napari = PredictWidget.settings(widget, parse_patch("32,32", 2))
    gui_only = dict(blend=expected.blend, batch_size=2, out_dtype="uint8", tta=True, scheduler="local:2", threads=1, amp="off", allow_missing=True)
    from dataclasses import replace

    assert seen["cli"] == seen["checkpoint"] == expected
    assert replace(napari, **gui_only) == expected  # the widget offers fewer choices; the ones it offers land alike
    assert PredictWidget.settings(widget) == PredictSettings(overlap=0.5, device="cpu", block_shape=(2, 64, 64), resample="never",
                                                             weights="ema", overwrite=True)
