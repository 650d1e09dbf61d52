"""Blockwise post-processing: stitching numerics by hand, then blockwise == whole volume for mito
instances and synapse points (random volumes, many block shapes), a 2-worker cluster, and the CLI."""

import warnings

import h5py
import numpy as np
import pytest
from scipy import ndimage

from masktwins3d.errors import UserError
from masktwins3d.geometry import Roi
from masktwins3d.io import create_volume, open_volume
from masktwins3d.parallel import block_chunks, block_grid
from masktwins3d.postprocess.blockwise import (
    CHUNK_CAP,
    blockwise_instances,
    blockwise_points,
    parse_block,
    scheduler_session,
    stitch,
)
from masktwins3d.postprocess.mito import mask_to_instances, probability_to_instances
from masktwins3d.postprocess.stitch import label_block, merge_table, neighbour_directions, resolve, touching_pairs
from masktwins3d.postprocess.synapse import DroppedPostsWarning, probabilities_to_points

from cli_helpers import assert_user_error, run_cli


# ---- stitching numerics --------------------------------------------------------------------------


def pieces_of(mask, block_shape, connectivity):
    """Label every block of a mask and return the pieces keyed by block index."""
    out = {}
    for b in block_grid(Roi((0, 0, 0), mask.shape), block_shape):
        _, comps = label_block(mask[b.write_roi.to_slices()], connectivity, b.index, b.write_roi.offset, mask.shape)
        out[b.index] = comps
    return out


def stitched_count(mask, block_shape, connectivity):
    table, _ = stitch(pieces_of(mask, block_shape, connectivity), connectivity)
    return len(table.counts)


def test_label_block_describes_pieces_in_global_coordinates():
    mask = np.zeros((4, 4, 4), bool)
    mask[2, 3, 1:3] = True
    mask[3, 2, 3] = True
    _, comps = label_block(mask[2:4, 2:4, 0:4], 26, (1, 1, 0), (2, 2, 0), mask.shape)
    assert comps.index == (1, 1, 0) and comps.counts.tolist() == [3]  # (2,3,2) and (3,2,3) touch at a corner
    assert comps.first.tolist() == [np.ravel_multi_index((2, 3, 1), mask.shape)]
    assert comps.sums.tolist() == [[2 + 2 + 3, 3 + 3 + 2, 1 + 2 + 3]]
    assert [f.shape for f in comps.faces] == [(2, 4), (2, 4), (2, 4), (2, 4), (2, 2), (2, 2)]


def test_neighbour_directions_are_half_of_the_26():
    dirs = neighbour_directions()
    assert len(dirs) == 13 and len(set(dirs) | {tuple(-d for d in x) for x in dirs}) == 26


def test_face_crossing_component_joins_once():
    mask = np.zeros((4, 3, 3), bool)
    mask[1:3, 1, 1] = True  # crosses the z face between blocks of 2
    for conn in (6, 18, 26):
        pieces = pieces_of(mask, (2, 3, 3), conn)
        pairs = touching_pairs(pieces[(0, 0, 0)].faces, pieces[(1, 0, 0)].faces, (1, 0, 0), conn)
        assert pairs.tolist() == [[1, 1]]
        assert stitched_count(mask, (2, 3, 3), conn) == 1


def test_face_diagonal_needs_18():
    mask = np.zeros((4, 3, 3), bool)
    mask[1, 1, 0] = mask[2, 1, 1] = True  # across the z face, shifted in x
    assert [stitched_count(mask, (2, 3, 3), c) for c in (6, 18, 26)] == [2, 1, 1]


def test_edge_only_needs_18_corner_only_needs_26():
    edge = np.zeros((4, 4, 1), bool)
    edge[1, 1, 0] = edge[2, 2, 0] = True  # blocks (0,0,0) and (1,1,0) share only an edge
    assert [stitched_count(edge, (2, 2, 1), c) for c in (6, 18, 26)] == [2, 1, 1]
    corner = np.zeros((4, 4, 4), bool)
    corner[1, 1, 1] = corner[2, 2, 2] = True  # blocks (0,0,0) and (1,1,1) share only a corner
    assert [stitched_count(corner, (2, 2, 2), c) for c in (6, 18, 26)] == [2, 2, 1]
    anti = np.zeros((4, 4, 4), bool)
    anti[1, 2, 1] = anti[2, 1, 2] = True  # a corner with a negative step along y
    assert [stitched_count(anti, (2, 2, 2), c) for c in (6, 18, 26)] == [2, 2, 1]


