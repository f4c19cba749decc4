"""The history index: answers as a scan of the rows would, stays equal to the rows after every kind of
write (this process's or another's), is rebuilt by `goldfish doctor` and by the schema 4 migration,
and a reader holds the shards it read, not the whole history."""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson
import pytest

from goldfish.errors import StoreError
from goldfish.project import Project
from goldfish.records.index import chunk_partition, verify
from goldfish.records.refs import primary_metric
from goldfish.records.roles import is_result_row
from goldfish.store.cache import BoundedCache
from tests.records_fixture import SPEC, Rows, final, new_project
from tests.scale_rows import write_scale_rows

REPO = Path(__file__).resolve().parent.parent
LOSS_SPEC = {**SPEC, "primary_metric": "loss", "direction": "minimize", "min_value": 0.5, "goal_value": 0.3}


def _varied(project: Project) -> Rows:
    """A workspace with every kind of row: stages, supporting stages, checkpoints, tags, groups, a pruned
    version, finalized/auto/crashed results and two primary metrics."""
    rows = Rows(project)
    rows.workspace("lstm", versions=2)
    rows.version("lstm", pruned=True)
    for i in range(8):
        rid = rows.run("lstm", stage="train" if i % 3 else "eval", value=0.55 + 0.02 * i,
                       experiment_group="g1" if i % 2 else None, version=f"v{1 + i % 3}")
        if i % 2 == 0:
            project.records.finalize_run(rid, final(0.55 + 0.02 * i, "partial"))
    best = rows.run("lstm", value=0.9)
    project.records.finalize_run(best, final(0.9, "success"))
    project.records.tag_record(best, "best")
    rows.run("lstm", state="terminated", cause="crashed", value=None)
    rows.run("lstm", value=0.4, spec=LOSS_SPEC)
    prun, ids = rows.pipeline_run("lstm", ["prep", "train"])
    rows.finish("lstm", ids["prep"])
    rows.finish("lstm", ids["train"], value=0.7)
    project.records.finalize_run(prun, final(0.7, "success"))
    rows.checkpoint("lstm", "v1")
    rows.checkpoint("lstm", "v3", "A checkpoint of the pruned version")
    return rows


# ----------------------------------------------------------------------------- the oracle: a scan of the rows


def _scan(project: Project, ws: str, *, record_type: str | None = None, stage: str | None = None,
          tagged: bool | str | None = None, metric: str | None = None, min_value: float | None = None,
          experiment_group: str | None = None, sort_by: str = "created", desc: bool = True,
          include_pruned: bool = False, finalized_only: bool = False, limit: int = 20, offset: int = 0,
          include_supporting: bool = False) -> tuple[list[str], int]:
    store = project.store
    records = list(store.table("records", f"ws/{ws}").iter_raw())
    runs = {r["id"]: r for r in store.table("runs", f"ws/{ws}").iter_raw()}
    pruned = set() if include_pruned else {v["id"] for v in store.table("versions", f"ws/{ws}").iter_raw()
                                           if v.get("pruned_at")}

    def key(doc: Mapping[str, Any]) -> tuple[str, str]:
        return str(doc.get("created_at") or ""), str(doc["id"])

    def run_of(rec: Mapping[str, Any]) -> Mapping[str, Any] | None:
        return runs.get(rec.get("stage_run_id") or "")

    def keep(rec: Mapping[str, Any]) -> bool:
        tags = rec.get("tags") or []
        pm = primary_metric(run_of(rec))
        run = run_of(rec)
        return ((record_type is None or rec.get("type", "run") == record_type)
                and (stage is None or rec.get("stage") == stage)
                and (experiment_group is None or rec.get("experiment_group") == experiment_group)
                and (tagged is None or (bool(tags) == tagged if isinstance(tagged, bool) else tagged in tags))
                and rec.get("version") not in pruned
                and (not finalized_only or (run is not None and run.get("results_status") == "finalized"))
                and (metric is None or (pm is not None and pm[0] == metric))
                and (min_value is None or (pm is not None and pm[1] is not None and pm[1] >= min_value)))

    newest = sorted(records, key=key, reverse=True)
    base = newest if include_supporting else [r for r in newest if r.get("type", "run") != "run" or is_result_row(r)]
    matched = [r for r in base if keep(r)]
    end = offset + limit
    if sort_by == "created":
        page = matched[offset:end] if desc else matched[::-1][offset:end]
    else:
        valued = [r for r in matched if (pm := primary_metric(run_of(r))) and pm[1] is not None]
        missing = [r for r in matched if r not in valued]
        valued.sort(key=lambda r: (primary_metric(run_of(r))[1], key(r)), reverse=desc)  # type: ignore[index]
        page = (valued + (missing if desc else missing[::-1]))[offset:end]
    return [r["id"] for r in page], len(matched)


