"""Tests of the synthetic synapse generator (small shapes: the whole file runs in a few seconds)."""

from __future__ import annotations

import dataclasses

import h5py
import numpy as np
import pytest
from scipy import ndimage

from masktwins3d.errors import UserError
from masktwins3d.io import open_volume
from masktwins3d.synth import (
    SYNAPSE_STYLES,
    DomainStyle,
    SynapseStyle,
    generate_synapse_volume,
    get_synapse_style,
    write_synapse_demo_data,
)

SHAPE = (48, 96, 96)
NAMES = ("syn_source", "syn_target")


@pytest.fixture(scope="module")
def volumes():
    return {name: generate_synapse_volume(name, SHAPE, seed=3) for name in NAMES}


def test_deterministic_for_a_seed():
    a = generate_synapse_volume("syn_source", (24, 64, 64), seed=11)
    b = generate_synapse_volume("syn_source", (24, 64, 64), seed=np.random.default_rng(11))
    c = generate_synapse_volume("syn_source", (24, 64, 64), seed=12)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a[0], c[0])


@pytest.mark.parametrize("name", NAMES)
def test_image_and_point_arrays(volumes, name):
    raw, pre, post = volumes[name]
    assert raw.shape == SHAPE and raw.dtype == np.uint8
    assert 30 < raw.mean() < 225 and raw.std() > 10
    assert (raw == 0).mean() < 0.01 and (raw == 255).mean() < 0.01
    assert pre.ndim == 2 and pre.shape[1] == 3 and np.issubdtype(pre.dtype, np.integer)
    assert post.ndim == 2 and post.shape[1] == 4 and np.issubdtype(post.dtype, np.integer)
    assert len(pre) >= 5 and len(post) >= len(pre)


@pytest.mark.parametrize("name", NAMES)
def test_every_post_links_a_pre_and_every_pre_has_posts(volumes, name):
    _, pre, post = volumes[name]
    assert np.all((post[:, 0] >= 0) & (post[:, 0] < len(pre)))
    per_pre = np.bincount(post[:, 0], minlength=len(pre))
    lo, hi = get_synapse_style(name).post_count
    assert per_pre.min() >= 1 and per_pre.max() <= hi
    assert per_pre.max() > 1  # polyadic synapses occur


@pytest.mark.parametrize("name", NAMES)
def test_posts_lie_across_from_their_pre(volumes, name):
    _, pre, post = volumes[name]
    dist = np.linalg.norm(post[:, 1:] - pre[post[:, 0]], axis=1)
    assert dist.min() >= 3 and dist.max() <= 12
    # T-bars are far apart compared with the scorer's 11-voxel pre radius
    d = np.linalg.norm(pre[:, None] - pre[None], axis=-1) + 1e3 * np.eye(len(pre))
    assert d.min() >= 11


@pytest.mark.parametrize("name", NAMES)
def test_points_lie_inside_the_volume(volumes, name):
    raw, pre, post = volumes[name]
    for pts in (pre, post[:, 1:]):
        assert np.all(pts >= 0) and np.all(pts < np.asarray(raw.shape))


@pytest.mark.parametrize("name", NAMES)
def test_points_sit_on_dark_structures(volumes, name):
    raw, pre, post = volumes[name]
    smooth = ndimage.uniform_filter(raw.astype(np.float32), 3)
    cytoplasm = float(np.median(raw))
    tbar = smooth[tuple(pre.T)]
    assert np.median(tbar) < cytoplasm - 30
    assert np.mean(tbar < cytoplasm) > 0.9
    assert np.median(smooth[tuple(post[:, 1:].T)]) < cytoplasm - 5


def test_styles_differ_measurably(volumes):
    (src, src_pre, _), (tgt, tgt_pre, _) = volumes["syn_source"], volumes["syn_target"]
    assert abs(float(src.mean()) - float(tgt.mean())) > 20

    def fine_noise(raw):  # high-frequency part relative to the whole contrast
        x = raw.astype(np.float32)
        return float(np.std(x - ndimage.gaussian_filter(x, 1.5)) / x.std())

    assert fine_noise(tgt) - fine_noise(src) > 0.05

    def skew(raw):  # the gamma and the darker membranes change the histogram's shape
        x = raw.astype(np.float64)
        return float(np.mean((x - x.mean()) ** 3) / x.std() ** 3)

    assert abs(skew(src) - skew(tgt)) > 0.2
    s, t = get_synapse_style("syn_source"), get_synapse_style("syn_target")
    assert t.tbar_height < s.tbar_height and t.vesicle_radius < s.vesicle_radius
    assert t.synapse_density != s.synapse_density and t.texture_scale != s.texture_scale
    assert t.gamma != s.gamma and t.blur > s.blur and t.noise > s.noise


def test_style_registry_and_validation():
    assert set(SYNAPSE_STYLES) == {"syn_source", "syn_target"}
    assert get_synapse_style("syn_target") is SYNAPSE_STYLES["syn_target"]
    assert isinstance(SYNAPSE_STYLES["syn_source"], DomainStyle)
    assert SYNAPSE_STYLES["syn_source"].voxel_size == (8.0, 8.0, 8.0)
    custom = dataclasses.replace(get_synapse_style("syn_source"), post_count=(1, 1), name="mono")
    assert get_synapse_style(custom) is custom
    raw, pre, post = generate_synapse_volume(custom, (32, 64, 64), seed=0)
    assert raw.shape == (32, 64, 64) and len(post) == len(pre)
    with pytest.raises(UserError, match="unknown"):
        get_synapse_style("source")
    with pytest.raises(UserError, match="post_count"):
        SynapseStyle(post_count=(0, 2))
    with pytest.raises(UserError, match="shape"):
        generate_synapse_volume("syn_source", (4, 64, 64))


