"""``masktwins3d convert``: image or label stacks to OME-Zarr, section by section.

Inputs (see :mod:`.stacks`): a folder of PNG/TIFF sections, a multi-page TIFF, ``file.h5:/key`` or a
zarr array. The output is an OME-Zarr 0.5 image (:func:`~masktwins3d.io.create_volume`: zarr v3,
chunked, blosc-zstd) with the voxel size (nm, ZYX) and offset (voxels) in its metadata, so
``open_volume(output)`` returns the same geometry.

**Images** keep their dtype (uint8, uint16, int32, float32, float64, bool): nothing is rescaled.
RGB(A) sections keep channel 0; palette PNGs become grey levels.

**Labels** (``labels=True``) become uint8 0/1 under an explicit :class:`LabelRule`:

- ``nonzero`` (default): foreground is ``value > 0``. Right for 0/1, 0/255, bool, palette PNGs
  with indices 0/1 (read as indices, not colours), VNC III's PNGs with values 1 *and* 255, and
  instance labels (MitoEM).
- ``half``: foreground is ``value > 127``. For 8-bit 0/255 masks with antialiasing noise (grey
  values along the edges). On 0/1 labels it gives an empty mask: the summary warns.

RGB(A) label sections keep channel 0.

Memory: one chunk's worth of sections (``chunks[0]`` sections, 1 by default) at a time, never the
whole stack. Everything that can be checked without reading pixels (input exists, section sizes
and dtypes agree, voxel size known, shape matches ``like``, output free) is checked before
anything is written. The output is written to a hidden folder beside it and moved into place at
the end, so an interrupted run leaves no half-written volume (and keeps the old one under
``overwrite``).
"""

from __future__ import annotations

import os
import shutil
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
from tqdm import tqdm

from ..atomic import move_into_place
from ..errors import UserError
from .stacks import SectionStack, open_stack
from .volume import check_offset, check_voxel_size
from .zarr_io import create_volume, default_chunks, is_zarr_node

MAX_VALUES = 16
"""Up to this many distinct input values are listed in the summary; beyond it, the range."""


class LabelRule(str, Enum):
    """How label values become foreground (uint8 1) or background (0).

    ``nonzero``: ``value > 0`` (0/1, 0/255, 1-and-255, palette 0/1, instance ids);
    ``half``: ``value > 127`` (antialiased 8-bit 0/255 masks).
    """

    NONZERO = "nonzero"
    HALF = "half"


RULE_TEXT = {LabelRule.NONZERO: "value > 0", LabelRule.HALF: "value > 127"}


def parse_rule(rule: str | LabelRule) -> LabelRule:
    """A :class:`LabelRule` from its name, or a one-line UserError listing the rules."""
    try:
        return LabelRule(rule)
    except ValueError:
        raise UserError(f"label rule {rule!r} is unknown; use nonzero (value > 0, the default) or half (value > 127)") from None


def binarize_section(section: np.ndarray, rule: LabelRule) -> np.ndarray:
    """uint8 0/1 foreground of one label section under ``rule`` (bool input: as is)."""
    section = np.asarray(section)
    if section.dtype == bool:
        return section.astype(np.uint8)
    return (section > (127 if rule is LabelRule.HALF else 0)).astype(np.uint8)


