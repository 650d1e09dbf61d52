"""Mitochondria scores (DA-ISC protocol) against scikit-learn, section by section and flattened."""

from __future__ import annotations

import csv
import json
import warnings

import numpy as np
import pytest

sklearn_metrics = pytest.importorskip("sklearn.metrics")

from masktwins3d.errors import UserError  # noqa: E402
from masktwins3d.evaluate import (  # noqa: E402
    EmptySectionWarning,
    average_precision,
    binary_counts,
    evaluate_mito,
    f1_from_counts,
    iou_from_counts,
    mcc_from_counts,
    merge_tallies,
    score_tally,
    write_mito_report,
)
from masktwins3d.evaluate.ranking import TallyAccumulator, average_precision_from_tally  # noqa: E402

TOL = 1e-6
METRICS = ("map", "f1", "mcc", "iou")


# ----------------------------------------------------------------------------- helpers


def sk_scores(prob: np.ndarray, gt: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """The reference: sklearn on float64 probabilities and 0/1 labels."""
    y = np.asarray(gt).ravel().astype(int)
    s = np.asarray(prob, dtype=np.float64).ravel()
    b = (s >= threshold).astype(int)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {
            "map": sklearn_metrics.average_precision_score(y, s),
            "f1": sklearn_metrics.f1_score(y, b, zero_division=0),
            "mcc": sklearn_metrics.matthews_corrcoef(y, b),
            "iou": sklearn_metrics.jaccard_score(y, b, zero_division=0),
        }


def make_case(rng: np.random.Generator, shape, prob_kind: str, label_kind: str):
    """Correlated random probabilities (as stored, and as float64 in [0, 1]) and labels (stored, 0/1)."""
    truth = rng.random(shape) < 0.3
    noisy = np.clip(0.35 * truth + 0.65 * rng.random(shape), 0, 1)
    if prob_kind == "ties":  # few distinct values, 0.5 included
        stored = (np.round(noisy * 10) / 10).astype(np.float32)
    elif prob_kind == "float16":
        stored = noisy.astype(np.float16)
    elif prob_kind == "uint8":
        stored = np.round(noisy * 255).astype(np.uint8)
    elif prob_kind == "float64":
        stored = noisy
    else:
        stored = noisy.astype(np.float32)
    prob = stored.astype(np.float64) / (255.0 if prob_kind == "uint8" else 1.0)
    labels01 = truth.astype(np.uint8)
    stored_labels = {"01": labels01, "0255": labels01 * 255, "bool": truth, "float": labels01.astype(np.float32)}
    return stored, prob, stored_labels[label_kind], labels01


class FakeVolume:
    """A Volume-like object that only hands out what is indexed and records every read."""

    def __init__(self, array: np.ndarray, axes: str | None = None, path: str = "/data/vol.zarr"):
        self._array = array
        self.shape = array.shape
        self.dtype = array.dtype
        self.axes = axes or ("zyx" if array.ndim == 3 else "czyx")
        self.path = path
        self.reads: list[tuple] = []

    def __getitem__(self, index):
        out = self._array[index]
        self.reads.append(out.shape)
        return np.array(out)

    def __array__(self, *args, **kwargs):  # reading the whole volume is a bug
        raise AssertionError("the whole volume was read at once")


def count_empty_warnings(record) -> int:
    return sum(issubclass(w.category, EmptySectionWarning) for w in record)


# ----------------------------------------------------------------------------- pure numerics


def test_average_precision_sklearn_doc_example():
    y = np.array([0, 0, 1, 1])
    s = np.array([0.1, 0.4, 0.35, 0.8])
    assert average_precision(s, y) == pytest.approx(0.8333333333333333, abs=1e-12)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("n_levels", [2, 5, 50, None])
def test_average_precision_matches_sklearn(seed, n_levels):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 400))
    y = rng.random(n) < rng.random()
    s = rng.random(n) if n_levels is None else rng.integers(0, n_levels, n) / n_levels
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = sklearn_metrics.average_precision_score(y.astype(int), s)
    assert average_precision(s, y) == pytest.approx(expected, abs=TOL)


def test_average_precision_edge_cases():
    s = np.array([0.2, 0.2, 0.7])
    assert average_precision(s, np.zeros(3, bool)) == 0.0  # sklearn: no positives -> 0
    assert average_precision(s, np.ones(3, bool)) == 1.0
    assert average_precision(np.full(4, 0.5), np.array([1, 0, 0, 1])) == 0.5  # one tied step
    assert average_precision(np.array([0.3]), np.array([True])) == 1.0
    with pytest.raises(ValueError):
        average_precision(np.zeros(0), np.zeros(0, bool))


