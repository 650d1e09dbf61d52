"""Histogram matching of the source to the target (data.histogram, data.match_histogram)."""

import pickle

import numpy as np
import pytest

from masktwins3d.config import load_config
from masktwins3d.data.histogram import HistogramMatcher, histogram_matcher, quantile_map, volume_quantiles
from masktwins3d.data.normalize import volume_normalizer
from masktwins3d.errors import UserError
from masktwins3d.io import open_volume
from masktwins3d.train import build_trainer, train

from conftest import tiny_overrides


def pair_float(seed=0):
    rng = np.random.default_rng(seed)
    source = (rng.random((2, 64, 64)) ** 2).astype(np.float32)  # skewed towards dark
    target = np.clip(rng.normal(0.6, 0.1, (3, 48, 48)), 0, 1).astype(np.float32)
    return source, target


def test_mapping_by_hand_on_three_quantiles():
    sq, tq = np.array([0.0, 0.5, 1.0]), np.array([0.0, 0.2, 1.0])
    out = quantile_map(np.array([0.0, 0.25, 0.5, 0.75, 1.0, -0.1, 1.2]), sq, tq)
    np.testing.assert_allclose(out, [0.0, 0.1, 0.2, 0.6, 1.0, 0.0, 1.0], atol=1e-7)  # outside: clamped
    assert out.dtype == np.float32


def test_tied_source_quantiles_map_to_the_mean_of_their_target_ranks():
    # half of the source voxels are 0: the quantiles at p = 0, 1/4, 1/2 are all 0
    sq, tq = np.array([0.0, 0.0, 0.0, 0.5, 1.0]), np.array([0.1, 0.2, 0.6, 0.8, 0.9])
    out = quantile_map(np.array([0.0, 0.25, 0.5, 1.0]), sq, tq)
    np.testing.assert_allclose(out, [0.3, 0.55, 0.8, 0.9], atol=1e-6)  # 0 -> mean(0.1, 0.2, 0.6)


def test_volume_quantiles_are_numpy_quantiles_of_the_unit_range():
    raw = np.random.default_rng(0).integers(0, 256, (3, 20, 30), dtype=np.uint8)
    q = volume_quantiles(raw, levels=5)
    np.testing.assert_allclose(q, np.quantile(raw / 255.0, [0, 0.25, 0.5, 0.75, 1]), atol=1e-7)
    # sections are sampled like volume_normalizer: only evenly spaced ones are read
    tall = np.zeros((40, 4, 4), np.uint8)
    tall[1] = 255  # section 1 is not among the 16 of 40 read (0, 3, 5, ...)
    assert volume_quantiles(tall, levels=3, max_sections=16)[-1] == 0.0
    assert volume_quantiles(tall, levels=3, max_sections=40)[-1] == 1.0


def test_matches_skimage_match_histograms():
    from skimage.exposure import match_histograms

    source, target = pair_float()
    ref = match_histograms(source, target)
    assert np.abs(ref - source).mean() > 0.3  # the two distributions are far apart
    ours = quantile_map(source, volume_quantiles(source), volume_quantiles(target))
    diff = np.abs(ref - ours)
    assert diff.mean() < 5e-4 and np.quantile(diff, 0.99) < 2e-3
    fine = quantile_map(source, volume_quantiles(source, levels=16385), volume_quantiles(target, levels=16385))
    assert np.abs(ref - fine).max() < 0.01  # only the sparse tails differ, less with more quantiles


def test_uint8_source_takes_the_target_histogram():
    from skimage.exposure import match_histograms

    rng = np.random.default_rng(1)
    source = (rng.random((2, 64, 64)) ** 2 * 255).astype(np.uint8)
    target = np.clip(rng.normal(150, 25, (3, 48, 48)), 0, 255).astype(np.uint8)
    mapped = quantile_map(source / 255.0, volume_quantiles(source), volume_quantiles(target)) * 255
    # grey level 0 holds the darkest 6 % of the source: one value, which no monotone map can split
    probs = np.linspace(0.1, 0.9, 17)
    assert np.abs(np.quantile(mapped, probs) - np.quantile(target, probs)).max() < 1.5  # grey levels
    # skimage sends a grey level to the top of its rank range, ours to its middle: within a level or two on average
    assert np.abs(match_histograms(source, target) - mapped).mean() < 2.0


