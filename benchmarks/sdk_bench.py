"""Stage SDK speed beside raw baselines measured in the same process.

    python benchmarks/sdk_bench.py [--mb 512] [--points 1000000] [--reps 3] [--json]

Rows:
- ``log_metric`` into a durable ``metrics.jsonl`` (all records written, fsynced by ``finish()``)
  vs a raw loop of ``json.dumps`` + ``write`` of the same records, then flush + fsync.
  Target: >= 200,000 points/s.
- ``save_output`` / ``load_input`` of an ``--mb`` float32 array (stats off) vs ``np.save`` /
  ``np.load`` of the same array in the same directory. Ratio = baseline time / SDK time.
  Target: >= 0.9x.
- Stats cost at that size: computing the stats entry, evaluating the domain thresholds and merging
  ``svs_stats.json``, as a share of the SDK save (stats off). Target: <= 10%. The end-to-end
  difference between saving with stats on and off is printed beside it (noisier: it is the
  difference of two ~disk-bound timings).

Each timing is the median of ``--reps`` alternating runs.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np


def _median(xs: list[float]) -> float:
    return statistics.median(xs)


def bench_metrics(root: Path, points: int) -> tuple[float, float]:
    from stage_sdk import metrics

    values = [1.0 / (i + 1) for i in range(points)]
    logger = metrics.MetricsLogger(root / "sdk")
    t0 = time.perf_counter()
    for i in range(points):
        logger.log_metric("train/loss", values[i], step=i)
    logger.finish()
    sdk = points / (time.perf_counter() - t0)
    logger.close()
    lines = (root / "sdk" / ".goldfish" / "metrics.jsonl").read_text().count("\n")
    assert lines == points, f"expected {points} records, found {lines}"

    ts = "2026-01-01T00:00:00.000000Z"
    path = root / "raw.jsonl"
    t0 = time.perf_counter()
    with open(path, "a", encoding="utf-8") as f:
        for i in range(points):
            f.write(json.dumps({"type": "metric", "name": "train/loss", "value": values[i], "step": i,
                                "timestamp": ts}) + "\n")
        f.flush()
        os.fsync(f.fileno())
    raw = points / (time.perf_counter() - t0)
    return sdk, raw


def _stage_env(root: Path, stats_on: bool) -> None:
    os.environ.update({
        "GOLDFISH_INPUTS_DIR": str(root / "inputs"),
        "GOLDFISH_OUTPUTS_DIR": str(root / "outputs"),
        "GOLDFISH_STAGE_CONFIG": json.dumps({
            "stage": "bench",
            "inputs": {"big": {"type": "npy", "schema": {"kind": "tensor", "dtype": "float32"}}},
            "outputs": {"big": {"type": "npy", "schema": {"kind": "tensor", "shape": [None], "dtype": "float32"}}},
        }),
        "GOLDFISH_SVS_CONFIG": json.dumps({"enabled": True, "stats_enabled": stats_on,
                                           "default_enforcement": "warning", "domain": "default"}),
        "GOLDFISH_SVS_STATS_ENABLED": "true" if stats_on else "false",
    })


def bench_arrays(root: Path, mb: int, reps: int) -> dict[str, float]:
    from stage_sdk import findings, io, stats

    for sub in ("inputs", "outputs", "raw"):
        (root / sub).mkdir(parents=True)
    n = mb * 1024 * 1024 // 4
    arr = np.random.default_rng(0).standard_normal(n, dtype=np.float32)
    sdk_path = root / "outputs" / "big.npy"
    raw_path = root / "raw" / "big.npy"
    times: dict[str, list[float]] = {k: [] for k in ("sdk_save", "raw_save", "sdk_save_stats", "sdk_load",
                                                     "raw_load", "stats")}

    def timed(key: str, fn) -> None:
        t0 = time.perf_counter()
        fn()
        times[key].append(time.perf_counter() - t0)

    def stats_only() -> None:
        entry = stats.array_stats(arr)
        stats.evaluate(entry, signal="big", key="big", domain="default")
        findings.record_stats({"big": entry})

    for rep in range(reps):
        for path in (sdk_path, raw_path):
            path.unlink(missing_ok=True)
        order = [("raw_save", lambda: np.save(raw_path, arr))]
        _stage_env(root, stats_on=False)
        order.append(("sdk_save", lambda: io.save_output("big", arr)))
        for key, fn in order if rep % 2 == 0 else order[::-1]:
            timed(key, fn)
        sdk_path.unlink()
        _stage_env(root, stats_on=True)
        timed("sdk_save_stats", lambda: io.save_output("big", arr))
        timed("stats", stats_only)
        os.replace(sdk_path, root / "inputs" / "big.npy")
        loads = [("raw_load", lambda: np.load(raw_path)), ("sdk_load", lambda: io.load_input("big"))]
        for key, fn in loads if rep % 2 == 0 else loads[::-1]:
            timed(key, fn)
        (root / "inputs" / "big.npy").unlink()
    return {k: _median(v) for k, v in times.items()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=int, default=512, help="array size in MB (float32)")
    ap.add_argument("--points", type=int, default=1_000_000, help="metric points to log")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--json", action="store_true", help="print the results as JSON too")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="gf-sdk-bench-") as tmp:
        root = Path(tmp)
        (root / "m").mkdir()
        sdk_pts, raw_pts = bench_metrics(root / "m", args.points)
        t = bench_arrays(root / "a", args.mb, args.reps)

    rows = [
        ("log_metric -> durable JSONL", f"{sdk_pts:,.0f} pts/s", f"{raw_pts:,.0f} pts/s", sdk_pts / raw_pts,
         ">= 200,000 pts/s", sdk_pts >= 200_000),
        (f"save_output {args.mb} MB float32", f"{t['sdk_save']:.3f} s", f"{t['raw_save']:.3f} s np.save",
         t["raw_save"] / t["sdk_save"], ">= 0.9x", t["raw_save"] / t["sdk_save"] >= 0.9),
        (f"load_input {args.mb} MB float32", f"{t['sdk_load']:.3f} s", f"{t['raw_load']:.3f} s np.load",
         t["raw_load"] / t["sdk_load"], ">= 0.9x", t["raw_load"] / t["sdk_load"] >= 0.9),
        (f"stats cost at {args.mb} MB", f"{t['stats'] * 1000:.1f} ms", f"{t['sdk_save']:.3f} s save",
         t["stats"] / t["sdk_save"], "<= 10% of save", t["stats"] / t["sdk_save"] <= 0.10),
        ("save_output with stats on", f"{t['sdk_save_stats']:.3f} s", f"{t['sdk_save']:.3f} s stats off",
         t["sdk_save_stats"] / t["sdk_save"], "(end to end)", True),
    ]
    print(f"{'benchmark':34} {'sdk':>18} {'baseline':>22} {'ratio':>8}  {'target':18} result")
    for name, sdk, base, ratio, target, passed in rows:
        shown = f"{ratio * 100:.2f}%" if "stats cost" in name else f"{ratio:.2f}x"
        print(f"{name:34} {sdk:>18} {base:>22} {shown:>8}  {target:18} {'PASS' if passed else 'MISS'}")
    if args.json:
        print(json.dumps({"metrics_pts_per_s": sdk_pts, "raw_pts_per_s": raw_pts, **t,
                          "mb": args.mb, "points": args.points}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
