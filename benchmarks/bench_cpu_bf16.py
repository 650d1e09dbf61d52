"""bf16 autocast on a CPU with native bf16 units (AMX / AVX512-BF16) against fp32, in one run.

Measured, fp32 and bf16 interleaved in one loop (a change in machine load hits both), medians of
``--repeats``:

1. **training steps**: :func:`masktwins3d.adapt.trainer.train_step` (forward, backward, Adam,
   EMA) of the demo configs, ``configs/mito_demo.yaml`` (2D U-Net, 128² crops, batch 4) and
   ``configs/synapse_demo.yaml`` (ResUNet3D, 48³ crops, batch 2), each for ``noadapt`` and
   ``masktwins``, on one fixed batch of random volumes (``bench_train_step.py``'s samplers);
2. **blockwise prediction**: :func:`masktwins3d.inference.predict_volume` (zarr in, zarr out,
   the engine's blocks) of a random uint8 volume with each demo model: 2D ``--predict-2d``
   (256² windows), 3D ``--predict-3d`` (64³ windows), ``amp=off`` against ``amp=on``; and the
   engine's overhead over the bare model forward on the same windows (the batch shapes the
   engine ran, context windows included, inputs made in advance) at each precision, in
   wall-clock time, in this process's CPU time (all threads), and within each run as the time
   outside the model's forward over the time inside it (hooks on the model: immune to the load
   changing from one run to the next, which on a shared machine moves the other two by ~10 %);
3. **quality**: the demo's mitochondria protocol (``--source-iterations``
   of noadapt from scratch, then ``--adapt-iterations`` of masktwins warm-started from its EMA,
   the demo's seed and data), once with ``train.amp=false`` and predictions in fp32, once with
   ``train.amp=true`` and predictions in bf16; the held-out target's IoU (DA-ISC 2d, EMA weights)
   of each.

The summary ratios are geometric means: train over the four steps, predict over the two models.
The last line is ``bf16/fp32 speed: train X.XXx, predict Y.YYx; demo IoU change Z.Z points``
(bf16 minus fp32). On a CPU without native bf16 it says so and measures nothing (bf16 would be
emulated, slower than fp32: ``amp=auto`` keeps fp32 there). Usage::

    .venv/bin/python benchmarks/bench_cpu_bf16.py [--threads 1] [--repeats 5] [--quality/--no-quality]
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_train_step import fixed_batch_step  # noqa: E402
from timing import cpu_info  # noqa: E402

from masktwins3d.config import load_config  # noqa: E402
from masktwins3d.models import build_model  # noqa: E402
from masktwins3d.precision import Precision, native_bf16  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = {"unet2d": ROOT / "configs" / "mito_demo.yaml", "resunet3d": ROOT / "configs" / "synapse_demo.yaml"}
PRECISIONS = {"fp32": Precision(False, "benchmark: fp32"), "bf16": Precision(True, "benchmark: bf16")}
FLAGS = ("avx512_bf16", "amx_bf16", "amx_tile", "amx_int8", "avx512f")


def cpu_description() -> str:
    """Model name, cores and the bf16-relevant flags of /proc/cpuinfo."""
    name, flags = cpu_info()
    present = [f for f in FLAGS if f in flags] or ["none of " + ", ".join(FLAGS)]
    return f"{name}, {len(os.sched_getaffinity(0))} cores; flags: {' '.join(present)}"


def interleaved(fns: dict, repeats: int, warmup: int = 1, cpu: dict | None = None) -> dict[str, float]:
    """Median wall-clock seconds of each callable, the callables run in turn ``repeats`` times after
    ``warmup`` rounds (every other round in reverse order, so none always follows the same one).
    With a ``cpu`` dict, the median CPU seconds of this process (all its threads) go there too."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times = {k: [] for k in fns}
    cpus = {k: [] for k in fns}
    names = list(fns)
    for r in range(repeats):
        for k in names if r % 2 == 0 else names[::-1]:
            t, c = time.perf_counter(), time.process_time()
            fns[k]()
            times[k].append(time.perf_counter() - t)
            cpus[k].append(time.process_time() - c)
    if cpu is not None:
        cpu.update({k: statistics.median(v) for k, v in cpus.items()})
    return {k: statistics.median(v) for k, v in times.items()}


def step_fn(model_name: str, method_name: str, precision: Precision):
    """One demo training step of ``method_name`` on a fixed batch, under ``precision``."""
    dims = 2 if model_name == "unet2d" else 3
    run = load_config(CONFIGS[model_name], [f"method={method_name}"])
    crop = run.data.crop[-1]
    # the synapse demo starts its target losses at step 150: time a step with them
    return fixed_batch_step(run, "mito" if dims == 2 else "synapse", crop, run.data.batch_size, torch.device("cpu"), precision,
                            start=run.loss.target_start)


