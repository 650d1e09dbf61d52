"""Run by ``torchrun`` from tests/test_distributed.py: `masktwins3d train` through the CLI, with a
test-only wrapper around ``Trainer.run`` that dumps this rank's weights after the real run.

Usage: ``torchrun --nproc_per_node 2 tests/ddp_worker.py DUMP_DIR CONFIG [overrides...]``. Three
CLI runs: ``a`` straight, ``b`` stopped after half the iterations (as a killed job), ``b``
resumed. After run ``a`` the worker also checks the gradient averaging: the DDP gradient of one
more step against the mean of the ranks' local gradients of the same step.
"""

import sys
from pathlib import Path

import torch
import torch.distributed as dist

from masktwins3d import cli
from masktwins3d.adapt.trainer import Trainer

dump = Path(sys.argv[1])
config, overrides = sys.argv[2], sys.argv[3:]
plan = {"tag": "", "stop": None}
real_run = Trainer.run


def grad_check(trainer: Trainer) -> dict:
    """DDP gradient of one step and the mean of the ranks' local (unsynchronised) gradients."""
    method, model = trainer.method, trainer.model
    batch, step, gen = trainer.next_batch(), trainer.step, method.generator.get_state()

    def grads(sync: bool) -> list[torch.Tensor]:
        method.generator.set_state(gen)  # the same masks in both passes
        model.zero_grad(set_to_none=True)
        if sync:
            method.loss(batch, step)[0].backward()
        else:
            with method.net.no_sync():
                method.loss(batch, step)[0].backward()
        return [p.grad.detach().clone() for p in model.parameters()]

    local, synced = grads(False), grads(True)
    mean, other = [], []
    for g in local:
        parts = [torch.zeros_like(g) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, g)
        mean.append(torch.stack(parts).mean(0))
        other.append(parts[1 - dist.get_rank()])
    return {"local": local, "other": other, "mean": mean, "ddp": synced}


def run_and_dump(self: Trainer) -> Path:
    if plan["stop"] is not None:
        self.iterations = plan["stop"]  # stop after this checkpoint, as a killed job would
    path = real_run(self)
    state = {
        "model": self.model.state_dict(),
        "teacher": self.method.teacher.model.state_dict(),
        "exp_avg": [s["exp_avg"] for s in self.optimizer.state_dict()["state"].values()],
        "step": self.step,
    }
    if plan["tag"] == "a":
        state["grads"] = grad_check(self)
    torch.save(state, dump / f"{plan['tag']}_rank{self.env.rank}.pt")
    return path


Trainer.run = run_and_dump
iterations = int(next(o.split("=")[1] for o in overrides if o.startswith("optim.iterations=")))
runs = [
    ("a", None, [f"train.out_dir={dump / 'a'}"]),
    ("b_half", iterations // 2, [f"train.out_dir={dump / 'b'}"]),
    ("b", None, [f"train.out_dir={dump / 'b'}", "--resume"]),
]
for tag, stop, extra in runs:
    plan.update(tag=tag, stop=stop)
    code = cli.main(["train", "--config", config, *overrides, *extra])
    if code != 0:
        sys.exit(code)
