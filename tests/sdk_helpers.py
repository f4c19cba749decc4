"""Helpers for the stage SDK tests: a stage environment on real directories, and a runner that
executes stage code in a real ``python`` subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


@dataclass
class StageEnv:
    root: Path
    inputs: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)
    user: dict[str, Any] = field(default_factory=dict)
    svs: dict[str, Any] | None = None
    run_id: str = "stage-0a1b2c3d"
    objects: bool = True
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def in_dir(self) -> Path:
        return self.root / "inputs"

    @property
    def out_dir(self) -> Path:
        return self.root / "outputs"

    @property
    def obj_dir(self) -> Path:
        return self.root / "objects"

    @property
    def rt(self) -> Path:
        return self.out_dir / ".goldfish"

    def env(self) -> dict[str, str]:
        self.in_dir.mkdir(parents=True, exist_ok=True)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        config = {**self.user, "stage": "train", "inputs": self.inputs, "outputs": self.outputs}
        env = {
            "GOLDFISH_INPUTS_DIR": str(self.in_dir),
            "GOLDFISH_OUTPUTS_DIR": str(self.out_dir),
            "GOLDFISH_STAGE_CONFIG": json.dumps(config),
            "GOLDFISH_RUN_ID": self.run_id,
            "GOLDFISH_STAGE": "train",
            "GOLDFISH_SVS_CONFIG": json.dumps(self.svs or {"enabled": True, "stats_enabled": True,
                                                           "default_enforcement": "warning", "domain": "default"}),
            "GOLDFISH_METRICS_FLUSH_INTERVAL": "5",
        }
        if self.objects:
            env["GOLDFISH_OBJECTS_DIR"] = str(self.obj_dir)
        env.update({k: v for k, v in self.extra.items() if k != "PYTHONPATH"})
        return env

    def run(self, code: str, *, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        self.root.mkdir(parents=True, exist_ok=True)
        script = self.root / f"stage_{abs(hash(code)) % 10**8}.py"
        script.write_text(textwrap.dedent(code))
        base = {k: v for k, v in os.environ.items() if not k.startswith("GOLDFISH_")}
        env = {**base, **self.env()}
        env["PYTHONPATH"] = str(REPO) + (os.pathsep + self.extra["PYTHONPATH"] if "PYTHONPATH" in self.extra else "")
        return subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True,
                              timeout=timeout, cwd=self.root)

    def apply(self, monkeypatch: Any) -> None:
        """Set this environment in the current process (for in-process tests of pure paths)."""
        for key in list(os.environ):
            if key.startswith("GOLDFISH_"):
                monkeypatch.delenv(key, raising=False)
        for key, value in self.env().items():
            monkeypatch.setenv(key, value)

    def metrics(self) -> list[dict[str, Any]]:
        path = self.rt / "metrics.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

    def findings(self) -> list[dict[str, Any]]:
        path = self.rt / "svs_findings.json"
        return json.loads(path.read_text())["findings"] if path.exists() else []

    def stats(self) -> dict[str, Any]:
        path = self.rt / "svs_stats.json"
        return json.loads(path.read_text())["stats"] if path.exists() else {}

    def tree(self) -> dict[str, bytes | None]:
        out: dict[str, bytes | None] = {}
        for p in sorted(self.root.rglob("*")):
            if p.name.startswith("stage_") and p.suffix == ".py":
                continue
            out[str(p.relative_to(self.root))] = p.read_bytes() if p.is_file() else None
        return out


def ok(proc: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert proc.returncode == 0, f"stage failed (rc={proc.returncode})\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    return proc
