"""A training process killed with SIGKILL resumes to the weights of an uninterrupted run."""

import json
import os
import signal
import subprocess
import sys
import time

import torch

from masktwins3d import cli
from masktwins3d.adapt.trainer import CHECKPOINT, load_checkpoint

from conftest import tiny_overrides

ITERATIONS = 16


def _args(pair, out_dir) -> list[str]:
    ov = tiny_overrides(pair, "masktwins", out_dir, iterations=ITERATIONS)
    return ov + ["train.threads=1", "train.deterministic=true", "train.device=cpu", "train.amp=false"]  # the subprocess too


def _same_tensors(a, b) -> bool:
    """Equal nested dicts/lists of tensors and plain values."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and torch.equal(a, b)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same_tensors(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same_tensors(x, y) for x, y in zip(a, b))
    return a == b


def test_sigkill_then_resume_equals_an_uninterrupted_run(tiny_pair, tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("{}\n")
    killed = tmp_path / "killed"
    proc = subprocess.Popen(
        [sys.executable, "-m", "masktwins3d", "train", "--config", str(config), *_args(tiny_pair, killed)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not (killed / CHECKPOINT).is_file():  # the first checkpoint is written at step 2
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "no checkpoint within 120 s"
            time.sleep(0.005)
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    step = load_checkpoint(killed / CHECKPOINT)["step"]
    assert 2 <= step < ITERATIONS, f"the run was not interrupted (checkpoint at step {step})"

    assert cli.main(["train", "--config", str(config), *_args(tiny_pair, killed), "--resume"]) == 0
    straight = tmp_path / "straight"
    assert cli.main(["train", "--config", str(config), *_args(tiny_pair, straight)]) == 0

    a, b = load_checkpoint(straight / CHECKPOINT), load_checkpoint(killed / CHECKPOINT)
    assert b["step"] == ITERATIONS
    for key in ("model", "teacher", "optimizer", "scheduler", "rng"):
        assert _same_tensors(a[key], b[key]), f"{key} differs from the uninterrupted run"
    logs = [[{k: v for k, v in json.loads(line).items() if k != "seconds"} for line in (d / "log.jsonl").read_text().splitlines()]
            for d in (straight, killed)]
    assert logs[0] == logs[1]  # the resumed log has each step once, with the same values