def test_u_shape_meets_itself_in_a_later_block():
    mask = np.zeros((1, 6, 6), bool)
    mask[0, 0:5, 0] = mask[0, 0:5, 5] = True  # two arms, in blocks (0,0,0) and (0,0,1)
    mask[0, 5, :] = True  # joined at the bottom, in blocks (0,1,0) and (0,1,1)
    mask[0, 0, 4] = True  # touches the right arm
    for shape in ((1, 3, 3), (1, 1, 1), (1, 5, 2)):
        for conn in (6, 26):
            table, _ = stitch(pieces_of(mask, shape, conn), conn)
            assert table.counts.tolist() == [int(mask.sum())] and table.first.tolist() == [0]
    sep = mask.copy()
    sep[0, 0, 4] = False
    sep[0, 2, 2:4] = True  # inside the U, across the x block boundary, first voxel after the U's
    table, _ = stitch(pieces_of(sep, (1, 3, 3), 6), 6)
    assert mask_to_instances(sep, 6).max() == 2
    assert table.counts.tolist() == [int(sep.sum()) - 2, 2] and table.first.tolist() == [0, 2 * 6 + 2]


def test_resolve_and_merge_table_use_global_sizes_and_first_voxels():
    classes = resolve(5, np.array([[0, 3], [3, 4]]))
    assert classes[0] == classes[3] == classes[4] and len({classes[0], classes[1], classes[2]}) == 3
    counts = np.array([2, 1, 5, 2, 2])
    first = np.array([40, 7, 3, 50, 12])
    sums = np.arange(15).reshape(5, 3)
    table = merge_table(classes, counts, first, sums, min_size=3)
    # classes: {0,3,4} size 6 first 12; {1} size 1 (dropped); {2} size 5 first 3
    assert table.node_label.tolist() == [2, 0, 1, 2, 2]
    assert table.counts.tolist() == [5, 6] and table.first.tolist() == [3, 12]
    assert table.sums.tolist() == [sums[2].tolist(), (sums[0] + sums[3] + sums[4]).tolist()]
    assert resolve(0, np.zeros((0, 2))).shape == (0,)
    empty = merge_table(np.zeros(0, np.int64), np.zeros(0), np.zeros(0), np.zeros((0, 3)))
    assert empty.counts.shape == (0,) and empty.centroids().shape == (0, 3)


# ---- blockwise == whole volume -------------------------------------------------------------------------

BLOCKS = [(1, 4, 4), (3, 1, 5), (2, 3, 1), (4, 5, 6), (7, 7, 7), (64, 64, 64)]


@pytest.mark.parametrize("connectivity", [6, 18, 26])
def test_blockwise_instances_equal_whole_volume(tmp_path, connectivity):
    rng = np.random.default_rng(connectivity)
    prob = ndimage.gaussian_filter(rng.random((9, 10, 11)), 0.7).astype(np.float32)
    prob = (prob - prob.min()) / (prob.max() - prob.min())
    for i, block in enumerate(BLOCKS):
        t = (0.6, 0.65, 0.7)[i % 3]
        ref = probability_to_instances(prob, t, connectivity)
        got = blockwise_instances(prob, tmp_path / f"l{i}.zarr", threshold=t, connectivity=connectivity, block_shape=block, progress=False,
                                  whole=False)
        assert ref.max() >= 5
        assert got.count == ref.max() and np.array_equal(got.volume[:], ref), block


def test_one_voxel_blocks_equal_whole_volume(tmp_path):
    rng = np.random.default_rng(4)
    prob = rng.random((4, 5, 6)).astype(np.float32)
    for connectivity in (6, 18, 26):
        got = blockwise_instances(prob, tmp_path / f"v{connectivity}.zarr", threshold=0.55, connectivity=connectivity,
                                  block_shape=(1, 1, 1), progress=False, whole=False)
        assert np.array_equal(got.volume[:], probability_to_instances(prob, 0.55, connectivity))


