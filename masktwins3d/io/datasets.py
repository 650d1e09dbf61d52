"""Dataset descriptors: ``volumes/<name>.yaml`` says where a public EM dataset's volumes are.

A descriptor names files relative to a *data root* (the folder you downloaded the dataset to),
the voxel size in nm (ZYX, or null when it is not known: then ``--voxel-size`` is required), a
citation and licence, and its splits: each split has a ``raw`` image volume, optional ``labels``
(name -> label volume) and optional ``points`` (WASPSYN point files). A volume is either a spec
string (``file.h5:/key``, ``stack.tif``, ``folder``) or a mapping::

    path: EM30-H-im/im          # file, folder or file.h5:/key, relative to the data root
    pattern: "im*.png"          # folders only: glob of the section files (default: all .png/.tif)
    sections: [400, 500]        # z range [start, stop) of the stack (default: all)
    rule: nonzero               # labels only: nonzero (> 0, default) or half (> 127)

Unknown keys are errors. ``load_dataset("vnc3", data_root="../shared/data")`` gives a
:class:`Dataset`; ``dataset.split("stack1").raw.open_stack()`` opens the raw stack for
:func:`~masktwins3d.io.convert.convert_stack`, ``.open()`` opens it as a :class:`~masktwins3d.io.Volume`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np
import yaml

from ..errors import UserError
from .convert import ConvertSummary, LabelRule, parse_rule, plan_conversion, write_conversion
from .hdf5_io import split_hdf5_spec
from .stacks import SectionStack, open_stack
from .volume import Volume, check_voxel_size

DESCRIPTOR_DIR = Path(__file__).resolve().parents[2] / "volumes"
"""Where the descriptors live: the repository's ``volumes/`` folder."""

TOP_KEYS = {"name", "title", "citation", "licence", "url", "voxel_size", "voxel_size_note", "splits"}
SPLIT_KEYS = {"raw", "labels", "points", "note"}
VOLUME_KEYS = {"path", "pattern", "sections", "rule"}


@dataclass(frozen=True)
class DatasetVolume:
    """One volume of a dataset split.

    Args:
        name: "raw" or the label's name ("mito", "synapse").
        path: file, folder or ``file.h5:/key``; relative to the data root until resolved.
        labels: whether it is a label volume.
        voxel_size: nm, ZYX, from the descriptor; None when not known.
        pattern: glob of the section files in a folder (default None: all .png/.tif/.tiff).
        sections: ``(start, stop)`` z range (default None: all sections).
        rule: label rule (labels only; default nonzero).
        where: the descriptor and key, for messages.
    """

    name: str
    path: str
    labels: bool = False
    voxel_size: tuple[float, float, float] | None = None
    pattern: str | None = None
    sections: tuple[int, int] | None = None
    rule: LabelRule = LabelRule.NONZERO
    where: str = ""

    def exists(self) -> bool:
        """Whether the file or folder is there (the HDF5 key is not checked)."""
        hdf5 = split_hdf5_spec(self.path)
        return (hdf5[0] if hdf5 is not None else Path(self.path)).exists()

    def open_stack(self) -> SectionStack:
        """The volume as a :class:`SectionStack` (section by section; pattern and range applied)."""
        return open_stack(self.path, labels=self.labels, pattern=self.pattern, sections=self.sections)

    def open(self) -> Volume:
        """The volume as a read-only :class:`Volume` with the descriptor's voxel size (when it has one).

        Palette and RGB sections are read as :func:`open_stack` reads them (label indices, channel 0).
        """
        stack = self.open_stack()
        vs = stack.voxel_size or self.voxel_size or (1.0, 1.0, 1.0)
        return Volume(_StackSource(stack), path=self.path, axes="zyx", voxel_size=vs,
                      offset=stack.offset or (0, 0, 0), closer=stack.close)


class _StackSource:
    """Array source over a :class:`SectionStack` (reads the sections an index touches)."""

    def __init__(self, stack: SectionStack):
        self._stack = stack
        self.shape, self.dtype = stack.shape, stack.dtype
        self.chunks = (1, *stack.shape[1:])

    def __getitem__(self, key: tuple) -> np.ndarray:
        z, yx = key[0], key[1:]
        if isinstance(z, int):
            return self._stack.read(z)[yx]
        return np.stack([self._stack.read(i)[yx] for i in range(z.start, z.stop, z.step)])


@dataclass(frozen=True)
class Split:
    """One split of a dataset. Args: name; raw: image volume (None: not recorded in the descriptor);
    labels: name -> label volume; points: point files (paths); note: free text."""

    name: str
    raw: DatasetVolume | None
    labels: dict[str, DatasetVolume] = field(default_factory=dict)
    points: tuple[str, ...] = ()
    note: str = ""

    def volumes(self) -> dict[str, DatasetVolume]:
        """``raw`` and the labels, by name (``raw`` first)."""
        return ({"raw": self.raw} if self.raw is not None else {}) | dict(self.labels)