def test_history_from_the_index_matches_a_scan_of_the_rows(tmp_path: Path) -> None:
    project = new_project(tmp_path)
    _varied(project)
    rng = random.Random(22)
    options: dict[str, list[Any]] = {
        "record_type": [None, "run", "checkpoint"], "stage": [None, "train", "eval", "prep"],
        "tagged": [None, True, False, "best"], "metric": [None, "acc", "loss"], "min_value": [None, 0.6],
        "experiment_group": [None, "g1"], "sort_by": ["created", "metric"], "desc": [True, False],
        "include_pruned": [False, True], "finalized_only": [False, True], "include_supporting": [False, True],
        "offset": [0, 2], "limit": [3, 200],
    }
    cases = [{k: rng.choice(v) for k, v in options.items()} for _ in range(250)]
    cases += [{}, {"sort_by": "metric"}, {"sort_by": "metric", "desc": False}, {"include_supporting": True}]
    for case in cases:
        result = project.records.list_history("lstm", **case)
        want, total = _scan(project, "lstm", **case)
        assert ([r.record_id for r in result.records], result.total) == (want, total), case
        assert result.has_more == (case.get("offset", 0) + case.get("limit", 20) < total)


def test_every_write_leaves_the_index_equal_to_the_rows(tmp_path: Path) -> None:
    project = new_project(tmp_path)
    rows = _varied(project)
    assert verify(project.store, "lstm") == []
    again = rows.run("lstm", value=0.66)
    project.records.finalize_run(again, final(0.66))
    project.records.finalize_run(again, final(0.67, notes="Looked again at the curve today."))  # re-finalized
    project.records.tag_record(again, "best-2")
    assert verify(project.store, "lstm") == []
    context = project.records.get_experiment_context("lstm")
    assert context.current_best is not None and context.current_best.tag == "best-2"
    assert [p.stage_run_id for p in context.recent_trend][:1] == [again]
    assert [r.stage_run_id for r in context.awaiting_finalization] == [
        r["id"] for r in sorted((r for r in project.store.table("runs", "ws/lstm").iter_raw()
                                 if r.get("results_status") == "auto" and r.get("role") != "supporting"),
                                key=lambda r: (r.get("finished_at") or "", r["id"]))]


def test_another_process_write_is_seen_by_this_one(tmp_path: Path) -> None:
    project = new_project(tmp_path)
    rows = Rows(project)
    rows.workspace("lstm")
    waiting = rows.run("lstm", value=0.61)
    assert project.records.list_history("lstm").records[0].results_status == "auto"
    script = ("import sys\nfrom goldfish.project import Project\nfrom tests.records_fixture import final\n"
              "Project.open(sys.argv[1]).records.finalize_run(sys.argv[2], final(0.62))\n")
    subprocess.run([sys.executable, "-c", script, str(project.root), waiting], check=True, timeout=120,
                   env={**os.environ, "PYTHONPATH": str(REPO)})
    row = project.records.list_history("lstm").records[0]
    assert row.results_status == "finalized" and row.primary_metric is not None and row.primary_metric.value == 0.62
    assert project.records.get_experiment_context("lstm").awaiting_finalization == []


# ----------------------------------------------------------------------------- damage and rebuild


def _answers(project: Project, ws: str) -> list[Any]:
    rec = project.records
    return [rec.list_history(ws, limit=50).model_dump(exclude={"records": {"__all__": {"age"}}}),
            rec.list_history(ws, sort_by="metric", desc=False, limit=50).model_dump(
                exclude={"records": {"__all__": {"age"}}}),
            rec.list_history(ws, stage="train", sort_by="metric", offset=7, limit=20).model_dump(
                exclude={"records": {"__all__": {"age"}}}),
            [r.stage_run_id for r in rec.get_experiment_context(ws).awaiting_finalization]]


def _doctor(project: Project) -> str:
    proc = subprocess.run([sys.executable, "-m", "goldfish", "doctor"], cwd=project.root, capture_output=True,
                          text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(REPO)})
    line = next(line for line in proc.stdout.splitlines() if "history indexes" in line)
    assert line.startswith("[ok ]"), proc.stdout
    return line


