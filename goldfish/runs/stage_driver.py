"""One stage run, driven from its current state to a terminal one (a thread of the runner).

Each phase is idempotent given the stored state, so a new runner re-attaches by simply driving
again: ``preparing`` is redone from scratch, ``launching`` adopts a recorded launch or launches,
``running`` keeps supervising (or settles a stage that ended while nobody watched), ``post_run``
is redone. Failure is the default: any phase that cannot prove success moves the run to a failed
or terminated state with the cause and an error message that says what to do.
"""

from __future__ import annotations

import json
import shutil
import time
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any

from goldfish.runs import metric_series

from goldfish.runs import postrun, remote_driver, run_objects

from goldfish.runs import stage_env, stage_setup
from goldfish.runs.backends.base import BackendUnavailable, Handle, LaunchSpec, Status
from goldfish.errors import GoldfishError
from goldfish.fsutil import atomic_write
from goldfish.runs.inputs import resolve_inputs
from goldfish.records.lineage import index_inputs
from goldfish.pipelines.model import Pipeline, load_pipeline
from goldfish.runs.hooks import FailedContext, MonitorContext, PostRunContext, ReviewContext
from goldfish.runs.launch_review import provider_names, take_archive
from goldfish.runs.state import TERMINAL, now_iso, parse_iso, transition, ws_partition
from goldfish.pipelines.stage_config import merge_stage_config
from goldfish.svs.preflight import preflight
import contextlib

if TYPE_CHECKING:
    from goldfish.sources.artifacts import ArtifactPlan
    from goldfish.store import Transaction
    from goldfish.runs.runner import Runner

TICK = 0.2
SUMMARY_PUSH_SECONDS = 2.0
DURING_KEPT = 200
MAX_SUPERVISE_ERRORS = 25
DEFAULT_HEARTBEAT_TIMEOUT_SECONDS = 600  # ten minutes of silence after a first heartbeat


class StageFailure(Exception):
    """A phase ends the run: ``to`` state, ``cause``, message."""

    def __init__(self, to: str, cause: str, message: str, **fields: Any):
        super().__init__(message)
        self.to, self.cause, self.message, self.fields = to, cause, message, fields


