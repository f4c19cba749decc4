"""One result per pipeline run: which stage run carries the experiment's result.

The results_spec describes the experiment, not every stage. Each pipeline run has one *result
stage*: ``results_spec.stage`` when given, else the last stage of the run (in run order) whose code
or config mentions the primary metric, else the last stage of the run. Its stage run (and its
record) carries ``role: "result"``; every other stage run of the pipeline run carries
``role: "supporting"``. A *result row* is a run record whose role is ``result``; documents written
without a role (before the store migration to schema 3) count as results.

Supporting stage runs never hold the finalization gate and never carry a value of their own:
finalizing the result finalizes them as ``finalized (supporting prun-…)``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from goldfish.pipelines.model import Pipeline

Role = Literal["result", "supporting"]
RESULT: Role = "result"
SUPPORTING: Role = "supporting"
How = Literal["results_spec.stage", "mentions_metric", "last_stage"]


def role_of(doc: Mapping[str, Any] | None) -> Role:
    """The role of a stage run or run record (``result`` when the document predates roles)."""
    return SUPPORTING if doc is not None and doc.get("role") == SUPPORTING else RESULT


def is_result_row(record: Mapping[str, Any]) -> bool:
    """A run record that carries its pipeline run's result (checkpoints and supporting stages are not)."""
    return record.get("type", "run") == "run" and role_of(record) == RESULT


def mentions_metric(app_dir: Path, pipeline: Pipeline, stage: str, metric: str) -> bool:
    """Whether the stage's code (its module and the workspace files it imports) or its config names
    ``metric``. Code must quote it (``log_metric("val/acc", …)``); a config may name it bare."""
    from goldfish.svs.code import collect_stage_code

    quoted = (f'"{metric}"', f"'{metric}'")
    code = collect_stage_code(Path(app_dir), pipeline.stage(stage))
    if any(q in source.text for source in code.files for q in quoted):
        return True
    config = Path(app_dir) / "configs" / f"{stage}.yaml"
    try:
        return metric in config.read_text(errors="replace")
    except OSError:
        return False


def pick_result_stage(app_dir: Path, pipeline: Pipeline, stages: list[str], metric: str,
                      declared: str | None = None) -> tuple[str, How]:
    """(result stage, how it was chosen) among ``stages`` (in run order)."""
    if declared:
        return declared, "results_spec.stage"
    for stage in reversed(stages):
        if mentions_metric(app_dir, pipeline, stage, metric):
            return stage, "mentions_metric"
    return stages[-1], "last_stage"


def metric_mentions(app_dir: Path, pipeline: Pipeline, stages: Iterable[str], metric: str) -> list[str]:
    """The stages (of ``stages``) whose code or config mentions ``metric``."""
    return [s for s in stages if mentions_metric(app_dir, pipeline, s, metric)]