def test_blockwise_min_size_uses_global_sizes(tmp_path):
    rng = np.random.default_rng(3)
    mask = rng.random((8, 9, 10)) < 0.35
    prob = mask.astype(np.float32)
    for min_size in (2, 5, 20):
        ref = mask_to_instances(mask, 26, min_size)
        got = blockwise_instances(prob, tmp_path / f"m{min_size}.zarr", min_size=min_size, block_shape=(2, 3, 4), progress=False, whole=False)
        assert np.array_equal(got.volume[:], ref)
    # a 6-voxel rod cut into three 2-voxel pieces survives min_size 6
    rod = np.zeros((6, 1, 1), np.float32)
    rod[:, 0, 0] = 1
    got = blockwise_instances(rod, tmp_path / "rod.zarr", min_size=6, block_shape=(2, 1, 1), progress=False, whole=False)
    assert got.count == 1 and (got.volume[:] == 1).all()


SCIPY_RANK = {6: 1, 18: 2, 26: 3}


@pytest.mark.parametrize("whole", [True, False])
@pytest.mark.parametrize("connectivity", [6, 18, 26])
def test_instances_are_identical_to_scipy_label(tmp_path, connectivity, whole):
    """Same labels, same numbering as scipy.ndimage.label (raster order of first voxels), in one pass and stitched."""
    rng = np.random.default_rng(connectivity + 10 * whole)
    for i, shape in enumerate([(9, 10, 11), (16, 20, 12), (1, 30, 30)]):
        prob = ndimage.gaussian_filter(rng.random(shape), 0.8).astype(np.float32)
        prob = (prob - prob.min()) / (prob.max() - prob.min())
        ref, n = ndimage.label(prob >= 0.6, structure=ndimage.generate_binary_structure(3, SCIPY_RANK[connectivity]))
        got = blockwise_instances(prob, tmp_path / f"s{i}.zarr", threshold=0.6, connectivity=connectivity, block_shape=(4, 5, 6),
                                  progress=False, whole=whole)
        assert n >= 2 and got.count == n and got.volume.dtype == np.uint32
        assert np.array_equal(got.volume[:], ref), shape


def test_small_volumes_take_one_pass(tmp_path, monkeypatch):
    import masktwins3d.postprocess.blockwise as bw

    prob = np.random.default_rng(2).random((6, 7, 8)).astype(np.float32)
    ref = probability_to_instances(prob)
    monkeypatch.setattr(bw, "label_blocks", lambda *a, **k: pytest.fail("a small volume in this process is not cut into blocks"))
    assert np.array_equal(blockwise_instances(prob, tmp_path / "a.zarr", block_shape=(2, 3, 4), progress=False).volume[:], ref)
    monkeypatch.setattr(bw, "WHOLE_VOLUME_VOXELS", prob.size - 1)  # just over the limit: blocks
    with pytest.raises(pytest.fail.Exception):
        blockwise_instances(prob, tmp_path / "b.zarr", block_shape=(2, 3, 4), progress=False)


@pytest.mark.parametrize("whole", [True, False])
def test_blockwise_instances_from_zarr_keep_geometry_and_chunks(tmp_path, whole):
    rng = np.random.default_rng(5)
    p = rng.random((2, 6, 20, 20)).astype(np.float32)
    src = create_volume(tmp_path / "prob.zarr", p.shape, np.float32, voxel_size=(30, 8, 8), offset=(10, 5, 0), axes="czyx")
    src[:] = p
    got = blockwise_instances(tmp_path / "prob.zarr", tmp_path / "mito.zarr", channel=1, threshold=0.7, block_shape=(4, 8, 8), progress=False,
                              whole=whole)
    out = open_volume(tmp_path / "mito.zarr")
    assert out.voxel_size == (30.0, 8.0, 8.0) and out.offset == (10, 5, 0) and out.dtype == np.uint32
    assert out.chunks == (4, 8, 8)
    assert np.array_equal(out[:], probability_to_instances(p[1], 0.7))
    assert got.count == int(out[:].max())
    with pytest.raises(UserError, match="--overwrite"):
        blockwise_instances(tmp_path / "prob.zarr", tmp_path / "mito.zarr", channel=1, progress=False, whole=whole)
    # a bad probability found on the way leaves the earlier labels as they were
    src[1, 3, 4, 5] = np.nan
    with pytest.raises(UserError, match="NaN"):
        blockwise_instances(tmp_path / "prob.zarr", tmp_path / "mito.zarr", channel=1, threshold=0.7, block_shape=(4, 8, 8),
                            progress=False, whole=whole, overwrite=True)
    assert np.array_equal(open_volume(tmp_path / "mito.zarr")[:], probability_to_instances(p[1], 0.7))
    assert sorted(q.name for q in tmp_path.iterdir()) == ["mito.zarr", "prob.zarr"]  # no stage left behind
    assert block_chunks((64, 512, 512), (100, 4096, 4096), CHUNK_CAP) == (64, 256, 256)
    assert block_chunks((64, 257, 100), (10, 4096, 4096), CHUNK_CAP) == (10, 257, 100)


