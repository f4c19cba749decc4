"""``search_logs(project, query, limit, cursor)``: newest-first hits from the local index, merged
with Cloud Logging's for gce projects, paginated by an opaque cursor.

The cursor holds where each side stopped: the id of the last local hit returned and Cloud
Logging's ``{ts, skip}`` position, plus a hash of the query (a cursor is refused with another
query). Line ids are in time order (to the second) and stable across rebuilds up to the order of
lines within one second, so pages neither repeat nor skip a line while new lines arrive.
"""

from __future__ import annotations

import base64
import hashlib
import json
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

from goldfish.errors import InvalidInput
from goldfish.logsearch.compile import select
from goldfish.logsearch.index import SEQ_BITS, LogIndex, read_line
from goldfish.logsearch.query import GUIDE, MAX_LIMIT, Query, parse

if TYPE_CHECKING:
    from goldfish.project import Project

MAX_TEXT = 2000
MAX_HITS_BYTES = 50_000  # a page stops early past this much JSON (the answer stays under ~60 kB)
CURSOR_MAX = 512


class LogHit(BaseModel):
    ts: str = Field(description="When the line was written (UTC ISO)")
    level: str = Field(description="debug | info | warning | error | critical")
    source: str = Field(description="stage (stage stdout/stderr), runner, reconciler, mcp, images, backup, cli, …")
    run_id: str | None = Field(default=None, description="The stage run (or pipeline run / build) the line belongs to")
    run_ids: list[str] = Field(default_factory=list, description="Every run id the line carries")
    stage: str | None = None
    workspace: str | None = None
    file: str = Field(description="Log file, relative to the dev repo's .goldfish/ (cloud: cloud-logging:<run>)")
    line: int | None = Field(default=None, description="1-based line number in file (None for cloud lines)")
    offset: int = Field(description="Byte offset of the line in its file (cloud: in the stage's log)")
    text: str = Field(description="The line (a JSON record's message, with its traceback)")
    where: Literal["local", "cloud"] = "local"


class SearchResult(BaseModel):
    query: str | None = Field(default=None, description="The query as run")
    hits: list[LogHit] = Field(default_factory=list, description="Newest first")
    has_more: bool = Field(default=False, description="More hits: call again with cursor")
    cursor: str | None = Field(default=None, description="Pass back to get the next (older) page")
    guide: str | None = Field(default=None, description="The query language (show_guide=True, or no query)")
    indexed: dict[str, int] = Field(default_factory=dict, description="This call's index update: files, new_lines")
    notes: list[str] = Field(default_factory=list, description="E.g. Cloud Logging unreachable, index rebuilt")


def _digest(query: str) -> str:
    return hashlib.sha256(query.encode()).hexdigest()[:12]


def _encode_cursor(state: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(state, separators=(",", ":")).encode()).decode()


def _decode_cursor(cursor: str, query: str) -> dict[str, Any]:
    try:
        state = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        if not isinstance(state, dict) or state.get("q") != _digest(query):
            raise ValueError
        return state
    except (ValueError, TypeError):
        raise InvalidInput("This cursor does not belong to this query.",
                           fix="Pass back the cursor the previous search_goldfish_logs call returned, "
                               "with the same query; leave it out to start from the newest lines.") from None


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def open_index(project: Project) -> LogIndex:
    return LogIndex(project.gf_dir, project)