@dataclass
class ConvertSummary:
    """What a conversion found and did (printed by the CLI, one fact per line).

    Args:
        output: the OME-Zarr written.
        input: the input spec; kind: what it is, in words.
        shape: (Z, Y, X) voxels; dtype: the input's dtype; out_dtype: the output's.
        values: sorted distinct input values when at most :data:`MAX_VALUES`, else None.
        value_range: (min, max) of the input (NaN ignored).
        labels: whether it was a label conversion; rule: the label rule applied (labels only).
        foreground: fraction of foreground voxels in the output (labels only).
        voxel_size: nm, ZYX; voxel_size_from: where it came from, in words.
        offset: voxels, ZYX; chunks: output chunk shape.
        notes: remarks (channel 0 kept, palette indices, empty masks, NaNs).
    """

    output: str
    input: str
    kind: str
    shape: tuple[int, int, int]
    dtype: str
    out_dtype: str
    values: list | None
    value_range: tuple[float, float]
    labels: bool
    rule: str | None
    foreground: float | None
    voxel_size: tuple[float, float, float]
    voxel_size_from: str
    offset: tuple[int, int, int]
    chunks: tuple[int, ...]
    notes: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        """The summary as printable lines."""
        z, y, x = self.shape
        found = f"values {{{', '.join(_fmt(v) for v in self.values)}}}" if self.values is not None else (
            f"range {_fmt(self.value_range[0])} .. {_fmt(self.value_range[1])}")
        out = [
            f"input: {self.input} ({self.kind}): {z} section{'s' if z != 1 else ''} of {y} x {x} (Z, Y, X), {self.dtype}, {found}",
        ]
        if self.labels:
            out.append(f"labels: rule {self.rule} ({RULE_TEXT[LabelRule(self.rule)]} is foreground) -> uint8 0/1; "
                       f"foreground {100 * (self.foreground or 0.0):.2f} % of voxels")
        else:
            out.append(f"image: dtype {self.out_dtype} kept, values not rescaled")
        vs = ", ".join(_fmt(v) for v in self.voxel_size)
        out.append(f"voxel size: {vs} nm (Z, Y, X) from {self.voxel_size_from}; offset {', '.join(map(str, self.offset))} voxels")
        out += [f"note: {n}" for n in self.notes]
        out.append(f"output: {self.output} (OME-Zarr 0.5, {self.out_dtype}, chunks {'x'.join(map(str, self.chunks))}, blosc zstd)")
        return out


def _fmt(v) -> str:
    return f"{float(v):g}" if isinstance(v, (float, np.floating)) else str(v)


def convert_stack(
    input: str | Path | SectionStack,
    output: str | Path,
    *,
    labels: bool = False,
    rule: str | LabelRule = LabelRule.NONZERO,
    voxel_size: Sequence[float] | None = None,
    offset: Sequence[int] | None = None,
    default_voxel_size: Sequence[float] | None = None,
    default_voxel_size_from: str = "",
    like: str | Path | None = None,
    chunks: Sequence[int] | None = None,
    sections: Sequence[int] | None = None,
    overwrite: bool = False,
    progress: bool = False,
) -> ConvertSummary:
    """Convert one image or label stack to an OME-Zarr volume, streaming section by section.

    Args:
        input: input spec (see :func:`~masktwins3d.io.stacks.open_stack`) or an open :class:`SectionStack`
            (closed when done).
        output: OME-Zarr path (``out.zarr`` or ``store.zarr/name``).
        labels: label mode: uint8 0/1 output under ``rule`` (default False: image, dtype kept).
        rule: :class:`LabelRule` or its name (default ``nonzero``: value > 0); labels only.
        voxel_size: nm, ZYX (default: the input's metadata, then ``default_voxel_size``, then
            ``like``'s; none of them: a UserError asking for it).
        offset: voxels, ZYX (default: the input's metadata, then ``like``'s, else 0).
        default_voxel_size: used when the input has no voxel size metadata (e.g. a dataset descriptor's).
        default_voxel_size_from: where ``default_voxel_size`` comes from, for the summary.
        like: volume spec whose (Z, Y, X) shape the input must have (e.g. the image of a label stack).
        chunks: output chunk shape, Z,Y,X voxels (default: 1 x up to 256 x 256).
        sections: ``(start, stop)``: convert sections ``start <= z < stop`` only (default: all; a spec input only).
        overwrite: replace an existing output (default False: refuse).
        progress: show a tqdm bar over sections.

    Raises:
        UserError: anything wrong with the input, the options or the output, before anything is written.
    """
    rule = parse_rule(rule)
    stack = input if isinstance(input, SectionStack) else open_stack(input, labels=labels, sections=sections)
    with stack:
        plan = plan_conversion(stack, output, labels=labels, voxel_size=voxel_size, offset=offset,
                               default_voxel_size=default_voxel_size, default_voxel_size_from=default_voxel_size_from,
                               like=like, chunks=chunks, overwrite=overwrite)
        return write_conversion(stack, plan, labels=labels, rule=rule, progress=progress)


@dataclass
class ConversionPlan:
    """What :func:`plan_conversion` settled: output path, voxel size (nm) and where it came from,
    offset (voxels), chunk shape, output dtype and notes so far."""

    output: Path
    voxel_size: tuple[float, float, float]
    voxel_size_from: str
    offset: tuple[int, int, int]
    chunks: tuple[int, int, int]
    out_dtype: np.dtype
    notes: list[str]


