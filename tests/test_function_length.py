"""No function in masktwins3d/ is longer than 80 lines (from its ``def`` to its last line,
docstring included), except the published WASPSYN scoring protocol, kept whole as published."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "masktwins3d"
LIMIT = 80
PUBLISHED = {"evaluate/synapse.py:score_synapses"}


def test_no_function_is_over_the_limit():
    long = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                name = f"{path.relative_to(PACKAGE).as_posix()}:{node.name}"
                lines = node.end_lineno - node.lineno + 1
                if lines > LIMIT and name not in PUBLISHED:
                    long.append(f"{name} ({lines} lines)")
    assert not long, f"over {LIMIT} lines: {long}; split them into the steps they take"
