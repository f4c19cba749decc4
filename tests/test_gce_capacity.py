"""Capacity search: the order candidates are tried in, what each kind of failure does to the rest of
the search, backoff and limits (pure, with a fake clock) — then against the fake Compute Engine:
two stocked-out zones and a launch in the third, listed by inspect_run; and bad inputs that each
fail with the fix and leave no VM."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from goldfish.errors import ConfigError, Unavailable
from goldfish.runs.backends.gce.api import ApiError, classify
from goldfish.runs.backends.gce.capacity import Candidate, SearchFailed, candidates, search
from goldfish.runs.inspect import inspect_run
from tests.cloud_helpers import CloudEnv, cloud_env, needs_fake, storage_emulator
from tests.run_helpers import REASON, SPEC, WRITE_OUTPUTS, file_stage, snapshot, wait_terminal

__all__ = ["cloud_env", "storage_emulator"]


def option(profile: str, acc: str | None, zones: list[str], spot: bool = True, on_demand: bool = True) -> dict[str, Any]:
    return {"profile": profile, "machine_type": "m", "accelerator": acc, "gpu_count": 1 if acc else 0,
            "zones": zones, "spot": spot, "on_demand": on_demand}


class Clock:
    def __init__(self) -> None:
        self.t = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.sleeps.append(s)
        self.t += s


def scripted(outcomes: dict[str, list[str]]) -> tuple[Any, list[tuple[str, str]]]:
    tried: list[tuple[str, str]] = []

    def insert(cand: Candidate) -> None:
        tried.append((cand.zone, cand.provisioning))
        queue = outcomes.get(cand.zone, [])
        kind = queue.pop(0) if queue else "ok"
        if kind != "ok":
            raise ApiError(kind=kind, status=None, code=kind.upper(), message=f"{kind} in {cand.zone}")  # type: ignore[arg-type]

    return insert, tried


def test_candidate_order_follows_preferences() -> None:
    placement = {"options": [option("h100-spot", "nvidia-h100-80gb", ["z-a", "z-b"]),
                             option("a100-spot", "nvidia-tesla-a100", ["z-c"], on_demand=False)],
                 "preemptible_preference": "spot_first"}
    order = [(c.spec["profile"], c.provisioning, c.zone) for c in candidates(placement)]
    assert order == [("h100-spot", "SPOT", "z-a"), ("h100-spot", "SPOT", "z-b"), ("h100-spot", "STANDARD", "z-a"),
                     ("h100-spot", "STANDARD", "z-b"), ("a100-spot", "SPOT", "z-c")]
    placement["preemptible_preference"] = "on_demand_first"
    assert [c.provisioning for c in candidates(placement)][:2] == ["STANDARD", "STANDARD"]


def test_stockouts_back_off_between_passes_and_every_attempt_is_reported() -> None:
    clock = Clock()
    insert, tried = scripted({"us-central1-a": ["stockout", "stockout"], "us-central1-b": ["stockout", "transient"]})
    seen: list[int] = []
    cands = candidates({"options": [option("cpu", None, ["us-central1-a", "us-central1-b"], on_demand=False)]})
    cand, attempts = search(insert, cands, initial_backoff=10, multiplier=2, max_attempts=50, timeout=1000,
                            on_attempt=lambda a: seen.append(len(a)), sleep=clock.sleep, clock=clock)
    assert cand.zone == "us-central1-a"
    assert [a["outcome"] for a in attempts] == ["stockout", "stockout", "stockout", "transient", "launched"]
    assert [a["zone"] for a in attempts] == [z for z, _ in tried]
    assert seen == [1, 2, 3, 4, 5]
    assert round(sum(clock.sleeps)) == 10 + 20  # two waits, growing by the multiplier


def test_limits_quota_permission_and_cancel() -> None:
    cands = candidates({"options": [option("gpu", "nvidia-h100-80gb", ["us-central1-a", "us-central1-b",
                                                                        "us-east1-b"], on_demand=False)]})
    clock = Clock()
    insert, _ = scripted({z: ["stockout"] * 100 for z in ("us-central1-a", "us-central1-b", "us-east1-b")})
    with pytest.raises(SearchFailed) as info:
        search(insert, cands, initial_backoff=1, multiplier=1, max_attempts=7, timeout=1e9, sleep=clock.sleep, clock=clock)
    assert info.value.error_kind == "capacity" and len(info.value.attempts) == 7
    assert "gce.max_attempts = 7" in info.value.message and "gce.zones" in (info.value.fix or "")
    clock = Clock()
    insert, _ = scripted({z: ["stockout"] * 100 for z in ("us-central1-a", "us-central1-b", "us-east1-b")})
    with pytest.raises(SearchFailed, match="search_timeout_sec"):
        search(insert, cands, initial_backoff=5, multiplier=1, max_attempts=1000, timeout=30, sleep=clock.sleep, clock=clock)
    # Quota in one region skips that region's other zones; a region without quota either ends the search.
    insert, tried = scripted({"us-central1-a": ["quota"], "us-east1-b": ["quota"]})
    with pytest.raises(SearchFailed) as info:
        search(insert, cands, initial_backoff=1, multiplier=1, max_attempts=99, timeout=99, sleep=Clock().sleep)
    assert info.value.error_kind == "quota" and [z for z, _ in tried] == ["us-central1-a", "us-east1-b"]
    assert "quota increase" in (info.value.fix or "")
    insert, tried = scripted({"us-central1-a": ["permission"]})
    with pytest.raises(SearchFailed) as info:
        search(insert, cands, initial_backoff=1, multiplier=1, max_attempts=99, timeout=99)
    assert info.value.error_kind == "permission" and len(tried) == 1 and "roles/compute.instanceAdmin" in (info.value.fix or "")
    insert, tried = scripted({})
    with pytest.raises(SearchFailed) as info:
        search(insert, cands, initial_backoff=1, multiplier=1, max_attempts=99, timeout=99, should_stop=lambda: True)
    assert info.value.error_kind == "canceled" and tried == []


def test_error_classification_uses_real_wording() -> None:
    class Op(Exception):
        def __init__(self, code: int, message: str, errors: list[dict[str, str]]):
            super().__init__(message)
            self.code, self.message, self.errors = code, message, errors

    assert classify(Op(503, "The zone 'projects/p/zones/z' does not have enough resources available to fulfill "
                            "the request.", [{"code": "ZONE_RESOURCE_POOL_EXHAUSTED"}])).kind == "stockout"
    quota = classify(Op(403, "Quota 'NVIDIA_H100_GPUS' exceeded.  Limit: 0.0 in region us-central1.",
                        [{"code": "QUOTA_EXCEEDED"}]))
    assert quota.kind == "quota" and quota.quota_name == "NVIDIA_H100_GPUS"
    assert classify(Op(403, "Required 'compute.instances.create' permission", [{"reason": "forbidden"}])).kind == "permission"
    assert classify(Op(503, "Internal error", [{"reason": "backendError"}])).kind == "transient"
    assert classify(ConnectionResetError("reset")).kind == "transient"
    assert classify(Op(404, "The resource 'zones/us-central9-a' was not found", [])).kind == "not_found"


# ------------------------------------------------------------------ against the fake Compute Engine


def test_two_zones_stock_out_the_third_launches(cloud_env: CloudEnv) -> None:
    needs_fake()
    cloud = cloud_env.cloud
    cloud.script("us-central1-a", "stockout")
    cloud.script("us-central1-b", "stockout")
    env = cloud_env.env
    env.write([file_stage("prep")], {"prep": WRITE_OUTPUTS})
    project = env.project
    started = project.runs.run("w1", reason=REASON, results_spec=SPEC)
    rid = started.stage_runs[0].stage_run_id
    assert wait_terminal(project, started.pipeline_run_id, timeout=90).status == "completed", project.runs.get(rid)["error"]
    attempt = inspect_run(project, rid, include=["attempt"]).attempt
    assert attempt is not None and attempt["worker"] == "cold"
    capacity = attempt["vm_attempts"][0]["capacity"]
    assert [(a["zone"], a["outcome"]) for a in capacity] == [
        ("us-central1-a", "stockout"), ("us-central1-b", "stockout"), ("us-central1-c", "launched")]
    assert all(a["machine_type"] == "n2-standard-4" and a["provisioning_model"] == "STANDARD" for a in capacity)
    assert "ZONE_RESOURCE_POOL_EXHAUSTED" in capacity[0]["error"]
    assert [c["zone"] for c in cloud.inserts()] == ["us-central1-a", "us-central1-b", "us-central1-c"]
    assert project.runs.get(rid)["backend_handle"]["zone"] == "us-central1-c"


def test_bad_inputs_fail_with_the_fix_and_leave_no_vm(cloud_env: CloudEnv, tmp_path: Path) -> None:
    needs_fake()
    from goldfish.config.loader import parse_config

    base = "project_name: p\ndev_repo_path: p-dev\njobs: {backend: gce}\n"
    with pytest.raises(ConfigError, match=r"gcs: \{bucket: my-bucket\}"):
        parse_config(base + "gce: {project_id: p, zones: [us-central1-a]}\n")
    with pytest.raises(ConfigError, match=r"gce: \{project_id: my-gcp-project\}"):
        parse_config(base + "gcs: {bucket: bkt}\n")
    env, cloud = cloud_env.env, cloud_env.cloud
    env.write([file_stage("prep")], {"prep": WRITE_OUTPUTS})

    # An unknown zone: refused by validate_config, dry runs and run(), before anything is recorded.
    env.configure(gce={"zones": ["us-central1-a", "us-central9-a"]})
    project = env.project
    from goldfish.pipelines.config_check import validate_config

    checked = validate_config(project)
    assert not checked.valid and any("us-central9-a does not exist" in e.message for e in checked.errors)
    dry = project.runs.run("w1", dry_run=True)
    assert not dry.valid and any("us-central9-a" in e.message for e in dry.errors)  # type: ignore[union-attr]
    before = snapshot(env)
    with pytest.raises(Unavailable) as info:
        project.runs.run("w1", reason=REASON, results_spec=SPEC)
    assert "cannot run stages here" in info.value.message and "us-central9-a does not exist" in info.value.message
    assert "us-central1" in (info.value.fix or "")
    assert snapshot(env) == before and not cloud.inserts()
    env.configure(gce={"zones": ["us-central1-a", "us-central1-b"]})

    def failed_run(**config: Any) -> dict[str, Any]:
        project = env.project
        started = project.runs.run("w1", reason=REASON, results_spec=SPEC, config_override=config or None)
        wait_terminal(project, started.pipeline_run_id, timeout=90)
        doc = project.runs.get(started.stage_runs[0].stage_run_id)
        project.records.finalize_run(doc["id"], {"primary_metric": "acc", "direction": "maximize", "value": 0.0,
                                                  "dataset_split": "val", "ml_outcome": "miss",
                                                  "notes": "the launch failed as this test expects"})
        assert not cloud.live()
        return doc

    # No quota for the GPU: one attempt per region, then the quota named with the fix.
    cloud.no_quota.add("nvidia-h100-80gb")
    doc = failed_run(compute={"profile": "h100-spot"})
    assert (doc["state"], doc["cause"]) == ("failed", "launch_error")
    assert "NVIDIA_H100_GPUS" in doc["error"] and "quota increase" in doc["error"]
    assert [a["outcome"] for a in doc["attempts"][0]["capacity"]] == ["quota"]

    # The image is not in the registry: no VM is even requested.
    env.configure(docker={"project_image_version": "v999"})
    inserts = len(cloud.inserts())
    doc = failed_run()
    assert (doc["state"], doc["cause"]) == ("failed", "launch_error")
    assert "proj-cpu:v999 is not in the registry" in doc["error"] and "manage_base_images" in doc["error"]
    assert len(cloud.inserts()) == inserts


def test_doctor_checks_the_cloud_and_names_what_is_missing(cloud_env: CloudEnv) -> None:
    needs_fake()
    from goldfish.doctor import collect_checks

    def checks() -> dict[str, Any]:
        return {c.name: c for c in collect_checks(str(cloud_env.env.root)) if c.name.startswith("gce:")}

    found = checks()
    assert set(found) == {"gce: credentials, Compute API, zones", "gce: bucket", "gce: registry", "gce: Cloud Logging"}
    assert all(c.ok and c.required for c in found.values()), {n: c.detail for n, c in found.items()}
    cloud_env.env.configure(gcs={"bucket": "missing-bucket"}, docker={"project_image_version": "v404"},
                            gce={"zones": ["us-central1-a", "us-central7-q"]})
    found = checks()
    assert "gcloud storage buckets create gs://missing-bucket" in found["gce: bucket"].detail
    assert "proj-cpu:v404 is missing" in found["gce: registry"].detail and "manage_base_images" in found["gce: registry"].detail
    assert "us-central7-q does not exist" in found["gce: credentials, Compute API, zones"].detail
    assert not any(c.ok for n, c in found.items() if n != "gce: Cloud Logging")