def _local_hit(index: LogIndex, files: dict[int, tuple[str, str, str | None]], row: tuple[Any, ...]) -> LogHit | None:
    _id, ts, file_id, line_no, offset = row
    if file_id not in files:
        found = index.conn.execute("SELECT path, kind, run_id FROM files WHERE id=?", (file_id,)).fetchone()
        if found is None:
            return None
        files[file_id] = found
    path, kind, run_id = files[file_id]
    raw = read_line(index.gf_dir / path, offset)
    hit = LogHit(ts=_iso(ts), level="info", source="stage", file=path, line=line_no, offset=offset, text="")
    if kind == "json":
        try:
            doc = json.loads(raw)
        except ValueError:
            doc = {"message": raw.decode(errors="replace")}
        hit.level, hit.source = str(doc.get("level") or "info"), str(doc.get("source") or "")
        hit.run_ids = [str(v) for v in doc.get("run_ids") or []]
        hit.run_id = next((r for r in hit.run_ids if r.startswith("stage-")), hit.run_ids[0] if hit.run_ids else None)
        hit.stage, hit.workspace = doc.get("stage"), doc.get("workspace")
        hit.text = str(doc.get("message") or "")[:MAX_TEXT]
        return hit
    from goldfish.logsearch.index import _text_line

    text = raw.decode("utf-8", errors="replace")
    _ts, _msg, cols = _text_line(raw, ts, ("", "", "", "images" if kind == "build" else "stage"))
    hit.level, hit.source = cols[3], cols[4]
    if kind == "stage" and run_id:
        rid, prun, stage, workspace, _ = index.labels(run_id)
        hit.run_id, hit.run_ids = rid, [r for r in (rid, prun) if r]
        hit.stage, hit.workspace = stage or None, workspace or None
    elif kind == "build":
        hit.run_id, hit.run_ids = run_id, [run_id] if run_id else []
    hit.text = text[:MAX_TEXT]
    return hit


def _cloud_hits(project: Project, parsed: Query, now: float, token: str | None, want: int,
                notes: list[str]) -> tuple[list[tuple[float, LogHit, bool, dict[str, Any]]], str | None, bool]:
    """Cloud Logging entries for the query: ([(ts, hit, duplicate of a local line, entry)], token, more)."""
    from goldfish.logsearch.cloud import cloud_filter, mirrored

    filter_ = cloud_filter(parsed.node, now)
    if filter_ is None:
        return [], None, False
    try:
        from goldfish.runs.cloud import gce_log_lines

        entries, next_token = gce_log_lines(project.config, filter_, limit=want, page_token=token)
    except Exception as exc:  # Cloud Logging down or refusing: the local hits still answer
        notes.append(f"Cloud Logging was not searched ({type(exc).__name__}: {str(exc)[:200]}); hits are local only.")
        return [], None, False
    cache: dict[str, dict[str, Any]] = {}
    out = []
    for entry in entries:
        from goldfish.runs.state import parse_iso

        ts = parse_iso(entry.get("timestamp")) or 0.0
        labels = entry.get("labels") or {}
        run_id = entry.get("run_id")
        hit = LogHit(ts=entry.get("timestamp") or _iso(ts), level="info", source="stage", run_id=run_id,
                     run_ids=[r for r in (run_id, labels.get("goldfish_prun")) if r],
                     stage=labels.get("goldfish_stage"), workspace=labels.get("goldfish_workspace"),
                     file=f"cloud-logging:{run_id}/attempt-{entry.get('attempt') or 1}", line=None,
                     offset=int(entry.get("offset") or 0), text=str(entry.get("text") or "")[:MAX_TEXT], where="cloud")
        out.append((ts, hit, mirrored(project.runs_dir, entry, cache), entry))
    return out, next_token, next_token is not None


