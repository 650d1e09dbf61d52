"""The WASPSYN scorer against hand-made cases, the official algorithm, and the standalone script."""

import itertools
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

from masktwins3d.errors import UserError
from masktwins3d.evaluate.synapse import MatchMode, match, pair_submission, score_submission, score_synapses
from masktwins3d.io.points import SynapsePoints, write_points_h5

ROOT = Path(__file__).resolve().parents[1]


def pts(pre, post=()):
    return SynapsePoints(np.asarray(pre, float).reshape(-1, 3), np.asarray(post, float).reshape(-1, 4))


def tp_fp_fn(d):
    return d["tp"], d["fp"], d["fn"]


# ---- hand-made cases ------------------------------------------------------------------------

def test_hungarian_then_radius_finds_fewer_matches_than_strict():
    # distances: a-x 10, a-y 14.5, b-x 0.5, b-y 10. Least total: a-y + b-x = 15 < a-x + b-y = 20,
    # and a-y is beyond 11, so the official rule keeps 1 match where 2 lie within the radius
    pred = pts([[0, 0, 0], [0, 0, 10.5]])
    gt = pts([[0, 0, 10], [0, 10, 10.5]])
    official = score_synapses(pred, gt)
    strict = score_synapses(pred, gt, mode="strict")
    assert tp_fp_fn(official["pre"]) == (1, 1, 1) and official["f1_pre"] == 0.5
    assert official["pre"]["mean_distance"] == 0.5
    assert tp_fp_fn(strict["pre"]) == (2, 0, 0) and strict["f1_pre"] == 1.0
    assert strict["pre"]["mean_distance"] == 10.0
    assert (official["mode"], strict["mode"]) == ("waspsyn", "strict")
    assert score_synapses(pred, gt, mode=MatchMode.STRICT)["pre"]["tp"] == 2


def test_posts_scored_inside_matched_pairs_only():
    gt = pts([[50, 50, 50], [100, 100, 100]], [[0, 50, 50, 55], [0, 50, 55, 50], [1, 100, 100, 106]])
    # p1 is far from everything: unmatched, and its post (next to nothing) is ignored by F1_post
    pred = pts([[51, 50, 50], [100, 0, 0]], [[0, 50, 50, 56], [1, 100, 0, 5]])
    r = score_synapses(pred, gt)
    assert tp_fp_fn(r["pre"]) == (1, 1, 1) and r["f1_pre"] == 0.5 and r["pre"]["mean_distance"] == 1.0
    # the one pair: 1 predicted post, 2 true, 1 match -> F1 2/3
    assert r["post_linked"] == {
        "macro_f1": 2 / 3, "tp": 1, "fp": 0, "fn": 1, "precision": 1.0, "recall": 0.5, "f1": 2 / 3, "n_pairs": 1,
    }
    assert r["f1_post"] == 2 / 3 and r["f1"] == 0.5 * (0.5 + 2 / 3)
    # extras: all posts globally (the ignored post counts here), link agreement, GT edges recovered
    assert tp_fp_fn(r["post_unlinked"]) == (1, 1, 2)
    assert r["connectivity"] == 1.0 and r["pair_recall"] == 1 / 3


def test_post_f1_is_the_mean_over_pairs_and_skips_pairs_without_posts():
    gt = pts([[10, 10, 10], [60, 60, 60], [110, 110, 110]], [[0, 10, 10, 15], [1, 60, 60, 66]])
    pred = pts([[10, 10, 11], [60, 60, 61], [110, 110, 111]], [[0, 10, 10, 16], [1, 0, 0, 0]])
    r = score_synapses(pred, gt)
    assert tp_fp_fn(r["pre"]) == (3, 0, 0) and r["f1_pre"] == 1.0
    # pair 0: perfect (F1 1); pair 1: its predicted post is far (F1 0); pair 2 has no posts: skipped
    assert r["post_linked"]["n_pairs"] == 2 and r["f1_post"] == 0.5 and r["f1"] == 0.75
    assert tp_fp_fn(r["post_linked"]) == (1, 1, 1) and r["post_linked"]["f1"] == 0.5
    # unlinked, official rule: the least total distance pairs (10,10,16)-(60,60,66) [86.6] with
    # (0,0,0)-(10,10,15) [20.6] (sum 107.2 < 1 + 107.5), both beyond 6.5: no match at all
    assert tp_fp_fn(r["post_unlinked"]) == (0, 2, 2) and r["connectivity"] == 0.0 and r["pair_recall"] == 0.0
    s = score_synapses(pred, gt, mode="strict")
    assert tp_fp_fn(s["post_unlinked"]) == (1, 1, 1) and s["connectivity"] == 1.0 and s["pair_recall"] == 0.5