def test_doctor_rebuilds_a_deleted_a_corrupted_and_a_stale_index_chunk(tmp_path: Path) -> None:
    project = new_project(tmp_path)
    ws, _ = write_scale_rows(project.root, 2500, versions=20, thoughts=0)  # three index chunks
    project = Project.open(project.root)
    before = _answers(project, ws)
    assert "matches their records" in _doctor(project)
    chunk = [project.store_dir / f"{chunk_partition(ws, n)}.json" for n in range(3)]
    assert all(p.is_file() for p in chunk)

    chunk[1].unlink()
    with pytest.raises(StoreError, match="goldfish doctor"):
        Project.open(project.root).records.list_history(ws)
    chunk[2].write_bytes(b'{"hist": {"entries": {"id": "entries", "rows": {')  # torn
    stale = orjson.loads(chunk[0].read_bytes())
    rows = stale["hist"]["entries"]["rows"]
    first = next(iter(rows))
    rows[first][10] = 99.0  # a wrong metric value: valid JSON, wrong answer
    chunk[0].write_bytes(orjson.dumps(stale))

    line = _doctor(project)
    assert "rebuilt" in line and "0001.json is missing" in line and "0002.json is not a valid index file" in line
    assert "0000.json has 1 stale entry" in line
    fresh = Project.open(project.root)
    assert verify(fresh.store, ws) == []
    assert _answers(fresh, ws) == before


def test_a_schema_3_store_gets_its_index_when_opened(tmp_path: Path) -> None:
    project = new_project(tmp_path)
    _varied(project)
    before = _answers(project, "lstm")
    for chunk in (project.store_dir / "ws").glob("lstm.hist-*.json"):
        chunk.unlink()
    stamp_path = project.store_dir / "STORE_VERSION.json"
    stamp = orjson.loads(stamp_path.read_bytes())
    stamp_path.write_bytes(orjson.dumps({**stamp, "schema": 3}))
    reopened = Project.open(project.root)
    assert _answers(reopened, "lstm") == before
    assert orjson.loads(stamp_path.read_bytes())["schema"] == 4
    assert verify(reopened.store, "lstm") == []


# ----------------------------------------------------------------------------- bounded memory


def test_a_reader_holds_the_shards_it_read_not_the_history(tmp_path: Path) -> None:
    project = new_project(tmp_path)
    ws, _ = write_scale_rows(project.root, 2500, versions=20, thoughts=0)
    reader = Project.open(project.root)
    reader.records.list_history(ws, limit=20)
    reader.records.get_experiment_context(ws)
    held = [p for p in reader.store._cache if ".runs." in p or ".records." in p]
    all_shards = list((reader.store_dir / "ws").glob(f"{ws}.runs.*.json"))
    assert len(all_shards) >= 9 and len([p for p in held if ".runs." in p]) <= 3, held


def test_the_shard_cache_drops_least_recently_used_shards_and_keeps_heads() -> None:
    class Snap:
        def __init__(self, size: int):
            self.ident = (1, size, 1)

    cache = BoundedCache(limit=300)
    cache["ws/a"] = Snap(1000)  # a head: never dropped, not counted
    cache["ws/a.hist-0000"] = Snap(1000)
    for n in range(3):
        cache[f"ws/a.runs.{n:04d}"] = Snap(100)
    assert cache.get("ws/a.runs.0000") is not None  # used: now the most recent
    cache["ws/a.runs.0003"] = Snap(100)
    assert set(cache) == {"ws/a", "ws/a.hist-0000", "ws/a.runs.0000", "ws/a.runs.0002", "ws/a.runs.0003"}
    assert cache.shard_bytes == 300
    cache.pop("ws/a.runs.0002")
    assert cache.shard_bytes == 200 and cache.pop("ws/a.runs.0002", None) is None
    cache.clear()
    assert cache.shard_bytes == 0 and not cache


