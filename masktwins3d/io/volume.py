"""A lazy array that carries its geometry: :class:`Volume`.

Every reader (zarr, OME-Zarr, HDF5, TIFF, section folders) returns a :class:`Volume`; indexing it
reads only the requested region from disk. Formats plug in an *array source*: any object with
``shape``, ``dtype``, ``chunks`` and ``__getitem__`` (``__setitem__`` if writable) that accepts a
tuple of in-range ints and positive-step slices, one per axis. zarr and h5py arrays qualify as they
are; :mod:`.tiff_io` defines sources for TIFF files and section folders.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from ..errors import UserError
from ..geometry import Roi

AXES = ("yx", "cyx", "zyx", "czyx")
"""Axis layouts a Volume can have: spatial axes ZYX (or YX for a 2D image), channels first."""


def default_axes(ndim: int, path: str) -> str:
    """Axis layout of an array without axis metadata: 2 -> yx, 3 -> zyx, 4 -> czyx."""
    axes = {2: "yx", 3: "zyx", 4: "czyx"}.get(ndim)
    if axes is None:
        raise UserError(f"{path} has {ndim} dimensions; masktwins3d reads YX, ZYX or CZYX arrays: save the volume with one of those layouts")
    return axes


class Volume:
    """An on-disk array with axes, voxel size and offset; indexing reads only that region.

    Args:
        source: array source (``shape``, ``dtype``, ``chunks``, ``__getitem__``; ``__setitem__`` when
            ``writable``), indexed with in-range ints and positive-step slices only.
        path: the spec the volume was opened from (used in every message).
        axes: one of :data:`AXES` ("zyx", "czyx", "yx", "cyx"), for the axes left after ``drop``.
        voxel_size: nm per voxel, ZYX (3 positive floats; the Z entry is 1.0 for a 2D image).
        offset: voxel coordinate of array index 0, ZYX (3 ints; default 0s).
        drop: leading axes of ``source`` of length 1 that the volume hides (e.g. OME-Zarr ``t``); default 0.
        writable: whether ``vol[index] = value`` is allowed.
        reopen: zero-argument callable returning an equivalent Volume; used for pickling (files
            stay closed in the pickle; each process opens its own handle). Default: not picklable.
        closer: called by :meth:`close` (e.g. closes the h5py/TIFF file); default none.
    """

    def __init__(
        self,
        source: Any,
        *,
        path: str,
        axes: str,
        voxel_size: Sequence[float] = (1.0, 1.0, 1.0),
        offset: Sequence[int] = (0, 0, 0),
        drop: int = 0,
        writable: bool = False,
        reopen: Callable[[], "Volume"] | None = None,
        closer: Callable[[], None] | None = None,
    ):
        self._source = source
        self._drop = int(drop)
        self.path = str(path)
        shape = tuple(int(s) for s in source.shape)
        if any(s != 1 for s in shape[: self._drop]):
            raise ValueError(f"{path}: cannot hide axes of length other than 1 in shape {shape}")
        self.shape: tuple[int, ...] = shape[self._drop :]
        if 0 in self.shape:
            raise UserError(f"{path} has shape {self.shape}: an axis of length 0 holds no voxels; give a volume with data")
        if axes not in AXES or len(axes) != len(self.shape):
            raise UserError(f"{path} has shape {self.shape} and axes {axes!r}; masktwins3d reads {', '.join(a.upper() for a in AXES)} arrays")
        self.axes: str = axes
        self.dtype: np.dtype = np.dtype(source.dtype)
        if self.dtype.kind not in "biuf":
            raise UserError(f"{path} has dtype {self.dtype}; masktwins3d reads bool, integer or float arrays: convert it")
        self.voxel_size: tuple[float, float, float] = check_voxel_size(voxel_size, self.path)
        self.offset: tuple[int, int, int] = check_offset(offset, self.path)
        chunks = getattr(source, "chunks", None)
        self.chunks: tuple[int, ...] | None = tuple(int(c) for c in chunks)[self._drop :] if chunks else None
        self.writable = bool(writable)
        self._reopen = reopen
        self._closer = closer

    # ---- geometry -------------------------------------------------------------------------
    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def spatial_axes(self) -> str:
        return self.axes.lstrip("c")

    @property
    def spatial_shape(self) -> tuple[int, ...]:
        """(Z, Y, X) of a volume; (Y, X) of a 2D image."""
        return self.shape[-len(self.spatial_axes) :]

    @property
    def num_channels(self) -> int | None:
        """Length of the channel axis, or None without one."""
        return self.shape[0] if self.axes.startswith("c") else None

    @property
    def roi(self) -> Roi:
        """The voxels this volume covers, ZYX (a 2D image is one section at z = offset[0])."""
        shape = self.spatial_shape if len(self.spatial_shape) == 3 else (1, *self.spatial_shape)
        return Roi(self.offset, shape)

    @property
    def nbytes(self) -> int:
        """Size of the whole array in memory, bytes."""
        return int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize

    def require_3d(self, what: str) -> Volume:
        """Return ``self`` if it has three spatial axes; otherwise raise a :class:`UserError`.

        Args:
            what: the step that needs a volume, for the message (e.g. "prediction", "data.source.raw").
        """
        if len(self.spatial_shape) != 3:
            raise UserError(f"{self.path} is a 2D array of shape {self.shape}; {what} needs a ZYX volume: give a 3D stack")
        return self

    # ---- data -----------------------------------------------------------------------------
    def __getitem__(self, index: Any) -> np.ndarray:
        key, out_shape, flip = normalize_index(index, self.shape)
        if 0 in out_shape:
            return np.empty(out_shape, dtype=self.dtype)
        try:
            data = np.asarray(self._source[(0,) * self._drop + key])
        except UserError:
            raise
        except (RuntimeError, ValueError, OSError, EOFError, KeyError) as exc:  # codec, truncated file, bad chunk
            where = ", ".join(f"{k.start}:{k.stop}" if isinstance(k, slice) else str(k) for k in key)
            detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise UserError(f"{self.path}: voxels [{where}] cannot be read ({detail}); the file is damaged or truncated: "
                            "restore it from a copy or convert the original again") from None
        if flip:
            data = np.flip(data, axis=flip)
        return data[()] if data.ndim == 0 else data

    def __setitem__(self, index: Any, value: Any) -> None:
        if not self.writable:
            raise UserError(f"{self.path} is open read-only; open it with mode='r+' (zarr only) to write")
        key, out_shape, flip = normalize_index(index, self.shape)
        if 0 in out_shape:
            return
        value = np.broadcast_to(np.asarray(value), out_shape)
        if flip:
            value = np.flip(value, axis=flip)
        self._source[(0,) * self._drop + key] = value

    def read(self) -> np.ndarray:
        """The whole array as numpy (reads everything: mind :attr:`nbytes`)."""
        return self[...]

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        data = self.read()
        return data if dtype is None else data.astype(dtype, copy=False)

    def __len__(self) -> int:
        return self.shape[0]

    # ---- lifetime -------------------------------------------------------------------------
    def reopen(self) -> Volume:
        """A fresh Volume on the same spec with its own file handle (e.g. in each DataLoader worker)."""
        if self._reopen is None:
            raise TypeError(f"Volume {self.path} was not opened from a file and cannot be reopened")
        return self._reopen()

    def close(self) -> None:
        """Release the file handle (if any); the volume cannot be read afterwards."""
        if self._closer is not None:
            self._closer()
            self._closer = None

    def __enter__(self) -> Volume:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __reduce__(self):
        if self._reopen is None:
            raise TypeError(f"Volume {self.path} was not opened from a file and cannot be pickled")
        return (_call, (self._reopen,))

    def __repr__(self) -> str:
        return (
            f"Volume({self.path!r}, shape={self.shape}, dtype={self.dtype}, axes={self.axes!r}, "
            f"voxel_size={self.voxel_size}, offset={self.offset})"
        )


def _call(fn: Callable[[], Volume]) -> Volume:
    return fn()


def check_voxel_size(values: Sequence[float], where: str) -> tuple[float, float, float]:
    """3 positive finite floats (nm, ZYX) or a :class:`UserError` naming ``where``."""
    try:
        out = tuple(float(v) for v in values)
    except (TypeError, ValueError):
        out = ()
    if len(out) != 3 or not all(np.isfinite(v) and v > 0 for v in out):
        raise UserError(f"{where}: voxel size {values!r} must be 3 positive numbers in nm, ZYX, e.g. (40, 4, 4)")
    return out  # type: ignore[return-value]


def check_offset(values: Sequence[int], where: str) -> tuple[int, int, int]:
    """3 whole numbers (voxels, ZYX) or a :class:`UserError` naming ``where``."""
    try:
        floats = tuple(float(v) for v in values)
    except (TypeError, ValueError):
        floats = ()
    if len(floats) != 3 or not all(np.isfinite(v) and v == round(v) for v in floats):
        raise UserError(f"{where}: offset {values!r} must be 3 whole numbers of voxels, ZYX, e.g. (0, 0, 0)")
    return tuple(int(round(v)) for v in floats)  # type: ignore[return-value]


def normalize_index(index: Any, shape: Sequence[int]) -> tuple[tuple, tuple[int, ...], tuple[int, ...]]:
    """Turn a numpy-style basic index into what array sources accept.

    Args:
        index: int, slice, Ellipsis or a tuple of them (numpy semantics: negative ints and steps,
            out-of-range slice bounds are clipped). Arrays, lists and ``None`` are not supported.
        shape: shape of the indexed array.

    Returns:
        ``(key, out_shape, flip)``: ``key`` has one in-range int or positive-step slice per axis,
        ``out_shape`` is the shape of the result, ``flip`` the result axes to reverse (negative steps).
    """
    items = index if isinstance(index, tuple) else (index,)
    n_ellipsis = sum(i is Ellipsis for i in items)
    if n_ellipsis > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    n_axes = len(items) - n_ellipsis
    if n_axes > len(shape):
        raise IndexError(f"too many indices ({n_axes}) for an array of shape {tuple(shape)}")
    if n_ellipsis:
        at = next(i for i, it in enumerate(items) if it is Ellipsis)
        items = items[:at] + (slice(None),) * (len(shape) - n_axes) + items[at + 1 :]
    else:
        items = items + (slice(None),) * (len(shape) - n_axes)
    key, out_shape, flip = [], [], []
    for axis, (item, size) in enumerate(zip(items, shape)):
        if isinstance(item, (int, np.integer)) and not isinstance(item, (bool, np.bool_)):
            i = int(item)
            if not -size <= i < size:
                raise IndexError(f"index {i} is out of bounds for axis {axis} with size {size}")
            key.append(i % size)
        elif isinstance(item, slice):
            start, stop, step = item.indices(size)
            count = len(range(start, stop, step))
            if step > 0:
                key.append(slice(start, start + (count - 1) * step + 1 if count else start, step))
            else:
                first = start + (count - 1) * step if count else 0
                key.append(slice(first, start + 1 if count else 0, -step))
                flip.append(len(out_shape))
            out_shape.append(count)
        else:
            raise TypeError(
                f"Volume indices are ints, slices or '...', not {type(item).__name__}; "
                "read the region first (vol[z0:z1]) and index the numpy array"
            )
    return tuple(key), tuple(out_shape), tuple(flip)
