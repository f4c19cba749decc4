"""Metrics API for stage code: scalars and artifacts into ``.goldfish/metrics.jsonl``.

Nothing here raises into user code. A rejected item (bad name, bool/NaN/string value, bad step,
step-mode switch, bad timestamp, name cap, bad artifact path) is reported on stderr and in
``logs.txt`` (the first 10 per reason, then a single "suppressed" note), skipped, and counted; the
counts reach the file as ``{"type": "lost", ...}`` records at the next flush. A NaN/Inf value also
writes a ``metric_health`` error finding (once per metric name).

Records are buffered and written with one ``write`` per flush: every
``GOLDFISH_METRICS_FLUSH_THRESHOLD`` records (default 1000), every
``GOLDFISH_METRICS_FLUSH_INTERVAL`` seconds (default 5) from a daemon thread, on
``flush()``/``finish()`` (which also fsyncs) and at interpreter exit.
"""

from __future__ import annotations

import atexit
import json
import math
import os
import sys
import threading
import time
from collections import Counter, deque
from pathlib import Path
from typing import IO, Any

from stage_sdk import _env, findings, runtime
from stage_sdk import _metric_rules as rules
from stage_sdk._metric_rules import Rejected
from stage_sdk._wandb import WandbMirror
import contextlib

__all__ = [
    "finish",
    "get_backend_errors",
    "get_logger",
    "had_backend_errors",
    "log_artifact",
    "log_artifacts",
    "log_metric",
    "log_metrics",
    "lost_counts",
]

PROBLEM_LOG_LIMIT = 10
LOSS_WINDOW = 100
LOSS_MIN_HISTORY = 10
LOSS_SPIKE_RATIO = 10.0


