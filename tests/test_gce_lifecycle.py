"""A gce stage run's life against the fake Compute Engine: preemption auto-resume from checkpoints
(and the retry limit), a runner SIGKILLed while its VM runs, re-attach by label, cancel, and the
reconciler deleting VMs of terminal runs."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

from goldfish.runs.backends.gce import GceBackend
from goldfish.runs.cloud import backend_context
from goldfish.runs.reconciler import sweep_vms
from tests.cloud_helpers import BUCKET, CloudEnv, cloud_env, needs_fake, storage_emulator
from tests.run_helpers import REASON, SPEC, wait_state, wait_terminal

__all__ = ["cloud_env", "storage_emulator"]

STEPS = 8
TRAIN = '''
import json, os, time
from pathlib import Path
from goldfish.io import get_config, load_checkpoint, save_checkpoint, heartbeat
from goldfish.metrics import log_metric
cfg = get_config()
start, resumed = 0, None
ckpt = load_checkpoint("state")
if ckpt is not None:
    import pickle
    state = pickle.loads(Path(ckpt).read_bytes())
    start, resumed = state["step"] + 1, state["step"]
    print("resuming after step", state["step"], flush=True)
done = []
for step in range(start, cfg["steps"]):
    time.sleep(cfg.get("sleep", 0.3))
    log_metric("acc", step / cfg["steps"], step=step)
    save_checkpoint("state", {"step": step}, step=step)
    heartbeat(f"step {step}")
    print("step", step, flush=True)
    done.append(step)
out = Path(os.environ["GOLDFISH_OUTPUTS_DIR"]) / "model"
out.write_text(json.dumps({"final_step": cfg["steps"] - 1, "resumed_after": resumed, "ran": done}))
'''


def train_stage(env: Any, **config: Any) -> None:
    env.write([{"name": "train", "inputs": {}, "outputs": {"model": {"type": "file", "schema": None}}}],
              {"train": TRAIN}, configs={"train": {"steps": STEPS, "sleep": 0.3, **config,
                                                   "compute": {"profile": "cpu-small"}}})


def checkpoints(cloud_env: CloudEnv, rid: str) -> set[str]:
    return {b.split("/")[3] for b in cloud_env.blobs(f"checkpoints/{rid}/state/") if b.endswith(".json")}


def vm_of(cloud_env: CloudEnv, rid: str, attempt: int) -> Any:
    return cloud_env.cloud.wait_for(lambda: cloud_env.cloud.find(**{"goldfish-run": rid, "goldfish-attempt": str(attempt)}),
                                    what=f"the VM of {rid} attempt {attempt}")[0]


def test_preempted_spot_vm_resumes_from_its_checkpoint(cloud_env: CloudEnv) -> None:
    needs_fake()
    env = cloud_env.env
    env.configure(gce={"preemptible_preference": "spot_first"})
    train_stage(env)
    project = env.project
    started = project.runs.run("w1", reason=REASON, results_spec=SPEC)
    rid = started.stage_runs[0].stage_run_id
    vm = vm_of(cloud_env, rid, 1)
    assert vm.body["scheduling"]["provisioningModel"] == "SPOT"
    cloud_env.cloud.wait_for(lambda: "step_2" in checkpoints(cloud_env, rid), what="checkpoint step_2")
    cloud_env.cloud.preempt(vm)
    assert wait_terminal(project, started.pipeline_run_id, timeout=120).status == "completed"
    doc = project.runs.get(rid)
    assert doc["infra_outcome"] == "completed" and doc["attempt"] == 2 and doc["cause"] is None
    model = json.loads(cloud_env.storage.bucket(BUCKET).blob(f"runs/{rid}/outputs/model").download_as_bytes())
    assert model["final_step"] == STEPS - 1
    assert model["resumed_after"] is not None and model["resumed_after"] >= 2
    assert model["ran"] == list(range(model["resumed_after"] + 1, STEPS))
    moves = [(h["from"], h["to"], h["cause"]) for h in doc["history"]]
    assert moves == [("pending", "preparing", None), ("preparing", "launching", None), ("launching", "running", None),
                     ("running", "launching", "preempted"), ("launching", "running", None),
                     ("running", "post_run", None), ("post_run", "completed", None)]
    first, second = doc["attempts"]
    assert first["outcome"] == "preempted" and "preempted" in first["detail"] and second["outcome"] == "exited"
    assert first["instance"] != second["instance"] and second["instance"].endswith("-a2")
    assert doc["metrics_summary"]["acc"]["last_step"] == STEPS - 1
    assert not cloud_env.cloud.live()


def test_preempted_more_than_the_limit_ends_terminated(cloud_env: CloudEnv) -> None:
    needs_fake()
    env = cloud_env.env
    env.configure(gce={"preemptible_preference": "spot_first", "max_preemption_retries": 1})
    train_stage(env, steps=40)
    project = env.project
    started = project.runs.run("w1", reason=REASON, results_spec=SPEC)
    rid = started.stage_runs[0].stage_run_id
    for attempt in (1, 2):
        vm = vm_of(cloud_env, rid, attempt)
        cloud_env.cloud.wait_for(lambda n=2 * attempt: len(checkpoints(cloud_env, rid)) >= n, what="a checkpoint")
        cloud_env.cloud.preempt(vm)
    assert wait_terminal(project, started.pipeline_run_id, timeout=120).status == "failed"
    doc = project.runs.get(rid)
    assert (doc["state"], doc["cause"], doc["infra_outcome"]) == ("terminated", "preempted", "preempted")
    assert "max_preemption_retries = 1" in doc["error"]
    assert [a["outcome"] for a in doc["attempts"]] == ["preempted", "preempted"]
    gate = project.runs.run("w1", dry_run=True).gate  # type: ignore[union-attr]
    assert gate.blocked and rid in gate.unfinalized  # gated like any other ending
    assert not cloud_env.cloud.live()


def test_runner_killed_with_a_live_vm_is_reattached(cloud_env: CloudEnv) -> None:
    needs_fake()
    env = cloud_env.env
    train_stage(env, sleep=0.5)
    project = env.project
    started = project.runs.run("w1", reason=REASON, results_spec=SPEC)
    rid = started.stage_runs[0].stage_run_id
    vm_of(cloud_env, rid, 1)
    wait_state(project, rid, {"running"}, timeout=60)
    cloud_env.cloud.wait_for(lambda: checkpoints(cloud_env, rid), what="a first checkpoint")
    prun = project.runs.get(started.pipeline_run_id)
    os.kill(prun["runner"]["pid"], signal.SIGKILL)
    assert wait_terminal(project, started.pipeline_run_id, timeout=120).status == "completed"
    doc = project.runs.get(rid)
    assert doc.get("attempt") in (None, 1) and len(cloud_env.cloud.inserts()) == 1
    assert project.runs.get(started.pipeline_run_id)["runner"]["pid"] != prun["runner"]["pid"]
    assert not cloud_env.cloud.live()


def test_reattach_by_label_when_the_launch_was_not_recorded(cloud_env: CloudEnv, tmp_path: Path) -> None:
    needs_fake()
    project = cloud_env.project
    backend = GceBackend(backend_context(project))
    run_dir = tmp_path / "stage-0000feed"
    run_dir.mkdir()
    from goldfish.runs.backends.gce.instance import build_instance

    opt = {"machine_type": "n2-standard-4", "boot_disk": {"type": "pd-balanced", "size_gb": 10}}
    body = build_instance("gf-0000feed-a1", "us-central1-b", opt, "SPOT", metadata={}, max_run_seconds=600,
                          labels={"goldfish-run": "stage-0000feed", "goldfish-attempt": "1"}, service_account=None)
    backend.api.insert("us-central1-b", body)
    assert backend.find_launch(run_dir) is None  # nothing says a launch was under way
    (run_dir / "launch_intent.json").write_text(json.dumps({"run_id": "stage-0000feed", "attempt": 1,
                                                            "name": "gf-0000feed-a1"}))
    handle = backend.find_launch(run_dir)
    assert handle is not None and (handle["instance"], handle["zone"]) == ("gf-0000feed-a1", "us-central1-b")
    assert json.loads((run_dir / "launch.json").read_text())["instance"] == "gf-0000feed-a1"
    backend.cleanup(handle)
    assert not cloud_env.cloud.live()


def test_cancel_deletes_the_vm(cloud_env: CloudEnv) -> None:
    needs_fake()
    env = cloud_env.env
    train_stage(env, steps=200)
    project = env.project
    started = project.runs.run("w1", reason=REASON, results_spec=SPEC)
    rid = started.stage_runs[0].stage_run_id
    vm_of(cloud_env, rid, 1)
    cloud_env.cloud.wait_for(lambda: checkpoints(cloud_env, rid), what="a first checkpoint")
    t0 = time.monotonic()
    result = project.runs.cancel(rid, "wrong hyperparameters, stopping it")
    assert result.success and project.runs.get(rid)["state"] == "canceled", result.message
    assert time.monotonic() - t0 < 30
    assert not cloud_env.cloud.live()
    assert any(c["op"] == "delete" for c in cloud_env.cloud.calls)


def test_reconciler_deletes_vms_of_terminal_runs(cloud_env: CloudEnv) -> None:
    needs_fake()
    env = cloud_env.env
    train_stage(env, steps=2)
    project = env.project
    done = project.runs.run("w1", reason=REASON, results_spec=SPEC)
    wait_terminal(project, done.pipeline_run_id, timeout=90)
    rid = done.stage_runs[0].stage_run_id
    from goldfish.runs.backends.gce.instance import build_instance

    backend = GceBackend(backend_context(project))
    opt = {"machine_type": "n2-standard-4", "boot_disk": {"type": "pd-balanced", "size_gb": 10}}
    labels = {"goldfish-managed": "true", "goldfish-project": "proj", "goldfish-attempt": "1"}
    for name, run in (("gf-orphan-a1", rid), ("gf-unknown-a1", "stage-0badf00d")):
        backend.api.insert("us-central1-a", build_instance(name, "us-central1-a", opt, "STANDARD", metadata={},
                                                          labels={**labels, "goldfish-run": run},
                                                          service_account=None, max_run_seconds=3600))
    other = build_instance("someone-elses-vm", "us-central1-a", opt, "STANDARD", metadata={}, labels={},
                           service_account=None, max_run_seconds=3600)
    backend.api.insert("us-central1-a", other)
    lost_worker = build_instance("gfw-0000dead", "us-central1-a", opt, "STANDARD", metadata={},
                                 labels={**labels, "goldfish-pool": "worker", "goldfish-run": rid},
                                 service_account=None, max_run_seconds=3600)
    backend.api.insert("us-central1-a", lost_worker)  # a pool worker the pool has no row for
    assert sorted(sweep_vms(project, force=True)) == ["gf-orphan-a1", "gf-unknown-a1", "gfw-0000dead"]
    assert [vm.name for vm in cloud_env.cloud.live()] == ["someone-elses-vm"]
    assert sweep_vms(project) == []  # rate-limited: at most once a minute unless forced
