"""Stage code imports goldfish.io / goldfish.metrics without pulling in the rest of Goldfish, and the
SDK benchmark runs end to end at a small size."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
HEAVY = ("goldfish.store", "goldfish.config", "goldfish.project", "pydantic", "tinydb", "git", "mcp", "textual",
         "yaml", "pandas", "anthropic", "google")


def _run(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOLDFISH_")}
    env["PYTHONPATH"] = str(REPO)
    return subprocess.run([sys.executable, *args] if args else [sys.executable, "-c", code], env=env,
                          capture_output=True, text=True, timeout=300, cwd=REPO)


def test_importing_the_stage_api_stays_light() -> None:
    proc = _run(
        "import sys, json\n"
        "import goldfish.io, goldfish.metrics\n"
        "from goldfish.io import *\nfrom goldfish.metrics import *\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    assert proc.returncode == 0, proc.stderr
    loaded = json.loads(proc.stdout)
    heavy = [m for m in loaded if any(m == h or m.startswith(h + ".") for h in HEAVY)]
    assert heavy == []
    assert [m for m in loaded if m.startswith("goldfish")] == ["goldfish", "goldfish.io", "goldfish.metrics"]


def test_stage_sdk_imports_nothing_of_goldfish() -> None:
    for path in (REPO / "stage_sdk").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            assert not any(n == "goldfish" or n.startswith("goldfish.") for n in names), (path, names)


def test_goldfish_io_reexports_exactly_the_sdk_api() -> None:
    import goldfish.io
    import goldfish.metrics
    import stage_sdk.io
    import stage_sdk.metrics

    assert goldfish.io.__all__ == stage_sdk.io.__all__
    assert goldfish.metrics.__all__ == stage_sdk.metrics.__all__
    for name in goldfish.io.__all__:
        assert getattr(goldfish.io, name) is getattr(stage_sdk.io, name)


def test_benchmark_smoke_run_at_8_mb() -> None:
    proc = _run("", str(REPO / "benchmarks" / "sdk_bench.py"), "--mb", "8", "--points", "20000", "--reps", "1",
                "--json")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].split()[:4] == ["benchmark", "sdk", "baseline", "ratio"]
    assert any(x.startswith("log_metric -> durable JSONL") for x in lines)
    assert any(x.startswith("save_output 8 MB float32") for x in lines)
    result = json.loads(lines[-1])
    assert result["mb"] == 8 and result["metrics_pts_per_s"] > 0 and result["sdk_save"] > 0
    assert proc.stderr == ""