@dataclass(frozen=True)
class Dataset:
    """A loaded descriptor. Args: name; title; citation; licence; url; voxel_size (nm, ZYX, or None);
    voxel_size_note; splits by name; descriptor: the YAML file; data_root: folder the paths are under
    (None: paths left relative)."""

    name: str
    title: str
    citation: str
    licence: str
    url: str
    voxel_size: tuple[float, float, float] | None
    voxel_size_note: str
    splits: dict[str, Split]
    descriptor: Path
    data_root: Path | None = None

    def split(self, name: str) -> Split:
        """The split called ``name``, or a one-line UserError listing the splits."""
        if name not in self.splits:
            raise UserError(f"dataset {self.name} has no split {name!r}; its splits: {', '.join(self.splits)}")
        return self.splits[name]


def list_datasets(folder: Path | None = None) -> list[str]:
    """Names of the descriptors in ``folder`` (default :data:`DESCRIPTOR_DIR`), sorted."""
    folder = Path(folder) if folder is not None else DESCRIPTOR_DIR
    return sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []


def load_dataset(name: str, data_root: str | Path | None = None, *, folder: Path | None = None) -> Dataset:
    """Load a descriptor by name (or a path to a ``.yaml`` file) and resolve its paths under ``data_root``.

    Args:
        name: dataset name (``vnc3``, ``cdeep3m``, ...) or a descriptor file path.
        data_root: folder holding the dataset's files (default None: paths stay relative, nothing is checked).
        folder: where named descriptors are looked up (default :data:`DESCRIPTOR_DIR`).

    Raises:
        UserError: unknown name (the message lists the known ones), missing data root, bad descriptor.
    """
    folder = Path(folder) if folder is not None else DESCRIPTOR_DIR
    path = Path(name)
    if path.suffix.lower() not in (".yaml", ".yml"):
        path = folder / f"{name}.yaml"
        if not path.is_file():
            known = ", ".join(list_datasets(folder)) or "none"
            raise UserError(f"unknown dataset {name!r}; known datasets: {known} (descriptors in {folder})")
    elif not path.is_file():
        raise UserError(f"dataset descriptor {path} does not exist; check the path")
    root = None
    if data_root is not None:
        root = Path(data_root)
        if not root.is_dir():
            raise UserError(f"data root {root} is not a folder; pass --data-root with the folder that holds the {path.stem} files")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise UserError(f"dataset descriptor {path} is not valid YAML ({str(exc).splitlines()[0]}); fix its syntax") from None
    return parse_descriptor(raw, path, root)


def parse_descriptor(raw: Any, path: Path, root: Path | None) -> Dataset:
    """Validate a descriptor's content (unknown keys are errors) into a :class:`Dataset`."""
    where = str(path)
    _known(raw, TOP_KEYS, where)
    name = str(raw.get("name") or path.stem)
    vs = raw.get("voxel_size")
    voxel_size = check_voxel_size(vs, f"{where} voxel_size") if vs is not None else None
    splits_raw = raw.get("splits")
    if not isinstance(splits_raw, Mapping) or not splits_raw:
        raise UserError(f"{where}: 'splits' must map split names to their volumes; see volumes/vnc3.yaml")
    splits = {}
    for split_name, entry in splits_raw.items():
        sw = f"{where} splits.{split_name}"
        _known(entry, SPLIT_KEYS, sw)
        raw_vol = entry.get("raw")
        labels_raw = entry.get("labels") or {}
        if not isinstance(labels_raw, Mapping):
            raise UserError(f"{sw}.labels must map label names to volumes, e.g. mito: file.h5:/mito")
        points = entry.get("points") or []
        points = [points] if isinstance(points, str) else list(points)
        splits[str(split_name)] = Split(
            name=str(split_name),
            raw=_volume("raw", raw_vol, False, voxel_size, root, f"{sw}.raw") if raw_vol is not None else None,
            labels={str(k): _volume(str(k), v, True, voxel_size, root, f"{sw}.labels.{k}") for k, v in labels_raw.items()},
            points=tuple(_resolve(str(p), root) for p in points),
            note=str(entry.get("note") or ""),
        )
    return Dataset(
        name=name, title=str(raw.get("title") or ""), citation=str(raw.get("citation") or ""),
        licence=str(raw.get("licence") or ""), url=str(raw.get("url") or ""), voxel_size=voxel_size,
        voxel_size_note=str(raw.get("voxel_size_note") or ""), splits=splits, descriptor=path, data_root=root,
    )