class StageDriver:
    def __init__(self, runner: Runner, run_id: str):
        self.runner = runner
        self.project = runner.project
        self.run_id = run_id
        self.ws = runner.workspace
        self.run_dir = self.project.runs_dir / run_id
        self.outputs_dir = self.run_dir / "outputs"
        self.runtime_dir = self.outputs_dir / ".goldfish"
        self.log_path = self.run_dir / "logs" / "stdout.log"
        self.monitor_state: dict[str, Any] = {}
        self.remote = getattr(runner, "backend_name", None) == "gce"  # stages on VMs (outputs in the bucket)

    # ---------------------------------------------------------------- helpers
    def doc(self) -> dict[str, Any]:
        return self.project.store.table("runs", ws_partition(self.ws)).require(self.run_id, what="stage run")

    def note(self, text: str) -> None:
        """A line in the stage log, so whoever reads logs() sees what Goldfish did and why."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "a", encoding="utf-8") as f:
            f.write(f"[goldfish {now_iso()[:19]}Z] {text}\n")

    def move(self, expected: str, to: str, cause: str | None = None, error: str | None = None,
             **fields: Any) -> dict[str, Any] | None:
        with self.project.store.transaction() as tx:
            return transition(tx, self.run_id, to, expected=expected, cause=cause, error=error,
                              source=self.project.source, workspace=self.ws, fields=fields)

    def settle(self, expected: str, to: str, cause: str | None = None, error: str | None = None,
               **fields: Any) -> None:
        """``move``, unless a cancel request is already stored: then the run ends canceled (same
        transaction, so a cancel is never lost to a concurrent success). A stage that vanished
        without an exit code stays ``orphaned``: the cancel did not end it, a crash did."""
        with self.project.store.transaction() as tx:
            current = tx.table("runs", ws_partition(self.ws)).require(self.run_id)
            if current.get("cancel_requested") and to != "canceled" and cause != "orphaned":
                to, cause, error = "canceled", "manual", _cancel_text(current)
            transition(tx, self.run_id, to, expected=expected, cause=cause, error=error,
                       source=self.project.source, workspace=self.ws, fields=fields)

    def patch(self, fields: dict[str, Any]) -> None:
        with self.project.store.transaction() as tx:
            table = tx.table("runs", ws_partition(self.ws))
            if table.has(self.run_id):
                table.patch(self.run_id, fields)

    def load_pipeline(self) -> Pipeline:
        return load_pipeline(self.run_dir / "app", self.runner.prun.get("pipeline"))

    # ------------------------------------------------------------------ drive
    def drive(self) -> None:
        while not self.runner.lease_lost():
            doc = self.doc()
            state = doc["state"]
            if state in TERMINAL:
                return
            try:
                if state == "pending":
                    if doc.get("cancel_requested"):
                        self.move("pending", "canceled", "manual", _cancel_text(doc))
                    else:
                        self.move("pending", "preparing")
                elif state == "preparing":
                    self.prepare(doc)
                elif state == "launching":
                    self.launch(doc)
                elif state == "running":
                    self.supervise(doc)
                elif state == "post_run":
                    self.post_run(doc)
            except StageFailure as failure:
                self.note(f"{failure.to} ({failure.cause}): {failure.message}")
                self.move(state, failure.to, failure.cause, failure.message, **failure.fields)
            except Exception as exc:
                self.runner.log(f"{self.run_id} {state}: {traceback.format_exc()}")
                self.unexpected(state, exc)

    def unexpected(self, state: str, exc: Exception) -> None:
        text = exc.message if isinstance(exc, GoldfishError) else f"{type(exc).__name__}: {exc}"
        causes = {"preparing": "prepare_error", "launching": "launch_error", "post_run": "post_run_error"}
        if state in causes:
            self.note(f"failed in {state}: {text}")
            self.move(state, "failed", causes[state], f"Goldfish error while {state}: {text}")
        else:
            time.sleep(1.0)  # running: a store or file hiccup; supervision resumes next round

    # ---------------------------------------------------------------- prepare
    def prepare(self, doc: dict[str, Any]) -> None:
        if doc.get("cancel_requested"):
            self.move("preparing", "canceled", "manual", _cancel_text(doc))
            return
        project, stage_name = self.project, doc["stage"]
        app = self.run_dir / "app"
        if app.exists():
            shutil.rmtree(app)
        for sub in ("outputs", "inputs"):
            if (self.run_dir / sub).exists():
                shutil.rmtree(self.run_dir / sub)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        take_archive(getattr(self.runner, "prun_dir", None), doc["sha"], app) or project.workspaces.archive(self.ws, doc["sha"], app)
        try:
            pipeline = self.load_pipeline()
            stage = pipeline.stage(stage_name)
        except GoldfishError as exc:
            raise StageFailure("failed", "preflight", f"Preflight failed: {exc}") from None
        override = doc.get("config_override") or {}
        input_override = doc.get("inputs_override") or {}
        report = preflight(project, app_dir=app, pipeline=pipeline, stage=stage_name,
                           config_override=override or None, inputs_override=input_override)
        preflight_doc = {"errors": [i.model_dump() for i in report.errors],
                         "warnings": [i.model_dump() for i in report.warnings]}
        svs = {**(doc.get("svs") or {}), "preflight": preflight_doc}
        if report.errors:
            shown = "; ".join(i.render() for i in report.errors[:8])
            more = f" (+{len(report.errors) - 8} more: inspect_run include=['svs'])" if len(report.errors) > 8 else ""
            raise StageFailure("failed", "preflight", f"Preflight failed: {shown}{more}", svs=svs)
        config = merge_stage_config(pipeline, stage_name, app, override or None)
        ready = self.runner.availability(gpus=stage_env.gpu_count(project, config))
        if not ready.ok:
            raise StageFailure("failed", "backend_unavailable",
                               f"jobs.backend: {self.runner.backend_name} cannot run this stage: {ready.render()}",
                               svs=svs)
        in_run = {s: rid for s, rid in (self.runner.prun.get("stage_runs") or {}).items() if rid != self.run_id}
        resolved, problems = resolve_inputs(project, self.ws, pipeline, stage_name, in_run=in_run,
                                            overrides=input_override)
        prepared = {"svs": svs, "config": config.values, "profile": config.profile}
        if problems:
            raise StageFailure("failed", "input_error",
                               "Input resolution failed: " + "; ".join(i.render() for i in problems), **prepared)
        review = self.review(doc, app, pipeline, stage_name, config.values, resolved, preflight_doc)
        svs["review"] = review
        svs["skip_review"] = bool(doc.get("skip_review"))
        prepared["inputs"] = resolved
        if review.get("decision") == "blocked":
            raise StageFailure("failed", "review_blocked", f"Pre-run review blocked: {review.get('summary')}",
                               **prepared)
        if stage.runtime == "rust" and self.remote:
            raise StageFailure("failed", "preflight", remote_driver.RUST_REFUSAL, **prepared)
        binary = self.build_rust(stage, app) if stage.runtime == "rust" else None
        if not self.remote:  # a cloud worker stages its inputs itself, from the bucket
            try:
                stage_env.stage_inputs(self.run_dir / "inputs", resolved,
                                       fetch=run_objects.fetcher(project, self.note))
            except GoldfishError as exc:
                raise StageFailure("failed", "input_error", f"Staging the inputs failed: {exc}", **prepared) from None
        self.runtime_dir.mkdir(parents=True, exist_ok=True)
        max_runtime = config.max_runtime_seconds or project.config.defaults.timeout_seconds
        try:
            launch = stage_setup.launch_request(
                project, self.runner.backend_name, doc, self.run_dir, stage, config, resolved, binary,
                note=self.note, phase=lambda p: self.patch({"phase": p}))
        except stage_setup.SetupFailure as exc:
            raise StageFailure("failed", exc.cause, exc.message, **prepared) from None
        for key in ("image", "python_env"):
            if key in launch:
                prepared[key] = launch[key]
        atomic_write(self.run_dir / "launch_request.json", json.dumps(launch), durable=False)
        with project.store.transaction() as tx:
            current = tx.table("runs", ws_partition(self.ws)).require(self.run_id)
            fields = {
                **prepared,
                "max_runtime_seconds": max_runtime,
                "max_runtime_source": "compute" if config.max_runtime_seconds else "defaults",
                "heartbeat_timeout_seconds": config.heartbeat_timeout_seconds,
                "memory_limit_mb": launch["memory_limit_mb"],
                "run_dir": str(self.run_dir),
                "backend": self.runner.backend_name,
            }
            if current.get("cancel_requested"):
                transition(tx, self.run_id, "canceled", expected="preparing", cause="manual",
                           error=_cancel_text(current), source=project.source, workspace=self.ws, fields=fields)
            else:
                transition(tx, self.run_id, "launching", expected="preparing", source=project.source,
                           workspace=self.ws, fields=fields)
                index_inputs(tx, self.ws, self.run_id, stage_name, resolved)
                for name, entry in resolved.items():
                    if entry.get("kind") in ("source", "override_source") and entry.get("source"):
                        project.sources.record_consumption(tx, entry["source"], self.run_id, self.ws,
                                                           input_name=name, stage=stage_name)

    def review(self, doc: dict[str, Any], app: Path, pipeline: Pipeline, stage: str, config: dict[str, Any],
               resolved: dict[str, dict[str, Any]], preflight: dict[str, Any]) -> dict[str, Any]:
        """The review in force when the stage starts: run() already reviewed every stage before launch;
        a stage fed by an earlier stage of the same run gets a second, input-aware look now (its inputs
        are real outputs only now), the others keep the launch review — unless this runner has other
        reviewers (hook providers) than the process that launched it."""
        launch = (doc.get("svs") or {}).get("review")
        if isinstance(launch, dict) and launch.get("phase") == "launch":
            same_reviewers = launch.get("providers") == provider_names(self.runner.hooks)
            if launch.get("decision") == "skipped" or (same_reviewers and not doc.get("depends_on")):
                return launch
            again = self.review_now(doc, app, pipeline, stage, config, resolved, preflight)
            return {**again, "phase": "start",
                    "launch": {"decision": launch.get("decision"), "summary": launch.get("summary")}}
        return self.review_now(doc, app, pipeline, stage, config, resolved, preflight)

    def review_now(self, doc: dict[str, Any], app: Path, pipeline: Pipeline, stage: str, config: dict[str, Any],
                   resolved: dict[str, dict[str, Any]], preflight: dict[str, Any]) -> dict[str, Any]:
        cfg = self.project.config
        if doc.get("skip_review"):
            return {"decision": "skipped", "summary": "skip_review=True", "findings": [], "provider": None,
                    "at": now_iso()}
        if not (cfg.svs.enabled and cfg.pre_run_review.enabled):
            return {"decision": "skipped", "summary": "disabled (svs.enabled / pre_run_review.enabled)",
                    "findings": [], "provider": None, "at": now_iso()}
        ctx = ReviewContext(
            project=self.project, run=doc, app_dir=app, pipeline=pipeline, stage=stage, config=config,
            inputs=resolved, preflight=preflight, config_override=doc.get("config_override") or {},
            inputs_override=doc.get("inputs_override") or {},
        )
        result = self.runner.hooks.review(ctx)
        return {**result.model_dump(), "at": now_iso()}

    def build_rust(self, stage: Any, app: Path) -> Path:
        from goldfish.runs.rust_stage import build_rust_stage

        try:
            return build_rust_stage(app, stage.name, entrypoint=stage.entrypoint,
                                    crate_path=stage_env.PACKAGE_ROOT / "goldfish-rust",
                                    target_dir=self.project.gf_dir / "cargo-target", log=self.note)
        except GoldfishError as exc:
            raise StageFailure("failed", "preflight", f"Rust build failed: {exc}") from None

    # ----------------------------------------------------------------- launch
    def launch(self, doc: dict[str, Any]) -> None:
        if self.remote:
            remote_driver.launch(self, doc)
            return
        backend = self.runner.backend
        # One transaction (under the project lock): a cancel either lands before it, and nothing is
        # launched, or after it, and sees the run running.
        with self.project.store.transaction() as tx:
            current = tx.table("runs", ws_partition(self.ws)).require(self.run_id)
            if current["state"] != "launching":
                return
            if current.get("cancel_requested"):
                transition(tx, self.run_id, "canceled", expected="launching", cause="manual",
                           error=_cancel_text(current), source=self.project.source, workspace=self.ws)
                return
            handle = backend.find_launch(self.run_dir)
            if handle is None:
                try:
                    request = json.loads((self.run_dir / "launch_request.json").read_text())
                except (FileNotFoundError, ValueError):
                    transition(tx, self.run_id, "failed", expected="launching", cause="launch_error",
                               error="The launch request written while preparing is missing; run the stage again.",
                               source=self.project.source, workspace=self.ws)
                    return
                spec = LaunchSpec(run_id=self.run_id, run_dir=self.run_dir, argv=request["argv"],
                                  env=request["env"], cwd=Path(request["cwd"]),
                                  memory_limit_mb=request.get("memory_limit_mb"),
                                  extra={"container": request["container"]} if request.get("container") else {})
                try:
                    handle = backend.launch(spec)
                except BackendUnavailable as exc:
                    transition(tx, self.run_id, "failed", expected="launching", cause="backend_unavailable",
                               error=f"Could not start the stage: {exc}", source=self.project.source,
                               workspace=self.ws)
                    return
                except OSError as exc:
                    transition(tx, self.run_id, "failed", expected="launching", cause="launch_error",
                               error=f"Could not start the stage: {exc}", source=self.project.source,
                               workspace=self.ws)
                    return
            transition(tx, self.run_id, "running", expected="launching", source=self.project.source,
                       workspace=self.ws, fields={"backend_handle": handle})

    # -------------------------------------------------------------- supervise
    def supervise(self, doc: dict[str, Any]) -> None:
        cfg = self.project.config
        handle: Handle = doc["backend_handle"]
        started = parse_iso(doc.get("started_at")) or time.time()
        prefer = list((doc.get("config") or {}).get("dashboard_metrics") or [])
        stop_seen: float | None = None
        last_push = last_mirror = 0.0
        errors = 0
        while not self.runner.lease_lost():
            try:
                status = self.runner.backend.status(handle)
                index, changed = metric_series.ingest(self.run_dir)
                if status.preempted:
                    remote_driver.preempted(self, self.doc(), handle, status)
                    return
                if not status.alive:
                    self.settle_exit(status, handle)
                    return
                if self.remote and time.time() - last_mirror > cfg.defaults.log_sync_interval:
                    remote_driver.mirror_logs(self.runner.backend, handle, self.run_dir)
                    last_mirror = time.time()
                doc = self.doc()
                if doc["state"] != "running":
                    return
                now = time.time()
                reason = self.stop_reason(doc, now, started)
                stop_file = self.runtime_dir / "stop_requested"
                if reason is None and stop_file.exists():
                    stop_seen = stop_seen or now
                    grace = cfg.svs.ai_during_run_stop_grace_seconds
                    if now - stop_seen > grace:
                        text = stop_file.read_text(errors="replace").strip() or "stop requested"
                        reason = ("terminated", "ai_stopped",
                                  f"Stopped: {text}; the stage did not exit within {grace}s of the request.")
                if reason is None:
                    self.monitor(doc, now - started, index, stop_file)
                if reason is not None:
                    self.stop(handle, doc, reason)
                    return
                if changed and now - last_push >= SUMMARY_PUSH_SECONDS:
                    self.patch({"metrics_summary": postrun.bounded_summary(index, prefer)})
                    last_push = now
                errors = 0
            except (OSError, GoldfishError, BackendUnavailable) as exc:
                errors += 1
                self.runner.log(f"{self.run_id} supervise error {errors}: {exc}")
                if errors >= MAX_SUPERVISE_ERRORS:
                    self.stop(handle, self.doc(), ("terminated", "orphaned",
                              f"Goldfish could not supervise the stage ({exc}); it was stopped."))
                    return
            time.sleep(TICK)

    def stop_reason(self, doc: dict[str, Any], now: float, started: float) -> tuple[str, str, str] | None:
        cfg = self.project.config
        if doc.get("cancel_requested"):
            return ("canceled", "manual", _cancel_text(doc))
        limit = doc.get("max_runtime_seconds")
        if limit and now - started > limit:
            cause = "max_runtime_exceeded" if doc.get("max_runtime_source") == "compute" else "timeout"
            where = "compute.max_runtime_seconds" if cause == "max_runtime_exceeded" else "defaults.timeout_seconds"
            return ("terminated", cause,
                    f"Ran longer than {where} = {limit}s and was stopped. Raise it in the stage config, or"
                    " make the stage checkpoint and resume.")
        preempt = cfg.local.simulate_preemption_after_seconds
        if preempt and now - started > preempt:
            return ("terminated", "preempted", f"Simulated preemption after {preempt}s (local.simulate_preemption_after_seconds).")
        return self.heartbeat_reason(doc, now, started)

    def heartbeat_reason(self, doc: dict[str, Any], now: float, started: float) -> tuple[str, str, str] | None:
        """Heartbeat supervision. With compute.heartbeat_timeout_seconds set, a stage silent that long
        (counted from its start when it never heartbeats) is stopped. Without it, supervision is on by
        default, the safe way: only a stage that has sent one heartbeat is held to
        DEFAULT_HEARTBEAT_TIMEOUT_SECONDS of silence; one that never heartbeats is bounded by its
        max runtime (and shown as stalled)."""
        if self.remote:  # a VM's boot is not the stage's silence: count from the stage's own start
            started = remote_driver.stage_started(self.run_dir) or now
        if now - started <= self.project.config.jobs.heartbeat_grace_seconds:
            return None
        configured = doc.get("heartbeat_timeout_seconds")
        timeout = configured or DEFAULT_HEARTBEAT_TIMEOUT_SECONDS
        beat = _heartbeat_time(self.runtime_dir / "heartbeat")
        if beat is None and not configured:
            return None
        age = now - (beat if beat is not None else started)
        if age <= timeout:
            return None
        setting = (f"compute.heartbeat_timeout_seconds = {timeout}" if configured
                   else f"the default heartbeat timeout of {timeout}s, after its first heartbeat")
        return ("terminated", "no_heartbeat",
                f"No heartbeat for {age:.0f}s ({setting}). Call goldfish.io.heartbeat() inside long loops, or "
                "raise compute.heartbeat_timeout_seconds in the stage config.")

    def monitor(self, doc: dict[str, Any], elapsed: float, index: metric_series.SeriesIndex,
                stop_file: Path) -> None:
        hooks = self.runner.hooks
        if not hooks.providers:
            return
        ctx = MonitorContext(project=self.project, run=doc, run_dir=self.run_dir, elapsed_seconds=elapsed,
                             metrics_summary=index.summary(), state=self.monitor_state)
        result = hooks.monitor(ctx)
        if result.findings:
            svs = dict(doc.get("svs") or {})
            during = [*svs.get("during", []), *({**f, "at": now_iso()} for f in result.findings)][-DURING_KEPT:]
            svs["during"] = during
            svs["findings_count"] = int(svs.get("findings_count") or 0) + len(result.findings)
            self.patch({"svs": svs})
        if result.request_stop and not stop_file.exists():
            reason = result.stop_reason or "stop requested by the during-run monitor"
            atomic_write(stop_file, reason)
            self.note(f"stop requested: {reason}")

    def stop(self, handle: Handle, doc: dict[str, Any], reason: tuple[str, str, str]) -> None:
        to, cause, message = reason
        grace = float(self.project.config.local.stop_grace_seconds)
        self.note(f"stopping the stage ({cause}): {message}")
        stop_file = self.runtime_dir / "stop_requested"
        if not stop_file.exists():
            with contextlib.suppress(OSError):
                atomic_write(stop_file, message, durable=False)
        try:
            status = self.runner.backend.cancel(handle, grace)
        except BackendUnavailable as exc:
            self.note(f"could not reach the backend to stop the stage: {exc}")
            status = Status(alive=False)
        fields = self.collect(doc)
        fields["exit_code"] = status.exit_code
        moved = self.move("running", to, cause, message, **fields)
        if moved is not None and to == "terminated" and cause != "preempted":
            self.failed_hooks()

    def settle_exit(self, status: Status, handle: Handle) -> None:
        doc = self.doc()
        fields = {**(remote_driver.finished(self, doc, handle, status) if self.remote else {}), **self.collect(doc)}
        code = status.exit_code
        fields["exit_code"] = code
        self.runner.backend.cleanup(handle)
        if code is None:
            why = f" ({status.detail})" if status.detail else ""
            self.settle("running", "terminated", "orphaned",
                        f"The stage process ended without recording an exit code{why}: killed outside Goldfish, or the"
                        " machine went away; treated as a failure.", **fields)
        elif code == 0:
            self.settle("running", "post_run", **fields)
        else:
            message = self.exit_message(doc, code)
            if status.detail:
                message = f"{status.detail}. {message}"
            self.settle("running", "failed", "exit_nonzero", message, **fields)
            self.failed_hooks()

    def failed_hooks(self) -> None:
        """After a failure: SVS learns a failure pattern from the log (advisory; never raises)."""
        try:
            doc = self.doc()
            if doc.get("state") not in ("failed", "terminated"):
                return
            results = self.runner.hooks.failed(FailedContext(project=self.project, run=doc, run_dir=self.run_dir))
            if results:
                with self.project.store.transaction() as tx:
                    table = tx.table("runs", ws_partition(self.ws))
                    current = table.require(self.run_id)
                    svs = dict(current.get("svs") or {})
                    svs["failure_patterns"] = [*svs.get("failure_patterns", []), *results]
                    table.patch(self.run_id, {"svs": svs})
        except Exception:
            self.runner.log(f"{self.run_id} failed hooks: {traceback.format_exc()}")

    def exit_message(self, doc: dict[str, Any], code: int) -> str:
        tail = postrun.log_tail(self.log_path, lines=15)
        what = f"signal {code - 128}" if code > 128 else f"code {code}"
        hint = ""
        if "MemoryError" in tail and doc.get("memory_limit_mb"):
            hint = (f" It hit the memory limit of {doc['memory_limit_mb']} MB (local.memory_limit_mb or the"
                    " compute profile); raise it or use less memory.")
        return f"The stage exited with {what}.{hint} Last log lines:\n{tail}" if tail else f"The stage exited with {what}.{hint}"

    def collect(self, doc: dict[str, Any]) -> dict[str, Any]:
        """Metrics summary and auto results, for any run that got to execute."""
        return postrun.collect_metrics(self.run_dir, doc)

    # --------------------------------------------------------------- post_run
    def post_run(self, doc: dict[str, Any]) -> None:
        cfg = self.project.config
        pipeline = self.load_pipeline()
        stage = pipeline.stage(doc["stage"])
        outputs, missing = run_objects.collect_outputs(self.project, self.run_id, stage, self.outputs_dir,
                                                       remote=self.remote, note=self.note)
        fields = self.collect(doc)
        stats, findings, problems = postrun.read_svs_files(self.runtime_dir)
        contract = postrun.contract_errors(findings, cfg.svs.default_enforcement) if cfg.svs.enabled else []
        hook = self.runner.hooks.post_run(PostRunContext(
            project=self.project, run=doc, run_dir=self.run_dir, outputs=outputs,
            metrics_summary=fields["metrics_summary"], stats=stats, findings=findings,
            results_auto=fields.get("results_auto"),
        ))
        svs = dict(doc.get("svs") or {})
        svs["post"] = {"stats": stats, "findings": findings, "problems": problems, "hook": hook.model_dump(),
                       "at": now_iso()}
        svs["findings_count"] = int(svs.get("findings_count") or 0) + len(findings) + len(hook.findings)
        fields.update({"outputs": outputs, "svs": svs, "lineage_recorded": True})
        if contract:  # first: in blocking mode a violated contract is why an output is missing
            unwritten = f" (so {'; '.join(missing)})" if missing else ""
            self.settle("post_run", "failed", "contract",
                        "Output contract violated (svs.default_enforcement: blocking): " + "; ".join(contract[:5])
                        + unwritten, **fields)
        elif missing:
            self.note("; ".join(missing))
            self.settle("post_run", "failed", "missing_output",
                      "The stage exited 0 but " + "; ".join(missing) + ". Write every declared output"
                      " (save_output / get_output_path), or remove it from pipeline.yaml.", **fields)
        elif hook.decision == "failed":
            self.settle("post_run", "failed", "contract",
                        str(hook.details.get("error") or "The post-run review failed the stage's outputs."),
                        **fields)
        else:
            if not self.doc().get("cancel_requested"):
                postrun.make_read_only(self.outputs_dir)
            # artifact: true outputs become sources in the same transaction that completes the run.
            plan = self.project.sources.prepare_artifacts({**doc, "outputs": outputs}, stage)
            with self.project.store.transaction() as tx:
                self.settle("post_run", "completed", **fields)
                if plan.rows or plan.findings:
                    self.register_artifacts(tx, plan)

    def register_artifacts(self, tx: Transaction, plan: ArtifactPlan) -> None:
        runs = tx.table("runs", ws_partition(self.ws))
        current = runs.require(self.run_id)
        if current["state"] != "completed":
            return
        findings = self.project.sources.commit_artifacts(tx, plan)
        svs = dict(current.get("svs") or {})
        post = dict(svs.get("post") or {})
        post["findings"] = [*(post.get("findings") or []), *findings]
        svs["post"] = post
        svs["findings_count"] = int(svs.get("findings_count") or 0) + len(findings)
        runs.patch(self.run_id, {"svs": svs})

        def log_findings() -> None:
            for finding in findings:
                self.note(f"artifacts: {finding['message']}")

        tx.after_commit(log_findings)


def _cancel_text(doc: dict[str, Any]) -> str:
    return f"Canceled: {doc.get('cancel_reason') or 'no reason given'}"


def _heartbeat_time(path: Path) -> float | None:
    try:
        return float(json.loads(path.read_text())["timestamp"])
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        try:
            return path.stat().st_mtime
        except FileNotFoundError:
            return None
