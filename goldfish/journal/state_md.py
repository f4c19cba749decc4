"""STATE.md: the narrative an agent reads after losing its context.

The global file lives in the dev repo; each mounted slot gets ``<slot>/STATE.md`` for its
workspace (never versioned). Both are rendered from the store and the audit log and written
atomically after every mutation (``tx.after_commit``). Sections about runs and experiments are
rendered by ``run_sections``/``experiment_context`` only: the run and record services fill
those tables, and these two functions are the one place that reads them for STATE.md.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from goldfish.git.devrepo import SLOT_STATE_FILE
from goldfish.errors import GoldfishError
from goldfish.fsutil import atomic_write
from goldfish.timefmt import stamped, utc

if TYPE_CHECKING:
    from goldfish.project import Project

log = logging.getLogger(__name__)

SLOT_RECENT_ACTIONS = 10
SLOT_VERSIONS = 5
GLOBAL_RECENT_VERSIONS = 3
RUNS_LISTED = 5
_ICONS = {"completed": "✓", "failed": "✗", "terminated": "✗", "canceled": "✗", "skipped": "✗"}


def _cut(text: Any, limit: int) -> str:
    flat = " ".join(str(text or "").split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


class StateMd:
    """Renders and writes the global and per-slot STATE.md."""

    def __init__(self, project: Project):
        self.project = project

    # ----------------------------------------------------------------- writing
    def regenerate(self, slots: list[str] | None = None) -> None:
        """Rewrite the global STATE.md and that of ``slots`` (default: every mounted slot)."""
        # fsynced before the rename (never torn); no directory fsync: it is rewritten on every change.
        atomic_write(self.project.state_md_path, self.render_global(), sync_dir=False)
        mounted = set(self.project.store.table("mounts").ids())
        for slot in slots if slots is not None else sorted(mounted):
            if slot in mounted:
                self.write_slot(slot)

    def regenerate_quietly(self, slots: list[str] | None = None) -> None:
        """STATE.md is derived data: a failure to write it must not fail the change it describes."""
        try:
            self.regenerate(slots)
        except Exception:  # pragma: no cover - disk full, permissions
            log.exception("could not regenerate STATE.md")

    def write_slot(self, slot: str) -> None:
        directory = self.project.slot_path(slot)
        if directory.is_dir():
            atomic_write(directory / SLOT_STATE_FILE, self.render_slot(slot), sync_dir=False)

    def read_global(self) -> str | None:
        try:
            return self.project.state_md_path.read_text()
        except OSError:
            return None

    def read_slot(self, slot: str) -> str | None:
        try:
            return (self.project.slot_path(slot) / SLOT_STATE_FILE).read_text()
        except OSError:
            return None

    # --------------------------------------------------------------- rendering
    def render_global(self) -> str:
        project = self.project
        store = project.store
        mounts = {d["id"]: d for d in store.table("mounts").iter_raw()}
        workspaces = {d["id"]: d for d in store.table("workspaces").iter_raw()}
        now = datetime.now(UTC)
        lines = [f"# {project.config.project_name}", "", _written(now), "", "## Active Goal"]
        goals = [f"- {m['workspace']}: {_cut(workspaces.get(m['workspace'], {}).get('goal'), 200)}"
                 for _, m in sorted(mounts.items())]
        lines += goals or ["Not set. Create a workspace with a goal: create_workspace(name, goal, reason)."]
        lines += ["", "## Workspaces"]
        for slot in project.config.slots:
            m = mounts.get(slot)
            if m is None:
                lines.append(f"- {slot}: (empty)")
                continue
            lines += self._slot_lines(slot, m, workspaces.get(m["workspace"], {}), workspaces, now)
        unmounted = [w for w, d in workspaces.items() if not d.get("deleted_at") and w not in {m["workspace"] for m in mounts.values()}]
        if unmounted:
            lines.append(f"- not mounted: {', '.join(sorted(unmounted)[:20])}" + (" …" if len(unmounted) > 20 else ""))
        if project.config.invariants:
            lines += ["", "## Configuration Invariants (DO NOT CHANGE)"]
            lines += [f"- {_cut(rule, 300)}" for rule in project.config.invariants]
        sources = store.table("sources").count_raw()
        lines += ["", "## Data Sources", f"{sources} registered (manage_sources(action='list') shows them)."]
        lines += run_sections(project, [m["workspace"] for m in mounts.values()])
        lines += ["", "## Recent Actions"]
        actions = project.journal.recent(project.config.state_md.max_recent_actions)
        lines += [f"- [{utc(a.ts)}] {self._action(a.op, a.workspace, a.slot, a.reason, a.details)}" for a in actions]
        if not actions:
            lines.append("- none yet")
        return "\n".join(lines) + "\n"

    def _slot_lines(self, slot: str, m: dict[str, Any], ws_row: dict[str, Any], workspaces: dict[str, Any],
                    now: datetime) -> list[str]:
        ws = m["workspace"]
        visible = self.project.versions.rows(ws, include_pruned=False)
        state = "DIRTY" if m.get("dirty") else ("CLEAN" if m.get("dirty") is False else "UNKNOWN")
        last = f" (last: {visible[-1].version}, {stamped(visible[-1].created_at, now=now)})" if visible \
            else " (no versions yet)"
        out = [f"- {slot}: {ws} ({state}){last} - {_cut(ws_row.get('goal'), 80)}"]
        out.append(f"  - versions: {len(visible)} visible" + (f", current {visible[-1].version}" if visible else ""))
        if ws_row.get("parent_workspace"):
            out.append(f"  - branched from {ws_row['parent_workspace']}@{ws_row.get('parent_version')}")
        for v in reversed(visible[-GLOBAL_RECENT_VERSIONS:]):
            out.append(f"  - {v.version} ({v.created_by}, {stamped(v.created_at, now=now)}): {_cut(v.description, 80)}")
        forks = sorted(w for w, d in workspaces.items() if d.get("parent_workspace") == ws and not d.get("deleted_at"))
        if forks:
            out.append(f"  - forks: {', '.join(forks[:3])}" + (" …" if len(forks) > 3 else ""))
        return out

    @staticmethod
    def _action(op: str, workspace: str | None, slot: str | None, reason: str | None,
                details: dict[str, Any] | None = None) -> str:
        where = "/".join(x for x in (workspace, slot) if x)
        if op == "thought":
            return f"Thought{f' ({where})' if where else ''}: {' '.join((reason or '').split())}"
        text = _cut(reason, 120).strip() or _describe(op, details or {})
        return f"{op}{f' {where}' if where else ''}" + (f": {text}" if text else "")

    def render_slot(self, slot: str) -> str:
        project = self.project
        m = project.store.table("mounts").get_doc(slot)
        if m is None:
            return f"# Slot {slot}\n\nEmpty. mount(workspace, {slot!r}, reason) to work here.\n"
        ws = m["workspace"]
        row = project.store.table("workspaces").get_doc(ws) or {}
        visible = project.versions.rows(ws, include_pruned=False)
        flag = m.get("dirty")
        dirty = "yes (save_version or run() commits them)" if flag else ("no" if flag is False else "unknown")
        now = datetime.now(UTC)
        lines = [
            f"# Workspace: {ws}", "", _written(now), "", "## Goal", _cut(row.get("goal"), 2000), "", "## Status",
            f"- Slot: {slot} ({project.slot_path(slot)})",
            f"- Current version: {visible[-1].version if visible else 'none yet'} ({len(visible)} visible)",
            f"- Unsaved changes: {dirty}",
        ]
        if m.get("rolled_back_to"):
            lines.append(f"- Rolled back to {m['rolled_back_to']} (not yet saved)")
        lines += ["", "## Lineage", f"- Created {utc(row.get('created_at'))}: {_cut(row.get('reason'), 200)}"]
        if row.get("parent_workspace"):
            lines.append(f"- Forked from {row['parent_workspace']}@{row.get('parent_version')}")
        lines += ["", "## Version History"]
        for v in reversed(visible[-SLOT_VERSIONS:]):
            tags = f" [{', '.join(v.tags)}]" if v.tags else ""
            lines.append(f"- {v.version}{tags} ({v.created_by}, {stamped(v.created_at, now=now)}): "
                         f"{_cut(v.description, 120)}")
        if not visible:
            lines.append("- none yet")
        lines += ["", "## Recent Actions"]
        actions = project.journal.recent(SLOT_RECENT_ACTIONS, lambda ev: ev.get("workspace") == ws)
        lines += [f"- [{utc(a.ts)}] {self._action(a.op, None, a.slot, a.reason, a.details)}"
                  for a in actions] or ["- none yet"]
        if project.config.invariants:
            lines += ["", "## Invariants (DO NOT CHANGE)"] + [f"- {_cut(r, 300)}" for r in project.config.invariants]
        return "\n".join(lines) + "\n"

    def experiment_context(self, workspace: str) -> dict[str, Any] | None:
        return experiment_context(self.project, workspace)


def _written(now: datetime) -> str:
    return f"Written {now.strftime('%Y-%m-%d %H:%M:%S')} UTC; each \"ago\" below counts from then."


# Audit details worth a line when an action carries no reason (tag_record, automatic operations).
_DETAIL_KEYS = ("tag", "record_id", "stage_run_id", "run_id", "version", "from_version", "to_version", "slot",
                "action", "count")


def _describe(op: str, details: dict[str, Any]) -> str:
    if op == "tag_record" and details.get("tag"):
        on = details.get("stage_run_id") or details.get("record_id")
        at = f" ({details['version']})" if details.get("version") else ""
        return f"tagged {on} as {details['tag']!r}{at}"
    parts = [f"{k}={details[k]}" for k in _DETAIL_KEYS if isinstance(details.get(k), (str, int, float))
             and not isinstance(details.get(k), bool) and str(details[k]).strip()]
    return _cut(", ".join(parts), 120)


# ------------------------------------------------------------------ runs and records
def run_sections(project: Project, workspaces: list[str]) -> list[str]:
    """'Experiment Summary' and 'Recent Runs' from the ``records``/``runs`` tables, if present."""
    lines: list[str] = []
    summary = []
    runs: list[dict[str, Any]] = []
    for ws in sorted(set(workspaces)):
        ctx = experiment_context(project, ws)
        if ctx is not None:
            best = f"; best {ctx['best']}" if ctx.get("best") else ""
            trend = f"; recent: {', '.join(ctx['recent_trend'])}" if ctx.get("recent_trend") else ""
            alerts = f"; {ctx['regression_alerts']} regression alert(s)" if ctx.get("regression_alerts") else ""
            summary.append(f"- {ws}: {ctx['records']} records, {ctx['awaiting_finalization']} awaiting "
                           f"finalization{best}{trend}{alerts}")
        try:
            runs += [dict(d, _ws=ws) for d in project.records.newest_runs(ws, RUNS_LISTED)]
        except Exception:  # pragma: no cover - a table written by a newer schema
            continue
    if summary:
        lines += ["", "## Experiment Summary", *summary]
    if runs:
        runs.sort(key=lambda r: str(r.get("created_at") or ""), reverse=True)
        lines += ["", "## Recent Runs"]
        # One line per pipeline run: its result stage (supporting stages are part of it).
        for r in [r for r in runs if r.get("role") != "supporting"][:RUNS_LISTED]:
            state = str(r.get("state") or "?")
            icon = _ICONS.get(state, "⏳")
            why = r.get("reason_summary") or r.get("reason")
            lines.append(f"- {icon} {r.get('_ws')}/{r.get('stage', '?')} ({state}) - {r.get('created_at', '?')}: "
                         f"{_cut(why if isinstance(why, str) else '', 200)}")
    return lines


def experiment_context(project: Project, workspace: str) -> dict[str, Any] | None:
    """A small summary of a workspace's experiment records (the records service's), or None when
    it has none yet."""
    try:
        return project.records.state_summary(workspace)
    except GoldfishError:  # a workspace deleted meanwhile: nothing to summarise
        return None