def test_connectivity_and_pair_recall_see_wrong_links():
    gt = pts([[0, 0, 0], [0, 0, 30]], [[0, 0, 5, 0], [1, 0, 5, 30]])
    pred = pts([[0, 0, 1], [0, 0, 29]], [[1, 0, 5, 1], [1, 0, 5, 29]])  # first post linked to the wrong pre
    r = score_synapses(pred, gt)
    assert tp_fp_fn(r["pre"]) == (2, 0, 0)
    # pair 0: no predicted post, one true -> 0; pair 1: two predicted, one true, one match -> 2/3
    assert r["f1_post"] == pytest.approx(1 / 3, abs=1e-15) and r["post_linked"]["n_pairs"] == 2
    assert tp_fp_fn(r["post_linked"]) == (1, 1, 1)
    assert tp_fp_fn(r["post_unlinked"]) == (2, 0, 0) and r["post_unlinked"]["f1"] == 1.0
    assert r["connectivity"] == 0.5 and r["pair_recall"] == 0.5
    assert r["f1"] == pytest.approx(2 / 3, abs=1e-15)


def test_radii_are_inclusive():
    assert score_synapses(pts([[0, 0, 0]]), pts([[0, 0, 11.0]]))["pre"]["tp"] == 1
    assert score_synapses(pts([[0, 0, 0]]), pts([[0, 0, 11.01]]))["pre"]["tp"] == 0
    gt = pts([[0, 0, 0]], [[0, 0, 0, 6.5]])
    assert score_synapses(pts([[0, 0, 0]], [[0, 0, 0, 0]]), gt)["f1_post"] == 1.0
    assert score_synapses(pts([[0, 0, 0]], [[0, 0, 0, -0.01]]), gt)["f1_post"] == 0.0
    assert score_synapses(pts([[0, 0, 0]], [[0, 0, 0, 3]]), gt, r_post=3.4)["f1_post"] == 0.0


def test_both_sides_empty():
    r = score_synapses(pts([]), pts([]))
    assert r["empty"] is True and (r["f1"], r["f1_pre"], r["f1_post"]) == (1.0, 1.0, 1.0)
    assert r["pre"] == {"tp": 0, "fp": 0, "fn": 0, "precision": 1.0, "recall": 1.0, "f1": 1.0, "mean_distance": None}
    assert r["post_linked"] == {
        "macro_f1": 1.0, "tp": 0, "fp": 0, "fn": 0, "precision": 1.0, "recall": 1.0, "f1": 1.0, "n_pairs": 0,
    }
    assert r["post_unlinked"]["f1"] == 1.0 and r["connectivity"] == 1.0 and r["pair_recall"] == 1.0


def test_one_side_empty():
    pred_only = score_synapses(pts([[1, 2, 3]], [[0, 1, 2, 6]]), pts([]))
    gt_only = score_synapses(pts([]), pts([[1, 2, 3]], [[0, 1, 2, 6]]))
    for r in (pred_only, gt_only):
        assert r["empty"] is False and (r["f1"], r["f1_pre"], r["f1_post"]) == (0.0, 0.0, 0.0)
        assert (r["pre"]["precision"], r["pre"]["recall"], r["pre"]["mean_distance"]) == (0.0, 0.0, None)
        assert r["post_linked"]["n_pairs"] == 0 and r["connectivity"] == 0.0 and r["pair_recall"] == 0.0
    assert tp_fp_fn(pred_only["pre"]) == (0, 1, 0) and tp_fp_fn(pred_only["post_unlinked"]) == (0, 1, 0)
    assert tp_fp_fn(gt_only["pre"]) == (0, 0, 1) and tp_fp_fn(gt_only["post_unlinked"]) == (0, 0, 1)


def test_matched_pres_without_any_post_give_post_f1_zero():
    r = score_synapses(pts([[0, 0, 0]]), pts([[0, 0, 1]]))
    assert (r["f1_pre"], r["f1_post"], r["f1"]) == (1.0, 0.0, 0.5)  # no pair left: 0, as the official scorer
    assert r["post_linked"]["n_pairs"] == 0 and r["post_unlinked"]["f1"] == 1.0


