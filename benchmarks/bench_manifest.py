"""The blockwise manifest's cost per finished block, from 2k to 100k blocks.

A job of N blocks records each finished one with :meth:`masktwins3d.parallel.Manifest.mark_done`
(one JSON line appended). This times the first and the last thousand calls of a job of
2k, 10k and 100k blocks (median of ``--repeats`` jobs), in a temporary folder on the disk the
benchmark runs from, and, as the peer run in the same process, the manifest masktwins3d kept
before: the whole JSON document (settings and every finished id) rewritten atomically after each
block, whose cost grows with the blocks already done (up to 10k blocks: beyond, it takes hours).
Its last line: ``manifest cost per block, last/first thousand at 100k blocks: X.XXx (before:
Y.YYx at 10k)``. Usage::

    .venv/bin/python benchmarks/bench_manifest.py --repeats 3
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from timing import cpu_model  # noqa: E402

from masktwins3d.atomic import atomic_write_json  # noqa: E402
from masktwins3d.parallel import Manifest  # noqa: E402

SETTINGS = {"model": "sha256:" + "0" * 64, "patch": [256, 256], "overlap": [0.25, 0.25], "block": [4, 2048, 2048], "dtype": "uint8"}


class RewriteManifest:
    """The earlier manifest: the whole document rewritten after every block (the peer)."""

    def __init__(self, path: Path, total: int):
        self.path, self.total, self.done = path, total, set()

    def start(self) -> None:
        self.save()

    def mark_done(self, block_id: str) -> None:
        self.done.add(block_id)
        self.save()

    def save(self) -> None:
        atomic_write_json(self.path, {"format": "masktwins3d-blocks/1", "settings": SETTINGS, "total": self.total,
                                      "complete": len(self.done) >= self.total, "done": sorted(self.done)})


def first_last_thousand(make, total: int) -> tuple[float, float]:
    """Seconds per ``mark_done`` over the first and the last 1000 blocks of a ``total``-block job."""
    with tempfile.TemporaryDirectory(dir=ROOT) as tmp:
        manifest = make(Path(tmp), total)
        manifest.start()
        ids = [f"{i // 10000}-{(i // 100) % 100}-{i % 100}" for i in range(total)]
        t0 = time.perf_counter()
        for block_id in ids[:1000]:
            manifest.mark_done(block_id)
        first = (time.perf_counter() - t0) / 1000
        for block_id in ids[1000:-1000]:
            manifest.mark_done(block_id)
        t0 = time.perf_counter()
        for block_id in ids[-1000:]:
            manifest.mark_done(block_id)
        last = (time.perf_counter() - t0) / 1000
    return first, last


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    print(f"CPU: {cpu_model()}; median of {args.repeats} jobs each")
    print(f"{'manifest':<22}{'blocks':>8}{'first 1k (us/block)':>22}{'last 1k (us/block)':>21}{'last/first':>12}")
    ratios = {}
    runs = [("JSON lines (now)", lambda d, n: Manifest(d / "blocks.jsonl", SETTINGS, n), n) for n in (2000, 10_000, 100_000)]
    runs += [("rewrite (before)", lambda d, n: RewriteManifest(d / "blocks.json", n), n) for n in (2000, 10_000)]
    for name, make, total in runs:
        pairs = [first_last_thousand(make, total) for _ in range(args.repeats)]
        first, last = statistics.median(f for f, _ in pairs), statistics.median(v for _, v in pairs)
        ratios[name, total] = last / first
        print(f"{name:<22}{total:>8}{1e6 * first:>22.1f}{1e6 * last:>21.1f}{last / first:>11.2f}x")
    print(f"manifest cost per block, last/first thousand at 100k blocks: {ratios['JSON lines (now)', 100_000]:.2f}x "
          f"(before: {ratios['rewrite (before)', 10_000]:.2f}x at 10k)")


if __name__ == "__main__":
    main()
