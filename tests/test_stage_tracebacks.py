"""A crashing stage's traceback starts at the user's code: the frames that launched the module
(the bootstrap, runpy) are left out. Real `python -m stage_sdk._bootstrap` processes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

GUARDLESS = """\
def helper(x):
    return x["missing"]


def main():
    helper({})
"""
GUARDED = GUARDLESS + '\n\nif __name__ == "__main__":\n    main()\n'
TOP_LEVEL = "import json\n\nvalue = 1 / 0\n"


def _crash(tmp_path: Path, code: str) -> str:
    module = tmp_path / "modules" / "train.py"
    module.parent.mkdir(parents=True, exist_ok=True)
    module.write_text(code)
    proc = subprocess.run([sys.executable, "-m", "stage_sdk._bootstrap", str(module)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 1
    return proc.stderr


@pytest.mark.parametrize("code, lines", [(GUARDLESS, [6, 2]), (GUARDED, [10, 6, 2]), (TOP_LEVEL, [3])])
def test_traceback_starts_at_the_users_module(tmp_path: Path, code: str, lines: list[int]) -> None:
    err = _crash(tmp_path, code)
    assert err.startswith("Traceback (most recent call last):\n"), err
    frames = [line.strip() for line in err.splitlines() if line.strip().startswith("File ")]
    assert frames == [f'File "{tmp_path / "modules" / "train.py"}", line {n}, in {name}'
                      for n, name in zip(lines, _names(code), strict=True)], err
    assert "_bootstrap" not in err and "runpy" not in err


def _names(code: str) -> list[str]:
    if code is TOP_LEVEL:
        return ["<module>"]
    return (["<module>"] if code is GUARDED else []) + ["main", "helper"]


def test_syntax_error_names_the_file_and_line_only(tmp_path: Path) -> None:
    err = _crash(tmp_path, "def main(:\n    pass\n")
    assert "train.py" in err and "line 1" in err and "SyntaxError" in err
    assert "_bootstrap" not in err and "Traceback" not in err
