"""Metric ingestion speed (what settle does with a stage's metrics.jsonl) beside a floor.

    python benchmarks/ingest_bench.py [--points 1000000] [--reps 3]

Rows:
- ``metric_series.ingest_all`` of ``--points`` lines in the SDK's format (one metric, stepped),
  from a fresh series dir each time;
- the floor, in the same process: reading the same file in the same 8 MB batches and splitting it
  into lines (no parsing, nothing written). Ratio = ingest time / floor time.

Each timing is the median of ``--reps`` runs.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from goldfish.runs import metric_series


def write_lines(path: Path, points: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    ts = "2026-01-01T00:00:00.000000Z"
    with open(path, "w") as f:
        for start in range(0, points, 100_000):
            f.write("".join(f'{{"type":"metric","name":"train/loss","value":{1.0 / (i + 1)!r},"step":{i},'
                            f'"timestamp":"{ts}"}}\n' for i in range(start, min(points, start + 100_000))))


def floor(path: Path) -> float:
    t0 = time.perf_counter()
    with open(path, "rb") as f:
        while data := f.read(metric_series.BATCH_BYTES):
            data.decode("utf-8", "replace").split("\n")
    return time.perf_counter() - t0


def ingest(run_dir: Path) -> float:
    shutil.rmtree(metric_series.series_dir(run_dir), ignore_errors=True)
    t0 = time.perf_counter()
    index = metric_series.ingest_all(run_dir)
    elapsed = time.perf_counter() - t0
    assert index.metrics["train/loss"].count > 0 and not index.lost
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp) / "run"
        source = metric_series.metrics_file(run_dir)
        write_lines(source, args.points)
        floors, ingests = [], []
        for _ in range(args.reps):
            floors.append(floor(source))
            ingests.append(ingest(run_dir))
        f, i = statistics.median(floors), statistics.median(ingests)
        mb = source.stat().st_size / 1e6
        print(f"metrics.jsonl: {args.points:,} lines, {mb:.0f} MB")
        print(f"floor (read + split):  {f:6.2f} s")
        print(f"ingest_all:            {i:6.2f} s  ({args.points / i:,.0f} lines/s, {i / f:.1f}x the floor)")


if __name__ == "__main__":
    main()