def test_uint8_tally_equals_scaled_float():
    rng = np.random.default_rng(3)
    codes = rng.integers(0, 256, 5000).astype(np.uint8)
    y = rng.random(5000) < codes / 300
    assert average_precision(codes, y) == pytest.approx(average_precision(codes / 255.0, y), abs=1e-15)


@pytest.mark.parametrize("dtype", [np.float32, np.uint8])
def test_merged_tallies_equal_whole(dtype):
    rng = np.random.default_rng(7)
    s = (rng.random(3000) * (255 if dtype == np.uint8 else 1)).astype(dtype)
    s[:500] = s[500:1000]  # ties across pieces
    y = rng.random(3000) < 0.4
    whole = score_tally(s, y)
    pieces = [score_tally(s[i : i + 700], y[i : i + 700]) for i in range(0, 3000, 700)]
    merged = merge_tallies(pieces)
    np.testing.assert_array_equal(whole.values, merged.values)
    np.testing.assert_array_equal(whole.pos, merged.pos)
    np.testing.assert_array_equal(whole.neg, merged.neg)
    acc = TallyAccumulator(min_merge=1)  # merge after every piece
    for piece in pieces:
        acc.add(piece)
    assert average_precision_from_tally(acc.result()) == average_precision_from_tally(whole)


def test_binary_scores_hand_and_sklearn():
    # every cell of the confusion matrix once
    assert binary_counts(np.array([[1, 0], [1, 0]]), np.array([[1, 0], [0, 1]])) == (1, 1, 1, 1)
    assert f1_from_counts(1, 1, 1, 1) == 0.5
    assert iou_from_counts(1, 1, 1, 1) == pytest.approx(1 / 3)
    assert mcc_from_counts(1, 1, 1, 1) == 0.0
    assert mcc_from_counts(3, 0, 0, 5) == pytest.approx(1.0) and mcc_from_counts(0, 3, 5, 0) == pytest.approx(-1.0)
    # 0/0 conventions: sklearn's 0.0 (IoU 0/0 defined as 0.0)
    assert (f1_from_counts(0, 0, 0, 4), iou_from_counts(0, 0, 0, 4), mcc_from_counts(0, 0, 0, 4)) == (0, 0, 0)
    assert mcc_from_counts(4, 0, 0, 0) == 0.0  # all positive and right: sklearn says 0
    rng = np.random.default_rng(11)
    for _ in range(20):
        n = int(rng.integers(1, 60))
        b, g = rng.random(n) < rng.random(), rng.random(n) < rng.random()
        c = binary_counts(b, g)
        ref = sk_scores(b.astype(float), g)
        assert f1_from_counts(*c) == pytest.approx(ref["f1"], abs=TOL)
        assert iou_from_counts(*c) == pytest.approx(ref["iou"], abs=TOL)
        assert mcc_from_counts(*c) == pytest.approx(ref["mcc"], abs=TOL)


def test_mcc_exact_for_billions_of_voxels():
    tp, fp, fn, tn = 3 * 10**8, 2 * 10**7, 10**7, 1_300_000_000
    num = tp * tn - fp * fn
    den = ((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn)) ** 0.5
    assert mcc_from_counts(tp, fp, fn, tn) == pytest.approx(num / den, rel=1e-12)


# ----------------------------------------------------------------------------- evaluate_mito vs sklearn


def test_hand_computed_2x2_section():
    prob = np.array([[[0.9, 0.4], [0.6, 0.2]]], dtype=np.float32)
    gt = np.array([[[1, 0], [0, 1]]], dtype=np.uint8)
    r = evaluate_mito(prob, gt)
    # ranking 0.9(+) 0.6(-) 0.4(-) 0.2(+): AP = 0.5*1 + 0.5*(2/4); B = [[1,0],[1,0]]
    assert r["map"] == pytest.approx(0.75)
    assert (r["f1"], r["mcc"]) == (0.5, 0.0)
    assert r["iou"] == pytest.approx(1 / 3)
    assert r["sections"][0] | {} == {
        "z": 0, "empty": False, "iou": r["iou"], "f1": 0.5, "mcc": 0.0, "map": r["map"],
        "tp": 1, "fp": 1, "fn": 1, "tn": 1,
    }  # fmt: skip


CASES = [
    ("float32", "01", (4, 17, 23)),
    ("ties", "0255", (3, 16, 16)),
    ("float16", "bool", (5, 9, 31)),
    ("uint8", "01", (3, 20, 12)),
    ("uint8", "0255", (2, 8, 8)),
    ("float64", "float", (2, 30, 15)),
    ("float32", "bool", (1, 7, 5)),
]


