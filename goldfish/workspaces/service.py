"""Workspaces: create, mount, hibernate, save, sync for a run, roll back, delete, archive.

A workspace is the branch ``goldfish/<name>`` of the hidden dev repo plus a ``workspaces`` row;
a mounted one is a slot directory of plain files plus a ``mounts`` row. Every dev-repo change
happens inside a store transaction (the project lock) with store rows written last, and ref
changes are undone when that transaction does not commit. Nothing here deletes a file that is
not saved somewhere: hibernate commits first and parks unversioned files; rollback saves first.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from goldfish import names

from goldfish.workspaces import slot_dirs
from goldfish.git.devrepo import ARCHIVE_PREFIX, TRAILER_MOUNT, DevRepo, RefJournal, RefOp, SkippedFile
from goldfish.errors import Conflict, GoldfishError, InvalidInput, NotFound
from goldfish.git.cmd import GitError
from goldfish.workspaces.slots import is_empty_dir
from goldfish.workspaces.templates import EXAMPLE_SPEC, TEMPLATES, template_files
from goldfish.store import Transaction
from goldfish.timefmt import now_iso
from goldfish.workspaces.versions import CreatedBy, VersionRow
from goldfish.workspaces.models import (
    CreateWorkspaceResult,
    DeleteWorkspaceResult,
    DiffResult,
    HibernateResult,
    InspectWorkspaceResult,
    MountResult,
    RollbackResult,
    RunVersion,
    SaveVersionResult,
    SlotInfo,
)

if TYPE_CHECKING:
    from goldfish.project import Project

# Called in save_version's transaction with (tx, workspace, version, message); returns a record id.
VersionSavedHook = Callable[[Transaction, str, str, str], "str | None"]

SHA_RE = re.compile(r"[0-9a-f]{40}")


@dataclass
class SyncOutcome:
    sha: str
    committed: bool
    version: VersionRow | None = None
    reused: bool = False
    skipped: list[SkippedFile] = field(default_factory=list)


class Workspaces:
    """The workspace service (one per Project)."""

    def __init__(self, project: Project, on_version_saved: VersionSavedHook | None = None):
        self.project = project
        self.on_version_saved = on_version_saved

    @property
    def repo(self) -> DevRepo:
        return self.project.dev_repo

    # ------------------------------------------------------------- lookups
    def names(self, *, include_deleted: bool = False) -> list[str]:
        docs = self.project.store.table("workspaces").iter_raw()
        return sorted(d["id"] for d in docs if include_deleted or not d.get("deleted_at"))

    def suggest(self, name: str) -> str:
        return names.did_you_mean(name, [*self.names(), *self.project.config.slots])

    def row(self, workspace: str, tx: Transaction | None = None) -> dict[str, Any]:
        """The live workspace row, or NotFound naming close matches."""
        table = tx.table("workspaces") if tx else self.project.store.table("workspaces")
        doc = table.get_doc(workspace)
        if doc is None:
            raise NotFound(
                f"Workspace {workspace!r} does not exist.{self.suggest(workspace)}",
                fix="Create it with create_workspace(name, goal, reason), or check status() for existing ones.",
            )
        if doc.get("deleted_at"):
            raise NotFound(
                f"Workspace {workspace!r} was deleted at {doc['deleted_at']}.",
                fix="Its history stays in get_audit_log(); create a workspace with a new name to continue.",
            )
        return doc

    def mounted_slot(self, workspace: str, tx: Transaction | None = None) -> str | None:
        table = tx.table("mounts") if tx else self.project.store.table("mounts")
        for doc in table.iter_raw():
            if doc.get("workspace") == workspace:
                return str(doc["id"])
        return None

    def resolve(self, name_or_slot: str) -> tuple[str, str | None]:
        """A slot name (must be mounted) or a workspace name → (workspace, its slot or None)."""
        slots = self.project.config.slots
        if isinstance(name_or_slot, str) and name_or_slot in slots:
            doc = self.project.store.table("mounts").get_doc(name_or_slot)
            if doc is None:
                raise NotFound(
                    f"Slot {name_or_slot} is empty.",
                    fix=f"mount(workspace, {name_or_slot!r}, reason) first, or pass a workspace name.",
                )
            return str(doc["workspace"]), name_or_slot
        try:
            names.workspace_name(name_or_slot)
        except InvalidInput as exc:
            raise InvalidInput(
                f"{exc.message[:-1] if exc.message.endswith('.') else exc.message}: it is neither a slot "
                f"({', '.join(slots)}) nor a valid workspace name.",
                fix=exc.fix,
            ) from exc
        self.row(name_or_slot)
        return name_or_slot, self.mounted_slot(name_or_slot)

    def resolve_mounted(self, name_or_slot: str) -> tuple[str, str]:
        workspace, slot = self.resolve(name_or_slot)
        if slot is None:
            raise Conflict(
                f"Workspace {workspace!r} is not mounted.",
                fix=f"mount it first: mount({workspace!r}, slot, reason) with a free slot from status().",
            )
        return workspace, slot

    # ------------------------------------------------------------ plumbing
    @contextlib.contextmanager
    def mutation(self) -> Iterator[tuple[Transaction, RefJournal]]:
        """A store transaction whose dev-repo ref changes are undone unless it commits."""
        refs = RefJournal(self.repo)
        committed: list[bool] = []
        try:
            with self.project.store.transaction() as tx:
                tx.after_commit(lambda: committed.append(True))
                yield tx, refs
        except BaseException:
            if not committed:
                refs.undo()
            raise

    def mount_row(self, tx: Transaction, slot: str, workspace: str) -> dict[str, Any]:
        """The slot's mount row, re-read under the lock: it must still hold ``workspace``."""
        row = tx.table("mounts").get_doc(slot)
        if row is None or row["workspace"] != workspace:
            raise Conflict(
                f"Slot {slot} no longer holds workspace {workspace!r} (it changed while this call started).",
                fix="Check status() and retry.",
            )
        return row

    def regen_after(self, tx: Transaction, *slots: str) -> None:
        tx.after_commit(lambda: self.project.state_md.regenerate_quietly(slots=list(slots)))

    @staticmethod
    def _message(title: str, workspace: str, slot: str, mount_id: str) -> str:
        title = title.replace("\0", "").strip()
        return (
            f"{title}\n\nGoldfish-Workspace: {workspace}\nGoldfish-Slot: {slot}\n"
            f"{TRAILER_MOUNT}: {mount_id}\n"
        )

    def head(self, workspace: str) -> str:
        head = self.repo.head(workspace)
        if head is None:
            raise NotFound(
                f"The branch of workspace {workspace!r} is missing from the dev repo {self.repo.path}.",
                fix="Someone removed it by hand; `goldfish restore latest --dry-run` shows the last backup, "
                    "`goldfish restore latest --force` brings the dev repo back (docs/backups.md).",
            )
        return head

    def _check_head(self, tx: Transaction, slot: str, row: dict[str, Any]) -> str:
        """The branch head, which must be where this slot last left it."""
        workspace = row["workspace"]
        head = self.head(workspace)
        if head == row["head"]:
            return head
        # Commits made by this very mount but not recorded (a crash between the ref update and
        # the store commit) are adopted; anything else means someone else moved the branch.
        if self.repo.is_ancestor(row["head"], head):
            commits = self.repo.commits_since(row["head"], head)
            if commits and all(mount == row["mount_id"] for _sha, _parents, mount in commits):
                tx.table("mounts").patch(slot, {"head": head, "head_tree": self.repo.tree_of(head)})
                self.project.versions.adopt_orphans(tx, workspace)
                return head
        raise Conflict(
            f"Workspace {workspace!r} has diverged: its branch moved to {head[:10]} outside slot {slot}, "
            f"which was last synced at {row['head'][:10]}. Nothing was changed; the files in "
            f"{self.project.slot_path(slot)} are intact.",
            fix=(
                "Only a hand edit of the dev repo does this. Copy out any edits you need, then have a person "
                f"restore the branch: git -C {self.repo.path} update-ref {DevRepo.branch_ref(workspace)} {row['head']}"
            ),
        )

    def sync(
        self,
        tx: Transaction,
        refs: RefJournal,
        slot: str,
        row: dict[str, Any],
        *,
        title: str,
        created_by: CreatedBy | None = None,
        description: str | None = None,
        retry: bool = True,
    ) -> SyncOutcome:
        """Commit the slot onto its branch; with ``created_by`` also create (or reuse) a version.

        The branch must still be where this slot left it (``row["head"]``); that is checked in
        the same ref transaction that moves it, so no other writer can slip in between.
        """
        workspace = row["workspace"]
        head = row["head"]
        slot_dir = self.project.slot_path(slot)
        if not slot_dir.is_dir():
            raise Conflict(
                f"Slot directory {slot_dir} is missing.",
                fix=f"hibernate({slot!r}, reason) unmounts it (its last sync is kept), then mount again.",
            )
        staged = self.repo.stage_slot(workspace, slot_dir, self.project.config.workspace.max_file_mb)
        head_tree = row.get("head_tree") or self.repo.tree_of(head)
        branch = DevRepo.branch_ref(workspace)
        new = head
        if staged.tree != head_tree:
            new = self.repo.commit(staged.tree, [head], self._message(title, workspace, slot, row["mount_id"]))
            ops = [RefOp("update", branch, new=new, old=head)]
        else:
            ops = [RefOp("verify", branch, old=head)]
        outcome = SyncOutcome(sha=new, committed=new != head, skipped=staged.skipped)
        try:
            if created_by is not None:
                existing = None if outcome.committed else self.project.versions.at_sha(workspace, new, tx)
                if existing is not None:
                    refs.apply(ops)
                    outcome.version, outcome.reused = existing, True
                else:
                    outcome.version = self.project.versions.create(tx, refs, workspace, new, created_by, description, ops)
            else:
                refs.apply(ops)
        except GitError:
            if not retry or self.repo.head(workspace) == head:
                raise
            self._check_head(tx, slot, row)  # raises when diverged; adopts this mount's own commits
            fresh = tx.table("mounts").require(slot, what="mount")
            return self.sync(tx, refs, slot, fresh, title=title, created_by=created_by,
                              description=description, retry=False)
        now = now_iso()
        tx.table("mounts").patch(
            slot,
            {
                "head": new, "head_tree": staged.tree, "last_sync_at": now, "dirty": False, "changed_count": 0,
                "changed_files": [], "dirty_checked_at": now, "rolled_back_to": None,
            },
        )
        if outcome.committed:
            slot_dirs.write_marker(slot_dir, {**row, "head": new})
        return outcome

    # ------------------------------------------------------------- create
    def create(
        self,
        name: str,
        goal: str,
        reason: str,
        from_workspace: str | None = None,
        from_version: str | None = None,
        template: str | None = None,
    ) -> CreateWorkspaceResult:
        """``template``: starter files of a new workspace (``templates.TEMPLATES``; None: none). A fork
        starts from its source's files, so a template with ``from_workspace`` is refused."""
        names.workspace_name(name)
        if template is not None and template not in TEMPLATES:
            raise InvalidInput(f"Unknown template {template!r}.",
                               fix=f"Use one of {', '.join(TEMPLATES)} (minimal: a one-stage pipeline that runs as is).")
        if template not in (None, "none") and from_workspace is not None:
            raise InvalidInput(f"template={template!r} and from_workspace both give the new workspace its files.",
                               fix="Fork without a template (template='none'), or create from the template without "
                                   "from_workspace.")
        if name.lower() in (s.lower() for s in self.project.config.slots):
            raise InvalidInput(f"{name!r} is a slot name.", fix="Give the workspace a descriptive name, e.g. lstm_baseline.")
        if not isinstance(goal, str) or not goal.strip() or len(goal) > 2000:
            raise InvalidInput("goal must be 1-2000 characters.", fix="State what this workspace tries to achieve.")
        goal = goal.strip()
        reason = names.reason(reason, self.project.config.audit.min_reason_length)
        if from_version is not None:
            if from_workspace is None:
                raise InvalidInput("from_version needs from_workspace.", fix="Pass from_workspace='<name>' as well.")
            if not names.VERSION_RE.fullmatch(from_version):
                names.tag_name(from_version)
        if from_workspace is not None:
            self.resolve(from_workspace)
        parent = parent_version = None
        scaffold = template if template not in (None, "none") and from_workspace is None else None
        files: dict[str, str] = {}
        with self.mutation() as (tx, refs):
            table = tx.table("workspaces")
            existing = table.get_doc(name)
            if existing is not None:
                deleted = existing.get("deleted_at")
                raise Conflict(
                    f"Workspace {name!r} {'was deleted; names are never reused' if deleted else 'already exists'}.",
                    fix="Choose another name." if deleted else f"mount({name!r}, slot, reason) to work in it, or choose another name.",
                )
            if self.repo.head(name) is not None:
                raise Conflict(
                    f"The dev repo already has a branch {DevRepo.branch_ref(name)} without a workspace record.",
                    fix="Choose another name (goldfish doctor reports such leftovers).",
                )
            if from_workspace is not None:
                parent, parent_slot = self.resolve(from_workspace)
                source = self._fork_point(tx, refs, parent, parent_slot, from_version, name, reason)
                base, parent_version = source.sha, source.version
            else:
                files = template_files(template or "none")
                tree = self.repo.write_tree({p: t.encode() for p, t in files.items()}) if files \
                    else self.repo.write_empty_tree()
                base = self.repo.commit(tree, [], f"create workspace {name}\n\nGoal: {goal}\n")
            refs.apply([RefOp("create", DevRepo.branch_ref(name), new=base)])
            table.add(
                {
                    "name": name, "goal": goal, "reason": reason, "branch": DevRepo.branch_ref(name),
                    "created_at": now_iso(), "created_by": self.project.source, "base_sha": base,
                    "parent_workspace": parent, "parent_version": parent_version,
                    "deleted_at": None, "delete_reason": None,
                },
                doc_id=name,
            )
            forked = f"{parent}@{parent_version}" if parent else None
            self.project.journal.record(
                tx, "create_workspace", reason=reason, workspace=name,
                details={"goal": goal, "forked_from": forked, "base_sha": base, "template": scaffold},
            )
            self.regen_after(tx)
        return CreateWorkspaceResult(
            workspace=name, goal=goal, forked_from=forked, base_sha=base, template=scaffold, files=sorted(files),
            next_step=f"mount({name!r}, slot, reason) with a free slot, then edit files there."
            + (" The starter pipeline runs as is: run(workspace, results_spec=" + json.dumps(EXAMPLE_SPEC)
               + ", reason=...)." if scaffold else ""),
            state_md=self.project.state_md.read_global(),
        )

    def _fork_point(
        self, tx: Transaction, refs: RefJournal, source: str, slot: str | None, version: str | None,
        name: str, reason: str,
    ) -> VersionRow:
        if version is not None:
            return self.project.versions.resolve(source, version, tx)
        description = f"fork point of {name}: {reason}"
        if slot is not None:
            row = tx.table("mounts").require(slot, what="mount")
            outcome = self.sync(tx, refs, slot, row, title=f"fork point of {name}", created_by="fork",
                                 description=description)
            assert outcome.version is not None
            return outcome.version
        head = self.head(source)
        existing = self.project.versions.at_sha(source, head, tx)
        return existing or self.project.versions.create(tx, refs, source, head, "fork", description)

    # ------------------------------------------------------- slot directories
    def mount(self, workspace: str, slot: str, reason: str) -> MountResult:
        """Copy the workspace's branch head into the slot (see goldfish.workspaces.slot_dirs)."""
        return slot_dirs.mount(self, workspace, slot, reason)

    def rollback(self, slot: str, version: str, reason: str) -> RollbackResult:
        """Save the slot as a version, then put an earlier version's files in it."""
        return slot_dirs.rollback(self, slot, version, reason)

    # ---------------------------------------------------------- hibernate
    def hibernate(self, slot: str, reason: str) -> HibernateResult:
        reason = names.reason(reason, self.project.config.audit.min_reason_length)
        workspace, slot = self.resolve_mounted(slot)
        slot_dir = self.project.slot_path(slot)
        try:
            with self.mutation() as (tx, refs):
                row = self.mount_row(tx, slot, workspace)
                if slot_dir.is_dir():
                    outcome = self.sync(tx, refs, slot, row, title=f"hibernate: {reason}")
                else:
                    # The directory is gone after an interrupted hibernate: everything was committed.
                    outcome = SyncOutcome(sha=self._check_head(tx, slot, row), committed=False)
                tx.table("mounts").delete(slot)
                self.project.journal.record(
                    tx, "hibernate", reason=reason, workspace=workspace, slot=slot,
                    details={"sha": outcome.sha, "committed": outcome.committed,
                             "skipped": [s.path for s in outcome.skipped]},
                )
                self.regen_after(tx)
        except GoldfishError as exc:
            raise type(exc)(
                f"hibernate({slot}) did not happen: {exc.message} The files in {slot_dir} and the mount are kept.",
                fix=exc.fix, details=exc.details,
            ) from exc
        warning = slot_dirs.remove_slot_dir(self, slot, slot_dir, workspace, outcome.sha)
        self.project.dirty.forget(slot)
        return HibernateResult(
            slot=slot, workspace=workspace, auto_checkpointed=outcome.committed, checkpoint_sha=outcome.sha,
            skipped_files=outcome.skipped, warning=warning, state_md=self.project.state_md.read_global(),
        )

    # ---------------------------------------------------------- versions
    def save_version(self, slot: str, message: str) -> SaveVersionResult:
        message = names.reason(message, self.project.config.audit.min_reason_length, what="message")
        workspace, slot = self.resolve_mounted(slot)
        with self.mutation() as (tx, refs):
            row = self.mount_row(tx, slot, workspace)
            outcome = self.sync(tx, refs, slot, row, title=f"save_version: {message}", created_by="save_version",
                                 description=message)
            version = outcome.version
            assert version is not None
            # Records are composed in by the project (workspaces never import records).
            record_id = self.on_version_saved(tx, workspace, version.version, message) if self.on_version_saved else None
            self.project.journal.record(
                tx, "save_version", reason=message, workspace=workspace, slot=slot,
                details={"version": version.version, "sha": version.sha, "created": not outcome.reused,
                         "skipped": [s.path for s in outcome.skipped], "record_id": record_id},
            )
            self.regen_after(tx, slot)
        return SaveVersionResult(
            slot=slot, workspace=workspace, version=version.version, git_tag=version.tag, git_sha=version.sha,
            message=message if not outcome.reused else f"Nothing changed since {version.version}; no new version.",
            created=not outcome.reused, skipped_files=outcome.skipped, state_md=self.project.state_md.read_slot(slot),
            record_id=record_id,
        )

    def sync_for_run(self, workspace_or_slot: str, reason: str, *, state_md: bool = True) -> RunVersion:
        """Commit the mounted slot and create version vN, or reuse the version at an unchanged head.
        ``state_md=False``: the caller regenerates STATE.md itself (run() does, once the run is recorded)."""
        reason = names.reason(reason, self.project.config.audit.min_reason_length)
        workspace, slot = self.resolve_mounted(workspace_or_slot)
        with self.mutation() as (tx, refs):
            row = self.mount_row(tx, slot, workspace)
            outcome = self.sync(tx, refs, slot, row, title=f"run: {reason}", created_by="run", description=reason)
            version = outcome.version
            assert version is not None
            self.project.journal.record(
                tx, "sync_for_run", reason=reason, workspace=workspace, slot=slot,
                details={"version": version.version, "sha": version.sha, "reused": outcome.reused},
            )
            if state_md:
                self.regen_after(tx, slot)
        return RunVersion(
            workspace=workspace, slot=slot, version=version.version, number=version.number, sha=version.sha,
            tag=version.tag, reused=outcome.reused, skipped_files=outcome.skipped,
        )

    def create_version(
        self, tx: Transaction | None, workspace: str, sha: str, created_by: CreatedBy, description: str | None
    ) -> VersionRow:
        """Tag an existing commit of the workspace's branch as its next version."""
        names.workspace_name(workspace)
        if not isinstance(sha, str) or not SHA_RE.fullmatch(sha):
            raise InvalidInput(f"Invalid commit id {sha!r}.", fix="Pass a full 40-character sha.")
        del tx  # a transaction open in this thread is joined either way
        with self.mutation() as (active, refs):
            self.row(workspace, active)
            head = self.head(workspace)
            if not self.repo.is_ancestor(sha, head):
                raise InvalidInput(f"{sha[:10]} is not on workspace {workspace!r}'s branch.",
                                   fix="Version only commits made for this workspace.")
            version = self.project.versions.create(active, refs, workspace, sha, created_by, description)
            self.regen_after(active)
        return version

    # -------------------------------------------------------------- delete
    def delete(self, workspace: str, reason: str) -> DeleteWorkspaceResult:
        names.workspace_name(workspace)
        reason = names.reason(reason, self.project.config.audit.min_reason_length)
        with self.mutation() as (tx, refs):
            self.row(workspace, tx)
            slot = self.mounted_slot(workspace, tx)
            if slot is not None:
                raise Conflict(f"Workspace {workspace!r} is mounted in slot {slot}.",
                               fix=f"hibernate({slot!r}, reason) first, then delete it.")
            ops: list[RefOp] = []
            pattern = re.compile(re.escape(workspace) + r"-v[1-9][0-9]*")
            tags = {r: s for r, s in self.repo.refs(f"refs/tags/{workspace}-v*").items()
                    if pattern.fullmatch(r.removeprefix("refs/tags/"))}
            tags[DevRepo.branch_ref(workspace)] = self.head(workspace)
            for ref, sha in tags.items():
                # Commits stay reachable under refs/archive/ so past runs keep their provenance.
                ops += [RefOp("create", f"{ARCHIVE_PREFIX}{workspace}/{ref.removeprefix('refs/')}", new=sha),
                        RefOp("delete", ref, old=sha)]
            refs.apply(ops)
            tx.table("workspaces").patch(workspace, {"deleted_at": now_iso(), "delete_reason": reason})
            self.project.journal.record(tx, "delete_workspace", reason=reason, workspace=workspace,
                                        details={"versions_archived": len(tags) - 1})
            self.regen_after(tx)
        self.repo.index_path(workspace).unlink(missing_ok=True)
        parked = slot_dirs.parked_dir(self, workspace)
        note = f" Unversioned files parked at its last hibernate remain in {parked}." if parked.exists() else ""
        return DeleteWorkspaceResult(
            workspace=workspace, versions_archived=len(tags) - 1,
            message=f"Deleted workspace {workspace!r}; its runs and records keep their history.{note}",
        )

    # ------------------------------------------------------------- archive
    def archive(self, workspace: str, sha: str, dest: Path) -> list[str]:
        """Extract the files of one of the workspace's versions into ``dest`` (for a run).

        Returns the entries refused as unsafe (links leading outside ``dest``)."""
        names.workspace_name(workspace)
        if not isinstance(sha, str) or not SHA_RE.fullmatch(sha):
            raise InvalidInput(f"Invalid commit id {sha!r}.", fix="Pass the sha of a version (RunVersion.sha).")
        self.row(workspace)
        if all(r.sha != sha for r in self.project.versions.rows(workspace)):
            raise NotFound(f"{sha[:10]} is not a version of workspace {workspace!r}.",
                           fix="Archive the sha returned by sync_for_run().")
        dest = Path(dest)
        if dest.exists() and (not dest.is_dir() or not is_empty_dir(dest)):
            raise Conflict(f"{dest} exists and is not an empty directory.", fix="Pass a new directory.")
        return self.repo.archive_into(sha, dest)

    # --------------------------------------------------------------- views
    def inspect(self, name: str, version_limit: int = 10, version_offset: int = 0,
                include: list[str] | None = None) -> InspectWorkspaceResult:
        from goldfish.workspaces.views import inspect_workspace

        return inspect_workspace(self, name, version_limit, version_offset, include)

    def diff(self, target: str, against: str | None = None) -> DiffResult:
        from goldfish.workspaces.views import diff

        return diff(self, target, against)

    def slot_status(self) -> list[SlotInfo]:
        from goldfish.workspaces.views import slot_infos

        return slot_infos(self)
