"""During-run monitor: the runner calls ``tick()`` on every poll of a running stage.

It reads what the stage wrote since the last tick (``metrics.jsonl``, ``logs.txt``, the stdout
log, ``svs_findings.json``, ``heartbeat``) from saved byte offsets, applies the rules (NaN/Inf,
loss spike and divergence, plateau, stall, OOM/CUDA/traceback lines) and, when configured, asks
the AI provider in a background thread. New findings are returned once; with
``svs.ai_during_run_auto_stop`` an error requests a stop by writing ``stop_requested``.

State lives in ``<run_dir>/svs_monitor_state.json`` (outside the outputs), so a re-attached runner
continues where the previous one stopped.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field

from goldfish.config.svs import SvsConfig
from goldfish.fsutil import atomic_write
from goldfish.svs import monitor_rules as mr
from goldfish.svs.ai import ProviderFailure, call_tool, failure_message
from goldfish.svs.findings import Finding, finding_from_sdk

STATE_FILE = "svs_monitor_state.json"
RULES_INTERVAL = 5.0
MAX_AI_FAILURES = 3
MAX_TRACKED_METRICS = 500
MAX_EMITTED = 5000
# Checks reported once per run whatever their source (the SDK and the monitor both see a NaN).
ONCE_PER_RUN = ("non_finite_metric",)


class MonitorSpec(BaseModel):
    """What the monitor knows about the run."""

    model_config = ConfigDict(extra="ignore")

    stage: str = Field(description="Stage name")
    run_id: str | None = Field(default=None, description="Stage run id")
    workspace: str | None = Field(default=None, description="Workspace")
    primary_metric: str | None = Field(default=None, description="results_spec primary metric")
    direction: Literal["maximize", "minimize"] | None = Field(default=None, description="Its direction")
    started_at: float | None = Field(default=None, description="Unix time the stage started")
    heartbeat_timeout_seconds: float | None = Field(default=None, description="Stage heartbeat timeout")
    stall_seconds: float | None = Field(default=None, description="Warn after this long without any output")
    run_command: str | None = Field(default=None, description="run(...) call with overrides, for the AI")
    reason: Any = Field(default=None, description="Structured reason (goal, hypothesis), for the AI")


class MonitorTick(NamedTuple):
    findings: list[Finding]
    stop_request: str | None


class _AiFinding(BaseModel):
    model_config = ConfigDict(extra="ignore")
    check: str = Field(min_length=1, description="short snake_case name, e.g. loss_divergence")
    severity: Literal["warning", "error"] = Field(description="error only when the run is hopeless")
    message: str = Field(min_length=1, description="what you see, with numbers")


class _AiAnswer(BaseModel):
    model_config = ConfigDict(extra="ignore")
    findings: list[_AiFinding] = Field(default_factory=list, description="anomalies found (may be empty)")
    request_stop: bool = Field(default=False, description="true only if continuing wastes compute")
    stop_reason: str | None = Field(default=None, description="why, if request_stop")
    summary: str = Field(default="", description="one or two sentences on how the run is going")


def _new_state(now: float) -> dict[str, Any]:
    return {
        "version": 1, "offsets": {}, "sdk_findings": {"size": -1, "mtime_ns": -1, "seen": []},
        "series": {}, "last_activity": now, "heartbeat_ts": None, "stalled": False, "emitted": {},
        "last_rules_at": 0.0, "last_ai_at": 0.0, "ai_calls": [], "ai_failures": 0, "ai_disabled": False,
        "ai_new_metrics": 0, "ai_new_lines": 0, "ai_lines": [], "ai_summary": None, "stop_requested": None,
    }


class RunMonitor:
    """Incremental monitor of one stage run (not thread-safe: one runner thread calls tick)."""

    def __init__(self, run_dir: Path, config: SvsConfig, spec: MonitorSpec | Mapping[str, Any], *,
                 outputs_dir: Path | None = None, write_stop: bool = True):
        self.run_dir = Path(run_dir)
        self.config = config
        self.spec = spec if isinstance(spec, MonitorSpec) else MonitorSpec.model_validate(spec)
        self.outputs = Path(outputs_dir) if outputs_dir is not None else self.run_dir / "outputs"
        self.rt = self.outputs / ".goldfish"
        self.state_path = self.run_dir / STATE_FILE
        self.write_stop = write_stop  # False: the caller writes stop_requested from the returned reason
        self.state = self._load()
        self._ai_thread: threading.Thread | None = None
        self._ai_result: tuple[str, Any] | None = None

    # ------------------------------------------------------------------ state
    def _load(self) -> dict[str, Any]:
        start = self.spec.started_at or time.time()
        try:
            doc = json.loads(self.state_path.read_text())
        except (OSError, ValueError):
            return _new_state(start)
        if not isinstance(doc, dict) or doc.get("version") != 1:
            return _new_state(start)
        return {**_new_state(start), **doc}

    def _save(self) -> None:
        # Advisory bookkeeping: atomic (never torn) but not fsynced on every tick.
        atomic_write(self.state_path, json.dumps(self.state, allow_nan=False, default=str), durable=False)

    @property
    def interval(self) -> float:
        return float(self.config.ai_during_run_interval_seconds)

    @property
    def stall_seconds(self) -> float:
        if self.spec.stall_seconds:
            return float(self.spec.stall_seconds)
        if self.spec.heartbeat_timeout_seconds:
            return float(self.spec.heartbeat_timeout_seconds)
        return max(3 * self.interval, 5.0 if self.config.test_mode else 60.0)

    # ------------------------------------------------------------------ tick
    def tick(self, now: float | None = None) -> MonitorTick:
        """New findings since the last tick, and the stop reason if this tick requested a stop."""
        now = time.time() if now is None else now
        if not self.config.enabled:
            return MonitorTick([], None)
        before = self._signature()
        findings: list[Finding] = self._collect_ai(now)
        if now - float(self.state["last_rules_at"]) >= min(self.interval, RULES_INTERVAL):
            self.state["last_rules_at"] = now
            findings += self._read_sdk_findings()  # first: SDK findings name the metric
            findings += self._read_metrics(now)
            findings += self._read_logs(now)
            self._read_heartbeat(now)
            findings += self._stall(now)
            self._maybe_start_ai(now)
        new = [f for f in findings if self._first_time(f, now)]
        stop = self._maybe_stop(new)
        if new or stop or self._signature() != before:
            self._save()  # an idle tick writes nothing
        return MonitorTick(new, stop)

    def _signature(self) -> tuple[Any, ...]:
        """What a rules pass can change (cheap to compare; last_rules_at need not survive a restart)."""
        s = self.state
        return (tuple(sorted(s["offsets"].items())), len(s["emitted"]), s["stalled"], s["heartbeat_ts"],
                s["sdk_findings"]["size"], s["sdk_findings"]["mtime_ns"], s["last_ai_at"], s["ai_failures"],
                s["ai_disabled"], s["stop_requested"], s["ai_summary"])

    def close(self, timeout: float = 5.0) -> None:
        """Wait for an AI call in flight (its answer is picked up by a later tick)."""
        if self._ai_thread is not None:
            self._ai_thread.join(timeout)

    def _first_time(self, finding: Finding, now: float) -> bool:
        emitted = self.state["emitted"]
        key = f"{finding.source}:{finding.check}:{finding.signal or ''}"
        if finding.check in ONCE_PER_RUN:
            key = finding.check
        elif finding.check == "traceback" or finding.source == "anthropic":
            key += ":" + finding.key
        if key in emitted:
            return False
        emitted[key] = now
        if len(emitted) > MAX_EMITTED:
            for old in sorted(emitted, key=emitted.get)[: len(emitted) - MAX_EMITTED]:
                del emitted[old]
        return True

    def _finding(self, check: str, severity: str, message: str, *, fix: str | None = None,
                 signal: str | None = None, value: float | None = None, threshold: float | None = None,
                 confidence: str = "high", source: str = "monitor") -> Finding:
        def clean(x: float | None) -> float | None:
            return x if x is None or math.isfinite(x) else None
        return Finding.model_validate({
            "source": source, "check": check, "severity": severity, "confidence": confidence,
            "stage": self.spec.stage, "message": message, "fix": fix, "signal": signal,
            "value": clean(value), "threshold": clean(threshold),
        })

    # ------------------------------------------------------------------ incremental reads
    def _read_new(self, path: Path, key: str) -> list[str]:
        """Whole new lines of ``path`` since the saved offset (a shrunk file starts over)."""
        offsets = self.state["offsets"]
        offset = int(offsets.get(key, 0))
        try:
            with open(path, "rb") as f:
                size = f.seek(0, 2)
                if size < offset:
                    offset = 0  # truncated or rotated
                cap = self.config.ai_during_run_log_file_max_bytes
                if size - offset > cap:
                    offset = size - cap  # far behind: read only the newest part
                f.seek(offset)
                data = f.read(size - offset)
        except OSError:
            return []
        end = data.rfind(b"\n")
        if end < 0:
            offsets[key] = offset
            return []
        offsets[key] = offset + end + 1
        return data[: end + 1].decode("utf-8", errors="replace").splitlines()

    def _read_metrics(self, now: float) -> list[Finding]:
        out: list[Finding] = []
        lines = self._read_new(self.rt / "metrics.jsonl", "metrics")
        if lines:
            self._activity(now)
        batches: dict[str, list[tuple[float, Any]]] = {}
        for line in lines:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if not isinstance(record, dict):
                continue
            if record.get("type") == "lost":
                reasons = record.get("reasons") if isinstance(record.get("reasons"), dict) else {}
                count = reasons.get("non_finite") if isinstance(reasons, dict) else None
                if isinstance(count, int) and count > 0:
                    out.append(self._finding(
                        "non_finite_metric", "error",
                        f"{count} metric value(s) were NaN/Inf and were dropped by log_metric.",
                        fix="Lower the learning rate, clip gradients, check inputs for NaN/Inf.", value=count))
                continue
            name, value = record.get("name"), record.get("value")
            if record.get("type") != "metric" or not isinstance(name, str):
                continue
            if isinstance(value, bool) or not isinstance(value, int | float):
                continue
            batches.setdefault(name, []).append((float(value), record.get("step")))
        for name, values in batches.items():
            out += self._ingest(name, values)
        return out

    def _emitted(self, check: str, signal: str) -> bool:
        return f"monitor:{check}:{signal}" in self.state["emitted"]

    def _ingest(self, name: str, values: list[tuple[float, Any]]) -> list[Finding]:
        """New values of one metric, in order: NaN/Inf, spikes, then the trend rules once per batch."""
        series_all = self.state["series"]
        if name not in series_all and len(series_all) >= MAX_TRACKED_METRICS:
            return []
        self.state["ai_new_metrics"] += len(values)
        series = series_all.setdefault(name, {"count": 0, "recent": [], "min": None, "max": None, "last": None})
        out: list[Finding] = []
        bad = next(((v, step) for v, step in values if not math.isfinite(v)), None)
        if bad is not None:
            out.append(self._finding(
                "non_finite_metric", "error", f"metric {name} is {bad[0]} (step {bad[1]}).",
                fix="Lower the learning rate, clip gradients, check inputs for NaN/Inf.", signal=name))
        finite = [(v, step) for v, step in values if math.isfinite(v)]
        if not finite:
            return out
        recent: list[float] = series["recent"]
        new = [v for v, _ in finite]
        loss = mr.is_loss(name)
        if loss and not self._emitted("loss_spike", name):
            hit = mr.first_spike(recent, new)
            if hit is not None:
                out.append(self._finding(
                    "loss_spike", "warning",
                    f"{name} jumped to {hit[0]:.4g}, above {mr.SPIKE_RATIO:g}x its recent minimum"
                    f" ({hit[1] / mr.SPIKE_RATIO:.4g}).",
                    fix="Watch for recovery; if it keeps rising lower the learning rate or clip gradients.",
                    signal=name, value=hit[0], threshold=hit[1]))
        low, high = min(new), max(new)
        series.update(count=series["count"] + len(new), last=new[-1], last_step=finite[-1][1],
                      min=low if series["min"] is None else min(series["min"], low),
                      max=high if series["max"] is None else max(series["max"], high))
        recent.extend(new)
        del recent[: max(0, len(recent) - mr.RECENT_KEEP)]
        if loss or name == self.spec.primary_metric:
            out += self._trend_rules(name, recent)
        return out

    def _trend_rules(self, name: str, recent: list[float]) -> list[Finding]:
        out: list[Finding] = []
        if mr.is_loss(name) and not self._emitted("loss_diverged", name):
            hit = mr.diverged(recent)
            if hit is not None:
                out.append(self._finding(
                    "loss_diverged", "error",
                    f"{name} stayed above {hit[1]:.4g} ({mr.SPIKE_RATIO:g}x its earlier minimum) for the last"
                    f" {mr.DIVERGED_RUN} values (now {hit[0]:.4g}): training diverged.",
                    fix="Lower the learning rate, add gradient clipping or warmup, then run again.",
                    signal=name, value=hit[0], threshold=hit[1]))
        if self._emitted("plateau", name):
            return out
        minimize = mr.is_loss(name) if name != self.spec.primary_metric else self.spec.direction != "maximize"
        flat = mr.plateau(recent, minimize=minimize)
        if flat is not None:
            out.append(self._finding(
                "plateau", "warning",
                f"{name} has not improved over its last {mr.PLATEAU_POINTS} values (best {flat[0]:.4g},"
                f" earlier best {flat[1]:.4g}).",
                fix="Consider stopping early, a learning-rate schedule, or a different approach.",
                signal=name, value=flat[0], threshold=flat[1], confidence="medium"))
        return out

    def _read_logs(self, now: float) -> list[Finding]:
        lines = self._read_new(self.rt / "logs.txt", "logs") + self._read_new(self.run_dir / "logs" / "stdout.log", "stdout")
        if not lines:
            return []
        self._activity(now)
        self._buffer_for_ai(lines)
        return [
            self._finding(check, severity, f"log line: {text[:300]}", fix=fix)
            for check, severity, text, fix in mr.log_hits(lines)
        ]

    def _read_sdk_findings(self) -> list[Finding]:
        path = self.rt / "svs_findings.json"
        try:
            st = path.stat()
        except OSError:
            return []
        meta = self.state["sdk_findings"]
        if (st.st_size, st.st_mtime_ns) == (meta["size"], meta["mtime_ns"]):
            return []
        try:
            doc = json.loads(path.read_text())
        except (OSError, ValueError):
            return []
        meta["size"], meta["mtime_ns"] = st.st_size, st.st_mtime_ns
        seen = set(meta["seen"])
        out = []
        for item in doc.get("findings", []) if isinstance(doc, dict) else []:
            finding = finding_from_sdk(item, stage=self.spec.stage)
            # contract and stats findings belong to the post-run review; the monitor passes metric health
            if finding is None or finding.source != "metric_health" or finding.key in seen:
                continue
            seen.add(finding.key)
            out.append(finding)
        meta["seen"] = sorted(seen)[-MAX_EMITTED:]
        return out

    def _read_heartbeat(self, now: float) -> None:
        try:
            doc = json.loads((self.rt / "heartbeat").read_text())
            ts = float(doc["timestamp"])
        except (OSError, ValueError, KeyError, TypeError):
            return
        if ts != self.state["heartbeat_ts"]:
            self.state["heartbeat_ts"] = ts
            self._activity(now)

    def _activity(self, now: float) -> None:
        self.state["last_activity"] = now
        if self.state["stalled"]:
            self.state["stalled"] = False
            self.state["emitted"].pop("monitor:stalled:", None)  # re-arm

    def _stall(self, now: float) -> list[Finding]:
        idle = now - float(self.state["last_activity"])
        if idle < self.stall_seconds or self.state["stalled"]:
            return []
        self.state["stalled"] = True
        return [self._finding(
            "stalled", "warning",
            f"no new metrics, log lines or heartbeat for {idle:.0f} s (threshold {self.stall_seconds:.0f} s).",
            fix="Check logs(run_id); call heartbeat() in long steps so progress is visible.",
            value=idle, threshold=self.stall_seconds)]

    # ------------------------------------------------------------------ stop
    def _maybe_stop(self, new: list[Finding]) -> str | None:
        if not self.config.ai_during_run_auto_stop or self.state["stop_requested"]:
            return None
        errors = [f for f in new if f.severity == "error" and f.confidence == "high"]
        if not errors:
            return None
        first = errors[0]
        reason = f"SVS monitor stopped the run: {first.check}: {first.message}"[:1000]
        path = self.rt / "stop_requested"
        if self.write_stop and not path.exists():
            atomic_write(path, reason)
        self.state["stop_requested"] = reason
        return reason

    # ------------------------------------------------------------------ AI
    def _buffer_for_ai(self, lines: list[str]) -> None:
        import re

        filters = [re.compile(p) for p in self.config.ai_during_run_log_filters]
        kept = [line for line in lines if any(r.search(line) for r in filters)]
        self.state["ai_new_lines"] += len(kept)
        buffer: list[str] = (self.state["ai_lines"] + kept)[-self.config.ai_during_run_log_max_lines:]
        while buffer and sum(len(x) + 1 for x in buffer) > self.config.ai_during_run_log_max_bytes:
            buffer.pop(0)
        self.state["ai_lines"] = buffer

    def _ai_due(self, now: float) -> bool:
        c, s = self.config, self.state
        if not (c.ai_during_run_enabled and c.agent_provider == "anthropic") or s["ai_disabled"]:
            return False
        if self._ai_thread is not None and self._ai_thread.is_alive():
            return False
        if now - float(s["last_ai_at"]) < self.interval:
            return False
        s["ai_calls"] = [t for t in s["ai_calls"] if now - t < 3600]
        if len(s["ai_calls"]) >= c.ai_during_run_max_runs_per_hour:
            return False
        return s["ai_new_metrics"] >= c.ai_during_run_min_metrics or (
            c.ai_during_run_min_log_lines > 0 and s["ai_new_lines"] >= c.ai_during_run_min_log_lines)

    def _maybe_start_ai(self, now: float) -> None:
        if not self._ai_due(now):
            return
        s = self.state
        s["last_ai_at"] = now
        s["ai_calls"].append(now)
        s["ai_new_metrics"] = s["ai_new_lines"] = 0
        prompt = self._ai_prompt()
        config = self.config

        def work() -> None:
            try:
                parsed, _ = call_tool(
                    config, system="You watch a machine-learning training run and flag anomalies: diverging loss,"
                    " NaN/Inf, exploding gradients, sudden drops, CUDA/OOM errors, stalls. Request a stop only when"
                    " continuing clearly wastes compute.", prompt=prompt, tool_name="submit_monitor_review",
                    tool_description="Report anomalies in the running stage.", answer=_AiAnswer,
                    timeout=float(config.agent_timeout), max_tokens=2048,
                )
                self._ai_result = ("ok", parsed)
            except ProviderFailure as failure:
                self._ai_result = ("failed", failure)
            except Exception as exc:  # a bug in a background call must not kill the runner
                self._ai_result = ("failed", ProviderFailure("unavailable", f"{type(exc).__name__}: {exc}"))

        self._ai_thread = threading.Thread(target=work, name="svs-monitor-ai", daemon=True)
        self._ai_thread.start()

    def _ai_prompt(self) -> str:
        metrics = {name: mr.summary_entry(series) for name, series in list(self.state["series"].items())[:100]}
        return (
            f"<stage>{self.spec.stage}</stage>\n<run_command>{self.spec.run_command or ''}</run_command>\n"
            f"<reason>{json.dumps(self.spec.reason, default=str)}</reason>\n"
            f"<primary_metric direction=\"{self.spec.direction}\">{self.spec.primary_metric}</primary_metric>\n"
            f"<metrics>{json.dumps(metrics, default=str)}</metrics>\n"
            "<logs>" + "\n".join(self.state["ai_lines"]) + "</logs>"
        )

    def _collect_ai(self, now: float) -> list[Finding]:
        result, self._ai_result = self._ai_result, None
        if result is None:
            return []
        kind, payload = result
        if kind == "failed":
            self.state["ai_failures"] += 1
            if self.state["ai_failures"] < MAX_AI_FAILURES:
                return []
            self.state["ai_disabled"] = True
            return [self._finding(
                "ai_monitor_disabled", "warning",
                failure_message("monitor", payload) + f" After {MAX_AI_FAILURES} consecutive failures the AI"
                " monitor is off for this run; the rules keep running.",
                fix="Check ANTHROPIC_API_KEY and svs.anthropic_base_url.", source="anthropic")]
        self.state["ai_failures"] = 0
        self.state["ai_summary"] = payload.summary[: self.config.ai_during_run_summary_max_chars]
        out = [self._finding(f"ai:{item.check}"[:64], item.severity, item.message[:1000], source="anthropic",
                             confidence="high" if item.severity == "error" else "medium")
               for item in payload.findings]
        if payload.request_stop:
            out.append(self._finding(
                "ai:request_stop", "error", payload.stop_reason or payload.summary or "the AI monitor asked to stop",
                source="anthropic"))
        return out
