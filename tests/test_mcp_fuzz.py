"""Every tool called with hypothesis-generated bad arguments through the real MCP client.

Always an is_error result with a readable message (never the bare "Error executing tool X" of a
crash), the server keeps answering, and nothing is written outside the project and its dev repo.
The bulk runs in-process (fast); a smaller fixed set goes over stdio to a real ``goldfish serve``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import anyio.from_thread
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp import Client

from goldfish.init import init_project
from mcp_server.server import build_server
from tests.mcp_helpers import example_arguments, stdio_params

WORKSPACE = "fuzzws"
PLAUSIBLE = [
    "w1", "w2", WORKSPACE, "v1", "v999", "stage-deadbeef", "prun-deadbeef", "01ARZ3NDEKTSV4RRFFQ69G5FAV",
    "fp-deadbeef", "train", "@best", "best-v1", "list", "get", "latest", "loss", "main",
]
NASTY = [
    "", " ", "../x", "a/b", "/etc/passwd", "..", ".", "w1/../../x", "..\\x", "x\x00y", "~", "$HOME", "-rf",
    "--help", "stage-", "stage-DEADBEEF", "stage-deadbeef/../..", "ünïcødé", "💥", "a" * 300, "%s%n", "{x}",
    "null", "true", "0", "-1", "v0", "v-1", "@", "@@", "\n", "a\nb",
]
HUGE = "z" * 100_000
# GOLDFISH_FUZZ_RANDOM=1 explores new examples on each run (read at import: fixtures strip GOLDFISH_*).
DERANDOMIZE = os.environ.get("GOLDFISH_FUZZ_RANDOM") != "1"
# A crash: the SDK's bare message, or ours (mcp_server/arg_errors.describe_crash).
GENERIC_CRASH = re.compile(r"^(Error executing tool \w+(: Error executing tool \w+)*|Internal error in \w+ .*)$", re.S)

def _junk(real_ids: list[str]) -> st.SearchStrategy[Any]:
    """Bad values, plus names and ids that exist (so calls get past lookups into deeper code)."""
    scalars = st.one_of(
        st.sampled_from(PLAUSIBLE + real_ids), st.sampled_from(NASTY), st.just(HUGE), st.text(max_size=40),
        st.integers(min_value=-(2**63), max_value=2**63), st.booleans(), st.none(),
        st.floats(allow_nan=True, allow_infinity=True),
    )
    return st.recursive(
        scalars,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4),
            st.dictionaries(st.one_of(st.sampled_from(NASTY + PLAUSIBLE), st.text(max_size=10)), inner, max_size=4),
        ),
        max_leaves=12,
    )


def _arguments(schema: dict[str, Any], junk: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    """Valid-looking arguments with some values replaced by junk, some left out, some extra keys."""
    props = schema.get("properties", {})
    valid = example_arguments(schema)
    per_key = {
        name: st.one_of(st.just(valid[name]), junk) if name in valid else junk
        for name in props
    }
    return st.builds(
        lambda chosen, drop, extra: {**{k: v for k, v in chosen.items() if k not in drop}, **extra},
        st.fixed_dictionaries(per_key),
        st.sets(st.sampled_from(sorted(props) or ["_"]), max_size=2),
        st.dictionaries(st.sampled_from(["zzz", "__class__", "_meta", "../x"]), junk, max_size=1),
    )


def _snapshot(root: Path, skip: set[Path]) -> dict[str, int]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        dirnames[:] = [d for d in dirnames if here / d not in skip]
        for name in filenames + dirnames:
            path = here / name
            out[str(path.relative_to(root))] = path.lstat().st_size if path.is_file() else -1
    return out


def _check(name: str, args: dict[str, Any], result: Any) -> None:
    if result.is_error:
        text = result.content[0].text if result.content else ""
        assert text.strip(), (name, args)
        assert not GENERIC_CRASH.match(text.strip()), f"{name} crashed on {args!r}: {text}"
    else:
        assert isinstance(result.structured_content, dict), (name, args, result)


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, set[Path]]]:
    """A project, its dev repo and a working directory; everything else under tmp_path is watched."""
    init_project(tmp_path / "proj", "proj")
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    yield tmp_path, {tmp_path / "proj", tmp_path / "proj-dev"}


PIPELINE = "stages:\n  - name: train\n    outputs:\n      out: {type: file, schema: null}\n"
STAGE = ("from goldfish.io import get_output_path\nfrom goldfish.metrics import log_metric, finish\n"
         "log_metric('loss', 0.5, step=0)\nget_output_path('out').write_text('ok')\nfinish()\n")
SPEC = {"primary_metric": "loss", "direction": "minimize", "min_value": 0.1, "goal_value": 0.01,
        "dataset_split": "val", "tolerance": 0.01, "context": "Fuzz target run with one metric."}


async def _prepare(client: Client, names: set[str], slot: Path) -> list[str]:
    """Give the fuzz something real to hit: a mounted workspace and a finished run (its ids are
    returned), when those tools exist."""
    if not {"create_workspace", "mount", "run"} <= names:
        return []
    reason = "fuzzing every tool with bad arguments"
    res = await client.call_tool("create_workspace", {"name": WORKSPACE, "goal": "fuzz target", "reason": reason, "template": "none"})
    assert not res.is_error, res.content
    res = await client.call_tool("mount", {"workspace": WORKSPACE, "slot": "w1", "reason": reason})
    assert not res.is_error, res.content
    (slot / "modules").mkdir(parents=True, exist_ok=True)
    (slot / "pipeline.yaml").write_text(PIPELINE)
    (slot / "modules" / "train.py").write_text(STAGE)
    run = await client.call_tool("run", {"workspace": "w1", "reason": reason, "results_spec": SPEC, "wait": True,
                                         "wait_seconds": 60})
    assert not run.is_error and run.structured_content["done"], run.content
    stage_run = run.structured_content["stage_runs"][0]
    return [stage_run["stage_run_id"], stage_run["record_id"], run.structured_content["pipeline_run_id"]]


async def test_fuzz_every_tool_in_process(sandbox: tuple[Path, set[Path]]) -> None:
    root, skip = sandbox
    server, _ctx = build_server(str(root / "proj"))
    async with Client(server) as client:
        tools = (await client.list_tools()).tools
        real_ids = await _prepare(client, {t.name for t in tools}, root / "proj" / "workspaces" / "w1")
        junk = _junk(real_ids)
        before = _snapshot(root, skip)
        calls: list[str] = []

        def fuzz(name: str, schema: dict[str, Any]) -> None:
            @settings(max_examples=60, deadline=None, database=None, derandomize=DERANDOMIZE,
                      suppress_health_check=list(HealthCheck))
            @given(args=_arguments(schema, junk))
            def one(args: dict[str, Any]) -> None:
                result = anyio.from_thread.run(client.call_tool, name, args)
                calls.append(name)
                _check(name, args, result)

            one()

        failures: list[str] = []

        def fuzz_all() -> None:
            for tool in tools:
                try:
                    fuzz(tool.name, tool.input_schema)
                except AssertionError as exc:  # keep going: report every tool that crashes at once
                    failures.append(str(exc).splitlines()[0])

        await anyio.to_thread.run_sync(fuzz_all)
        assert not failures, "\n".join(failures)
        status = await client.call_tool("status", {})
        assert not status.is_error and status.structured_content["initialized"]
    assert len(set(calls)) == len(tools)
    assert _snapshot(root, skip) == before, "files written outside the project and its dev repo"


# A fixed handful per tool over a real stdio server: the transport and the process survive junk.
STDIO_CASES: list[Any] = [{}, {"zzz": 1}, "all-strings-traversal", "all-ints", "all-dicts", "all-huge"]


def _stdio_args(schema: dict[str, Any], case: Any) -> dict[str, Any]:
    props = list(schema.get("properties", {}))
    if isinstance(case, dict):
        return case
    value: Any = {
        "all-strings-traversal": "../../x", "all-ints": -1, "all-dicts": {"a": {"b": [None]}}, "all-huge": HUGE,
    }[case]
    return dict.fromkeys(props, value)


async def test_fuzz_over_stdio(sandbox: tuple[Path, set[Path]]) -> None:
    root, skip = sandbox
    async with Client(stdio_params(root / "cwd", "--project", str(root / "proj"))) as client:
        tools = (await client.list_tools()).tools
        await _prepare(client, {t.name for t in tools}, root / "proj" / "workspaces" / "w1")
        before = _snapshot(root, skip)
        failures = []
        for tool in tools:
            for case in STDIO_CASES:
                args = _stdio_args(tool.input_schema, case)
                try:
                    _check(tool.name, args, await client.call_tool(tool.name, args))
                except AssertionError as exc:
                    failures.append(str(exc)[:300])
        assert not failures, "\n".join(failures)
        version = await client.call_tool("goldfish_version", {})
        assert not version.is_error
    assert _snapshot(root, skip) == before
