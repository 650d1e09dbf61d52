"""Crops per second of :func:`masktwins3d.data.loader.crop_loader` against a naive loader and
against what the MaskTwins training step consumes on this machine.

Cases (each with augmentation: dihedral, zoom, elastic, intensity and the EM defects at
probability ``--p``; missing section and misalignment for 3D crops only):

- ``2d``: ``--crop2d``² crops with labels (:class:`~masktwins3d.data.sampling.SectionCrops`) of a
  synthetic ``--shape2d`` uint8 volume (smooth noise; labels: blobs of another smooth field);
- ``3d``: ``--crop3d``³ crops with synapse cubes (:class:`~masktwins3d.data.sampling.PointCrops`,
  random pre/post points) of a synthetic ``--shape3d`` volume;
- ``vnc3`` (with ``--data DIR``): the 2D case on ``DIR/vnc3_stack1.h5`` (``raw``, ``mito``).

Ours: the volume as chunked zarr (1 x 256 x 256 sections for 2D, 64³ for 3D), read crop by crop
(``--preload-mib 0``) by ``--workers`` DataLoader workers through ``crop_loader``. Naive: per crop,
open the HDF5 copy (gzip) with h5py, read the whole dataset(s), cut a random crop, normalise and
augment it in the main process. Then the MaskTwins training step of the paper-width model for the
same crop (the functions of ``bench_train_step.py``: 2D U-Net at ``--batch2d``, 3D ResUNet at
``--batch3d``; ``--widths`` to shrink) on this CPU, and the ratio of the loader's crops/s to the
crops the step consumes per second (batch x 2 domains x steps/s; goal >= 5). Every rate is from
the median of ``--repeats`` timings. Usage::

    .venv/bin/python benchmarks/bench_loader.py                      # full size (minutes)
    .venv/bin/python benchmarks/bench_loader.py --quick              # smoke run
    .venv/bin/python benchmarks/bench_loader.py --cases 2d --data /path/to/vnc3
"""

from __future__ import annotations

import argparse
import functools
import itertools
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench_train_step import TRACKS, fixed_batch_step, median_seconds  # noqa: E402
from timing import median_time  # noqa: E402

from masktwins3d.precision import resolve_precision  # noqa: E402
from masktwins3d.config import load_config  # noqa: E402
from masktwins3d.data.augment import AugmentSpec, Augmenter  # noqa: E402
from masktwins3d.data.labels import binarize  # noqa: E402
from masktwins3d.data.loader import crop_loader  # noqa: E402
from masktwins3d.data.normalize import volume_normalizer  # noqa: E402
from masktwins3d.data.points import cube_targets  # noqa: E402
from masktwins3d.data.sampling import PointCrops, SectionCrops  # noqa: E402
from masktwins3d.io import create_volume, open_volume  # noqa: E402
from masktwins3d.synth.fields import smooth_noise  # noqa: E402

CHUNKS = {2: (1, 256, 256), 3: (64, 64, 64)}
QUICK = {"shape2d": [8, 256, 256], "shape3d": [48, 96, 96], "crop2d": 128, "crop3d": 32, "widths": "8,8,16,16,16",
         "batches": 4, "repeats": 2, "naive_crops": 2, "step_warmup": 1, "step_repeats": 2}


def augment_spec(dims: int, p: float) -> AugmentSpec:
    """Every transform at probability ``p`` (the 3D-only defects for 3D crops only)."""
    defects = {"missing_section_p": p, "misalign_p": p} if dims == 3 else {}
    return AugmentSpec(elastic_p=p, zoom_p=p, intensity_p=p, motion_blur_p=p, cutblur_p=p, **defects)