def _env_number(name: str, default: float, lo: float, hi: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        return default
    if not math.isfinite(value) or value <= 0:
        return default
    return min(max(value, lo), hi)


class _SpikeWatch:
    """Sliding minimum over the last ``LOSS_WINDOW`` values (monotonic deque, O(1) amortised)."""

    __slots__ = ("cooldown_until", "count", "window")

    def __init__(self) -> None:
        self.count = 0
        self.window: deque[tuple[int, float]] = deque()
        self.cooldown_until = -1

    def observe(self, value: float) -> float | None:
        """Return the window minimum when ``value`` spikes above 10x it, else None; then record value."""
        spike_min = None
        w = self.window
        if self.count >= LOSS_MIN_HISTORY and w and self.count > self.cooldown_until:
            low = w[0][1]
            if low > 0 and value > LOSS_SPIKE_RATIO * low:
                spike_min = low
                self.cooldown_until = self.count + LOSS_WINDOW  # one finding per window, not per step
        i = self.count
        while w and w[-1][1] >= value:
            w.pop()
        w.append((i, value))
        while w[0][0] <= i - LOSS_WINDOW:
            w.popleft()
        self.count = i + 1
        return spike_min


class MetricsLogger:
    """One run's metric writer. Use the module functions; this class is public for ``get_logger()``."""

    def __init__(self, outputs_dir: Path | None = None):
        self.outputs_dir = Path(outputs_dir) if outputs_dir is not None else _env.outputs_dir()
        self.path = self.outputs_dir / ".goldfish" / "metrics.jsonl"
        self.flush_threshold = int(_env_number("GOLDFISH_METRICS_FLUSH_THRESHOLD", 1000, 1, 1_000_000))
        self.flush_interval = _env_number("GOLDFISH_METRICS_FLUSH_INTERVAL", 5.0, 0.01, 3600.0)
        self.max_names = int(_env_number("GOLDFISH_METRICS_MAX_NAMES", 10_000, 1, 1_000_000))
        backend = (os.environ.get("GOLDFISH_METRICS_BACKEND") or "").strip().lower()
        self._mirror = WandbMirror(self._note) if backend == "wandb" else None
        if backend not in ("", "none", "jsonl", "wandb"):
            self._note(f"goldfish.metrics: unknown GOLDFISH_METRICS_BACKEND {backend!r}; using metrics.jsonl "
                       "only. Fix: set it to 'wandb' or leave it unset.")
        self._lock = threading.RLock()
        self._buf: list[str] = []
        self._modes: dict[str, tuple[bool, _SpikeWatch | None]] = {}
        self._lost: Counter[str] = Counter()
        self._lost_pending: Counter[str] = Counter()
        self._problems: Counter[str] = Counter()
        self._health_reported: set[str] = set()
        self._file: IO[str] | None = None
        self._ts_cache: tuple[int, str] = (-1, "")
        self._timer: threading.Thread | None = None
        self._stop = threading.Event()
        self._svs_on = _env.svs_config()["enabled"]
        atexit.register(self._at_exit)

    # ------------------------------------------------------------------------------------ problems

    def _note(self, message: str) -> None:
        runtime.append_log(runtime.format_log_line(message, "WARNING"), sys.stderr)

    def _reject(self, reason: str, message: str, count: int = 1) -> None:
        with self._lock:
            self._lost[reason] += count
            self._lost_pending[reason] += count
            self._problems[reason] += 1
            seen = self._problems[reason]
        if seen <= PROBLEM_LOG_LIMIT:
            self._note(f"goldfish.metrics: skipped ({reason}): {message}")
        elif seen == PROBLEM_LOG_LIMIT + 1:
            self._note(f"goldfish.metrics: further {reason!r} problems are not logged one by one; "
                       "they are counted in metrics.jsonl 'lost' records and lost_counts().")

    def _non_finite(self, name: object, value: float, step: int | None) -> None:
        try:
            name = rules.check_name(name)
        except Rejected as exc:
            self._reject(exc.reason, exc.message)
            return
        kind = "NaN" if math.isnan(value) else ("+Inf" if value > 0 else "-Inf")
        where = "" if step is None else f" at step {step}"
        self._reject("non_finite", f"metric {name!r} value {kind}{where} is not finite.")
        with self._lock:
            first = name not in self._health_reported
            self._health_reported.add(name)
        if first and self._svs_on:
            findings.record_findings([findings.Finding(
                "metric_health", "non_finite_metric", "error", name,
                f"Metric {name!r} produced {kind}{where}; the value was skipped. Training has likely diverged "
                "(check the learning rate, loss scaling and inputs).",
            )])

    # ------------------------------------------------------------------------------------- records

    def _now_iso(self) -> str:
        now = time.time()
        sec = int(now)
        cached = self._ts_cache
        if cached[0] != sec:
            cached = (sec, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec)))
            self._ts_cache = cached
        return f"{cached[1]}.{int((now - sec) * 1e6):06d}Z"

    def _record(self, name: Any, value: Any, step: int | None, ts: str) -> None:
        if type(value) is float:
            v = value
        else:
            try:
                v = rules.coerce_value(value)
            except Rejected as exc:
                raise Rejected(exc.reason, f"metric {rules.describe(name)}: {exc.message}") from None
        if v - v != 0.0:  # NaN or +-Inf (finite values give exactly 0.0)
            self._non_finite(name, v, step)
            return
        stepped = step is not None
        with self._lock:
            mode = self._modes.get(name) if type(name) is str else None
            if mode is None:
                mode = self._register(name, stepped)
            elif mode[0] is not stepped:
                raise Rejected("step_mode", f"metric {name!r} was first logged "
                               f"{'with' if mode[0] else 'without'} a step, so this call "
                               f"{'without' if mode[0] else 'with'} one is skipped; keep one mode per name.")
            self._buf.append(
                f'{{"type":"metric","name":"{name}","value":{v!r},"step":{"null" if step is None else step},'
                f'"timestamp":"{ts}"}}\n'
            )
            spike = mode[1].observe(v) if mode[1] is not None else None
            if len(self._buf) >= self.flush_threshold:
                self._flush_locked(False)
            if self._timer is None:
                self._timer = threading.Thread(target=self._timer_loop, name="goldfish-metrics-flush", daemon=True)
                self._timer.start()
        if spike is not None:
            self._loss_spike(name, v, spike, step)
        if self._mirror is not None:
            self._mirror.log(name, v, step)

    def _register(self, name: Any, stepped: bool) -> tuple[bool, _SpikeWatch | None]:
        rules.check_name(name)
        if len(self._modes) >= self.max_names:
            raise Rejected("name_cap", f"metric {name!r} would exceed the per-run cap of {self.max_names} "
                           "distinct names (GOLDFISH_METRICS_MAX_NAMES); reuse names and use steps.")
        mode = (stepped, _SpikeWatch() if rules.is_loss_name(name) else None)
        self._modes[name] = mode
        return mode

    def _loss_spike(self, name: str, value: float, low: float, step: int | None) -> None:
        where = "" if step is None else f" at step {step}"
        msg = (f"Loss {name!r} spiked to {value:.4g}{where}, more than {LOSS_SPIKE_RATIO:g}x the minimum "
               f"{low:.4g} of its last {LOSS_WINDOW} values: possible divergence.")
        self._note(f"goldfish.metrics: {msg}")
        if self._svs_on:
            findings.record_findings([findings.Finding(
                "metric_health", "loss_divergence", "warning", name, msg, value, LOSS_SPIKE_RATIO * low)])

    def log_metric(self, name: str, value: float, step: int | None = None, timestamp: Any = None) -> None:
        try:
            if step is not None and (type(step) is not int or step < 0):
                step = rules.check_step(step)
            ts = self._now_iso() if timestamp is None else rules.check_timestamp(timestamp)
            self._record(name, value, step, ts)
        except Rejected as exc:
            self._reject(exc.reason, exc.message)
        except Exception as exc:  # last resort: user code must never see an SDK error
            self._reject("internal", f"{type(exc).__name__}: {exc}")

    def log_metrics(self, metrics: dict[str, float], step: int | None = None, timestamp: Any = None) -> None:
        try:
            if not isinstance(metrics, dict):
                raise Rejected("invalid_batch", f"log_metrics expects a dict of name -> value, got "
                               f"{type(metrics).__name__}.")
            step = rules.check_step(step)
            ts = self._now_iso() if timestamp is None else rules.check_timestamp(timestamp)
        except Rejected as exc:
            size = len(metrics) if isinstance(metrics, dict) and metrics else 1
            self._reject(exc.reason, exc.message, size)
            return
        for name, value in list(metrics.items()):
            try:
                self._record(name, value, step, ts)
            except Rejected as exc:
                self._reject(exc.reason, exc.message)
            except Exception as exc:
                self._reject("internal", f"{type(exc).__name__}: {exc}")

    def log_artifact(self, name: str, path: Any) -> str | None:
        try:
            rules.check_name(name, "artifact name")
            rel = rules.check_artifact_path(path, self.outputs_dir)
        except Rejected as exc:
            self._reject(exc.reason if exc.reason != "invalid_name" else "invalid_artifact", exc.message)
            return None
        except Exception as exc:
            self._reject("invalid_artifact", f"{type(exc).__name__}: {exc}")
            return None
        full = self.outputs_dir / rel
        if not full.exists():
            self._note(f"goldfish.metrics: artifact {name!r} path {rel!r} does not exist yet in the outputs dir; "
                       "recorded anyway.")
        url = self._mirror.log_artifact(name, str(full)) if self._mirror is not None and full.exists() else None
        line = json.dumps({"type": "artifact", "name": name, "path": rel, "timestamp": self._now_iso(),
                           "backend_url": url}, ensure_ascii=False) + "\n"
        with self._lock:
            self._buf.append(line)
            self._flush_locked(False)
        return url

    def log_artifacts(self, artifacts: dict[str, Any]) -> dict[str, str | None]:
        if not isinstance(artifacts, dict):
            self._reject("invalid_artifact", f"log_artifacts expects a dict of name -> path, got "
                         f"{type(artifacts).__name__}.")
            return {}
        return {str(name): self.log_artifact(name, path) for name, path in list(artifacts.items())}

    # ---------------------------------------------------------------------------------------- flush

    def _open(self) -> IO[str]:
        if self._file is None or self._file.closed:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "a", encoding="utf-8", newline="")  # noqa: SIM115
        return self._file

    def _flush_locked(self, durable: bool) -> None:
        if self._lost_pending:
            pending = dict(self._lost_pending)
            self._lost_pending.clear()
            self._buf.append(json.dumps({"type": "lost", "count": sum(pending.values()), "reasons": pending}) + "\n")
        if not self._buf and (not durable or self._file is None):
            return
        data = "".join(self._buf)
        lines = len(self._buf)
        self._buf.clear()
        try:
            f = self._open()
            if data:
                f.write(data)
            f.flush()
            if durable:
                os.fsync(f.fileno())
        except Exception as exc:
            self._lost["write_error"] += lines
            self._file = None
            self._note(f"goldfish.metrics: could not write {self.path}: {exc}; {lines} records lost.")

    def flush(self, durable: bool = False) -> None:
        """Write buffered records now (``durable`` adds an fsync)."""
        with self._lock:
            self._flush_locked(durable)

    def _timer_loop(self) -> None:
        while not self._stop.wait(self.flush_interval):
            try:
                with self._lock:
                    if self._buf or self._lost_pending:
                        self._flush_locked(False)
            except Exception:  # the flusher thread must never die on a transient error
                pass

    def finish(self) -> str | None:
        """Flush and fsync; finish the mirror. Safe to call repeatedly; logging may continue after."""
        try:
            self.flush(durable=True)
            return self._mirror.finish() if self._mirror is not None else None
        except Exception as exc:
            self._note(f"goldfish.metrics: finish failed: {exc}")
            return None

    def _at_exit(self) -> None:
        self._stop.set()
        self.finish()
        with self._lock:
            if self._file is not None:
                with contextlib.suppress(Exception):
                    self._file.close()

    def _reset_after_fork(self) -> None:
        """In a forked child (DataLoader worker, multiprocessing): keep logging, but do not write the
        parent's buffered records a second time, and do not wait on locks or threads of the parent."""
        self._lock = threading.RLock()
        self._buf = []
        self._lost_pending = Counter()
        self._file = None  # the parent's file object; the child opens its own on first flush
        self._timer = None
        self._stop = threading.Event()

    def close(self) -> None:
        """Finish, stop the flush thread and close the file (for loggers made outside ``get_logger``)."""
        self._at_exit()
        atexit.unregister(self._at_exit)

    # ------------------------------------------------------------------------------------- queries

    def lost_counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._lost)

    def backend_errors(self) -> list[str]:
        return list(self._mirror.errors) if self._mirror is not None else []


