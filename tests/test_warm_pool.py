"""The warm pool against the fake Compute Engine: a second run reuses a booted worker (no insert,
a fraction of the cold start), leases are never shared between processes, idle timeout and
watchdog delete workers from stored timestamps, a killed runner's lease is released, and
warm_pool_cleanup / warm_pool_status through the real MCP client."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from goldfish.project import Project
from goldfish.runs import warm_pool
from goldfish.runs.backends.gce.api import ComputeApi
from goldfish.runs.cloud import gce_settings
from goldfish.runs.inspect import inspect_run
from goldfish.runs.state import parse_iso
from tests.cloud_helpers import CloudEnv, make_cloud_env, needs_fake, storage_emulator
from tests.run_helpers import REASON, SPEC, create_workspace, wait_state, wait_terminal

__all__ = ["storage_emulator"]
RESULT = {"primary_metric": "acc", "direction": "maximize", "value": 0.5, "dataset_split": "val",
          "ml_outcome": "partial", "notes": "checked by the warm pool test, nothing to judge"}

STAGE = '''
import json, os, time
from pathlib import Path
from goldfish.io import get_config
cfg = get_config()
out, keep = Path(os.environ["GOLDFISH_OUTPUTS_DIR"]), Path(os.environ["GOLDFISH_PRESERVE_DIR"])
seen = {"outputs": sorted(p.name for p in out.iterdir() if p.name != ".goldfish"),
        "cache": (keep / "cache" / "pip.txt").exists(), "scratch": (keep / "scratch").exists()}
(keep / "cache").mkdir(parents=True, exist_ok=True)
(keep / "cache" / "pip.txt").write_text("wheels")
(keep / "scratch").write_text("not preserved")
(out / "leftover").write_text("only for this run")
time.sleep(float(cfg.get("sleep", 0)))
(out / "out").write_text(json.dumps(seen))
print("stage done", flush=True)
'''


@pytest.fixture
def pool_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, storage_emulator: str) -> Iterator[CloudEnv]:
    needs_fake()
    yield from make_cloud_env(tmp_path, monkeypatch, storage_emulator, poll_seconds=0.2,
                              warm_pool={"enabled": True, "max_instances": 3, "preserve_paths": ["cache"]})


def write_stage(env: Any, sleep: float = 0.0) -> None:
    env.write([{"name": "work", "inputs": {}, "outputs": {"out": {"type": "file", "schema": None}}}],
              {"work": STAGE}, configs={"work": {"sleep": sleep, "compute": {"profile": "cpu-small"}}})


def run_once(project: Project, slot: str = "w1") -> tuple[str, str]:
    started = project.runs.run(slot, reason=REASON, results_spec=SPEC)
    return started.pipeline_run_id, started.stage_runs[0].stage_run_id


def start_seconds(ce: CloudEnv, project: Project, rid: str) -> float:
    """From the run entering launching to the worker starting the stage process."""
    doc = project.runs.get(rid)
    launching = next(parse_iso(h["ts"]) for h in doc["history"] if h["to"] == "launching")
    agent = json.loads(ce.storage.bucket(ce.bucket).blob(f"runs/{rid}/attempts/1/agent.json").download_as_bytes())
    assert launching is not None
    return float(agent["stage_started_unix"]) - launching


def output(ce: CloudEnv, rid: str) -> dict[str, Any]:
    return dict(json.loads(ce.storage.bucket(ce.bucket).blob(f"runs/{rid}/outputs/out").download_as_bytes()))


def test_second_run_reuses_the_warm_worker(pool_env: CloudEnv) -> None:
    env, cloud = pool_env.env, pool_env.cloud
    cloud.boot_delay = 5.0  # a (short) realistic VM boot; the ratio below is measured against it
    write_stage(env)
    project = env.project
    prun, cold = run_once(project)
    assert wait_terminal(project, prun, timeout=120).status == "completed", project.runs.get(cold)["error"]
    project.records.finalize_run(cold, RESULT)
    [worker] = cloud.live()
    assert worker.name.startswith("gfw-") and worker.labels["goldfish-pool"] == "worker"
    inserts = len(cloud.inserts())
    prun, warm = run_once(project)
    assert wait_terminal(project, prun, timeout=60).status == "completed", project.runs.get(warm)["error"]
    assert len(cloud.inserts()) == inserts  # no instances.insert for the warm run
    ratio = start_seconds(pool_env, project, warm) / start_seconds(pool_env, project, cold)
    print(f"warm start {ratio:.3f} of the cold one")
    assert ratio <= 0.10, ratio
    assert inspect_run(project, cold, include=["attempt"]).attempt["worker"] == "cold"  # type: ignore[index]
    assert inspect_run(project, warm, include=["attempt"]).attempt["worker"] == f"warm: reused {worker.name}"  # type: ignore[index]
    # Between runs the worker kept only preserve_paths: no outputs of the first run, the cache kept.
    assert output(pool_env, cold) == {"outputs": [], "cache": False, "scratch": False}
    assert output(pool_env, warm) == {"outputs": [], "cache": True, "scratch": False}
    row = project.store.table(warm_pool.TABLE).require(worker.name)
    assert row["state"] == "draining" and row["lease"] is None
    assert [h["to"] for h in row["history"]] == ["launching", "busy", "draining", "idle_ready", "busy", "draining"]


def _take(root: str, run_id: str, barrier: Any, out: Any, reps: int) -> None:
    project = Project.open(root, source="test")
    for rep in range(reps):
        barrier.wait(timeout=60)
        got = warm_pool.take(project, profile="cpu-small", image="img", run_id=f"{run_id}-{rep}", runner_id=run_id)
        out.put((rep, run_id, got["id"] if got else None))
        barrier.wait(timeout=60)  # the parent resets the worker before the next round
        barrier.wait(timeout=60)


def test_two_processes_never_share_a_worker(pool_env: CloudEnv) -> None:
    project = pool_env.project
    with project.store.transaction() as tx:
        tx.table(warm_pool.TABLE).add({"instance": "gfw-00000001", "state": "idle_ready", "profile": "cpu-small",
                                       "image": "img", "zone": "us-central1-a", "lease": None, "history": [],
                                       "served": [], "watchdog_at": "2999-01-01T00:00:00.000000Z",
                                       "idle_deadline": "2999-01-01T00:00:00.000000Z"}, doc_id="gfw-00000001")
    ctx = multiprocessing.get_context("spawn")
    barrier, out, reps = ctx.Barrier(3), ctx.Queue(), 20
    procs = [ctx.Process(target=_take, args=(str(project.root), name, barrier, out, reps)) for name in ("a", "b")]
    for p in procs:
        p.start()
    try:
        for rep in range(reps):
            barrier.wait(timeout=60)
            results = [out.get(timeout=60) for _ in range(2)]
            barrier.wait(timeout=60)
            winners = [r for r in results if r[2] is not None]
            assert len(winners) == 1, (rep, results)  # exactly one lease, the other one gets nothing
            row = project.store.table(warm_pool.TABLE).require("gfw-00000001")
            assert row["lease"]["run_id"] == f"{winners[0][1]}-{rep}"
            with project.store.transaction() as tx:
                tx.table(warm_pool.TABLE).patch("gfw-00000001", {"state": "idle_ready", "lease": None})
            barrier.wait(timeout=60)
    finally:
        for p in procs:
            p.join(timeout=30)
    # And with real runs: one idle worker, two runs at once -> one warm, one cold.
    env = pool_env.env
    with project.store.transaction() as tx:
        tx.table(warm_pool.TABLE).delete("gfw-00000001")
    write_stage(env)
    create_workspace(env, "exp2", slot="w2")
    (env.root / "workspaces" / "w2").joinpath("modules").mkdir(exist_ok=True)
    for rel in ("pipeline.yaml", "modules/work.py", "configs/work.yaml"):
        (env.root / "workspaces" / "w2" / rel).parent.mkdir(exist_ok=True)
        (env.root / "workspaces" / "w2" / rel).write_text((env.slot / rel).read_text())
    prun, first = run_once(project)
    wait_terminal(project, prun, timeout=90)
    project.records.finalize_run(first, RESULT)
    warm_pool.promote(project, project.bucket, "cpu-small")
    assert [r["state"] for r in project.store.table(warm_pool.TABLE).docs()] == ["idle_ready"]
    inserts = len(pool_env.cloud.inserts())
    # Both stages hold what they got for a while: the runs overlap whichever of them launches first
    # (a standby runner can start the second run's stage before the first one's).
    write_stage(env, sleep=3.0)
    (env.root / "workspaces" / "w2" / "configs" / "work.yaml").write_text((env.slot / "configs" / "work.yaml").read_text())
    a, b = run_once(project, "w1"), run_once(project, "w2")
    for prun, _rid in (a, b):
        assert wait_terminal(project, prun, timeout=90).status == "completed"
    workers = sorted(inspect_run(project, rid, include=["attempt"]).attempt["worker"] for _p, rid in (a, b))  # type: ignore[index]
    assert workers[0] == "cold" and workers[1].startswith("warm: reused gfw-")
    assert len(pool_env.cloud.inserts()) == inserts + 1


def test_idle_timeout_watchdog_and_a_killed_runners_lease(pool_env: CloudEnv) -> None:
    env, cloud = pool_env.env, pool_env.cloud
    project = env.project
    api = ComputeApi(gce_settings(project.config))
    write_stage(env, sleep=30)
    # A runner killed while its run holds a worker: the reconciler's new runner finishes the run
    # and the lease is released with it.
    prun, rid = run_once(project)
    wait_state(project, rid, {"running"}, timeout=60)
    [row] = project.store.table(warm_pool.TABLE).docs()
    assert row["state"] == "busy" and row["lease"]["run_id"] == rid
    os.kill(project.runs.get(prun)["runner"]["pid"], signal.SIGKILL)
    project.runs.cancel(rid, "stop the long stage of the pool test")  # the runner is dead: reconcile respawns it
    wait_terminal(project, prun, timeout=60)
    row = project.store.table(warm_pool.TABLE).require(row["id"])
    assert row["lease"] is None and row["state"] == "draining"
    # Safety net: a lease left on a terminal run (a crash between the two) is released by reconcile.
    with project.store.transaction() as tx:
        tx.table(warm_pool.TABLE).patch(row["id"], {"state": "busy", "lease": {"run_id": rid}})
    assert warm_pool.reconcile(project, api, project.bucket)["released"] == [row["id"]]
    # Idle timeout: decided from the stored deadline, whatever the clock of the process that looks.
    cloud.wait_for(lambda: warm_pool.promote(project, project.bucket, "cpu-small") or
                   project.store.table(warm_pool.TABLE).require(row["id"])["state"] == "idle_ready",
                   what="the worker to report idle")
    idle = project.store.table(warm_pool.TABLE).require(row["id"])
    deadline = parse_iso(idle["idle_deadline"])
    assert deadline is not None
    assert warm_pool.reconcile(project, api, project.bucket, now=deadline - 1)["retired"] == []
    assert warm_pool.reconcile(project, api, project.bucket, now=deadline + 1)["retired"] == [row["id"]]
    assert project.store.table(warm_pool.TABLE).require(row["id"])["state"] == "gone" and not cloud.live()
    # Watchdog: a busy worker that outlives its watchdog is deleted; its run loses the VM.
    project.records.finalize_run(rid, RESULT)
    prun, rid2 = run_once(project)
    wait_state(project, rid2, {"running"}, timeout=60)
    busy = next(r for r in project.store.table(warm_pool.TABLE).docs() if r["state"] == "busy")
    watchdog = parse_iso(busy["watchdog_at"])
    assert watchdog is not None
    assert warm_pool.reconcile(project, api, project.bucket, now=watchdog + 1)["retired"] == [busy["id"]]
    assert not cloud.live()
    assert wait_terminal(project, prun, timeout=60).status == "failed"
    assert project.runs.get(rid2)["cause"] == "orphaned"


async def test_cleanup_drains_idle_busy_and_stuck_workers_through_mcp(pool_env: CloudEnv) -> None:
    from mcp import Client

    from goldfish.runs.backends.gce.instance import build_instance
    from mcp_server.server import build_server

    env, cloud = pool_env.env, pool_env.cloud
    project = env.project
    write_stage(env, sleep=60)
    _prun, busy_run = run_once(project)  # worker 1: busy with a long run
    wait_state(project, busy_run, {"running"}, timeout=60)
    create_workspace(env, "exp2", slot="w2")
    w2 = env.root / "workspaces" / "w2"
    for rel in ("pipeline.yaml", "modules/work.py", "configs/work.yaml"):
        (w2 / rel).parent.mkdir(exist_ok=True)
        (w2 / rel).write_text((env.slot / rel).read_text().replace("sleep: 60", "sleep: 0"))
    prun2, _quick = run_once(project, "w2")  # worker 2: a short run, then idle
    assert wait_terminal(project, prun2, timeout=90).status == "completed"
    cloud.wait_for(lambda: warm_pool.promote(project, project.bucket, "cpu-small"), what="worker 2 idle")
    # Worker 3: its delete was requested but the VM did not go (a stuck delete).
    api = ComputeApi(gce_settings(project.config))
    cloud.stuck_deletes["gfw-57c4de1e"] = 2  # ours, and the one the server's reconcile may try
    opt = {"machine_type": "n2-standard-4", "boot_disk": {"type": "pd-balanced", "size_gb": 10}}
    api.insert("us-central1-a", build_instance("gfw-57c4de1e", "us-central1-a", opt, "SPOT", metadata={},
                                               labels={"goldfish-pool": "worker"}, service_account=None,
                                               max_run_seconds=3600))
    with project.store.transaction() as tx:
        tx.table(warm_pool.TABLE).add({"instance": "gfw-57c4de1e", "state": "deleting", "zone": "us-central1-a",
                                       "profile": "cpu-small", "lease": None, "served": [], "history": []},
                                      doc_id="gfw-57c4de1e")
    api.delete("us-central1-a", "gfw-57c4de1e")  # the first delete: accepted, nothing happens
    assert {r["state"] for r in project.store.table(warm_pool.TABLE).docs()} == {"busy", "idle_ready", "deleting"}
    assert len(cloud.live()) == 3

    server, _ctx = build_server(str(env.root))
    async with Client(server) as client:
        before = (await client.call_tool("warm_pool_status", {})).structured_content
        assert before["enabled"] and before["total"] == 3
        assert before["by_state"] == {"launching": 0, "busy": 1, "draining": 0, "idle_ready": 1, "deleting": 1}
        held = next(i for i in before["instances"] if i["state"] == "busy")
        assert held["active_lease_run"] == busy_run and held["zone"] and held["machine_type"] == "n2-standard-4"
        res = await client.call_tool("warm_pool_cleanup", {})
        assert not res.is_error, res.content
        out = res.structured_content
        assert out["success"] and out["remaining"] == 0 and out["pending"] == []
        assert sorted(out["deleted"]) == sorted(i["instance_name"] for i in before["instances"])
        assert out["canceled_runs"] == [busy_run]
        after = (await client.call_tool("warm_pool_status", {})).structured_content
        assert after["total"] == 0 and after["instances"] == []
    doc = project.runs.get(busy_run)
    assert doc["state"] == "canceled" and "warm_pool_cleanup" in doc["error"]
    assert not cloud.live()
    assert sum(1 for c in cloud.calls if c["op"] == "delete" and c["name"] == "gfw-57c4de1e") >= 2


async def test_status_when_the_pool_is_off_says_how_to_turn_it_on(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from mcp import Client

    from mcp_server.server import build_server
    from tests.run_helpers import make_env

    env = make_env(tmp_path, monkeypatch)
    server, _ctx = build_server(str(env.root))
    async with Client(server) as client:
        res = await client.call_tool("warm_pool_status", {})
    out = res.structured_content
    assert not res.is_error and out["enabled"] is False and out["total"] == 0
    assert "jobs.backend is not gce" in out["message"] and "gce.warm_pool: {enabled: true" in out["message"]
    assert "reload_config()" in out["message"]
