"""Backups and restore over a real project: real runs, the dev repo, the CLI, several writer processes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from goldfish.backups.restore import restore
from goldfish.backups.target import BackupError
from goldfish.cli import main as cli
from goldfish.project import Project
from tests.backup_helpers import memory, set_backups
from tests.run_helpers import REASON, SPEC, WRITE_OUTPUTS, file_stage, make_env, wait_terminal
from tests.ws_helpers import make_project, write

REPO = Path(__file__).resolve().parent.parent


def final(value: float) -> dict[str, object]:
    return {"primary_metric": "acc", "direction": "maximize", "value": value, "dataset_split": "val",
            "ml_outcome": "success", "notes": "Judged from the logged accuracy curve."}


def test_backup_lose_everything_restore_elsewhere_compare_and_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    env = make_env(tmp_path, monkeypatch)
    target = tmp_path / "other-disk" / "backups"
    set_backups(env.root, target=str(target))
    env.write([file_stage("prep"), file_stage("train", inputs={"x": "prep"})],
              {"prep": WRITE_OUTPUTS, "train": WRITE_OUTPUTS})
    project = env.project
    project.workspaces.save_version("w1", "pipeline with prep and train stages")
    started = project.runs.run("w1", stages=["prep", "train"], reason=REASON, results_spec=SPEC)
    wait_terminal(project, started.pipeline_run_id, timeout=90)
    queue = project.records.list_unfinalized_runs("w1")
    record = project.records.finalize_run(queue.runs[0].stage_run_id, final(0.9))
    project.records.tag_record(record.record_id, "best-first")
    data = tmp_path / "data.csv"
    data.write_text("a,b\n1,2\n")
    project.sources.register_source("rawdata", str(data), "a small csv for the backup test", REASON, {
        "schema_version": 1, "description": "a small csv for the backup test",
        "source": {"format": "csv", "size_bytes": data.stat().st_size, "created_at": "2025-12-24T12:00:00Z",
                   "format_params": {"delimiter": ","}},
        "schema": {"kind": "tabular", "row_count": 1, "columns": ["a", "b"],
                   "dtypes": {"a": "int64", "b": "int64"}}})
    project.journal.log_thought("prep then train looks right; next try a larger model", "exp", None)
    project.workspaces.create("other", goal="a second line of work", reason=REASON)

    before = memory(project)  # (the backup's own audit entry is written after its snapshot)
    created = project.backups.create(details="before the disk is lost")
    assert created.tier == "manual" and created.size_bytes > 0
    assert created.warning is not None and "same disk" in created.warning  # tmp_path is one disk
    assert before["ws/exp:records"] and before["project:sources"] and before["ws/exp:lineage"]

    shutil.rmtree(env.root)
    shutil.rmtree(project.dev_path)
    new_root = tmp_path / "elsewhere" / "proj"
    assert cli(["restore", "--from", str(target), "--to", str(new_root), "--dry-run"]) == 0
    assert "Would restore" in capsys.readouterr().out and not new_root.exists()
    assert cli(["restore", "latest", "--from", str(target), "--to", str(new_root)]) == 0
    assert created.backup_id in capsys.readouterr().out

    restored = Project.open(new_root, source="test")
    after = memory(restored)
    assert after.keys() == before.keys()
    for key in before:
        assert after[key] == before[key], key  # field by field, every table and log
    assert (new_root / "workspaces" / "w1" / "modules" / "prep.py").exists()

    again = restored.runs.run("w1", stages=["prep"], reason=REASON, results_spec=SPEC)
    wait_terminal(restored, again.pipeline_run_id, timeout=90)
    assert restored.runs.get(again.stage_runs[0].stage_run_id)["state"] == "completed"


def test_restore_refuses_a_live_project_and_checks_every_part(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    project.workspaces.create("exp", goal="find a good model", reason=REASON)
    first = project.backups.create()
    with pytest.raises(BackupError, match="--force"):
        restore("latest", project=str(project.root))
    project.workspaces.create("later", goal="created after the backup", reason=REASON)

    # A damaged part: nothing is written, the error names the part.
    manifest = project.backups.resolve(first.backup_id)
    blob = project.backups.target.blob_key(manifest["files"]["store/project.json"]["blob"])
    path = Path(project.backups.target.storage.uri(blob))
    good = path.read_bytes()
    path.write_bytes(b"garbage")
    with pytest.raises(BackupError, match=r"corrupt|checksum"):
        restore(first.backup_id, project=str(project.root), force=True)
    assert project.store.table("workspaces").has("later")
    path.write_bytes(good)

    plan = restore(first.backup_id, project=str(project.root), force=True)
    assert plan.moved_aside and all(Path(p).exists() for p in plan.moved_aside)
    again = Project.open(project.root, source="test")
    assert again.store.table("workspaces").has("exp") and not again.store.table("workspaces").has("later")


WRITER = """
    import sys
    import time
    from goldfish.project import Project
    project = Project.open(sys.argv[1], source="test")
    me = sys.argv[2]
    i = 0
    while True:
        with project.store.transaction() as tx:
            # one transaction touches the head partition, a shard and the audit log together
            tx.table("counters").put(me, {"n": i})
            tx.table("runs", "ws/exp").add({"writer": me, "i": i}, doc_id=f"{me}-{i:05d}")
            tx.append_event("audit", {"op": "test_write", "writer": me, "i": i})
        i += 1
        print(i, flush=True)
        time.sleep(0.002)  # leave the lock free now and then, as real writers do (filelock is not fair)