@pytest.mark.parametrize("prob_kind,label_kind,shape", CASES)
def test_2d_matches_sklearn_per_section(prob_kind, label_kind, shape):
    rng = np.random.default_rng(sum(map(ord, prob_kind + label_kind)))
    stored, prob, labels, labels01 = make_case(rng, shape, prob_kind, label_kind)
    r = evaluate_mito(stored, labels)
    summary = (r["protocol"], r["mode"], r["n_sections"], r["n_empty"], r["n_scored"])
    assert summary == ("da-isc-2d", "2d", shape[0], 0, shape[0])
    refs = [sk_scores(prob[z], labels01[z]) for z in range(shape[0])]
    for z, (row, ref) in enumerate(zip(r["sections"], refs)):
        assert row["z"] == z and row["empty"] is False
        for m in METRICS:
            assert row[m] == pytest.approx(ref[m], abs=TOL), (z, m)
    for m in METRICS:
        assert r[m] == pytest.approx(np.mean([ref[m] for ref in refs]), abs=TOL), m


@pytest.mark.parametrize("prob_kind,label_kind,shape", CASES)
def test_3d_matches_sklearn_flattened(prob_kind, label_kind, shape):
    rng = np.random.default_rng(1 + sum(map(ord, prob_kind + label_kind)))
    stored, prob, labels, labels01 = make_case(rng, shape, prob_kind, label_kind)
    if shape[0] > 1:  # an empty section does not change the 3d rule
        labels01[0] = 0
        labels = labels.copy()
        labels[0] = 0
    r = evaluate_mito(stored, labels, mode="3d")
    ref = sk_scores(prob, labels01)
    summary = (r["protocol"], r["n_sections"], r["n_empty"], r["n_scored"])
    assert summary == ("da-isc-3d", shape[0], int(shape[0] > 1), shape[0])
    assert "sections" not in r
    for m in METRICS:
        assert r[m] == pytest.approx(ref[m], abs=TOL), m
    assert r["tp"] + r["fp"] + r["fn"] + r["tn"] == prob.size


def test_threshold_is_applied_to_scaled_uint8():
    codes = np.array([[[127, 128, 200, 10]]], dtype=np.uint8)  # 127/255 < 0.5 <= 128/255
    gt = np.array([[[0, 1, 1, 0]]], dtype=np.uint8)
    r = evaluate_mito(codes, gt)
    assert r["sections"][0]["tp"] == 2 and r["sections"][0]["fp"] == 0 and r["iou"] == 1.0
    r = evaluate_mito(codes, gt, threshold=0.9)
    assert r["sections"][0]["tp"] == 0 and r["threshold"] == 0.9


def test_volume_like_inputs_are_read_section_by_section():
    rng = np.random.default_rng(5)
    stored, prob, labels, labels01 = make_case(rng, (4, 12, 10), "float32", "01")
    pv, gv = FakeVolume(stored[None], path="/data/pred.zarr"), FakeVolume(labels, path="/data/gt.h5")
    for mode in ("2d", "3d"):
        pv.reads.clear()
        gv.reads.clear()
        r = evaluate_mito(pv, gv, mode=mode)
        assert pv.reads == [(12, 10)] * 4 and gv.reads == [(12, 10)] * 4
        expected = evaluate_mito(stored, labels, mode=mode)
        assert all(r[m] == expected[m] for m in METRICS)
        assert (r["pred"], r["gt"], r["channel"]) == ("/data/pred.zarr", "/data/gt.h5", 0)


def test_channel_selection():
    rng = np.random.default_rng(9)
    stored, prob, labels, labels01 = make_case(rng, (2, 10, 10), "float32", "01")
    two = np.stack([1 - stored, stored])
    with pytest.raises(UserError, match="--channel"):
        evaluate_mito(two, labels)
    r = evaluate_mito(two, labels, channel=1)
    assert r["channel"] == 1
    assert all(r[m] == pytest.approx(evaluate_mito(stored, labels)[m], abs=1e-15) for m in METRICS)
    with pytest.raises(UserError, match="out of range"):
        evaluate_mito(two, labels, channel=2)
    with pytest.raises(UserError, match="no channel axis"):
        evaluate_mito(stored, labels, channel=0)
    assert evaluate_mito(stored[None], labels)["channel"] == 0  # C == 1 needs no channel


# ----------------------------------------------------------------------------- empty sections


