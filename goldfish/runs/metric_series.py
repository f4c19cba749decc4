"""Metric series of a stage run: ``outputs/.goldfish/metrics.jsonl`` ingested incrementally.

The stage appends JSON lines; the runner (the only writer here) calls ``ingest`` every poll tick
and once more at post-run. Ingestion resumes at a byte offset and stops at the last whole line, so
a line being written is read next time. Each metric goes to an append-only binary file under
``<run_dir>/series/`` (records of step int64 (-1 = no step), value float64, unix time float64);
``series/index.json`` holds the offset, per-metric record counts and the summary (last, min, max,
count, trend). A crash between appending and writing the index is repaired on the next ingest by
truncating each series to the count the index records, so ingestion is idempotent.

``history`` reads series back, downsampled with LTTB (largest-triangle-three-buckets): deterministic,
and the first and last points are always kept.
"""

from __future__ import annotations

import json
import math
import os
import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from filelock import FileLock

from goldfish.fsutil import atomic_write
from goldfish.runs.state import now_iso, parse_iso

if TYPE_CHECKING:
    import numpy as np

RECORD = struct.Struct("<qdd")
INDEX = "index.json"
MAX_NAMES = 10_000
BATCH_BYTES = 8 << 20
TREND_WINDOW = 20
ARTIFACTS_KEPT = 1000
_NO_STEP = -1
_REPAIRED: set[str] = set()


def metrics_file(run_dir: Path) -> Path:
    return run_dir / "outputs" / ".goldfish" / "metrics.jsonl"


def series_dir(run_dir: Path) -> Path:
    return run_dir / "series"


def _trend(window: Sequence[float]) -> str:
    if len(window) < 2:
        return "flat"
    half = len(window) // 2
    first = sum(window[:half]) / half
    second = sum(window[half:]) / (len(window) - half)
    spread = max(window) - min(window)
    scale = max(spread, 1e-12 * max(1.0, abs(second)))
    delta = second - first
    if delta > 0.1 * scale:
        return "up"
    if delta < -0.1 * scale:
        return "down"
    return "flat"


@dataclass
class _Metric:
    file: str
    count: int = 0
    last: float | None = None
    min: float | None = None
    max: float | None = None
    last_step: int | None = None
    updated_at: str | None = None
    window: list[float] = field(default_factory=list)

    def extend(self, batch: _Batch) -> None:
        """Take one ingest batch of this metric (values in file order)."""
        values = batch.values
        self.count += len(values)
        self.last = values[-1]
        low, high = min(values), max(values)
        self.min = low if self.min is None else min(self.min, low)
        self.max = high if self.max is None else max(self.max, high)
        self.last_step = batch.last_step
        self.updated_at = _iso(batch.last_ts)
        self.window = [*self.window, *values[-TREND_WINDOW:]][-TREND_WINDOW:]

    def summary(self) -> dict[str, Any]:
        return {
            "last": self.last,
            "min": self.min,
            "max": self.max,
            "count": self.count,
            "trend": _trend(self.window),
            "last_step": self.last_step,
            "updated_at": self.updated_at,
        }


@dataclass
class _Batch:
    """What one ingest call read of one metric: values, packed records, the last step and time."""

    values: list[float] = field(default_factory=list)
    records: list[bytes] = field(default_factory=list)
    last_step: int | None = None
    last_ts: float = 0.0

    def add(self, value: float, step: int | None, ts: float) -> None:
        self.values.append(value)
        self.records.append(RECORD.pack(_NO_STEP if step is None else step, value, ts))
        self.last_step = step
        self.last_ts = ts