def test_offset_is_subtracted_from_the_ground_truth_only():
    local = pts([[5, 6, 7]], [[0, 5, 6, 12]])
    glob = pts([[105, 206, 307]], [[0, 105, 206, 312]])
    assert score_synapses(local, glob)["f1"] == 0.0
    r = score_synapses(local, glob, offset=(100, 200, 300))
    assert r["f1"] == 1.0 and r["offset"] == [100, 200, 300]
    assert score_synapses(glob, glob, offset=(100, 200, 300))["f1"] == 0.0  # predictions are not shifted
    moved_post = pts([[105, 206, 307]], [[0, 105, 206, 320]])  # post 8 voxels off after the shift
    assert score_synapses(local, moved_post, offset=(100, 200, 300))["f1_post"] == 0.0


def test_ties_are_deterministic_and_follow_the_official_assignment():
    # square: both assignments of the two pres cost 8; the posts tell which one was chosen
    pred = pts([[0, 0, 0], [0, 4, 4]], [[0, 0, 0, 1]])
    gt = pts([[0, 0, 4], [0, 4, 0]], [[0, 0, 0, 1]])
    runs = [score_synapses(pred, gt) for _ in range(3)]
    assert all(r == runs[0] for r in runs)
    r = runs[0]
    assert tp_fp_fn(r["pre"]) == (2, 0, 0) and r["pre"]["mean_distance"] == 4.0
    assert r["f1_post"] in (0.0, 1.0) and (r["f1_pre"], r["f1_post"]) == official_scores(pred, gt)
    rows, cols, _ = match(pred.pre, gt.pre, 11.0)
    assert r["f1_post"] == (1.0 if cols[rows == 0][0] == 0 else 0.0)
    one = [match(np.zeros((1, 3)), np.array([[0, 0, 5], [0, 0, -5]]), 11.0)[1][0] for _ in range(3)]
    assert len(set(one)) == 1


def test_report_is_json_ready_with_exactly_the_documented_keys():
    pred, gt = pts([[0, 0, 0]], [[0, 0, 0, 4]]), pts([[0, 0, 1]], [[0, 0, 0, 5]])
    r = score_synapses(pred, gt, r_pre=11, offset=np.array([0, 0, 0]))
    assert set(r) == {"pre", "post_linked", "post_unlinked", "connectivity", "pair_recall", "f1", "f1_pre", "f1_post",
                      "mode", "r_pre", "r_post", "offset", "empty"}
    assert set(r["pre"]) == {"tp", "fp", "fn", "precision", "recall", "f1", "mean_distance"}
    assert set(r["post_linked"]) == {"macro_f1", "tp", "fp", "fn", "precision", "recall", "f1", "n_pairs"}
    assert set(r["post_unlinked"]) == {"tp", "fp", "fn", "precision", "recall", "f1"}

    def plain(v):
        if isinstance(v, dict):
            return all(plain(x) for x in v.values())
        if isinstance(v, list):
            return all(plain(x) for x in v)
        return v is None or type(v) in (bool, int, float, str)

    assert plain(r) and json.loads(json.dumps(r)) == r
    assert type(r["r_pre"]) is float and r["offset"] == [0, 0, 0]


@pytest.mark.parametrize("kwargs,message", [
    ({"mode": "loose"}, "--mode 'loose' is unknown; use one of waspsyn, strict"),
    ({"r_pre": -1}, "--r-pre -1 must be a finite distance"),
    ({"r_post": float("nan")}, "--r-post nan must be a finite distance"),
    ({"offset": (1, 2)}, "offset .* is not three numbers"),
])
def test_bad_options(kwargs, message):
    with pytest.raises(UserError, match=message):
        score_synapses(pts([[0, 0, 0]]), pts([[0, 0, 0]]), **kwargs)


# ---- against the official algorithm and a brute-force maximum matching --------------------

