"""Log search and log following on real runs: ``logs(follow=True)`` on a running stage (new lines
within a second of their write, the bound when nothing comes); a real run's runner and stage lines
found through the real MCP client over stdio (with ``show_guide`` and a malformed query); gce stage
lines read from the fake Cloud Logging endpoint with the real google-cloud-logging client."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from goldfish.logsearch.search import search_logs
from goldfish.runs.logs import read_logs
from goldfish.runs.state import ws_partition
from tests.fakes.gce import fake_cloud
from tests.mcp_helpers import stdio_params
from tests.run_helpers import REASON, SPEC, make_env, wait_state, wait_terminal

TICKER = '''
import os, time
from pathlib import Path
out = Path(os.environ["GOLDFISH_OUTPUTS_DIR"])
print("ticker ready", flush=True)
n = 0
while not (out / "stop").exists():
    if (out / f"go-{n}").exists():
        print(f"tick {n} written at {time.time():.6f}", flush=True)
        n += 1
    time.sleep(0.005)
print("ticker done", flush=True)
'''


def _until(predicate: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = predicate()
        if got:
            return got
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_follow_returns_new_lines_within_a_second_and_the_bound_when_silent(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = make_env(tmp_path, monkeypatch)
    env.write([{"name": "ticker", "outputs": {}}], {"ticker": TICKER})
    project = env.project
    started = project.runs.run("w1", reason=REASON, results_spec=SPEC)
    rid = started.stage_runs[0].stage_run_id
    out = project.runs_dir / rid / "outputs"
    try:
        wait_state(project, rid, {"running"}, timeout=60)
        first = _until(lambda: (r := read_logs(project, rid, tail=50)) and "ticker ready" in r.logs and r, 60,
                       "the stage's first line")
        cursor = first.cursor

        # Nothing comes: the call returns at its bound, with the same cursor.
        began = time.monotonic()
        silent = read_logs(project, rid, follow=True, cursor=cursor, wait_seconds=1)
        assert silent.timed_out and silent.logs == "" and silent.cursor == cursor and not silent.done
        assert time.monotonic() - began >= 1.0

        # Each line the stage writes comes back within a second of its write (stamped by the stage).
        for n in range(3):
            got: dict[str, Any] = {}

            def follow(c: int = cursor, box: dict[str, Any] = got) -> None:
                box["result"] = read_logs(project, rid, follow=True, cursor=c, wait_seconds=30)
                box["at"] = time.time()

            waiter = threading.Thread(target=follow)
            waiter.start()
            (out / f"go-{n}").touch()
            waiter.join(timeout=60)
            result = got["result"]
            assert not result.timed_out and result.logs.startswith(f"tick {n} written at ")
            latency = got["at"] - float(result.logs.split()[-1])
            assert 0 <= latency < 1.0, f"line {n} came back {latency:.3f} s after its write"
            cursor = result.cursor
    finally:
        (out / "stop").touch()
    assert wait_terminal(project, started.pipeline_run_id, timeout=60).status == "completed"
    last = read_logs(project, rid, follow=True, cursor=cursor, wait_seconds=30)
    assert "ticker done" in last.logs and last.done and not last.timed_out


def _struct(result: Any) -> dict[str, Any]:
    assert not result.is_error, result.content
    return dict(result.structured_content)


async def test_a_real_run_is_searchable_through_the_mcp_client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = make_env(tmp_path, monkeypatch)
    env.write([{"name": "crash", "outputs": {}}],
              {"crash": "print('loading shard 7', flush=True)\n"
                        "raise RuntimeError('shard 7 checksum mismatch: expected 9f2c got 0000')\n"})
    project = env.project
    started = project.runs.run("w1", reason=REASON, results_spec=SPEC)
    rid, prun = started.stage_runs[0].stage_run_id, started.pipeline_run_id
    assert wait_terminal(project, prun, timeout=60).status == "failed"
    async with Client(stdio_params(env.root), read_timeout_seconds=120) as client:
        guide = _struct(await client.call_tool("search_goldfish_logs", {"show_guide": True}))
        assert "_time:[START, END]" in guide["guide"] and not guide["hits"]

        found = _struct(await client.call_tool("search_goldfish_logs", {"query": '"checksum mismatch" level:error'}))
        hit = found["hits"][0]
        assert [h["run_id"] for h in found["hits"]] == [rid]
        assert (hit["stage"], hit["workspace"], hit["file"], hit["where"]) == (
            "crash", "exp", f"runs/{rid}/logs/stdout.log", "local")
        assert hit["text"].startswith("RuntimeError: shard 7 checksum mismatch")

        # The runner's own records, structured, in .goldfish/logs/runner.jsonl.
        runner = _struct(await client.call_tool("search_goldfish_logs", {"query": f"source:runner run:{prun}"}))
        assert runner["hits"] and all(h["file"] == "logs/runner.jsonl" for h in runner["hits"])
        assert all(prun in h["run_ids"] for h in runner["hits"])
        # The server's own records: this very session's earlier tool calls.
        mcp = _struct(await client.call_tool("search_goldfish_logs", {"query": 'source:mcp "search_goldfish_logs"'}))
        assert mcp["hits"] and mcp["hits"][0]["file"] == "logs/mcp.jsonl"

        bad = await client.call_tool("search_goldfish_logs", {"query": "level:error colour:red"})
        text = bad.content[0].text  # type: ignore[union-attr]
        assert bad.is_error and "position 12" in text and "unknown field 'colour'" in text and "run:ID" in text

        done = _struct(await client.call_tool("logs", {"run_id": rid, "tail": 5}))
        again = _struct(await client.call_tool("logs", {"run_id": rid, "follow": True, "cursor": done["cursor"],
                                                        "wait_seconds": 30}))
        assert again["done"] and again["logs"] == "" and not again["timed_out"]  # terminal: no wait
    assert (project.gf_dir / "logs" / "mcp.jsonl").exists()


# --------------------------------------------------------------------------- Cloud Logging
CLOUD_NOW = datetime(2026, 4, 2, 12, 0, tzinfo=UTC)


def _write_entries(url: str, run: str, prun: str, stage: str, workspace: str, lines: list[str],
                   start: datetime) -> list[int]:
    """Stage log lines as the worker agent ships them, through the real google-cloud-logging client."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import logging as cloud_logging

    client = cloud_logging.Client(project="fake-project", credentials=AnonymousCredentials(), _use_grpc=False,
                                  client_options={"api_endpoint": url})
    logger = client.logger("goldfish-stage")
    offsets, offset = [], 0
    for k, text in enumerate(lines):
        logger.log_struct({"offset": offset, "text": text, "attempt": 1},
                          labels={"goldfish_run": run, "goldfish_attempt": "1", "goldfish_prun": prun,
                                  "goldfish_stage": stage, "goldfish_workspace": workspace},
                          timestamp=start + timedelta(seconds=k, microseconds=1000 + k),
                          insert_id=f"{run}-1-{offset}")
        offsets.append(offset)
        offset += len(text.encode()) + 1
    return offsets


