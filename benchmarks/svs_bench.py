"""SVS speed beside raw baselines measured in the same process.

    python benchmarks/svs_bench.py [--lines 2000] [--points 80000] [--reps 3]

Rows:
- ``rules_review`` of a stage module of ``--lines`` lines (every rule, pyflakes included) vs
  ``compile()`` of the same source (the least any review must do). Reported as the ratio
  review / compile and as milliseconds: a review runs once per stage run, so tens of
  milliseconds are fine.
- ``RunMonitor.tick`` reading ``--points`` new metric lines (with all rules) vs a raw loop that
  reads the file and ``json.loads`` each line. Ratio = monitor / baseline.
- An idle ``tick`` (nothing new, rules due) in microseconds: the runner calls it every 0.2 s.

Each timing is the median of ``--reps`` runs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from goldfish.config.svs import SvsConfig
from goldfish.pipelines.model import load_pipeline
from goldfish.svs.monitor import RunMonitor
from goldfish.svs.rules_review import rules_review

PIPELINE = """\
stages:
  - name: train
    outputs:
      model: {type: directory, schema: null}
"""
HEADER = """\
import numpy as np
from goldfish.io import get_config, get_output_path, save_output, heartbeat, should_stop
from goldfish.metrics import log_metric
"""
BLOCK = """
def step_{i}(w, x, cfg):
    lr = cfg["lr"]
    for epoch in range(cfg["epochs"]):
        grad = 2 * x.T @ (x @ w - 1.0) / len(x)
        w = w - lr * grad
        log_metric("train/loss_{i}", float(np.mean(grad)), step=epoch)
        heartbeat()
        if should_stop():
            break
    return w
"""


def _time(fn, reps: int) -> float:  # type: ignore[no-untyped-def]
    out = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return statistics.median(out)


def bench_rules(root: Path, lines: int, reps: int) -> tuple[float, float]:
    app = root / "app"
    (app / "modules").mkdir(parents=True)
    (app / "pipeline.yaml").write_text(PIPELINE)
    blocks = []
    i = 0
    while sum(b.count("\n") for b in blocks) < lines:
        blocks.append(BLOCK.format(i=i))
        i += 1
    source = HEADER + "".join(blocks) + '\nsave_output("model", get_output_path("model"))\n'
    (app / "modules" / "train.py").write_text(source)
    pipeline = load_pipeline(app)
    config = {"lr": 0.1, "epochs": 3}
    assert rules_review(app, pipeline, "train", config) == []
    review = _time(lambda: rules_review(app, pipeline, "train", config), reps)
    base = _time(lambda: compile(source, "train.py", "exec"), reps)
    return review, base


def bench_monitor(root: Path, points: int, reps: int) -> tuple[float, float, float]:
    cfg = SvsConfig.model_validate({"test_mode": True, "ai_during_run_interval_seconds": 1})
    reviews, bases = [], []
    idle = 0.0
    for rep in range(reps):
        run = root / f"run{rep}"
        rt = run / "outputs" / ".goldfish"
        rt.mkdir(parents=True)
        with open(rt / "metrics.jsonl", "w") as f:
            for step in range(points):
                f.write(json.dumps({"type": "metric", "name": f"m{step % 10}/loss", "value": 1.0 / (step + 1),
                                    "step": step // 10, "timestamp": "2026-01-01T00:00:00.000000Z"}) + "\n")
        monitor = RunMonitor(run, cfg, {"stage": "train", "started_at": 0.0, "stall_seconds": 1e9})
        start = time.perf_counter()
        monitor.tick(now=10.0)
        reviews.append(time.perf_counter() - start)
        start = time.perf_counter()
        with open(rt / "metrics.jsonl", "rb") as f:
            for line in f:
                json.loads(line)
        bases.append(time.perf_counter() - start)
        start = time.perf_counter()
        for k in range(100):
            monitor.tick(now=20.0 + 10 * k)
        idle = (time.perf_counter() - start) / 100
    return statistics.median(reviews), statistics.median(bases), idle


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, default=2000)
    parser.add_argument("--points", type=int, default=80_000)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        review, base = bench_rules(Path(tmp), args.lines, args.reps)
        print(f"rules_review {args.lines} lines: {review * 1000:.1f} ms; compile(): {base * 1000:.1f} ms;"
              f" ratio {review / base:.1f}x")
        tick, raw, idle = bench_monitor(Path(tmp), args.points, args.reps)
        print(f"monitor tick over {args.points} metric lines: {tick * 1000:.0f} ms; raw json.loads loop:"
              f" {raw * 1000:.0f} ms; ratio {tick / raw:.2f}x ({args.points / tick:,.0f} lines/s)")
        print(f"idle tick (rules due, nothing new): {idle * 1e6:.0f} us")


if __name__ == "__main__":
    main()