def test_mapping_is_monotone():
    source, target = pair_float(3)
    sq, tq = volume_quantiles(source, levels=65), volume_quantiles(target, levels=65)
    x = np.linspace(-0.1, 1.1, 5001)
    assert np.all(np.diff(quantile_map(x, sq, tq)) >= 0)
    u8 = np.random.default_rng(2).integers(0, 4, (2, 16, 16), dtype=np.uint8) * 60  # four grey levels: many ties
    assert np.all(np.diff(quantile_map(x, volume_quantiles(u8, levels=65), tq)) >= 0)
    with pytest.raises(UserError, match="non-decreasing"):
        quantile_map(x, sq[::-1], tq)


def test_identity_when_source_is_target():
    raw = np.random.default_rng(4).integers(0, 256, (4, 32, 32), dtype=np.uint8)
    q = volume_quantiles(raw)
    x = raw / np.float32(255.0)
    np.testing.assert_allclose(quantile_map(x, q, q), x, atol=1e-6)
    matcher = histogram_matcher(raw, raw)
    np.testing.assert_allclose(matcher(raw[1]), volume_normalizer(raw)(raw[1]), atol=1e-5)


def test_matcher_z_scores_like_the_target_and_pickles():
    source, target = pair_float(5)
    matcher = histogram_matcher(source, target)
    assert isinstance(matcher, HistogramMatcher)
    out = matcher(source)
    assert abs(float(out.mean())) < 0.02 and abs(float(out.std()) - 1.0) < 0.02  # the target's mean and spread
    again = pickle.loads(pickle.dumps(matcher))
    np.testing.assert_array_equal(again(source[0]), out[0])


def test_nan_in_a_section_is_one_line():
    raw = np.zeros((3, 8, 8), np.float32)
    raw[2, 1, 1] = np.nan
    with pytest.raises(UserError, match="z=2 .*NaN") as err:
        volume_quantiles(raw)
    assert "\n" not in str(err.value)


def test_config_rejects_a_non_boolean_in_one_line():
    assert load_config(None, []).data.match_histogram is False
    assert load_config(None, ["data.match_histogram=true"]).data.match_histogram is True
    with pytest.raises(UserError, match="data.match_histogram") as err:
        load_config(None, ["data.match_histogram=maybe"])
    assert "\n" not in str(err.value)


def test_noadapt_trains_on_matched_source_crops(tiny_pair, tmp_path):
    ov = tiny_overrides(tiny_pair, "noadapt", tmp_path / "m", iterations=2) + ["data.match_histogram=true"]
    trainer = build_trainer(load_config(None, ov))
    labelled = trainer.next_batch.produce.__self__.labelled
    assert isinstance(labelled.normalizer, HistogramMatcher)
    # the source's bright discs are dark in the tiny target: after matching, source crops have the
    # target's intensity distribution (in the target's z-score)
    s_raw, t_raw = (np.asarray(open_volume(tiny_pair[k][0])[:]) for k in ("source", "target"))
    target = volume_normalizer(t_raw)(t_raw)
    probs = np.linspace(0.05, 0.95, 10)
    gap = lambda x: np.abs(np.quantile(x, probs) - np.quantile(target, probs)).max()  # noqa: E731
    assert gap(volume_normalizer(s_raw)(s_raw)) > 0.3  # z-scoring alone leaves the shapes apart
    assert gap(labelled.normalizer(s_raw)) < 0.05  # about one grey level (0.04 here)
    imgs, _ = labelled.fixed(4)
    np.testing.assert_allclose(imgs[:, 0].std(), 1.0, atol=0.3)  # the crops are in the target's z-score
    trainer.run()
    assert "match_histogram: true" in (tmp_path / "m" / "config.yaml").read_text()


def test_masktwins_with_matching_runs_and_without_a_target_is_one_line(tiny_pair, tmp_path):
    train(load_config(None, tiny_overrides(tiny_pair, "masktwins", tmp_path / "a", iterations=2) + ["data.match_histogram=true"]))
    ov = [o for o in tiny_overrides(tiny_pair, "noadapt", tmp_path / "b") if not o.startswith("data.target.")]
    with pytest.raises(UserError, match="data.match_histogram=true .* data.target.raw is not set") as err:
        build_trainer(load_config(None, ov + ["data.match_histogram=true"]))
    assert "\n" not in str(err.value)
    build_trainer(load_config(None, ov))  # without matching, noadapt needs no target
