"""The demo pipeline end to end on ``jobs.backend: gce`` against the fakes (loopback Compute Engine,
metadata, registry and Cloud Logging; gcp-storage-emulator for GCS), beside a local run of the same
version: outputs and checkpoints land in the bucket, records match, logs come from Cloud Logging,
and an output promotes to a gs:// source."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from goldfish.demo.data import export_digits
from goldfish.demo.tour import FIXTURE_ITEMS, REASON, RESULTS_SPEC, SOURCE, fixture_dir
from tests.cloud_helpers import CloudEnv, cloud_env, storage_emulator
from tests.run_helpers import wait_terminal

__all__ = ["cloud_env", "storage_emulator"]
EPOCHS = 30
STAGES = ("preprocess", "train", "evaluate")


def finalize(project: Any, prun: str) -> None:
    auto = {r.stage: project.runs.get(r.stage_run_id) for r in project.runs.status(prun).stage_runs}
    value = float(auto["evaluate"]["results_auto"]["value"])
    project.records.finalize_run(prun, {"primary_metric": "val/accuracy", "direction": "maximize", "value": value,
                                        "dataset_split": "val", "ml_outcome": "success",
                                        "notes": "Accepted the automatic result for the backend comparison."})


def by_stage(project: Any, prun: str) -> dict[str, dict[str, Any]]:
    return {r.stage: project.runs.get(r.stage_run_id) for r in project.runs.status(prun).stage_runs}


def test_demo_pipeline_on_gce_matches_local(cloud_env: CloudEnv, tmp_path: Path) -> None:
    env, bucket = cloud_env.env, cloud_env.bucket
    for item in FIXTURE_ITEMS:
        src = fixture_dir() / item
        if src.is_dir():
            shutil.copytree(src, env.slot / item, dirs_exist_ok=True)
        else:
            shutil.copy2(src, env.slot / item)
    data = env.root / "data" / "digits.npz"
    meta = export_digits(data)

    # The local run of the version.
    env.configure(jobs={"backend": "local"})
    local_project = env.project
    local_project.sources.register_source(SOURCE, str(data), meta["description"], "digits for the backend test", meta)
    local = local_project.runs.run("w1", reason=REASON, results_spec=RESULTS_SPEC)
    assert wait_terminal(local_project, local.pipeline_run_id, timeout=120).status == "completed"
    finalize(local_project, local.pipeline_run_id)

    # The same version on gce (profiles: the demo's configs say local, a VM needs a GCE shape).
    env.configure(jobs={"backend": "gce"})
    project = env.project
    override = {stage: {"compute": {"profile": "cpu-small"}} for stage in STAGES}
    cloud = project.runs.run("w1", reason=REASON, results_spec=RESULTS_SPEC, config_override=override)
    assert cloud.version == local.version and cloud.reused_version
    result = wait_terminal(project, cloud.pipeline_run_id, timeout=240)
    gce, loc = by_stage(project, cloud.pipeline_run_id), by_stage(project, local.pipeline_run_id)
    assert result.status == "completed", {s: d.get("error") for s, d in gce.items()}

    for stage in STAGES:
        g, lo = gce[stage], loc[stage]
        assert g["backend"] == "gce" and g["backend_handle"]["instance"].startswith("gf-")
        assert g["infra_outcome"] == lo["infra_outcome"] == "completed"
        assert set(g["outputs"]) == set(lo["outputs"])
        for name, out in g["outputs"].items():
            assert out["exists"] and out["location"] == f"gs://{bucket}/runs/{g['id']}/outputs/{Path(lo['outputs'][name]['location']).name}"
            assert out["size_bytes"] == lo["outputs"][name]["size_bytes"], name
        assert set(g["metrics_summary"]) == set(lo["metrics_summary"])
        for metric, summary in lo["metrics_summary"].items():
            assert g["metrics_summary"][metric]["count"] == summary["count"]
            assert g["metrics_summary"][metric]["last"] == pytest.approx(summary["last"], rel=1e-6), metric
        assert (g["results_auto"] or {}).get("value") == pytest.approx((lo["results_auto"] or {}).get("value"))
        assert [h["to"] for h in g["history"]] == [h["to"] for h in lo["history"]]
        # Outputs are in the bucket, the VM is gone.
        assert any(b.startswith(f"runs/{g['id']}/outputs/") for b in cloud_env.blobs(f"runs/{g['id']}/"))
        assert cloud_env.real or not cloud_env.cloud.find(**{"goldfish-run": g["id"]})
    train = gce["train"]
    steps = {b.split("/")[3] for b in cloud_env.blobs(f"checkpoints/{train['id']}/training_state/")}
    assert steps == {f"step_{n}" for n in range(EPOCHS)}
    assert train["metrics_summary"]["train/loss"]["last_step"] == EPOCHS - 1

    # Logs come from Cloud Logging, with byte-offset cursors like a local run's.
    from goldfish.runs.logs import read_logs

    first = read_logs(project, train["id"], tail=5)
    assert f"epoch {EPOCHS}/{EPOCHS}" in first.logs and first.done
    again = read_logs(project, train["id"], cursor=first.cursor)
    assert again.logs == "" and again.cursor == first.cursor
    assert cloud_env.real or all(e["labels"]["goldfish_run"] for e in cloud_env.cloud.entries)
    # The reader log search plugs into: any Cloud Logging filter, newest first, paginated.
    from goldfish.runs.cloud import gce_log_lines

    query = f'labels.goldfish_run="{train["id"]}" AND "epoch" AND timestamp>="2000-01-01T00:00:00Z"'
    page, token = gce_log_lines(project.config, query, limit=3)
    assert [e["run_id"] for e in page] == [train["id"]] * 3 and f"epoch {EPOCHS}/{EPOCHS}" in page[0]["text"]
    more, _ = gce_log_lines(project.config, query, limit=3, page_token=token)
    assert token and more and not {e["offset"] for e in page} & {e["offset"] for e in more}
    assert max(e["offset"] for e in more) < min(e["offset"] for e in page)

    # get_debug_info points at objects that exist; an output promotes to a gs:// source.
    info = project.records.get_debug_info(train["id"])
    assert info.backend == "gce" and info.exists["checkpoints"] and info.exists["outputs"]
    assert info.objects["outputs"] == f"gs://{bucket}/runs/{train['id']}/outputs/"
    from tests.source_helpers import npy_meta

    features = gce["preprocess"]
    meta = npy_meta(None, rows=1437, cols=64, description="Training features preprocessed on a VM")
    promoted = project.sources.promote_artifact(features["id"], "train_features", "train_features_gce",
                                                "reuse the VM's preprocessing", meta)
    assert promoted.source.uri_kind == "gcs"
    assert promoted.source.location == f"gs://{bucket}/runs/{features['id']}/outputs/train_features.npy"