def test_gce_lines_come_from_cloud_logging_merged_with_local_hits(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    env = make_env(tmp_path, monkeypatch)
    with fake_cloud(tmp_path / "cloud") as cloud:
        env.configure(gce={"project_id": "fake-project", "zones": ["us-central1-a"],
                           "endpoints": {"compute": cloud.url, "logging": cloud.url, "anonymous": True}})
        project = env.project
        a_lines = ["epoch 1 loss=0.9", "epoch 2 loss=0.7", "RuntimeError: NCCL timeout in all_reduce (rank 3)"]
        b_lines = ["warming up", "RuntimeError: NCCL timeout in all_reduce (rank 0)"]
        run_a, run_b = "stage-c10dc10a", "stage-c10dc10b"
        t_a, t_b = CLOUD_NOW - timedelta(hours=3), CLOUD_NOW - timedelta(hours=1)
        _write_entries(cloud.url, run_a, "prun-c10dc10a", "train", "exp", a_lines, t_a)
        _write_entries(cloud.url, run_b, "prun-c10dc10b", "train", "other", b_lines, t_b)
        # Run a's first two lines were mirrored into its local log (as the runner does while it runs).
        with project.store.transaction() as tx:
            tx.table("runs", ws_partition("exp")).put(run_a, {
                "workspace": "exp", "pipeline_run_id": "prun-c10dc10a", "stage": "train", "state": "running",
                "backend": "gce", "created_at": t_a.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "history": []})
            tx.table("run_index").put(run_a, {"workspace": "exp", "kind": "stage"})
        logs = project.runs_dir / run_a / "logs"
        logs.mkdir(parents=True)
        mirrored = "".join(f"{line}\n" for line in a_lines[:2])
        (logs / "stdout.log").write_text(mirrored)
        (logs / "remote_log.json").write_text(json.dumps({"attempt": 1, "offset": len(mirrored.encode())}))

        now = CLOUD_NOW.timestamp()
        nccl = search_logs(project, '"NCCL timeout"', now=now)
        assert [(h.run_id, h.where) for h in nccl.hits] == [(run_b, "cloud"), (run_a, "cloud")]  # newest first
        assert nccl.hits[0].workspace == "other" and nccl.hits[0].offset == len(b_lines[0]) + 1
        bound = (CLOUD_NOW - timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        assert f'(jsonPayload.text:"NCCL timeout") AND timestamp>="{bound}"' in cloud.log_filters[-1]

        # Mirrored lines are shown once, from the local index; the rest of the run from the cloud.
        epochs = search_logs(project, f"run:{run_a}", now=now)
        assert [(h.text, h.where) for h in epochs.hits] == [(a_lines[2], "cloud"), (a_lines[1], "local"),
                                                            (a_lines[0], "local")]
        # Fields, time and NOT translate to the filter.
        assert [h.run_id for h in search_logs(project, '"NCCL timeout" workspace:exp', now=now).hits] == [run_a]
        assert [h.run_id for h in search_logs(project, '"NCCL timeout" NOT workspace:exp', now=now).hits] == [run_b]
        assert [h.run_id for h in search_logs(project, '"NCCL timeout" _time:2h', now=now).hits] == [run_b]
        two_hours = (CLOUD_NOW - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        assert f'((jsonPayload.text:"NCCL timeout") AND (timestamp>="{two_hours}")) AND timestamp>="{two_hours}"' in (
            cloud.log_filters[-1])
        # Paging crosses both sides without repeats.
        pages, cursor = [], None
        while True:
            page = search_logs(project, "NCCL OR epoch OR warming", now=now, limit=2, cursor=cursor)
            pages += [(h.run_id, h.offset, h.where) for h in page.hits]
            if not page.has_more:
                break
            cursor = page.cursor
        assert len(pages) == len(set(pages)) == 5
        # A query no cloud line can match sends no request.
        calls = len(cloud.log_filters)
        assert not search_logs(project, "source:runner NCCL", now=now).hits
        assert len(cloud.log_filters) == calls
    # Cloud Logging gone: the local hits still answer, with a note.
    down = search_logs(project, f"run:{run_a}", now=now)
    assert [h.where for h in down.hits] == ["local", "local"] and "Cloud Logging was not searched" in down.notes[0]
