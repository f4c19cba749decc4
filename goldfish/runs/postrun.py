"""What happens after a stage exits: outputs checked, SVS files read, auto results, outputs frozen.

Every function here only reads the run dir (``make_read_only`` changes modes), so ``post_run`` can
be redone after a runner crash.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

from goldfish.runs import metric_series
from goldfish.runs.inputs import output_candidates
from goldfish.pipelines.model import Stage
from goldfish.records.results_spec import ResultsSpec, ml_outcome_hint

MAX_SVS_FILE = 4 << 20
MAX_FINDINGS = 500
SIZE_WALK_LIMIT = 100_000
SUMMARY_NAMES = 100


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    total = 0
    for seen, (root, _dirs, files) in enumerate(os.walk(path)):
        if seen > SIZE_WALK_LIMIT:
            break
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                continue
    return total


def collect_outputs(stage: Stage, outputs_dir: Path) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """Per declared output ``{location, type, format, exists, size_bytes, artifact}``; and the
    messages for those missing."""
    found: dict[str, dict[str, Any]] = {}
    missing: list[str] = []
    for name, spec in stage.outputs.items():
        candidates = output_candidates(outputs_dir, name, spec.type)
        hit = next((p for p in candidates if p.exists() and not p.is_symlink()), None)
        found[name] = {
            "location": str(hit) if hit else str(candidates[0]),
            "type": spec.type,
            "format": spec.format,
            "exists": hit is not None,
            "size_bytes": _size(hit) if hit else None,
            "artifact": spec.artifact,
        }
        if hit is None:
            shown = " or ".join(p.name for p in candidates)
            missing.append(
                f"declared output {name!r} ({spec.type}) was not written (expected outputs/{shown})"
            )
    return found, missing


def _read_json(path: Path) -> tuple[Any, str | None]:
    try:
        if path.stat().st_size > MAX_SVS_FILE:
            return None, f"{path.name} is larger than {MAX_SVS_FILE >> 20} MB; ignored"
        return json.loads(path.read_text(encoding="utf-8")), None
    except FileNotFoundError:
        return None, None
    except (OSError, ValueError) as exc:
        return None, f"{path.name} is unreadable ({exc}); ignored"


def read_svs_files(runtime_dir: Path) -> tuple[dict[str, Any] | None, list[dict[str, Any]], list[str]]:
    """(stats, findings, problems) from ``svs_stats.json`` and ``svs_findings.json``."""
    problems: list[str] = []
    stats_doc, problem = _read_json(runtime_dir / "svs_stats.json")
    if problem:
        problems.append(problem)
    stats = stats_doc.get("stats") if isinstance(stats_doc, dict) else None
    findings_doc, problem = _read_json(runtime_dir / "svs_findings.json")
    if problem:
        problems.append(problem)
    findings: list[dict[str, Any]] = []
    if isinstance(findings_doc, dict) and isinstance(findings_doc.get("findings"), list):
        findings = [f for f in findings_doc["findings"] if isinstance(f, dict)][:MAX_FINDINGS]
    return stats if isinstance(stats, dict) else None, findings, problems


def contract_errors(findings: list[dict[str, Any]], enforcement: str) -> list[str]:
    """Messages of contract errors that fail the stage (blocking enforcement only)."""
    if enforcement != "blocking":
        return []
    return [
        str(f.get("message") or f.get("check") or "contract violated")
        for f in findings
        if f.get("source") == "contract" and f.get("severity") == "error"
    ]


def results_auto(spec_doc: dict[str, Any] | None, summary: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    """Auto results from the results_spec's primary metric (last value) and the secondary ones."""
    if not spec_doc:
        return None
    spec = ResultsSpec.model_validate(spec_doc)
    last = (summary.get(spec.primary_metric) or {}).get("last")
    value = float(last) if isinstance(last, (int, float)) else None
    return {
        "primary_metric": spec.primary_metric,
        "value": value,
        "direction": spec.direction,
        "dataset_split": spec.dataset_split,
        "secondary": {m: (summary.get(m) or {}).get("last") for m in spec.secondary_metrics},
        "ml_outcome_hint": ml_outcome_hint(spec, value),
        "metric_logged": value is not None,
    }


def bounded_summary(index: metric_series.SeriesIndex, prefer: list[str]) -> dict[str, dict[str, Any]]:
    """At most SUMMARY_NAMES metrics for the run document: preferred names, then the most logged."""
    full = index.summary()
    if len(full) <= SUMMARY_NAMES:
        return full
    order = [n for n in prefer if n in full]
    order += sorted((n for n in full if n not in order), key=lambda n: (-full[n]["count"], n))
    return {n: full[n] for n in order[:SUMMARY_NAMES]}


def collect_metrics(run_dir: Path, doc: dict[str, Any]) -> dict[str, Any]:
    """Metrics summary, lines lost and auto results of a stage that got to execute: every line
    of metrics.jsonl is ingested first, however many there are."""
    index = metric_series.ingest_all(run_dir)
    prefer = list((doc.get("config") or {}).get("dashboard_metrics") or [])
    # A supporting stage has no result of its own: its pipeline run's result is on the result stage.
    spec = None if doc.get("role") == "supporting" else doc.get("results_spec")
    auto = results_auto(spec, index.summary())
    fields: dict[str, Any] = {"metrics_summary": bounded_summary(index, prefer), "metrics_lost": index.lost}
    if auto is not None and doc.get("results_status") != "finalized":
        fields["results_auto"] = auto
        fields["results_status"] = "auto"
    return fields


def make_read_only(root: Path) -> None:
    """Remove write bits below ``root`` (symlinks untouched): completed outputs are inputs now."""
    if not root.exists():
        return
    for dirpath, dirnames, filenames in os.walk(root, topdown=False):
        for name in filenames:
            path = os.path.join(dirpath, name)
            try:
                st = os.lstat(path)
                if not stat.S_ISLNK(st.st_mode):
                    os.chmod(path, stat.S_IMODE(st.st_mode) & ~0o222)
            except OSError:
                continue
        for name in dirnames:
            path = os.path.join(dirpath, name)
            try:
                st = os.lstat(path)
                if not stat.S_ISLNK(st.st_mode):
                    os.chmod(path, stat.S_IMODE(st.st_mode) & ~0o222)
            except OSError:
                continue
    os.chmod(root, stat.S_IMODE(root.stat().st_mode) & ~0o222)


def log_tail(log: Path, lines: int = 20, limit: int = 8192) -> str:
    """The last ``lines`` lines of a log (at most ``limit`` bytes), for error messages."""
    try:
        with open(log, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(max(0, size - limit))
            data = f.read()
    except FileNotFoundError:
        return ""
    text = data.decode(errors="replace")
    return "\n".join(text.splitlines()[-lines:])
