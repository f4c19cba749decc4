"""Slot directories: mount, rollback, and removing a hibernated slot without losing a file.

Functions of the ``Workspaces`` service kept apart from the branch/version logic. Every one runs
under the project lock; directories Goldfish works in next to the slots are dot-prefixed
(``.<slot>.mounting-*``, ``.rollback-*``, ``.hibernated-*``), so they are never slot names.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from goldfish import names
from goldfish.git.devrepo import MOUNT_FILE
from goldfish.errors import Conflict
from goldfish.fsutil import atomic_write, inside
from goldfish.workspaces.slots import (
    IgnoreRules,
    compare,
    is_empty_dir,
    park_unversioned,
    replace_blockers,
    replace_files,
    restore_parked,
    scan_slot,
    sweep_temp_dirs,
    temp_dir,
)
from goldfish.timefmt import now_iso
from goldfish.workspaces.versions import checkpoint_text
from goldfish.workspaces.models import MountResult, RollbackResult

if TYPE_CHECKING:
    from goldfish.workspaces.service import Workspaces

SHA_RE = re.compile(r"[0-9a-f]{40}")
SOFT_SLOT_LIMIT = 3


def write_marker(directory: Path, row: dict[str, Any]) -> None:
    """The slot's ``.goldfish-mount.json``: which workspace and commit these files came from."""
    marker = {
        "goldfish": "mounted workspace slot; do not edit",
        "workspace": row["workspace"],
        "slot": row["slot"],
        "mount_id": row["mount_id"],
        "head": row["head"],
        "mounted_at": row["mounted_at"],
    }
    atomic_write(directory / MOUNT_FILE, orjson.dumps(marker, option=orjson.OPT_INDENT_2), durable=False)