def _with_empty_sections():
    rng = np.random.default_rng(21)
    stored, prob, labels, labels01 = make_case(rng, (5, 14, 14), "float32", "01")
    labels[[1, 3]] = 0
    labels01[[1, 3]] = 0
    return stored, prob, labels, labels01


def test_empty_sections_skip_warns_once():
    stored, prob, labels, labels01 = _with_empty_sections()
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        r = evaluate_mito(stored, labels)
    assert count_empty_warnings(record) == 1
    assert "z = 1, 3" in str(next(w.message for w in record if w.category is EmptySectionWarning))
    assert (r["n_sections"], r["n_empty"], r["n_scored"], r["empty"]) == (5, 2, 3, "skip")
    refs = [sk_scores(prob[z], labels01[z]) for z in (0, 2, 4)]
    for m in METRICS:
        assert r[m] == pytest.approx(np.mean([ref[m] for ref in refs]), abs=TOL)
    assert r["sections"][1]["empty"] is True and r["sections"][1]["map"] is None
    assert r["sections"][1]["fp"] == int((prob[1] >= 0.5).sum())


def test_empty_sections_include_scores_them_like_sklearn():
    stored, prob, labels, labels01 = _with_empty_sections()
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        r = evaluate_mito(stored, labels, empty="include")
    assert count_empty_warnings(record) == 1
    assert (r["n_empty"], r["n_scored"], r["empty"]) == (2, 5, "include")
    refs = [sk_scores(prob[z], labels01[z]) for z in range(5)]
    assert all(refs[z][m] == 0.0 for z in (1, 3) for m in METRICS)
    for m in METRICS:
        assert r[m] == pytest.approx(np.mean([ref[m] for ref in refs]), abs=TOL)
    # IoU 0/0 (nothing predicted, nothing true) is defined as 0.0
    with pytest.warns(EmptySectionWarning):
        blank = evaluate_mito(np.zeros((1, 4, 4), np.float32), np.zeros((1, 4, 4), np.uint8), empty="include")
    assert all(blank[m] == 0.0 for m in METRICS)


def test_no_warning_without_empty_sections():
    stored, prob, labels, labels01 = make_case(np.random.default_rng(2), (3, 12, 12), "float32", "01")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        evaluate_mito(stored, labels)
        evaluate_mito(stored, labels, mode="3d")


def test_all_sections_empty():
    prob = np.random.default_rng(0).random((3, 5, 5)).astype(np.float32)
    gt = np.zeros((3, 5, 5), np.uint8)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        r = evaluate_mito(prob, gt)
        r3 = evaluate_mito(prob, gt, mode="3d")
    assert count_empty_warnings(record) == 2  # one per call
    assert r["n_scored"] == 0 and all(np.isnan(r[m]) for m in METRICS)
    assert r3["n_empty"] == 3 and all(r3[m] == 0.0 for m in METRICS)


# ----------------------------------------------------------------------------- user errors


def test_bad_label_values_name_the_file_and_values():
    prob = np.full((2, 4, 4), 0.3, np.float32)
    gt = np.zeros((2, 4, 4), np.uint8)
    gt[1, 0, 0] = 2
    with pytest.raises(UserError, match=r"/data/gt\.h5 holds values \[0, 2\] at z=1"):
        evaluate_mito(prob, FakeVolume(gt, path="/data/gt.h5"))
    mixed = np.zeros((2, 4, 4), np.uint8)
    mixed[0, 0, 0], mixed[1, 0, 0] = 1, 255
    with pytest.raises(UserError, match="0, 1 and 255"):
        evaluate_mito(prob, mixed)
    nan_labels = np.zeros((2, 4, 4), np.float32)
    nan_labels[0, 1, 1] = np.nan
    with pytest.raises(UserError, match="binary"):
        evaluate_mito(prob, nan_labels)


def test_shape_mismatch():
    with pytest.raises(UserError, match="spatial shape"):
        evaluate_mito(np.zeros((2, 4, 4), np.float32), np.zeros((2, 4, 5), np.uint8))
    with pytest.raises(UserError, match="ZYX or CZYX"):
        evaluate_mito(np.zeros((4, 4), np.float32), np.zeros((4, 4), np.uint8))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_probabilities(bad):
    prob = np.full((2, 4, 4), 0.3, np.float32)
    prob[1, 2, 2] = bad
    with pytest.raises(UserError, match="NaN/inf .* z=1"):
        evaluate_mito(prob, np.zeros((2, 4, 4), np.uint8), mode="3d")