def _known(entry: Any, allowed: set[str], where: str) -> None:
    if not isinstance(entry, Mapping):
        raise UserError(f"{where} must be a mapping of keys ({', '.join(sorted(allowed))}); fix the descriptor")
    unknown = sorted(set(map(str, entry)) - allowed)
    if unknown:
        raise UserError(f"{where}: unknown key {unknown[0]!r}; allowed keys: {', '.join(sorted(allowed))}")


def _resolve(path: str, root: Path | None) -> str:
    return str(root / path) if root is not None and not Path(path).is_absolute() else path


def _volume(name: str, entry: Any, labels: bool, voxel_size, root: Path | None, where: str) -> DatasetVolume:
    if isinstance(entry, str):
        entry = {"path": entry}
    _known(entry, VOLUME_KEYS, where)
    if not entry.get("path"):
        raise UserError(f"{where} has no 'path'; give the file, folder or file.h5:/key relative to the data root")
    sections = entry.get("sections")
    if sections is not None:
        if not (isinstance(sections, (list, tuple)) and len(sections) == 2 and all(isinstance(v, int) for v in sections)
                and 0 <= sections[0] < sections[1]):
            raise UserError(f"{where}.sections is {sections!r}; give [start, stop) with 0 <= start < stop, e.g. [0, 400]")
        sections = (int(sections[0]), int(sections[1]))
    if "rule" in entry and not labels:
        raise UserError(f"{where}: 'rule' applies to label volumes only; remove it")
    return DatasetVolume(
        name=name, path=_resolve(str(entry["path"]), root), labels=labels, voxel_size=voxel_size,
        pattern=entry.get("pattern"), sections=sections, rule=parse_rule(entry.get("rule", "nonzero")), where=where,
    )


def convert_split(
    dataset: Dataset,
    split: str,
    output: str | Path,
    *,
    names: Sequence[str] | None = None,
    voxel_size: Sequence[float] | None = None,
    offset: Sequence[int] | None = None,
    chunks: Sequence[int] | None = None,
    overwrite: bool = False,
    progress: bool = False,
) -> Iterator[tuple[str, ConvertSummary]]:
    """Convert the volumes of one split to ``output/<name>`` (OME-Zarr each), yielding each summary.

    Every volume is opened and checked (present, same shape as the others, voxel size known,
    outputs free) before the first one is written. Labels use the descriptor's rule.

    Args:
        dataset: from :func:`load_dataset` with a data root.
        split: split name.
        output: zarr store to write into, e.g. ``volumes/vnc3.zarr`` (``raw``, ``mito``... inside).
        names: volumes to convert (default: all of the split, raw first).
        voxel_size: nm, ZYX (default: the input's metadata, else the descriptor's).
        offset: voxels, ZYX (default: the input's metadata, else 0).
        chunks: output chunks, ZYX voxels (default 1 x 256 x 256).
        overwrite: replace existing outputs (default False: refuse).
        progress: tqdm bars.
    """
    if dataset.data_root is None:
        raise UserError(f"dataset {dataset.name} was loaded without a data root; pass --data-root with the folder of its files")
    part = dataset.split(split)
    volumes = part.volumes()
    if part.raw is None:
        raise UserError(f"dataset {dataset.name} split {split} has no raw volume recorded in {dataset.descriptor}; add its paths there first")
    names = list(names) if names else list(volumes)
    for name in names:
        if name not in volumes:
            raise UserError(f"dataset {dataset.name} split {split} has no volume {name!r}; its volumes: {', '.join(volumes)}")
    source = f"dataset descriptor {dataset.descriptor.name}"
    stacks: dict[str, SectionStack] = {}
    try:
        plans = {}
        for name in names:
            vol = volumes[name]
            if not vol.exists():
                raise UserError(f"{vol.path} ({dataset.name} {split} {name}) does not exist; check --data-root or {dataset.descriptor}")
            stacks[name] = stack = vol.open_stack()
            first = stacks[names[0]]
            if stack.shape != first.shape:
                raise UserError(f"{dataset.name} {split}: {name} {vol.path} is {stack.shape} but {names[0]} is {first.shape}; fix {dataset.descriptor}")
            if voxel_size is None and stack.voxel_size is None and dataset.voxel_size is None:
                raise UserError(f"dataset {dataset.name} has no voxel size ({dataset.voxel_size_note or 'not known'}); pass --voxel-size Z,Y,X in nm")
            plans[name] = plan_conversion(
                stack, f"{str(output).rstrip('/')}/{name}", labels=vol.labels, voxel_size=voxel_size, offset=offset,
                default_voxel_size=dataset.voxel_size, default_voxel_size_from=source, like=None, chunks=chunks, overwrite=overwrite,
            )
        for name in names:
            vol = volumes[name]
            with stacks.pop(name) as stack:
                yield name, write_conversion(stack, plans[name], labels=vol.labels, rule=vol.rule, progress=progress)
    finally:
        for stack in stacks.values():
            stack.close()