"""


def test_backup_during_three_writers_has_whole_transactions(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    project.workspaces.create("exp", goal="concurrent writers", reason=REASON)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [subprocess.Popen([sys.executable, "-c", textwrap.dedent(WRITER), str(project.root), f"w{k}"],
                              env=env, stdout=subprocess.PIPE, text=True) for k in range(3)]
    try:
        for p in procs:  # every writer has committed a few transactions
            for _ in range(3):
                assert p.stdout is not None and p.stdout.readline()
        ids = [project.backups.create().backup_id for _ in range(3)]
    finally:
        for p in procs:
            p.kill()
            p.wait()
    for n, backup_id in enumerate(ids):
        dest = tmp_path / f"restored{n}" / "proj"
        restore(backup_id, from_target=str(project.backups.target.uri), to=dest)
        restored = Project.open(dest, source="test")
        counters = {d["id"]: d["n"] for d in restored.store.table("counters").docs()}
        runs = restored.store.table("runs", "ws/exp")
        audit = [e for e in restored.store.read_events("audit")[0] if e.get("op") == "test_write"]
        for writer in ("w0", "w1", "w2"):
            last = counters[writer]
            assert last >= 2  # each writer had committed 3 transactions before the first backup
            mine_runs = sorted(d["i"] for d in runs.docs() if d["writer"] == writer)
            mine_audit = sorted(e["i"] for e in audit if e["writer"] == writer)
            # wholly present (0..last in all three places) or wholly absent (nothing beyond last)
            assert mine_runs == list(range(last + 1)) == mine_audit, (backup_id, writer)


def test_retention_keeps_exactly_the_configured_counts(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    set_backups(project.root, keep_event=5, keep_daily=7, keep_weekly=4)
    project = Project.open(project.root, source="test")
    project.workspaces.create("exp", goal="retention", reason=REASON)
    start = datetime(2026, 3, 1, 3, 0, tzinfo=UTC)
    for k in range(30):
        project.backups.create(tier="event", trigger="save_version", now=start + timedelta(minutes=k))
    for day in range(31):
        ts = start + timedelta(days=day, hours=1)
        project.backups.create(tier="weekly" if ts.weekday() == 0 else "daily", trigger="daily", now=ts)
    project.backups.create(details="kept forever")
    status = project.backups.status()
    assert status.counts == {"event": 30, "daily": 26, "weekly": 5, "manual": 1}
    assert status.expired_pending_cleanup == 25 + 19 + 1
    result = project.backups.cleanup()
    assert len(result.deleted_excess) == 25 and len(result.deleted_expired) == 20
    assert result.kept == {"event": 5, "daily": 7, "weekly": 4, "manual": 1}
    listed = project.backups.list_backups(tier="daily")
    assert listed.backups[0].created_at[:10] == "2026-03-31"
    assert len(project.backups.list_backups(include_deleted=True).backups) == 62
    # every kept backup still restores (no part it needs was deleted)
    for n, info in enumerate(project.backups.list_backups().backups[:3]):
        restore(info.backup_id, from_target=project.backups.target.uri, to=tmp_path / f"r{n}" / "proj", dry_run=True)
    audit = [e["op"] for e in project.store.read_events("audit")[0]]
    assert "cleanup_backups" in audit and "create_backup" in audit


def test_incremental_backups_store_only_what_changed(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    project.workspaces.create("exp", goal="incremental", reason=REASON)
    project.workspaces.mount("exp", "w1", reason=REASON)
    write(project.slot_path("w1"), {"big.py": "x = 1\n" * 20000})
    project.workspaces.save_version("w1", "a version with a big file")
    full = project.backups.create()
    same = project.backups.create()
    a, b = project.backups.resolve(full.backup_id), project.backups.resolve(same.backup_id)
    assert {k: v["blob"] for k, v in a["files"].items()} == {k: v["blob"] for k, v in b["files"].items()}
    assert a["git"]["bundles"] == b["git"]["bundles"]
    # all it stored is the audit log's tail: the first backup's own create_backup entry
    assert b["logs"]["audit"]["chunks"][:-1] == a["logs"]["audit"]["chunks"]
    assert same.new_bytes == b["logs"]["audit"]["chunks"][-1]["stored"]
    project.journal.log_thought("a small change after the first backup", "exp", None)
    small = project.backups.create()
    assert 0 < small.new_bytes < full.new_bytes / 4
    manifest = project.backups.resolve(small.backup_id)
    assert len(manifest["logs"]["audit"]["chunks"]) == 3  # the audit log grew: only its tails were stored
    assert len(manifest["git"]["bundles"]) == 1  # no new git objects


def test_automatic_event_backup_runs_after_the_operation(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    set_backups(project.root, auto=True)
    project = Project.open(project.root, source="test")
    from goldfish.backups.auto import wait_idle

    project.workspaces.create("exp", goal="automatic backups", reason=REASON)
    assert wait_idle(project)
    first = project.backups.status()
    # the first commit of the week takes the weekly backup (it names the operation that took it)
    assert first.last_backup is not None and first.last_backup.tier in ("weekly", "daily")
    assert first.last_backup.trigger == "create_workspace"
    project.workspaces.mount("exp", "w1", reason=REASON)  # not a high-value operation: no backup
    assert wait_idle(project)
    assert sum(project.backups.status().counts.values()) == 1
    write(project.slot_path("w1"), {"a.py": "x = 1\n"})
    project.workspaces.save_version("w1", "a version worth a backup")
    assert wait_idle(project)
    status = project.backups.status()
    assert sum(status.counts.values()) == 2 and status.last_backup is not None
    assert status.last_backup.trigger == "save_version"
    write(project.slot_path("w1"), {"a.py": "x = 2\n"})
    project.workspaces.save_version("w1", "rate limited: no second event backup")
    assert wait_idle(project)
    assert sum(project.backups.status().counts.values()) == 2


def test_automatic_backup_failure_never_fails_the_operation(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the backup directory should be")
    set_backups(project.root, auto=True, target=str(blocker / "backups"))
    project = Project.open(project.root, source="test")
    from goldfish.backups.auto import wait_idle

    project.workspaces.create("exp", goal="a failing backup target", reason=REASON)
    assert wait_idle(project)
    assert project.store.table("workspaces").has("exp")
    status = project.backups.status()
    assert status.last_backup is None and status.last_auto_error is not None
    assert "not-a-directory" in status.last_auto_error


def test_an_operation_during_a_running_automatic_backup_is_backed_up_after_it(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    set_backups(project.root, auto=True)
    project = Project.open(project.root, source="test")
    from goldfish.backups.auto import wait_idle

    project.workspaces.create("exp", goal="coalesced backups", reason=REASON)  # starts the weekly one
    project.workspaces.mount("exp", "w1", reason=REASON)
    write(project.slot_path("w1"), {"a.py": "x = 1\n"})
    saved = project.workspaces.save_version("w1", "saved while the weekly backup may still run")
    assert wait_idle(project)
    status = project.backups.status()
    assert sum(status.counts.values()) == 2 and status.last_backup is not None
    assert status.last_backup.trigger == "save_version"
    manifest = project.backups.resolve("latest")
    assert f"refs/tags/exp-{saved.version}" in manifest["git"]["refs"]  # the newest backup holds the version


def test_a_copy_restored_beside_the_live_project_gets_its_own_dev_repo(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    project = make_project(tmp_path)
    project.workspaces.create("exp", goal="a live project", reason=REASON)
    backup = project.backups.create()
    before = memory(project)
    copy = tmp_path / "proj-copy"
    plan = restore("latest", project=str(project.root), to=copy)
    assert plan.dev_path == tmp_path / "proj-copy-dev" and not plan.moved_aside
    assert memory(Project.open(project.root, source="test")) == {
        **before, "events:audit": memory(project)["events:audit"]}  # the live project is untouched
    restored = Project.open(copy, source="test")
    assert restored.dev_path == tmp_path / "proj-copy-dev"
    assert restored.store.table("workspaces").has("exp")

    monkeypatch.chdir(tmp_path)  # no project here, no --from: the error says what to pass
    assert cli(["restore", backup.backup_id]) == 2
    assert "--from" in capsys.readouterr().err


def test_chains_of_increments_start_over_and_every_backup_restores(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from goldfish.backups import service

    monkeypatch.setattr(service, "MAX_CHAIN", 3)  # 30 in production; 3 keeps the test short
    project = make_project(tmp_path)
    project.workspaces.create("exp", goal="long chains", reason=REASON)
    project.workspaces.mount("exp", "w1", reason=REASON)
    ids = []
    for k in range(7):
        write(project.slot_path("w1"), {"a.py": f"x = {k}\n"})
        project.workspaces.save_version("w1", f"version number {k} of the chain test")
        ids.append(project.backups.create().backup_id)
    lengths = [(len(m["git"]["bundles"]), len(m["logs"]["audit"]["chunks"]))
               for m in (project.backups.resolve(i) for i in ids)]
    assert lengths == [(1, 1), (2, 2), (3, 3), (1, 1), (2, 2), (3, 3), (1, 1)]
    for n, backup_id in enumerate(ids):
        dest = tmp_path / f"r{n}" / "proj"
        restore(backup_id, from_target=project.backups.target.uri, to=dest)
        restored = Project.open(dest, source="test")
        assert [v.version for v in restored.versions.rows("exp")] == [f"v{i + 1}" for i in range(n + 1)]


def test_projects_tests_create_have_automatic_backups_off_and_users_get_them_on(tmp_path: Path) -> None:
    # tests/conftest.py writes the key; if init stops going through it, every test would back up
    assert make_project(tmp_path).config.backups.auto is False
    from goldfish.config.template import default_config_yaml

    assert "backups:\n  auto: true" in default_config_yaml("p", "p-dev")
