"""Build records and image versions in the store (partition ``images``).

``image_builds/<build-xxxxxxxx>``: one row per build that really ran (a reused image records
none): target, image_type, backend, status (pending → building → completed | failed |
cancelled), started/completed_at, image_tag, image_id, error, failed_step, log path, trigger
and, for a detached build, the pid and process start time of its builder.

``image_versions/<repo>:<vN>``: named versions of an image (``set_version``), and
``image_current/<repo>``: which version is current.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any

from goldfish.timefmt import now_iso

if TYPE_CHECKING:
    from goldfish.project import Project

PARTITION = "images"
BUILDS = "image_builds"
VERSIONS = "image_versions"
CURRENT = "image_current"
ACTIVE = ("pending", "building")
TERMINAL = ("completed", "failed", "cancelled")


def new_build(project: Project, **fields: Any) -> dict[str, Any]:
    with project.store.transaction() as tx:
        table = tx.table(BUILDS, PARTITION)
        while True:
            build_id = f"build-{secrets.token_hex(4)}"
            if not table.has(build_id):
                break
        log_path = project.gf_dir / "images" / "builds" / f"{build_id}.log"
        doc = {"id": build_id, "status": "pending", "created_at": now_iso(), "started_at": None,
               "completed_at": None, "error": None, "failed_step": None, "step": None, "progress": None,
               "image_tag": None, "image_id": None, "registry_tag": None, "log_path": str(log_path), **fields}
        table.put(build_id, doc)
    return doc


def patch_build(project: Project, build_id: str, fields: dict[str, Any]) -> dict[str, Any]:
    with project.store.transaction() as tx:
        return dict(tx.table(BUILDS, PARTITION).patch(build_id, fields))


def get_build(project: Project, build_id: str) -> dict[str, Any] | None:
    return project.store.table(BUILDS, PARTITION).get_doc(build_id)


def builds(project: Project) -> list[dict[str, Any]]:
    return sorted(project.store.table(BUILDS, PARTITION).docs(), key=lambda d: d.get("created_at") or "")


def versions(project: Project, repo: str) -> list[dict[str, Any]]:
    rows = [d for d in project.store.table(VERSIONS, PARTITION).docs() if d.get("repo") == repo]
    return sorted(rows, key=lambda d: version_number(d.get("version")))


def current_version(project: Project, repo: str) -> str | None:
    doc = project.store.table(CURRENT, PARTITION).get_doc(repo)
    return str(doc["version"]) if doc else None


def version_number(version: object) -> int:
    text = str(version or "")
    return int(text[1:]) if text[:1] == "v" and text[1:].isdigit() else -1
