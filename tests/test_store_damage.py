"""Store damage is an error, never an empty table: each kind of damage (empty, missing, garbage, wrong
type) to a partition, a shard and a shard directory is named with its file and fix, blocks every write,
is reported by `goldfish doctor`, and `goldfish doctor --repair` brings the data back."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from goldfish.backups.repair import repair
from goldfish.cli import main as cli
from goldfish.doctor import collect_checks
from goldfish.errors import StoreError
from goldfish.project import Project
from goldfish.store import Store, integrity
from tests.backup_helpers import memory
from tests.ws_helpers import REASON, make_project, write

WS = "ws/exp.json"
SHARD = "ws/exp.records.0000.json"


def _rewrite(rel: str, fn: Callable[[dict], object]) -> Callable[[Path], None]:
    def damage(store: Path) -> None:
        path = store / rel
        path.write_bytes(orjson.dumps(fn(orjson.loads(path.read_bytes()))))
    return damage


def _drop_doc(tables: dict) -> dict:
    first = sorted(tables["records"])[0]
    del tables["records"][first]
    return tables


DAMAGE: dict[str, tuple[str, Callable[[Path], None]]] = {
    "partition-empty": (WS, lambda s: (s / WS).write_bytes(b"")),
    "partition-missing": (WS, lambda s: (s / WS).unlink()),
    "partition-garbage": (WS, lambda s: (s / WS).write_bytes(b'{"versions": {"v1": {"tr')),
    "partition-wrong-type": (WS, lambda s: (s / WS).write_bytes(b'["versions"]')),
    "shard-empty": (SHARD, lambda s: (s / SHARD).write_bytes(b"")),
    "shard-missing": (SHARD, lambda s: (s / SHARD).unlink()),
    "shard-garbage": (SHARD, lambda s: (s / SHARD).write_bytes(b"\x00\x01garbage")),
    "shard-wrong-type": (SHARD, _rewrite(SHARD, lambda t: {"records": list(t["records"])})),
    "directory-wrong-type": (WS, _rewrite(WS, lambda t: {**t, "_dir.records": {k: "0" for k in t["_dir.records"]}})),
    "directory-dangling": (WS, _rewrite(SHARD, _drop_doc)),
    "directory-missing": (SHARD, _rewrite(WS, lambda t: {k: v for k, v in t.items() if k != "_dir.records"})),
    "project-empty": ("project.json", lambda s: (s / "project.json").write_bytes(b"")),
}


@pytest.fixture
def project(tmp_path: Path) -> Project:
    p = make_project(tmp_path)
    p.workspaces.create("exp", goal="find a good model", reason=REASON)
    p.workspaces.mount("exp", "w1", reason=REASON)
    for n in range(3):
        write(p.slot_path("w1"), {"train.py": f"x = {n}\n"})
        p.workspaces.save_version("w1", f"checkpoint number {n} of the model")
    return p


def git_refs(project: Project) -> str:
    return subprocess.run(["git", "-C", str(project.dev_path), "for-each-ref"], capture_output=True, text=True,
                          check=True).stdout


def store_files(project: Project) -> dict[str, bytes]:
    return {str(p.relative_to(project.store_dir)): p.read_bytes() for p in sorted(project.store_dir.rglob("*"))
            if p.is_file() and p.name != ".lock"}


@pytest.mark.parametrize("case", sorted(DAMAGE))
def test_damage_is_named_blocks_writes_is_reported_and_repaired(project: Project, case: str,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    backup = project.backups.create(details="the last good copy")
    before = memory(project)
    history = [r.record_id for r in project.records.list_history("exp").records]
    assert len(history) == 3
    rel, damage = DAMAGE[case]
    damage(project.store_dir)

    fresh = Project.open(project.root, source="test")  # a new process's view: nothing cached
    with pytest.raises(StoreError) as caught:
        fresh.records.list_history("exp")
        fresh.workspaces.inspect("exp")
        if case == "directory-missing":  # the directory is gone: reads see no records, doctor sees the shard
            integrity.check_store(Store(project.store_dir)) and (_ for _ in ()).throw(
                StoreError("checked", details={"file": str(project.store_dir / rel)}))
    err = caught.value
    if case != "directory-missing":
        assert "goldfish doctor --repair" in str(err) and "goldfish restore" in str(err)
        assert backup.backup_id in str(err) or "points" in str(err)
    assert rel in str(err.details.get("file", "")) or rel.split("/")[-1].split(".")[0] in str(err)

    # no write while a partition a write touches is damaged
    files, refs = store_files(project), git_refs(project) if case.startswith("shard") else None
    write(project.slot_path("w1"), {"train.py": "x = 99\n"})
    if case != "directory-missing":
        with pytest.raises(StoreError):
            fresh.workspaces.save_version("w1", "this save must be refused")
        assert store_files(project) == files
        if refs is not None:  # no version tag or branch move either
            assert git_refs(project) == refs

    # doctor names the damaged file
    store_check = next(c for c in collect_checks(str(project.root)) if c.name == "store")
    assert not store_check.ok and rel in store_check.detail

    # repair brings everything back and says what it did
    report = repair(Project.open(project.root, source="test"))
    assert report.backup_id == backup.backup_id and not report.remaining, report.render()
    assert report.restored or report.replayed
    assert integrity.check_store(Store(project.store_dir)) == []
    assert memory(Project.open(project.root, source="test")) == before
    assert cli(["--project", str(project.root), "doctor", "--repair"]) == 0
    assert "Nothing to repair" in capsys.readouterr().out


def test_corrupt_shard_and_deleted_partition_cli_error_then_repair_reports_replay(
        project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    project.backups.create(details="before the damage")
    # after the backup: one more version (its row and record are not in the backup)
    write(project.slot_path("w1"), {"train.py": "x = 42\n"})
    project.workspaces.save_version("w1", "a version made after the backup")
    versions = [v.version for v in project.versions.rows("exp")]
    (project.store_dir / SHARD).write_bytes(b"\x00not json")
    (project.store_dir / WS).unlink()

    assert cli(["--project", str(project.root), "status"]) == 2
    err = capsys.readouterr().err
    assert "ws/exp" in err and "goldfish doctor --repair" in err
    assert cli(["--project", str(project.root), "doctor"]) == 1
    out = capsys.readouterr().out
    assert SHARD in out and WS in out

    assert cli(["--project", str(project.root), "doctor", "--repair"]) == 0
    out = capsys.readouterr().out
    assert "restored ws/exp.json" in out and "restored ws/exp.records.0000.json" in out
    assert "re-adopted from git tag exp-v4" in out  # replayed from the dev repo
    assert "save_version" not in out.split("Lost")[1] or "Lost (" in out
    repaired = Project.open(project.root, source="test")
    assert [v.version for v in repaired.versions.rows("exp")] == versions
    assert len(repaired.records.list_history("exp").records) == 3  # the 4th checkpoint record is reported lost
    assert "Lost (" in out and "Lost (0)" not in out
    write(project.slot_path("w1"), {"train.py": "x = 43\n"})
    repaired.workspaces.save_version("w1", "writes work again after the repair")


def test_empty_project_partition_is_never_read_as_no_workspaces(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    project.workspaces.create("exp", goal="find a good model", reason=REASON)
    (project.store_dir / "project.json").write_bytes(b"")
    fresh = Project.open(project.root, source="test")
    with pytest.raises(StoreError, match=r"project\.json is damaged: the file is empty"):
        fresh.workspaces.create("other", goal="must not be created", reason=REASON)
    assert os.path.getsize(project.store_dir / "project.json") == 0
    with pytest.raises(StoreError, match="No backup of this project was recorded yet"):
        fresh.store.table("workspaces").docs()


def test_a_store_from_before_the_registry_is_registered_on_its_first_write(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    project.workspaces.create("exp", goal="an older store", reason=REASON)
    project.workspaces.mount("exp", "w1", reason=REASON)
    write(project.slot_path("w1"), {"a.py": "x = 1\n"})
    project.workspaces.save_version("w1", "a version in the older store")
    path = project.store_dir / "project.json"
    tables = orjson.loads(path.read_bytes())
    del tables[integrity.REGISTRY]  # as written before the registry existed
    path.write_bytes(orjson.dumps(tables))
    old = Project.open(project.root, source="test")
    old.workspaces.create("other", goal="any write registers what exists", reason=REASON)
    registry = orjson.loads(path.read_bytes())[integrity.REGISTRY]
    assert {"ws/exp", "ws/exp.records.0000"} <= set(registry)
    (project.store_dir / WS).unlink()
    with pytest.raises(StoreError, match="missing although the store recorded writing it"):
        Project.open(project.root, source="test").versions.rows("exp")


def test_repair_replays_run_transitions_written_after_the_backup(project: Project) -> None:
    from goldfish.runs.state import transition

    with project.store.transaction() as tx:
        tx.table("runs", "ws/exp").add({"state": "pending", "workspace": "exp", "stage": "train"},
                                       doc_id="stage-0000aaaa")
    backup = project.backups.create(details="the run is still pending here")
    with project.store.transaction() as tx:  # after the backup, as the runner moves it
        for frm, to in (("pending", "preparing"), ("preparing", "canceled")):
            transition(tx, "stage-0000aaaa", to, expected=frm, source="test", workspace="exp",
                       cause="manual" if to == "canceled" else None)
    shard = project.store_dir / "ws" / "exp.runs.0000.json"
    shard.write_bytes(b"")

    report = repair(Project.open(project.root, source="test"))
    assert report.backup_id == backup.backup_id and not report.remaining
    assert "restored ws/exp.runs.0000.json (as of the backup)" in report.render()
    assert [Path(p).read_bytes() for p in report.kept_aside] == [b""]  # the damaged bytes are kept
    assert [r for r in report.replayed if "stage-0000aaaa" in r] == [
        r for r in report.replayed if "state pending -> preparing" in r or "state preparing -> canceled" in r]
    assert len([r for r in report.replayed if "stage-0000aaaa" in r]) == 2
    row = Project.open(project.root, source="test").store.table("runs", "ws/exp").get_doc("stage-0000aaaa")
    assert row is not None and row["state"] == "canceled" and row["finished_at"]


@pytest.mark.parametrize("how", ["missing", "truncated"])
def test_a_missing_or_truncated_event_log_is_reported_and_restored(project: Project, how: str) -> None:
    before = memory(project)
    project.backups.create(details="holds the whole audit log")
    log = project.store_dir / "events" / "audit.jsonl"
    if how == "missing":
        log.unlink()
    else:
        data = log.read_bytes()
        log.write_bytes(data[: len(data) // 2])
    if how == "missing":  # never read as "no audit entries, no thoughts"
        with pytest.raises(StoreError, match=r"audit\.jsonl is damaged: the event log is missing"):
            Project.open(project.root, source="test").journal.audit_log()
    store_check = next(c for c in collect_checks(str(project.root)) if c.name == "store")
    assert not store_check.ok and "events/audit.jsonl" in store_check.detail and how in store_check.detail
    report = repair(Project.open(project.root, source="test"))
    assert not report.remaining and any("events/audit.jsonl" in r for r in report.restored), report.render()
    assert memory(Project.open(project.root, source="test")) == before


def test_a_reader_that_saw_half_a_commit_is_not_told_the_store_is_damaged(tmp_path: Path) -> None:
    store = Store(tmp_path / "s")
    with store.transaction() as tx:
        runs = tx.table("runs", "ws/a")
        runs.add({"n": 1}, doc_id="r1")
        runs.add({"n": 2}, doc_id="r2")
    reader = Store(tmp_path / "s").table("runs", "ws/a")  # holds this head (directory) snapshot
    with store.transaction() as tx:
        tx.table("runs", "ws/a").delete("r1")
    # its directory still names r1, the shard it reads now does not: confirmed under the lock, r1 is gone
    assert reader.get_doc("r1") is None
    assert reader.get_doc("r2") == {"n": 2, "id": "r2"}
    # the same state with nothing committed: damage, named
    head = tmp_path / "s" / "ws" / "a.json"
    tables = orjson.loads(head.read_bytes())
    tables["_dir.runs"]["r9"] = 0
    head.write_bytes(orjson.dumps(tables))
    with pytest.raises(StoreError, match=r"a\.json is damaged: its directory of runs points 'r9'"):
        Store(tmp_path / "s").table("runs", "ws/a").get_doc("r9")


def test_a_reader_never_waits_behind_a_writer_nor_calls_its_half_done_commit_damage(tmp_path: Path) -> None:
    import threading

    root = tmp_path / "s"
    store = Store(root)
    with store.transaction() as tx:
        tx.table("workspaces").put("a", {"goal": "x"})
    committer = Store(root)
    locked, release = threading.Event(), threading.Event()

    def commit_half_way() -> None:  # holds the project lock like a commit between its two renames
        with committer.lock():
            locked.set()
            release.wait(60)

    holder = threading.Thread(target=commit_half_way)
    holder.start()
    try:
        assert locked.wait(60)
        project_json = root / "project.json"
        tables = orjson.loads(project_json.read_bytes())
        tables[integrity.REGISTRY]["ws/new"] = {"id": "ws/new"}
        project_json.write_bytes(orjson.dumps(tables))  # the first rename: the registry names ws/new
        # the writer holds the lock: the reader does not wait and does not cry damage
        assert Store(root).table("docs", "ws/new").ids() == []
        (root / "ws").mkdir(exist_ok=True)
        (root / "ws" / "new.json").write_bytes(orjson.dumps({"docs": {"d1": {"id": "d1"}}}))  # the second
    finally:
        release.set()
        holder.join(60)
    assert Store(root).table("docs", "ws/new").ids() == ["d1"]
    (root / "ws" / "new.json").unlink()  # now nobody is writing: a missing registered file is damage
    with pytest.raises(StoreError, match=r"new\.json is damaged: the file is missing"):
        Store(root).table("docs", "ws/new").ids()


def test_a_store_from_before_the_registry_without_project_json_is_not_damaged(tmp_path: Path) -> None:
    root = tmp_path / "s"
    Store(root).append_event("audit", {"op": "log_thought"})
    (root / "project.json").unlink()  # as an older Goldfish left it: a thought logged, nothing else
    stamp = orjson.loads((root / "STORE_VERSION.json").read_bytes())
    del stamp["registry"]
    (root / "STORE_VERSION.json").write_bytes(orjson.dumps(stamp))
    old = Store(root)
    assert old.table("workspaces").ids() == [] and integrity.check_store(old) == []
    assert [e["op"] for e in old.read_events("audit")[0]] == ["log_thought"]