def blob_map(rng, shape, n=(6, 12), sigma=1.3):
    """(2, Z, Y, X) float32 map of blurred blobs, peaks near 1."""
    prob = np.zeros((2, *shape), np.float32)
    for c in range(2):
        x = np.zeros(shape, np.float32)
        x[tuple(rng.integers(0, shape, (n[c], 3)).T)] = 1
        x = ndimage.gaussian_filter(x, sigma)
        prob[c] = np.clip(x / max(x.max(), 1e-9) * rng.uniform(1.05, 1.3), 0, 1)
    return prob


def same_points(a, b):
    return np.array_equal(a.pre, b.pre) and np.array_equal(a.post, b.post)


def test_blockwise_points_equal_whole_map():
    rng = np.random.default_rng(7)
    for trial in range(6):
        shape = tuple(int(s) for s in rng.integers(8, 17, 3))
        prob = blob_map(rng, shape)
        if trial == 1:
            prob = (prob * 255).astype(np.uint8)
        ref = probabilities_to_points(prob)
        assert len(ref.pre) and len(ref.post)
        for block in ((3, 4, 5), (1, 7, 7), (5, 2, 3), (shape[0], 6, shape[2])):
            got = blockwise_points(prob, block_shape=block, progress=False)
            assert same_points(got, ref), (trial, block)
        odd = blockwise_points(prob, thresholds=(0.5, 0.3), min_pre_voxels=4, block_shape=(4, 4, 4), progress=False)
        assert same_points(odd, probabilities_to_points(prob, (0.5, 0.3), 4))


def test_blockwise_points_drop_posts_without_pre_and_reject_bad_maps():
    prob = np.zeros((2, 4, 4, 4), np.float32)
    prob[1, 1, 1, 1] = 0.9
    with pytest.warns(DroppedPostsWarning):
        got = blockwise_points(prob, block_shape=(2, 2, 2), progress=False)
    assert len(got.pre) == 0 and len(got.post) == 0
    with pytest.raises(UserError, match="2, Z, Y, X"):
        blockwise_points(np.zeros((3, 4, 4, 4), np.float32), progress=False)
    with pytest.raises(UserError, match="logits"):
        blockwise_points(prob * 5, block_shape=(2, 2, 2), progress=False)
    with pytest.raises(UserError, match="--block"):
        parse_block("4,4")


def test_two_worker_cluster_equals_in_process(tmp_path):
    rng = np.random.default_rng(11)
    prob = blob_map(rng, (12, 16, 16))
    src = create_volume(tmp_path / "prob.zarr", prob.shape, np.float32, axes="czyx")
    src[:] = prob
    vol = open_volume(tmp_path / "prob.zarr")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # dask's own start-up chatter
        with scheduler_session("local:2") as session:
            inst = blockwise_instances(vol, tmp_path / "c.zarr", channel=0, threshold=0.3, block_shape=(4, 8, 8), scheduler=session, progress=False)
            pts = blockwise_points(vol, block_shape=(4, 8, 8), scheduler=session, progress=False)
    assert np.array_equal(inst.volume[:], probability_to_instances(prob[0], 0.3))
    assert same_points(pts, probabilities_to_points(prob))


# ---- CLI ----------------------------------------------------------------------------------------------


