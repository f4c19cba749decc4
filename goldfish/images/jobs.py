"""Detached image builds: ``manage_base_images(action='build')`` records a build and starts
``goldfish images run-build <build-id>`` in a new session (like the runner, it survives the MCP
server). The builder writes its progress, step and outcome into the build record; a build whose
builder died is reconciled to ``failed`` by the next reader.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from goldfish.images import recipes, records
from goldfish.images.build import BuildFailed, BuildLog
from goldfish.procs import pid_alive, proc_start_time
from goldfish.timefmt import now_iso

if TYPE_CHECKING:
    from goldfish.project import Project

PACKAGE_ROOT = recipes.PACKAGE_ROOT
PROGRESS_EVERY = 0.5
logger = logging.getLogger(__name__)


def spawn_build(project: Project, build_id: str) -> int:
    doc = records.get_build(project, build_id) or {}
    log_path = Path(doc.get("log_path") or project.gf_dir / "images" / "builds" / f"{build_id}.log")
    log_path.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PACKAGE_ROOT), env.get("PYTHONPATH", "")) if p)
    cmd = [sys.executable, "-m", "goldfish", "--project", str(project.root), "images", "run-build",
           "--build-id", build_id]
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(cmd, cwd=project.root, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True, close_fds=True, env=env)
    records.patch_build(project, build_id, {"pid": proc.pid, "proc_start": proc_start_time(proc.pid)})
    threading.Thread(target=proc.wait, name=f"reap-{build_id}", daemon=True).start()
    return proc.pid


def reconcile_build(project: Project, doc: dict[str, Any]) -> dict[str, Any]:
    """A build still pending/building whose builder process is gone ends ``failed``."""
    if doc.get("status") not in records.ACTIVE or not doc.get("pid"):
        return doc
    if pid_alive(int(doc["pid"]), doc.get("proc_start")):
        return doc
    fresh = records.get_build(project, doc["id"]) or doc
    if fresh.get("status") not in records.ACTIVE:
        return fresh
    return records.patch_build(project, doc["id"], {
        "status": "failed", "completed_at": now_iso(), "failed_step": fresh.get("step"),
        "error": "The build process ended without recording an outcome (killed or crashed); start the build again.",
    })


def run_build(project: Project, build_id: str) -> int:
    """Body of the detached builder process."""
    from goldfish.images.base import build_base
    from goldfish.images.environment import EnvironmentError_, docker_client, ensure_project_image

    from goldfish.logsearch.jsonlog import configure_project

    configure_project(project, "images", stderr_level=None)
    doc = records.get_build(project, build_id)
    if doc is None:
        print(f"goldfish images: no build {build_id}", file=sys.stderr)
        return 1
    records.patch_build(project, build_id, {"status": "building", "started_at": now_iso()})
    ids = {"run_ids": [build_id]}
    logger.info("build %s started: %s image (%s)", build_id, doc.get("image_type"), doc.get("target"), extra=ids)
    last = [0.0]

    def on_step(step: str, number: int, total: int) -> None:
        now = time.monotonic()
        if now - last[0] >= PROGRESS_EVERY or number == total:
            last[0] = now
            records.patch_build(project, build_id, {"step": step, "progress": round(number / max(total, 1), 3),
                                                    "steps": total, "step_number": number})

    try:
        client = docker_client(project)
        if doc["target"] == "base":
            log = BuildLog(Path(doc["log_path"]), on_step=on_step)
            try:
                tag, image_id = build_base(client, doc["image_type"], log, no_cache=bool(doc.get("no_cache")))
            finally:
                log.close()
        else:
            choice = ensure_project_image(project, project.root, doc["image_type"], build_id=build_id,
                                          no_cache=bool(doc.get("no_cache")), force=True, on_step=on_step)
            del choice
            return 0  # ensure_project_image recorded the outcome
    except BuildFailed as exc:
        records.patch_build(project, build_id, {"status": "failed", "completed_at": now_iso(), "error": exc.message,
                                                "failed_step": exc.step, "fix": exc.fix})
        logger.error("build %s failed at step %s: %s", build_id, exc.step, exc.message, extra=ids)
        return 1
    except EnvironmentError_ as exc:
        logger.error("build %s failed: %s", build_id, exc, extra=ids)
        return 1
    except Exception as exc:
        logger.exception("build %s crashed", build_id, extra=ids)
        records.patch_build(project, build_id, {"status": "failed", "completed_at": now_iso(),
                                                "error": f"{type(exc).__name__}: {exc}",
                                                "failed_step": (records.get_build(project, build_id) or {}).get("step")})
        return 1
    records.patch_build(project, build_id, {"status": "completed", "completed_at": now_iso(), "image_tag": tag,
                                            "image_id": image_id, "progress": 1.0})
    logger.info("build %s completed: %s", build_id, tag, extra=ids)
    return 0
