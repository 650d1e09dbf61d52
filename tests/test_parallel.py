"""Block grid, manifest and the block runner (in-process and on a 2-worker dask LocalCluster)."""

import json

import numpy as np
import pytest

from masktwins3d.errors import UserError
from masktwins3d.geometry import Roi
from masktwins3d.parallel import Manifest, block_grid, parse_scheduler, read_manifest, run_blocks


def test_block_grid_tiles_without_overlap_and_clips_context():
    roi = Roi((10, 0, 5), (7, 9, 4))
    blocks = block_grid(roi, (3, 4, 4), context=(1, 2, 0))
    assert len(blocks) == 3 * 3 * 1
    cover = np.zeros(roi.shape, int)
    for b in blocks:
        cover[b.write_roi.to_slices(roi.offset)] += 1
        assert roi.contains(b.read_roi) and b.read_roi.contains(b.write_roi)
    assert (cover == 1).all()
    first, last = blocks[0], blocks[-1]
    assert first.id == "0-0-0" and first.write_roi == Roi((10, 0, 5), (3, 4, 4))
    assert first.read_roi == Roi((10, 0, 5), (4, 6, 4))  # clipped before, grown after
    assert last.write_roi == Roi((16, 8, 5), (1, 1, 4)) and last.read_roi == Roi((15, 6, 5), (2, 3, 4))


@pytest.mark.parametrize("shape, context", [((0, 4, 4), 0), ((4, 4), 0), ((4, 4, 4), -1)])
def test_block_grid_rejects_bad_shapes(shape, context):
    with pytest.raises(UserError):
        block_grid(Roi((0, 0, 0), (8, 8, 8)), shape, context)


def test_manifest_resume_and_refusal(tmp_path):
    path = tmp_path / "blocks.jsonl"
    m = Manifest(path, {"patch": [16, 16, 16], "dtype": "uint8"}, total=3)
    m.start()
    m.mark_done("0-0-0")
    m.mark_done("0-0-1")
    m.mark_done("0-0-1")  # recorded once
    lines = path.read_text().splitlines()
    assert json.loads(lines[0]) == {"format": "masktwins3d-blocks/2", "settings": {"patch": [16, 16, 16], "dtype": "uint8"}, "total": 3}
    assert lines[1:] == ['{"done": "0-0-0"}', '{"done": "0-0-1"}']
    saved = read_manifest(path)
    assert saved["done"] == ["0-0-0", "0-0-1"] and not saved["complete"]
    again = Manifest.resume(path, {"patch": (16, 16, 16), "dtype": "uint8"}, 3, fix="pass --overwrite")
    assert again.is_done("0-0-1") and not again.is_done("0-0-2")
    again.mark_done("0-0-2")
    assert path.read_text().splitlines()[-2:] == ['{"done": "0-0-2"}', '{"complete": true}']
    assert read_manifest(path)["complete"]
    with pytest.raises(UserError, match=r"dtype: 'uint8' -> 'float16'.*pass --overwrite"):
        Manifest.resume(path, {"patch": [16, 16, 16], "dtype": "float16"}, 3, fix="pass --overwrite")
    path.write_text("{not json")
    with pytest.raises(UserError, match="not a readable blockwise manifest"):
        Manifest.resume(path, {}, 3, fix="pass --overwrite")


def test_a_line_cut_off_by_a_kill_is_not_a_finished_block(tmp_path):
    path = tmp_path / "blocks.jsonl"
    m = Manifest(path, {"dtype": "uint8"}, total=4)
    m.start()
    m.mark_done("0-0-0")
    with open(path, "a") as f:
        f.write('{"done": "0-0')  # killed mid-write
    again = Manifest.resume(path, {"dtype": "uint8"}, 4, fix="pass --overwrite")
    assert again.done == {"0-0-0"}
    again.mark_done("0-0-1")  # starts on a line of its own
    assert read_manifest(path)["done"] == ["0-0-0", "0-0-1"]
    assert path.read_text().splitlines()[-1] == '{"done": "0-0-1"}'


def test_an_earlier_single_json_manifest_is_refused_in_one_line(tmp_path):
    (tmp_path / "blocks.json").write_text(json.dumps({"settings": {}, "done": ["0-0-0"]}))
    with pytest.raises(UserError, match=r"blocks.json was written by an earlier masktwins3d and cannot be resumed; pass --overwrite"):
        Manifest.resume(tmp_path / "blocks.jsonl", {}, 3, fix="pass --overwrite")


@pytest.mark.parametrize(
    "spec, kind, workers, address",
    [(None, "none", 0, ""), ("local:3", "local", 3, ""), ("10.0.0.5:8786", "address", 0, "tcp://10.0.0.5:8786"),
     ("tls://host:8786", "address", 0, "tls://host:8786")],
)
def test_parse_scheduler(spec, kind, workers, address):
    s = parse_scheduler(spec)
    assert (s.kind, s.workers, s.address) == (kind, workers, address)


@pytest.mark.parametrize("spec", ["local:0", "local:x", "cluster"])
def test_parse_scheduler_rejects(spec):
    with pytest.raises(UserError, match="--scheduler"):
        parse_scheduler(spec)


def _square(x):
    return x * x


def test_run_blocks_here_and_on_a_local_cluster():
    here, there = {}, {}
    run_blocks(_square, list(range(6)), None, on_done=here.__setitem__, progress=False)
    run_blocks(_square, list(range(6)), "local:2", on_done=there.__setitem__, progress=False)
    assert here == there == {i: i * i for i in range(6)}


def test_run_blocks_raises_a_worker_error_here():
    def fail(x):
        if x == 2:
            raise UserError("block 2 is bad")
        return x

    with pytest.raises(UserError, match="block 2 is bad"):
        run_blocks(fail, [1, 2, 3], None, progress=False)
