"""Fenced examples of README.md and docs/*.md marked runnable, run as a tour against a real server.

Mark a block with ```python runnable or ```sh runnable; a block whose info string is ```<lang>
file=<path> (e.g. ```yaml file=workspaces/w1/pipeline.yaml) is written to that path, relative to
the project, when the tour reaches it. The blocks of one file run in order, in one namespace, with
the project directory as the working directory:
- python blocks call the MCP tools as functions (`run("w1", results_spec=...)`); positional
  arguments follow the tool's parameters; each returns the tool's structured result as a dict, and a
  tool error raises ToolCallFailed with the server's text;
- sh blocks run in bash -e with `goldfish` on PATH and HOME set to a scratch directory.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio.from_thread
from mcp import Client

REPO = Path(__file__).resolve().parent.parent
FENCE = re.compile(r"^```(\w+) (runnable|file=\S+)[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)


@dataclass
class Example:
    file: str
    line: int
    lang: str
    code: str
    path: str | None = None  # a file block: where its text goes

    @property
    def label(self) -> str:
        return f"{self.file}:{self.line} ({self.lang})"


class ToolCallFailed(AssertionError):
    pass


def documents() -> list[Path]:
    return [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def examples(path: Path) -> list[Example]:
    text = path.read_text(encoding="utf-8")
    found = []
    for m in FENCE.finditer(text):
        target = m.group(2).removeprefix("file=") if m.group(2).startswith("file=") else None
        if target is None and m.group(1) not in ("python", "sh"):
            raise AssertionError(f"{path.name}: only python and sh blocks can be runnable, not {m.group(1)}")
        found.append(Example(str(path.relative_to(REPO)), text.count("\n", 0, m.start()) + 2, m.group(1),
                             m.group(3), target))
    return found


def write_file(example: Example, root: Path) -> None:
    assert example.path is not None
    target = (root / example.path).resolve()
    assert target.is_relative_to(root.resolve()), f"{example.label}: {example.path} leaves the project"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(example.code, encoding="utf-8")


def tool_functions(client: Client, schemas: dict[str, dict[str, Any]]) -> dict[str, Callable[..., Any]]:
    """One sync function per tool, callable from a worker thread of the client's event loop."""

    def make(name: str, params: list[str]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            if len(args) > len(params):
                raise TypeError(f"{name}() takes at most {len(params)} positional arguments")
            arguments = {**dict(zip(params, args, strict=False)), **kwargs}
            result = anyio.from_thread.run(client.call_tool, name, arguments)
            if result.is_error:
                text = result.content[0].text if result.content else repr(result)
                raise ToolCallFailed(f"{name}({arguments!r}) failed: {text}")
            return result.structured_content

        call.__name__ = name
        return call

    return {name: make(name, list(schema.get("properties", {}))) for name, schema in schemas.items()}


def run_sh(example: Example, cwd: Path, home: Path) -> str:
    env = {**os.environ, "HOME": str(home), "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", example.code], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise AssertionError(f"{example.label} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return done.stdout
