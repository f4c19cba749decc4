"""Store latency beside raw baselines measured in the same process.

    python benchmarks/store_bench.py [--sizes 100,1000,10000] [--reps 200]

Rows: a one-document transaction (lock, re-read check, write the partition
durably) and a cached lock-free read, at N documents in one partition; beside
a raw ``json.dumps`` + fsync + ``os.replace`` of the same data, and a sqlite3
WAL insert/select (synchronous=FULL, so both sides are durable).
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from goldfish.store import Store


def _doc(i: int) -> dict[str, object]:
    return {"state": "completed", "stage": "train", "i": i, "reason": "x" * 80, "metrics": {"loss": 0.1 * i}}


def _median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def bench_store(root: Path, n: int, reps: int) -> tuple[float, float]:
    store = Store(root)
    with store.transaction() as tx:
        t = tx.table("runs", "ws/bench")
        for i in range(n):
            t.put(f"r{i}", _doc(i))
    tx_times = []
    for k in range(reps):
        t0 = time.perf_counter()
        with store.transaction() as tx:
            tx.table("runs", "ws/bench").put(f"new{k}", _doc(k))
        tx_times.append(time.perf_counter() - t0)
    read_times = []
    for k in range(reps):
        t0 = time.perf_counter()
        store.table("runs", "ws/bench").get_doc(f"r{k % n}")
        read_times.append(time.perf_counter() - t0)
    return _median_ms(tx_times), _median_ms(read_times)


def bench_raw_json(root: Path, n: int, reps: int) -> float:
    data = {"runs": {f"r{i}": _doc(i) for i in range(n)}}
    path = root / "raw.json"
    times = []
    for k in range(reps):
        t0 = time.perf_counter()
        data["runs"][f"new{k}"] = _doc(k)
        tmp = path.with_suffix(".tmp")
        with open(tmp, "w") as f:
            f.write(json.dumps(data))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        times.append(time.perf_counter() - t0)
    return _median_ms(times)


def bench_sqlite(root: Path, n: int, reps: int) -> tuple[float, float]:
    con = sqlite3.connect(root / "bench.sqlite", isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=FULL")
    con.execute("CREATE TABLE runs (id TEXT PRIMARY KEY, body TEXT)")
    con.execute("BEGIN")
    con.executemany("INSERT INTO runs VALUES (?, ?)", [(f"r{i}", json.dumps(_doc(i))) for i in range(n)])
    con.execute("COMMIT")
    w, r = [], []
    for k in range(reps):
        t0 = time.perf_counter()
        con.execute("BEGIN IMMEDIATE")
        con.execute("INSERT INTO runs VALUES (?, ?)", (f"new{k}", json.dumps(_doc(k))))
        con.execute("COMMIT")
        w.append(time.perf_counter() - t0)
    for k in range(reps):
        t0 = time.perf_counter()
        row = con.execute("SELECT body FROM runs WHERE id = ?", (f"r{k % n}",)).fetchone()
        json.loads(row[0])
        r.append(time.perf_counter() - t0)
    con.close()
    return _median_ms(w), _median_ms(r)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", default="100,1000,10000")
    ap.add_argument("--reps", type=int, default=200)
    args = ap.parse_args(argv)
    print(f"{'docs':>6} | {'store tx ms':>11} {'raw json ms':>11} {'sqlite ms':>9} {'tx/raw':>6} | "
          f"{'store read ms':>13} {'sqlite read ms':>14}")
    for n in (int(s) for s in args.sizes.split(",")):
        with tempfile.TemporaryDirectory() as d:
            root = Path(d)
            tx_ms, read_ms = bench_store(root / "store", n, args.reps)
            raw_ms = bench_raw_json(root, n, args.reps)
            sq_w, sq_r = bench_sqlite(root, n, args.reps)
        print(f"{n:>6} | {tx_ms:>11.3f} {raw_ms:>11.3f} {sq_w:>9.3f} {tx_ms / raw_ms:>6.2f} | "
              f"{read_ms:>13.4f} {sq_r:>14.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
