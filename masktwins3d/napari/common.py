"""What every masktwins3d dock widget shares: layer pickers that follow the viewer, turning
errors into napari notifications, and running long work in a ``thread_worker``.

A user's mistake (:class:`~masktwins3d.errors.UserError`, e.g. a wrong dtype or a missing
checkpoint) becomes one ``show_error`` notification with the package's one-line message; any
other exception becomes a notification that names the step and the exception. Nothing raises
into napari's event loop, and no layer is touched before the work has succeeded.
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterator

from magicgui.widgets import ComboBox, Container
from napari.qt.threading import create_worker
from napari.utils.notifications import show_error, show_info

from ..errors import UserError
from .layers import role


class Cancelled(Exception):
    """Raised inside a worker when the user pressed Cancel."""


def message(exc: BaseException, step: str) -> str:
    """The text a notification shows for ``exc`` raised during ``step``."""
    if isinstance(exc, UserError):
        return str(exc)
    return f"{step} failed: {type(exc).__name__}: {exc}"


@contextlib.contextmanager
def notify(step: str) -> Iterator[None]:
    """Run a block; turn any exception into a napari error notification instead of raising."""
    try:
        yield
    except Exception as exc:  # noqa: BLE001  (every failure must end as a notification, not a crash)
        show_error(message(exc, step))


def layer_picker(viewer, label: str, accept: Callable[[Any], bool], prefer: str | None = None, nullable: bool = False) -> ComboBox:
    """A combo box of the viewer's layers that ``accept`` admits, kept in step with the layer list.

    Args:
        viewer: the napari viewer.
        label: the widget's label.
        accept: which layers to offer.
        prefer: a ``metadata["masktwins3d"]["kind"]`` to put first (e.g. ``probability``).
        nullable: offer "no layer" (None) too.
    """

    def choices(_widget=None) -> list:
        layers = [layer for layer in viewer.layers if accept(layer)]
        if prefer:
            layers.sort(key=lambda layer: role(layer).get("kind") != prefer)
        return [(layer.name, layer) for layer in layers]

    box = ComboBox(label=label, choices=choices, nullable=nullable)
    events = viewer.layers.events
    for name in ("inserted", "removed", "reordered"):
        getattr(events, name).connect(lambda *_: box.reset_choices())
    return box


class WorkerWidget(Container):
    """A dock widget that runs one job at a time in a thread worker.

    Subclasses call :meth:`start` with the function to run in the background and a callback for
    its result (run in the main thread). Errors end as notifications; :attr:`worker` is None
    when idle.
    """

    step = "masktwins3d"

    def __init__(self, viewer, **kwargs):
        super().__init__(**kwargs)
        self.viewer = viewer
        self.worker = None

    def start(self, work: Callable[[], Any], done: Callable[[Any], None], on_error: Callable[[BaseException], None] | None = None) -> None:
        if self.worker is not None:
            show_info(f"{self.step} is still running; wait for it or cancel it")
            return
        worker = create_worker(work, _start_thread=False, _ignore_errors=True)  # errors: handled below

        def returned(result: Any) -> None:
            with notify(self.step):
                done(result)

        def errored(exc: BaseException) -> None:
            if on_error is not None:
                on_error(exc)
            if isinstance(exc, Cancelled):
                show_info(str(exc))
            else:
                show_error(message(exc, self.step))

        def finished() -> None:
            self.worker = None
            self.busy(False)

        worker.returned.connect(returned)
        worker.errored.connect(errored)
        worker.finished.connect(finished)
        self.worker = worker
        self.busy(True)
        worker.start()

    def busy(self, running: bool) -> None:
        """Enable or disable controls while a job runs (subclasses override)."""