def test_cli_mito_and_blockwise_synapse(capsys, tmp_path):
    rng = np.random.default_rng(2)
    prob = blob_map(rng, (10, 14, 14))
    vol = create_volume(tmp_path / "p.zarr", prob.shape, np.float32, voxel_size=(8, 8, 8), axes="czyx")
    vol[:] = prob
    code, out, err = run_cli(capsys, "postprocess", "mito", "--prob", tmp_path / "p.zarr", "--out", tmp_path / "m.zarr",
                             "--channel", 1, "--threshold", 0.4, "--min-size", 3, "--block", "4,5,6", "--connectivity", 18)
    ref = probability_to_instances(prob[1], 0.4, 18, 3)
    assert code == 0, err
    assert f"{ref.max()} mitochondria instances" in out
    assert np.array_equal(open_volume(tmp_path / "m.zarr")[:], ref)
    code, out, err = run_cli(capsys, "postprocess", "synapse", "--prob", tmp_path / "p.zarr", "--out", tmp_path / "b.h5", "--block", "3,5,4")
    assert code == 0, err
    code, out, err = run_cli(capsys, "postprocess", "synapse", "--prob", tmp_path / "p.zarr", "--out", tmp_path / "w.h5")
    assert code == 0, err
    with h5py.File(tmp_path / "b.h5") as b, h5py.File(tmp_path / "w.h5") as w:
        assert np.array_equal(b["pre"][()], w["pre"][()]) and np.array_equal(b["post"][()], w["post"][()])
        assert len(w["pre"]) > 0


def test_cli_mito_bad_inputs(capsys, tmp_path):
    one = create_volume(tmp_path / "one.zarr", (4, 6, 6), np.float32)
    one[:] = 0.7
    two = create_volume(tmp_path / "two.zarr", (2, 4, 6, 6), np.float32, axes="czyx")
    ints = create_volume(tmp_path / "ints.zarr", (4, 6, 6), np.int32)
    (tmp_path / "taken.zarr").mkdir()
    (tmp_path / "taken.zarr" / "zarr.json").write_text("{}")
    base = ["postprocess", "mito", "--out", tmp_path / "o.zarr"]
    cases = [
        (["--prob", tmp_path / "missing.zarr"], ["missing.zarr", "does not exist"]),
        (["--prob", tmp_path / "one.zarr", "--threshold", "high"], ["--threshold", "'high'"]),
        (["--prob", tmp_path / "one.zarr", "--threshold", "0"], ["--threshold", "(0, 1]"]),
        (["--prob", tmp_path / "one.zarr", "--connectivity", "8"], ["--connectivity", "6 (faces)"]),
        (["--prob", tmp_path / "one.zarr", "--min-size", "0"], ["--min-size", ">= 1"]),
        (["--prob", tmp_path / "one.zarr", "--block", "4,0,4"], ["--block", "Z,Y,X"]),
        (["--prob", tmp_path / "one.zarr", "--scheduler", "cluster"], ["--scheduler", "local:N"]),
        (["--prob", tmp_path / "one.zarr", "--channel", "1"], ["no channel axis", "drop --channel"]),
        (["--prob", tmp_path / "two.zarr"], ["2 channels", "--channel"]),
        (["--prob", tmp_path / "two.zarr", "--channel", "2"], ["--channel 2", "2 channels"]),
        (["--prob", tmp_path / "ints.zarr"], ["int32", "uint8"]),
    ]
    for extra, needles in cases:
        code, _, err = run_cli(capsys, *base, *extra)
        assert_user_error(code, err, *needles)
        assert not (tmp_path / "o.zarr").exists(), extra
    code, _, err = run_cli(capsys, "postprocess", "mito", "--prob", tmp_path / "one.zarr", "--out", tmp_path / "taken.zarr")
    assert_user_error(code, err, "taken.zarr", "--overwrite")
    code, _, err = run_cli(capsys, "postprocess", "mito", "--prob", tmp_path / "one.zarr", "--out", tmp_path / "one.zarr", "--overwrite")
    assert_user_error(code, err, "one.zarr", "another path")
    assert open_volume(tmp_path / "one.zarr")[0, 0, 0] == np.float32(0.7)
    code, _, err = run_cli(capsys, "postprocess", "synapse", "--prob", tmp_path / "two.zarr", "--out", tmp_path / "s.h5", "--block", "1,x,2")
    assert_user_error(code, err, "--block", "Z,Y,X")
    assert not (tmp_path / "s.h5").exists()


