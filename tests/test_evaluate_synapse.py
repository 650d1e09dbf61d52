"""The WASPSYN scorer against hand-made cases (EVALUATION.md, synapses)."""

import numpy as np
import pytest

from masktwins3d.errors import UserError
from masktwins3d.evaluate.synapse import match, score_synapses
from masktwins3d.io.points import SynapsePoints


def pts(pre, post=()):
    return SynapsePoints(np.asarray(pre, float).reshape(-1, 3), np.asarray(post, float).reshape(-1, 4))


def test_hungarian_then_radius_finds_fewer_matches_than_strict():
    # total distance prefers a-y (14.5, beyond 11) + b-x (0.5) over a-x (10) + b-y (10)
    pred = pts([[0, 0, 0], [0, 0, 10.5]])
    gt = pts([[0, 0, 10], [0, 10, 10.5]])
    official = score_synapses(pred, gt)
    strict = score_synapses(pred, gt, mode="strict")
    assert (official["pre"]["tp"], official["pre"]["fp"], official["pre"]["fn"]) == (1, 1, 1)
    assert official["f1_pre"] == pytest.approx(0.5)
    assert official["pre"]["mean_distance"] == pytest.approx(0.5)
    assert strict["pre"]["tp"] == 2 and strict["f1_pre"] == 1.0
    assert official["mode"] == "waspsyn" and strict["mode"] == "strict"


def test_posts_scored_inside_matched_pairs_only():
    gt = pts([[50, 50, 50], [100, 100, 100]], [[0, 50, 50, 55], [0, 50, 55, 50], [1, 100, 100, 106]])
    # the unmatched pre sits where the total-distance assignment still pairs p0 with g0
    pred = pts([[51, 50, 50], [100, 0, 0]], [[0, 50, 50, 56], [1, 100, 0, 5]])  # posts of the unmatched pre are ignored
    r = score_synapses(pred, gt)
    assert (r["pre"]["tp"], r["pre"]["fp"], r["pre"]["fn"]) == (1, 1, 1)
    assert r["f1_pre"] == pytest.approx(0.5)
    assert r["post_linked"]["n_pairs"] == 1
    assert r["f1_post"] == pytest.approx(2 / 3)  # pair: 1 of 1 predicted, 1 of 2 true
    assert r["f1"] == pytest.approx(0.5 * (0.5 + 2 / 3))
    assert (r["post_linked"]["tp"], r["post_linked"]["fp"], r["post_linked"]["fn"]) == (1, 0, 1)
    # extras: all posts globally, link agreement, GT edges recovered
    assert (r["post_unlinked"]["tp"], r["post_unlinked"]["fp"], r["post_unlinked"]["fn"]) == (1, 1, 2)
    assert r["connectivity"] == 1.0 and r["pair_recall"] == pytest.approx(1 / 3)


def test_post_f1_is_the_mean_over_pairs_and_skips_pairs_without_posts():
    gt = pts([[10, 10, 10], [60, 60, 60], [110, 110, 110]], [[0, 10, 10, 15], [1, 60, 60, 66]])
    pred = pts([[10, 10, 11], [60, 60, 61], [110, 110, 111]], [[0, 10, 10, 16], [1, 0, 0, 0]])
    r = score_synapses(pred, gt)
    assert r["pre"]["tp"] == 3 and r["f1_pre"] == 1.0
    # pair 0: perfect (F1 1); pair 1: the predicted post is far (F1 0); pair 2 has no posts: skipped
    assert r["post_linked"]["n_pairs"] == 2 and r["f1_post"] == pytest.approx(0.5)


def test_pre_beyond_the_radius_does_not_match():
    r = score_synapses(pts([[0, 0, 0]]), pts([[0, 0, 11.01]]))
    assert r["pre"]["tp"] == 0 and r["f1_pre"] == 0.0
    r = score_synapses(pts([[0, 0, 0]]), pts([[0, 0, 11.0]]))
    assert r["pre"]["tp"] == 1  # the radius is inclusive


def test_both_sides_empty_and_one_side_empty():
    both = score_synapses(pts([]), pts([]))
    assert both["empty"] is True and both["f1"] == 1.0
    pred_only = score_synapses(pts([[1, 2, 3]], [[0, 1, 2, 6]]), pts([]))
    gt_only = score_synapses(pts([]), pts([[1, 2, 3]], [[0, 1, 2, 6]]))
    for r in (pred_only, gt_only):
        assert r["empty"] is False and r["f1"] == 0.0 and r["f1_pre"] == 0.0 and r["f1_post"] == 0.0
    assert pred_only["pre"]["fp"] == 1 and gt_only["pre"]["fn"] == 1


def test_offset_is_subtracted_from_the_ground_truth_only():
    local = pts([[5, 6, 7]], [[0, 5, 6, 12]])
    glob = pts([[105, 206, 307]], [[0, 105, 206, 312]])
    assert score_synapses(local, glob)["f1"] == 0.0
    r = score_synapses(local, glob, offset=(100, 200, 300))
    assert r["f1"] == 1.0 and r["offset"] == [100, 200, 300]


def test_ties_are_deterministic():
    pred, gt = pts([[0, 0, 0]]), pts([[0, 0, 5], [0, 0, -5]])
    runs = [match(pred.pre, gt.pre, 11.0) for _ in range(3)]
    assert all(len(r[0]) == 1 for r in runs)
    assert len({int(r[1][0]) for r in runs}) == 1
    assert score_synapses(pred, gt)["pre"]["fn"] == 1


def test_report_is_json_ready_with_the_documented_keys():
    import json

    r = score_synapses(pts([[0, 0, 0]], [[0, 0, 0, 4]]), pts([[0, 0, 1]], [[0, 0, 0, 5]]))
    assert set(r) >= {"pre", "post_linked", "post_unlinked", "connectivity", "pair_recall", "f1", "f1_pre", "f1_post", "mode", "r_pre", "r_post", "offset", "empty"}
    assert set(r["pre"]) == {"tp", "fp", "fn", "precision", "recall", "f1", "mean_distance"}
    assert set(r["post_linked"]) == {"macro_f1", "tp", "fp", "fn", "precision", "recall", "f1", "n_pairs"}
    assert set(r["post_unlinked"]) == {"tp", "fp", "fn", "precision", "recall", "f1"}
    json.dumps(r)


def test_unknown_mode():
    with pytest.raises(UserError, match="--mode"):
        score_synapses(pts([[0, 0, 0]]), pts([[0, 0, 0]]), mode="loose")
