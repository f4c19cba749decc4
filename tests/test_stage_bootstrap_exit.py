"""The stage bootstrap's exit: metrics are flushed when the stage used them, and a stage that
never imported the metrics module does not pay for importing it (and numpy) on its way out."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
REPORT = "import atexit, sys\natexit.register(lambda: print('imported at exit:', 'stage_sdk.metrics' in sys.modules))\n"


def _run(tmp_path: Path, body: str) -> str:
    module = tmp_path / "stage.py"
    module.write_text(REPORT + body)
    out = tmp_path / "outputs"
    (out / ".goldfish").mkdir(parents=True)
    env = {**os.environ, "PYTHONPATH": str(REPO), "GOLDFISH_OUTPUTS_DIR": str(out)}
    proc = subprocess.run([sys.executable, "-u", "-m", "stage_sdk._bootstrap", str(module)], env=env,
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_stage_without_metrics_does_not_import_them_at_exit(tmp_path: Path) -> None:
    assert "imported at exit: False" in _run(tmp_path, "print('hello')\n")


def test_stage_with_metrics_is_flushed_at_exit(tmp_path: Path) -> None:
    out = _run(tmp_path, "from goldfish.metrics import log_metric\nlog_metric('acc', 0.5, step=1)\n")
    assert "imported at exit: True" in out
    lines = (tmp_path / "outputs" / ".goldfish" / "metrics.jsonl").read_text().splitlines()
    assert any('"acc"' in line for line in lines), lines
