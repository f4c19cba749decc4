"""Experiment-memory latency at N records in one workspace, beside sqlite3 in the same process.

    python benchmarks/records_bench.py [--records 10000] [--reps 40] [--no-rss]

Goldfish side: a real project whose workspace holds N run records with stage-run rows (sharded:
a head partition plus shard files) shaped like the runner writes them (history, inputs, outputs,
metrics summary, svs, results), a few tags; then the Records service: list_history(limit=20), list_history sorted by metric with a
stage filter, inspect_record, get_experiment_context and finalize_run (each rep finalizes another
run, so it includes the durable store commit). "store floor" is a one-field patch of one run row:
the cost of committing its shard at all, which finalize_run pays too.

"first call after a write" times a read right after this process wrote one run (finalize_run's kind of
write: its shard and its index entry); "after another process's write" times it after a separate process
patched a run, so this one re-reads that shard and index chunk from disk.

Memory: the resident set (VmRSS, and the peak VmHWM) of a real `goldfish serve` process on the project,
after initialize, after list_history (both orders) and after finalize_run over stdio; beside it, the
RSS of a process that reads every run (what holding the whole history costs).

Baseline: the same rows in a sqlite3 table (WAL, synchronous=FULL) with indexes on the columns
queried; the equivalent queries (top 20 by time, top 20 by metric for a stage, a point lookup, the
context's three queries) and an UPDATE + COMMIT for finalize.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import orjson
from ulid import ULID

from goldfish.init import init_project
from goldfish.project import Project

SPEC = {"primary_metric": "acc", "direction": "maximize", "min_value": 0.6, "goal_value": 0.7,
        "dataset_split": "val", "tolerance": 0.01, "context": "Benchmark classifier on the v2 features.",
        "secondary_metrics": ["loss"], "baseline_run": None, "failure_threshold": None, "known_caveats": []}


def _ts(base: datetime, seconds: int) -> str:
    return (base + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def make_rows(n: int, unfinalized: int) -> tuple[list[tuple[str, dict[str, Any]]], list[tuple[str, dict[str, Any]]]]:
    """(records, runs) as (id, doc); the last ``unfinalized`` runs are completed with auto results only."""
    rng = random.Random(7)
    base = datetime(2025, 1, 1, tzinfo=UTC)
    records, runs = [], []
    for i in range(n):
        rid, record_id, prun = f"stage-{i:08x}", str(ULID()), f"prun-{i:08x}"
        stage = "train" if i % 3 else "eval"
        created = _ts(base, i * 60)
        value = round(rng.uniform(0.5, 0.75), 4)
        finalized = i < n - unfinalized
        state = "completed" if i % 17 else "failed"
        outcome = "completed" if state == "completed" else "crashed"
        records.append((record_id, {"type": "run", "workspace": "bench", "stage_run_id": rid, "pipeline_run_id": prun,
                                    "stage": stage, "version": f"v{1 + i // 10}", "experiment_group": None,
                                    "created_at": created, "tags": []}))
        auto = {"primary_metric": "acc", "value": value, "direction": "maximize", "dataset_split": "val",
                "secondary": {"loss": 1 - value}, "ml_outcome_hint": "partial", "metric_logged": True}
        runs.append((rid, {
            "workspace": "bench", "pipeline_run_id": prun, "stage": stage, "record_id": record_id,
            "version": f"v{1 + i // 10}", "sha": f"{i:040x}", "state": state,
            "cause": None if state == "completed" else "exit_nonzero", "error": None,
            "history": [{"ts": created, "from": a, "to": b, "cause": None, "source": "runner"}
                        for a, b in (("pending", "preparing"), ("preparing", "launching"), ("launching", "running"),
                                     ("running", "post_run"), ("post_run", state))],
            "created_at": created, "started_at": created, "finished_at": _ts(base, i * 60 + 50), "updated_at": created,
            "reason": {"description": f"Sweep point {i}: lr and depth", "hypothesis": "Deeper helps up to 6 layers",
                       "approach": None, "min_result": None, "goal": None},
            "reason_summary": f"Sweep point {i}: lr and depth | H: Deeper helps up to 6 layers",
            "results_spec": SPEC, "experiment_group": None,
            "config": {"lr": rng.choice([0.1, 0.01, 0.001]), "layers": rng.randint(2, 8), "epochs": 10,
                       "compute": {"profile": "cpu-small"}},
            "profile": "cpu-small", "max_runtime_seconds": 3600, "heartbeat_timeout_seconds": None,
            "depends_on": ["prep"],
            "inputs": {"features": {"kind": "stage", "run_id": "stage-ffffffff", "signal": "features", "source": None,
                                    "location": "/proj-dev/.goldfish/runs/stage-ffffffff/outputs/features",
                                    "type": "npy", "format": "npy"}},
            "outputs": {"model": {"location": f"/proj-dev/.goldfish/runs/{rid}/outputs/model", "type": "file",
                                  "format": "file", "exists": True, "size_bytes": 123456, "artifact": True}},
            "backend": "local", "backend_handle": {"pid": 1000 + i, "pgid": 1000 + i},
            "run_dir": f"/proj-dev/.goldfish/runs/{rid}", "cancel_requested": False, "cancel_reason": None,
            "infra_outcome": outcome, "results_status": "finalized" if finalized else "auto",
            "ml_outcome": "partial" if finalized else "unknown", "results_auto": auto,
            "results_final": ({"primary_metric": "acc", "direction": "maximize", "value": value,
                               "dataset_split": "val", "ml_outcome": "partial",
                               "notes": "Judged from the validation curve."} if finalized else None),
            "results_history": [], "comparison": None, "finalized_at": _ts(base, i * 60 + 55) if finalized else None,
            "finalized_by": "mcp" if finalized else None,
            "metrics_summary": {m: {"last": value, "min": 0.1, "max": 0.9, "count": 100, "trend": "up",
                                    "last_step": 99, "updated_at": created} for m in ("acc", "loss")},
            "svs": {"preflight": {"errors": [], "warnings": []}, "review": None, "skip_review": False,
                    "during": [], "post": None, "findings_count": 0},
            "lineage_recorded": True, "exit_code": 0,
        }))
    return records, runs


def build_project(root: Path, records: list[tuple[str, dict[str, Any]]],
                  runs: list[tuple[str, dict[str, Any]]]) -> Project:
    init_project(root / "proj", "proj")
    project = Project.open(root / "proj", source="mcp")
    with project.store.transaction() as tx:
        tx.table("workspaces").add({"name": "bench", "goal": "benchmark", "parent_workspace": None,
                                    "parent_version": None, "deleted_at": None}, doc_id="bench")
        versions = tx.table("versions", "ws/bench")
        for v in range(1, len(runs) // 10 + 2):
            versions.add({"number": v, "tag": f"bench-v{v}", "sha": "0" * 40, "created_at": "2025-01-01",
                          "created_by": "run", "description": None, "pruned_at": None, "prune_reason": None,
                          "tags": []}, doc_id=f"v{v}")
        rec_table, run_table = tx.table("records", "ws/bench"), tx.table("runs", "ws/bench")
        index, record_index = tx.table("run_index"), tx.table("record_index")
        for record_id, doc in records:
            rec_table.add(doc, doc_id=record_id)
            record_index.add({"workspace": "bench", "type": "run"}, doc_id=record_id)
        for rid, doc in runs:
            run_table.add(doc, doc_id=rid)
            index.add({"workspace": "bench", "kind": "stage"}, doc_id=rid)
    best = runs[len(runs) // 2][0]
    project.records.tag_record(best, "best")
    return project


def timed(fn: Callable[[], Any], reps: int) -> float:
    samples = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples) * 1000


def bench_goldfish(project: Project, runs: list[tuple[str, dict[str, Any]]], reps: int) -> dict[str, float]:
    rec = project.records
    rec.list_history("bench")  # warm the partition cache (the MCP server keeps it between calls)
    todo = [rid for rid, doc in runs if doc["results_status"] == "auto"]  # reps * 3 + 5: two finalize rows use them
    some = [doc["record_id"] for _, doc in runs[:: max(1, len(runs) // reps)]]
    probe = iter(some * 3)
    pending = iter(todo)
    floor_ids = iter([rid for rid, _ in runs[: reps * 4]])

    def finalize() -> None:
        rec.finalize_run(next(pending), {"primary_metric": "acc", "direction": "maximize", "value": 0.66,
                                         "dataset_split": "val", "ml_outcome": "partial",
                                         "notes": "Benchmark finalization of this run."})

    real_fsync, counted = os.fsync, [0]

    def counting(fd: int) -> None:
        counted[0] += 1
        real_fsync(fd)

    os.fsync = counting  # type: ignore[assignment]
    try:
        finalize()
    finally:
        os.fsync = real_fsync
    FSYNCS["finalize_run"] = counted[0]

    def without_fsync(fn: Callable[[], Any]) -> Callable[[], Any]:
        def run() -> Any:
            os.fsync = lambda fd: None  # type: ignore[assignment]
            try:
                return fn()
            finally:
                os.fsync = real_fsync
        return run

    def floor() -> None:
        with project.store.transaction() as tx:
            tx.table("runs", "ws/bench").patch(next(floor_ids), {"bench_touch": time.time()})

    def after_write(fn: Callable[[], Any]) -> Callable[[], float]:
        def run() -> float:
            floor()  # not timed: a write by this process (its read cache is refreshed without a re-parse)
            t0 = time.perf_counter()
            fn()
            return time.perf_counter() - t0
        return run

    def timed_inner(fn: Callable[[], float]) -> float:
        return statistics.median(fn() for _ in range(max(5, reps // 4))) * 1000

    # The hot shard: the runs shard a new run lands in, which other processes re-parse after writes.
    partition = max((project.store_dir / "ws").glob("bench.runs.*.json"))
    other_ids = iter([rid for rid, _ in runs[reps * 4: reps * 8]])

    def after_other_write(fn: Callable[[], Any]) -> Callable[[], float]:
        def run() -> float:
            subprocess.run([sys.executable, "-c", _OTHER_WRITER, str(project.root), next(other_ids)], check=True,
                           env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)})
            t0 = time.perf_counter()
            fn()
            return time.perf_counter() - t0
        return run

    cold = {
        "list_history, first call after a write": timed_inner(after_write(lambda: rec.list_history("bench"))),
        "list_history(metric), first after a write": timed_inner(
            after_write(lambda: rec.list_history("bench", stage="train", sort_by="metric", limit=20))),
        "get_experiment_context, first after a write": timed_inner(
            after_write(lambda: rec.get_experiment_context("bench"))),
        "list_history, after another process's write": statistics.median(
            after_other_write(lambda: rec.list_history("bench"))() for _ in range(5)) * 1000,
        "re-parse of the hot runs shard (other process)": timed(lambda: orjson.loads(partition.read_bytes()), 5),
    }
    def fsync_floor() -> None:
        with open(project.store_dir / "fsync-probe.bin", "wb") as f:
            f.write(b"x" * 4096)
            f.flush()
            os.fsync(f.fileno())

    return {
        "fsync of a 4 KB file (the disk's floor)": timed(fsync_floor, reps),
        "list_history(limit=20)": timed(lambda: rec.list_history("bench", limit=20), reps),
        "list_history(limit=20, oldest first)": timed(lambda: rec.list_history("bench", limit=20, desc=False), reps),
        "list_history(stage, sort_by=metric)": timed(
            lambda: rec.list_history("bench", stage="train", sort_by="metric", limit=20), reps),
        "list_history(stage, sort_by=metric, asc)": timed(
            lambda: rec.list_history("bench", stage="train", sort_by="metric", desc=False, limit=20), reps),
        "inspect_record": timed(lambda: rec.inspect_record(next(probe)), reps),
        "get_experiment_context": timed(lambda: rec.get_experiment_context("bench"), reps),
        "finalize_run": timed(finalize, reps),
        "finalize_run with os.fsync a no-op (its CPU and file work)": timed(without_fsync(finalize), reps),
        "store floor (1-field patch)": timed(floor, reps),
        **cold,
    }


FSYNCS: dict[str, int] = {}

_OTHER_WRITER = """
import sys, time
from goldfish.project import Project
project = Project.open(sys.argv[1])
with project.store.transaction() as tx:
    tx.table("runs", "ws/bench").patch(sys.argv[2], {"bench_touch": time.time()})
