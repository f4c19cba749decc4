"""A plain-text rendering of the dashboard (``goldfish tui --headless --text``), for CI and logs."""

from __future__ import annotations

from collections.abc import Sequence

from tui.format import age, clock, duration, number, shorten, spark
from tui.viewmodels import DashboardView


def _table(title: str, header: Sequence[str], rows: list[Sequence[str]], empty: str) -> list[str]:
    out = [f"{title} ({len(rows)})" if rows else title]
    if not rows:
        return [*out, f"  {empty}", ""]
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) for i, h in enumerate(header)]
    out.append("  " + "  ".join(str(h).ljust(w) for h, w in zip(header, widths, strict=True)).rstrip())
    out.extend("  " + "  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows)
    return [*out, ""]


def render_text(view: DashboardView) -> str:
    lines = [f"goldfish dashboard: {view.project_name} ({view.root}) at {clock(view.now)} UTC",
             f"{len(view.active)} active, {len(view.queue)} awaiting finalization, {view.alert_count} alert(s)", ""]
    lines += _table("Slots", ("slot", "workspace", "version", "changes", "goal"), [
        (s.slot, s.workspace or "(empty)", s.version or "",
         "" if not s.workspace else ("?" if s.dirty is None else (f"{s.changed_count} changed" if s.dirty else "clean")),
         shorten(s.goal, 60)) for s in view.slots], "no slots configured")
    lines += _table("Results", ("workspace", "metric", "best", "value vs goal", "last results", "trend"), [
        (r.workspace, r.metric or "", f"@{r.best_tag}" if r.best_tag else "(no best tag)",
         "" if r.best_value is None else number(r.best_value) + ("" if r.goal_value is None
                                                                 else f" / goal {number(r.goal_value)}"),
         " · ".join(f"{number(p.value)} {p.ml_outcome}" for p in r.last), spark(r.spark)) for r in view.results],
        "no results yet")
    lines += _table("Active runs", ("run", "workspace", "stage", "state", "elapsed", "heartbeat", "metric", "value",
                                    "trend"), [
        (a.run_id, a.workspace, a.stage, a.state + (" (cancel requested)" if a.cancel_requested else ""),
         duration(a.elapsed), ("STALLED " if a.stalled else "") + duration(a.heartbeat_age), a.metric_name or "",
         number(a.metric_value), spark(a.spark)) for a in view.active], "nothing running")
    lines += _table("Awaiting finalization", ("workspace", "run", "stage", "outcome", "metric", "auto value", "ended"), [
        (q.workspace, q.run_id, q.stage, q.infra_outcome, q.metric_name or "", number(q.metric_value),
         age(q.finished_age)) for q in view.queue], "nothing to finalize")
    lines += _table("Alerts", ("severity", "kind", "workspace", "message", "age"), [
        (a.severity, a.kind, a.workspace or "", shorten(a.message, 100), age(a.age)) for a in view.alerts],
        "no alerts")
    lines += _table("SVS findings", ("severity", "run", "stage", "check", "message"), [
        (f.severity, f.run_id, f.stage, shorten(f.check, 24), shorten(f.message, 80)) for f in view.findings],
        "no findings")
    lines += _table("Audit and thoughts", ("time", "by", "op", "workspace", "text"), [
        (clock(e.ts), e.source, e.op, e.workspace or "", shorten(e.text, 80)) for e in view.audit], "no activity yet")
    return "\n".join(lines).rstrip() + "\n"
