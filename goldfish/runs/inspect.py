"""``inspect_run(run_id, include)``: infra detail of one stage run, by section.

Sections: dashboard (state, elapsed, heartbeat, live metrics), metadata, thoughts (audit rows with
op ``thought`` and ``details.run_id``), manifest (config, inputs, outputs, reason, results_spec),
provenance (version, commit, inputs lineage, backend handle), svs (preflight, review, during-run
findings, post-run stats and findings), attempt (how many times this stage ran in the workspace and
how those runs went). Everything is read from the store and the run dir; nothing is written.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any, Literal, get_args

from pydantic import BaseModel, Field

from goldfish import names

from goldfish.runs import metric_series
from goldfish.errors import InvalidInput
from goldfish.runs.state import ACTIVE, parse_iso, ws_partition

if TYPE_CHECKING:
    from goldfish.project import Project

Section = Literal["dashboard", "metadata", "thoughts", "logs", "manifest", "provenance", "svs", "attempt"]
SECTIONS: tuple[str, ...] = get_args(Section)
DEFAULT_INCLUDE = ("dashboard", "metadata", "thoughts", "logs")
LOG_LINES = 40
LOG_CHARS = 8_000
DEFAULT_METRICS = ("loss", "accuracy", "val_loss", "val_accuracy", "ppl")
DASHBOARD_METRICS = 8
THOUGHTS = 20
MAX_JSON = 20_000


class Dashboard(BaseModel):
    state: str
    cause: str | None = None
    phase: str = Field(description="What the run is doing now, in words")
    elapsed_seconds: float | None = Field(default=None, description="Since it started running (or until it ended)")
    heartbeat_age_seconds: float | None = Field(default=None, description="Age of the stage's last heartbeat")
    stalled: bool = Field(default=False, description="Heartbeat older than jobs.heartbeat_grace_seconds")
    stop_requested: str | None = Field(default=None, description="Reason of a pending stop request")
    metrics: dict[str, dict[str, Any]] = Field(default_factory=dict, description="name → {last,min,max,count,trend}")
    health: dict[str, dict[str, Any]] = Field(default_factory=dict, description="gpu/memory metrics")
    latest_metric_at: str | None = None
    data_age_seconds: float | None = Field(default=None, description="Seconds since the newest metric")
    metrics_lost: dict[str, int] = Field(default_factory=dict, description="Metric lines rejected, by reason")


class Metadata(BaseModel):
    workspace: str
    stage: str
    pipeline_run_id: str | None
    record_id: str | None
    version: str | None
    state: str
    cause: str | None
    error: str | None
    reason: str | None = Field(description="The run's reason (description | H: hypothesis)")
    created_at: str | None
    started_at: str | None
    finished_at: str | None
    infra_outcome: str | None
    results_status: str | None
    ml_outcome: str | None
    exit_code: int | None = None
    phase: str | None = Field(default=None, description="What a preparing stage is doing now, e.g. building_environment")


class LogTail(BaseModel):
    text: str = Field(description=f"The last lines of the stage log (at most {LOG_LINES} lines, {LOG_CHARS} characters)")
    truncated: bool = Field(description="Older lines were left out; logs(run_id, tail=N) reads more")
    cursor: int = Field(description="Byte offset after the text: logs(run_id, cursor=...) continues from here")
    log_path: str | None = Field(default=None, description="Absolute path of the log file")


class InspectRunResult(BaseModel):
    run_id: str
    dashboard: Dashboard | None = None
    metadata: Metadata | None = None
    thoughts: list[dict[str, Any]] | None = None
    logs: LogTail | None = Field(default=None, description="include 'logs' (default): a bounded tail of the stage log")
    manifest: dict[str, Any] | None = None
    provenance: dict[str, Any] | None = None
    svs: dict[str, Any] | None = None
    attempt: dict[str, Any] | None = None


def _bounded(value: Any) -> Any:
    """Keep a section under MAX_JSON characters (a huge config becomes a note, not a wall)."""
    text = json.dumps(value, default=str)
    if len(text) <= MAX_JSON:
        return value
    return {"truncated": True, "preview": text[:MAX_JSON], "note": "Too large to show whole; see the run dir."}




def _phase(run: dict[str, Any]) -> str:
    state = run["state"]
    return {
        "pending": "waiting for upstream stages or a free slot (jobs.max_parallel_stages)",
        "preparing": "archiving the version, preflight, input resolution, pre-run review",
        "launching": "starting the stage process",
        "running": "the stage is running",
        "post_run": "checking outputs, collecting metrics, stats and findings",
    }.get(state, f"ended ({state}{', ' + run['cause'] if run.get('cause') else ''})")


def dashboard(project: Project, run: dict[str, Any]) -> Dashboard:
    run_dir = project.runs_dir / run["id"]
    index = metric_series.SeriesIndex.load(run_dir)
    summary = index.summary() or run.get("metrics_summary") or {}
    prefer = list((run.get("config") or {}).get("dashboard_metrics") or [])
    chosen = [m for m in prefer if m in summary] or [m for m in DEFAULT_METRICS if m in summary]
    if not chosen:
        chosen = sorted(summary, key=lambda n: (-summary[n].get("count", 0), n))[:DASHBOARD_METRICS]
    now = time.time()
    started = parse_iso(run.get("started_at"))
    ended = parse_iso(run.get("finished_at"))
    beat_age = None
    runtime = run_dir / "outputs" / ".goldfish"
    try:
        beat_age = max(0.0, now - float(json.loads((runtime / "heartbeat").read_text())["timestamp"]))
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        beat_age = None
    try:
        stop = (runtime / "stop_requested").read_text(errors="replace").strip() or "stop requested"
    except FileNotFoundError:
        stop = None
    latest = max((s.get("updated_at") or "" for s in summary.values()), default="") or None
    latest_ts = parse_iso(latest)
    active = run["state"] in ACTIVE
    return Dashboard(
        state=run["state"], cause=run.get("cause"), phase=_phase(run),
        elapsed_seconds=round(((now if active else ended or now) - started), 3) if started else None,
        heartbeat_age_seconds=round(beat_age, 3) if beat_age is not None else None,
        stalled=bool(active and beat_age is not None and beat_age > project.config.jobs.heartbeat_grace_seconds),
        stop_requested=stop if active else None,
        metrics={m: summary[m] for m in chosen},
        health={m: v for m, v in summary.items() if any(k in m.lower() for k in ("gpu", "vram", "memory"))},
        latest_metric_at=latest,
        data_age_seconds=round(now - latest_ts, 3) if latest_ts and active else None,
        metrics_lost=index.lost,
    )


def attempt(project: Project, run: dict[str, Any]) -> dict[str, Any]:
    runs = [r for r in project.store.table("runs", ws_partition(run["workspace"])).iter_raw()
            if r.get("stage") == run["stage"]]
    runs.sort(key=lambda r: (r.get("created_at") or "", r["id"]))
    number = next((i + 1 for i, r in enumerate(runs) if r["id"] == run["id"]), len(runs))
    count = lambda pred: sum(1 for r in runs if pred(r))  # noqa: E731
    return {
        "attempt": number,
        "runs": len(runs),
        "completed": count(lambda r: r.get("state") == "completed"),
        "failed": count(lambda r: r.get("state") in ("failed", "terminated")),
        "canceled": count(lambda r: r.get("state") == "canceled"),
        "success": count(lambda r: r.get("ml_outcome") == "success"),
        "bad_results": count(lambda r: r.get("ml_outcome") == "miss"),
        "previous_run": runs[number - 2]["id"] if number >= 2 else None,
        "backend": run.get("backend"),
        # This stage run's own attempts on a cloud backend: each VM it ran on (a preemption starts a
        # new one) with every capacity-search try (zone, machine type, provisioning model, outcome).
        "current_attempt": run.get("attempt") or 1,
        "vm_attempts": run.get("attempts") or [],
        "worker": _worker(run),
    }


def _worker(run: dict[str, Any]) -> str | None:
    """How a run on a VM got its machine: 'warm: reused <instance>' or 'cold'; None elsewhere."""
    handle = run.get("backend_handle") or {}
    if run.get("backend") != "gce" or not handle.get("instance"):
        return None
    return f"warm: reused {handle['instance']}" if handle.get("warm") else "cold"


def thoughts(project: Project, run_id: str) -> list[dict[str, Any]]:
    events = project.store.tail_events(
        "audit", THOUGHTS,
        lambda ev: ev.get("op") == "thought" and (ev.get("details") or {}).get("run_id") == run_id,
    )
    return [{"timestamp": ev.get("ts"), "thought": ev.get("reason"), "source": ev.get("source")} for ev in events]


def log_tail(project: Project, run_id: str) -> LogTail:
    from goldfish.runs.logs import read_logs

    got = read_logs(project, run_id, tail=LOG_LINES)
    text, cut = got.logs, got.truncated
    if len(text) > LOG_CHARS:
        text, cut = text[-LOG_CHARS:].split("\n", 1)[-1], True
    return LogTail(text=text, truncated=cut, cursor=got.cursor, log_path=got.log_path)


def inspect_run(project: Project, run_id: str, include: Any = None) -> InspectRunResult:
    sections = names.include_sections(include, SECTIONS, DEFAULT_INCLUDE, what="inspect_run")
    if isinstance(run_id, str) and names.PIPELINE_RUN_RE.fullmatch(run_id):
        prun = project.runs.get(run_id)
        raise InvalidInput(
            f"{run_id} is a pipeline run; inspect_run shows one stage run.",
            fix="Inspect one of its stage runs: " + ", ".join(f"{s}: {r}" for s, r in prun["stage_runs"].items()),
        )
    names.stage_run_id(run_id)
    from goldfish.runs.reconciler import fresh_run

    run = fresh_run(project, project.runs.get(run_id))
    out = InspectRunResult(run_id=run_id)
    if "dashboard" in sections:
        out.dashboard = dashboard(project, run)
    if "metadata" in sections:
        out.metadata = Metadata(
            workspace=run["workspace"], stage=run["stage"], pipeline_run_id=run.get("pipeline_run_id"),
            record_id=run.get("record_id"), version=run.get("version"), state=run["state"], cause=run.get("cause"),
            error=run.get("error"), reason=run.get("reason_summary"), created_at=run.get("created_at"),
            started_at=run.get("started_at"), finished_at=run.get("finished_at"),
            infra_outcome=run.get("infra_outcome"), results_status=run.get("results_status"),
            ml_outcome=run.get("ml_outcome"), exit_code=run.get("exit_code"), phase=run.get("phase"),
        )
    if "thoughts" in sections:
        out.thoughts = thoughts(project, run_id)
    if "logs" in sections:
        out.logs = log_tail(project, run_id)
    if "manifest" in sections:
        out.manifest = _bounded({
            "config": run.get("config"), "config_override": run.get("config_override"),
            "inputs": run.get("inputs"), "outputs": run.get("outputs"), "reason": run.get("reason"),
            "results_spec": run.get("results_spec"), "results_auto": run.get("results_auto"),
            "experiment_group": run.get("experiment_group"), "profile": run.get("profile"),
        })
    if "provenance" in sections:
        # Version, commit, tags, pipeline run, inputs with their upstream runs/sources, reason, spec
        # and config come from the records service; the infra part is added here.
        out.provenance = _bounded({
            **project.records.provenance(run_id),
            "backend": run.get("backend"), "backend_handle": run.get("backend_handle"), "run_dir": run.get("run_dir"),
            "image": run.get("image"), "python_env": run.get("python_env"), "history": run.get("history"),
        })
    if "svs" in sections:
        out.svs = _bounded(run.get("svs") or {})
    if "attempt" in sections:
        out.attempt = attempt(project, run)
    return out


MAX_HISTORY_NAMES = 20
HISTORY_POINT_BUDGET = 4000


class MetricSeriesResult(BaseModel):
    name: str
    total_points: int = Field(description="Points the run logged for this metric")
    points_in_range: int = Field(description="Points inside step_range")
    downsampled: bool = Field(description="True when LTTB kept a subset (first and last always kept)")
    steps: list[int] = Field(description="x values: the logged step, or the position for stepless metrics")
    values: list[float | None]
    first_at: str | None = None
    last_at: str | None = None


class MetricHistoryResult(BaseModel):
    run_id: str
    state: str
    metrics: list[MetricSeriesResult]
    missing: list[str] = Field(default_factory=list, description="Requested names the run never logged")
    available: list[str] = Field(default_factory=list, description="Every metric the run logged (first 200)")
    omitted: list[str] = Field(default_factory=list, description="Metrics left out to keep the answer small")
    max_points_per_metric: int


def metric_history(project: Project, run_id: str, metric_names: list[str] | None = None,
                   max_points: int = 500, step_range: Any = None) -> MetricHistoryResult:
    """Downsampled (LTTB) metric series of a stage run, bounded in size."""
    names.stage_run_id(run_id)
    if isinstance(max_points, bool) or not isinstance(max_points, int) or not 2 <= max_points <= 5000:
        raise InvalidInput(f"max_points must be between 2 and 5000, got {max_points!r}.", fix="Use e.g. 500.")
    rng: tuple[int, int] | None = None
    if step_range is not None:
        ok = (isinstance(step_range, (list, tuple)) and len(step_range) == 2
              and all(isinstance(v, int) and not isinstance(v, bool) for v in step_range)
              and step_range[0] <= step_range[1])
        if not ok:
            raise InvalidInput(f"step_range must be [first_step, last_step] with first <= last, got {step_range!r}.",
                               fix="Use e.g. step_range=[0, 1000], or leave it out for every step.")
        rng = (int(step_range[0]), int(step_range[1]))
    run = project.runs.get(run_id)
    run_dir = project.runs_dir / run_id
    index = metric_series.SeriesIndex.load(run_dir)
    available = sorted(index.metrics)
    omitted: list[str] = []
    if metric_names is None:
        wanted = available[:MAX_HISTORY_NAMES]
        omitted = available[MAX_HISTORY_NAMES:]
    else:
        if not isinstance(metric_names, list) or not all(isinstance(n, str) for n in metric_names):
            raise InvalidInput(f"names must be a list of metric names, got {metric_names!r}.",
                               fix='Use e.g. names=["train/loss"].')
        if len(metric_names) > MAX_HISTORY_NAMES:
            raise InvalidInput(f"At most {MAX_HISTORY_NAMES} metrics per call, got {len(metric_names)}.",
                               fix="Ask for fewer names and call again for the rest.")
        wanted = list(dict.fromkeys(metric_names))
    per_metric = max(2, min(max_points, HISTORY_POINT_BUDGET // max(1, len(wanted))))
    series, missing = metric_series.history(run_dir, wanted, per_metric, rng)
    return MetricHistoryResult(
        run_id=run_id, state=run["state"], metrics=[MetricSeriesResult(**s) for s in series],
        missing=missing, available=available[:200], omitted=omitted, max_points_per_metric=per_metric,
    )
