"""Training under torchrun: two CPU ranks (gloo) through the CLI, plus the per-rank helpers."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from masktwins3d.adapt.distributed import DistEnv, mean_logs, rank_seeds, session
from masktwins3d.adapt.trainer import CHECKPOINT, load_checkpoint
from masktwins3d.config import load_config
from masktwins3d.errors import UserError
from masktwins3d.train import build_trainer, memory_format

from conftest import tiny_overrides

HERE = Path(__file__).resolve().parent


def _equal_states(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_torchrun_two_ranks_keep_identical_replicas_and_resume_exactly(tiny_pair, tmp_path):
    """`masktwins3d train` on 2 gloo ranks (tests/ddp_worker.py): straight run, half run + resume."""
    config = tmp_path / "run.yaml"
    config.write_text("{}\n")
    overrides = [o for o in tiny_overrides(tiny_pair, "masktwins", tmp_path / "unused", iterations=6) if not o.startswith("train.out_dir")]
    overrides += ["optim.lr=1e-2", "train.checkpoint_every=3", "train.threads=1", "train.device=cpu"]
    dump = tmp_path / "dump"
    dump.mkdir()
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(HERE / "ddp_worker.py"), str(dump), str(config), *overrides]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    r = {name: torch.load(dump / f"{name}.pt", weights_only=True) for name in ("a_rank0", "a_rank1", "b_rank0", "b_rank1")}

    # both replicas identical: student, EMA teacher, optimiser state
    for key in ("model", "teacher"):
        assert _equal_states(r["a_rank0"][key], r["a_rank1"][key]), f"{key} differs between ranks"
    assert all(torch.equal(x, y) for x, y in zip(r["a_rank0"]["exp_avg"], r["a_rank1"]["exp_avg"]))
    # DDP averages gradients: the synced gradient is the mean of the ranks' local ones, which differ
    g = r["a_rank0"]["grads"]
    assert any(not torch.allclose(x, y) for x, y in zip(g["local"], g["other"])), "ranks saw the same batch"
    for ddp, mean in zip(g["ddp"], g["mean"]):
        torch.testing.assert_close(ddp, mean, rtol=1e-5, atol=1e-7)
    # half run, killed-like stop, --resume under torchrun: the straight run's weights on both ranks
    for rank in ("b_rank0", "b_rank1"):
        for key in ("model", "teacher"):
            assert _equal_states(r["a_rank0"][key], r[rank][key]), f"{key} differs after resume on {rank}"
        assert all(torch.equal(x, y) for x, y in zip(r["a_rank0"]["exp_avg"], r[rank]["exp_avg"]))

    # rank 0 alone wrote the run folder: one log line per step (rank means), one event file
    lines = [json.loads(line) for line in (dump / "a" / "log.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == [1, 2, 3, 4, 5, 6]
    assert lines[-1]["loss"] < lines[0]["loss"]
    resumed = [json.loads(line) for line in (dump / "b" / "log.jsonl").read_text().splitlines()]
    assert [{k: v for k, v in x.items() if k != "seconds"} for x in resumed] == [{k: v for k, v in x.items() if k != "seconds"} for x in lines]
    assert len(list((dump / "a" / "tensorboard").iterdir())) == 1
    meta = json.loads((dump / "a" / "meta.json").read_text())
    assert (meta["world_size"], meta["global_batch"]) == (2, 4)
    ckpt = load_checkpoint(dump / "a" / CHECKPOINT)
    assert ckpt["world_size"] == 2 and ckpt["step"] == 6
    assert ckpt["rng_ranks"][0]["source"] != ckpt["rng_ranks"][1]["source"]  # independent samplers


def test_rank_seeds_keep_one_process_unchanged_and_split_ranks():
    one = rank_seeds(7, DistEnv())
    assert [s.generate_state(2).tolist() for s in one] == [s.generate_state(2).tolist() for s in np.random.SeedSequence(7).spawn(3)]
    states = {tuple(s.generate_state(2)) for rank in range(3) for s in rank_seeds(7, DistEnv(rank=rank, world_size=3))}
    assert len(states) == 9  # every stream of every rank differs
    assert [s.generate_state(2).tolist() for s in rank_seeds(7, DistEnv(rank=1, world_size=3))] == \
        [s.generate_state(2).tolist() for s in rank_seeds(7, DistEnv(rank=1, world_size=3))]


def test_session_without_torchrun_is_one_process(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    with session(torch.device("cpu")) as env:
        assert (env.rank, env.world_size, env.is_main, env.distributed) == (0, 1, True, False)
    assert mean_logs({"loss": torch.tensor(0.5), "q": 2}, env) == {"loss": 0.5, "q": 2.0}
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(UserError, match="WORLD_SIZE='two' is not an integer"):
        with session(torch.device("cpu")):
            pass


def test_channels_last_only_on_a_gpu():
    cuda, cpu = torch.device("cuda", 0), torch.device("cpu")
    assert memory_format(None, 2, cuda) == torch.channels_last
    assert memory_format(None, 3, cuda) == torch.contiguous_format
    assert memory_format(True, 3, cuda) == torch.channels_last_3d
    assert memory_format(False, 2, cuda) == torch.contiguous_format
    assert memory_format(True, 2, cpu) == torch.contiguous_format
    assert load_config(None, []).train.channels_last is None


def test_resume_with_another_number_of_processes_is_refused(tiny_pair, tmp_path):
    overrides = tiny_overrides(tiny_pair, "noadapt", tmp_path / "r", iterations=2)
    path = build_trainer(load_config(None, overrides)).save()  # a step-0 checkpoint of one process
    state = torch.load(path, weights_only=True)
    state["world_size"] = 2
    torch.save(state, path)
    with pytest.raises(UserError, match=r"written by 2 process\(es\) but this run has 1; resume with the same number"):
        build_trainer(load_config(None, overrides), resume=True)