def search_logs(project: Project, query: str | None = None, *, show_guide: bool = False, limit: int = 50,
                cursor: str | None = None, now: float | None = None, cloud: bool | None = None) -> SearchResult:
    """Run ``query`` (None / empty: the newest lines) over the project's logs."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit must be between 1 and {MAX_LIMIT}, got {limit!r}.", fix="Use e.g. limit=50.")
    text = (query or "").strip()
    if show_guide and not text:
        return SearchResult(guide=GUIDE)
    now = time.time() if now is None else now
    parsed = parse(text, now)  # a malformed query fails here, before any work
    if parsed.limit is not None:
        limit = min(limit, parsed.limit)
    state = _decode_cursor(cursor, text) if cursor else {}
    notes: list[str] = []
    index = open_index(project)
    try:
        stats = index.update()
        after = int(state["l"]) if state.get("l") is not None else None
        rows: list[tuple[Any, ...]] = []
        if not state.get("le"):
            sql, params = select(parsed.node, after, limit + 1)
            try:
                rows = index.conn.execute(sql, params).fetchall()
            except sqlite3.OperationalError as exc:
                raise InvalidInput(f"The query could not run: {exc}.",
                                   fix="Simplify it (show_guide=True lists every form).") from None
            except sqlite3.DatabaseError:  # damaged since the update: rebuild from the files, once
                index.rebuild()
                stats = index.update()
                rows = index.conn.execute(sql, params).fetchall()
                notes.append("The log index was damaged and has been rebuilt from the log files.")
        files: dict[int, tuple[str, str, str | None]] = {}
        local = [(float(r[1]), r) for r in rows]
        use_cloud = cloud if cloud is not None else project.config.gce is not None
        cloud_items: list[tuple[float, LogHit, bool, dict[str, Any]]] = []
        cloud_more = False
        if use_cloud and not state.get("ce"):
            cloud_items, _token, cloud_more = _cloud_hits(project, parsed, now, state.get("c"), limit + 1, notes)
        hits, local_last, local_used, cloud_pos = _merge(index, files, local, cloud_items, limit, state.get("c"))
        local_more = len(rows) > local_used
        cloud_left = cloud_more or len(cloud_items) > (cloud_pos[1] if cloud_pos else 0)
        has_more = bool(local_more or cloud_left)
        new_state = {"q": _digest(text), "l": local_last if local_last is not None else state.get("l"),
                     "c": cloud_pos[0] if cloud_pos else state.get("c"),
                     "le": not local_more, "ce": not cloud_left}
        return SearchResult(query=text or None, hits=hits, has_more=has_more,
                            cursor=_encode_cursor(new_state) if has_more else None,
                            guide=GUIDE if show_guide else None,
                            indexed={"files": stats["files"], "new_lines": stats["new_lines"]}, notes=notes)
    finally:
        index.close()


def _merge(index: LogIndex, files: dict[int, tuple[str, str, str | None]], local: list[tuple[float, Any]],
           cloud: list[tuple[float, LogHit, bool, dict[str, Any]]], limit: int, token: str | None,
           ) -> tuple[list[LogHit], int | None, int, tuple[str, int] | None]:
    """Newest-first merge of both sides; returns (hits, last local id consumed, local rows consumed,
    (cloud token, cloud entries consumed)). Cloud entries the local index already has are consumed
    but not shown. Local rows keep their id order (time order to the second); within a second they
    come before cloud lines."""
    merged: list[tuple[int, int, int, Any]] = [(r[0] >> SEQ_BITS, 1, r[0], r) for _ts, r in local]
    merged += [(int(ts), 0, -i, item) for i, (ts, *item) in enumerate(cloud)]
    merged.sort(key=lambda m: (m[0], m[1], m[2]), reverse=True)
    hits: list[LogHit] = []
    local_last: int | None = None
    local_used = 0
    consumed_cloud: list[dict[str, Any]] = []
    size = 0
    for _second, side, _key, item in merged:
        if len(hits) == limit or size > MAX_HITS_BYTES:
            break  # what is not consumed here is where the cursor continues
        if side == 1:
            local_last = item[0]
            local_used += 1
            hit = _local_hit(index, files, item)
        else:
            hit, duplicate, entry = item
            consumed_cloud.append(entry)
            hit = None if duplicate else hit
        if hit is not None:
            hits.append(hit)
            size += len(hit.model_dump_json()) + 1
    cloud_pos = None
    if consumed_cloud:
        last = consumed_cloud[-1]["timestamp"]
        same = sum(1 for e in consumed_cloud if e["timestamp"] == last)
        if token:
            prev = json.loads(token)
            if prev.get("ts") == last:
                same += int(prev.get("skip") or 0)
        cloud_pos = (json.dumps({"ts": last, "skip": same}), len(consumed_cloud))
    return hits, local_last, local_used, cloud_pos


def index_path(project: Project) -> Path:
    return project.gf_dir / "cache" / "logindex.sqlite"
