"""View models: what each screen shows, as plain frozen dataclasses (no Textual, no store).

Every list item carries a stable ``key`` (run id, record id, event position, ...) so a table can
update the rows and cells that changed instead of rebuilding itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# ----------------------------------------------------------------------------- dashboard


@dataclass(frozen=True)
class SlotView:
    key: str
    slot: str
    workspace: str | None
    version: str | None
    version_count: int
    dirty: bool | None
    changed_count: int
    goal: str | None
    note: str | None = None


@dataclass(frozen=True)
class ActiveRunView:
    key: str
    run_id: str
    pipeline_run_id: str | None
    workspace: str
    stage: str
    state: str
    elapsed: float | None
    heartbeat_age: float | None
    stalled: bool
    metric_name: str | None
    metric_value: float | None
    trend: str | None
    spark: tuple[float, ...]
    cancel_requested: bool


@dataclass(frozen=True)
class QueueItem:
    key: str
    run_id: str
    record_id: str | None
    workspace: str
    stage: str
    infra_outcome: str
    state: str
    metric_name: str | None
    metric_value: float | None
    finished_age: float | None


@dataclass(frozen=True)
class ResultPoint:
    record_id: str
    stage: str
    value: float
    ml_outcome: str


@dataclass(frozen=True)
class ResultsView:
    """Where one workspace's research stands: its best result and its last results."""

    key: str  # workspace
    workspace: str
    metric: str | None
    direction: str | None
    best_tag: str | None
    best_value: float | None
    goal_value: float | None
    last: tuple[ResultPoint, ...]  # newest first
    spark: tuple[float, ...]  # primary metric over the last results, oldest first
    awaiting: int


@dataclass(frozen=True)
class AlertView:
    key: str
    kind: str  # failed | blocked | stalled | regression | finding | pattern
    severity: str  # error | warning | info
    workspace: str | None
    run_id: str | None
    message: str
    age: float | None


@dataclass(frozen=True)
class FindingView:
    key: str
    run_id: str
    workspace: str
    stage: str
    source: str
    check: str
    severity: str
    message: str
    age: float | None


@dataclass(frozen=True)
class AuditView:
    key: str
    ts: float | None
    op: str
    source: str
    workspace: str | None
    text: str
    thought: bool


@dataclass(frozen=True)
class WorkerView:
    """A warm pool worker (GCE VM kept booted between runs)."""

    key: str
    instance: str
    state: str
    since: float | None
    zone: str
    machine_type: str
    gpus: int
    run: str


@dataclass(frozen=True)
class PoolView:
    enabled: bool
    summary: str
    workers: tuple[WorkerView, ...]


@dataclass(frozen=True)
class DashboardView:
    project_name: str
    root: str
    now: float
    slots: tuple[SlotView, ...]
    active: tuple[ActiveRunView, ...]
    queue: tuple[QueueItem, ...]
    alerts: tuple[AlertView, ...]
    findings: tuple[FindingView, ...]
    audit: tuple[AuditView, ...]
    workspaces: tuple[str, ...]
    pending_patterns: int
    results: tuple[ResultsView, ...] = ()
    pool: PoolView | None = None  # shown when the warm pool is on or still has workers

    @property
    def alert_count(self) -> int:
        return sum(1 for a in self.alerts if a.severity in ("error", "warning"))


# ----------------------------------------------------------------------------- run detail


@dataclass(frozen=True)
class TransitionView:
    ts: float | None
    from_state: str | None
    to_state: str
    cause: str | None
    source: str | None


@dataclass(frozen=True)
class AttemptView:
    """One try at getting a VM for a run on a cloud backend (a capacity-search attempt)."""

    key: str
    attempt: int  # the run's attempt (a preemption starts the next one)
    n: int  # the try within that attempt's capacity search
    zone: str
    machine_type: str
    provisioning: str
    outcome: str
    error: str
    instance: str


@dataclass(frozen=True)
class OutputView:
    name: str
    format: str | None
    type: str | None
    exists: bool | None
    size_bytes: int | None
    artifact: bool
    stats: dict[str, Any]
    contract: str  # "ok", "error: ...", "" (no contract findings)


@dataclass(frozen=True)
class InputView:
    name: str
    kind: str | None
    upstream_run: str | None
    signal: str | None
    source: str | None
    location: str | None


