#!/usr/bin/env python
"""Write the synthetic source/target EM volumes of the demo, at any size and seed.

Each volume is a zarr v3 group ``<out>/<name>.zarr`` with OME-Zarr images ``raw`` (uint8) and
``mito`` (0/1), ready for ``masktwins3d train`` (``data.source.raw=<out>/source_train.zarr/raw``
...). Example::

    .venv/bin/python scripts/synth_volumes.py --out volumes/synth --shape 32,512,512 --seed 3
"""

from __future__ import annotations

import argparse
import sys

from masktwins3d.errors import UserError
from masktwins3d.synth import DEMO_SHAPES, write_demo_data


def _shape(text: str) -> tuple[int, int, int]:
    try:
        shape = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--shape {text!r} must be three integers Z,Y,X, e.g. 24,256,256") from None
    if len(shape) != 3 or min(shape) < 1:
        raise argparse.ArgumentTypeError(f"--shape {text!r} must be three positive integers Z,Y,X, e.g. 24,256,256")
    return shape


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="volumes/synth", help="folder to write into (default: volumes/synth)")
    p.add_argument("--shape", type=_shape, default=None, help=f"Z,Y,X of every volume (default: {DEMO_SHAPES})")
    p.add_argument("--seed", type=int, default=0, help="base seed (default: 0)")
    p.add_argument("--overwrite", action="store_true", help="replace volumes that exist")
    args = p.parse_args(argv)
    try:
        specs = write_demo_data(args.out, shapes=args.shape, seed=args.seed, overwrite=args.overwrite)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for name, spec in specs.items():
        print(f"{name:<13} raw={spec['raw']}  mito={spec['mito']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
