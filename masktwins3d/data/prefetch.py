"""Draw the next training batch in a background thread while the current step runs.

The samplers are numpy code that mostly releases the GIL, so one worker thread hides their
cost behind the forward and backward passes (on a GPU, where the main thread only queues
kernels, entirely). Batches come out in the same order, from the same random streams, as
without prefetching; checkpoints store the random state from *before* the batch drawn ahead,
so a resumed run draws that batch again and matches an uninterrupted one exactly.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable


class Prefetcher:
    """``produce()`` run one call ahead in a worker thread; ``finish(item)`` on the caller's thread.

    Args:
        produce: draws one item (CPU work; the only user of the random state below).
        get_state / set_state: read and restore the random state that ``produce`` consumes.
        finish: applied to each item in the calling thread (e.g. the copy to the GPU).
        enabled: False runs ``produce`` inline (no thread), with the same results.
    """

    def __init__(
        self,
        produce: Callable[[], Any],
        get_state: Callable[[], dict],
        set_state: Callable[[dict], None],
        finish: Callable[[Any], Any] = lambda item: item,
        enabled: bool = True,
    ):
        self.produce, self.get_state_now, self.set_state_now, self.finish = produce, get_state, set_state, finish
        self.enabled = enabled
        self._pool: ThreadPoolExecutor | None = None
        self._ahead: Future | None = None
        self._state_before_ahead: dict | None = None

    def __call__(self) -> Any:
        if not self.enabled:
            return self.finish(self.produce())
        if self._ahead is None:
            self._submit()
        item = self._ahead.result()
        self._submit()
        return self.finish(item)

    def _submit(self) -> None:
        # nothing runs in the worker now: the state read here is the one before the next item
        self._state_before_ahead = self.get_state_now()
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="masktwins3d-prefetch")
        self._ahead = self._pool.submit(self.produce)

    def _drop_ahead(self) -> None:
        """Wait for the item drawn ahead and forget it, rewinding the random state."""
        if self._ahead is not None:
            self._ahead.exception()  # wait; an error there is raised again when redrawn
            self.set_state_now(self._state_before_ahead)
            self._ahead = None

    def state(self) -> dict:
        """The random state as if no item had been drawn ahead (what a checkpoint stores)."""
        return self._state_before_ahead if self._ahead is not None else self.get_state_now()

    def set_state(self, state: dict) -> None:
        """Restore ``state``; an item drawn ahead from the old state is dropped."""
        self._drop_ahead()
        self.set_state_now(state)

    def close(self) -> None:
        """Stop the worker (the item drawn ahead, if any, is dropped and its draw undone)."""
        self._drop_ahead()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
