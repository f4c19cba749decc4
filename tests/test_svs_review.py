"""pre_run_review(): provider choice, gates, skip_review, and the anthropic provider through the REAL
anthropic client against a loopback fake Messages API."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from goldfish.svs.review import pre_run_review
from tests.svs_helpers import TRAIN_PIPELINE, fake_anthropic, make_project, write_app
from tests.test_svs_rules import GOOD_CONFIG, GOOD_TRAIN

UNDEFINED = GOOD_TRAIN.replace("heartbeat(f\"epoch {epoch}\")", "heartbeat(f\"epoch {epch}\")")
MISSPELLED = GOOD_TRAIN.replace('load_input("features")', 'load_input("feature")')


def _review(tmp_path: Path, code: str, project: Any, **kw: Any) -> Any:
    app = tmp_path / "app"
    pipeline = write_app(app, TRAIN_PIPELINE, {"train": code})
    kw.setdefault("stage_config", GOOD_CONFIG)
    return pre_run_review(project, app_dir=app, pipeline=pipeline, stage="train", **kw)


def test_rules_block_undefined_name_and_misspelled_signal(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    result = _review(tmp_path, UNDEFINED, project)
    assert result.verdict == "blocked" and result.provider == "rules" and not result.skipped
    assert [f.check for f in result.blocking_findings()] == ["undefined_name"]
    assert "epch" in result.block_message() and "Fix:" in result.block_message()

    result = _review(tmp_path, MISSPELLED, project)
    assert result.verdict == "blocked"
    only = result.blocking_findings()[0]
    assert only.check == "unknown_signal" and "load_input('features')" in (only.fix or "")


def test_skip_review_bypasses_and_records(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    result = _review(tmp_path, UNDEFINED, project, skip_review=True)
    assert result.verdict == "approved" and result.skipped
    assert "skip_review=True" in (result.skip_reason or "") and result.findings == []


@pytest.mark.parametrize("settings, reason", [
    ({"pre_run_review": {"enabled": False}}, "pre_run_review.enabled is false"),
    ({"svs": {"enabled": False}}, "svs.enabled is false"),
])
def test_switched_off_review_is_skipped(tmp_path: Path, settings: dict[str, Any], reason: str) -> None:
    project = make_project(tmp_path, **settings)
    result = _review(tmp_path, UNDEFINED, project)
    assert result.skipped and result.verdict == "approved" and reason in (result.skip_reason or "")


def test_null_provider_approves_and_test_mode_reports(tmp_path: Path) -> None:
    project = make_project(tmp_path, svs={"agent_provider": "null", "test_mode": True})
    result = _review(tmp_path, UNDEFINED, project)
    assert result.verdict == "approved" and result.provider == "null"
    assert [f.check for f in result.findings] == ["test_mode"]


def test_good_code_is_approved(tmp_path: Path) -> None:
    result = _review(tmp_path, GOOD_TRAIN, make_project(tmp_path))
    assert result.verdict == "approved" and result.findings == [] and result.text == "No issues found."


# --------------------------------------------------------------------------- anthropic provider
def _key(request: dict[str, Any]) -> str | None:
    headers = {k.lower(): v for k, v in request["headers"].items()}
    return headers.get("x-api-key") or headers.get("authorization", "").removeprefix("Bearer ") or None


def _ai_project(tmp_path: Path, url: str, **svs: Any) -> Any:
    return make_project(tmp_path, svs={"agent_provider": "anthropic", "anthropic_base_url": url,
                                       "anthropic_api_key": "sk-test-key", **svs},
                        pre_run_review={"timeout_seconds": 1})


def test_anthropic_approve(tmp_path: Path) -> None:
    with fake_anthropic() as fake:
        fake.reply_tool("submit_review", {"verdict": "approved", "findings": [], "summary": "Looks fine."})
        project = _ai_project(tmp_path, fake.url)
        result = _review(tmp_path, GOOD_TRAIN, project, diff="--- a/modules/train.py\n+++ b/...\n+lr = 0.2",
                         overrides={"config_override": {"lr": 0.2}}, reason={"description": "try a higher lr"},
                         inputs={"features": {"kind": "stage", "run_id": "stage-0000aaaa"}}, workspace="w")
    assert result.verdict == "approved" and result.provider == "anthropic" and result.model == "claude-sonnet-4-6"
    assert "Looks fine." in result.text
    [request] = fake.requests
    assert request["path"] == "/v1/messages" and _key(request) == "sk-test-key"
    body = request["body"]
    assert body["tool_choice"] == {"type": "tool", "name": "submit_review"}
    assert body["tools"][0]["input_schema"]["required"] == ["verdict"]
    prompt = body["messages"][0]["content"]
    for text in ("config_override=", "\"lr\": 0.2", "+lr = 0.2",
                 "try a higher lr", "stage-0000aaaa", 'path="modules/train.py"', "def train_step"):
        assert text in prompt, text


def test_anthropic_block_and_rules_findings_are_passed(tmp_path: Path) -> None:
    with fake_anthropic() as fake:
        fake.reply_tool("submit_review", {
            "verdict": "blocked", "summary": "Label leakage.",
            "findings": [{"severity": "error", "confidence": "high", "file": "modules/train.py", "line": 17,
                          "message": "validation data is used for training", "fix": "split first",
                          "check": "data_leak"}],
        })
        project = _ai_project(tmp_path, fake.url)
        result = _review(tmp_path, GOOD_TRAIN, project)
    assert result.verdict == "blocked"
    [ai] = [f for f in result.findings if f.source == "anthropic"]
    assert (ai.check, ai.file, ai.line, ai.fix) == ("data_leak", "modules/train.py", 17, "split first")


def test_anthropic_verdict_follows_the_rule_not_the_word(tmp_path: Path) -> None:
    with fake_anthropic() as fake:
        fake.reply_tool("submit_review", {"verdict": "blocked", "summary": "unsure", "findings": [
            {"severity": "error", "confidence": "medium", "message": "this might break"}]})
        result = _review(tmp_path, GOOD_TRAIN, _ai_project(tmp_path, fake.url))
    assert result.verdict == "warned"  # only high-confidence errors block


def test_anthropic_sees_rules_findings_and_patterns(tmp_path: Path) -> None:
    with fake_anthropic() as fake:
        fake.reply_tool("submit_review", {"verdict": "approved", "findings": [], "summary": "ok"})
        project = _ai_project(tmp_path, fake.url)
        with project.store.transaction() as tx:
            tx.table("patterns").add({"status": "approved", "severity": "low", "signature": "ZeroDivisionError: x",
                                      "symptom": "empty batch division", "detection": None}, doc_id="fp-00000001")
        result = _review(tmp_path, UNDEFINED, project)
    prompt = fake.requests[0]["body"]["messages"][0]["content"]
    assert "undefined_name" in prompt and "epch" in prompt and "fp-00000001" in prompt
    assert result.verdict == "blocked"  # the rules' error still counts


@pytest.mark.parametrize("code", [GOOD_TRAIN, UNDEFINED], ids=["good", "undefined"])
def test_anthropic_malformed_answer_fails_open(tmp_path: Path, code: str) -> None:
    with fake_anthropic() as fake:
        fake.reply_text("I think it's fine")
        result = _review(tmp_path, code, _ai_project(tmp_path, fake.url))
    [note] = [f for f in result.findings if f.source == "anthropic"]
    assert note.check == "provider_malformed" and note.severity == "warning"
    assert "malformed" in note.message and "fail-open" in note.message
    assert result.verdict == ("warned" if code is GOOD_TRAIN else "blocked")


def test_anthropic_invalid_tool_arguments_are_malformed(tmp_path: Path) -> None:
    with fake_anthropic() as fake:
        fake.reply_tool("submit_review", {"verdict": "maybe", "findings": "none"})
        result = _review(tmp_path, GOOD_TRAIN, _ai_project(tmp_path, fake.url))
    assert [f.check for f in result.findings] == ["provider_malformed"] and "verdict" in result.findings[0].message


def test_anthropic_timeout_fails_open(tmp_path: Path) -> None:
    with fake_anthropic() as fake:
        fake.reply_sleep(3.0)
        result = _review(tmp_path, GOOD_TRAIN, _ai_project(tmp_path, fake.url))
    assert result.verdict == "warned"
    assert [f.check for f in result.findings] == ["provider_timeout"]
    assert "timed out" in result.findings[0].message and result.duration_ms < 2900


def test_anthropic_without_key_fails_open_without_calling(tmp_path: Path) -> None:
    with fake_anthropic() as fake:
        project = make_project(tmp_path, svs={"agent_provider": "anthropic", "anthropic_base_url": fake.url})
        result = _review(tmp_path, GOOD_TRAIN, project)
    assert fake.requests == []
    assert [f.check for f in result.findings] == ["provider_unavailable"]
    assert "ANTHROPIC_API_KEY" in result.findings[0].message


def test_anthropic_api_error_uses_fallback_model(tmp_path: Path) -> None:
    with fake_anthropic() as fake:
        fake.reply_status(529)
        fake.reply_tool("submit_review", {"verdict": "approved", "findings": [], "summary": "ok"})
        result = _review(tmp_path, GOOD_TRAIN, _ai_project(tmp_path, fake.url, agent_fallback_model="claude-haiku-x"))
    assert [r["body"]["model"] for r in fake.requests] == ["claude-sonnet-4-6", "claude-haiku-x"]
    assert result.verdict == "approved" and result.model == "claude-haiku-x"


def test_api_key_from_environment_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-from-env")
    with fake_anthropic() as fake:
        fake.reply_tool("submit_review", {"verdict": "approved", "findings": [], "summary": "ok"})
        _review(tmp_path, GOOD_TRAIN, _ai_project(tmp_path, fake.url))
    assert _key(fake.requests[0]) == "sk-from-env"


def test_ai_pre_run_disabled_keeps_rules_only(tmp_path: Path) -> None:
    with fake_anthropic() as fake:
        result = _review(tmp_path, GOOD_TRAIN, _ai_project(tmp_path, fake.url, ai_pre_run_enabled=False))
    assert fake.requests == [] and result.provider == "rules" and result.verdict == "approved"
