"""Crops per second of 96³ reads from a local Neuroglancer precomputed volume (tensorstore) against
the same reads from zarr, both through :func:`masktwins3d.io.open_volume`.

One synthetic uint8 volume (smooth noise, ``--shape``) is written twice with
:func:`masktwins3d.io.create_volume`: as OME-Zarr (zarr v3, blosc-zstd, ``--chunk``³ chunks) and as
precomputed (raw encoding, the same chunks). Each pass reads ``--crops`` random ``--crop``³ crops
(the same positions for both formats, fresh each pass) into numpy; the rate is from the median of
``--repeats`` passes. The files are in the OS page cache after the first pass, so this measures
decoding and the I/O path, not the disk. Usage::

    .venv/bin/python benchmarks/bench_precomputed.py            # 256 x 512 x 512 (a minute)
    .venv/bin/python benchmarks/bench_precomputed.py --quick    # smoke run
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from timing import cpu_model, median_time  # noqa: E402

from masktwins3d.io import create_volume, open_volume  # noqa: E402
from masktwins3d.synth.fields import smooth_noise  # noqa: E402


def synthetic(shape, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    field = smooth_noise(shape, (6.0, 6.0, 6.0), rng)
    field = (field - field.min()) / (np.ptp(field) + 1e-9)
    return (field * 200 + rng.normal(0, 12, shape)).clip(0, 255).astype(np.uint8)


def write_both(folder: Path, data: np.ndarray, chunk: int) -> dict[str, str]:
    chunks = (chunk,) * 3
    specs = {"zarr": str(folder / "raw.zarr"), "precomputed": f"precomputed://{folder / 'raw_precomputed'}"}
    for spec in specs.values():
        vol = create_volume(spec, data.shape, data.dtype, voxel_size=(8, 8, 8), chunks=chunks)
        for z in range(0, data.shape[0], chunk):
            vol[z:z + chunk] = data[z:z + chunk]
    return specs


def read_crops(vol, starts: np.ndarray, crop: int) -> int:
    total = 0
    for z, y, x in starts:
        total += int(vol[z:z + crop, y:y + crop, x:x + crop].sum(dtype=np.int64) > -1)
    return total


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shape", default="256,512,512", help="volume Z,Y,X (default: 256,512,512)")
    p.add_argument("--crop", type=int, default=96, help="crop edge in voxels (default: 96)")
    p.add_argument("--chunk", type=int, default=64, help="chunk edge of both volumes (default: 64)")
    p.add_argument("--crops", type=int, default=50, help="crops per pass (default: 50)")
    p.add_argument("--repeats", type=int, default=5, help="passes; the median counts (default: 5)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="smoke run: 128 x 192 x 192, 10 crops, 3 passes")
    args = p.parse_args(argv)
    shape = (128, 192, 192) if args.quick else tuple(int(v) for v in args.shape.split(","))
    crops, repeats = (10, 3) if args.quick else (args.crops, args.repeats)
    print(f"CPU: {cpu_model()}, {len(os.sched_getaffinity(0))} cores")
    print(f"volume {shape} uint8, chunks {args.chunk}^3, {crops} crops of {args.crop}^3 per pass, median of {repeats} passes")
    data = synthetic(shape, args.seed)
    rng = np.random.default_rng(args.seed + 1)
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        specs = write_both(Path(tmp), data, args.chunk)
        print(f"written both in {time.perf_counter() - t:.1f} s")
        vols = {name: open_volume(spec) for name, spec in specs.items()}
        for vol in vols.values():  # same content, geometry carried
            assert vol.shape == shape and vol.voxel_size == (8.0, 8.0, 8.0)
            z, y, x = (s // 3 for s in shape)
            np.testing.assert_array_equal(vol[z:z + 8, y:y + 8, x:x + 8], data[z:z + 8, y:y + 8, x:x + 8])
        passes = [np.stack([rng.integers(0, s - args.crop + 1, crops) for s in shape], axis=1) for _ in range(repeats)]
        rates = {}
        for name, vol in vols.items():
            read_crops(vol, passes[0][:2], args.crop)  # warm the page cache
            it = iter(passes)
            seconds, _ = median_time(lambda: read_crops(vol, next(it), args.crop), repeats)
            rates[name] = crops / seconds
            print(f"{name:12s} {rates[name]:8.1f} crops/s  (median {seconds * 1e3 / crops:.2f} ms per crop)")
        sizes = {name: sum(f.stat().st_size for f in Path(spec.replace("precomputed://", "")).rglob("*") if f.is_file()) / 2**20
                 for name, spec in specs.items()}
        print(f"on disk: zarr {sizes['zarr']:.1f} MiB, precomputed {sizes['precomputed']:.1f} MiB")
    print(f"ratio precomputed / zarr: {rates['precomputed'] / rates['zarr']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
