"""Failure patterns: learned from a real failing stage process, de-duplicated, curated, and checked by
later reviews."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from goldfish.errors import InvalidInput, NotFound
from goldfish.svs.failure_log import normalize_message, parse_failure
from goldfish.svs.review import pre_run_review
from tests.sdk_helpers import REPO
from tests.svs_helpers import fake_anthropic, make_project, write_app

PIPELINE = """\
stages:
  - name: prepare
    outputs:
      features: {type: npy, schema: null}
"""
FAILING = """\
import numpy as np
from goldfish.io import save_output


def normalise(items):
    scale = 1.0 / len(items)
    return [x * scale for x in items]


def main():
    values = normalise([])
    save_output("features", np.array(values, dtype=np.float32))


if __name__ == "__main__":
    main()
"""


def run_failing_stage(tmp_path: Path, name: str, code: str = FAILING) -> Path:
    """Run the stage module in a real subprocess from its app dir, stderr into logs/stdout.log."""
    run_dir = tmp_path / name
    write_app(run_dir / "app", PIPELINE, {"prepare": code})
    (run_dir / "logs").mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOLDFISH_")}
    with open(run_dir / "logs" / "stdout.log", "wb") as log:
        proc = subprocess.run([sys.executable, str(run_dir / "app" / "modules" / "prepare.py")], cwd=run_dir / "app",
                              stdout=log, stderr=subprocess.STDOUT, env={**env, "PYTHONPATH": str(REPO)}, timeout=60)
    assert proc.returncode == 1
    return run_dir


def learning_project(tmp_path: Path, **svs: Any) -> Any:
    return make_project(tmp_path, svs={"auto_learn_failures": True, **svs})


def test_failure_is_learned_approved_and_then_blocks(tmp_path: Path) -> None:
    project = learning_project(tmp_path)
    run_dir = run_failing_stage(tmp_path, "stage-00000001")
    pattern = project.patterns.learn_from_failure(run_id="stage-00000001", workspace="w", stage="prepare",
                                                  run_dir=run_dir)
    assert pattern is not None and pattern.status == "pending" and pattern.id.startswith("fp-")
    assert pattern.signature == "ZeroDivisionError: float division by zero @ scale=1.0/len(items)"
    assert "modules/prepare.py:6" in pattern.root_cause and pattern.severity == "high"
    assert pattern.detection is not None and pattern.detection.kind == "regex"

    # A later stage (another module, other spacing) with the same line: pending patterns are not checked...
    new_code = FAILING.replace("scale = 1.0 / len(items)", "scale = 1.0/len( items )")
    app = tmp_path / "next"
    pipeline = write_app(app, PIPELINE, {"prepare": new_code})
    before = pre_run_review(project, app_dir=app, pipeline=pipeline, stage="prepare", stage_config={})
    assert before.verdict == "approved"

    # ...approved ones are, and block.
    approved = project.patterns.approve(pattern.id, "real bug: empty input reaches normalise()")
    assert approved.status == "approved" and approved.history[-1]["action"] == "approved"
    after = pre_run_review(project, app_dir=app, pipeline=pipeline, stage="prepare", stage_config={})
    assert after.verdict == "blocked"
    [hit] = after.blocking_findings()
    assert hit.source == "pattern" and hit.check == f"failure_pattern:{pattern.id}"
    assert (hit.file, hit.line) == ("modules/prepare.py", 6)
    assert "Guard the division" in (hit.fix or "")
    audit = project.store.tail_events("audit", 5, lambda e: e.get("op") == "pattern_approved")
    assert audit and audit[0]["details"]["pattern_id"] == pattern.id and audit[0]["source"] == "test"


def test_same_failure_is_deduplicated(tmp_path: Path) -> None:
    project = learning_project(tmp_path)
    first = project.patterns.learn_from_failure(run_id="stage-00000001", workspace="w", stage="prepare",
                                                run_dir=run_failing_stage(tmp_path, "a"))
    second = project.patterns.learn_from_failure(run_id="stage-00000002", workspace="w", stage="prepare",
                                                 run_dir=run_failing_stage(tmp_path, "b"))
    assert first is not None and second is not None and second.id == first.id
    assert second.occurrence_count == 2 and second.last_seen_at >= first.last_seen_at
    assert [h["action"] for h in second.history] == ["learned", "seen"]
    assert [p.id for p in project.patterns.for_run("stage-00000002")] == [first.id]
    assert project.patterns.list()[1] == 1


def test_learning_is_off_by_default_and_needs_a_signature(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    run_dir = run_failing_stage(tmp_path, "a")
    assert project.patterns.learn_from_failure(run_id="stage-00000001", workspace="w", stage="prepare",
                                               run_dir=run_dir) is None
    learning = learning_project(tmp_path / "other")
    assert learning.patterns.learn_from_failure(run_id="stage-00000001", workspace="w", stage="prepare",
                                                log_text="all good\nexit\n") is None
    assert learning.patterns.list()[1] == 0


def test_new_patterns_are_rate_limited(tmp_path: Path) -> None:
    project = learning_project(tmp_path)
    made = [
        project.patterns.learn_from_failure(
            run_id=f"stage-0000000{i % 10}", workspace="w", stage="prepare",
            log_text=f"Traceback (most recent call last):\n  File \"/app/modules/prepare.py\", line {i + 1}, in main\n"
                     f"    value_{i} = compute_{i}(data)\nValueError: bad\n")
        for i in range(12)
    ]
    assert sum(p is not None for p in made) == 10 and made[-1] is None


# --------------------------------------------------------------------------- curation
def _seed(project: Any, **fields: Any) -> str:
    doc = {"status": "pending", "severity": "medium", "stage": "train", "signature": "ValueError: x",
           "symptom": "s", "root_cause": "r", "detection": {"kind": "regex", "pattern": r"np\.load\(.*allow_pickle"},
           "prevention": "p", "source_run_id": "stage-00000001", "workspace": "w", "occurrence_count": 1,
           "created_at": "2026-01-01T00:00:00.000000Z", "last_seen_at": "2026-01-01T00:00:00.000000Z",
           "history": [], **fields}
    with project.store.transaction() as tx:
        return tx.table("patterns").add(doc, doc_id=fields.pop("id", None) or f"fp-{len(tx.table('patterns').ids()):08x}")


def test_reject_needs_a_reason_and_bad_input_changes_nothing(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    pid = _seed(project)
    before = project.store.table("patterns").get_doc(pid)
    with pytest.raises(InvalidInput, match="needs a reason"):
        project.patterns.reject(pid, None)
    with pytest.raises(InvalidInput, match="too short"):
        project.patterns.reject(pid, "nope")
    with pytest.raises(InvalidInput, match="not a failure pattern id"):
        project.patterns.approve("fp-xyz")
    with pytest.raises(NotFound, match="manage_patterns"):
        project.patterns.approve("fp-ffffffff")
    assert project.store.table("patterns").get_doc(pid) == before
    rejected = project.patterns.reject(pid, "a one-off caused by a corrupt download")
    assert rejected.status == "rejected" and rejected.history[-1]["reason"] == "a one-off caused by a corrupt download"
    assert project.patterns.archive(pid).status == "archived"
    assert project.patterns.archive(pid).history == project.patterns.get(pid).history  # idempotent


def test_list_filters_and_pages(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    for i in range(5):
        _seed(project, severity="high" if i % 2 else "low", stage="train" if i < 3 else "eval",
              last_seen_at=f"2026-01-0{i + 1}T00:00:00.000000Z", signature=f"E{i}")
    page, total = project.patterns.list(severity="HIGH")
    assert total == 2 and all(p.severity == "high" for p in page)
    page, total = project.patterns.list(stage="train", limit=2, offset=1)
    assert total == 3 and [p.signature for p in page] == ["E1", "E0"]
    with pytest.raises(InvalidInput, match='Did you mean "approved"'):
        project.patterns.list(status="aproved")
    with pytest.raises(InvalidInput, match="limit"):
        project.patterns.list(limit=0)


def test_rules_librarian(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    ready = _seed(project, occurrence_count=3)
    once = _seed(project, signature="E1")
    vague = _seed(project, signature="E2", occurrence_count=4, detection=None)
    noise = _seed(project, signature="KeyboardInterrupt", occurrence_count=5)
    report = project.patterns.review()
    actions = {a.pattern_id: a.action for a in report.actions}
    assert report.dry_run and report.provider == "rules"
    assert actions == {ready: "approve", once: "skip", vague: "skip", noise: "reject"}
    assert all(p.status == "pending" for p in project.patterns.list()[0])  # dry run changed nothing
    applied = project.patterns.review(dry_run=False)
    assert all(a.applied == (a.action != "skip") for a in applied.actions)
    assert project.patterns.get(ready).status == "approved" and project.patterns.get(noise).status == "rejected"
    assert project.patterns.get(once).status == "pending"


def test_ai_librarian_and_its_fallback(tmp_path: Path) -> None:
    with fake_anthropic() as fake:
        project = make_project(tmp_path, svs={"agent_provider": "anthropic", "anthropic_base_url": fake.url,
                                              "anthropic_api_key": "sk-test"})
        pid = _seed(project, occurrence_count=1)
        fake.reply_tool("submit_actions", {"actions": [
            {"pattern_id": pid, "action": "approve", "confidence": "high", "reason": "clear recurring bug"}]})
        report = project.patterns.review()
        assert report.provider == "anthropic" and report.actions[0].action == "approve"
        assert pid in fake.requests[0]["body"]["messages"][0]["content"]
        fake.reply_text("no tool")
        fallback = project.patterns.review()
    assert fallback.provider == "rules" and fallback.actions[0].action == "skip"
    assert fallback.note and "malformed" in fallback.note


def test_ai_learning_refines_the_pattern(tmp_path: Path) -> None:
    with fake_anthropic() as fake:
        fake.reply_tool("submit_pattern", {
            "symptom": "normalising an empty list divides by zero", "root_cause": "no empty-input guard",
            "prevention": "return early when items is empty", "severity": "critical",
            "detection": {"kind": "regex", "pattern": r"1\.0\s*/\s*len\("}})
        project = learning_project(tmp_path, agent_provider="anthropic", anthropic_base_url=fake.url,
                                   anthropic_api_key="sk-test")
        pattern = project.patterns.learn_from_failure(run_id="stage-00000001", workspace="w", stage="prepare",
                                                      run_dir=run_failing_stage(tmp_path, "a"))
    assert pattern is not None and pattern.learned_by == "anthropic" and pattern.severity == "critical"
    assert pattern.detection is not None and pattern.detection.pattern == r"1\.0\s*/\s*len\("
    assert "ZeroDivisionError" in fake.requests[0]["body"]["messages"][0]["content"]


# --------------------------------------------------------------------------- log parsing
def test_parse_failure_takes_the_last_user_frame() -> None:
    log = (
        "[2026] INFO: start\nTraceback (most recent call last):\n"
        '  File "/run/app/modules/train.py", line 12, in <module>\n    main()\n'
        '  File "/run/app/modules/train.py", line 9, in main\n    x = np.load(path)\n'
        '  File "/venv/lib/python3.11/site-packages/numpy/lib/npyio.py", line 456, in load\n    raise ValueError(msg)\n'
        "ValueError: Cannot load file containing pickled data when allow_pickle=False\n"
    )
    info = parse_failure(log)
    assert info is not None and (info.exc_type, info.file, info.line) == ("ValueError", "modules/train.py", 9)
    assert info.source_line == "x = np.load(path)"


def test_parse_failure_chained_panic_and_oom() -> None:
    chained = ("Traceback (most recent call last):\n  File \"/app/modules/a.py\", line 1, in f\n    d['k']\n"
               "KeyError: 'k'\n\nDuring handling of the above exception, another exception occurred:\n\n"
               "Traceback (most recent call last):\n  File \"/app/modules/a.py\", line 3, in f\n    raise RuntimeError('x')\n"
               "RuntimeError: wrapped 'k' at 0x7f00ab12\n")
    info = parse_failure(chained)
    assert info is not None and info.exc_type == "RuntimeError" and info.line == 3
    assert info.signature == "RuntimeError: wrapped <str> at <hex> @ raiseRuntimeError('x')"
    panic = parse_failure("thread 'main' panicked at src/main.rs:10:5:\nindex out of bounds: the len is 3\n")
    assert panic is not None and (panic.exc_type, panic.file, panic.line) == ("panic", "src/main.rs", 10)
    oom = parse_failure("step 1\nKilled\n")
    assert oom is not None and oom.exc_type == "Killed" and oom.source_line is None


def test_normalize_message() -> None:
    assert normalize_message("shape (32, 768) vs (32, 512) in /data/x/y.npy for stage-1a2b3c4d") == \
        "shape (<n>, <n>) vs (<n>, <n>) in <path> for <id>"
    assert normalize_message("KeyError 'lr_rate' at 0xdeadbeef") == "KeyError <str> at <hex>"