class AugmentedCrops:
    """A sampler's crops (drawn without its own flips) through an :class:`Augmenter`, with the
    sampler's Generator: the work a training sampler with these augmentations does per crop."""

    def __init__(self, sampler, augmenter: Augmenter):
        self.sampler, self.augmenter, self.rng = sampler, augmenter, sampler.rng

    def sample(self, n: int):
        images, labels = self.sampler.sample(n)
        out = [self.augmenter(images[i, 0], None if labels is None else labels[i], self.rng) for i in range(n)]
        new_labels = None if labels is None else np.stack([o[1] for o in out])
        return np.stack([o[0] for o in out])[:, None], new_labels


def make_sampler(case: dict, rng: np.random.Generator) -> AugmentedCrops:
    """Module level, so that it pickles: the case's zarr volumes opened in the worker."""
    raw = open_volume(case["raw"])
    if case["dims"] == 2:
        label = open_volume(case["label"])
        sampler = SectionCrops(raw, label, (case["crop"],) * 2, case["normalizer"], rng, augment=False,
                               preload_bytes=case["preload"])
    else:
        sampler = PointCrops(raw, case["points"], (case["crop"],) * 3, case["normalizer"], rng, augment=False,
                             preload_bytes=case["preload"])
    return AugmentedCrops(sampler, Augmenter(case["spec"], case["dims"]))


class NaiveLoader:
    """Per crop: open the HDF5 file, read the whole dataset(s), cut a random crop, normalise and
    augment it in this process."""

    def __init__(self, case: dict, rng: np.random.Generator):
        self.case, self.rng, self.augmenter = case, rng, Augmenter(case["spec"], case["dims"])

    def crop(self):
        case, rng = self.case, self.rng
        with h5py.File(case["h5"], "r") as f:
            raw = f[case["h5_raw"]][:]
            label = f[case["h5_label"]][:] if case["dims"] == 2 else None
        c = case["crop"]
        if case["dims"] == 2:
            z, y, x = (int(rng.integers(n)) for n in (raw.shape[0], raw.shape[1] - c + 1, raw.shape[2] - c + 1))
            region = (z, slice(y, y + c), slice(x, x + c))
            return self.augmenter(case["normalizer"](raw[region]), binarize(label[region]), rng)
        origin = [int(rng.integers(s - c + 1)) for s in raw.shape]
        region = tuple(slice(o, o + c) for o in origin)
        return self.augmenter(case["normalizer"](raw[region]), cube_targets(case["points"], origin, (c,) * 3), rng)


def write_volumes(root: Path, dims: int, shape: list[int], rng: np.random.Generator) -> tuple[str, str | None, str]:
    """Synthetic uint8 image (and 2D labels) as chunked zarr and gzip HDF5: the zarr specs and the HDF5 path."""
    shape = tuple(shape)
    zarr_path = f"{root}/bench{dims}d.zarr"
    raw = create_volume(f"{zarr_path}/raw", shape, np.uint8, chunks=CHUNKS[dims], overwrite=True)
    label = None
    if dims == 2:
        label = create_volume(f"{zarr_path}/mito", shape, np.uint8, chunks=CHUNKS[dims], overwrite=True)
    h5 = root / f"bench{dims}d.h5"
    with h5py.File(h5, "w") as f:
        h5_chunks = tuple(min(c, s) for c, s in zip(CHUNKS[dims], shape))
        draw = f.create_dataset("raw", shape, np.uint8, chunks=h5_chunks, compression="gzip")
        drawn_label = None
        if dims == 2:
            drawn_label = f.create_dataset("mito", shape, np.uint8, chunks=h5_chunks, compression="gzip")
        step = 1 if dims == 2 else min(64, shape[0])
        for z in range(0, shape[0], step):
            block = (min(step, shape[0] - z),) + shape[1:]
            texture = smooth_noise(block, (0, 2, 2) if dims == 2 else (2, 2, 2), rng)
            image = np.clip(128 + 40 * texture, 0, 255).astype(np.uint8)
            raw[z : z + block[0]] = draw[z : z + block[0]] = image
            if dims == 2:
                blobs = (smooth_noise(block, (0, 12, 12), rng) > 1.0).astype(np.uint8)
                label[z : z + block[0]] = drawn_label[z : z + block[0]] = blobs
    return raw.path, None if label is None else label.path, str(h5)


