"""Versions of a workspace: numbering, user tags, pruning (``manage_versions``).

A version is a row ``versions/v<N>`` in partition ``ws/<workspace>`` plus the git tag
``<workspace>-v<N>`` on the commit that holds its files. N is allocated under the project lock
as one more than the highest number ever used (pruned versions keep their rows), so numbers
are never reused. User tags (``best-v1``) live in the ``tags`` table of the same partition,
shared with record tags, so a name is unique per workspace whatever it labels.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal, get_args

from pydantic import BaseModel, Field

from goldfish import names
from goldfish.git.devrepo import DevRepo, RefJournal, RefOp
from goldfish.errors import Conflict, InvalidInput, NotFound
from goldfish.git.cmd import GitError
from goldfish.store import Table, Transaction
from goldfish.timefmt import age, now_iso

if TYPE_CHECKING:
    from goldfish.project import Project

CreatedBy = Literal["run", "save_version", "fork", "recovered"]
VersionAction = Literal["list", "tag", "untag", "prune", "unprune", "prune_before_tag"]
ACTIONS: tuple[str, ...] = get_args(VersionAction)


class VersionRow(BaseModel):
    """One version of a workspace."""

    version: str = Field(description="Version id, e.g. v3.")
    number: int = Field(description="N of vN; never reused, pruned versions included.")
    tag: str = Field(description="Git tag in the dev repo, <workspace>-v<N>.")
    sha: str = Field(description="Commit holding exactly this version's files.")
    created_at: str = Field(description="When it was created (UTC).")
    created_by: CreatedBy = Field(description="run, save_version, fork (fork point of another workspace) or recovered.")
    description: str | None = Field(default=None, description="Run reason or save message.")
    pruned_at: str | None = Field(default=None, description="When it was pruned; null if visible.")
    prune_reason: str | None = Field(default=None, description="Why it was pruned.")
    tags: list[str] = Field(default_factory=list, description="User tags on this version (protect it from pruning).")

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> VersionRow:
        return cls(
            version=doc["id"],
            number=doc["number"],
            tag=doc["tag"],
            sha=doc["sha"],
            created_at=doc["created_at"],
            created_by=doc["created_by"],
            description=doc.get("description"),
            pruned_at=doc.get("pruned_at"),
            prune_reason=doc.get("prune_reason"),
            tags=list(doc.get("tags") or []),
        )


class ManageVersionsResult(BaseModel):
    action: VersionAction
    workspace: str
    message: str = Field(description="What happened, in one sentence.")
    versions: list[VersionRow] | None = Field(default=None, description="list: versions, oldest first.")
    total: int | None = Field(default=None, description="list: versions matching (pruned only with include_pruned).")
    limit: int | None = None
    offset: int | None = None
    has_more: bool | None = None
    version: str | None = Field(default=None, description="tag/untag: the version concerned.")
    tag: str | None = None
    pruned: list[str] = Field(default_factory=list, description="Versions pruned by this call.")
    unpruned: list[str] = Field(default_factory=list, description="Versions made visible again by this call.")
    pruned_count: int = 0
    skipped_tagged: list[str] = Field(default_factory=list, description="Tagged versions a range prune left alone.")
    skipped: list[str] = Field(default_factory=list, description="Versions already in the requested state.")
    tag_version: str | None = Field(default=None, description="prune_before_tag: the tagged version.")


def checkpoint_text(version: VersionRow | None) -> str | None:
    """'v3 (run, 2h ago)': the latest version, how and when it was made."""
    if version is None:
        return None
    return f"{version.version} ({version.created_by}, {age(version.created_at)})"


def partition(workspace: str) -> str:
    return f"ws/{workspace}"


class Versions:
    """Version rows, their git tags and user tags for every workspace."""

    def __init__(self, project: Project):
        self.project = project

    @property
    def repo(self) -> DevRepo:
        return self.project.dev_repo

    def _table(self, name: str, workspace: str, tx: Transaction | None) -> Table:
        if tx is not None:
            return tx.table(name, partition(workspace))
        return self.project.store.table(name, partition(workspace))

    # ------------------------------------------------------------------ reads
    def rows(self, workspace: str, *, include_pruned: bool = True, tx: Transaction | None = None) -> list[VersionRow]:
        docs = self._table("versions", workspace, tx).iter_raw()
        rows = [VersionRow.from_doc(dict(d)) for d in docs if include_pruned or not d.get("pruned_at")]
        rows.sort(key=lambda r: r.number)
        return rows

    def get(self, workspace: str, version: str, tx: Transaction | None = None) -> VersionRow | None:
        doc = self._table("versions", workspace, tx).get_doc(version)
        return VersionRow.from_doc(doc) if doc else None

    def latest(self, workspace: str, tx: Transaction | None = None) -> VersionRow | None:
        visible = self.rows(workspace, include_pruned=False, tx=tx)
        return visible[-1] if visible else None

    def at_sha(self, workspace: str, sha: str, tx: Transaction | None = None) -> VersionRow | None:
        """The newest visible version whose commit is ``sha``."""
        matches = [r for r in self.rows(workspace, include_pruned=False, tx=tx) if r.sha == sha]
        return matches[-1] if matches else None

    def resolve(self, workspace: str, ref: str, tx: Transaction | None = None) -> VersionRow:
        """``vN``, a user tag, or the git tag ``<workspace>-vN`` → the version row."""
        if names.VERSION_RE.fullmatch(ref):
            version = ref
        elif re.fullmatch(re.escape(workspace) + r"-v[1-9][0-9]*", ref):
            version = ref[len(workspace) + 1 :]
        else:
            names.tag_name(ref)
            tag = self._table("tags", workspace, tx).get_doc(ref)
            if tag is None:
                known = self._table("tags", workspace, tx).ids()
                raise NotFound(
                    f"{workspace} has no version or tag {ref!r}.{names.did_you_mean(ref, known)}",
                    fix=f"Use vN (see manage_versions({workspace!r}, 'list')) or one of its tags.",
                )
            version = tag["version"]
        row = self.get(workspace, version, tx)
        if row is None:
            latest = self.rows(workspace, tx=tx)
            have = f"its versions are v1..v{latest[-1].number}" if latest else "it has no versions yet"
            raise NotFound(
                f"{workspace} has no version {version} ({have}).",
                fix=f"Pick one from manage_versions({workspace!r}, 'list').",
            )
        return row

    # ----------------------------------------------------------------- create
    def create(
        self,
        tx: Transaction,
        refs: RefJournal,
        workspace: str,
        sha: str,
        created_by: CreatedBy,
        description: str | None,
        extra_ops: Sequence[RefOp] = (),
    ) -> VersionRow:
        """Tag ``sha`` as the next version (together with ``extra_ops`` in one ref transaction)."""
        table = tx.table("versions", partition(workspace))
        number = max((int(d["number"]) for d in table.iter_raw()), default=0) + 1
        tag = DevRepo.version_tag(workspace, number)
        try:
            refs.apply([*extra_ops, RefOp("create", DevRepo.tag_ref(tag), new=sha)])
        except GitError:
            if self.repo.commit_of(DevRepo.tag_ref(tag)) is None:
                raise
            # A crash after tagging but before the store commit left orphan tags: adopt them.
            self.adopt_orphans(tx, workspace)
            number = max(int(d["number"]) for d in table.iter_raw()) + 1
            tag = DevRepo.version_tag(workspace, number)
            refs.apply([*extra_ops, RefOp("create", DevRepo.tag_ref(tag), new=sha)])
        doc = {
            "number": number,
            "tag": tag,
            "sha": sha,
            "created_at": now_iso(),
            "created_by": created_by,
            "description": description,
            "pruned_at": None,
            "prune_reason": None,
            "tags": [],
        }
        table.add(doc, doc_id=f"v{number}")
        return VersionRow.from_doc({**doc, "id": f"v{number}"})

    def adopt_orphans(self, tx: Transaction, workspace: str) -> list[VersionRow]:
        """Give every ``<workspace>-vN`` git tag without a row a ``recovered`` row."""
        table = tx.table("versions", partition(workspace))
        pattern = re.compile(re.escape(workspace) + r"-v([1-9][0-9]*)")
        adopted = []
        for ref, sha in self.repo.refs(f"refs/tags/{workspace}-v*").items():
            m = pattern.fullmatch(ref.removeprefix("refs/tags/"))
            if not m or table.has(f"v{m.group(1)}"):
                continue
            commit = self.repo.commit_of(sha) or sha
            doc = {
                "number": int(m.group(1)), "tag": m.group(0), "sha": commit, "created_at": now_iso(),
                "created_by": "recovered", "description": "tag found without a record (an interrupted save)",
                "pruned_at": None, "prune_reason": None, "tags": [],
            }
            table.add(doc, doc_id=f"v{m.group(1)}")
            adopted.append(VersionRow.from_doc({**doc, "id": f"v{m.group(1)}"}))
        return adopted

    # ----------------------------------------------------------------- manage
    def manage(
        self,
        workspace: str,
        action: str,
        version: str | None = None,
        tag: str | None = None,
        reason: str | None = None,
        from_version: str | None = None,
        to_version: str | None = None,
        limit: int = 50,
        offset: int = 0,
        include_pruned: bool = False,
    ) -> ManageVersionsResult:
        if action not in ACTIONS:
            raise InvalidInput(
                f"Unknown manage_versions action {action!r}.{names.did_you_mean(str(action), ACTIONS)}",
                fix=f"Use one of: {', '.join(ACTIONS)}.",
            )
        for value in (version, from_version, to_version):
            if value is not None:
                names.version(value)
        if tag is not None:
            names.tag_name(tag)
        min_len = self.project.config.audit.min_reason_length
        if action in ("prune", "prune_before_tag") or reason is not None:
            reason = names.reason(reason, min_len)
        ws = self.project.workspaces.resolve(workspace)[0]
        if action == "list":
            return self._list(ws, limit, offset, include_pruned)
        with self.project.store.transaction() as tx:
            if action == "tag":
                result = self._tag(tx, ws, _need(version, "version", action), _need(tag, "tag", action), reason)
            elif action == "untag":
                result = self._untag(tx, ws, _need(tag, "tag", action), reason)
            elif action == "prune_before_tag":
                result = self._prune_before_tag(tx, ws, _need(tag, "tag", action), str(reason))
            else:
                numbers = self._selection(tx, ws, action, version, from_version, to_version)
                result = self._set_pruned(tx, ws, action, numbers, reason, single=version is not None)
            tx.after_commit(self.project.state_md.regenerate_quietly)
        return result

    def _list(self, ws: str, limit: int, offset: int, include_pruned: bool) -> ManageVersionsResult:
        if not 1 <= limit <= 500 or offset < 0:
            raise InvalidInput(
                f"limit must be 1..500 and offset >= 0 (got limit={limit}, offset={offset}).",
                fix="Use limit=50, offset=0 and page with offset.",
            )
        rows = self.rows(ws, include_pruned=include_pruned)
        page = rows[offset : offset + limit]
        hidden = "" if include_pruned else " (pruned hidden; include_pruned=True shows them)"
        return ManageVersionsResult(
            action="list", workspace=ws, message=f"{len(rows)} versions of {ws}{hidden}.",
            versions=page, total=len(rows), limit=limit, offset=offset, has_more=offset + len(page) < len(rows),
        )

    def _tag(self, tx: Transaction, ws: str, version: str, tag: str, reason: str | None) -> ManageVersionsResult:
        if names.VERSION_RE.fullmatch(tag) or re.fullmatch(re.escape(ws) + r"-v[1-9][0-9]*", tag):
            raise InvalidInput(
                f"Tag {tag!r} looks like a version id.", fix="Choose a descriptive name such as best-v1 or baseline."
            )
        row = self.get(ws, version, tx)
        if row is None:
            self.resolve(ws, version, tx)  # raises NotFound with the known range
            raise AssertionError  # pragma: no cover
        if row.pruned_at:
            raise Conflict(
                f"{ws}@{version} is pruned.",
                fix=f"Unprune it first: manage_versions({ws!r}, 'unprune', version={version!r}).",
            )
        tags = tx.table("tags", partition(ws))
        existing = tags.get_doc(tag)
        if existing is not None:
            target = existing.get("record_id") or existing.get("version")
            raise Conflict(
                f"Tag {tag!r} already exists in {ws} (on {target}).",
                fix=f"Choose another name, or untag it first: manage_versions({ws!r}, 'untag', tag={tag!r}).",
            )
        tags.add({"version": version, "record_id": None, "created_at": now_iso()}, doc_id=tag)
        tx.table("versions", partition(ws)).patch(version, {"tags": [*row.tags, tag]})
        self.project.journal.record(
            tx, "tag_version", reason=reason or f"tag {version} as {tag}", workspace=ws,
            details={"version": version, "tag": tag},
        )
        return ManageVersionsResult(
            action="tag", workspace=ws, version=version, tag=tag,
            message=f"Tagged {ws}@{version} as {tag!r}; it cannot be pruned while tagged.",
        )

    def _untag(self, tx: Transaction, ws: str, tag: str, reason: str | None) -> ManageVersionsResult:
        tags = tx.table("tags", partition(ws))
        doc = tags.get_doc(tag)
        if doc is None:
            raise NotFound(
                f"{ws} has no tag {tag!r}.{names.did_you_mean(tag, tags.ids())}",
                fix=f"See the tags with manage_versions({ws!r}, 'list').",
            )
        tags.delete(tag)
        version = doc.get("version")
        versions = tx.table("versions", partition(ws))
        if version and versions.has(version):
            current = versions.get_doc(version) or {}
            versions.patch(version, {"tags": [t for t in current.get("tags") or [] if t != tag]})
        record_id = doc.get("record_id")
        records = tx.table("records", partition(ws))
        if record_id and records.has(record_id):
            rec = records.get_doc(record_id) or {}
            if isinstance(rec.get("tags"), list):
                records.patch(record_id, {"tags": [t for t in rec["tags"] if t != tag]})
        self.project.journal.record(
            tx, "untag_version", reason=reason or f"untag {tag}", workspace=ws,
            details={"version": version, "tag": tag, "record_id": record_id},
        )
        return ManageVersionsResult(
            action="untag", workspace=ws, version=version, tag=tag,
            message=f"Removed tag {tag!r} (was on {record_id or version}); the name is free again.",
        )

    def _selection(
        self, tx: Transaction, ws: str, action: str, version: str | None, lo: str | None, hi: str | None
    ) -> list[int]:
        if version is not None and (lo is not None or hi is not None):
            raise InvalidInput(
                f"{action} takes either version or from_version+to_version, not both.",
                fix=f"manage_versions({ws!r}, {action!r}, version='v3') or from_version='v1', to_version='v5'.",
            )
        if version is not None:
            self.resolve(ws, version, tx)
            return [names.version_number(version)]
        if lo is None or hi is None:
            raise InvalidInput(
                f"{action} needs version='vN', or both from_version and to_version.",
                fix=f"e.g. manage_versions({ws!r}, {action!r}, from_version='v1', to_version='v5'"
                + (", reason='...')." if action == "prune" else ")."),
            )
        a, b = names.version_number(lo), names.version_number(hi)
        if a > b:
            raise InvalidInput(f"from_version {lo} is after to_version {hi}.", fix="Swap them.")
        self.resolve(ws, lo, tx)
        self.resolve(ws, hi, tx)
        return list(range(a, b + 1))

    def _set_pruned(
        self, tx: Transaction, ws: str, action: str, numbers: list[int], reason: str | None, *, single: bool
    ) -> ManageVersionsResult:
        table = tx.table("versions", partition(ws))
        prune = action == "prune"
        changed, skipped, tagged = [], [], []
        for n in numbers:
            doc = table.get_doc(f"v{n}")
            if doc is None:
                continue
            vid = f"v{n}"
            if prune and doc.get("tags"):
                if single:
                    raise Conflict(
                        f"{ws}@{vid} is tagged ({', '.join(doc['tags'])}) and protected from pruning.",
                        fix=f"Untag it first: manage_versions({ws!r}, 'untag', tag={doc['tags'][0]!r}).",
                    )
                tagged.append(vid)
                continue
            if bool(doc.get("pruned_at")) == prune:
                if single:
                    state = "already pruned" if prune else "not pruned"
                    raise Conflict(f"{ws}@{vid} is {state}.", fix="Nothing to do; check manage_versions(..., 'list', include_pruned=True).")
                skipped.append(vid)
                continue
            fields = {"pruned_at": now_iso(), "prune_reason": reason} if prune else {"pruned_at": None, "prune_reason": None}
            table.patch(vid, fields)
            changed.append(vid)
        op = "prune_versions" if prune else "unprune_versions"
        self.project.journal.record(
            tx, op, reason=reason or f"{action} {', '.join(changed) or 'nothing'}", workspace=ws,
            details={"versions": changed, "skipped_tagged": tagged, "skipped": skipped},
        )
        verb = "Pruned" if prune else "Unpruned"
        extra = f"; left tagged {', '.join(tagged)}" if tagged else ""
        return ManageVersionsResult(
            action=action,  # type: ignore[arg-type]
            workspace=ws,
            message=f"{verb} {len(changed)} version(s) of {ws}{extra}.",
            pruned=changed if prune else [],
            unpruned=[] if prune else changed,
            pruned_count=len(changed) if prune else 0,
            skipped_tagged=tagged,
            skipped=skipped,
        )

    def _prune_before_tag(self, tx: Transaction, ws: str, tag: str, reason: str) -> ManageVersionsResult:
        doc = tx.table("tags", partition(ws)).get_doc(tag)
        if doc is None:
            known = tx.table("tags", partition(ws)).ids()
            raise NotFound(
                f"{ws} has no tag {tag!r}.{names.did_you_mean(tag, known)}",
                fix=f"Tag a version first: manage_versions({ws!r}, 'tag', version='vN', tag={tag!r}).",
            )
        limit = names.version_number(doc["version"])
        result = self._set_pruned(tx, ws, "prune", list(range(1, limit)), reason, single=False)
        return result.model_copy(
            update={"action": "prune_before_tag", "tag": tag, "tag_version": doc["version"],
                    "message": f"{result.message} (everything before {tag} = {doc['version']})"}
        )


def _need(value: str | None, what: str, action: str) -> str:
    if value is None:
        raise InvalidInput(f"manage_versions action {action!r} needs {what}.", fix=f"Pass {what}=... as well.")
    return value