def check_output(output: str | Path, overwrite: bool) -> Path:
    """``output`` as a Path if it may be written: free, or an existing zarr node with ``overwrite``."""
    out = Path(output)
    if not str(output).strip():
        raise UserError("output path is empty; give an OME-Zarr path such as out.zarr")
    if out.exists():
        if not overwrite:
            raise UserError(f"{out} exists; pass --overwrite to replace it or choose another output")
        if not is_zarr_node(out):
            raise UserError(f"{out} exists and is not a zarr array or group; remove it yourself or choose another output")
    return out


def plan_conversion(
    stack: SectionStack,
    output: str | Path,
    *,
    labels: bool,
    voxel_size: Sequence[float] | None,
    offset: Sequence[int] | None,
    default_voxel_size: Sequence[float] | None,
    default_voxel_size_from: str,
    like: str | Path | None,
    chunks: Sequence[int] | None,
    overwrite: bool,
) -> ConversionPlan:
    """Every check that needs no pixels; the output's geometry and dtype. Arguments as in :func:`convert_stack`."""
    notes = list(stack.notes)
    like_vol = None
    if like is not None:
        from .spec import open_volume

        like_vol = open_volume(like)
        like_shape = like_vol.spatial_shape if len(like_vol.spatial_shape) == 3 else (1, *like_vol.spatial_shape)
        if tuple(like_shape) != tuple(stack.shape):
            what = "labels" if labels else "input"
            raise UserError(
                f"{what} {stack.spec} are {'x'.join(map(str, stack.shape))} (Z x Y x X) but --like {like} is "
                f"{'x'.join(map(str, like_shape))}; give the label stack that belongs to that image"
            )
    if voxel_size is not None:
        vs, vs_from = check_voxel_size(voxel_size, "--voxel-size"), "--voxel-size"
    elif stack.voxel_size is not None:
        vs, vs_from = stack.voxel_size, stack.voxel_size_from
        if default_voxel_size is not None and not np.allclose(vs, default_voxel_size):
            notes.append(f"the input's voxel size {list(vs)} differs from {default_voxel_size_from}'s {list(default_voxel_size)}; "
                         "the input's is used (pass --voxel-size to choose)")
    elif default_voxel_size is not None:
        vs, vs_from = check_voxel_size(default_voxel_size, default_voxel_size_from), default_voxel_size_from
    elif like_vol is not None:
        vs, vs_from = like_vol.voxel_size, f"--like {like}"
    else:
        raise UserError(
            f"{stack.spec} carries no voxel size ({stack.kind}); pass --voxel-size Z,Y,X in nm, e.g. --voxel-size 50,4.6,4.6"
        )
    if offset is not None:
        off = check_offset(offset, "--offset")
    elif stack.offset is not None:
        off = stack.offset
    elif like_vol is not None:
        off = like_vol.offset
    else:
        off = (0, 0, 0)
    if like_vol is not None:
        like_vol.close()
    if chunks is None:
        chunk_shape = default_chunks(stack.shape, "zyx")
    else:
        chunk_shape = tuple(int(c) for c in chunks)
        if len(chunk_shape) != 3 or any(c <= 0 for c in chunk_shape):
            raise UserError(f"--chunks {list(chunks)} must be 3 positive sizes Z,Y,X in voxels, e.g. 1,256,256")
        chunk_shape = tuple(min(c, s) for c, s in zip(chunk_shape, stack.shape))
    out = check_output(output, overwrite)
    out_dtype = np.dtype(np.uint8) if labels else np.dtype(stack.dtype)
    if not labels and out_dtype.kind not in "biuf":
        raise UserError(f"{stack.spec} has dtype {out_dtype}; convert writes bool, integer or float images: save it as one of those")
    return ConversionPlan(out, vs, vs_from, off, chunk_shape, out_dtype, notes)  # type: ignore[arg-type]


class _Stats:
    """Distinct values (up to :data:`MAX_VALUES`), range, NaN count and foreground count, section by section."""

    def __init__(self):
        self.values: set | None = set()
        self.lo, self.hi = np.inf, -np.inf
        self.nan = 0
        self.foreground = 0

    def add(self, section: np.ndarray) -> None:
        data = section
        if data.dtype.kind == "f":
            bad = np.isnan(data)
            self.nan += int(bad.sum())
            data = data[~bad] if bad.any() else data
        if data.size:
            self.lo, self.hi = min(self.lo, data.min().item()), max(self.hi, data.max().item())
        if self.values is not None:
            self.values |= {v.item() for v in np.unique(data)}
            if len(self.values) > MAX_VALUES:
                self.values = None


