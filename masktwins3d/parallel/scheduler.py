"""Run blockwise work here or on a dask cluster.

``--scheduler`` takes:

- ``none`` (default): every block in this process, one after another;
- ``local`` or ``local:N``: a ``dask.distributed.LocalCluster`` of N single-threaded worker
  processes on this machine (default N: the number of CPU cores);
- an address such as ``tcp://10.0.0.5:8786``: an existing dask scheduler, e.g. one started by
  ``dask scheduler`` or by dask-jobqueue on SLURM.

Each block is one task; results come back to this process, which records them (the manifest)
as they finish, so only this process writes bookkeeping files.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Any, Callable, Iterator, NamedTuple, Sequence

from tqdm.auto import tqdm

from ..errors import UserError

CONNECT_TIMEOUT = "20s"


class Scheduler(NamedTuple):
    """A parsed ``--scheduler`` value: ``kind`` none | local | address, ``workers`` (local), ``address``."""

    kind: str
    workers: int = 0
    address: str = ""


def parse_scheduler(spec: str | None) -> Scheduler:
    """``none`` | ``local[:N]`` | ``ADDRESS`` -> :class:`Scheduler`; one clear line for anything else."""
    text = (spec or "none").strip()
    if text.lower() in ("none", "", "inline", "single"):
        return Scheduler("none")
    if text.lower() == "local" or text.lower().startswith("local:"):
        count = text.split(":", 1)[1] if ":" in text else str(os.cpu_count() or 1)
        if not count.isdigit() or int(count) < 1:
            raise UserError(f"--scheduler {spec!r}: the worker count after 'local:' must be a whole number >= 1, e.g. local:4")
        return Scheduler("local", workers=int(count))
    if "://" in text or (":" in text and text.rsplit(":", 1)[1].isdigit()):
        return Scheduler("address", address=text if "://" in text else f"tcp://{text}")
    raise UserError(f"--scheduler {spec!r} is not none, local, local:N or a dask scheduler address like tcp://host:8786")


def check_reachable(scheduler: Scheduler, timeout: float = 3.0) -> None:
    """For a scheduler address, open (and close) a TCP connection to it, so that an unreachable
    scheduler is one line before any output is written; other kinds need nothing."""
    import socket
    from urllib.parse import urlparse

    if scheduler.kind != "address":
        return
    url = urlparse(scheduler.address)
    if not url.hostname or not url.port:
        return  # another transport (e.g. inproc://): dask itself reports it
    try:
        with socket.create_connection((url.hostname, url.port), timeout=timeout):
            pass
    except OSError as exc:
        raise UserError(f"--scheduler {scheduler.address}: no dask scheduler answers there ({exc.strerror or type(exc).__name__}); "
                        "start one (dask scheduler), check the address, or use --scheduler local") from None


@contextmanager
def dask_client(scheduler: Scheduler) -> Iterator[Any]:
    """A ``dask.distributed.Client`` for a local cluster or an address (closed afterwards)."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:  # pragma: no cover - dask is a dependency
        raise UserError("--scheduler needs dask.distributed; pip install 'distributed'") from None
    if scheduler.kind == "local":
        with LocalCluster(
            n_workers=scheduler.workers, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster, Client(cluster) as client:
            yield client
        return
    try:
        client = Client(scheduler.address, timeout=CONNECT_TIMEOUT)
    except (OSError, TimeoutError) as exc:
        raise UserError(
            f"could not reach the dask scheduler at {scheduler.address} ({type(exc).__name__}); start it, fix the address, or use --scheduler local"
        ) from None
    try:
        yield client
    finally:
        client.close()


def run_blocks(
    work: Callable[[Any], Any],
    items: Sequence[Any],
    scheduler: str | Scheduler | None = None,
    on_done: Callable[[Any, Any], None] | None = None,
    progress: bool = True,
    desc: str = "blocks",
    prefetch: Callable[[Any], None] | None = None,
) -> None:
    """Call ``work(item)`` for every item, here or on a dask cluster, and ``on_done(item, result)`` here.

    ``on_done`` runs in this process as each item finishes (in completion order on a cluster),
    so it can keep a manifest. An exception in ``work`` stops the run and is raised here.

    Args:
        work: picklable callable (it runs on the workers for a cluster) taking one item.
        items: the work items (e.g. :class:`~.blocks.Block`).
        scheduler: a ``--scheduler`` string or a parsed :class:`Scheduler` (default none: this process).
        on_done: called with each item and its result (default: results are dropped).
        progress: show a tqdm bar.
        desc: the bar's label.
        prefetch: in-process runs only: called with the next item just before ``work`` runs on the
            current one, so the next item's input can be read in the background (default none).
    """
    sched = scheduler if isinstance(scheduler, Scheduler) else parse_scheduler(scheduler)
    bar = tqdm(total=len(items), disable=not progress, desc=desc, unit="block")
    try:
        if sched.kind == "none" or not items:
            for i, item in enumerate(items):
                if prefetch is not None and i + 1 < len(items):
                    prefetch(items[i + 1])
                result = work(item)
                if on_done is not None:
                    on_done(item, result)
                bar.update(1)
            return
        from distributed import as_completed

        with dask_client(sched) as client:
            futures = client.map(work, list(items), pure=False)
            owner = {f.key: item for f, item in zip(futures, items)}
            for future in as_completed(futures):
                result = future.result()
                if on_done is not None:
                    on_done(owner[future.key], result)
                bar.update(1)
                future.release()
    finally:
        bar.close()