def vnc3_volumes(root: Path, data: Path) -> tuple[str, str, str] | None:
    """``DIR/vnc3_stack1.h5`` (raw, mito) copied to chunked zarr; None (and a line) when missing."""
    h5 = data / "vnc3_stack1.h5"
    if not h5.is_file():
        print(f"skip vnc3: {h5} not found")
        return None
    specs = []
    with h5py.File(h5, "r") as f:
        for key in ("raw", "mito"):
            array = f[key][:]
            vol = create_volume(f"{root}/vnc3.zarr/{key}", array.shape, array.dtype, chunks=CHUNKS[2], overwrite=True)
            vol[:] = array
            specs.append(vol.path)
    return specs[0], specs[1], str(h5)


def loader_rate(case: dict, args) -> float:
    """Crops per second out of ``crop_loader`` (median over repeats, after warm-up batches)."""
    loader = crop_loader(functools.partial(make_sampler, case), seed=0, batch_size=case["batch"],
                         workers=args.workers, prefetch_factor=args.prefetch)
    it = iter(loader)
    for _ in range(max(1, args.workers) * 2):  # worker start-up, first chunks read
        next(it)
    seconds, _ = median_time(lambda: list(itertools.islice(it, args.batches)), args.repeats)
    del it
    return args.batches * case["batch"] / seconds


def naive_rate(case: dict, args) -> float:
    naive = NaiveLoader(case, np.random.default_rng(0))
    naive.crop()
    seconds, _ = median_time(lambda: [naive.crop() for _ in range(args.naive_crops)], args.repeats)
    return args.naive_crops / seconds