def write_conversion(stack: SectionStack, plan: ConversionPlan, *, labels: bool, rule: LabelRule, progress: bool = False) -> ConvertSummary:
    """Stream ``stack`` into the output of ``plan`` (staged beside it, moved into place at the end).

    Args:
        stack: the open input; plan: from :func:`plan_conversion`; labels: label mode;
        rule: label rule (labels only); progress: show a tqdm bar over sections (default False).
    """
    nz, ny, nx = stack.shape
    stats = _Stats()
    cz = plan.chunks[0]
    with staged(plan.output) as tmp:
        vol = create_volume(tmp, stack.shape, plan.out_dtype, voxel_size=plan.voxel_size, offset=plan.offset,
                            axes="zyx", chunks=plan.chunks)
        buffer = np.empty((min(cz, nz), ny, nx), dtype=plan.out_dtype)
        bar = tqdm(total=nz, disable=not progress, desc=f"convert {Path(stack.spec).name}", unit="section")
        for z0 in range(0, nz, cz):
            n = min(cz, nz - z0)
            for i in range(n):
                section = np.asarray(stack.read(z0 + i))
                stats.add(section)
                if labels:
                    section = binarize_section(section, rule)
                    stats.foreground += int(section.sum())
                buffer[i] = section
                bar.update(1)
            vol[z0 : z0 + n] = buffer[:n]
        bar.close()
    notes = list(plan.notes)
    if stats.nan:
        notes.append(f"{stats.nan} NaN voxels in the input were copied as NaN; mask or fill them before training")
    total = nz * ny * nx
    foreground = stats.foreground / total if labels else None
    if labels:
        notes += _label_notes(stats, rule, foreground)
    vr = (stats.lo, stats.hi) if np.isfinite(stats.lo) else (float("nan"), float("nan"))
    return ConvertSummary(
        output=str(plan.output), input=stack.spec, kind=stack.kind, shape=stack.shape, dtype=str(stack.dtype),
        out_dtype=str(plan.out_dtype), values=sorted(stats.values) if stats.values is not None else None,
        value_range=vr, labels=labels, rule=rule.value if labels else None, foreground=foreground,
        voxel_size=plan.voxel_size, voxel_size_from=plan.voxel_size_from, offset=plan.offset, chunks=plan.chunks, notes=notes,
    )


def _label_notes(stats: _Stats, rule: LabelRule, foreground: float | None) -> list[str]:
    notes = []
    if foreground == 0.0:
        if rule is LabelRule.HALF and stats.hi <= 127:
            notes.append("no voxel is above 127, so the mask is empty: these look like 0/1 labels; use --rule nonzero")
        else:
            notes.append("the mask is empty (no foreground voxel); check that this is the right label stack")
    values = stats.values
    if rule is LabelRule.NONZERO and (values is None or not set(values) <= {0, 1, 255, True, False}):
        shown = f"{len(values)} distinct values" if values is not None else f"more than {MAX_VALUES} distinct values"
        notes.append(f"the input holds {shown}: every nonzero value became foreground (right for instance ids); "
                     "for antialiased 0/255 masks use --rule half")
    return notes


@contextmanager
def staged(final: Path) -> Iterator[Path]:
    """Yield a hidden path beside ``final`` to write to; on success move it to ``final`` (replacing it).

    On any error (or Ctrl-C) the hidden folder is removed and ``final`` is left as it was.
    """
    final = Path(final)
    tmp_dir = final.parent / f".{final.name}.partial-{os.getpid()}"
    if tmp_dir.exists():
        shutil.rmtree(tmp_dir)
    tmp = tmp_dir / final.name
    parent_existed = final.parent.exists()
    done = False
    try:
        yield tmp
        move_into_place(tmp, final)  # an earlier output is set aside, and deleted once this one is in place
        done = True
    finally:
        if tmp_dir.exists():
            shutil.rmtree(tmp_dir)
        if not done and not parent_existed and final.parent.exists():
            # a zarr store created only to hold the failed output (``new.zarr/raw``): remove it too
            if {p.name for p in final.parent.iterdir()} <= {"zarr.json"}:
                shutil.rmtree(final.parent)
