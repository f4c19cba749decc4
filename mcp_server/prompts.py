"""MCP prompts: the three main workflows of the agent guide, as messages a client can insert."""

from __future__ import annotations

from typing import Annotated

from mcp.server.mcpserver import MCPServer
from pydantic import Field

GUIDE = "The full guide is the resource goldfish://guide."


def _workspace(workspace: str) -> str:
    return workspace.strip() or "<the workspace>"


def start_experiment_text(goal: str, workspace: str = "") -> str:
    name = workspace.strip() or "a short snake_case name"
    return f"""Start a Goldfish experiment with this goal: {goal.strip() or "<state the goal>"}

1. status() to see the slots and what is already there; get_experiment_context(workspace) if the
   workspace exists.
2. create_workspace(name={name!r}, goal=..., reason=...) (from_workspace/from_version to branch
   from earlier work), then mount(workspace, "w1", reason).
3. In workspaces/w1/ write pipeline.yaml (every input and output with a schema), configs/<stage>.yaml
   (compute.profile, hyperparameters) and modules/<stage>.py using goldfish.io (load_input,
   save_output, heartbeat) and goldfish.metrics (log_metric). Register data first with
   register_source if the pipeline reads a dataset.
4. validate_config("w1") and fix everything it reports.
5. run("w1", reason={{"description": ..., "hypothesis": ...}}, results_spec={{"primary_metric": ...,
   "direction": "maximize" or "minimize", "min_value": ..., "goal_value": ..., "dataset_split":
   "val", "tolerance": ..., "context": ...}}). If it answers status "blocked", fix the findings
   and run again.
6. Follow it with inspect_run / logs(follow=True); when it ends, finalize it (finalize_run) before
   the next run. Record decisions with log_thought. Never run git yourself.
{GUIDE}"""


def triage_failed_run_text(run_id: str = "") -> str:
    target = run_id.strip() or "the failed run (dashboard() lists recent failures)"
    return f"""Triage {target} in Goldfish.

1. inspect_run(run_id, include=["svs", "logs"]): read state, cause and error first.
2. By cause: review_blocked or preflight -> fix the file:line each finding names (validate_config
   lists config problems); input_error -> run the upstream stage or pass inputs_override;
   exit_nonzero -> read the traceback in logs(run_id, tail=200); missing_output or contract ->
   compare save_output calls with pipeline.yaml; no_heartbeat or timeout -> heartbeat() in long
   loops, compute.max_runtime_seconds; ai_stopped -> get_run_svs_findings(run_id);
   preempted -> run again (save_checkpoint/load_checkpoint resume).
3. get_lineage(run_id, direction="upstream") when the inputs look wrong.
4. A crashed run holds the finalization gate: finalize_run it with ml_outcome "miss" or "unknown"
   (value null if nothing was logged) and notes saying what went wrong. A blocked run does not.
5. log_thought the diagnosis, fix the slot, run again.
{GUIDE}"""


def compare_and_finalize_text(workspace: str = "") -> str:
    name = _workspace(workspace)
    return f"""Compare and finalize the finished runs of {name} in Goldfish.

1. list_unfinalized_runs({name!r}) lists what blocks the next run.
2. For each: inspect_record(stage run or record id, include=["results", "comparison"]) shows
   results_auto, the comparison with the previous and the best run, and the config diff.
3. finalize_run(pipeline run id, {{"primary_metric": <as in the results_spec>, "direction": <as in
   the results_spec>, "value": <the logged value>, "dataset_split": <as measured>,
   "ml_outcome": "success" | "partial" | "miss" | "unknown", "notes": <what happened and why>}}).
   Read its warnings: a value that differs from the logged one, or an outcome that contradicts
   min_value/goal_value, deserves a second look.
4. tag_record(stage run id, "best-<n>") for a new best (it becomes the baseline of later runs).
5. get_experiment_context({name!r}) to confirm the trend, then log_thought the conclusion.
{GUIDE}"""


def register_prompts(server: MCPServer) -> None:
    @server.prompt(name="start_experiment", title="Start an experiment",
                   description="Create a workspace, write the pipeline, validate, run with a results_spec.")
    def start_experiment(
        goal: Annotated[str, Field(description="What the experiment should achieve")],
        workspace: Annotated[str, Field(description="Workspace name to create (optional)")] = "",
    ) -> str:
        return start_experiment_text(goal, workspace)

    @server.prompt(name="triage_failed_run", title="Triage a failed run",
                   description="Find why a run failed or was blocked, fix it, and clear the finalization gate.")
    def triage_failed_run(
        run_id: Annotated[str, Field(description="stage-… or prun-… id (optional)")] = "",
    ) -> str:
        return triage_failed_run_text(run_id)

    @server.prompt(name="compare_and_finalize", title="Compare and finalize",
                   description="Review finished runs against the previous and best results, finalize and tag them.")
    def compare_and_finalize(
        workspace: Annotated[str, Field(description="Workspace whose runs to finalize")] = "",
    ) -> str:
        return compare_and_finalize_text(workspace)
