"""Helpers for the SVS tests: a real project with chosen svs settings, stage app dirs, and a loopback
fake of the Anthropic Messages API (the real ``anthropic`` client is pointed at it)."""

from __future__ import annotations

import json
import textwrap
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

from goldfish.init import init_project
from goldfish.pipelines.model import Pipeline, load_pipeline
from goldfish.project import Project


def make_project(tmp: Path, *, svs: dict[str, Any] | None = None, pre_run_review: dict[str, Any] | None = None) -> Project:
    """A real initialized project whose goldfish.yaml has the given svs / pre_run_review keys."""
    root = tmp / "proj"
    init_project(root, "proj")
    path = root / "goldfish.yaml"
    doc = yaml.safe_load(path.read_text())
    doc["svs"] = {**(doc.get("svs") or {}), **(svs or {})}
    doc["pre_run_review"] = {**(doc.get("pre_run_review") or {}), **(pre_run_review or {})}
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return Project.open(root, source="test")


def write_app(app: Path, pipeline: str, modules: dict[str, str], *, configs: dict[str, dict[str, Any]] | None = None,
              files: dict[str, str] | None = None) -> Pipeline:
    """An archived app dir: pipeline.yaml, modules/<stage>.py, configs/<stage>.yaml, extra files."""
    app.mkdir(parents=True, exist_ok=True)
    (app / "pipeline.yaml").write_text(textwrap.dedent(pipeline))
    (app / "modules").mkdir(exist_ok=True)
    for name, code in modules.items():
        target = app / "modules" / (name if "." in name else f"{name}.py")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(textwrap.dedent(code))
    for stage, values in (configs or {}).items():
        (app / "configs").mkdir(exist_ok=True)
        (app / "configs" / f"{stage}.yaml").write_text(yaml.safe_dump(values))
    for rel, text in (files or {}).items():
        (app / rel).parent.mkdir(parents=True, exist_ok=True)
        (app / rel).write_text(textwrap.dedent(text))
    return load_pipeline(app)


TRAIN_PIPELINE = """\
stages:
  - name: prepare
    outputs:
      features: {type: npy, schema: {kind: tensor, shape: [null, 4], dtype: float32}}
  - name: train
    inputs:
      features: {from_stage: prepare, schema: {kind: tensor, shape: [null, 4], dtype: float32}}
    outputs:
      model: {type: directory, schema: null}
      embeddings: {type: npy, schema: {kind: tensor, shape: [null, 4], dtype: float32}}
      summary: {type: file, schema: {kind: json}}
"""


class FakeAnthropic:
    """Loopback Messages API. Queue answers with ``reply_tool``/``reply_text``/``reply_sleep``/``reply_status``;
    an empty queue repeats the last answer. Requests are recorded in ``requests``."""

    def __init__(self) -> None:
        self.answers: list[tuple[str, Any]] = []
        self.last: tuple[str, Any] = ("text", "no answer configured")
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"{}")
                with fake.lock:
                    fake.requests.append({"path": self.path, "body": body, "headers": dict(self.headers)})
                    kind, payload = fake.answers.pop(0) if fake.answers else fake.last
                    fake.last = (kind, payload)
                if kind == "sleep":
                    time.sleep(payload)
                    kind, payload = "text", "too late"
                if kind == "status":
                    data = json.dumps({"type": "error", "error": {"type": "api_error", "message": "boom"}}).encode()
                    self.send_response(payload)
                else:
                    block = ({"type": "tool_use", "id": "toolu_01", "name": payload[0], "input": payload[1]}
                             if kind == "tool" else {"type": "text", "text": payload})
                    data = json.dumps({
                        "id": "msg_01", "type": "message", "role": "assistant", "model": body.get("model", "m"),
                        "content": [block], "stop_reason": "tool_use" if kind == "tool" else "end_turn",
                        "stop_sequence": None, "usage": {"input_tokens": 10, "output_tokens": 5},
                    }).encode()
                    self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                with suppress(BrokenPipeError, ConnectionResetError):
                    self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    def reply_tool(self, name: str, arguments: Any) -> None:
        self.answers.append(("tool", (name, arguments)))

    def reply_text(self, text: str) -> None:
        self.answers.append(("text", text))

    def reply_sleep(self, seconds: float) -> None:
        self.answers.append(("sleep", seconds))

    def reply_status(self, status: int) -> None:
        self.answers.append(("status", status))


@contextmanager
def fake_anthropic() -> Iterator[FakeAnthropic]:
    fake = FakeAnthropic()
    fake.thread.start()
    try:
        yield fake
    finally:
        fake.server.shutdown()
        fake.server.server_close()