@dataclass(frozen=True)
class MetricSeries:
    name: str
    steps: tuple[int, ...]
    values: tuple[float | None, ...]
    total_points: int


@dataclass(frozen=True)
class RunDetailView:
    run_id: str
    workspace: str
    stage: str
    pipeline_run_id: str | None
    record_id: str | None
    version: str | None
    state: str
    cause: str | None
    error: str | None
    reason: str | None
    elapsed: float | None
    heartbeat_age: float | None
    infra_outcome: str | None
    results_status: str | None
    ml_outcome: str | None
    primary_metric: str | None
    cancel_requested: bool
    transitions: tuple[TransitionView, ...]
    outputs: tuple[OutputView, ...]
    inputs: tuple[InputView, ...]
    review: str | None  # verdict (approved/warned/blocked/skipped)
    review_summary: str | None
    findings: tuple[FindingView, ...]
    metrics: tuple[MetricSeries, ...]
    results_auto: dict[str, Any] | None
    results_final: dict[str, Any] | None
    results_spec: dict[str, Any] | None
    attempts: tuple[AttemptView, ...] = ()  # cloud runs: every VM attempt and capacity-search try

    @property
    def terminal(self) -> bool:
        return self.state in ("completed", "failed", "terminated", "canceled", "skipped")


@dataclass(frozen=True)
class LogChunk:
    lines: tuple[str, ...]
    cursor: int
    reset: bool  # True: replace what is shown (first read or a tail)
    done: bool


# ----------------------------------------------------------------------------- history / compare


@dataclass(frozen=True)
class HistoryRow:
    key: str  # record id
    record_id: str
    type: str
    run_id: str | None
    stage: str | None
    version: str | None
    created: float | None
    state: str | None
    results_status: str | None
    ml_outcome: str | None
    metric_name: str | None
    metric_value: float | None
    tags: tuple[str, ...]
    reason: str | None
    experiment_group: str | None
    supporting: int = 0  # result rows: the supporting stages of its pipeline run
    role: str | None = None  # "supporting" for a supporting stage's row


@dataclass(frozen=True)
class HistoryQuery:
    """The arguments of one ``list_history`` call (same names, same meaning as the MCP tool's)."""

    workspace: str
    record_type: str | None = None  # run | checkpoint
    stage: str | None = None
    tagged: bool | str | None = None  # True: tagged only, False: untagged only, a name: that tag
    metric: str | None = None
    min_value: float | None = None
    experiment_group: str | None = None
    finalized_only: bool = False
    include_pruned: bool = False
    include_supporting: bool = False  # supporting stages as rows of their own (default: results only)
    sort_by: str = "created"  # created | metric
    descending: bool = True
    offset: int = 0
    limit: int = 200
    text: str = ""  # the filter line the fields above were parsed from


@dataclass(frozen=True)
class HistoryPage:
    query: HistoryQuery
    rows: tuple[HistoryRow, ...]
    total: int

    @property
    def has_more(self) -> bool:
        return self.query.offset + len(self.rows) < self.total


@dataclass(frozen=True)
class ConfigChange:
    key: str
    left: Any
    right: Any


@dataclass(frozen=True)
class MetricDelta:
    name: str
    left: float | None
    right: float | None

    @property
    def delta(self) -> float | None:
        if self.left is None or self.right is None:
            return None
        return self.right - self.left


@dataclass(frozen=True)
class CompareView:
    workspace: str
    left: HistoryRow
    right: HistoryRow
    config_changes: tuple[ConfigChange, ...]
    metric_deltas: tuple[MetricDelta, ...]
    code_summary: str
    code_diff: str
    outcomes: tuple[tuple[str, str, str], ...]  # (field, left, right)


# ----------------------------------------------------------------------------- sources / patterns


@dataclass(frozen=True)
class SourceView:
    key: str
    name: str
    format: str | None
    location: str | None
    size_bytes: int | None
    created: float | None
    created_by: str | None
    description: str | None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PatternView:
    key: str
    pattern_id: str
    status: str
    severity: str
    stage: str | None
    symptom: str
    root_cause: str
    prevention: str
    occurrences: int
    last_seen: float | None
    source_run_id: str | None