def _iso(ts: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _timestamp(raw: Any) -> float:
    if isinstance(raw, (int, float)) and not isinstance(raw, bool) and math.isfinite(raw):
        return float(raw)
    if isinstance(raw, str):
        parsed = parse_iso(raw)
        if parsed is not None:
            return parsed
    return parse_iso(now_iso()) or 0.0


@dataclass
class SeriesIndex:
    offset: int = 0
    metrics: dict[str, _Metric] = field(default_factory=dict)
    lost: dict[str, int] = field(default_factory=dict)
    artifacts: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def load(cls, run_dir: Path) -> SeriesIndex:
        try:
            raw = json.loads((series_dir(run_dir) / INDEX).read_text())
        except (FileNotFoundError, ValueError):
            return cls()
        metrics = {name: _Metric(**m) for name, m in raw.get("metrics", {}).items()}
        return cls(int(raw.get("offset", 0)), metrics, dict(raw.get("lost", {})), list(raw.get("artifacts", [])))

    def save(self, run_dir: Path) -> None:
        doc = {
            "offset": self.offset,
            "metrics": {name: m.__dict__ for name, m in self.metrics.items()},
            "lost": self.lost,
            "artifacts": self.artifacts,
        }
        atomic_write(series_dir(run_dir) / INDEX, json.dumps(doc), durable=False)

    def summary(self) -> dict[str, dict[str, Any]]:
        return {name: m.summary() for name, m in self.metrics.items()}

    def count_lost(self, reason: str, n: int = 1) -> None:
        self.lost[reason] = self.lost.get(reason, 0) + n


def _repair(run_dir: Path, index: SeriesIndex) -> None:
    """Cut every series back to the record count the index knows (undo a half-finished ingest)."""
    folder = series_dir(run_dir)
    for metric in index.metrics.values():
        path = folder / metric.file
        want = metric.count * RECORD.size
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            continue
        if size > want:
            os.truncate(path, want)


def _ingest_lock(run_dir: Path) -> FileLock:
    """One ingester per run at a time (the runner's tick, a reconciler settling a lost stage)."""
    folder = series_dir(run_dir)
    folder.mkdir(parents=True, exist_ok=True)
    return FileLock(str(folder / "ingest.lock"))


def ingest(run_dir: Path) -> tuple[SeriesIndex, bool]:
    """Read new whole lines of metrics.jsonl into the series; returns the index and whether it changed."""
    with _ingest_lock(run_dir):
        return _ingest(run_dir)


def _ingest(run_dir: Path) -> tuple[SeriesIndex, bool]:
    source = metrics_file(run_dir)
    index = SeriesIndex.load(run_dir)
    if str(run_dir) not in _REPAIRED:  # once per process: a previous writer may have died mid-ingest
        _repair(run_dir, index)
        _REPAIRED.add(str(run_dir))
    try:
        size = source.stat().st_size
    except FileNotFoundError:
        return index, False
    if size < index.offset:  # the stage replaced the file: nothing to resume
        index.count_lost("file_truncated")
        index.offset = 0
    if size == index.offset:
        return index, False
    with open(source, "rb") as f:
        f.seek(index.offset)
        data = f.read(BATCH_BYTES)
    end = data.rfind(b"\n")
    if end < 0:
        if len(data) < BATCH_BYTES:
            return index, False  # a line is still being written
        end = len(data) - 1  # one enormous line: skip it as malformed
        index.count_lost("malformed")
        index.offset += end + 1
        index.save(run_dir)
        return index, True
    folder = series_dir(run_dir)
    folder.mkdir(parents=True, exist_ok=True)
    pending: dict[str, _Batch] = {}
    seconds: dict[str, float] = {}
    fast, pack = _FAST.fullmatch, RECORD.pack
    for line in data[: end + 1].decode("utf-8", "replace").split("\n"):
        m = fast(line)
        if m is not None:  # the SDK's own line: no dict, no generic checks (hot: millions per run)
            name, raw_value, raw_step, raw_ts = m.groups()
            try:
                value = float(raw_value)
            except ValueError:
                pass
            else:
                batch = pending.get(name) or _batch(index, name, pending)
                if batch is not None:
                    step = None if raw_step == "null" else int(raw_step)
                    ts = _sdk_ts(raw_ts, seconds)
                    batch.values.append(value)
                    batch.records.append(pack(_NO_STEP if step is None else step, value, ts))
                    batch.last_step, batch.last_ts = step, ts
                continue
        if line.strip():
            _generic(index, line, pending)
    for name, batch in pending.items():
        metric = index.metrics[name]
        with open(folder / metric.file, "ab") as out:
            out.write(b"".join(batch.records))
        metric.extend(batch)
    index.offset += end + 1
    index.save(run_dir)
    return index, True


def ingest_all(run_dir: Path) -> SeriesIndex:
    """Ingest to the end of metrics.jsonl, however large (for a stage that has ended): a last line
    left without its newline is counted lost (``partial_line``), never silently dropped."""
    with _ingest_lock(run_dir):
        while True:
            index, changed = _ingest(run_dir)
            if not changed:
                break
        try:
            size = metrics_file(run_dir).stat().st_size
        except FileNotFoundError:
            return index
        if size > index.offset:
            index.count_lost("partial_line")
            index.offset = size
            index.save(run_dir)
        return index


# One line exactly as the SDK writes it (names are already checked there; quotes and backslashes
# cannot occur): parsed by one regex instead of json.loads and the generic checks.
_FAST = re.compile(r'\{"type":"metric","name":"([A-Za-z][A-Za-z0-9_./:-]{0,255})","value":(-?[0-9][0-9.eE+-]*),'
                   r'"step":(null|[0-9]{1,18}),"timestamp":"([^"\\]{0,40})"\}')


def _sdk_ts(raw: str, seconds: dict[str, float]) -> float:
    """``2026-01-01T00:00:00.123456Z`` parsed once per second of text; anything else generically."""
    if len(raw) == 27 and raw[19] == "." and raw[26] == "Z" and raw[20:26].isdigit():
        base = seconds.get(raw[:19])
        if base is None:
            parsed = parse_iso(raw[:19] + "Z")
            if parsed is None:
                return _timestamp(raw)
            base = seconds[raw[:19]] = parsed
        return base + int(raw[20:26]) / 1e6
    return _timestamp(raw)


def _batch(index: SeriesIndex, name: str, pending: dict[str, _Batch]) -> _Batch | None:
    """The batch of metric ``name`` (registering a new name), or None past MAX_NAMES."""
    if name not in index.metrics:
        if len(index.metrics) >= MAX_NAMES:
            index.count_lost("too_many_names")
            return None
        index.metrics[name] = _Metric(file=f"m{len(index.metrics):05d}.bin")
    batch = pending[name] = _Batch()
    return batch


def _generic(index: SeriesIndex, line: str, pending: dict[str, _Batch]) -> None:
    """Any other line: JSON, checked field by field; what cannot be used is counted lost."""
    try:
        item = json.loads(line)
    except ValueError:
        index.count_lost("malformed")
        return
    if not isinstance(item, dict):
        index.count_lost("malformed")
        return
    kind = item.get("type")
    if kind == "metric":
        _add_metric(index, item, pending)
    elif kind == "artifact":
        if len(index.artifacts) < ARTIFACTS_KEPT:
            index.artifacts.append({k: item.get(k) for k in ("name", "path", "timestamp", "backend_url")})
    elif kind == "lost":
        reasons = item.get("reasons")
        if isinstance(reasons, dict):
            for reason, n in reasons.items():
                if isinstance(n, int) and not isinstance(n, bool):
                    index.count_lost(f"sdk:{reason}", n)
    else:
        index.count_lost("unknown_type")


def _add_metric(index: SeriesIndex, item: dict[str, Any], pending: dict[str, _Batch]) -> None:
    name, value, step = item.get("name"), item.get("value"), item.get("step")
    if not isinstance(name, str) or not name or len(name) > 256:
        index.count_lost("invalid_name")
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        index.count_lost("invalid_value")
        return
    if step is not None and (isinstance(step, bool) or not isinstance(step, int) or not 0 <= step < 1 << 63):
        index.count_lost("invalid_step")
        return
    try:
        number = float(value)
    except OverflowError:
        index.count_lost("invalid_value")
        return
    batch = pending.get(name) or _batch(index, name, pending)
    if batch is not None:
        batch.add(number, step, _timestamp(item.get("timestamp")))


# ------------------------------------------------------------------------------------- reading
def read_series(run_dir: Path, name: str, index: SeriesIndex | None = None) -> np.ndarray | None:
    """Structured array (step, value, ts) of one metric, or None when the run never logged it."""
    import numpy as np  # lazily: the runner ingests on every tick and never needs numpy for it

    index = index or SeriesIndex.load(run_dir)
    metric = index.metrics.get(name)
    if metric is None:
        return None
    dtype = np.dtype([("step", "<i8"), ("value", "<f8"), ("ts", "<f8")])
    path = series_dir(run_dir) / metric.file
    try:
        raw = path.read_bytes()[: metric.count * RECORD.size]
    except FileNotFoundError:
        return np.zeros(0, dtype=dtype)
    return np.frombuffer(raw[: len(raw) - len(raw) % RECORD.size], dtype=dtype)


def lttb(x: np.ndarray, y: np.ndarray, threshold: int) -> np.ndarray:
    """Indices of the points LTTB keeps (first and last always; deterministic)."""
    import numpy as np

    n = len(x)
    if threshold >= n or threshold < 3:
        return np.arange(n) if threshold >= n else np.array([0, n - 1][: max(threshold, 1)])
    keep = np.empty(threshold, dtype=np.int64)
    keep[0], keep[-1] = 0, n - 1
    edges = np.linspace(1, n - 1, threshold - 1)
    a = 0
    for i in range(threshold - 2):
        lo, hi = int(edges[i]), int(edges[i + 1])
        nlo, nhi = hi, int(edges[i + 2]) if i + 2 < len(edges) else n
        nlo = min(nlo, n - 1)
        nhi = max(nhi, nlo + 1)
        cx, cy = float(np.mean(x[nlo:nhi])), float(np.mean(y[nlo:nhi]))
        bx, by = x[lo:hi], y[lo:hi]
        if len(bx) == 0:
            keep[i + 1] = lo
            a = lo
            continue
        area = np.abs((x[a] - cx) * (by - y[a]) - (x[a] - bx) * (cy - y[a]))
        pick = lo + int(np.argmax(area))  # argmax takes the first maximum: deterministic
        keep[i + 1] = pick
        a = pick
    return keep


def history(
    run_dir: Path,
    names: list[str] | None,
    max_points: int,
    step_range: tuple[int, int] | None = None,
) -> tuple[list[dict[str, Any]], list[str]]:
    """Per metric ``{name, total_points, points_in_range, downsampled, steps, values, first_at, last_at}``.

    Stepless metrics use their position (0, 1, 2, ...) as step. Returns the entries and the
    requested names the run never logged."""
    import numpy as np

    index = SeriesIndex.load(run_dir)
    wanted = sorted(index.metrics) if names is None else names
    out: list[dict[str, Any]] = []
    missing: list[str] = []
    for name in wanted:
        data = read_series(run_dir, name, index)
        if data is None:
            missing.append(name)
            continue
        steps = data["step"].astype(np.int64)
        if len(steps) and steps[0] == _NO_STEP:
            steps = np.arange(len(steps), dtype=np.int64)
        values = data["value"]
        ts = data["ts"]
        mask = np.ones(len(steps), dtype=bool)
        if step_range is not None:
            mask = (steps >= step_range[0]) & (steps <= step_range[1])
        steps, values, ts = steps[mask], values[mask], ts[mask]
        # LTTB needs x in order; steps logged out of order are sorted stably first.
        order = np.argsort(steps, kind="stable")
        steps, values, ts = steps[order], values[order], ts[order]
        finite = np.where(np.isfinite(values), values, 0.0)
        keep = lttb(steps.astype(np.float64), finite, max_points)
        out.append(
            {
                "name": name,
                "total_points": int(index.metrics[name].count),
                "points_in_range": len(steps),
                "downsampled": len(keep) < len(steps),
                "steps": [int(s) for s in steps[keep]],
                "values": [float(v) if math.isfinite(v) else None for v in values[keep]],
                "first_at": _iso(float(ts[0])) if len(ts) else None,
                "last_at": _iso(float(ts[-1])) if len(ts) else None,
            }
        )
    return out, missing
