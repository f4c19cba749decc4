"""The data registry (``project.sources``): register, update, delete, list and verify sources.

A source is a named file with strict metadata (``goldfish.sources.metadata``). Goldfish never copies it:
the row in the ``sources`` table (project partition, id = name) records where it lives and the
identity of its bytes, and ``verify`` compares them again before a run reads it. Lineage (who
produced a source, who consumed it) lives in ``goldfish.sources.lineage``; promotion of run
outputs in ``goldfish.sources.artifacts``.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from goldfish import names
from goldfish.errors import Conflict, GoldfishError, InvalidInput, NotFound
from goldfish.fielderrors import FieldErrors
from goldfish.issues import Issue
from goldfish.sources.metadata import infer_size_and_hash, validate_source_metadata
from goldfish.sources.locations import (
    GcsObject,
    LocalIdentity,
    Location,
    LocationProblem,
    gcs_stat,
    identity_fields,
    local_identity,
    parse_location,
    same_identity,
)
from goldfish.sources.views import created_by_filter, display_metadata, integrity_message, summary_fields
from goldfish.sources.models import (
    Integrity,
    ManageSourcesResult,
    RegisterSourceResult,
    SourceInfo,
    SourceLineageRef,
    SourceSummary,
)

if TYPE_CHECKING:
    from goldfish.sources.artifacts import ArtifactPlan
    from goldfish.pipelines.model import Stage
    from goldfish.project import Project
    from goldfish.sources.models import PromoteResult
    from goldfish.store import Transaction

log = logging.getLogger(__name__)

TABLE = "sources"
AUDIT_LOG = "audit"
HISTORY_KEPT = 20
MAX_LIST_LIMIT = 200
Action = Literal["list", "get", "lineage", "update", "delete"]
_STATUSES = ("available",)


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


class Checked:
    """A location checked against the metadata: what gets recorded in the row."""

    def __init__(self, loc: Location, size: int, fields: dict[str, Any]):
        self.loc = loc
        self.size = size
        self.fields = fields


class Sources:
    """Register, inspect, update and delete data sources; verify them before runs."""

    def __init__(self, project: Project):
        self.project = project

    # ------------------------------------------------------------------ helpers
    @property
    def min_reason(self) -> int:
        return self.project.config.audit.min_reason_length

    def row(self, name: str) -> dict[str, Any] | None:
        return self.project.store.table(TABLE).get_doc(name)

    def require(self, name: object) -> dict[str, Any]:
        checked = names.source_name(name)
        row = self.row(checked)
        if row is None:
            hint = names.did_you_mean(checked, self.project.store.table(TABLE).ids())
            raise NotFound(
                f"Source {checked!r} is not registered.{hint}",
                fix="List sources with manage_sources(action='list'), or register it with register_source().",
            )
        return row

    def audit(self, tx: Transaction, op: str, reason: str | None, details: dict[str, Any], *,
              workspace: str | None = None) -> None:
        """One audit row in ``tx`` (the journal's when it exists, same fields otherwise)."""
        journal = getattr(self.project, "journal", None)
        if journal is not None:
            journal.record(tx, op, reason=reason, workspace=workspace, details=details)
            return
        tx.append_event(AUDIT_LOG, {"ts": now_iso(), "op": op, "source": self.project.source,
                                    "workspace": workspace, "slot": None, "reason": reason, "details": details})

    def after_change(self, tx: Transaction) -> None:
        """STATE.md shows the number of sources: refresh it once the change is committed."""
        state_md = getattr(self.project, "state_md", None)
        if state_md is not None:
            tx.after_commit(state_md.regenerate_quietly)

    # ------------------------------------------------------------------ checks
    def check_location(
        self,
        problems: FieldErrors,
        gcs_path: object,
        meta_size: int | None,
        *,
        field: str = "gcs_path",
    ) -> Checked | None:
        """Parse and inspect a location; record problems; return what to store when it is usable."""
        if not isinstance(gcs_path, str):
            problems.add(field, "must be a string: a file path, file:// URI or gs:// URI")
            return None
        try:
            loc = parse_location(self.project.root, gcs_path)
            if loc.kind == "local":
                assert loc.path is not None
                ident = local_identity(loc.path)
                size, fields = ident.size, identity_fields(ident)
            else:
                obj = gcs_stat(self.project, loc)
                if obj is None:
                    problems.add(field, f"{loc.uri} does not exist; upload it first or fix the URI")
                    return None
                size, fields = obj.size, gcs_fields(obj)
        except LocationProblem as exc:
            problems.add(field, exc.message)
            return None
        except GoldfishError as exc:
            problems.add(field, f"{exc.message} Fix: {exc.fix}" if exc.fix else exc.message)
            return None
        if meta_size is not None and meta_size != size:
            problems.add(
                "metadata.source.size_bytes",
                f"is {meta_size} but {loc.uri} is {size} bytes; set size_bytes to {size} (the file's size)"
                + (" or point gcs_path at the file you meant" if field == "gcs_path" else ""),
            )
            return None
        return Checked(loc, size, fields)

    def hash_local(self, checked: Checked) -> None:
        """Add sha256 to a checked local file (streamed), and make sure it did not change meanwhile."""
        if checked.loc.kind != "local":
            checked.fields["sha256"] = None
            return
        assert checked.loc.path is not None
        size, digest = infer_size_and_hash(checked.loc.path)
        after = local_identity(checked.loc.path)
        if size != checked.size or not same_identity(checked.fields, after):
            raise Conflict(
                f"{checked.loc.uri} changed while it was being registered.",
                fix="Wait until whatever writes the file has finished, then retry.",
            )
        checked.fields["sha256"] = digest

    # ------------------------------------------------------------------ register
    def register_source(
        self,
        name: str,
        gcs_path: str,
        description: str,
        reason: str,
        metadata: Any,
        format: str | None = None,
        size_bytes: int | None = None,
    ) -> RegisterSourceResult:
        problems = FieldErrors("register_source")
        checked_name = check_field(problems, "name", lambda: names.source_name(name))
        if checked_name is not None and self.row(checked_name) is not None:
            raise duplicate(checked_name)
        checked_reason = check_field(problems, "reason", lambda: names.reason(reason, self.min_reason))
        meta_fix = validate_into(
            problems, metadata, require_size=True, expect_description=description, expect_format=format,
            expect_size=size_bytes,
        )
        checked = self.check_location(problems, gcs_path, meta_size(metadata))
        raise_problems(problems, meta_fix, "Nothing was registered.")
        assert checked is not None and checked_name is not None and checked_reason is not None
        self.hash_local(checked)
        row = {
            "name": checked_name,
            "description": metadata["description"],
            "location": checked.loc.uri,
            "uri_kind": checked.loc.kind,
            "format": metadata["source"]["format"],
            **checked.fields,
            "metadata": copy.deepcopy(metadata),
            "metadata_status": "ok",
            "status": "available",
            "created_at": now_iso(),
            "updated_at": None,
            "created_by": "external",
            "reason": checked_reason,
            "lineage": {"parent_sources": [], "run_id": None, "output_name": None},
            "history": [],
        }
        with self.project.store.transaction() as tx:
            table = tx.table(TABLE)
            if table.has(checked_name):
                raise duplicate(checked_name)
            table.add(row, doc_id=checked_name)
            self.audit(tx, "register_source", checked_reason, audit_details(row))
            self.after_change(tx)
        info = self.info(row, deep=False)
        return RegisterSourceResult(
            source=info,
            message=f"Registered {checked_name} ({row['format']}, {row['size_bytes']} bytes) at {row['location']}; "
            f"the file stays there and is checked before every run that reads it. Use it in pipeline.yaml "
            f"with `dataset: {checked_name}`.",
        )

    # ------------------------------------------------------------------ views
    def integrity(self, row: dict[str, Any], *, deep: bool) -> tuple[Integrity, str | None]:
        """Compare a source with what was registered; ``deep`` re-hashes a local file whose
        size/mtime/inode changed (and checks GCS objects)."""
        if row.get("uri_kind") == "gcs":
            if not deep:
                return "unchecked", None
            return self._gcs_integrity(row)
        try:
            ident = local_identity(_path(row))
        except LocationProblem as exc:
            return "missing", exc.message
        if same_identity(row, ident):
            return "ok", None
        if ident.size != row.get("size_bytes"):
            return "changed", f"size {row.get('size_bytes')} → {ident.size} bytes"
        if not deep:
            return "touched", "modified time changed; manage_sources(action='get') re-hashes it"
        try:
            _, digest = infer_size_and_hash(_path(row))
        except GoldfishError as exc:
            return "missing", exc.message
        if digest != row.get("sha256"):
            return "changed", f"sha256 {short(row.get('sha256'))} → {short(digest)}"
        self._refresh_identity(row, ident)
        return "ok", None

    def _gcs_integrity(self, row: dict[str, Any]) -> tuple[Integrity, str | None]:
        try:
            loc = parse_location(self.project.root, row["location"])
            obj = gcs_stat(self.project, loc)
        except (LocationProblem, GoldfishError) as exc:
            return "unchecked", f"could not check: {getattr(exc, 'message', exc)}"
        if obj is None:
            return "missing", f"{row['location']} no longer exists"
        if obj.generation != row.get("gcs_generation") or obj.size != row.get("size_bytes"):
            return "changed", (f"generation {row.get('gcs_generation')} → {obj.generation}, "
                               f"size {row.get('size_bytes')} → {obj.size} bytes")
        return "ok", None

    def _refresh_identity(self, row: dict[str, Any], ident: LocalIdentity) -> None:
        """Same content, new mtime (touched, copied with the same bytes): remember the new identity
        so the next check is cheap again."""
        try:
            with self.project.store.transaction() as tx:
                table = tx.table(TABLE)
                current = table.get_doc(row["name"])
                if current is not None and current.get("sha256") == row.get("sha256"):
                    table.patch(row["name"], {"mtime_ns": ident.mtime_ns, "inode": ident.inode})
        except GoldfishError:  # a cache refresh; the check itself succeeded
            log.warning("could not refresh the identity of source %s", row["name"])

    def summary(self, row: dict[str, Any]) -> SourceSummary:
        integrity, _ = self.integrity(row, deep=False)
        return SourceSummary(**summary_fields(row), integrity=integrity)

    def info(self, row: dict[str, Any], *, deep: bool = True) -> SourceInfo:
        integrity, detail = self.integrity(row, deep=deep)
        shown, truncated = display_metadata(row.get("metadata"))
        return SourceInfo(
            **summary_fields(row),
            integrity=integrity,
            integrity_detail=detail,
            reason=str(row.get("reason") or ""),
            metadata=shown,
            metadata_truncated=truncated,
            lineage=SourceLineageRef.model_validate(row.get("lineage") or {}),
        )

    # ------------------------------------------------------------------ run engine
    def verify(self, name: str) -> Issue | None:
        """None when source ``name`` is as registered; else the preflight error for it."""
        row = self.row(name)
        if row is None:
            return Issue(
                location=f"dataset {name}",
                message=f"source {name!r} is not registered."
                        f"{names.did_you_mean(name, self.project.store.table(TABLE).ids())}",
                fix="register_source first, or fix the name (manage_sources(action='list') lists them).",
            )
        integrity, detail = self.integrity(row, deep=True)
        if integrity in ("ok", "touched"):
            return None
        where = f"dataset {name}"
        if integrity == "missing":
            return Issue(location=where, message=f"source {name} is missing: {detail}",
                         fix=f"Restore {row['location']}, or manage_sources(action='delete', name='{name}', ...) "
                             "and register the data again.")
        if integrity == "unchecked":
            return Issue(location=where, message=f"source {name} could not be verified ({detail}).",
                         fix="Check access to the bucket, then retry the run.")
        registered = short(row.get("sha256")) if row.get("sha256") else f"generation {row.get('gcs_generation')}"
        return Issue(
            location=where,
            message=f"source {name} changed since registration (sha {registered}; now {detail}).",
            fix=f"Register it under a new name (register_source) or manage_sources(action='update', name='{name}', "
                "metadata=..., reason=...) to accept the new content.",
        )

    def preflight(self, stage: Stage, overrides: Mapping[str, Any], *, location: str) -> list[Issue]:
        """``verify`` for every registered source a stage run reads (``dataset:`` inputs it does not
        override, and overrides naming a source); one issue per input, at ``<location>.inputs.<name>``.
        Unregistered datasets are reported by pipeline validation, not here."""
        wanted: dict[str, str] = {}
        for name, spec in stage.inputs.items():
            value = overrides.get(name) if name in overrides else spec.dataset
            if isinstance(value, str) and self.row(value) is not None:
                wanted[name] = value
        checked: dict[str, Issue | None] = {}
        issues = []
        for name, source in wanted.items():
            if source not in checked:
                checked[source] = self.verify(source)
            issue = checked[source]
            if issue is not None:
                issues.append(issue.model_copy(update={"location": f"{location}.inputs.{name}"}))
        return issues

    def source_schemas(self, name: str) -> dict[str, Any] | None:
        """For validate_pipeline: None when no such source, else its metadata ({} when it has none)."""
        row = self.row(name)
        if row is None:
            return None
        return copy.deepcopy(row.get("metadata") or {})

    def resolve_for_input(self, name: str) -> dict[str, Any]:
        """Where a ``dataset:`` input reads from: ``{location, format, metadata}``."""
        row = self.require(name)
        return {"location": row["location"], "format": row.get("format"),
                "metadata": copy.deepcopy(row.get("metadata"))}

    def record_consumption(self, tx: Transaction, source: str, run_id: str, workspace: str, *,
                           input_name: str | None = None, stage: str | None = None) -> None:
        from goldfish.sources.lineage import record_consumption

        record_consumption(tx, source, run_id, workspace, input_name=input_name, stage=stage)

    def promote_artifact(self, job_id: str, output_name: str, source_name: str, reason: str, metadata: Any,
                         description: str | None = None, format: str | None = None,
                         size_bytes: int | None = None) -> PromoteResult:
        from goldfish.sources.artifacts import promote_artifact

        return promote_artifact(self, job_id, output_name, source_name, reason, metadata, description, format,
                                size_bytes)

    def prepare_artifacts(self, run_doc: dict[str, Any], pipeline_stage: Stage) -> ArtifactPlan:
        """Check and hash a run's ``artifact: true`` outputs, without the lock; writes nothing."""
        from goldfish.sources.artifacts import prepare_artifacts

        return prepare_artifacts(self, run_doc, pipeline_stage)

    def commit_artifacts(self, tx: Transaction, plan: ArtifactPlan) -> list[dict[str, Any]]:
        """Add the planned sources in the transaction that completes the run; returns findings."""
        from goldfish.sources.artifacts import commit_artifacts

        return commit_artifacts(self, tx, plan)

    def auto_register_outputs(self, run_doc: dict[str, Any], pipeline_stage: Stage) -> list[dict[str, Any]]:
        """Register the ``artifact: true`` outputs of a completed run; returns warning findings."""
        from goldfish.sources.artifacts import auto_register_outputs

        return auto_register_outputs(self, run_doc, pipeline_stage)

    # ------------------------------------------------------------------ manage_sources
    def manage_sources(
        self,
        action: Action,
        name: str | None = None,
        status: str | None = None,
        created_by: str | None = None,
        metadata: Any = None,
        reason: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> ManageSourcesResult:
        if action == "list":
            return self.list(status=status, created_by=created_by, limit=limit, offset=offset)
        if name is None:
            raise InvalidInput(f"manage_sources(action='{action}') needs name.",
                               fix="Pass name='<source>' (manage_sources(action='list') lists them).")
        if action == "get":
            info = self.info(self.require(name))
            return ManageSourcesResult(action="get", message=integrity_message(info), source=info)
        if action == "lineage":
            from goldfish.sources.lineage import lineage

            result = lineage(self, name, limit=min(max(limit, 1), MAX_LIST_LIMIT))
            return ManageSourcesResult(
                action="lineage", lineage=result,
                message=f"{name}: {len(result.parents)} parent source(s), "
                        f"{'produced by ' + result.produced_by_run.run_id if result.produced_by_run else 'external'}, "
                        f"{result.consumers_total} consuming run(s).",
            )
        if action == "update":
            return self.update(name, metadata, reason)
        if action == "delete":
            return self.delete(name, reason)
        raise InvalidInput(f"Unknown action {action!r}.{names.did_you_mean(str(action), ['list', 'get', 'lineage', 'update', 'delete'])}",
                           fix="Use one of list, get, lineage, update, delete.")

    def list(self, *, status: str | None = None, created_by: str | None = None, limit: int = 50,
             offset: int = 0) -> ManageSourcesResult:
        if not 1 <= limit <= MAX_LIST_LIMIT:
            raise InvalidInput(f"limit must be 1..{MAX_LIST_LIMIT}, got {limit}.", fix="Use limit=50 and page with offset.")
        if offset < 0:
            raise InvalidInput(f"offset must be 0 or more, got {offset}.", fix="Use offset=0 for the first page.")
        if status is not None and status not in _STATUSES:
            raise InvalidInput(f"Unknown status {status!r}.", fix=f"Use one of: {', '.join(_STATUSES)}, or leave it out.")
        match = created_by_filter(created_by)
        rows = [r for r in self.project.store.table(TABLE).iter_raw()
                if (status is None or r.get("status") == status) and match(str(r.get("created_by") or ""))]
        rows.sort(key=lambda r: (r.get("created_at") or "", r.get("name") or ""), reverse=True)
        page = rows[offset : offset + limit]
        more = offset + len(page) < len(rows)
        return ManageSourcesResult(
            action="list", sources=[self.summary(dict(r)) for r in page], total=len(rows), limit=limit,
            offset=offset, has_more=more,
            message=f"{len(rows)} source(s) match; showing {len(page)}"
                    + (f"; next page: offset={offset + len(page)}." if more else "."),
        )

    def update(self, name: str, metadata: Any, reason: str | None) -> ManageSourcesResult:
        row = self.require(name)
        problems = FieldErrors("manage_sources(action='update')")
        if metadata is None:
            problems.add("metadata", "update replaces the metadata document: pass the full new metadata")
        checked_reason = check_field(problems, "reason", lambda: names.reason(reason, self.min_reason))
        meta_fix = None
        checked: Checked | None = None
        if metadata is not None:
            external = row.get("created_by") == "external"
            meta_fix = validate_into(problems, metadata, require_size=external)
            new_format = _get(metadata, "source", "format")
            if isinstance(new_format, str) and new_format != row.get("format"):
                problems.add("metadata.source.format",
                             f"is {new_format!r} but source {name} is registered as {row.get('format')!r}; the "
                             "format of a source cannot change: register the new data under a new name")
            checked = self.check_location(problems, row["location"], meta_size(metadata), field="location")
        raise_problems(problems, meta_fix, "The source was not changed.")
        assert checked is not None and checked_reason is not None
        self.hash_local(checked)
        changed_content = (checked.fields.get("sha256") != row.get("sha256")
                           or checked.fields.get("gcs_generation") != row.get("gcs_generation"))
        previous = {"at": now_iso(), "reason": checked_reason, "sha256": row.get("sha256"),
                    "size_bytes": row.get("size_bytes"), "gcs_generation": row.get("gcs_generation"),
                    "description": row.get("description")}
        fields = {**checked.fields, "metadata": copy.deepcopy(metadata), "metadata_status": "ok",
                  "description": metadata["description"], "updated_at": previous["at"],
                  "history": [*(row.get("history") or []), previous][-HISTORY_KEPT:]}
        with self.project.store.transaction() as tx:
            new = tx.table(TABLE).patch(row["name"], fields)
            details = {**audit_details(new), "content_changed": changed_content,
                       "previous_sha256": row.get("sha256")}
            self.audit(tx, "update_source", checked_reason, details)
            self.after_change(tx)
        info = self.info(new, deep=False)
        what = "new content recorded" if changed_content else "content unchanged"
        return ManageSourcesResult(action="update", source=info,
                                   message=f"Updated {name}: metadata replaced, {what} (sha {short(info.sha256)}).")

    def delete(self, name: str, reason: str | None) -> ManageSourcesResult:
        from goldfish.sources.lineage import active_users

        row = self.require(name)
        checked_reason = names.reason(reason, self.min_reason)
        with self.project.store.transaction() as tx:
            users = active_users(self.project, tx, row["name"])
            if users:
                shown = ", ".join(f"{u['run_id']} ({u['state']})" for u in users[:10])
                raise Conflict(
                    f"Source {name} is read by runs that have not finished: {shown}.",
                    fix="Cancel them (cancel(run_id, reason)) or wait for them to finish, then delete.",
                    details={"runs": users},
                )
            tx.table(TABLE).delete(row["name"])
            consumers = tx.table("source_consumers")
            for doc in consumers.where(source=row["name"]):
                consumers.delete(doc["id"])
            self.audit(tx, "delete_source", checked_reason, audit_details(row))
            self.after_change(tx)
        return ManageSourcesResult(
            action="delete", deleted=row["name"],
            message=f"Removed {name} from the registry. The data itself was not touched: {row['location']}.",
        )


# --------------------------------------------------------------------------- module helpers


def duplicate(name: str) -> Conflict:
    return Conflict(
        f"Source {name!r} already exists.",
        fix=f"Pick another name, or change it with manage_sources(action='update', name='{name}', metadata=..., "
            "reason=...).",
    )


def check_field(problems: FieldErrors, field: str, check: Any) -> Any:
    try:
        return check()
    except InvalidInput as exc:
        problems.add(field, f"{exc.message} {exc.fix}" if exc.fix else exc.message)
        return None


def validate_into(problems: FieldErrors, metadata: Any, **kw: Any) -> str | None:
    """Run the metadata validator; its errors join ``problems`` under ``metadata.``; returns its fix."""
    try:
        validate_source_metadata(metadata, **kw)
    except InvalidInput as exc:
        for err in exc.details.get("errors", []):
            field = err["field"]
            problems.add(field if field.startswith("metadata") else f"metadata.{field}", err["message"])
        return exc.fix
    return None


def raise_problems(problems: FieldErrors, meta_fix: str | None, nothing: str) -> None:
    fix = f"{nothing} Correct every field listed (details.errors) and retry."
    if meta_fix:
        fix = f"{nothing} {meta_fix}"
    problems.raise_if_any(fix)


def meta_size(metadata: Any) -> int | None:
    size = _get(metadata, "source", "size_bytes")
    return size if isinstance(size, int) and not isinstance(size, bool) else None


def _get(doc: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(doc, dict):
            return None
        doc = doc.get(key)
    return doc


def gcs_fields(obj: GcsObject) -> dict[str, Any]:
    return {"size_bytes": obj.size, "gcs_generation": obj.generation, "md5_hash": obj.md5_hash,
            "crc32c": obj.crc32c, "mtime_ns": None, "inode": None}


def _path(row: dict[str, Any]) -> Path:
    return Path(row["location"])


def short(digest: Any) -> str:
    return f"{digest[:12]}…" if isinstance(digest, str) and digest else "none"


def audit_details(row: dict[str, Any]) -> dict[str, Any]:
    keys = ("name", "location", "uri_kind", "format", "size_bytes", "sha256", "gcs_generation", "created_by",
            "created_at", "lineage")
    return {k: row.get(k) for k in keys}
