"""`masktwins3d export bioimageio`: packages for a 2D softmax mito and a 3D sigmoid synapse model
pass the stand-alone `bioimageio test` command (bioimageio.core's CLI, in a subprocess) and
`export --test` offline; bad inputs are one line, exit 2, nothing written."""

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import yaml

os.environ.setdefault("BIOIMAGEIO_PERFORM_IO_CHECKS", "false")  # no network on these machines

from masktwins3d.config import load_config  # noqa: E402
from masktwins3d.io.points import SynapsePoints, write_points_h5  # noqa: E402
from masktwins3d.train import train  # noqa: E402

from cli_helpers import assert_user_error, run_cli  # noqa: E402
from conftest import tiny_overrides, write_pair  # noqa: E402
from test_cli_synapse import synapse_train_args  # noqa: E402


@pytest.fixture(scope="module")
def mito_checkpoint(tmp_path_factory):
    root = tmp_path_factory.mktemp("mito")
    pair = {"source": write_pair(root, "source", seed=1), "target": write_pair(root, "target", seed=2, bright=-0.5)}
    return train(load_config(None, tiny_overrides(pair, "masktwins", root / "run", iterations=2)))


@pytest.fixture(scope="module")
def synapse_checkpoint(tmp_path_factory):
    from masktwins3d.cli import main

    root = tmp_path_factory.mktemp("syn")
    write_points_h5(root / "gt.h5", SynapsePoints(np.array([[16, 16, 16]]), np.array([[0, 16, 16, 21]])))
    assert main([str(a) for a in synapse_train_args(root, root / "gt.h5", "masktwins")]) == 0
    return root / "run" / "checkpoint.pt"


def rdf(path):
    with zipfile.ZipFile(path) as z:
        return yaml.safe_load(z.read("rdf.yaml")), set(z.namelist())