# ---- kill and resume -------------------------------------------------------------------------------


def _kill_after_blocks(args: list, manifest, at_least: int = 2) -> list:
    """Run ``masktwins3d ARGS`` in a subprocess, SIGKILL it once ``manifest`` lists ``at_least``
    finished blocks, and return the ids it lists."""
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    from masktwins3d.parallel import read_manifest

    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ, PYTHONPATH=str(root))
    proc = subprocess.Popen([sys.executable, "-m", "masktwins3d", *map(str, args)], cwd=root, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if len(read_manifest(manifest)["done"]) >= at_least:
                break
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.002)
    proc.send_signal(signal.SIGKILL)
    _, err = proc.communicate()
    assert proc.returncode == -signal.SIGKILL, err.decode()[-2000:]
    return read_manifest(manifest)["done"]


@pytest.fixture
def kill_prob(tmp_path):
    rng = np.random.default_rng(5)
    prob = ndimage.gaussian_filter(rng.random((2, 24, 96, 96)), (0, 1, 2, 2)).astype(np.float32)
    prob = (prob - prob.min()) / np.ptp(prob)
    vol = create_volume(tmp_path / "prob.zarr", prob.shape, np.float32, axes="czyx", voxel_size=(8, 8, 8))
    vol[...] = prob
    return tmp_path / "prob.zarr"


@pytest.mark.parametrize("verb", ["mito", "synapse"])
def test_sigkill_postprocess_then_resume_is_identical(tmp_path, kill_prob, capsys, verb):
    from masktwins3d.io.points import read_points

    block = "2,24,24"  # 12 x 4 x 4 = 192 blocks
    n_blocks = 12 * 4 * 4
    extra = ["--channel", "1"] if verb == "mito" else []
    out = tmp_path / ("labels.zarr" if verb == "mito" else "points.h5")
    ref = tmp_path / ("ref.zarr" if verb == "mito" else "ref.h5")
    base = ["postprocess", verb, "--prob", kill_prob, "--block", block, *extra]
    code, _, err = run_cli(capsys, *base, "--out", ref)
    assert code == 0, err
    stage = tmp_path / f".{out.name}.partial"
    done = _kill_after_blocks([*base, "--out", out], stage / "blocks.jsonl")
    labelled = [d for d in done if d.startswith("label:")]
    assert 2 <= len(done) and len(labelled) < n_blocks, "the run ended before it could be killed; make it slower"
    assert not out.exists() and len(list((stage / ".pieces").glob("*.npz"))) >= len(labelled)
    code, _, err = run_cli(capsys, *base, "--out", out)
    assert code == 2 and "pass --resume to finish it or --overwrite to start again" in err.strip().splitlines()[-1]
    code, _, err = run_cli(capsys, *base, "--out", out, "--resume")
    assert code == 0, err
    # the finished blocks are not labelled again
    assert f"blocks: {n_blocks - len(labelled)} of {n_blocks} blocks to label ({len(labelled)} already done)" in err
    assert not stage.exists()
    if verb == "mito":
        assert np.array_equal(open_volume(out)[...], open_volume(ref)[...]) and open_volume(ref)[...].max() > 1
        assert not (out / "blocks.jsonl").exists() and not (out / ".pieces").exists()
    else:
        got, want = read_points(out), read_points(ref)
        assert len(want.pre) > 0 and len(want.post) > 0
        assert np.array_equal(got.pre, want.pre) and np.array_equal(got.post, want.post) 


def test_resume_with_other_settings_is_refused_in_one_line(tmp_path, kill_prob, capsys):
    out = tmp_path / "labels.zarr"
    base = ["postprocess", "mito", "--prob", kill_prob, "--channel", "1", "--block", "2,24,24", "--out", out]
    done = _kill_after_blocks(base, tmp_path / ".labels.zarr.partial" / "blocks.jsonl")
    assert done
    code, _, err = run_cli(capsys, *base, "--threshold", "0.6", "--resume")
    assert code == 2 and "was written with other settings (threshold: 0.5 -> 0.6)" in err.strip().splitlines()[-1]
