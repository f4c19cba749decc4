"""Every fenced example marked runnable in README.md and docs/*.md runs, in order, against a real
`goldfish serve` over stdio (the real MCP client), so a pasted example cannot break unnoticed."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import anyio.to_thread
import pytest
from mcp import Client

from goldfish.init import init_project
from tests.doc_examples import documents, examples, run_sh, tool_functions, write_file
from tests.mcp_helpers import stdio_params

pytestmark = pytest.mark.slow
DOCS = [p for p in documents() if examples(p)]


def test_the_tour_covers_the_readme_and_the_pipeline_reference() -> None:
    names = {p.name for p in DOCS}
    assert {"README.md", "pipelines.md"} <= names, names
    langs = {e.lang for p in DOCS for e in examples(p) if e.path is None}
    assert langs == {"python", "sh"}


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
async def test_runnable_examples(doc: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    home.mkdir()
    root = Path(init_project(tmp_path / "proj", "proj").project_root)
    monkeypatch.chdir(root)
    async with Client(stdio_params(root), read_timeout_seconds=300) as client:
        schemas = {t.name: t.input_schema for t in (await client.list_tools()).tools}
        namespace: dict[str, object] = {"__name__": "__tour__", **tool_functions(client, schemas)}
        for example in examples(doc):
            if example.path is not None:
                write_file(example, root)
                continue
            if example.lang == "sh":
                await anyio.to_thread.run_sync(run_sh, example, root, home)
                continue
            code = compile(example.code, example.label, "exec")
            out = io.StringIO()

            def execute(code=code, out=out) -> None:  # type: ignore[no-untyped-def]
                with contextlib.redirect_stdout(out):
                    exec(code, namespace)

            try:
                await anyio.to_thread.run_sync(execute)
            except Exception as exc:
                raise AssertionError(f"{example.label} failed: {exc}\n--- printed:\n{out.getvalue()}") from exc
            print(f"--- {example.label}\n{out.getvalue()}", end="")  # shown with -s