def test_bad_probability_values_and_settings():
    gt = np.zeros((1, 4, 4), np.uint8)
    with pytest.raises(UserError, match="sigmoid"):
        evaluate_mito(np.full((1, 4, 4), 3.0, np.float32), gt)
    with pytest.raises(UserError, match="dtype int32"):
        evaluate_mito(np.zeros((1, 4, 4), np.int32), gt)
    ok = np.full((1, 4, 4), 0.2, np.float32)
    with pytest.raises(UserError, match="--mode"):
        evaluate_mito(ok, gt, mode="2.5d")
    with pytest.raises(UserError, match="--empty"):
        evaluate_mito(ok, gt, empty="drop")
    with pytest.raises(UserError, match="--threshold"):
        evaluate_mito(ok, gt, threshold=1.5)


# ----------------------------------------------------------------------------- report


def test_report_2d(tmp_path):
    stored, prob, labels, labels01 = _with_empty_sections()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EmptySectionWarning)
        r = evaluate_mito(stored, labels)
    jp, cp = tmp_path / "out" / "mito.json", tmp_path / "out" / "mito.csv"
    assert write_mito_report(r, jp, cp) == [jp, cp]
    data = json.loads(jp.read_text())
    for key in ("protocol", "mode", "iou", "f1", "mcc", "map", "n_sections", "n_empty", "n_scored",
                "threshold", "empty", "sections", "masktwins3d_version"):  # fmt: skip
        assert key in data
    assert data["map"] == pytest.approx(r["map"]) and data["sections"][1]["map"] is None
    rows = list(csv.DictReader(cp.open()))
    assert len(rows) == 5 and rows[0]["z"] == "0" and rows[1]["empty"] == "true" and rows[1]["map"] == ""
    assert float(rows[2]["mcc"]) == r["sections"][2]["mcc"]  # full precision
    assert not list(tmp_path.glob("out/.*.tmp"))

    with pytest.raises(UserError, match="exists; pass --overwrite"):
        write_mito_report(r, jp, cp)
    (tmp_path / "fresh.json").unlink(missing_ok=True)
    with pytest.raises(UserError, match="mito.csv exists"):  # nothing written when either exists
        write_mito_report(r, tmp_path / "fresh.json", cp)
    assert not (tmp_path / "fresh.json").exists()
    r2 = dict(r, map=0.125)
    write_mito_report(r2, jp, cp, overwrite=True)
    assert json.loads(jp.read_text())["map"] == 0.125


def test_report_3d_and_nan(tmp_path):
    stored, prob, labels, labels01 = make_case(np.random.default_rng(4), (2, 8, 8), "float32", "01")
    r = evaluate_mito(stored, labels, mode="3d")
    write_mito_report(r, tmp_path / "m.json", tmp_path / "m.csv")
    rows = list(csv.DictReader((tmp_path / "m.csv").open()))
    assert len(rows) == 1 and rows[0]["protocol"] == "da-isc-3d"
    assert float(rows[0]["iou"]) == r["iou"] and int(rows[0]["tp"]) == r["tp"]
    assert "sections" not in json.loads((tmp_path / "m.json").read_text())
    # undefined means are written as null (strict JSON), not NaN
    write_mito_report(dict(r, map=float("nan")), tmp_path / "n.json")
    text = (tmp_path / "n.json").read_text()
    assert "NaN" not in text and json.loads(text)["map"] is None


def test_paired_difference_matches_scipy():
    import math

    from scipy import stats

    from masktwins3d.evaluate.paired import format_difference, paired_difference

    a, b = [0.80, 0.75, 0.71, 0.78], [0.60, 0.62, 0.65, 0.55]
    d = paired_difference(a, b)
    ref = stats.ttest_rel(a, b).confidence_interval(0.95)
    assert d["mean"] == pytest.approx(sum(x - y for x, y in zip(a, b)) / 4)
    assert (d["low"], d["high"]) == pytest.approx((ref.low, ref.high))
    assert d["per_seed"] == pytest.approx([0.20, 0.13, 0.06, 0.23]) and d["positive"] == 4
    # by hand for two seeds: t(0.975, 1) = 12.706; sd of (0.1, 0.3) = 0.1414
    two = paired_difference([0.5, 0.7], [0.4, 0.4])
    assert two["high"] - two["mean"] == pytest.approx(12.7062 * 0.141421 / math.sqrt(2), rel=1e-4)
    one = paired_difference([0.5], [0.4])
    assert math.isnan(one["low"]) and one["mean"] == pytest.approx(0.1)
    assert format_difference(d).startswith("+15.5 [")
    with pytest.raises(ValueError):
        paired_difference([0.1, 0.2], [0.1])
