"""parallel.Task: a toy process over a small ROI, the done-check, the manifest and its refusals,
and the one block -> chunks rule."""

import json

import numpy as np
import pytest

from masktwins3d.errors import UserError
from masktwins3d.geometry import Roi
from masktwins3d.parallel import Manifest, Task, block_chunks, read_manifest


class Fill:
    """Toy process: write ``block.index`` sum + 1 into the block's write ROI of ``out``; count calls."""

    def __init__(self, out, roi):
        self.out, self.roi, self.calls = out, roi, []

    def __call__(self, block):
        self.calls.append(block.id)
        assert block.read_roi.contains(block.write_roi)
        self.out[block.write_roi.to_slices(self.roi.offset)] = sum(block.index) + 1
        return block.id


ROI = Roi((5, 0, 2), (5, 6, 7))


def test_every_block_is_done_and_recorded(tmp_path):
    out = np.zeros(ROI.shape, int)
    manifest = Manifest.open(tmp_path / "job" / "blocks.jsonl", {"value": 1}, 8, resuming=False, fix="start again")
    task = Task("fill", ROI, (3, 3, 4), Fill(out, ROI), context=1, manifest=manifest)
    assert len(task.blocks) == 2 * 2 * 2 and task.todo() == task.blocks
    reports, results = [], []
    assert task.run(progress=False, on_block=lambda d, n: reports.append((d, n)), on_result=lambda b, r: results.append(r)) == 8
    assert (out > 0).all() and reports == [(i, 8) for i in range(9)] and results == [b.id for b in task.blocks]
    assert all(task.is_done(b) and task.is_done(b) for b in task.blocks) and task.todo() == []
    saved = read_manifest(tmp_path / "job" / "blocks.jsonl")
    assert saved["complete"] and saved["done"] == [b.id for b in task.blocks]


def test_the_done_check_skips_finished_blocks_and_a_resume_finishes_the_rest(tmp_path):
    path = tmp_path / "blocks.jsonl"
    out = np.zeros(ROI.shape, int)
    first = Task("fill", ROI, (3, 3, 4), Fill(out, ROI), manifest=Manifest.open(path, {"value": 1}, 8, False, fix="start again"))

    def stop(done, total):
        if done == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        first.run(progress=False, on_block=stop)
    assert read_manifest(path)["done"] == [b.id for b in first.blocks[:3]]
    process = Fill(out, ROI)
    again = Task("fill", ROI, (3, 3, 4), process, manifest=Manifest.open(path, {"value": 1}, 8, True, fix="start again"))
    assert [b.id for b in again.todo()] == [b.id for b in again.blocks[3:]]
    assert again.run(progress=False) == 5 and process.calls == [b.id for b in again.blocks[3:]]
    assert read_manifest(path)["complete"] and again.run(progress=False) == 0


def test_a_resume_with_other_settings_is_refused_in_one_line(tmp_path):
    path = tmp_path / "blocks.jsonl"
    Task("fill", ROI, (3, 3, 4), Fill(np.zeros(ROI.shape, int), ROI), manifest=Manifest.open(path, {"value": 1}, 8, False, "x")).run(progress=False)
    with pytest.raises(UserError, match=r"other settings \(value: 1 -> 2\); rerun with the same settings, or pass --overwrite") as info:
        Manifest.open(path, {"value": 2}, 8, resuming=True, fix="pass --overwrite")
    assert "\n" not in str(info.value)


def test_tasks_sharing_a_manifest_keep_their_own_keys_and_payloads(tmp_path):
    path = tmp_path / "blocks.jsonl"
    manifest = Manifest.open(path, {}, 2 * 4, False, fix="x")
    seen = []
    first = Task("a", Roi((0, 0, 0), (2, 2, 2)), (1, 1, 2), lambda b: b.id, manifest=manifest, key="a:")
    second = Task("b", first.total_roi, (1, 1, 2), seen.append, manifest=manifest, key="b:", payload=lambda b: (b.id, "extra"))
    first.run(progress=False)
    assert second.todo() == second.blocks and second.run(progress=False) == 4
    assert seen == [(b.id, "extra") for b in second.blocks]
    assert [json.loads(line) for line in path.read_text().splitlines()[1:3]] == [{"done": "a:0-0-0"}, {"done": "a:0-1-0"}]
    assert read_manifest(path)["complete"]


def test_without_a_manifest_every_block_runs_every_time():
    calls = []
    task = Task("plain", Roi((0, 0, 0), (4, 4, 4)), (2, 4, 4), calls.append)
    assert task.run(progress=False) == 2 and task.run(progress=False) == 2 and len(calls) == 4


def test_block_chunks_is_one_rule_for_every_product():
    assert block_chunks((64, 512, 512), (100, 4096, 4096), (64, 256, 256)) == (64, 256, 256)
    assert block_chunks((4, 2048, 2048), (10, 4096, 4096), (1, 1024, 1024)) == (1, 1024, 1024)
    assert block_chunks((10, 12, 20), (20, 24, 30), (64, 256, 256)) == (10, 12, 20)
    assert block_chunks((64, 257, 100), (10, 4096, 4096), (64, 256, 256)) == (10, 257, 100)  # a prime edge: one chunk, not slivers
    assert block_chunks((2, 1000, 600), (5, 40, 52), (1, 1024, 1024)) == (1, 40, 52)  # cut to the volume first