def bioimageio_cli_test(package, work):
    """Run ``bioimageio test PACKAGE`` (the console script beside this Python) offline; return its JSON summary."""
    cli = Path(sys.executable).with_name("bioimageio")
    summary = work / "summary.json"
    env = {**os.environ, "BIOIMAGEIO_PERFORM_IO_CHECKS": "false", "BIOIMAGEIO_CACHE_PATH": str(work / "cache")}
    proc = subprocess.run([str(cli), "test", str(package), "--summary", str(summary)], env=env, cwd=work,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads(summary.read_text())


@pytest.mark.parametrize("track", ["mito", "synapse"])
def test_export_passes_bioimageio_test(capsys, tmp_path, tmp_path_factory, track, request):
    ckpt = request.getfixturevalue(f"{track}_checkpoint")
    out = tmp_path / f"{track}.zip"
    in_process = ["--test"] if track == "mito" else []  # export --test (bioimageio.core's test_model) once
    code, stdout, err = run_cli(capsys, "export", "bioimageio", "--checkpoint", ckpt, "--out", out, *in_process)
    assert code == 0, err
    assert "bioimage.io package" in stdout and out.is_file()
    assert ("bioimageio test: passed" in stdout) == bool(in_process)
    assert [p.name for p in tmp_path.iterdir()] == [out.name]  # nothing staged left beside it
    summary = bioimageio_cli_test(out, tmp_path_factory.mktemp(f"{track}_cli"))
    assert summary["status"] == "passed"
    checks = [d["name"] for d in summary["details"] if d["status"] == "passed"]
    for weights in ("pytorch_state_dict", "torchscript"):
        assert f"Reproduce test outputs from test inputs ({weights})" in checks
        assert sum(f"Run {weights} inference" in c for c in checks) == 6  # batch 1, 2 x sizes 32 + 16 n, n = 0..2
    descr, files = rdf(out)
    assert {"weights.pt", "weights_torchscript.pt", "masktwins3d_net.py", "test_input.npy", "test_output.npy", "README.md"} <= files
    assert set(descr["weights"]) == {"pytorch_state_dict", "torchscript"}
    inp, outp = descr["inputs"][0], descr["outputs"][0]
    prep = [p["id"] for p in inp["preprocessing"]]
    assert prep[:3] == ["ensure_dtype", "scale_linear", "fixed_zero_mean_unit_variance"]
    assert inp["preprocessing"][1]["kwargs"]["gain"] == pytest.approx(1 / 255)
    space = [a for a in inp["axes"] if a.get("type") == "space"]
    if track == "mito":
        assert [a["id"] for a in space] == ["y", "x"] and [a["scale"] for a in space] == [5.0, 5.0]
        assert outp["axes"][1]["channel_names"] == ["background", "mitochondria"]
    else:
        assert [a["id"] for a in space] == ["z", "y", "x"] and [a["scale"] for a in space] == [8.0, 8.0, 8.0]
        assert outp["axes"][1]["channel_names"] == ["pre", "post"]
    assert all(a["unit"] == "nanometer" for a in space)
    assert any("arXiv.2507.12008" in c.get("doi", "") for c in descr["cite"])
    assert "masktwins" in descr["description"] and "adapted to" in descr["description"]


def test_bad_export_inputs_write_nothing(capsys, tmp_path, mito_checkpoint):
    (tmp_path / "notes.txt").write_text("not a checkpoint")
    code, _, err = run_cli(capsys, "export", "bioimageio", "--checkpoint", tmp_path / "notes.txt", "--out", tmp_path / "m.zip")
    assert_user_error(code, err, "notes.txt", "checkpoint")
    code, _, err = run_cli(capsys, "export", "bioimageio", "--checkpoint", tmp_path / "missing.pt", "--out", tmp_path / "m.zip")
    assert_user_error(code, err, "missing.pt", "does not exist")
    code, _, err = run_cli(capsys, "export", "bioimageio", "--checkpoint", mito_checkpoint, "--out", tmp_path / "m.tar")
    assert_user_error(code, err, "m.tar", ".zip")
    code, _, err = run_cli(capsys, "export", "bioimageio", "--checkpoint", mito_checkpoint, "--out", tmp_path / "m.zip", "--license", "no-such-licence")
    assert_user_error(code, err, "license", "SPDX")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]
    (tmp_path / "m.zip").write_bytes(b"earlier")
    code, _, err = run_cli(capsys, "export", "bioimageio", "--checkpoint", mito_checkpoint, "--out", tmp_path / "m.zip")
    assert_user_error(code, err, "m.zip", "--overwrite")
    assert (tmp_path / "m.zip").read_bytes() == b"earlier"
    code, _, err = run_cli(capsys, "export", "bioimageio", "--checkpoint", mito_checkpoint, "--out", tmp_path / "m.zip", "--overwrite")
    assert code == 0, err
    assert zipfile.is_zipfile(tmp_path / "m.zip")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.zip", "notes.txt"]


def test_spec_that_cannot_serialise_is_one_line(capsys, tmp_path, mito_checkpoint, monkeypatch):
    import importlib.metadata

    pins = {"bioimageio.spec": "0.5.12.0", "pydantic": "2.12.0"}  # the pair that fails inside bioimageio.spec
    real = importlib.metadata.version
    monkeypatch.setattr(importlib.metadata, "version", lambda name: pins.get(name) or real(name))
    code, _, err = run_cli(capsys, "export", "bioimageio", "--checkpoint", mito_checkpoint, "--out", tmp_path / "m.zip")
    assert_user_error(code, err, "pydantic 2.12.0", "constraints.txt")
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("verb", [["export"], ["export", "bioimageio"], ["view"]])
def test_help(capsys, verb):
    from masktwins3d.cli import main

    with pytest.raises(SystemExit) as exc:
        main([*verb, "--help"])
    assert exc.value.code == 0
    assert "usage: masktwins3d" in capsys.readouterr().out


def test_citations_name_the_source_dataset():
    from masktwins3d.export.provenance import PAPER, citations

    cites = citations({"data": {"source": {"dataset": "vnc3:stack1"}}}, "unet2d")
    assert cites[0] == PAPER and len(cites) == 3
    assert cites[2][1] == "10.6084/m9.figshare.856713" and "Gerhard" in cites[2][0]
    assert len(citations({}, "resunet3d")) == 2
