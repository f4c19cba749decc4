"""Log search over 1,000 runs with generated logs: phrases, fields, time, NOT/OR with the expected run
ids; pagination; malformed queries with positions; the index rebuilt after deletion or damage gives
the same answers; incremental updates; Goldfish's own JSON-lines logs (with rotation)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from goldfish.errors import InvalidInput
from goldfish.init import init_project
from goldfish.logsearch import jsonlog
from goldfish.logsearch.query import QueryError
from goldfish.logsearch.search import LogHit, SearchResult, index_path, search_logs
from goldfish.project import Project
from tests.logsearch_helpers import BASE, FAILED, TRACEBACK, Generated, prun_id, run_id, write_runs

N = 1000
NOW = (BASE + timedelta(minutes=N + 5)).timestamp()  # every query runs at this frozen instant


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Project, Generated]]:
    home = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HOME", str(home))
        mp.setenv("GIT_CONFIG_GLOBAL", str(home / ".gitconfig-none"))
        mp.setenv("GIT_CONFIG_NOSYSTEM", "1")
        root = init_project(tmp_path_factory.mktemp("logs") / "proj", "proj").project_root
        project = Project.open(root, source="test")
        gen = write_runs(project, N)
    yield project, gen


def search(project: Project, query: str | None, **kw: object) -> SearchResult:
    return search_logs(project, query, now=NOW, **kw)  # type: ignore[arg-type]


def every_hit(project: Project, query: str, **kw: object) -> list[LogHit]:
    """All hits of ``query``, page after page (a page is bounded in bytes as well as by limit)."""
    hits: list[LogHit] = []
    cursor = None
    while True:
        page = search_logs(project, query, limit=1000, cursor=cursor, **kw)  # type: ignore[arg-type]
        hits += page.hits
        if not page.has_more:
            return hits
        cursor = page.cursor


def ids(result: SearchResult) -> set[str]:
    return {h.run_id for h in result.hits if h.run_id}


def runs(*numbers: int) -> set[str]:
    return {run_id(i) for i in numbers}


def test_a_traceback_is_found_by_a_phrase_from_it(corpus: tuple[Project, Generated]) -> None:
    project, gen = corpus
    result = search(project, '"integer division or modulo by zero"')
    assert ids(result) == runs(FAILED) and len(result.hits) == 1
    hit = result.hits[0]
    assert hit.file == f"runs/{run_id(FAILED)}/logs/stdout.log"
    log = (project.gf_dir / hit.file).read_text().splitlines()
    assert hit.line is not None and log[hit.line - 1] == TRACEBACK[-1] == hit.text
    assert (hit.stage, hit.workspace, hit.level, hit.where) == (gen.stage[run_id(FAILED)],
                                                               gen.workspace[run_id(FAILED)], "error", "local")
    assert set(hit.run_ids) == {run_id(FAILED), prun_id(FAILED)}
    # The traceback's first line is a phrase with punctuation; its level is error.
    first = search(project, '"Traceback (most recent call last)"')
    assert ids(first) == runs(FAILED) and first.hits[0].line == hit.line - len(TRACEBACK) + 1
    assert ids(search(project, "ZeroDivisionError level:error")) == runs(FAILED)
    assert ids(search(project, "normalize_count")) == runs(FAILED)  # a word with an underscore is one word


def test_fields_and_time_narrow(corpus: tuple[Project, Generated]) -> None:
    project, _gen = corpus
    assert ids(search(project, '"CUDA out of memory"')) == runs(40, 41, 500)
    assert ids(search(project, '"CUDA out of memory" workspace:beta')) == runs(40)
    assert ids(search(project, '"CUDA out of memory" _time:[2026-03-01T00:30, 2026-03-01T01:00]')) == runs(40, 41)
    assert ids(search(project, '"CUDA out of memory" _time:[2026-03-01T08:00:00Z, 2026-03-01T09:00:00Z]')) == runs(500)
    # _time:15m is relative to the search's instant: runs started in the last 15 minutes before NOW.
    recent = every_hit(project, "_time:15m", now=NOW)
    assert {h.run_id for h in recent} == runs(*range(N - 10, N))
    assert ids(search(project, "level:warning")) == runs(7, 300, 500, 999)
    assert ids(search(project, "level:warning stage:train")) == runs(300, 500)
    assert ids(search(project, f"run:{prun_id(123)}")) == runs(123)
    assert ids(search(project, f"run:{run_id(123)} epoch")) == runs(123)
    notes = every_hit(project, "source:runner", now=NOW)
    assert len(notes) == 1000 and all(h.text.startswith("[goldfish ") for h in notes)
    assert not search(project, "workspace:alph").hits  # a field value matches exactly, not by prefix


def test_not_and_or_behave_as_written(corpus: tuple[Project, Generated]) -> None:
    project, _gen = corpus
    either = '"loss is nan" OR "CUDA out of memory"'
    assert ids(search(project, either)) == runs(7, 300, 500, 999, 40, 41)
    assert ids(search(project, f"({either}) NOT workspace:gamma")) == runs(7, 300, 999, 40)
    assert ids(search(project, f"({either}) AND -workspace:gamma")) == runs(7, 300, 999, 40)
    assert ids(search(project, "nan -stage:train")) == runs(7, 999)
    assert ids(search(project, "(nan OR memory) AND (workspace:alpha OR workspace:beta)")) == runs(7, 300, 999, 40)
    # NOT with nothing positive beside it: every line except those.
    only_not = every_hit(project, "NOT source:stage", now=NOW)
    assert len(only_not) == 1000 and {h.source for h in only_not} == {"runner"}
    # OR mixing time and text.
    mixed = search(project, '_time:[2026-03-01T00:00, 2026-03-01T00:00:30] OR "CUDA out of memory"', limit=1000)
    assert ids(mixed) == runs(0, 40, 41, 500)
    assert ids(search(project, "memory | limit 2")) == runs(500, 41)  # newest first


def test_newest_first_and_cursor_pages_cover_everything_once(corpus: tuple[Project, Generated]) -> None:
    project, _gen = corpus
    seen: list[tuple[str, str, int | None]] = []
    stamps: list[str] = []
    cursor = None
    pages = 0
    while True:
        page = search(project, "nan OR memory OR Traceback", limit=2, cursor=cursor)
        pages += 1
        seen += [(h.run_id or "", h.file, h.line) for h in page.hits]
        stamps += [h.ts for h in page.hits]
        if not page.has_more:
            assert page.cursor is None
            break
        cursor = page.cursor
    whole = search(project, "nan OR memory OR Traceback", limit=100)
    assert seen == [(h.run_id or "", h.file, h.line) for h in whole.hits] and len(set(seen)) == len(seen)
    assert stamps == sorted(stamps, reverse=True) and pages == -(-len(seen) // 2)
    with pytest.raises(InvalidInput, match="cursor does not belong"):
        search(project, "memory", cursor=cursor or page_cursor(project))


def page_cursor(project: Project) -> str:
    cursor = search(project, "epoch", limit=1).cursor
    assert cursor
    return cursor


@pytest.mark.parametrize(("query", "position", "problem", "guide"), [
    ('"CUDA out of memory', 0, "unbalanced quote", '"a phrase"'),
    ('stage:train "never closed', 12, "unbalanced quote", '"a phrase"'),
    ("level:error colour:red", 12, "unknown field 'colour'", "run:ID"),
    ("oom _time:5y", 10, "bad time '5y'", "_time:15m"),
    ("oom _time:[2026-02-30, now]", 11, "bad time '2026-02-30'", "_time:[START, END]"),
    ("oom _time:[2026-03-02, 2026-03-01]", 23, "ends before it starts", "_time:[START, END]"),
    ("(nan OR memory", 0, "never closed", "( … )"),
    ("nan OR", 4, "OR needs a term", "a OR b"),
    ("nan | limit 0", 12, "limit needs a whole number", "… | limit N"),
    ("level:loud", 6, "unknown level", "level:LEVEL"),
])
def test_malformed_queries_name_their_position(tmp_path: Path, query: str,
                                               position: int, problem: str, guide: str) -> None:
    root = init_project(tmp_path / "proj", "proj").project_root
    project = Project.open(root, source="test")
    with pytest.raises(QueryError) as err:
        search(project, query)
    exc = err.value
    assert exc.position == position and problem in exc.problem
    assert exc.guide.startswith(guide)
    assert f"position {position}" in str(exc) and "\n  " + " " * position + "^" in str(exc)
    assert not index_path(project).exists()  # refused before any work


def _answers(project: Project) -> list[list[tuple[str | None, str, int | None, str]]]:
    queries = ['"integer division or modulo by zero"', "nan OR memory", "level:warning NOT stage:train",
               "_time:[2026-03-01T02:00, 2026-03-01T02:03] epoch"]
    return [[(h.run_id, h.file, h.line, h.text) for h in search(project, q, limit=200).hits] for q in queries]


def test_a_deleted_or_damaged_index_is_rebuilt_with_the_same_results(corpus: tuple[Project, Generated]) -> None:
    project, _gen = corpus
    before = _answers(project)
    assert all(before)
    path = index_path(project)
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    rebuilt = search(project, "epoch", limit=1)
    assert rebuilt.indexed["new_lines"] > N * 12  # everything indexed again from the files
    assert _answers(project) == before
    # Damage: garbage where the database was.
    for suffix in ("-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    path.write_bytes(b"this is not a database" * 100)
    assert _answers(project) == before


def test_appended_lines_are_indexed_incrementally(tmp_path: Path) -> None:
    root = init_project(tmp_path / "proj", "proj").project_root
    project = Project.open(root, source="test")
    write_runs(project, 6)
    assert search(project, "epoch", limit=1).indexed["new_lines"] > 0
    assert search(project, "epoch", limit=1).indexed["new_lines"] == 0
    log = project.runs_dir / run_id(4) / "logs" / "stdout.log"
    with open(log, "a") as f:
        f.write("[2026-03-01 00:10:00] ERROR: checksum mismatch in shard 3\npartial line without newl")
    result = search(project, "checksum")
    assert result.indexed["new_lines"] == 1 and ids(result) == runs(4)
    assert not search(project, "newl").hits  # an unfinished line waits for its newline
    with open(log, "a") as f:
        f.write("ine\n")
    assert ids(search(project, '"partial line without newline"')) == runs(4)


@pytest.fixture
def json_logs(tmp_path: Path) -> Iterator[Project]:
    root = init_project(tmp_path / "proj", "proj").project_root
    project = Project.open(root, source="test")
    yield project
    jsonlog.reset()


def test_goldfish_logs_are_json_lines_found_by_source_run_and_traceback(json_logs: Project) -> None:
    project = json_logs
    jsonlog.configure(project.gf_dir, "mcp", stderr_level=None)
    logging.getLogger("goldfish.runs.reconciler").info(
        "runner of prun-0badcafe was dead: started a new one", extra={"workspace": "alpha", "runner_id": "r-1"})
    try:
        {}["missing"]
    except KeyError:
        logging.getLogger("goldfish.backup.service").exception("backup of the store failed",
                                                              extra={"run_id": "stage-0badcafe"})
    logging.getLogger("goldfish.mcp").info("tool %s answered in %.3f s", "status", 0.012)
    logging.getLogger("goldfish.mcp").debug("not written at INFO")
    lines = [json.loads(line) for line in (project.gf_dir / "logs" / "mcp.jsonl").read_text().splitlines()]
    assert [line["source"] for line in lines] == ["reconciler", "backup", "mcp"]
    first = lines[0]
    assert set(first) == {"ts", "level", "source", "workspace", "stage", "run_ids", "message", "logger", "pid", "extra"}
    assert first["run_ids"] == ["prun-0badcafe"] and first["workspace"] == "alpha"
    assert first["extra"] == {"runner_id": "r-1"}

    found = search_logs(project, "source:reconciler")
    assert [h.run_ids for h in found.hits] == [["prun-0badcafe"]] and found.hits[0].file == "logs/mcp.jsonl"
    assert found.hits[0].workspace == "alpha" and found.hits[0].line == 1
    crash = search_logs(project, '"KeyError: \'missing\'" level:error')
    assert [h.run_id for h in crash.hits] == ["stage-0badcafe"] and "Traceback" in crash.hits[0].text
    assert [h.source for h in search_logs(project, "run:prun-0badcafe OR run:stage-0badcafe").hits] == [
        "backup", "reconciler"]
    assert search_logs(project, "r-1").hits  # extra fields are searchable too


def test_rotated_logs_keep_their_lines_indexed_once(json_logs: Project) -> None:
    project = json_logs
    handler = jsonlog.configure(project.gf_dir, "runner", stderr_level=None)
    handler.max_bytes, handler.keep = 4096, 3
    log = logging.getLogger("goldfish.runs.runner")
    for i in range(40):
        log.info("step %03d of the rotation test %s", i, "x" * 200)
        if i == 10:
            assert len(search_logs(project, "rotation", limit=1000).hits) == 11
    logs = project.gf_dir / "logs"
    rotated = sorted(p.name for p in logs.glob("runner.*.jsonl"))
    assert rotated[0] != "runner.000001.jsonl" and len(rotated) == 3  # the oldest went; at most keep=3
    on_disk = sum(len(p.read_text().splitlines()) for p in logs.glob("runner*.jsonl"))
    hits = search_logs(project, "rotation", limit=1000).hits
    assert len(hits) == on_disk < 40  # the oldest segments were deleted; nothing is counted twice
    numbers = [int(h.text.split()[1]) for h in hits]
    assert numbers == sorted(numbers, reverse=True) == list(range(39, 39 - on_disk, -1))
    assert all(h.file.startswith("logs/runner") for h in hits)


WRITER = """
import logging, sys
from goldfish.logsearch import jsonlog
handler = jsonlog.configure(sys.argv[1], "runner", stderr_level=None)
handler.max_bytes, handler.keep = 16384, 1000
log = logging.getLogger("goldfish.runs.runner")
for i in range(200):
    log.info("writer %s record %03d %s", sys.argv[2], i, "y" * 100, extra={"run_id": f"prun-{int(sys.argv[2]):08x}"})
