"""Training crops drawn in DataLoader worker processes: :class:`CropStream` and :func:`crop_loader`.

Each worker builds its own sampler (its own file handles and random stream) with
``make_sampler(np.random.default_rng([seed, worker_id]))`` and yields ``sampler.sample(batch_size)``
forever. The stream is reproducible for a fixed seed and number of workers (the DataLoader takes
batches from the workers in turn); a different number of workers gives different batches.

``make_sampler`` travels to the workers by pickling when they are started with ``spawn`` or
``forkserver`` (macOS, Windows, Python >= 3.14 on Linux), so it must be a module-level function
or a :func:`functools.partial` of one, with picklable arguments: volume specs (strings), arrays,
or :class:`~masktwins3d.io.Volume` objects (they reopen their file in each process). Example::

    def section_sampler(raw_spec, label_spec, crop, rng):
        raw, label = open_volume(raw_spec), open_volume(label_spec)
        return SectionCrops(raw, label, crop, volume_normalizer(raw), rng)

    make = functools.partial(section_sampler, "a.zarr/raw", "a.zarr/mito", (512, 512))
    loader = crop_loader(make, seed=0, batch_size=2)
    images, labels = next(iter(loader))  # (2, 1, 512, 512) float32, (2, 512, 512) uint8
"""

from __future__ import annotations

from typing import Callable, Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

EMPTY = torch.empty(0)
"""The label a sampler without labels (an unlabelled target) yields."""


class CropStream(IterableDataset):
    """An endless stream of ``(images, labels)`` batches from a crop sampler built in each worker.

    Args:
        make_sampler: builds a sampler (an object with ``sample(n) -> (images, labels or None)``,
            e.g. :class:`~masktwins3d.data.sampling.SectionCrops` or
            :class:`~masktwins3d.data.sampling.PointCrops`) from its numpy Generator; called once
            per worker. Must be picklable (a module-level function or a ``functools.partial``).
        seed: the stream's seed; worker ``i`` draws from ``np.random.default_rng([seed, i])``
            (worker 0, or the main process without workers, from ``[seed, 0]``).
        batch_size: crops per batch.
    """

    def __init__(self, make_sampler: Callable[[np.random.Generator], object], seed: int, batch_size: int):
        super().__init__()
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, not {batch_size}")
        self.make_sampler, self.seed, self.batch_size = make_sampler, int(seed), int(batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        info = get_worker_info()
        worker = 0 if info is None else info.id
        sampler = self.make_sampler(np.random.default_rng([self.seed, worker]))
        while True:
            images, labels = sampler.sample(self.batch_size)
            yield torch.from_numpy(images), (EMPTY if labels is None else torch.from_numpy(labels))


def crop_loader(
    make_sampler: Callable[[np.random.Generator], object],
    seed: int,
    batch_size: int,
    workers: int = 2,
    prefetch_factor: int = 4,
) -> DataLoader:
    """A DataLoader over a :class:`CropStream`: batches of ``batch_size`` crops drawn by
    ``workers`` processes (0: in the calling process), each keeping up to ``prefetch_factor``
    batches ready. Iterate it with ``iter``; it never ends (the workers stop when the iterator
    is dropped; a new iterator starts the same stream again).

    Args:
        make_sampler: see :class:`CropStream` (must be picklable).
        seed: the stream's seed (see :class:`CropStream`).
        batch_size: crops per batch.
        workers: worker processes (default 2; 0: draw in the calling process).
        prefetch_factor: batches each worker keeps ready (default 4; ignored without workers).
    """
    if workers < 0:
        raise ValueError(f"workers must be 0 or more, not {workers}")
    stream = CropStream(make_sampler, seed, batch_size)
    extra = {"prefetch_factor": prefetch_factor} if workers > 0 else {}
    return DataLoader(stream, batch_size=None, num_workers=workers, **extra)