def read_marker(directory: Path) -> dict[str, Any] | None:
    try:
        data = orjson.loads((directory / MOUNT_FILE).read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    return data if isinstance(data, dict) and data.get("workspace") else None


# -------------------------------------------------------------- mount
def mount(svc: Workspaces, workspace: str, slot: str, reason: str) -> MountResult:
    names.workspace_name(workspace)
    slot = names.slot_name(slot, svc.project.config.slots)
    reason = names.reason(reason, svc.project.config.audit.min_reason_length)
    workspaces_dir = svc.project.workspaces_dir
    workspaces_dir.mkdir(parents=True, exist_ok=True)
    slot_dir = svc.project.slot_path(slot)
    inside(workspaces_dir, slot_dir, what="slot directory")
    created: Path | None = None
    try:
        with svc.mutation() as (tx, _refs):
            svc.row(workspace, tx)
            mounts = tx.table("mounts")
            current = mounts.get_doc(slot)
            if current is not None:
                if current["workspace"] == workspace:
                    return mount_result(svc, slot, workspace, already=True)
                raise Conflict(
                    f"Slot {slot} already holds workspace {current['workspace']!r}.",
                    fix=f"hibernate({slot!r}, reason) first, or mount into a free slot (see status()).",
                )
            other = svc.mounted_slot(workspace, tx)
            if other is not None:
                raise Conflict(
                    f"Workspace {workspace!r} is already mounted in slot {other}.",
                    fix=f"Work in {other}, or hibernate({other!r}, reason) first.",
                )
            head = svc.head(workspace)
            _sweep(svc)
            marker = _claim_slot_dir(svc, slot, slot_dir, workspace)
            refused: list[str] = []
            if marker is not None:
                mount_id, mounted_head = str(marker["mount_id"]), str(marker.get("head") or head)
            else:
                mount_id, mounted_head = secrets.token_hex(8), head
                tmp = temp_dir(workspaces_dir, slot, ".mounting-")
                try:
                    refused = svc.repo.archive_into(head, tmp)
                    os.rename(tmp, slot_dir)
                finally:
                    shutil.rmtree(tmp, ignore_errors=True)
                created = slot_dir
            row: dict[str, Any] = {
                "slot": slot, "workspace": workspace, "mount_id": mount_id, "mounted_at": now_iso(),
                "mounted_sha": mounted_head, "head": mounted_head, "head_tree": svc.repo.tree_of(mounted_head),
                "last_sync_at": None, "dirty": marker is not None or bool(refused), "changed_count": 0,
                "changed_files": [], "dirty_checked_at": None, "rolled_back_to": None,
            }
            write_marker(slot_dir, row)
            # The per-file blob ids of what was mounted: the baseline of dirty detection.
            tree = svc.repo.ls_tree(mounted_head)
            svc.project.dirty.seed(slot, row, tree)
            mounts.add(row, doc_id=slot)
            svc.project.journal.record(
                tx, "mount", reason=reason, workspace=workspace, slot=slot,
                details={"sha": mounted_head, "recovered": marker is not None, "refused": refused},
            )
            svc.regen_after(tx, slot)
    except BaseException:
        if created is not None and svc.project.store.table("mounts").get_doc(slot) is None:
            shutil.rmtree(created, ignore_errors=True)
        raise
    # Unversioned files parked by the last hibernate come back once the mount is recorded.
    with svc.project.store.lock():
        restored, left = restore_parked(parked_dir(svc, workspace), slot_dir)
    warnings = []
    if restored:
        warnings.append(f"{restored} unversioned files/directories parked at the last hibernate were restored.")
    if refused:
        warnings.append(f"{len(refused)} unsafe entries were not written (links leading out of the slot).")
    if left:
        warnings.append(f"{len(left)} parked unversioned files stayed in {parked_dir(svc, workspace)} "
                        f"(their paths are taken): {', '.join(left[:3])}.")
    mounted = len(svc.project.store.table("mounts").ids())
    if mounted >= SOFT_SLOT_LIMIT:
        warnings.append(f"{mounted} slots are mounted; hibernate idle workspaces to stay focused.")
    if marker is not None or restored or refused:
        svc.project.dirty.refresh(slot)
    return mount_result(svc,
        slot, workspace, recovered=marker is not None, refused=refused, warning=" ".join(warnings) or None,
        file_count=len(tree),
    )


def _claim_slot_dir(svc: Workspaces, slot: str, slot_dir: Path, workspace: str) -> dict[str, Any] | None:
    """Make the slot directory available. Returns the marker of files to keep (re-mount of
    files left by an interrupted mount/hibernate of this workspace), else None."""
    if slot_dir.is_symlink() or (slot_dir.exists() and not slot_dir.is_dir()):
        raise Conflict(f"{slot_dir} exists and is not a directory.", fix="Move it away, then mount again.")
    if not slot_dir.exists():
        return None
    if is_empty_dir(slot_dir):
        slot_dir.rmdir()
        return None
    marker = read_marker(slot_dir)
    if marker is None:
        raise Conflict(
            f"Slot directory {slot_dir} is not empty and was not created by Goldfish (no {MOUNT_FILE}).",
            fix="Move its files elsewhere (or mount another slot), then mount again; Goldfish never overwrites them.",
        )
    if marker.get("workspace") == workspace and isinstance(marker.get("mount_id"), str):
        head = marker.get("head")
        if isinstance(head, str) and SHA_RE.fullmatch(head) and svc.repo.commit_of(head):
            return marker
    left_by = str(marker.get("workspace"))
    head = marker.get("head")
    if isinstance(head, str) and SHA_RE.fullmatch(head) and svc.repo.commit_of(head):
        max_bytes = int(svc.project.config.workspace.max_file_mb * 1_000_000)
        scan = scan_slot(slot_dir, max_bytes=max_bytes, rules=IgnoreRules(slot_dir), cache={})
        base = svc.repo.ls_tree(head)
        if not compare(scan.files, base):
            trash = temp_dir(svc.project.workspaces_dir, slot, ".hibernated-")
            os.rename(slot_dir, trash)
            _dispose(svc, trash, slot, left_by, head)
            return None
    raise Conflict(
        f"Slot {slot} holds files of workspace {left_by!r} left by an interrupted mount or hibernate, "
        "with changes not saved anywhere.",
        fix=f"Recover them with mount({left_by!r}, {slot!r}, reason), then save_version or hibernate; "
        "or mount into another slot.",
    )


def parked_dir(svc: Workspaces, workspace: str) -> Path:
    """Where a hibernate keeps the workspace's unversioned files until its next mount."""
    return svc.project.gf_dir / "parked" / workspace


def mount_result(
    svc: Workspaces, slot: str, workspace: str, *, already: bool = False, recovered: bool = False,
    refused: list[str] | None = None, warning: str | None = None, file_count: int | None = None,
) -> MountResult:
    row = svc.project.store.table("mounts").get_doc(slot) or {}
    latest = svc.project.versions.latest(workspace)
    files = file_count if file_count is not None else len(svc.repo.ls_tree(row["head"])) if row.get("head") else 0
    return MountResult(
        slot=slot, workspace=workspace, path=str(svc.project.slot_path(slot)), already_mounted=already,
        recovered=recovered, dirty=bool(row.get("dirty")), current_version=latest.version if latest else None,
        last_checkpoint=checkpoint_text(latest), file_count=files, refused_files=refused or [],
        warning=warning, state_md=svc.project.state_md.read_slot(slot),
        experiment_context=svc.project.state_md.experiment_context(workspace),
    )


def remove_slot_dir(svc: Workspaces, slot: str, slot_dir: Path, workspace: str, sha: str) -> str | None:
    """After hibernate committed: take the directory away; returns a warning if something stayed."""
    if not slot_dir.is_dir():
        return None
    trash = temp_dir(svc.project.workspaces_dir, slot, ".hibernated-")
    try:
        with svc.project.store.lock():
            os.rename(slot_dir, trash)
            return _dispose(svc, trash, slot, workspace, sha)
    except OSError as exc:
        return f"The slot was saved and unmounted, but cleaning {slot_dir} failed ({exc}); remove it by hand."


def _dispose(svc: Workspaces, trash: Path, slot: str, workspace: str, sha: str) -> str | None:
    """Delete a former slot directory without losing anything: unversioned files (ignored,
    too large, nested .git) are parked and come back at the next mount; the rest is deleted
    only if it still equals commit ``sha`` (an edit racing the hibernate is kept). Lock held."""
    tree = svc.repo.ls_tree(sha)
    stamp = now_iso().replace(":", "")
    parked = park_unversioned(trash, tree, parked_dir(svc, workspace) / stamp)
    scan = scan_slot(trash, max_bytes=1 << 62, rules=IgnoreRules(trash), cache={})
    if compare(scan.files, tree):
        kept = svc.project.workspaces_dir / f".{slot}.unsaved-{secrets.token_hex(4)}"
        os.rename(trash, kept)
        return f"Files changed while hibernating; they were kept in {kept}."
    shutil.rmtree(trash)
    if parked:
        return (f"{parked} unversioned files/directories (ignored or too large) were parked in "
                f"{parked_dir(svc, workspace)}; they come back at the next mount of {workspace}.")
    return None


def _sweep(svc: Workspaces) -> None:
    """Finish work directories left by a crash (lock held, so none is in use)."""
    for entry in list(svc.project.workspaces_dir.iterdir()):
        if not entry.name.startswith(".") or not entry.is_dir() or entry.is_symlink():
            continue
        if ".hibernated-" in entry.name:
            marker = read_marker(entry)
            head = marker.get("head") if marker else None
            if marker and isinstance(head, str) and SHA_RE.fullmatch(head) and svc.repo.commit_of(head):
                slot = entry.name[1:].split(".hibernated-")[0]
                _dispose(svc, entry, slot, str(marker["workspace"]), head)
            else:
                os.rename(entry, entry.with_name(entry.name.replace(".hibernated-", ".unsaved-")))
    sweep_temp_dirs(svc.project.workspaces_dir)


# ------------------------------------------------------------ rollback
def rollback(svc: Workspaces, slot: str, version: str, reason: str) -> RollbackResult:
    if not isinstance(version, str) or not names.VERSION_RE.fullmatch(version):
        names.tag_name(version)
    reason = names.reason(reason, svc.project.config.audit.min_reason_length)
    workspace, slot = svc.resolve_mounted(slot)
    slot_dir = svc.project.slot_path(slot)
    target = svc.project.versions.resolve(workspace, version)
    # Refuse before saving anything if an unversioned file is in the way of the version's files.
    max_bytes = int(svc.project.config.workspace.max_file_mb * 1_000_000)
    now_versioned = scan_slot(slot_dir, max_bytes=max_bytes, rules=IgnoreRules(slot_dir), cache={}).files
    blocked = replace_blockers(slot_dir, svc.repo.ls_tree(target.sha), set(now_versioned))
    if blocked:
        raise Conflict(
            f"Cannot roll {slot} back to {target.version}: unversioned (ignored or oversized) files are in "
            f"the way of {', '.join(blocked[:5])}.",
            fix="Move them out of the slot, then retry the rollback.",
        )
    with svc.mutation() as (tx, refs):  # 1. save what the slot holds now, as a version
        row = svc.mount_row(tx, slot, workspace)
        target = svc.project.versions.resolve(workspace, version, tx)
        saved = svc.sync(tx, refs, slot, row, title=f"save before rollback to {target.version}: {reason}",
                           created_by="save_version",
                           description=f"auto-saved before rollback to {target.version}: {reason}")
        assert saved.version is not None
        if not saved.reused:
            svc.project.journal.record(
                tx, "save_version", reason=f"auto-save before rollback to {target.version}: {reason}",
                workspace=workspace, slot=slot, details={"version": saved.version.version, "sha": saved.sha},
            )
    with svc.mutation() as (tx, _refs):  # 2. replace the versioned files
        row = svc.mount_row(tx, slot, workspace)
        if row["head"] != saved.sha:
            raise Conflict("The slot changed while rolling back.", fix="Retry the rollback.")
        current = svc.repo.ls_tree(saved.sha)
        wanted = svc.repo.ls_tree(target.sha)
        tmp = temp_dir(svc.project.workspaces_dir, slot, ".rollback-")
        try:
            svc.repo.archive_into(target.sha, tmp)
            replace_files(slot_dir, tmp, current)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        changes = compare(wanted, current)
        tx.table("mounts").patch(slot, {
            "rolled_back_to": target.version, "dirty": bool(changes), "changed_count": len(changes),
            "changed_files": [{"path": p, "status": s} for s, p in changes[:50]], "dirty_checked_at": now_iso(),
        })
        svc.project.journal.record(
            tx, "rollback", reason=reason, workspace=workspace, slot=slot,
            details={"version": target.version, "sha": target.sha, "saved_as": saved.version.version,
                     "files": len(changes)},
        )
        svc.regen_after(tx, slot)
    return RollbackResult(
        slot=slot, workspace=workspace, version=target.version, git_tag=target.tag, files_reverted=len(changes),
        saved_as=saved.version.version, saved_version_created=not saved.reused,
        message=(f"{slot} now holds {workspace}@{target.version} ({len(changes)} files changed). The previous "
                 f"files are {saved.version.version}. save_version or run() commits the rolled-back files."),
        state_md=svc.project.state_md.read_slot(slot),
    )