_logger: MetricsLogger | None = None
_logger_lock = threading.Lock()


def _after_fork_in_child() -> None:
    global _logger_lock
    _logger_lock = threading.Lock()
    if _logger is not None:
        _logger._reset_after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def get_logger() -> MetricsLogger:
    """The process-wide logger, created from the environment on first use."""
    global _logger
    logger = _logger
    if logger is None:
        with _logger_lock:
            if _logger is None:
                _logger = MetricsLogger()
            logger = _logger
    return logger


def log_metric(name: str, value: float, step: int | None = None, timestamp: str | float | None = None) -> None:
    """Record one scalar. ``step``: None or int >= 0, one mode per name. ``timestamp``: ISO 8601
    (naive = UTC) or unix seconds; default now. Invalid input is logged and skipped, never raised."""
    (_logger or get_logger()).log_metric(name, value, step, timestamp)


def log_metrics(metrics: dict[str, float], step: int | None = None, timestamp: str | float | None = None) -> None:
    """Record several scalars with the same step and timestamp."""
    (_logger or get_logger()).log_metrics(metrics, step, timestamp)


def log_artifact(name: str, path: str) -> str | None:
    """Record an artifact at ``path`` (relative to the outputs dir); returns a backend URL or None."""
    return (_logger or get_logger()).log_artifact(name, path)


def log_artifacts(artifacts: dict[str, str]) -> dict[str, str | None]:
    """``log_artifact`` for each item; returns ``{name: backend URL or None}``."""
    return (_logger or get_logger()).log_artifacts(artifacts)


def finish() -> str | None:
    """Flush and fsync metrics.jsonl (and finish the W&B run, returning its URL when there is one)."""
    return (_logger or get_logger()).finish()


def flush() -> None:
    """Write buffered records now."""
    (_logger or get_logger()).flush()


def had_backend_errors() -> bool:
    return bool(_logger is not None and _logger.backend_errors())


def get_backend_errors() -> list[str]:
    return _logger.backend_errors() if _logger is not None else []


def lost_counts() -> dict[str, int]:
    """Items skipped so far in this process, by reason (``invalid_value``, ``non_finite``, ``step_mode``...)."""
    return _logger.lost_counts() if _logger is not None else {}