def test_index_chunks_are_renamed_before_the_documents_they_index(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    # A lock-free reader that saw a run terminal must see the gate count it: the index goes first.
    import goldfish.store as store_module

    project = new_project(tmp_path)
    rows = Rows(project)
    rows.workspace("lstm")
    rid = rows.run("lstm", value=0.61)
    renamed: list[str] = []
    real = os.replace

    def spy(src: Any, dst: Any) -> None:
        renamed.append(str(Path(dst).relative_to(project.store_dir)))
        real(src, dst)

    monkeypatch.setattr(store_module.os, "replace", spy)
    project.records.finalize_run(rid, final(0.61))
    stored = [p for p in renamed if p.endswith(".json") and not p.startswith("intent")]
    assert stored[0].startswith("ws/lstm.hist-") and any(p.startswith("ws/lstm.runs.") for p in stored[1:]), renamed


def test_reads_while_another_process_records_runs_never_see_damage(tmp_path: Path) -> None:
    # Lock-free reads fall between the renames of the writer's commits; they must neither fail nor go back.
    import time

    project = new_project(tmp_path)
    Rows(project).workspace("lstm")
    script = ("import sys\nfrom goldfish.project import Project\nfrom tests.records_fixture import Rows\n"
              "rows = Rows(Project.open(sys.argv[1]))\n"
              "for i in range(40):\n    rows.run('lstm', value=0.5 + i / 100)\n")
    writer = subprocess.Popen([sys.executable, "-c", script, str(project.root)],
                              env={**os.environ, "PYTHONPATH": str(REPO)})
    seen = [0]
    deadline = time.monotonic() + 240
    while seen[-1] < 40 and time.monotonic() < deadline:
        seen.append(project.records.list_history("lstm", include_supporting=True).total)
        project.records.get_experiment_context("lstm")
    assert writer.wait(timeout=240) == 0
    assert seen[-1] == 40 and seen == sorted(seen), seen
    assert verify(project.store, "lstm") == []


def test_a_schema_3_store_moves_its_id_lookups_into_shards(tmp_path: Path) -> None:
    project = new_project(tmp_path)
    shutil.rmtree(project.store_dir)
    shutil.copytree(REPO / "tests" / "fixtures" / "demo_store", project.store_dir,
                    ignore=shutil.ignore_patterns("README.md"))
    before = orjson.loads((project.store_dir / "project.json").read_bytes())
    run_ids = sorted(before["run_index"])
    assert orjson.loads((project.store_dir / "STORE_VERSION.json").read_bytes())["schema"] == 3 and run_ids
    opened = Project.open(project.root)
    assert opened.store.table("run_index").count_raw() == len(run_ids)
    head = orjson.loads((project.store_dir / "project.json").read_bytes())
    assert "run_index" not in head and "record_index" not in head and sorted(head["_dir.run_index"]) == run_ids
    from goldfish.records.refs import locate_run

    assert all(locate_run(opened, rid)[0] == before["run_index"][rid]["workspace"] for rid in run_ids)
    for ws in ("digits_mlp", "digits_mlp_typo"):
        assert verify(opened.store, ws) == []
        history = opened.records.list_history(ws, include_supporting=True)
        assert history.total == opened.store.table("records", f"ws/{ws}").count_raw() > 0


def test_latest_stage_runs_from_the_index_match_a_scan(tmp_path: Path) -> None:
    from goldfish.runs.inputs import latest_stage_runs

    project = new_project(tmp_path)
    rows = _varied(project)
    rows.run("lstm", stage="eval", state="terminated", cause="crashed", value=None)  # newest eval: not usable
    missed = rows.run("lstm", stage="prep", value=0.3)
    project.records.finalize_run(missed, final(0.3, "miss"))  # a miss is not usable either
    runs = list(project.store.table("runs", "ws/lstm").iter_raw())
    for stage in ("train", "eval", "prep", "nothing"):
        mine = [r for r in runs if r.get("stage") == stage]
        latest = max(mine, key=lambda r: (r.get("created_at") or "", r["id"]), default=None)
        usable = max((r for r in mine if r.get("state") == "completed" and r.get("ml_outcome") != "miss"),
                     key=lambda r: (r.get("finished_at") or "", r["id"]), default=None)
        got = latest_stage_runs(project, "lstm", stage)
        assert ((got[0] or {}).get("id"), (got[1] or {}).get("id")) == (
            (usable or {}).get("id"), (latest or {}).get("id")), stage


def test_a_nan_value_is_no_value_in_the_index(tmp_path: Path) -> None:
    project = new_project(tmp_path)
    rows = Rows(project)
    rows.workspace("lstm")
    good = rows.run("lstm", value=0.7)
    diverged = rows.run("lstm", value=float("nan"))
    page = project.records.list_history("lstm", sort_by="metric")
    assert [r.stage_run_id for r in page.records] == [good, diverged]
    assert verify(project.store, "lstm") == []  # the file holds null; the entry says no value, not NaN
    assert [r.stage_run_id for r in Project.open(project.root).records.list_history("lstm", min_value=0.5).records] \
        == [good]
