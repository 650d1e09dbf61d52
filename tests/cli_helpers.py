"""Shared by the CLI tests: run ``masktwins3d`` in-process and check its one-line user errors."""

from masktwins3d.cli import main


def run_cli(capsys, *argv):
    """Exit code, stdout and stderr of ``masktwins3d *argv`` run in this process."""
    code = main(list(map(str, argv)))
    out, err = capsys.readouterr()
    return code, out, err


def assert_user_error(code, err, *needles):
    """Exit code 2 and exactly one stderr line ``error: ...`` that contains every needle."""
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for n in needles:
        assert n in lines[0], lines[0]