def step_rate(dims: int, crop: int, batch: int, args) -> float:
    """MaskTwins training steps per second on this CPU (the trainer's step, one fixed batch)."""
    track = "mito" if dims == 2 else "synapse"
    overrides = ["method=masktwins", f"data.crop={[crop] * dims}", f"data.batch_size={batch}",
                 f"mask.patch={crop // 16}"]
    if args.widths:
        overrides.append(f"model.widths=[{args.widths}]")
    run = load_config(TRACKS[track], overrides)
    device = torch.device("cpu")
    step = fixed_batch_step(run, track, crop, batch, device, resolve_precision(run.train.amp, device))
    seconds = median_seconds(step, device, args.step_warmup, args.step_repeats)
    return 1.0 / seconds


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cases", nargs="+", choices=["2d", "3d"], default=["2d", "3d"])
    p.add_argument("--shape2d", type=int, nargs=3, default=[64, 1024, 1024], help="Z Y X of the 2D case's volume")
    p.add_argument("--shape3d", type=int, nargs=3, default=[192, 384, 384], help="Z Y X of the 3D case's volume")
    p.add_argument("--crop2d", type=int, default=512)
    p.add_argument("--crop3d", type=int, default=96)
    p.add_argument("--batch2d", type=int, default=2, help="crops per domain and step, 2D (the paper's: 2)")
    p.add_argument("--batch3d", type=int, default=4, help="crops per domain and step, 3D (the paper's: 4)")
    p.add_argument("--p", type=float, default=0.5, help="probability of every augmentation (default 0.5)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--prefetch", type=int, default=4, help="batches each worker keeps ready")
    p.add_argument("--preload-mib", dest="preload_mib", type=int, default=0,
                   help="samplers read volumes up to this size into memory (default 0: crop by crop from zarr)")
    p.add_argument("--batches", type=int, default=20, help="loader batches per timing")
    p.add_argument("--naive-crops", dest="naive_crops", type=int, default=3, help="naive crops per timing")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--widths", default=None, help="five comma-separated model widths (default: the paper's)")
    p.add_argument("--step-warmup", dest="step_warmup", type=int, default=1)
    p.add_argument("--step-repeats", dest="step_repeats", type=int, default=3)
    p.add_argument("--no-step", dest="step", action="store_false", help="skip the training-step timing")
    p.add_argument("--data", type=Path, default=None, help="folder with vnc3_stack1.h5 (adds the vnc3 case)")
    p.add_argument("--tmp", type=Path, default=None, help="folder for the generated volumes (default: a temporary one)")
    p.add_argument("--quick", action="store_true", help="tiny volumes, crops and model (smoke run)")
    args = p.parse_args()
    if args.quick:
        for key, value in QUICK.items():
            setattr(args, key, value)
    print(f"torch {torch.__version__}, CPU, {torch.get_num_threads()} threads for the step; loader: {args.workers} "
          f"workers, prefetch {args.prefetch}; augmentation p={args.p}; widths {args.widths or 'paper'}")
    rng = np.random.default_rng(0)
    rows = []
    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        root = Path(tmp)
        cases = []
        for name in args.cases:
            dims = 2 if name == "2d" else 3
            shape = args.shape2d if dims == 2 else args.shape3d
            t = time.perf_counter()
            raw, label, h5 = write_volumes(root, dims, shape, rng)
            print(f"[{name}] wrote {tuple(shape)} as zarr and HDF5 in {time.perf_counter() - t:.1f} s")
            points = None
            if dims == 3:
                points = [rng.uniform(0, shape, (max(8, int(np.prod(shape)) // 100_000), 3)) for _ in range(2)]
            cases.append({"name": name, "dims": dims, "raw": raw, "label": label, "h5": h5, "h5_raw": "raw",
                          "h5_label": "mito", "points": points, "shape": tuple(shape)})
        if args.data is not None:
            vnc3 = vnc3_volumes(root, args.data)
            if vnc3 is not None:
                cases.append({"name": "vnc3", "dims": 2, "raw": vnc3[0], "label": vnc3[1], "h5": vnc3[2],
                              "h5_raw": "raw", "h5_label": "mito", "points": None,
                              "shape": open_volume(vnc3[0]).shape})
        steps = {}
        for case in cases:
            dims = case["dims"]
            case.update(crop=args.crop2d if dims == 2 else args.crop3d,
                        batch=args.batch2d if dims == 2 else args.batch3d, spec=augment_spec(dims, args.p),
                        preload=args.preload_mib << 20,
                        normalizer=volume_normalizer(open_volume(case["raw"])))
            ours, naive = loader_rate(case, args), naive_rate(case, args)
            print(f"[{case['name']}] {case['crop']}^{dims} crops: ours {ours:.1f} crops/s, naive {naive:.2f} crops/s")
            row = {"case": case["name"], "crop": f"{case['crop']}^{dims}", "shape": "x".join(map(str, case["shape"])),
                   "ours": ours, "naive": naive}
            if args.step:
                key = (dims, case["crop"], case["batch"])
                if key not in steps:
                    steps[key] = step_rate(dims, case["crop"], case["batch"], args)
                consumed = case["batch"] * 2 * steps[key]
                row.update(steps=steps[key], consumed=consumed, batch=case["batch"])
                print(f"[{case['name']}] masktwins step: {steps[key]:.3f} steps/s at batch {case['batch']} "
                      f"-> {consumed:.2f} crops/s consumed")
            rows.append(row)
    print("\n| case | volume | crop | ours crops/s | naive crops/s | ours / naive | step/s (batch) | crops/s consumed "
          "| ours / consumed (goal >= 5) |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        step = (f"{r['steps']:.3f} ({r['batch']}) | {r['consumed']:.2f} | {r['ours'] / r['consumed']:.1f}"
                if "steps" in r else "- | - | -")
        print(f"| {r['case']} | {r['shape']} | {r['crop']} | {r['ours']:.1f} | {r['naive']:.2f} | "
              f"{r['ours'] / r['naive']:.1f} | {step} |")


if __name__ == "__main__":
    main()
