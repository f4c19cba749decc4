"""Many runs with generated logs, written fast: store rows in one transaction (as ``run()`` writes them)
and each stage's ``logs/stdout.log`` plus Goldfish JSON-lines logs, as the launcher and the runner write
them. Used by tests/test_logsearch.py and benchmarks/logsearch_bench.py.

The plan is deterministic, so tests know which run ids every query must return.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from goldfish.project import Project
from goldfish.runs.state import ws_partition

BASE = datetime(2026, 3, 1, tzinfo=UTC)
WORKSPACES = ("alpha", "beta", "gamma")
STAGES = ("preprocess", "train", "evaluate")
FAILED = 617  # the one run that fails with a traceback
OOM = (40, 41, 500)  # runs that print "CUDA out of memory"
NAN = (7, 300, 500, 999)  # runs that print "loss is nan"
TRACEBACK = [
    "Traceback (most recent call last):",
    '  File "/app/modules/train.py", line 88, in main',
    "    scale = total / normalize_count(batch)",
    '  File "/app/modules/train.py", line 41, in normalize_count',
    "    return len(batch.rows) // batch.shards",
    "ZeroDivisionError: integer division or modulo by zero in normalize_count",
]


@dataclass
class Generated:
    runs: list[str] = field(default_factory=list)
    pruns: list[str] = field(default_factory=list)
    workspace: dict[str, str] = field(default_factory=dict)
    stage: dict[str, str] = field(default_factory=dict)
    start: dict[str, datetime] = field(default_factory=dict)


def run_id(i: int) -> str:
    return f"stage-{i:08x}"


def prun_id(i: int) -> str:
    return f"prun-{i:08x}"


def stamp(t: datetime) -> str:
    return t.strftime("%Y-%m-%d %H:%M:%S")


def run_lines(i: int, start: datetime, lines: int = 12) -> list[str]:
    out = [f"[goldfish {start.strftime('%Y-%m-%dT%H:%M:%S')}Z] launched (local, pid {1000 + i})"]
    for k in range(lines):
        t = start + timedelta(seconds=k + 1)
        out.append(f"[{stamp(t)}] INFO: epoch {k} loss={1.0 / (k + 1):.4f} lr=0.001 batch 64 samples {k * 64}")
        if k == 5 and i in OOM:
            out.append(f"[{stamp(t)}] ERROR: RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB")
        if k == 6 and i in NAN:
            out.append(f"[{stamp(t)}] WARNING: loss is nan at step {k}")
    if i == FAILED:
        out += TRACEBACK
    return out


def write_runs(project: Project, n: int, lines: int = 12) -> Generated:
    """``n`` stage runs (run i: workspace WORKSPACES[i % 3], stage STAGES[i // 3 % 3], started
    BASE + i minutes), each with its stdout.log; the index is not touched."""
    gen = Generated()
    for ws in WORKSPACES:
        project.workspaces.create(ws, goal="log search test", reason="workspace for generated runs")
    with project.store.transaction() as tx:
        index = tx.table("run_index")
        for i in range(n):
            rid, prun = run_id(i), prun_id(i)
            ws, stage = WORKSPACES[i % 3], STAGES[i // 3 % 3]
            start = BASE + timedelta(minutes=i)
            created = start.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            failed = i == FAILED
            tx.table("runs", ws_partition(ws)).put(rid, {
                "workspace": ws, "pipeline_run_id": prun, "stage": stage, "state": "failed" if failed else "completed",
                "cause": "exit_nonzero" if failed else None, "error": "exit code 1" if failed else None,
                "created_at": created, "started_at": created, "finished_at": created, "backend": "local",
                "history": []})
            index.put(rid, {"workspace": ws, "kind": "stage"})
            index.put(prun, {"workspace": ws, "kind": "pipeline"})
            gen.runs.append(rid)
            gen.pruns.append(prun)
            gen.workspace[rid], gen.stage[rid], gen.start[rid] = ws, stage, start
    for i, rid in enumerate(gen.runs):
        log = project.runs_dir / rid / "logs" / "stdout.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text("\n".join(run_lines(i, gen.start[rid], lines)) + "\n")
    return gen


def write_json_log(gf_dir: Path, role: str, records: list[dict[str, object]]) -> Path:
    path = gf_dir / "logs" / f"{role}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        for rec in records:
            f.write(json.dumps(rec) + "\n")
    return path
