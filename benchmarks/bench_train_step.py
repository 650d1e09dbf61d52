"""Cost of a MaskTwins training step over a source-only (noadapt) step, and of the data loading.

For each track, the paper's config (``configs/mito_paper.yaml``: 2D U-Net; ``configs/
synapse_waspsyn.yaml``: 3D ResUNet) with ``--crop``/``--batch``/``--widths`` applied (mask patch
``b = crop / 16``) runs :func:`masktwins3d.adapt.trainer.train_step` (the trainer's own step:
forward, backward, optimiser, EMA) on one fixed batch, for ``noadapt`` and ``masktwins``, and
the median of ``--repeats`` steps after ``--warmup`` is reported (the two methods' steps
alternate, so a change in machine load hits both). The FLOP count predicts about 3.3x: student
forward and backward on the source and on two masked views, plus a teacher forward; with AdaIN
(the synapse track's default) the student also runs its embedding and first residual level on
the target for the style statistics: 0.34 of a forward's convolution MACs with the paper's widths
(counted with hooks), so about 3.45x.
The data loading (the samplers of :mod:`masktwins3d.data.sampling` and the copy to the device,
as :class:`masktwins3d.train.DomainBatches` does it each step) is timed on its own and given as
a percentage of the step it feeds (``data``); then the trainer's loop is run with
:class:`masktwins3d.data.prefetch.Prefetcher` drawing the next batch during the step, and the
time the loop still waits for data is given (``exposed``). Volumes are synthetic, in memory.

Usage::

    .venv/bin/python benchmarks/bench_train_step.py --tracks mito synapse --crop 64 --batch 2 --widths 8,8,16,16,16
    # GPU, the paper's synapse setting, fp32 then bf16:
    python benchmarks/bench_train_step.py --tracks synapse --device cuda --crop 96 --batch 4
    python benchmarks/bench_train_step.py --tracks synapse --device cuda --crop 96 --batch 4 --amp
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from masktwins3d.adapt.methods import build_method
from masktwins3d.adapt.schedule import build_optimizer, build_scheduler
from masktwins3d.adapt.trainer import train_step
from masktwins3d.config import load_config
from masktwins3d.data.normalize import volume_normalizer
from masktwins3d.data.prefetch import Prefetcher
from masktwins3d.data.sampling import PointCrops, SectionCrops
from masktwins3d.models import build_model
from masktwins3d.precision import resolve_precision
from masktwins3d.train import DomainBatches, memory_format

ROOT = Path(__file__).resolve().parents[1]
TRACKS = {"mito": ROOT / "configs" / "mito_paper.yaml", "synapse": ROOT / "configs" / "synapse_waspsyn.yaml"}
DEFAULT_CROP = {"mito": 512, "synapse": 96}


def fixed_batch_step(run, track: str, crop: int, batch_size: int, device: torch.device, precision, start: int = 0):
    """A callable that runs one trainer step of ``run.method`` (seeded model, optimiser and
    schedule) on one fixed synthetic batch of ``track`` crops, numbering iterations from ``start``."""
    import itertools

    src, tgt = synthetic_samplers(track, crop, np.random.default_rng(0))
    batch = DomainBatches(src, tgt, batch_size, device, float_labels=track == "synapse")()
    torch.manual_seed(0)
    model = build_model(run.model)
    method = build_method(run, model, 0.0, torch.Generator().manual_seed(0))
    optimizer = build_optimizer(model.parameters(), run.optim)
    scheduler = build_scheduler(optimizer, run.optim)
    model.train()
    counter = itertools.count(start)
    return lambda: train_step(method, optimizer, scheduler, batch, next(counter), precision)


def synthetic_samplers(track: str, crop: int, rng: np.random.Generator):
    """Source (labelled) and target samplers over random uint8 volumes a little larger than the crop."""
    if track == "mito":
        shape = (8, crop + 32, crop + 32)
        raws = [rng.integers(0, 256, shape, dtype=np.uint8) for _ in range(2)]
        label = (rng.random(shape) < 0.2).astype(np.uint8)
        src = SectionCrops(raws[0], label, (crop, crop), volume_normalizer(raws[0]), rng)
        tgt = SectionCrops(raws[1], None, (crop, crop), volume_normalizer(raws[1]), rng)
        return src, tgt
    shape = (crop + 32,) * 3
    raws = [rng.integers(0, 256, shape, dtype=np.uint8) for _ in range(2)]
    points = [rng.integers(0, crop + 32, (200, 3)).astype(np.float64) for _ in range(2)]  # pre, post
    src = PointCrops(raws[0], points, (crop,) * 3, volume_normalizer(raws[0]), rng)
    tgt = PointCrops(raws[1], None, (crop,) * 3, volume_normalizer(raws[1]), rng)
    return src, tgt


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device: torch.device) -> float:
    t = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - t


def median_seconds(fn, device: torch.device, warmup: int, repeats: int) -> float:
    for _ in range(warmup):
        fn()
    sync(device)
    return statistics.median(timed(fn, device) for _ in range(repeats))


def bench_track(track: str, args: argparse.Namespace) -> dict:
    device = torch.device(args.device)
    crop = args.crop or DEFAULT_CROP[track]
    dims = 2 if track == "mito" else 3
    overrides = [f"data.crop={[crop] * dims}", f"data.batch_size={args.batch}", f"mask.patch={crop // 16}",
                 f"train.amp={'true' if args.amp else 'false'}"]
    if args.views_batched is not None:
        overrides.append(f"loss.views_batched={str(args.views_batched).lower()}")
    if args.widths:
        overrides.append(f"model.widths=[{args.widths}]")
    fmt = memory_format(args.channels_last, dims, device)
    rng = np.random.default_rng(0)
    src, tgt = synthetic_samplers(track, crop, rng)
    fetch = DomainBatches(src, tgt, args.batch, device, float_labels=dims == 3, memory_format=fmt)
    fetch_source = DomainBatches(src, None, args.batch, device, float_labels=dims == 3, memory_format=fmt)
    batch = fetch()
    result = {"track": track, "crop": crop, "batch": args.batch}
    steps = {}
    for name in ("noadapt", "masktwins"):
        run = load_config(TRACKS[track], [f"method={name}", *overrides])
        torch.manual_seed(0)
        model = build_model(run.model).to(device, memory_format=fmt)
        method = build_method(run, model, 0.0, torch.Generator().manual_seed(0))
        optimizer = build_optimizer(model.parameters(), run.optim)
        scheduler = build_scheduler(optimizer, run.optim)
        model.train()
        counter = iter(range(10**9))
        steps[name] = lambda b=None, m=method, o=optimizer, sc=scheduler, c=counter, p=resolve_precision(run.train.amp, device): \
            train_step(m, o, sc, batch if b is None else b, next(c), p)
        result[name] = {"params": sum(p.numel() for p in model.parameters()), "times": []}
        result["adain"] = bool(run.model.adain)
        for _ in range(args.warmup):
            steps[name]()
    for _ in range(args.repeats):  # alternate the two methods
        for name in steps:
            if device.type == "cuda":
                base = torch.cuda.memory_allocated(device)
                torch.cuda.reset_peak_memory_stats(device)
            result[name]["times"].append(timed(steps[name], device))
            if device.type == "cuda":
                peak = torch.cuda.max_memory_allocated(device)
                result[name]["max_memory_gib"] = max(result[name].get("max_memory_gib", 0.0), peak / 2**30)
                result[name]["step_memory_gib"] = max(result[name].get("step_memory_gib", 0.0), (peak - base) / 2**30)
    for name in steps:
        result[name]["seconds"] = statistics.median(result[name]["times"])
    result["data_masktwins"] = median_seconds(fetch, device, 1, args.repeats)
    result["data_noadapt"] = median_seconds(fetch_source, device, 1, args.repeats)
    # the trainer's loop: the next batch is drawn in a thread during the step; time left waiting
    ahead = Prefetcher(fetch.draw, lambda: {}, lambda state: None, fetch.to_device)
    waits = []
    ahead()
    for _ in range(args.repeats):
        t = time.perf_counter()
        drawn = ahead()  # waits only if drawing this batch outlasted the previous step
        sync(device)
        waits.append(time.perf_counter() - t)
        steps["masktwins"](drawn)
        sync(device)
    ahead.close()
    result["exposed_masktwins"] = statistics.median(waits)
    return result


def report(r: dict, args: argparse.Namespace) -> None:
    no, mt = r["noadapt"], r["masktwins"]
    print(f"\n[{r['track']}] crop {r['crop']}, batch {r['batch']}, {mt['params'] / 1e6:.2f} M parameters")
    for name, entry, data in (("noadapt", no, r["data_noadapt"]), ("masktwins", mt, r["data_masktwins"])):
        mem = (f", max memory {entry['max_memory_gib']:.2f} GiB ({entry['step_memory_gib']:.2f} GiB above the resident"
               " weights and optimiser states of both methods)") if "max_memory_gib" in entry else ""
        print(f"  {name:10s} step {1000 * entry['seconds']:9.1f} ms  ({1 / entry['seconds']:6.2f} it/s){mem}; "
              f"data {1000 * data:7.1f} ms = {100 * data / entry['seconds']:5.1f} % of the step")
    print(f"  masktwins with the batch drawn during the step: {1000 * r['exposed_masktwins']:.1f} ms waiting for data = "
          f"{100 * r['exposed_masktwins'] / mt['seconds']:.1f} % of the step")
    flops = "~3.45x with AdaIN's target pass" if r["adain"] else "~3.3x"
    print(f"  masktwins / noadapt step time: {mt['seconds'] / no['seconds']:.2f}x  (FLOP count: {flops}; goal <= 3.5x)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tracks", nargs="+", choices=sorted(TRACKS), default=sorted(TRACKS))
    p.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    p.add_argument("--amp", action="store_true", help="bf16 autocast (GPU, or CPU: see bench_cpu_bf16.py)")
    p.add_argument("--crop", type=int, default=None, help="crop edge in voxels, a multiple of 16 (default: the paper's, 512 mito / 96 synapse)")
    p.add_argument("--batch", type=int, default=None, help="crops per domain (default: the paper's, 2 mito / 4 synapse)")
    p.add_argument("--widths", default=None, help="five comma-separated widths (default: the paper's)")
    p.add_argument("--channels-last", dest="channels_last", action=argparse.BooleanOptionalAction, default=None,
                   help="channels-last memory format on a GPU (default: the trainer's, on for 2D only)")
    p.add_argument("--views-batched", dest="views_batched", action=argparse.BooleanOptionalAction, default=None,
                   help="both masked views in one forward pass (default: the config's loss.views_batched)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--repeats", type=int, default=10)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.backends.cudnn.benchmark = True  # as the trainer does by default (fixed crop)
    device = torch.device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"torch {torch.__version__}, {name}, amp={'bf16' if args.amp else 'off'}, "
          f"channels_last={args.channels_last if args.channels_last is not None else 'default'}, views_batched={'config' if args.views_batched is None else args.views_batched}")
    for track in args.tracks:
        batch = args.batch
        args.batch = batch or (2 if track == "mito" else 4)
        report(bench_track(track, args), args)
        args.batch = batch


if __name__ == "__main__":
    main()