"""


def test_several_processes_share_one_rotating_log_without_losing_a_line(json_logs: Project) -> None:
    import subprocess
    import sys

    project = json_logs
    search_logs(project, "writer")  # an index exists while they write
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(project.gf_dir), str(n)]) for n in range(4)]
    mid = search_logs(project, "writer", limit=1000)  # indexing while they write and rotate
    assert all(p.wait(timeout=120) == 0 for p in procs)
    files = sorted((project.gf_dir / "logs").glob("runner*.jsonl"))
    records = [json.loads(line) for f in files for line in f.read_text().splitlines()]
    assert len(files) > 2 and len(records) == 800
    assert sorted((r["run_ids"][0], r["message"].split()[3]) for r in records) == sorted(
        (f"prun-{n:08x}", f"{i:03d}") for n in range(4) for i in range(200))
    hits: list[tuple[str, int | None]] = []
    cursor = None
    while True:
        page = search_logs(project, "writer", limit=300, cursor=cursor)
        hits += [(h.file, h.line) for h in page.hits]
        if not page.has_more:
            break
        cursor = page.cursor
    assert len(hits) == len(set(hits)) == 800 and len(mid.hits) <= 800
    for n in range(4):
        assert len(every_hit(project, f"run:prun-{n:08x}")) == 200


def test_finished_runs_logs_are_final_until_the_sweep(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With thousands of runs, stat'ing every log on every search costs more than the query: a
    finished run's settled log is final, stat'ed again only by the sweep (once a minute)."""
    import os
    import sqlite3
    import time

    from goldfish.logsearch import index as index_mod

    root = init_project(tmp_path / "proj", "proj").project_root
    project = Project.open(root, source="test")
    gen = write_runs(project, 6)
    old = time.time() - 2 * index_mod.SETTLE_SECONDS
    for rid in gen.runs:
        os.utime(project.runs_dir / rid / "logs" / "stdout.log", (old, old))
    assert len(search_logs(project, "epoch", limit=1000).hits) == 6 * 12
    with sqlite3.connect(index_path(project)) as conn:
        assert conn.execute("SELECT count(*) FROM files WHERE final=1").fetchone()[0] == 6
    with open(project.runs_dir / run_id(2) / "logs" / "stdout.log", "a") as f:
        f.write("[2026-03-01 00:02:30] INFO: a late line appended after the run finished\n")
    monkeypatch.setattr(index_mod, "SWEEP_SECONDS", 3600)
    assert not search_logs(project, '"late line"').hits  # final: not looked at before the sweep
    monkeypatch.setattr(index_mod, "SWEEP_SECONDS", 0)
    assert ids(search_logs(project, '"late line"')) == runs(2)  # the sweep found it grew
    monkeypatch.setattr(index_mod, "SWEEP_SECONDS", 3600)
    import shutil

    shutil.rmtree(project.runs_dir / run_id(3))  # a vanished run dir is noticed at once, sweep or not
    assert run_id(3) not in {h.run_id for h in every_hit(project, "epoch")}


