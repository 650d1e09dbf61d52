"""Property-based tests (hypothesis) of the config loader and the volume spec parser: whatever a
user types ends in a valid config or one :class:`UserError` line, never another exception."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from masktwins3d.atomic import overlaps, spec_path
from masktwins3d.config import RANGES, load_config
from masktwins3d.errors import UserError
from masktwins3d.io import open_volume
from masktwins3d.io.hdf5_io import split_hdf5_spec

KEYS = sorted(RANGES) + ["optim.iterations", "data.batch_size", "loss.threshold", "loss.view_weight", "loss.cb_portion",
                         "method", "mask.kind", "optim.schedule", "model.head", "no.such.key", "optim"]
VALUES = st.one_of(
    st.integers(-10**6, 10**6).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.lists(st.floats(-1e3, 1e3, allow_nan=False), max_size=6).map(lambda v: "[" + ",".join(map(repr, v)) + "]"),
    st.text(alphabet="abc[]{},:=-0.5 ", max_size=12),
    st.sampled_from(["null", "true", "nan", "inf", "-inf", "[3", "{a: 1}", "", "[]", "[0.9, 0.999]", " ...", "---", "- a"]),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(KEYS), VALUES), max_size=3))
@example([("data.augmentations.zoom_range", " ...")])  # YAML once, not when OmegaConf re-reads it: found by this test
def test_any_override_is_a_config_or_one_user_error(pairs):
    overrides = [f"{k}={v}" for k, v in pairs]
    try:
        run = load_config(None, overrides)
    except UserError as exc:
        assert "\n" not in str(exc) and str(exc)
        return
    # what was accepted is in range: the checks the loader states hold for the result
    for key, (ok, _, _) in RANGES.items():
        value = run
        for part in key.split("."):
            value = getattr(value, part)
        assert ok(value), (key, value)
    assert run.optim.iterations >= 1 and run.data.batch_size >= 1
    assert all(0.5 <= t < 1 for t in run.loss.threshold)
    assert math.isfinite(run.optim.lr) and run.optim.lr > 0


@settings(max_examples=100, deadline=None)
@given(st.floats(allow_nan=True, allow_infinity=True))
def test_a_learning_rate_is_accepted_exactly_when_finite_and_positive(lr):
    try:
        run = load_config(None, [f"optim.lr={lr!r}"])
    except UserError as exc:
        assert "optim.lr" in str(exc)
        assert not (math.isfinite(lr) and lr > 0)
    else:
        assert math.isfinite(lr) and lr > 0 and run.optim.lr == pytest.approx(lr)


NAME = st.text(alphabet="abcxyz_-0123", min_size=1, max_size=8)


@given(NAME, st.sampled_from([".h5", ".hdf5", ".HDF", ".H5"]), st.lists(NAME, max_size=3), st.sampled_from([":/", ":", ""]))
def test_hdf5_spec_splits_into_file_and_key(stem, suffix, key_parts, sep):
    key = "/".join(key_parts)
    spec = f"dir/{stem}{suffix}" + (f"{sep}{key}" if sep else "")
    file, got = split_hdf5_spec(spec)
    assert file == Path(f"dir/{stem}{suffix}")
    assert got == ((key or None) if sep else None)


@given(st.lists(NAME, min_size=1, max_size=4), st.lists(NAME, min_size=0, max_size=3))
def test_spec_paths_overlap_exactly_when_one_lies_in_the_other(a_parts, tail):
    a = spec_path("/".join(["root", *a_parts]))
    b = spec_path("/".join(["root", *a_parts, *tail]))
    assert overlaps(a, b) and overlaps(b, a)
    sibling = spec_path("/".join(["root", *a_parts[:-1], a_parts[-1] + "_other"]))
    assert not overlaps(a, sibling)
    assert spec_path("/".join(["root", *a_parts]) + ".h5:/raw") == spec_path("/".join(["root", *a_parts]) + ".h5")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(alphabet="abc./:_-\\ ", min_size=0, max_size=20))
def test_any_spec_opens_or_is_one_user_error(tmp_path, text):
    import os

    cwd = os.getcwd()
    os.chdir(tmp_path)  # a relative spec never reaches outside this test's folder
    try:
        open_volume(text)
    except UserError as exc:
        assert "\n" not in str(exc)
    finally:
        os.chdir(cwd)


def test_an_existing_zarr_spec_opens(tmp_path):
    from masktwins3d.io import create_volume

    v = create_volume(tmp_path / "a.zarr", (2, 4, 4), np.uint8)
    v[:] = 1
    assert open_volume(str(tmp_path / "a.zarr")).shape == (2, 4, 4)
