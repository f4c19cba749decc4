"""Failure patterns: learned from failed runs, curated by the agent or a person, checked by reviews.

A failed run (with ``svs.auto_learn_failures``) yields a pattern from its log: the rules take the
exception type, the normalised message and the failing source line (signature) and a regex
detection rule for that line; the AI (provider ``anthropic``) may refine symptom, root cause,
prevention and detection. Patterns are de-duplicated by signature (``occurrence_count``,
``last_seen_at``). Only ``approved`` patterns are checked by later pre-run reviews.

Store: table ``patterns`` in the project partition, id ``fp-xxxxxxxx``.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from goldfish import names
from goldfish.errors import InvalidInput, NotFound
from goldfish.svs.ai import ProviderFailure, call_tool, failure_message
from goldfish.svs.failure_log import FailureInfo, parse_failure, read_log_tail
from goldfish.svs.pattern_rules import Detection, line_regex

if TYPE_CHECKING:
    from goldfish.project import Project

PatternStatus = Literal["pending", "approved", "rejected", "archived"]
PatternSeverity = Literal["critical", "high", "medium", "low"]
STATUSES: tuple[str, ...] = ("pending", "approved", "rejected", "archived")
SEVERITIES: tuple[str, ...] = ("critical", "high", "medium", "low")
TABLE = "patterns"
MAX_NEW_PER_HOUR = 10
MAX_HISTORY = 50
MIN_DETECTABLE_LINE = 12
MIN_REASON = 15
_NOT_CODE_FAILURES = ("KeyboardInterrupt", "SystemExit", "Killed")

_PREVENTION = {
    "KeyError": "Check that the key exists before reading it (config keys come from configs/<stage>.yaml"
                " and config_override; column names from the upstream stage's output).",
    "ModuleNotFoundError": "Add the package to requirements.txt with a pinned version.",
    "ImportError": "Pin the package version in requirements.txt and import only names it provides.",
    "FileNotFoundError": "Read inputs with load_input/get_input_path and write outputs at get_output_path.",
    "NameError": "Define or import the name before use (the pre-run rules catch most of these).",
    "ZeroDivisionError": "Guard the division (empty batch or split?).",
    "ValueError": "Validate shapes and values before this call; compare with the input's schema contract.",
    "TypeError": "Check the argument types passed at this line.",
    "IndexError": "Check the index against the length (empty input?).",
    "OutOfMemoryError": "Lower the batch size or model size, or use a profile with more GPU memory.",
    "AttributeError": "Check the object's type at this line (None where an object was expected?).",
}


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse_ts(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


class FailurePattern(BaseModel):
    """A known way stages fail, with how to recognise it in code and how to prevent it."""

    id: str = Field(description="fp-xxxxxxxx")
    status: PatternStatus = Field(description="pending, approved, rejected or archived")
    severity: PatternSeverity = Field(description="critical/high (reviews block), medium (warn), low (note)")
    stage: str | None = Field(default=None, description="Stage the failure was first seen in")
    signature: str = Field(description="Exception type + normalised message + failing line (dedup key)")
    symptom: str = Field(description="What the failure looks like")
    root_cause: str = Field(default="", description="Why it happens")
    detection: Detection | None = Field(default=None, description="Rule that finds the failing code")
    prevention: str = Field(default="", description="How to avoid it")
    source_run_id: str | None = Field(default=None, description="Run it was learned from")
    workspace: str | None = Field(default=None, description="Workspace of that run")
    occurrence_count: int = Field(default=1, description="Failed runs with this signature")
    created_at: str = Field(description="When it was learned (UTC)")
    last_seen_at: str = Field(description="Last failed run with this signature (UTC)")
    learned_by: Literal["rules", "anthropic"] = Field(default="rules", description="Who wrote it")
    history: list[dict[str, Any]] = Field(default_factory=list, description="Sightings and curation")


class LibrarianAction(BaseModel):
    pattern_id: str = Field(description="Pattern the action is for")
    action: Literal["approve", "reject", "skip"] = Field(description="What the librarian proposes")
    confidence: Literal["high", "medium", "low"] = Field(description="How sure it is")
    reason: str = Field(description="Why")
    applied: bool = Field(default=False, description="True when dry_run was false and it was applied")


class LibrarianReport(BaseModel):
    dry_run: bool = Field(description="True: proposals only; nothing was changed")
    provider: Literal["rules", "anthropic"] = Field(description="Who reviewed")
    actions: list[LibrarianAction] = Field(default_factory=list, description="One per pending pattern")
    note: str | None = Field(default=None, description="E.g. why the AI librarian fell back to the rules")


class _AiPattern(BaseModel):
    model_config = ConfigDict(extra="ignore")

    symptom: str = Field(min_length=1, description="what the failure looks like, one sentence")
    root_cause: str = Field(min_length=1, description="why it happens")
    prevention: str = Field(min_length=1, description="how to avoid it in code")
    severity: Literal["critical", "high", "medium", "low"] = Field(description="how bad")
    detection: Detection | None = Field(default=None, description="regex over code lines, or ast_call/ast_import")


class _AiActions(BaseModel):
    model_config = ConfigDict(extra="ignore")

    actions: list[LibrarianAction] = Field(description="one entry per pending pattern")


_Docs = list[dict[str, Any]]
_PatternList = list[FailurePattern]
_Actions = list[LibrarianAction]
_Ids = list[str]


def rules_pattern(info: FailureInfo, stage: str | None) -> dict[str, Any]:
    """Symptom, root cause, prevention, severity and detection from the log alone."""
    where = f" at {info.file}:{info.line}" if info.file else ""
    message = info.message.strip().splitlines()[0][:300] if info.message.strip() else ""
    detection = None
    if info.source_line and len("".join(info.source_line.split())) >= MIN_DETECTABLE_LINE:
        detection = Detection(kind="regex", pattern=line_regex(info.source_line[:300]))
    return {
        "symptom": f"stage {stage or '?'} failed with {info.exc_type}{': ' + message if message else ''}",
        "root_cause": f"{info.exc_type} raised{where}" + (f" by `{info.source_line[:200]}`" if info.source_line else ""),
        "prevention": _PREVENTION.get(info.exc_type.rsplit(".", 1)[-1], "Fix the code at the failing line.")
                      + (f" (failing line {info.file}:{info.line})" if info.file else ""),
        "severity": "high" if detection is not None else "medium",
        "detection": detection,
    }


class Patterns:
    """``project.patterns``: the failure-pattern knowledge base."""

    def __init__(self, project: Project):
        self.project = project

    # ------------------------------------------------------------------ reads
    def _docs(self) -> _Docs:
        return self.project.store.table(TABLE).docs()

    def approved(self) -> _Docs:
        """Approved patterns as stored documents (what reviews check)."""
        return [d for d in self._docs() if d.get("status") == "approved"]

    def get(self, pattern_id: str) -> FailurePattern:
        pid = self._id(pattern_id)
        doc = self.project.store.table(TABLE).get_doc(pid)
        if doc is None:
            raise NotFound(f"failure pattern {pid} not found.",
                           fix="manage_patterns(action='list') lists the patterns and their ids.")
        return FailurePattern.model_validate(doc)

    def list(self, *, status: str | None = None, stage: str | None = None, severity: str | None = None,
             limit: int = 50, offset: int = 0) -> tuple[_PatternList, int]:
        """Patterns matching the filters, newest sighting first; returns (page, total)."""
        status = self._choice(status, STATUSES, "status")
        severity = self._choice(severity, SEVERITIES, "severity")
        if not 1 <= limit <= 500 or offset < 0:
            raise InvalidInput(f"limit must be 1..500 and offset ≥ 0, got limit={limit}, offset={offset}.",
                               fix="Use limit between 1 and 500 and a non-negative offset.")
        docs = [
            d for d in self._docs()
            if (status is None or d.get("status") == status)
            and (stage is None or d.get("stage") == stage)
            and (severity is None or d.get("severity") == severity)
        ]
        docs.sort(key=lambda d: str(d.get("last_seen_at", "")), reverse=True)
        return [FailurePattern.model_validate(d) for d in docs[offset: offset + limit]], len(docs)

    def for_run(self, run_id: str) -> _PatternList:
        """Patterns learned from, or seen again in, ``run_id``."""
        return [
            FailurePattern.model_validate(d) for d in self._docs()
            if d.get("source_run_id") == run_id or any(h.get("run_id") == run_id for h in d.get("history", []))
        ]

    # ------------------------------------------------------------------ curation
    def approve(self, pattern_id: str, reason: str | None = None) -> FailurePattern:
        return self._set_status(pattern_id, "approved", reason)

    def reject(self, pattern_id: str, reason: str | None) -> FailurePattern:
        if reason is None or not str(reason).strip():
            raise InvalidInput("rejecting a pattern needs a reason.",
                               fix=f"Pass reason='<why it is not a real failure pattern>' ({MIN_REASON}+ characters).")
        return self._set_status(pattern_id, "rejected", names.reason(reason, MIN_REASON))

    def archive(self, pattern_id: str, reason: str | None = None) -> FailurePattern:
        return self._set_status(pattern_id, "archived", reason)

    def _set_status(self, pattern_id: str, status: str, reason: str | None) -> FailurePattern:
        pid = self._id(pattern_id)
        with self.project.store.transaction() as tx:
            table = tx.table(TABLE)
            doc = table.require(pid, what="failure pattern",
                                fix="manage_patterns(action='list') lists the patterns and their ids.")
            if doc.get("status") == status:
                return FailurePattern.model_validate(doc)  # idempotent: nothing to record
            entry = {"ts": now_iso(), "action": status, "from": doc.get("status"), "source": self.project.source,
                     "reason": reason}
            new = table.patch(pid, {"status": status, "history": [*doc.get("history", []), entry][-MAX_HISTORY:]})
            tx.append_event("audit", {
                "ts": entry["ts"], "op": f"pattern_{status}", "source": self.project.source,
                "workspace": doc.get("workspace"), "slot": None, "reason": reason,
                "details": {"pattern_id": pid, "from": doc.get("status")},
            })
        return FailurePattern.model_validate(new)

    # ------------------------------------------------------------------ learning
    def learn_from_failure(
        self,
        *,
        run_id: str,
        workspace: str | None,
        stage: str,
        log_text: str | None = None,
        run_dir: Path | None = None,
        app_dir: Path | None = None,
    ) -> FailurePattern | None:
        """Propose (or bump) a pattern from a failed run's log; None when nothing could be learned.

        Needs ``svs.enabled`` and ``svs.auto_learn_failures``. ``log_text`` defaults to the tail
        of ``run_dir``'s logs; ``app_dir`` (default ``run_dir/app``) maps traceback paths to files.
        """
        svs = self.project.config.svs
        if not (svs.enabled and svs.auto_learn_failures):
            return None
        if app_dir is None and run_dir is not None:
            app_dir = Path(run_dir) / "app"
        if log_text is None:
            log_text = read_log_tail(Path(run_dir)) if run_dir is not None else ""
        info = parse_failure(log_text, app_dir)
        if info is None:
            return None
        signature = info.signature
        existing = self._by_signature(signature)
        if existing is not None:
            return self._bump(existing["id"], run_id)
        fields = rules_pattern(info, stage)
        learned_by = "rules"
        if svs.agent_provider == "anthropic":
            refined = self._ai_pattern(info, log_text, fields)
            if refined is not None:
                fields, learned_by = refined, "anthropic"
        return self._create(signature, fields, learned_by, run_id=run_id, workspace=workspace, stage=stage)

    def _by_signature(self, signature: str) -> dict[str, Any] | None:
        return next((d for d in self._docs() if d.get("signature") == signature), None)

    def _bump(self, pid: str, run_id: str) -> FailurePattern:
        with self.project.store.transaction() as tx:
            table = tx.table(TABLE)
            doc = table.require(pid, what="failure pattern")
            seen = now_iso()
            entry = {"ts": seen, "action": "seen", "run_id": run_id, "source": self.project.source}
            new = table.patch(pid, {
                "occurrence_count": int(doc.get("occurrence_count", 1)) + 1, "last_seen_at": seen,
                "history": [*doc.get("history", []), entry][-MAX_HISTORY:],
            })
        return FailurePattern.model_validate(new)

    def _create(self, signature: str, fields: dict[str, Any], learned_by: str, *, run_id: str,
                workspace: str | None, stage: str) -> FailurePattern | None:
        with self.project.store.transaction() as tx:
            table = tx.table(TABLE)
            twin = next((d for d in table.docs() if d.get("signature") == signature), None)
            if twin is not None:  # another process learned it meanwhile
                pid = twin["id"]
            else:
                hour_ago = datetime.now(UTC) - timedelta(hours=1)
                recent = sum(1 for d in table.docs() if (t := _parse_ts(d.get("created_at"))) and t > hour_ago)
                if recent >= MAX_NEW_PER_HOUR:
                    return None  # a crash loop must not flood the knowledge base
                pid = self._new_id(table.ids())
                ts = now_iso()
                detection = fields.get("detection")
                doc = FailurePattern(
                    id=pid, status="pending", severity=fields["severity"], stage=stage, signature=signature,
                    symptom=fields["symptom"], root_cause=fields["root_cause"],
                    detection=detection if isinstance(detection, Detection | None) else Detection.model_validate(detection),
                    prevention=fields["prevention"], source_run_id=run_id, workspace=workspace,
                    occurrence_count=1, created_at=ts, last_seen_at=ts, learned_by=learned_by,  # type: ignore[arg-type]
                    history=[{"ts": ts, "action": "learned", "run_id": run_id, "source": self.project.source}],
                )
                table.add(doc.model_dump(mode="json", exclude={"id"}), doc_id=pid)
                return doc
        return self._bump(pid, run_id)

    def _ai_pattern(self, info: FailureInfo, log_text: str, rules: dict[str, Any]) -> dict[str, Any] | None:
        svs = self.project.config.svs
        prompt = (
            "A machine-learning stage run failed. Describe the failure as a reusable pattern so later code"
            " reviews can catch it before it runs. Give a detection rule only if it is specific to the failing"
            " code (a regex over single code lines, or an ast_call/ast_import dotted name).\n\n"
            f"<signature>{info.signature}</signature>\n<failing_line file=\"{info.file}\" line=\"{info.line}\">"
            f"{info.source_line or ''}</failing_line>\n<rules_proposal>{rules['symptom']} | {rules['root_cause']}"
            f"</rules_proposal>\n<log_tail>{log_text[-20_000:]}</log_tail>"
        )
        try:
            parsed, _ = call_tool(
                svs, system="You curate a knowledge base of ML training failures.", prompt=prompt,
                tool_name="submit_pattern", tool_description="Submit the failure pattern.", answer=_AiPattern,
                timeout=float(svs.agent_timeout),
            )
        except ProviderFailure:
            return None
        assert isinstance(parsed, _AiPattern)
        out = parsed.model_dump()
        out["detection"] = parsed.detection if parsed.detection and parsed.detection.concrete else rules["detection"]
        return out

    # ------------------------------------------------------------------ librarian
    def review(self, *, dry_run: bool = True) -> LibrarianReport:
        """Propose approve/reject/skip for every pending pattern; apply them when ``dry_run`` is False."""
        pending = [FailurePattern.model_validate(d) for d in self._docs() if d.get("status") == "pending"]
        proposals = [self._rules_action(p) for p in pending]
        provider: Literal["rules", "anthropic"] = "rules"
        note = None
        svs = self.project.config.svs
        if pending and svs.agent_provider == "anthropic":
            try:
                proposals = self._ai_actions(pending, proposals)
                provider = "anthropic"
            except ProviderFailure as failure:
                note = failure_message("librarian", failure) + " The rules' proposals are shown instead."
        if not dry_run:
            for action in proposals:
                if action.action == "skip":
                    continue
                reason = f"librarian ({provider}): {action.reason}"
                if action.action == "approve":
                    self.approve(action.pattern_id, reason)
                else:
                    self.reject(action.pattern_id, reason if len(reason) >= MIN_REASON else reason + " (no detail)")
                action.applied = True
        return LibrarianReport(dry_run=dry_run, provider=provider, actions=proposals, note=note)

    @staticmethod
    def _rules_action(p: FailurePattern) -> LibrarianAction:
        exc_type = p.signature.split(":", 1)[0]
        if exc_type in _NOT_CODE_FAILURES:
            return LibrarianAction(pattern_id=p.id, action="reject", confidence="medium",
                                   reason=f"{exc_type} is an interruption, not a failure of the code.")
        if p.detection is None or not p.detection.concrete:
            return LibrarianAction(pattern_id=p.id, action="skip", confidence="medium",
                                   reason="no concrete detection rule, so reviews could not check it.")
        if p.occurrence_count < 2:
            return LibrarianAction(pattern_id=p.id, action="skip", confidence="low",
                                   reason="seen once; waiting for a recurrence before approving.")
        return LibrarianAction(pattern_id=p.id, action="approve", confidence="medium",
                               reason=f"seen {p.occurrence_count} times with a concrete detection rule"
                                      f" ({p.detection.describe()}).")

    def _ai_actions(self, pending: _PatternList, rules: _Actions) -> _Actions:
        svs = self.project.config.svs
        listing = "\n".join(
            f"- {p.id}: seen {p.occurrence_count}x, severity {p.severity}, symptom: {p.symptom[:300]}; root cause:"
            f" {p.root_cause[:300]}; detection: {p.detection.describe() if p.detection else 'none'};"
            f" rules propose {r.action} ({r.reason})" for p, r in zip(pending, rules, strict=True)
        )
        parsed, _ = call_tool(
            svs, system="You curate a knowledge base of ML failure patterns. Approve only patterns that are real,"
                        " recurring code failures with a specific detection rule; reject noise.",
            prompt=f"Pending patterns:\n{listing}\n\nReturn one action per pattern id.",
            tool_name="submit_actions", tool_description="Submit one action per pending pattern.",
            answer=_AiActions, timeout=float(svs.agent_timeout),
        )
        assert isinstance(parsed, _AiActions)
        by_id = {a.pattern_id: a for a in parsed.actions}
        return [by_id.get(r.pattern_id, r).model_copy(update={"applied": False}) for r in rules]

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def _id(pattern_id: Any) -> str:
        if not isinstance(pattern_id, str) or not names.PATTERN_RE.fullmatch(pattern_id):
            raise InvalidInput(f"{pattern_id!r} is not a failure pattern id.",
                               fix="Pattern ids look like fp-1a2b3c4d; manage_patterns(action='list') lists them.")
        return pattern_id

    @staticmethod
    def _choice(value: str | None, choices: tuple[str, ...], what: str) -> str | None:
        if value is None:
            return None
        lowered = str(value).strip().lower()
        if lowered not in choices:
            raise InvalidInput(f"unknown {what} {value!r}.{names.did_you_mean(lowered, choices)}",
                               fix=f"Use one of: {', '.join(choices)}.")
        return lowered

    @staticmethod
    def _new_id(taken: _Ids) -> str:
        used = set(taken)
        while True:
            pid = f"fp-{secrets.token_hex(4)}"
            if pid not in used:
                return pid

