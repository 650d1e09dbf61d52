"""Several labelled source volumes in one run: ``data.source`` as a list (config), the crop
mixture (sampling.MixedCrops) and a training run that draws from both volumes."""

import numpy as np
import pytest

from masktwins3d.config import load_config, to_yaml
from masktwins3d.data.sampling import MixedCrops
from masktwins3d.errors import UserError
from masktwins3d.train import build_trainer, train

from conftest import tiny_overrides, write_pair


class _Const:
    """A sampler whose crops are all ``value`` (images) and ``value`` (labels)."""

    def __init__(self, value):
        self.value = value

    def sample(self, n):
        return np.full((n, 1, 4, 4), self.value, np.float32), np.full((n, 4, 4), self.value, np.uint8)


def test_mixture_draws_each_sampler_in_proportion_to_its_weight():
    mix = MixedCrops([_Const(0), _Const(1)], [3.0, 1.0], np.random.default_rng(0))
    images, labels = mix.sample(4000)
    assert images.shape == (4000, 1, 4, 4) and labels.shape == (4000, 4, 4)
    frac = images[:, 0, 0, 0].mean()
    assert frac == pytest.approx(0.25, abs=0.03)  # 3 sigma of a binomial(4000, 0.25) is 0.02
    np.testing.assert_array_equal(images[:, 0, 0, 0], labels[:, 0, 0])  # images and labels stay paired
    again, _ = MixedCrops([_Const(0), _Const(1)], [3.0, 1.0], np.random.default_rng(0)).sample(4000)
    np.testing.assert_array_equal(images, again)  # the same generator gives the same crops


def test_mixture_rejects_bad_weights():
    for weights in ([1.0], [0.0, 0.0], [-1.0, 2.0]):
        with pytest.raises(ValueError):
            MixedCrops([_Const(0), _Const(1)], weights, np.random.default_rng(0))


def test_source_list_in_yaml_and_override(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("data:\n  source:\n    - {raw: a.zarr/raw, label: a.zarr/mito}\n    - {raw: b.zarr/raw, label: b.zarr/mito, voxel_size: [40, 4, 4]}\n")
    run = load_config(cfg)
    assert run.data.source.raw == "a.zarr/raw" and [v.raw for v in run.data.extra_sources] == ["b.zarr/raw"]
    assert run.data.extra_sources[0].voxel_size == [40.0, 4.0, 4.0]
    saved = tmp_path / "saved.yaml"
    saved.write_text(to_yaml(run))
    assert load_config(saved).data.extra_sources == run.data.extra_sources  # a run folder's config.yaml reloads
    run = load_config(None, ["data.source=[{raw: a.zarr/raw}, {raw: b.zarr/raw}, {raw: c.zarr/raw}]"])
    assert run.data.source.raw == "a.zarr/raw" and len(run.data.extra_sources) == 2
    single = load_config(None, ["data.source.raw=a.zarr/raw"])
    assert single.data.extra_sources == []


def test_source_list_errors_are_one_line(tmp_path):
    with pytest.raises(UserError, match="not of volumes"):
        load_config(None, ["data.source=[a.zarr/raw, b.zarr/raw]"])
    with pytest.raises(UserError, match="unknown config key"):
        load_config(None, ["data.source=[{raw: a.zarr/raw}, {raw: b.zarr/raw, lable: b.zarr/mito}]"])
    cfg = tmp_path / "c.yaml"
    cfg.write_text("data:\n  source: []\n")
    with pytest.raises(UserError, match="not of volumes"):
        load_config(cfg)


def test_training_draws_from_every_listed_source(tiny_pair, tmp_path, monkeypatch):
    import masktwins3d.train as train_module

    made, picks = [], []

    class Spy(MixedCrops):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made.append(self)

        def sample(self, n):
            state = self.rng.bit_generator.state
            picks.extend(self.rng.choice(len(self.samplers), size=n, p=self.p).tolist())
            self.rng.bit_generator.state = state  # draw exactly what the real sample will
            return super().sample(n)

    monkeypatch.setattr(train_module, "MixedCrops", Spy)
    b_raw, b_lab = write_pair(tmp_path, "second", seed=7, bright=0.6)
    ov = [o for o in tiny_overrides(tiny_pair, "masktwins", tmp_path / "run", iterations=4) if not o.startswith("data.source.")]
    ov += ["data.prefetch=false",
           f"data.source=[{{raw: {tiny_pair['source'][0]}, label: {tiny_pair['source'][1]}}}, {{raw: {b_raw}, label: {b_lab}}}]"]
    assert train(load_config(None, ov)).is_file()
    assert len(made) == 1 and len(made[0].samplers) == 2
    assert made[0].p == pytest.approx([0.5, 0.5])  # two volumes of the same size
    assert set(picks) == {0, 1}  # 8 crops: both volumes were drawn from (chance of one only: 2 / 256)


def test_a_listed_source_without_labels_is_named(tiny_pair, tmp_path):
    b_raw, _ = write_pair(tmp_path, "second", seed=7)
    ov = [o for o in tiny_overrides(tiny_pair, "noadapt", tmp_path / "run", iterations=1) if not o.startswith("data.source.")]
    ov.append(f"data.source=[{{raw: {tiny_pair['source'][0]}, label: {tiny_pair['source'][1]}}}, {{raw: {b_raw}}}]")
    with pytest.raises(UserError, match=r"data.source\[1\].label is not set"):
        build_trainer(load_config(None, ov))
    assert not (tmp_path / "run").exists()