class ForwardClock:
    """Wall-clock seconds spent inside a model's forward (a pre- and a post-forward hook), per run
    of a callable: ``clock.wrap(fn)`` appends ``(run seconds, forward seconds)`` to ``clock.runs[name]``."""

    def __init__(self, model: torch.nn.Module):
        self.inside, self.runs, self._start = 0.0, {}, 0.0
        model.register_forward_pre_hook(self._enter)
        model.register_forward_hook(self._leave)

    def _enter(self, *_) -> None:
        self._start = time.perf_counter()

    def _leave(self, *_) -> None:
        self.inside += time.perf_counter() - self._start

    def wrap(self, name: str, fn):
        def run() -> None:
            self.inside, t = 0.0, time.perf_counter()
            fn()
            self.runs.setdefault(name, []).append((time.perf_counter() - t, self.inside))
        return run

    def forward(self, name: str) -> float:
        """Median seconds inside the forward per run of ``name``."""
        return statistics.median(inside for _, inside in self.runs[name])

    def own_work(self, name: str) -> float:
        """Median over runs of the time outside the forward, in % of the time inside it (the same run)."""
        return statistics.median(100 * (total / inside - 1) for total, inside in self.runs[name])


def predict_fns(model_name: str, shape: tuple[int, ...], tmp: Path, threads: int | None) -> tuple[dict, ForwardClock]:
    """Callables predicting one random zarr volume with the demo's model (random weights): ``fp32``
    and ``bf16`` through the engine, ``fp32 bare`` and ``bf16 bare`` the model alone on batches of the
    shapes the engine ran (recorded once; inputs made in advance), under ``torch.inference_mode``."""
    from masktwins3d.data.normalize import volume_normalizer
    from masktwins3d.inference.predict import predict_volume
    from masktwins3d.io import create_volume, open_volume

    run = load_config(CONFIGS[model_name])
    torch.manual_seed(0)
    model = build_model(run.model).eval()
    raw = create_volume(tmp / f"{model_name}_raw.zarr", shape, np.uint8)
    raw[:] = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    vol = open_volume(tmp / f"{model_name}_raw.zarr")
    norm = volume_normalizer(vol)
    patch = (256, 256) if model_name == "unet2d" else (64, 64, 64)
    head = "softmax" if run.model.head == "softmax" else "sigmoid"

    def fn(amp: str):
        return lambda: predict_volume(model, vol, tmp / f"{model_name}_{amp}.zarr", preprocess=norm, patch_size=patch,
                                      activation=head, amp=amp, overwrite=True, progress=False, threads=threads)

    shapes: list[tuple[int, ...]] = []
    hook = model.register_forward_pre_hook(lambda module, inputs: shapes.append(tuple(inputs[0].shape)))
    fn("off")()
    hook.remove()
    batches = {s: torch.randn(s) for s in set(shapes)}

    def bare(name: str):
        def run() -> None:
            with torch.inference_mode(), PRECISIONS[name].autocast("cpu"):
                for s in shapes:
                    model(batches[s]).float()
        return run

    clock = ForwardClock(model)
    fns = {"fp32": fn("off"), "bf16": fn("on"), "fp32 bare": bare("fp32"), "bf16 bare": bare("bf16")}
    return {k: clock.wrap(k, f) for k, f in fns.items()}, clock


def demo_iou(amp: bool, args, data: dict, tmp: Path) -> float:
    """Held-out target IoU (DA-ISC 2d, EMA weights) of the shortened demo protocol at one precision."""
    from masktwins3d.demo import ADAPT_SETTINGS
    from masktwins3d.evaluate.mito import evaluate_mito
    from masktwins3d.inference.checkpoint import predict_with_checkpoint
    from masktwins3d.io import open_volume
    from masktwins3d.train import train

    flag = "true" if amp else "false"
    common = [f"train.amp={flag}", f"train.seed={args.seed}", f"train.threads={args.threads}", "train.progress=false",
              "train.checkpoint_every=100000",
              f"data.source.raw={data['source_train']['raw']}", f"data.source.label={data['source_train']['mito']}",
              f"data.target.raw={data['target_train']['raw']}", f"data.target.label={data['target_train']['mito']}"]
    out = tmp / f"demo_{flag}"
    source = train(load_config(CONFIGS["unet2d"], ["method=noadapt", f"train.out_dir={out / 'source'}",
                                                    f"optim.iterations={args.source_iterations}", *common]))
    ckpt = train(load_config(CONFIGS["unet2d"], ["method=masktwins", f"train.out_dir={out / 'masktwins'}", f"train.init={source}",
                                                  "loss.target_start=0", *ADAPT_SETTINGS["mito"],
                                                  f"optim.iterations={args.adapt_iterations}", *common]))
    prob = out / "prob.zarr"
    predict_with_checkpoint(ckpt, data["target_test"]["raw"], prob, patch_size=(256, 256), overlap=0.25, progress=False,
                            resample="never", weights="ema", amp="on" if amp else "off", device="cpu")
    return float(evaluate_mito(open_volume(str(prob)), open_volume(data["target_test"]["mito"]), mode="2d")["iou"])