"""

_SERVE_CALLS = [
    ("after initialize", None),
    ("after list_history", ("list_history", {"workspace": "bench", "limit": 20})),
    ("after list_history(metric, both orders)", ("list_history", {"workspace": "bench", "stage": "train",
                                                                  "sort_by": "metric", "limit": 20})),
    ("", ("list_history", {"workspace": "bench", "sort_by": "metric", "desc": False, "limit": 20})),
    ("after finalize_run", ("finalize_run", None)),
    ("after get_experiment_context", ("get_experiment_context", {"workspace": "bench"})),
]


def _rss(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of ``pid`` in MB."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def serve_rss(project: Project, run_id: str) -> list[tuple[str, float, float]]:
    """The RSS of a real `goldfish serve` (stdio JSON-RPC) after each call of _SERVE_CALLS."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    proc = subprocess.Popen([sys.executable, "-m", "goldfish", "serve"], cwd=project.root, env=env,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert proc.stdin is not None and proc.stdout is not None

    def send(body: dict[str, Any], reply: bool = True) -> dict[str, Any] | None:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(orjson.dumps({"jsonrpc": "2.0", **body}) + b"\n")
        proc.stdin.flush()
        if not reply:
            return None
        while True:
            answer = orjson.loads(proc.stdout.readline())
            if answer.get("id") == body.get("id"):
                return dict(answer)

    send({"id": 1, "method": "initialize", "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                                                      "clientInfo": {"name": "bench", "version": "0"}}})
    send({"method": "notifications/initialized"}, reply=False)
    out = []
    for n, (label, call) in enumerate(_SERVE_CALLS, start=2):
        if call is not None:
            name, args = call
            if args is None:
                args = {"record_or_run_id": run_id, "results": {
                    "primary_metric": "acc", "direction": "maximize", "value": 0.66, "dataset_split": "val",
                    "ml_outcome": "partial", "notes": "Benchmark finalization over MCP."}}
            answer = send({"id": n, "method": "tools/call", "params": {"name": name, "arguments": args}}) or {}
            if answer.get("error") or (answer.get("result") or {}).get("isError"):
                raise RuntimeError(f"{name} failed over MCP: {answer}")
        if label:
            out.append((label, *_rss(proc.pid)))
    proc.stdin.close()
    proc.wait(timeout=30)
    return out


_WHOLE_HISTORY = """
import sys
from goldfish.project import Project
from pathlib import Path
project = Project.open(sys.argv[1])
runs = project.store.table("runs", "ws/bench")
n = sum(1 for _ in runs.raw().values())
status = dict(l.split(":", 1) for l in Path("/proc/self/status").read_text().splitlines() if ":" in l)
print(n, int(status["VmRSS"].split()[0]) / 1024)
"""


def whole_history_rss(project: Project) -> float:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    out = subprocess.run([sys.executable, "-c", _WHOLE_HISTORY, str(project.root)], env=env, check=True,
                         capture_output=True, text=True).stdout.split()
    return float(out[1])


def bench_sqlite(root: Path, records: list[tuple[str, dict[str, Any]]], runs: list[tuple[str, dict[str, Any]]],
                 reps: int) -> dict[str, float]:
    con = sqlite3.connect(root / "bench.sqlite", isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=FULL")
    con.execute("CREATE TABLE records (id TEXT PRIMARY KEY, stage_run_id TEXT, stage TEXT, created_at TEXT, body TEXT)")
    con.execute("CREATE TABLE runs (id TEXT PRIMARY KEY, stage TEXT, created_at TEXT, results_status TEXT, "
                "infra_outcome TEXT, value REAL, body TEXT)")
    con.execute("CREATE TABLE tags (id TEXT PRIMARY KEY, record_id TEXT, created_at TEXT)")
    con.execute("CREATE INDEX rec_created ON records(created_at)")
    con.execute("CREATE INDEX runs_stage_value ON runs(stage, value)")
    con.execute("CREATE INDEX runs_status ON runs(results_status, created_at)")
    con.execute("BEGIN")
    con.executemany("INSERT INTO records VALUES (?, ?, ?, ?, ?)",
                    [(i, d["stage_run_id"], d["stage"], d["created_at"], json.dumps(d)) for i, d in records])
    con.executemany("INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [(i, d["stage"], d["created_at"], d["results_status"], d["infra_outcome"],
                      (d["results_final"] or d["results_auto"])["value"], json.dumps(d)) for i, d in runs])
    con.execute("INSERT INTO tags VALUES ('best', ?, '2025-06-01')", (runs[len(runs) // 2][1]["record_id"],))
    con.execute("COMMIT")
    some = iter([d["record_id"] for _, d in runs[:: max(1, len(runs) // reps)]] * 3)
    todo = iter([rid for rid, d in runs if d["results_status"] == "auto"])

    def history(order: str = "DESC") -> list[Any]:
        rows = con.execute("SELECT r.body, u.body FROM records r LEFT JOIN runs u ON u.id = r.stage_run_id "
                           f"ORDER BY r.created_at {order} LIMIT 20").fetchall()
        return [(json.loads(a), json.loads(b)) for a, b in rows]

    def by_metric(order: str = "DESC") -> list[Any]:
        rows = con.execute(f"SELECT body FROM runs WHERE stage = 'train' ORDER BY value {order} LIMIT 20").fetchall()
        return [json.loads(r[0]) for r in rows]

    def inspect() -> Any:
        rid = next(some)
        row = con.execute("SELECT r.body, u.body FROM records r JOIN runs u ON u.id = r.stage_run_id "
                          "WHERE r.id = ?", (rid,)).fetchone()
        return json.loads(row[0]), json.loads(row[1])

    def context() -> Any:
        best = con.execute("SELECT u.body FROM tags t JOIN records r ON r.id = t.record_id JOIN runs u "
                           "ON u.id = r.stage_run_id WHERE t.id LIKE 'best%' ORDER BY t.created_at DESC LIMIT 1"
                           ).fetchone()
        trend = con.execute("SELECT body FROM runs WHERE results_status = 'finalized' "
                            "ORDER BY created_at DESC LIMIT 10").fetchall()
        waiting = con.execute("SELECT body FROM runs WHERE results_status = 'auto' AND infra_outcome IN "
                              "('completed', 'preempted', 'crashed')").fetchall()
        return json.loads(best[0]), [json.loads(r[0]) for r in trend], [json.loads(r[0]) for r in waiting]

    def finalize() -> None:
        rid = next(todo)
        body = json.loads(con.execute("SELECT body FROM runs WHERE id = ?", (rid,)).fetchone()[0])
        body.update({"results_status": "finalized", "ml_outcome": "partial"})
        con.execute("BEGIN")
        con.execute("UPDATE runs SET body = ?, results_status = 'finalized' WHERE id = ?", (json.dumps(body), rid))
        con.execute("COMMIT")

    return {"list_history(limit=20)": timed(history, reps),
            "list_history(limit=20, oldest first)": timed(lambda: history("ASC"), reps),
            "list_history(stage, sort_by=metric)": timed(by_metric, reps),
            "list_history(stage, sort_by=metric, asc)": timed(lambda: by_metric("ASC"), reps), "inspect_record": timed(inspect, reps),
            "get_experiment_context": timed(context, reps), "finalize_run": timed(finalize, reps)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--reps", type=int, default=40)
    parser.add_argument("--no-rss", action="store_true", help="skip the MCP server memory figures")
    args = parser.parse_args()
    records, runs = make_rows(args.records, unfinalized=args.reps * 3 + 5)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        project = build_project(root, records, runs)
        built = time.perf_counter() - t0
        files = list((project.store_dir / "ws").glob("bench*.json"))
        size = sum(f.stat().st_size for f in files)
        ours = bench_goldfish(project, runs, args.reps)
        base = bench_sqlite(root, records, runs, args.reps)
        memory: list[tuple[str, float, float]] = []
        whole = 0.0
        if not args.no_rss:
            left = [rid for rid, doc in runs if doc["results_status"] == "auto"]
            memory = serve_rss(project, left[-1])
            whole = whole_history_rss(project)
    print(f"{args.records} records in one workspace; {len(files)} partition files (head + shards) "
          f"{size / 1e6:.1f} MB "
          f"(built in {built:.1f}s); medians of {args.reps} reps")
    print(f"{'operation':58s} {'goldfish ms':>12s} {'sqlite3 ms':>11s} {'ratio':>7s}")
    for name, ms in ours.items():
        other = base.get(name)
        ratio = f"{ms / other:7.1f}" if other else "      -"
        print(f"{name:58s} {ms:12.2f} {other if other is not None else float('nan'):11.2f} {ratio}")
    for name, count in FSYNCS.items():
        print(f"{name} makes {count} fsyncs per call (files, directories, the event log, STATE.md)")
    if memory:
        print(f"\n`goldfish serve` memory ({args.records} records)      VmRSS MB   VmHWM MB")
        for label, rss, hwm in memory:
            print(f"{label:44s} {rss:10.1f} {hwm:10.1f}")
        print(f"{'baseline: a process that reads every run':44s} {whole:10.1f}")


if __name__ == "__main__":
    main()