def test_write_synapse_demo_data_and_refuse_overwrite(tmp_path):
    root = tmp_path / "demo"
    shapes = {"source_train": (32, 64, 64), "target_train": (32, 64, 64), "target_test": (24, 48, 48),
              "source_test": (24, 48, 48)}
    specs = write_synapse_demo_data(root, shapes=shapes, seed=1)
    assert set(specs) == {"source_train", "target_train", "target_test", "source_test"}
    for name, spec in specs.items():
        assert spec["raw"] == str(root / f"{name}.zarr" / "raw")
        assert spec["points"] == str(root / f"{name}_points.h5")
        raw = open_volume(spec["raw"])
        assert raw.shape == shapes[name] and raw.dtype == np.uint8
        assert tuple(raw.voxel_size) == (8.0, 8.0, 8.0)
        with h5py.File(spec["points"], "r") as f:
            assert set(f) == {"pre", "post"}
            pre, post = f["pre"][:], f["post"][:]
            assert tuple(f.attrs["voxel_size"]) == (8.0, 8.0, 8.0)
        assert pre.ndim == 2 and pre.shape[1] == 3 and post.ndim == 2 and post.shape[1] == 4
        assert len(pre) >= 1 and np.all((post[:, 0] >= 0) & (post[:, 0] < len(pre)))
        assert np.all(pre < np.asarray(shapes[name]))
    first = open_volume(specs["target_test"]["raw"]).read()
    with pytest.raises(UserError, match="exists; pass --overwrite to replace it"):
        write_synapse_demo_data(root, shapes=shapes, seed=2)
    assert np.array_equal(open_volume(specs["target_test"]["raw"]).read(), first)
    write_synapse_demo_data(root, shapes=shapes, seed=2, overwrite=True)
    assert not np.array_equal(open_volume(specs["target_test"]["raw"]).read(), first)
    names = sorted(p.name for p in root.iterdir())
    assert names == sorted([f"{n}.zarr" for n in specs] + [f"{n}_points.h5" for n in specs])
    with pytest.raises(UserError, match="unknown"):
        write_synapse_demo_data(tmp_path / "other", shapes={"test": (32, 64, 64)})


def test_shifted_style_interpolates_and_extrapolates_every_parameter():
    from masktwins3d.synth.style import IMAGING_FIELDS, shifted_style

    source, target = get_synapse_style("syn_source"), get_synapse_style("syn_target")
    start, same = shifted_style(source, target, 0.0), shifted_style(source, target, 1.0)
    for f in dataclasses.fields(SynapseStyle):
        if f.name != "name":
            assert getattr(start, f.name) == pytest.approx(getattr(source, f.name)), f.name
            assert getattr(same, f.name) == pytest.approx(getattr(target, f.name)), f.name
    harsh = shifted_style(source, target, 1.5)
    # by hand: gamma 1 -> 1.5 goes to 1 + 1.5 * 0.5; noise 0.05 -> 0.1 to 0.125; cell_size 420 -> 360 to 330
    assert harsh.gamma == pytest.approx(1.75) and harsh.noise == pytest.approx(0.125)
    assert harsh.cell_size == pytest.approx(330.0)
    assert harsh.blur == pytest.approx(0.8 + 1.5 * 0.3) and harsh.section_blur == pytest.approx(0.8 + 1.5 * 0.5)
    assert harsh.post_count == (1, 4) and all(isinstance(n, int) for n in harsh.post_count)
    assert harsh.name == "syn_target@1.5" and shifted_style(source, target, 2, name="x").name == "x"
    with pytest.raises(UserError, match="at least 0"):
        shifted_style(source, target, -0.5)
    with pytest.raises(UserError, match="different kinds"):
        shifted_style(DomainStyle(), target, 1.0)
    with pytest.raises(UserError, match="cloud_vesicles"):  # pushed out of range: 40 - 4 * 12 vesicles per cloud
        shifted_style(source, target, 4.0)
    imaging = shifted_style(source, target, 2.0, only=IMAGING_FIELDS)
    # imaging moved twice as far (gamma 1 -> 1.5 to 2, noise 0.05 -> 0.1 to 0.15), everything else the target's
    assert imaging.gamma == pytest.approx(2.0) and imaging.noise == pytest.approx(0.15)
    assert (imaging.cell_size, imaging.tbar, imaging.psd_radius) == (target.cell_size, target.tbar, target.psd_radius)
    with pytest.raises(UserError, match="'glare' is not a style parameter"):
        shifted_style(source, target, 2.0, only=("glare",))


def test_write_synapse_demo_data_with_a_target_style(tmp_path):
    import zarr

    from masktwins3d.synth.style import shifted_style

    style = shifted_style(get_synapse_style("syn_source"), get_synapse_style("syn_target"), 1.5)
    shapes = (24, 48, 48)
    specs = write_synapse_demo_data(tmp_path / "d", shapes=shapes, seed=1, target_style=style)
    plain = write_synapse_demo_data(tmp_path / "p", shapes=shapes, seed=1)
    for name in ("target_train", "target_test"):
        attrs = zarr.open_group(specs[name]["raw"].rsplit("/", 1)[0], mode="r").attrs["masktwins3d"]["synth"]
        assert attrs["style"]["name"] == "syn_target@1.5" and attrs["style"]["gamma"] == pytest.approx(1.75)
    def read(spec, name):
        return open_volume(spec[name]["raw"]).read()

    assert np.array_equal(read(specs, "source_train"), read(plain, "source_train"))
    assert not np.array_equal(read(specs, "target_test"), read(plain, "target_test"))
    with pytest.raises(UserError):
        write_synapse_demo_data(tmp_path / "e", shapes=shapes, target_style="no_such_style")
    assert not (tmp_path / "e").exists()