def geomean(values) -> float:
    values = list(values)
    return math.exp(sum(math.log(v) for v in values) / len(values))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument("--repeats", type=int, default=5, help="timed rounds per measurement (>= 5)")
    p.add_argument("--predict-2d", default="4,1024,1024", help="Z,Y,X of the 2D model's volume (default 4,1024,1024)")
    p.add_argument("--predict-3d", default="96,192,192", help="Z,Y,X of the 3D model's volume (default 96,192,192)")
    p.add_argument("--quality", action=argparse.BooleanOptionalAction, default=True, help="run the demo IoU comparison")
    p.add_argument("--source-iterations", type=int, default=300, help="noadapt iterations from scratch (default: the demo's 300)")
    p.add_argument("--adapt-iterations", type=int, default=100, help="masktwins iterations from the source model (default: the demo's 100)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"CPU: {cpu_description()}; load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    has, why = native_bf16("cpu")
    if not has:
        print(f"{why}; bf16 autocast would be emulated there, slower than fp32 (amp=auto keeps fp32): nothing measured")
        print("bf16/fp32 speed: not measured, this CPU has no native bf16")
        return
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {why}; medians of {args.repeats}, fp32 and bf16 interleaved")

    train_ratios = []
    print("\ntraining step (demo configs, one fixed batch)       fp32 ms    bf16 ms   bf16/fp32 speed")
    for model_name in CONFIGS:
        for method in ("noadapt", "masktwins"):
            fns = {k: step_fn(model_name, method, prec) for k, prec in PRECISIONS.items()}
            t = interleaved(fns, args.repeats)
            train_ratios.append(t["fp32"] / t["bf16"])
            print(f"  {model_name:9s} {method:10s}                        {1000 * t['fp32']:9.1f}  {1000 * t['bf16']:9.1f}   {train_ratios[-1]:6.2f}x")

    predict_ratios = []
    print("\nblockwise prediction (random weights, zarr -> zarr)  fp32 s     bf16 s    bf16/fp32 speed   engine over the bare model's windows: fp32, bf16")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for model_name, shape in (("unet2d", args.predict_2d), ("resunet3d", args.predict_3d)):
            shape = tuple(int(v) for v in shape.split(","))
            cpu: dict[str, float] = {}
            fns, clock = predict_fns(model_name, shape, tmp, args.threads or None)
            for fn in fns.values():  # warm-up, outside the clock's record
                fn()
            clock.runs.clear()
            t = interleaved(fns, args.repeats, warmup=0, cpu=cpu)
            predict_ratios.append(t["fp32"] / t["bf16"])
            over = {k: 100 * (t[k] / t[f"{k} bare"] - 1) for k in PRECISIONS}
            over_cpu = {k: 100 * (cpu[k] / cpu[f"{k} bare"] - 1) for k in PRECISIONS}
            print(f"  {model_name:9s} {'x'.join(map(str, shape)):>16s}                {t['fp32']:9.2f}  {t['bf16']:9.2f}   {predict_ratios[-1]:6.2f}x"
                  f"           {over['fp32']:+5.1f} %, {over['bf16']:+5.1f} %  (bare {t['fp32 bare']:.2f} s, {t['bf16 bare']:.2f} s)")
            print(f"  {'':9s} CPU time of this process (all threads; steadier than wall-clock on a loaded machine): engine over bare "
                  f"{over_cpu['fp32']:+5.1f} %, {over_cpu['bf16']:+5.1f} %  (bare {cpu['fp32 bare']:.2f} s, {cpu['bf16 bare']:.2f} s; "
                  f"engine {cpu['fp32']:.2f} s, {cpu['bf16']:.2f} s)")
            print(f"  {'':9s} in the same run (time outside the model's forward over the time inside it; immune to the load changing "
                  f"between runs): engine {clock.own_work('fp32'):+5.1f} %, {clock.own_work('bf16'):+5.1f} %; "
                  f"bare loop {clock.own_work('fp32 bare'):+5.1f} %, {clock.own_work('bf16 bare'):+5.1f} %  (forward inside the engine "
                  f"{clock.forward('fp32'):.2f} s, {clock.forward('bf16'):.2f} s)")

        change = float("nan")
        if args.quality:
            from masktwins3d.synth import write_demo_data

            data = write_demo_data(tmp / "volumes", seed=args.seed)
            print(f"\ndemo quality (mito, seed {args.seed}): noadapt {args.source_iterations} iterations from scratch, then masktwins "
                  f"{args.adapt_iterations} from its EMA (the demo: 300 + 100); target IoU, EMA weights, DA-ISC 2d", flush=True)
            ious = {}
            for amp in (False, True):
                t0 = time.perf_counter()
                ious[amp] = demo_iou(amp, args, data, tmp)
                print(f"  {'bf16' if amp else 'fp32'}: IoU {100 * ious[amp]:.2f} %  ({time.perf_counter() - t0:.0f} s train + predict)", flush=True)
            change = round(100 * (ious[True] - ious[False]), 1) + 0.0  # + 0.0: no "-0.0"
    print(f"load average at the end {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    train, predict = geomean(train_ratios), geomean(predict_ratios)
    print(f"bf16/fp32 speed: train {train:.2f}x, predict {predict:.2f}x; demo IoU change {change:.1f} points")


if __name__ == "__main__":
    main()
