"""Log search at size, against ``grep -r`` of the same phrase in the same run.

1. Writes --size MB of stage logs (runs of ~1 MB each, stamped, varied lines; a rare traceback in
   three runs) plus store rows for their labels, as ``tests/logsearch_helpers.py`` does.
2. Initial indexing: throughput in MB/s, and the index's size on disk.
3. Incremental update after 10 MB more (appended to existing runs and new runs).
4. Query latency of a phrase from the traceback: the first search after the update and the median
   of repeated searches (``search_logs``: index freshness check, query, hits read back from the
   files), beside the median of ``grep -r -F`` of the same phrase over the same directory.
   Target: a repeated query at least 20x faster than grep.

    python benchmarks/logsearch_bench.py [--size 1024] [--samples 5]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from goldfish.init import init_project
from goldfish.logsearch.index import LogIndex
from goldfish.logsearch.search import search_logs
from goldfish.project import Project
from goldfish.runs.state import ws_partition

RUN_BYTES = 1 << 20
PHRASE = "integer division or modulo by zero in normalize_count"
WORDS = ("loader", "shard", "prefetch", "augment", "checkpoint", "optimizer", "scheduler", "gradient", "allreduce",
         "tokenizer", "embedding", "attention", "dropout", "validation", "holdout", "warmup", "cosine", "batch")
BASE = datetime(2026, 3, 1, tzinfo=UTC)


def _lines(i: int, rng: random.Random, start: datetime, budget: int) -> list[str]:
    out, size, k = [], 0, 0
    while size < budget:
        t = (start + timedelta(seconds=k)).strftime("%Y-%m-%d %H:%M:%S")
        kind = rng.random()
        if kind < 0.7:
            line = (f"[{t}] INFO: epoch {k // 500} step {k} loss={rng.random():.5f} lr={rng.random() / 100:.6f} "
                    f"grad_norm={rng.random() * 5:.3f} throughput={rng.randint(800, 2000)} samples/s")
        elif kind < 0.95:
            a, b = rng.sample(WORDS, 2)
            line = f"[{t}] INFO: {a} {b} id={rng.getrandbits(40):010x} took {rng.random() * 100:.1f} ms"
        else:
            line = f"[{t}] WARNING: {rng.choice(WORDS)} queue depth {rng.randint(0, 999)} above threshold"
        out.append(line)
        size += len(line) + 1
        k += 1
    if i % 337 == 5:  # three runs in a 1 GB corpus fail with the same traceback
        out += ["Traceback (most recent call last):", '  File "/app/modules/train.py", line 41, in normalize_count',
                f"ZeroDivisionError: {PHRASE}"]
    return out


def write_corpus(project: Project, first: int, count: int, run_bytes: int) -> int:
    rng = random.Random(first)
    written = 0
    with project.store.transaction() as tx:
        for i in range(first, first + count):
            rid = f"stage-{i:08x}"
            ws = ("alpha", "beta", "gamma")[i % 3]
            created = (BASE + timedelta(minutes=i)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            tx.table("runs", ws_partition(ws)).put(rid, {"workspace": ws, "pipeline_run_id": f"prun-{i:08x}",
                                                         "stage": "train", "state": "completed",
                                                         "created_at": created, "backend": "local"})
            tx.table("run_index").put(rid, {"workspace": ws, "kind": "stage"})
    for i in range(first, first + count):
        log = project.runs_dir / f"stage-{i:08x}" / "logs" / "stdout.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        data = "\n".join(_lines(i, rng, BASE + timedelta(minutes=i), run_bytes)) + "\n"
        log.write_text(data)
        written += len(data)
    return written


def append_more(project: Project, runs: int, total: int) -> int:
    """``total`` bytes: half appended to existing runs, half as new runs."""
    rng = random.Random(99)
    half = total // 2
    per = half // 20
    written = 0
    for i in range(0, min(runs, 20)):
        log = project.runs_dir / f"stage-{i * max(runs // 20, 1):08x}" / "logs" / "stdout.log"
        data = "\n".join(_lines(1, rng, BASE + timedelta(days=2), per)) + "\n"
        with open(log, "a") as f:
            f.write(data)
        written += len(data)
    return written + write_corpus(project, runs, max(1, half // RUN_BYTES), min(RUN_BYTES, half))


def _du(path: Path) -> int:
    return sum(os.path.getsize(Path(path.parent) / n) for n in os.listdir(path.parent) if n.startswith(path.name))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=1024, help="MB of logs to index (default 1024)")
    parser.add_argument("--samples", type=int, default=5)
    parser.add_argument("--dir", default=None, help="where to build the corpus (default: a temporary directory)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp_name:
        tmp = Path(tmp_name)
        root = init_project(tmp / "proj", "bench").project_root
        project = Project.open(root, source="bench")
        for ws in ("alpha", "beta", "gamma"):
            project.workspaces.create(ws, goal="log search benchmark", reason="workspace for generated runs")
        runs = max(1, args.size * (1 << 20) // RUN_BYTES)
        t0 = time.perf_counter()
        size = write_corpus(project, 0, runs, RUN_BYTES)
        print(f"corpus: {runs} runs, {size / 1e6:.0f} MB written in {time.perf_counter() - t0:.1f} s")

        index = LogIndex(project.gf_dir, project)
        t0, c0 = time.perf_counter(), time.process_time()
        stats = index.update()
        took, cpu = time.perf_counter() - t0, time.process_time() - c0
        index.close()
        db = project.gf_dir / "cache" / "logindex.sqlite"
        print(f"initial indexing: {stats['new_lines']:,} lines, {stats['new_bytes'] / 1e6:.0f} MB in {took:.1f} s "
              f"= {stats['new_bytes'] / 1e6 / took:.1f} MB/s wall ({stats['new_bytes'] / 1e6 / cpu:.1f} MB/s of this "
              f"process's CPU time); index on disk {_du(db) / 1e6:.0f} MB "
              f"({_du(db) / max(stats['new_bytes'], 1):.2f}x the logs)")

        more = append_more(project, runs, 10 << 20)
        index = LogIndex(project.gf_dir, project)
        t0 = time.perf_counter()
        stats = index.update()
        took = time.perf_counter() - t0
        index.close()
        print(f"incremental update: {more / 1e6:.1f} MB more -> {stats['new_lines']:,} lines, "
              f"{stats['new_bytes'] / 1e6:.1f} MB in {took:.2f} s "
              f"= {stats['new_bytes'] / 1e6 / took:.1f} MB/s")

        query = f'"{PHRASE}"'
        t0 = time.perf_counter()
        first = search_logs(project, query)
        first_took = time.perf_counter() - t0
        times = []
        for _ in range(args.samples):
            t0 = time.perf_counter()
            again = search_logs(project, query)
            times.append(time.perf_counter() - t0)
        assert [h.run_id for h in again.hits] == [h.run_id for h in first.hits] and first.hits
        repeated = statistics.median(times)
        grep_times = []
        for _ in range(max(3, args.samples // 2)):
            t0 = time.perf_counter()
            out = subprocess.run(["grep", "-r", "-F", "-l", PHRASE, str(project.runs_dir)], capture_output=True,
                                 text=True, check=False)
            grep_times.append(time.perf_counter() - t0)
        grep_files = len(out.stdout.splitlines())
        assert grep_files == len({h.run_id for h in first.hits}), (grep_files, [h.run_id for h in first.hits])
        grep = statistics.median(grep_times)
        print(f"query {query}: {len(first.hits)} hits; first {first_took * 1000:.1f} ms, repeated median "
              f"{repeated * 1000:.1f} ms; grep -r median {grep * 1000:.0f} ms -> {grep / repeated:.0f}x faster "
              f"(target >= 20x)")
        # Common words: the newest 50 of millions of matches.
        for common in ("epoch", "shard AND prefetch", "level:warning", "NOT epoch", "_time:[2026-03-01T10:00, 2026-03-01T10:10]"):
            times = []
            for _ in range(args.samples):
                t0 = time.perf_counter()
                got = search_logs(project, common)
                times.append(time.perf_counter() - t0)
            print(f"query {common}: {len(got.hits)} hits (newest of many), median {statistics.median(times) * 1000:.1f} ms")


if __name__ == "__main__":
    main()