def test_image_build_logs_are_searchable_by_build_id(json_logs: Project) -> None:
    project = json_logs
    builds = project.gf_dir / "images" / "builds"
    builds.mkdir(parents=True)
    (builds / "build-0fa1ed00.log").write_text(
        "Step 1/4 : FROM goldfish-base-cpu:r1\nStep 2/4 : RUN pip install -r requirements.txt\n"
        "ERROR: Could not find a version that satisfies the requirement torch==9.9\n")
    (builds / "build-00c0ffee.log").write_text("Step 1/4 : FROM goldfish-base-cpu:r1\nSuccessfully built 1a2b3c\n")
    failed = search_logs(project, '"could not find a version" source:images level:error')
    assert [(h.run_id, h.source, h.level, h.file, h.line) for h in failed.hits] == [
        ("build-0fa1ed00", "images", "error", "images/builds/build-0fa1ed00.log", 3)]
    assert [h.run_id for h in search_logs(project, "run:build-00c0ffee").hits] == ["build-00c0ffee"] * 2


def test_a_page_of_long_lines_stays_bounded_and_the_cursor_continues(tmp_path: Path) -> None:
    from goldfish.logsearch.search import MAX_HITS_BYTES

    root = init_project(tmp_path / "proj", "proj").project_root
    project = Project.open(root, source="test")
    write_runs(project, 2)
    log = project.runs_dir / run_id(1) / "logs" / "stdout.log"
    with open(log, "a") as f:
        for i in range(200):
            f.write(f"[2026-03-01 00:05:{i % 60:02d}] INFO: verbose dump {i:03d} " + "z" * 3000 + "\n")
    seen: list[str] = []
    cursor = None
    while True:
        page = search_logs(project, "verbose dump", limit=1000, cursor=cursor)
        assert len(page.model_dump_json()) < MAX_HITS_BYTES + 10_000
        seen += [h.text.split()[5] for h in page.hits]
        if not page.has_more:
            break
        cursor = page.cursor
    assert sorted(seen) == [f"{i:03d}" for i in range(200)] and len(seen) == len(set(seen))