def official_scores(pred: SynapsePoints, gt: SynapsePoints, offset=(0, 0, 0)) -> tuple[float, float]:
    """(F1_pre, F1_post) of the published WASPSYN scorer, re-stated point by point (non-empty volumes)."""

    def assign(test, ref, radius):
        cost = np.zeros((len(test), len(ref)))
        for i in range(len(test)):
            for j in range(len(ref)):
                cost[i, j] = np.sqrt(np.sum((test[i] - ref[j]) ** 2))
        rows, cols = linear_sum_assignment(cost)
        kept = [(int(i), int(j)) for i, j in zip(rows, cols) if not cost[i, j] > radius]
        tp = len(kept)
        return kept, 2 * tp / (2 * tp + abs(len(test) - len(ref)) + 2 * (len(rows) - tp))

    off = np.asarray(offset, float)
    gt_pre, gt_post = gt.pre - off, gt.post.copy()
    gt_post[:, 1:] -= off
    pairs, f1_pre = assign(pred.pre, gt_pre, 11)
    per_pair = []
    for i, j in pairs:
        a, b = pred.post[pred.post[:, 0] == i][:, 1:], gt_post[gt_post[:, 0] == j][:, 1:]
        if len(a) == 0 and len(b) == 0:
            continue
        per_pair.append(assign(a, b, 6.5)[1])
    f1_post = float(np.mean(per_pair)) if per_pair else 0.0
    return f1_pre, f1_post


def random_points(rng, n_max, box, integer):
    n = int(rng.integers(0, n_max + 1))
    draw = (lambda k: rng.integers(0, box, (k, 3)).astype(float)) if integer else (lambda k: rng.random((k, 3)) * box)
    pre = draw(n)
    m = int(rng.integers(0, 2 * n_max + 1)) if n else 0
    post = np.column_stack([rng.integers(0, max(n, 1), m), draw(m)]) if m else np.zeros((0, 4))
    return SynapsePoints(pre, post)


def test_equals_the_official_algorithm_on_random_volumes():
    rng = np.random.default_rng(7)
    compared = 0
    for case in range(300):
        integer = case % 2 == 0  # integer grids make many exactly equal distances
        pred, gt = random_points(rng, 6, 16, integer), random_points(rng, 6, 16, integer)
        if len(pred.pre) == 0 and len(gt.pre) == 0:
            continue  # the official scorer divides by zero here
        offset = (0, 0, 0) if case % 3 else (3, 0, 2)
        gt = SynapsePoints(gt.pre + offset, np.column_stack([gt.post[:, 0], gt.post[:, 1:] + offset]))
        ours = score_synapses(pred, gt, offset=offset)
        assert (ours["f1_pre"], ours["f1_post"]) == official_scores(pred, gt, offset), case
        assert ours["f1"] == 0.5 * (ours["f1_pre"] + ours["f1_post"])
        compared += 1
    assert compared > 250


def max_within(pred, gt, radius):
    """Brute force: the largest number of disjoint pairs within ``radius``."""
    d = np.sqrt(((pred[:, None] - gt[None]) ** 2).sum(-1))
    small, big = (pred, gt) if len(pred) <= len(gt) else (gt, pred)
    dd = d if len(pred) <= len(gt) else d.T
    perms = itertools.permutations(range(len(big)), len(small))
    return max(sum(dd[i, j] <= radius for i, j in enumerate(perm)) for perm in perms)


def test_strict_finds_the_most_matches_and_official_never_more():
    rng = np.random.default_rng(3)
    fewer = 0
    for _ in range(200):
        pred, gt = rng.random((int(rng.integers(1, 5)), 3)) * 20, rng.random((int(rng.integers(1, 5)), 3)) * 20
        best = max_within(pred, gt, 11.0)
        strict, official = len(match(pred, gt, 11.0, "strict")[0]), len(match(pred, gt, 11.0)[0])
        assert strict == best and official <= best
        fewer += official < best
    assert fewer > 0  # the official rule does lose matches on such data


# ---- submissions and the standalone script -------------------------------------------------

GT = SynapsePoints(np.array([[7, 10, 10]]), np.array([[0, 8, 10, 16], [0, 8, 4, 10]]))
NAMES = ["syns_zyx_0-16_0-24_0-24", "syns_zyx_100-116_200-224_300-324"]
OFFSETS = ([0, 0, 0], [100, 200, 300])


def shifted(points, off):
    return SynapsePoints(points.pre + off, points.post + [0, *off])


def write_submission(gt_dir: Path, pred_dir: Path, nested: bool = False):
    """Volume 1 perfect (F1 1); volume 2 misses one of the two posts (F1_post 2/3, F1 5/6)."""
    for name, off, pred in zip(NAMES, OFFSETS, (GT, SynapsePoints(GT.pre, GT.post[:1]))):
        vol = f"test_sample1_vol{NAMES.index(name)}"
        write_points_h5((gt_dir / vol if nested else gt_dir) / f"{name}.h5", shifted(GT, off))
        write_points_h5((pred_dir / vol if nested else pred_dir) / f"{name}_predict.h5", pred)


