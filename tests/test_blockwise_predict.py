"""The blockwise prediction engine: MONAI equality, blending maps, TTA, dtypes, resume after a
SIGKILL, refusal of changed settings, and a 2-worker dask cluster equal to one process."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn
from monai.inferers import sliding_window_inference

from masktwins3d.config import ModelConfig
from masktwins3d.errors import UserError
from masktwins3d.geometry import Roi
from masktwins3d.inference import check_window_settings, predict_array, predict_blockwise, predict_region
from masktwins3d.inference.window import bump_1d, importance_map
from masktwins3d.io import Volume, create_volume, open_volume
from masktwins3d.models import build_model
from masktwins3d.parallel import read_manifest, run_blocks

from cli_helpers import run_cli

ROOT = Path(__file__).resolve().parents[1]


def conv_net(dims: int, out_channels: int = 2, seed: int = 0) -> nn.Module:
    """A small random conv net whose outputs depend on window borders (zero padding)."""
    torch.manual_seed(seed)
    conv = nn.Conv2d if dims == 2 else nn.Conv3d
    net = nn.Sequential(conv(1, 4, 3, padding=1), nn.Tanh(), conv(4, out_channels, 3, padding=1)).eval()
    net.spatial_dims = dims
    return net


def memory_volume(data: np.ndarray) -> Volume:
    return Volume(data, path="<memory>", axes="zyx", voxel_size=(30, 4, 4), offset=(3, 5, 7))


def as_float(x):
    return np.asarray(x, dtype=np.float32) / 100.0


def write_checkpoint(path, name="unet2d", widths=(4, 8, 8, 8, 8), head="softmax", seed=0):
    torch.manual_seed(seed)
    cfg = {"name": name, "in_channels": 1, "out_channels": 2, "widths": list(widths), "head": head, "adain": False, "norm": None}
    torch.save({"model": build_model(ModelConfig(**cfg)).state_dict(), "model_config": cfg}, path)
    return path


@pytest.fixture
def raw_zarr(tmp_path):
    data = np.random.default_rng(0).integers(0, 256, (12, 48, 48), dtype=np.uint8)
    vol = create_volume(tmp_path / "raw.zarr", data.shape, np.uint8, voxel_size=(40, 4, 4), offset=(2, 10, 20))
    vol[...] = data
    return str(tmp_path / "raw.zarr")


# ---- (a) equal to MONAI ---------------------------------------------------------------------------


@pytest.mark.parametrize("dims, shape, patch, overlap", [(2, (3, 37, 50), (16, 16), 0.25), (3, (13, 21, 18), (8, 8, 8), (0.25, 0.5, 0.5))])
def test_engine_equals_monai_gaussian(tmp_path, dims, shape, patch, overlap):
    net = conv_net(dims, out_channels=3)
    data = np.random.default_rng(1).normal(size=shape).astype(np.float32)
    settings = check_window_settings(dims, patch, overlap, "gaussian", 3)
    ours = predict_region(net, data, settings)
    image = torch.from_numpy(data)[:, None] if dims == 2 else torch.from_numpy(data)[None, None]
    ov = overlap if isinstance(overlap, float) else list(overlap)
    with torch.inference_mode():
        logits = torch.as_tensor(sliding_window_inference(image, patch, 3, net, overlap=ov, mode="gaussian", sigma_scale=0.125))
    logits = logits.transpose(0, 1) if dims == 2 else logits[0]
    ref = torch.softmax(logits, 0)[1:].numpy()
    assert ours.shape == ref.shape == (2, *shape)
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-4)
    # the whole engine (lazy volume -> blocks -> zarr) with one block is the same prediction
    out = predict_blockwise(net, memory_volume(data), tmp_path / "p.zarr", preprocess=np.asarray, patch_size=patch,
                            overlap=overlap, batch_size=3, block_shape=(64, 64, 64), progress=False)
    assert out.voxel_size == (30.0, 4.0, 4.0) and out.offset == (3, 5, 7) and out.dtype == np.float32
    np.testing.assert_allclose(out[...], ref, rtol=0, atol=1e-4)


# ---- blending maps, TTA, dtypes -------------------------------------------------------------------


def test_bump_map():
    for size in (1, 4, 7, 32):
        t = (np.arange(size) - (size - 1) / 2) / (size / 2)
        np.testing.assert_allclose(bump_1d(size).numpy(), np.exp(1 - 1 / (1 - t * t)), rtol=1e-6)
    w = importance_map((9, 31), "bump")
    outer = torch.outer(bump_1d(9), bump_1d(31))
    assert w.shape == (9, 31) and w.max() == 1.0  # odd axes: the centre voxel is the peak
    torch.testing.assert_close(w, outer.clamp(min=max(outer.min().item(), 1e-3)))
    assert w.min() == pytest.approx(1e-3) and torch.equal(w, w.flip(0)) and torch.equal(w, w.flip(1))
    assert torch.equal(importance_map((5, 6), "constant"), torch.ones(5, 6))
    g = importance_map((32, 32), "gaussian")
    assert g[16, 16] > g[16, 24] > g[16, 31] and w[4, 15] > w[4, 22] > w[4, 30]  # both fall off from the centre


@pytest.mark.parametrize("blend", ["constant", "gaussian", "bump"])
def test_identity_model_reproduces_input_for_every_blend(blend):
    class Twice(nn.Module):  # logits (0, x): softmax class 1 = sigmoid(x)
        spatial_dims = 2

        def forward(self, x):
            return torch.cat([torch.zeros_like(x), x], 1)

    data = np.random.default_rng(2).normal(size=(2, 30, 41)).astype(np.float32)
    prob = predict_region(Twice(), data, check_window_settings(2, (16, 16), 0.5, blend, 4))
    np.testing.assert_allclose(prob[0], 1 / (1 + np.exp(-data)), atol=1e-6)


@pytest.mark.parametrize("dims, shape, patch", [(2, (2, 24, 30), (16, 16)), (3, (10, 12, 9), (8, 8, 8))])
def test_tta_is_the_mean_of_flipped_predictions(dims, shape, patch):
    net = conv_net(dims, out_channels=2, seed=4)
    data = np.random.default_rng(3).normal(size=shape).astype(np.float32)
    tta = predict_region(net, data, check_window_settings(dims, patch, 0.25, "gaussian", 4, tta=True, activation="sigmoid"))
    axes_sets = [(), *[(a,) for a in range(2, 2 + dims)], *[(a, b) for a in range(2, 2 + dims) for b in range(a + 1, 2 + dims)]]
    if dims == 3:
        axes_sets.append((2, 3, 4))
    logits = []
    for axes in axes_sets:
        flipped = nn.Module()
        flipped.forward = lambda x, axes=axes: net(x.flip(axes)).flip(axes) if axes else net(x)
        flipped.spatial_dims = dims
        settings = check_window_settings(dims, patch, 0.25, "gaussian", 4, activation="sigmoid")
        logits.append(np.log(p := predict_region(flipped, data, settings)) - np.log1p(-p))
    assert len(logits) == 2**dims
    np.testing.assert_allclose(tta, 1 / (1 + np.exp(-np.mean(logits, 0))), atol=2e-5)


@pytest.mark.parametrize("dtype", ["float16", "uint8"])
def test_output_dtypes_and_blocks_match_whole_sections(tmp_path, dtype):
    net = conv_net(2, seed=5)
    data = np.random.default_rng(4).integers(0, 256, (5, 40, 52)).astype(np.uint8)
    ref = predict_array(net, data, preprocess=as_float, patch_size=(16, 16))
    # z blocks of 2 sections, whole sections in y/x: each section sees the windows of the whole-section run
    out = predict_blockwise(net, memory_volume(data), tmp_path / "p.zarr", preprocess=as_float, patch_size=(16, 16),
                            out_dtype=dtype, block_shape=(2, 64, 64), progress=False)
    assert out.dtype == np.dtype(dtype) and out.shape == (1, 5, 40, 52) and out.chunks == (1, 1, 40, 52)
    got = out[...].astype(np.float32) / (255.0 if dtype == "uint8" else 1.0)
    np.testing.assert_allclose(got, ref, atol=0.5 / 255 + 1e-6 if dtype == "uint8" else 5e-4)
    manifest = read_manifest(tmp_path / "p.zarr" / "blocks.jsonl")
    assert manifest["complete"] and manifest["done"] == ["0-0-0", "1-0-0", "2-0-0"]


def test_blocks_are_chunk_aligned_3d(tmp_path):
    net = conv_net(3, seed=6)
    data = np.random.default_rng(5).normal(size=(20, 24, 30)).astype(np.float32)
    out = predict_blockwise(net, memory_volume(data), tmp_path / "p.zarr", preprocess=np.asarray, patch_size=(8, 8, 8),
                            block_shape=(10, 12, 20), progress=False)
    assert out.chunks[1:] == (10, 12, 20)  # largest divisors of the block up to the chunk limit
    manifest = read_manifest(tmp_path / "p.zarr" / "blocks.jsonl")
    assert manifest["total"] == 2 * 2 * 2 and manifest["settings"]["context"] == [4, 4, 4]
    # a voxelwise model gives the same value whatever the windows: blocks, crops and offsets fit together
    torch.manual_seed(0)
    voxelwise = nn.Sequential(nn.Conv3d(1, 3, 1), nn.Tanh(), nn.Conv3d(3, 2, 1)).eval()
    voxelwise.spatial_dims = 3
    out = predict_blockwise(voxelwise, memory_volume(data), tmp_path / "v.zarr", preprocess=np.asarray, patch_size=(8, 8, 8),
                            block_shape=(10, 12, 20), activation="sigmoid", progress=False)
    with torch.inference_mode():
        expected = torch.sigmoid(voxelwise(torch.from_numpy(data)[None, None]))[0].numpy()
    np.testing.assert_allclose(out[...], expected, atol=1e-6)


def test_run_blocks_prefetches_the_next_item_in_process():
    calls = []
    run_blocks(lambda x: calls.append(("work", x)), [1, 2, 3], None, progress=False, prefetch=lambda x: calls.append(("pre", x)))
    assert calls == [("pre", 2), ("work", 1), ("pre", 3), ("work", 2), ("work", 3)]


# ---- refusals --------------------------------------------------------------------------------------


def test_refusals_are_one_line_before_work(tmp_path, raw_zarr, capsys):
    ckpt = write_checkpoint(tmp_path / "c.pt")
    out = tmp_path / "prob.zarr"
    base = ["predict", "--checkpoint", ckpt, "--input", raw_zarr, "--output", out, "--patch", "32,32", "--block", "4,48,48", "--threads", "1"]
    bad = [
        (["--overlap", "0.25,0.5,0.5"], "--overlap"),  # a 2D model takes Y,X
        (["--overlap", "a"], "--overlap"),
        (["--block", "4,0,48"], "--block"),
        (["--scheduler", "cluster"], "--scheduler"),
        (["--resume", "--overwrite"], "--resume"),
    ]
    for extra, needle in bad:
        code, _, err = run_cli(capsys, *base, *extra)
        assert code == 2 and len(err.strip().splitlines()) == 1 and needle in err, err
        assert not out.exists()
    code, _, err = run_cli(capsys, *base)
    assert code == 0, err
    for extra, needle in [([], "--overwrite"), (["--resume", "--blend", "bump"], "blend: 'gaussian' -> 'bump'"),
                          (["--resume", "--tta"], "tta"), (["--resume", "--dtype", "uint8"], "dtype"),
                          (["--resume", "--overlap", "0.5"], "overlap"), (["--resume", "--block", "2,48,48"], "block")]:
        code, _, err = run_cli(capsys, *base, *extra)
        assert code == 2 and len(err.strip().splitlines()) == 1 and needle in err, (extra, err)
    write_checkpoint(ckpt, seed=1)  # another checkpoint at the same path: another digest
    code, _, err = run_cli(capsys, *base, "--resume")
    assert code == 2 and "model: 'sha256:" in err and "--overwrite" in err
    code, _, err = run_cli(capsys, *base, "--overwrite")
    assert code == 0, err


# ---- (b) kill, resume, bit-identical -------------------------------------------------------------


def test_sigkill_then_resume_is_bit_identical(tmp_path, raw_zarr, capsys):
    ckpt = write_checkpoint(tmp_path / "c.pt", widths=(32, 32, 32, 32, 32))  # ~0.1 s a block: time to kill mid-run
    args = ["--checkpoint", ckpt, "--input", raw_zarr, "--patch", "32,32", "--block", "1,48,48", "--tta", "--threads", "1", "--dtype", "float16",
            "--amp", "off"]  # the subprocess is not under conftest's fp32 patch
    code, _, err = run_cli(capsys, "predict", *args, "--output", tmp_path / "ref.zarr")
    assert code == 0, err
    out = tmp_path / "prob.zarr"
    stage = tmp_path / ".prob.zarr.partial"  # a fresh run is staged beside its output until complete
    manifest = stage / "blocks.jsonl"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "masktwins3d", "predict", *map(str, args), "--output", str(out)],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    done: list = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            done = read_manifest(manifest)["done"]
        except (OSError, ValueError):
            done = []
        if len(done) >= 2:
            break
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    _, err = proc.communicate()
    assert proc.returncode == -signal.SIGKILL, err.decode()[-2000:]
    done = read_manifest(manifest)["done"]
    assert 2 <= len(done) < 12, "the run ended before it could be killed; make blocks slower"
    assert not out.exists()  # nothing under the output's name until it is complete
    code, _, err = run_cli(capsys, "predict", *args, "--output", out)
    assert code == 2 and err.strip().splitlines()[-1] == (
        f"error: an interrupted prediction into {out} is at {stage} ({len(done)} of 12 blocks done); "
        "pass --resume to finish it or --overwrite to start again")
    chunk_times = {p: p.stat().st_mtime_ns for p in (stage / "0" / "c").rglob("*") if p.is_file()}
    code, _, err = run_cli(capsys, "predict", *args, "--output", out, "--resume")
    assert code == 0, err
    assert f"predict: {12 - len(done)} of 12 blocks to compute ({len(done)} already done)" in err
    assert not stage.exists() and read_manifest(out / "blocks.jsonl")["complete"]
    for path, mtime in chunk_times.items():  # chunk c/0/z/0/0 belongs to block z-0-0
        path = out / path.relative_to(stage)
        z = int(path.relative_to(out / "0" / "c").parts[1])
        assert (path.stat().st_mtime_ns == mtime) == (f"{z}-0-0" in done), path
    assert np.array_equal(open_volume(out)[...], open_volume(tmp_path / "ref.zarr")[...])


# ---- (c) dask LocalCluster ------------------------------------------------------------------------


def test_local_cluster_equals_one_process(tmp_path, raw_zarr, capsys):
    ckpt = write_checkpoint(tmp_path / "c.pt", name="resunet3d", widths=(2, 2, 2, 2, 2), head="sigmoid")
    args = ["--checkpoint", ckpt, "--input", raw_zarr, "--patch", "32,32,32", "--block", "6,32,32", "--threads", "1", "--overlap", "0.5,0.25,0.25"]
    code, _, err = run_cli(capsys, "predict", *args, "--output", tmp_path / "one.zarr")
    assert code == 0, err
    code, _, err = run_cli(capsys, "predict", *args, "--output", tmp_path / "two.zarr", "--scheduler", "local:2")
    assert code == 0, err
    one, two = open_volume(tmp_path / "one.zarr"), open_volume(tmp_path / "two.zarr")
    assert one.shape == (2, 12, 48, 48) and one.voxel_size == (40.0, 4.0, 4.0) and one.offset == (2, 10, 20)
    assert read_manifest(tmp_path / "two.zarr" / "blocks.jsonl")["total"] == 2 * 2 * 2
    assert np.array_equal(one[...], two[...])


def test_in_memory_model_cannot_go_to_a_cluster_with_a_lambda(tmp_path):
    data = np.zeros((2, 16, 16), np.float32)
    with pytest.raises(UserError, match="--scheduler local:2: the job cannot be sent"):
        predict_blockwise(conv_net(2), memory_volume(data), tmp_path / "p.zarr", preprocess=lambda x: x,
                          patch_size=(16, 16), scheduler="local:2", progress=False)


# ---- on_block: progress and stopping ------------------------------------------------------------


class StopRun(Exception):
    pass


def test_on_block_reports_progress_in_order(tmp_path):
    net = conv_net(2, seed=7)
    data = np.random.default_rng(7).integers(0, 256, (5, 20, 24)).astype(np.uint8)
    calls = []
    predict_blockwise(net, memory_volume(data), tmp_path / "p.zarr", preprocess=as_float, patch_size=(16, 16),
                      block_shape=(1, 32, 32), threads=1, progress=False, on_block=lambda d, n: calls.append((d, n)))
    assert calls == [(i, 5) for i in range(6)]


@pytest.mark.parametrize("stop_after", [0, 2])
def test_on_block_exception_stops_the_run_and_resume_finishes_it(tmp_path, stop_after):
    net = conv_net(2, seed=8)
    data = np.random.default_rng(8).integers(0, 256, (5, 20, 24)).astype(np.uint8)
    kwargs = dict(preprocess=as_float, patch_size=(16, 16), block_shape=(1, 32, 32), threads=1, progress=False)
    ref = predict_blockwise(net, memory_volume(data), tmp_path / "ref.zarr", **kwargs)[...]
    out = tmp_path / "p.zarr"
    calls = []

    def stop(done, total):
        calls.append((done, total))
        if done == stop_after:
            raise StopRun(f"stopped after {done} of {total}")

    with pytest.raises(StopRun, match=f"stopped after {stop_after} of 5"):
        predict_blockwise(net, memory_volume(data), out, on_block=stop, **kwargs)
    assert calls == [(i, 5) for i in range(stop_after + 1)]  # nothing is computed after the exception
    manifest = read_manifest(out / "blocks.jsonl")
    assert manifest["done"] == [f"{z}-0-0" for z in range(stop_after)] and not manifest["complete"]
    written = open_volume(out)[...]
    np.testing.assert_array_equal(written[:, :stop_after], ref[:, :stop_after])  # finished blocks are on disk
    # the block computed while the last recorded one was written may be on disk too, unrecorded
    # (a resume computes it again); none after it was ever written (fill value 0)
    assert np.array_equal(written[:, stop_after], ref[:, stop_after]) or not written[:, stop_after].any()
    assert not written[:, stop_after + 1 :].any()
    calls.clear()
    predict_blockwise(net, memory_volume(data), out, resume=True, on_block=lambda d, n: calls.append((d, n)), **kwargs)
    left = 5 - stop_after
    assert calls == [(i, left) for i in range(left + 1)]
    assert read_manifest(out / "blocks.jsonl")["complete"]
    assert np.array_equal(open_volume(out)[...], ref)


def _tree_bytes(root: Path) -> dict:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("stop_after", [0, 3])
def test_an_interrupted_overwrite_leaves_the_earlier_output_as_it_was(tmp_path, raw_zarr, capsys, stop_after):
    from masktwins3d.inference.checkpoint import predict_with_checkpoint

    old_ckpt = write_checkpoint(tmp_path / "old.pt", seed=1)
    ckpt = write_checkpoint(tmp_path / "c.pt", seed=2)
    kwargs = dict(patch_size=(32, 32), block_shape=(1, 48, 48), threads=1, progress=False, device="cpu")
    out, stage = tmp_path / "prob.zarr", tmp_path / ".prob.zarr.partial"
    predict_with_checkpoint(old_ckpt, raw_zarr, out, **kwargs)
    before = _tree_bytes(out)

    def stop(done, total):
        if done == stop_after:
            raise StopRun(f"stopped after {done} of {total}")

    with pytest.raises(StopRun):
        predict_with_checkpoint(ckpt, raw_zarr, out, overwrite=True, on_block=stop, **kwargs)
    assert _tree_bytes(out) == before  # the earlier output is untouched until its replacement is complete
    err = capsys.readouterr().err
    if stop_after == 0:  # nothing finished: nothing to resume and nothing left behind
        assert not stage.exists() and "--resume" not in err
        return
    assert read_manifest(stage / "blocks.jsonl")["done"] == [f"{z}-0-0" for z in range(stop_after)]
    assert f"note: the finished blocks are kept in {stage}; rerun with --resume to finish {out}" in err
    with pytest.raises(UserError, match=r"prob.zarr exists; pass --overwrite to replace it, --resume to finish it"):
        predict_with_checkpoint(ckpt, raw_zarr, out, **kwargs)
    assert _tree_bytes(out) == before
    resumed = predict_with_checkpoint(ckpt, raw_zarr, out, resume=True, **kwargs)
    assert not stage.exists() and resumed.path is not None
    ref = predict_with_checkpoint(ckpt, raw_zarr, tmp_path / "ref.zarr", **kwargs)
    np.testing.assert_array_equal(open_volume(out)[...], ref[...])
    assert not list(tmp_path.glob(".*"))  # no stage, no set-aside copy left


def test_overwrite_replaces_a_stale_stage(tmp_path, raw_zarr):
    from masktwins3d.inference.checkpoint import predict_with_checkpoint

    ckpt = write_checkpoint(tmp_path / "c.pt")
    kwargs = dict(patch_size=(32, 32), block_shape=(1, 48, 48), threads=1, progress=False, device="cpu")
    stage = tmp_path / ".prob.zarr.partial"
    stage.mkdir()
    (stage / "junk").write_text("x")
    predict_with_checkpoint(ckpt, raw_zarr, tmp_path / "prob.zarr", overwrite=True, **kwargs)
    assert not stage.exists() and read_manifest(tmp_path / "prob.zarr" / "blocks.jsonl")["complete"]
