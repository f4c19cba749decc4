"""Read-only views of workspaces: inspect_workspace, diff, and the slot part of status()."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from goldfish import names
from goldfish.git.devrepo import EMPTY_TREE
from goldfish.errors import GoldfishError, InvalidInput
from goldfish.workspaces.models import (
    ChangeStatus,
    DiffResult,
    FileChange,
    InspectWorkspaceResult,
    Lineage,
    SlotInfo,
    TagInfo,
)

if TYPE_CHECKING:
    from goldfish.workspaces.service import Workspaces

MAX_FILES_LISTED = 200
STATUS_FILES_LISTED = 5
PIPELINE_MAX_CHARS = 20000
INCLUDES = ("pipeline",)
_STATUS: dict[str, ChangeStatus] = {"A": "added", "D": "deleted"}


# --------------------------------------------------------------------------- inspect
def inspect_workspace(
    svc: Workspaces, name: str, version_limit: int, version_offset: int, include: list[str] | None
) -> InspectWorkspaceResult:
    if not 1 <= version_limit <= 100 or version_offset < 0:
        raise InvalidInput(
            f"version_limit must be 1..100 and version_offset >= 0 (got {version_limit}, {version_offset}).",
            fix="Use version_limit=10 and page with version_offset.",
        )
    for item in include or []:
        if item not in INCLUDES:
            raise InvalidInput(f"Unknown include {item!r}.", fix=f"include may contain: {', '.join(INCLUDES)}.")
    project = svc.project
    workspace, slot = svc.resolve(name)
    row = svc.row(workspace)
    visible = list(reversed(project.versions.rows(workspace, include_pruned=False)))
    page = visible[version_offset : version_offset + version_limit]
    children = sorted(
        d["id"] for d in project.store.table("workspaces").iter_raw()
        if d.get("parent_workspace") == workspace and not d.get("deleted_at")
    )
    tags = [
        TagInfo(tag=d["id"], version=d.get("version"), record_id=d.get("record_id"), created_at=d.get("created_at"))
        for d in project.store.table("tags", f"ws/{workspace}").iter_raw()
    ]
    head = svc.repo.head(workspace) or ""
    dirty = None
    pipeline = None
    if slot is not None:
        info = next(s for s in slot_infos(svc) if s.slot == slot)
        dirty = info.dirty
        with project.store.lock():  # never while a sync of this slot is staging it
            project.state_md.write_slot(slot)
    if "pipeline" in (include or []):
        pipeline = _pipeline_text(svc, slot, head)
    return InspectWorkspaceResult(
        name=workspace, goal=row.get("goal", ""), is_mounted=slot is not None, slot=slot, dirty=dirty, head_sha=head,
        lineage=Lineage(
            name=workspace, created=row.get("created_at", ""), parent=row.get("parent_workspace"),
            parent_version=row.get("parent_version"), description=row.get("reason"), version_count=len(visible),
            versions=page, has_more=version_offset + len(page) < len(visible), branches=children,
        ),
        tags=sorted(tags, key=lambda t: t.tag),
        pipeline=pipeline,
    )


def _pipeline_text(svc: Workspaces, slot: str | None, head: str) -> str | None:
    if slot is not None:
        path = svc.project.slot_path(slot) / "pipeline.yaml"
        try:
            return path.read_text(errors="replace")[:PIPELINE_MAX_CHARS]
        except OSError:
            return None
    return svc.repo.read_file(head, "pipeline.yaml", PIPELINE_MAX_CHARS) if head else None


# ------------------------------------------------------------------------------ diff
@dataclass
class _Spec:
    kind: str  # slot | version | name
    text: str
    workspace: str | None = None
    ref: str | None = None


@dataclass
class _Side:
    label: str
    tree: str
    sha: str | None
    workspace: str
    number: int | None = None  # version number, for version sides


def _parse(svc: Workspaces, spec: str, what: str) -> _Spec:
    """Validate a diff operand (no git, no store writes)."""
    if not isinstance(spec, str) or not spec:
        raise InvalidInput(f"{what} must be a slot, a workspace, ws@vN or vN.", fix="e.g. diff('w1') or diff('ws@v3', 'ws@v1').")
    if spec in svc.project.config.slots:
        return _Spec("slot", spec)
    if "@" in spec:
        ws, _, ref = spec.partition("@")
        names.workspace_name(ws)
        if not names.VERSION_RE.fullmatch(ref):
            names.tag_name(ref)
        return _Spec("version", spec, ws, ref)
    if names.VERSION_RE.fullmatch(spec):
        return _Spec("version", spec, None, spec)
    try:
        names.workspace_name(spec)
    except InvalidInput as exc:
        raise InvalidInput(
            f"{what} {spec!r} is not a slot ({', '.join(svc.project.config.slots)}), a workspace, ws@vN or vN.",
            fix="e.g. diff('w1'), diff('ws@v3', 'ws@v1') or diff('v3') for the mounted workspace.",
        ) from exc
    return _Spec("name", spec, spec)


def _workspace_of(svc: Workspaces, spec: _Spec) -> str | None:
    if spec.kind == "slot":
        return svc.resolve(spec.text)[0]
    return spec.workspace


def _slot_side(svc: Workspaces, workspace: str, slot: str) -> _Side:
    project = svc.project
    with project.store.lock():  # the per-workspace index is shared with syncs
        staged = svc.repo.stage_slot(workspace, project.slot_path(slot), project.config.workspace.max_file_mb)
    return _Side(f"{slot} (live files of {workspace})", staged.tree, None, workspace)


def _commit_side(svc: Workspaces, label: str, sha: str, workspace: str) -> _Side:
    return _Side(label, svc.repo.tree_of(sha), sha, workspace)


def _side(svc: Workspaces, spec: _Spec, default_ws: str | None) -> _Side:
    if spec.kind == "slot":
        ws, slot = svc.resolve_mounted(spec.text)
        return _slot_side(svc, ws, slot)
    if spec.kind == "name":
        ws, maybe_slot = svc.resolve(spec.text)
        if maybe_slot is not None:
            return _slot_side(svc, ws, maybe_slot)
        return _commit_side(svc, f"{ws} (branch head)", svc.head(ws), ws)
    workspace = spec.workspace or default_ws
    if workspace is None:
        mounted = sorted({d["workspace"] for d in svc.project.store.table("mounts").iter_raw()})
        if len(mounted) != 1:
            raise InvalidInput(
                f"{spec.text!r} does not say which workspace ({len(mounted)} are mounted).",
                fix=f"Write it as workspace@{spec.text}, e.g. {(mounted or ['my_ws'])[0]}@{spec.text}.",
            )
        workspace = mounted[0]
    svc.row(workspace)
    row = svc.project.versions.resolve(workspace, spec.ref or "")
    side = _commit_side(svc, f"{workspace}@{row.version}", row.sha, workspace)
    side.number = row.number
    return side


def _default_against(svc: Workspaces, right: _Side) -> _Side:
    versions = svc.project.versions
    if right.number is not None:
        older = [r for r in versions.rows(right.workspace, include_pruned=False) if r.number < right.number]
        if older:
            return _commit_side(svc, f"{right.workspace}@{older[-1].version}", older[-1].sha, right.workspace)
        return _Side("empty (no earlier version)", EMPTY_TREE, None, right.workspace)
    latest = versions.latest(right.workspace)
    if latest is not None:
        return _commit_side(svc, f"{right.workspace}@{latest.version} (last version)", latest.sha, right.workspace)
    head = svc.head(right.workspace)
    return _commit_side(svc, f"{right.workspace} (branch head; no versions yet)", head, right.workspace)


def diff(svc: Workspaces, target: str, against: str | None) -> DiffResult:
    t_spec = _parse(svc, target, "target")
    a_spec = _parse(svc, against, "against") if against is not None else None
    right = _side(svc, t_spec, _workspace_of(svc, a_spec) if a_spec else None)
    left = _side(svc, a_spec, right.workspace) if a_spec else _default_against(svc, right)
    max_chars = svc.project.config.workspace.diff_max_chars
    result = svc.repo.diff(left.tree, right.tree, max_chars)
    files = [FileChange(path=p, status=_STATUS.get(s, "modified")) for s, p in result.files]
    counts = {k: sum(1 for f in files if f.status == k) for k in ("added", "modified", "deleted")}
    if files:
        summary = f"{len(files)} files changed ({counts['added']} added, {counts['modified']} modified, {counts['deleted']} deleted)"
    else:
        summary = "No changes"
    summary += f": {left.label} -> {right.label}."
    if result.truncated:
        summary += f" diff_text is cut at {max_chars} characters; diff fewer files (e.g. smaller version steps) to see more."
    return DiffResult(
        has_changes=bool(files), summary=summary, files_changed=files[:MAX_FILES_LISTED], files_total=len(files),
        diff_text=result.text, truncated=result.truncated, left=left.label, right=right.label,
        left_sha=left.sha, right_sha=right.sha,
    )


# ---------------------------------------------------------------------------- status
def slot_infos(svc: Workspaces) -> list[SlotInfo]:
    from goldfish.workspaces.versions import checkpoint_text
    from goldfish.workspaces.watcher import watcher_alive

    project = svc.project
    live = watcher_alive(project)
    mounts = {d["id"]: d for d in project.store.table("mounts").iter_raw()}
    workspaces = project.store.table("workspaces")
    out = []
    for slot in project.config.slots:
        path = str(project.slot_path(slot))
        m = mounts.get(slot)
        if m is None:
            out.append(SlotInfo(slot=slot, state="empty", path=path))
            continue
        ws = m["workspace"]
        row = workspaces.get_doc(ws) or {}
        visible = project.versions.rows(ws, include_pruned=False)
        latest = visible[-1] if visible else None
        notes_error = None
        if live:
            dirty, count, files, source = m.get("dirty"), int(m.get("changed_count") or 0), m.get("changed_files") or [], "watcher"
        else:
            try:
                fields = project.dirty.changes(slot, dict(m)).row_fields()
            except (GoldfishError, OSError) as exc:
                notes_error = f"could not check for changes ({exc})"
                fields = {"dirty": None, "changed_count": 0, "changed_files": []}
            dirty, count, files, source = fields["dirty"], fields["changed_count"], fields["changed_files"], "hash_check"
        notes = [notes_error] if notes_error else []
        if m.get("rolled_back_to"):
            notes.append(f"rolled back to {m['rolled_back_to']}; save_version or run() commits it")
        elif latest is None:
            notes.append("no versions yet; save_version or run() creates v1")
        elif latest.sha != m.get("head"):
            notes.append(f"branch head (a hibernate/rollback save) is newer than {latest.version}")
        if dirty is None:
            notes.append(f"slot directory {path} is missing; hibernate({slot!r}, reason) unmounts it")
        out.append(SlotInfo(
            slot=slot, state="mounted", path=path, workspace=ws, goal=row.get("goal"),
            current_version=latest.version if latest else None, version_count=len(visible), dirty=dirty,
            dirty_source=source,  # type: ignore[arg-type]
            changed_count=count, changed_files=[FileChange(**f) for f in files[:STATUS_FILES_LISTED]],
            last_checkpoint=checkpoint_text(latest), parent_workspace=row.get("parent_workspace"),
            parent_version=row.get("parent_version"), note="; ".join(notes) or None,
        ))
    return out