def test_score_submission_flat_and_nested_layouts(tmp_path):
    write_submission(tmp_path / "gt", tmp_path / "pred")
    per_volume, mean = score_submission(tmp_path / "pred", tmp_path / "gt")
    assert list(per_volume) == NAMES and per_volume[NAMES[1]]["offset"] == [100, 200, 300]
    assert [per_volume[n]["f1"] for n in NAMES] == [1.0, 0.5 * (1 + 2 / 3)]
    assert mean == pytest.approx(11 / 12, abs=1e-15)
    write_submission(tmp_path / "ref", tmp_path / "res", nested=True)
    pairs = pair_submission(tmp_path / "res", tmp_path / "ref")
    assert [p.name for p in pairs] == ["test_sample1_vol0", "test_sample1_vol1"] and pairs[1].offset == (100, 200, 300)
    assert score_submission(tmp_path / "res", tmp_path / "ref")[1] == mean


def test_submission_errors(tmp_path):
    write_submission(tmp_path / "gt", tmp_path / "pred")
    (tmp_path / "pred" / f"{NAMES[1]}_predict.h5").unlink()
    with pytest.raises(UserError, match=f"prediction .*{NAMES[1]}_predict.h5 for .*{NAMES[1]}.h5 is missing"):
        pair_submission(tmp_path / "pred", tmp_path / "gt")
    with pytest.raises(UserError, match="PRED_DIR .*nope is not a folder"):
        pair_submission(tmp_path / "nope", tmp_path / "gt")
    with pytest.raises(UserError, match="no ground truth named syns_zyx_"):
        pair_submission(tmp_path / "gt", tmp_path / "pred")  # swapped folders
    write_submission(tmp_path / "ref", tmp_path / "res", nested=True)
    write_points_h5(tmp_path / "res" / "test_sample1_vol0" / "other_predict.h5", GT)
    with pytest.raises(UserError, match="is ambiguous"):
        pair_submission(tmp_path / "res", tmp_path / "ref")


def run_script(*args):
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "evaluate_waspsyn.py"), *map(str, args)],
                          capture_output=True, text=True, timeout=120)


def test_evaluate_waspsyn_script(tmp_path):
    write_submission(tmp_path / "gt", tmp_path / "pred")
    out = tmp_path / "scores"
    r = run_script(tmp_path / "pred", tmp_path / "gt", "--out", out)
    assert r.returncode == 0, r.stderr
    assert (out / "scores.txt").read_text() == "correct: 0.916666666667\n"  # (1 + 5/6) / 2
    written = sorted(p.name for p in out.iterdir())
    assert written == sorted([f"{n}.json" for n in NAMES] + ["summary.json", "scores.txt"])
    report = json.loads((out / f"{NAMES[1]}.json").read_text())
    assert report["f1_post"] == 2 / 3 and report["offset"] == [100, 200, 300]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["mean_f1"] == pytest.approx(11 / 12, abs=1e-15) and summary["n_volumes"] == 2
    assert "mean" in r.stdout and NAMES[0] in r.stdout

    again = run_script(tmp_path / "pred", tmp_path / "gt", "--out", out, "--mode", "strict")
    assert again.returncode == 2
    exists = f"error: {out / NAMES[0]}.json exists; pass --overwrite to replace the scores or choose another --out\n"
    assert again.stderr == exists
    forced = run_script(tmp_path / "pred", tmp_path / "gt", "--out", out, "--mode", "strict", "--overwrite")
    assert forced.returncode == 0 and json.loads((out / "summary.json").read_text())["mode"] == "strict"

    (tmp_path / "pred" / f"{NAMES[1]}_predict.h5").unlink()
    missing = run_script(tmp_path / "pred", tmp_path / "gt", "--out", tmp_path / "other")
    assert missing.returncode == 2 and missing.stdout == ""
    lines = missing.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: prediction ") and f"{NAMES[1]}_predict.h5" in lines[0]
    assert not (tmp_path / "other").exists()
    assert not (tmp_path / "pred" / "scores").exists()


def test_evaluate_waspsyn_script_help():
    r = run_script("--help")
    assert r.returncode == 0 and "PRED_DIR" in r.stdout.upper() and "--r-pre" in r.stdout and "--overwrite" in r.stdout
