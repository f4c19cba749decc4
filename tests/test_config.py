"""goldfish.yaml: models, loader errors (path, line, fix), template round trip and docs drift."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from goldfish.config import (
    GoldfishConfig,
    config_reference_markdown,
    default_config_yaml,
    load_config,
    parse_config,
)
from goldfish.config._render import section_model
from goldfish.errors import ConfigError

REPO = Path(__file__).resolve().parent.parent
BASE = "project_name: demo\ndev_repo_path: demo-dev\n"


def cfg(extra: str = "") -> GoldfishConfig:
    return parse_config(BASE + textwrap.dedent(extra))


def fail(text: str, *, base: bool = True) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse_config((BASE if base else "") + textwrap.dedent(text))
    return info.value


def only(err: ConfigError) -> dict[str, Any]:
    errors = err.details["errors"]
    assert len(errors) == 1, errors
    return errors[0]


def by_path(err: ConfigError, path: str) -> dict[str, Any]:
    for entry in err.details["errors"]:
        if entry["path"] == path:
            return entry
    raise AssertionError(f"no error for {path}: {err.details['errors']}")


# Defaults ----------------------------------------------------------------------------------------


def test_minimal_file_gives_documented_defaults() -> None:
    c = cfg()
    assert (c.project_name, c.dev_repo_path, c.workspaces_dir) == ("demo", "demo-dev", "workspaces")
    assert c.slots == ["w1", "w2", "w3"]
    assert (c.state_md.path, c.state_md.max_recent_actions, c.audit.min_reason_length) == ("STATE.md", 15, 15)
    d = c.defaults
    assert (d.timeout_seconds, d.log_sync_interval, d.capacity_wait_seconds) == (3600, 10, 600)
    assert (d.launch_timeout_seconds, d.launching_grace_seconds) == (2700, 600)
    j = c.jobs
    assert (j.backend, j.max_parallel_stages, j.runner_lease_seconds, j.heartbeat_grace_seconds) == (
        "local", 2, 30, 120)
    assert (c.workspace.max_file_mb, c.workspace.diff_max_chars) == (10.0, 20000)
    assert c.gcs is None and c.gce is None
    assert (c.storage.backend, c.storage.local.root) == ("local", ".goldfish/objects")
    assert c.local.memory_limit_mb is None and c.local.cpu_limit is None
    assert (c.local.stop_grace_seconds, c.local.simulate_preemption_after_seconds) == (10, None)
    assert (c.pre_run_review.enabled, c.pre_run_review.timeout_seconds, c.pre_run_review.max_turns) == (True, 60, 3)
    s = c.svs
    assert (s.enabled, s.test_mode, s.stats_enabled, s.domain) == (True, False, True, "default")
    assert (s.default_policy, s.default_enforcement) == ("warn", "warning")
    assert (s.ai_pre_run_enabled, s.ai_post_run_enabled, s.ai_during_run_enabled) == (True, True, True)
    assert (s.ai_during_run_interval_seconds, s.ai_during_run_auto_stop, s.auto_learn_failures) == (300, False, False)
    assert s.ai_during_run_log_filters == [".*"]
    assert (s.ai_during_run_log_max_lines, s.ai_during_run_log_max_bytes) == (200, 16384)
    assert (s.ai_during_run_log_file_max_bytes, s.ai_during_run_summary_max_chars) == (10_000_000, 1200)
    assert (s.agent_provider, s.agent_model, s.agent_fallback_model) == ("rules", "claude-sonnet-4-6", None)
    assert (s.agent_timeout, s.agent_max_turns, s.rate_limit_per_hour) == (60, 3, 60)
    assert (c.metrics.backend, c.metrics.wandb.project) == ("jsonl", None)
    k = c.docker
    assert (k.base_images.cpu, k.base_images.gpu) == ("goldfish-base-cpu", "goldfish-base-gpu")
    assert (k.extra_packages, k.network, k.memory_limit_mb, k.cpus, k.pids_limit) == ({}, "none", 4096, 2.0, 256)
    assert (k.cloud_build.machine_type, k.cloud_build.timeout_minutes, k.cloud_build.disk_size_gb) == (
        "E2_HIGHCPU_32", 60, 200)
    assert c.invariants == []
    assert c == GoldfishConfig(project_name="demo", dev_repo_path="demo-dev")


def test_empty_section_means_its_defaults() -> None:
    assert cfg("svs:\ndocker:\n  cloud_build:\nstorage:\n  local:\n") == cfg()
    assert cfg("gce:\n").gce is None


def test_config_is_read_only() -> None:
    c = cfg()
    with pytest.raises(ValidationError):
        c.jobs.backend = "gce"  # type: ignore[misc]


def test_values_are_read() -> None:
    c = cfg("""
        slots: [alpha, beta-2]
        jobs: {backend: docker, max_parallel_stages: 8}
        svs:
          test_mode: true
          ai_during_run_interval_seconds: 5
          agent_provider: "null"
          ai_during_run_log_filters: ['^loss', 'nan']
        docker:
          extra_packages: {gpu: [triton], base: [lightgbm]}
        gcs: {bucket: my-bucket}
        storage: {backend: gcs}
        gce:
          project: my-proj
          profiles: {h100-spot: {zones: [us-central1-a]}}
          warm_pool: {enabled: true, profiles: [h100-spot]}
        """)
    assert c.slots == ["alpha", "beta-2"] and c.jobs.backend == "docker" and c.jobs.max_parallel_stages == 8
    assert c.svs.ai_during_run_interval_seconds == 5 and c.svs.agent_provider == "null"
    assert c.docker.extra_packages == {"gpu": ["triton"], "base": ["lightgbm"]}
    assert c.gcs is not None and c.gcs.bucket == "my-bucket" and c.storage.backend == "gcs"
    assert c.gce is not None and c.gce.project_id == "my-proj"
    assert c.gce.profile_overrides == {"h100-spot": {"zones": ["us-central1-a"]}}
    assert c.gce.warm_pool.enabled and c.gce.warm_pool.profiles == ["h100-spot"]
    assert c.gce.effective_artifact_registry == "us-docker.pkg.dev/my-proj/goldfish"


def test_yaml_anchors_and_merge_keys_work_and_keep_lines() -> None:
    c = cfg("""
        local: &limits {stop_grace_seconds: 3}
        svs:
          <<: {stats_enabled: false, test_mode: true}
          test_mode: false
        invariants: [&rule keep the split, *rule]
        """)
    assert c.svs.stats_enabled is False and c.svs.test_mode is False and c.local.stop_grace_seconds == 3
    assert c.invariants == ["keep the split", "keep the split"]
    entry = only(fail("""
        svs:
          enabled: true
          <<:
            stats_enabld: false
        """))
    assert (entry["path"], entry["line"]) == ("svs.stats_enabld", 7)
    assert 'Did you mean "stats_enabled"?' in entry["message"]


# Slots -------------------------------------------------------------------------------------------


def test_slots_number_expands() -> None:
    assert cfg("slots: 5").slots == ["w1", "w2", "w3", "w4", "w5"]
    assert cfg("slots: 1").slots == ["w1"]


@pytest.mark.parametrize(
    ("value", "expect"),
    [
        ("true", "expected a list of names or a number, got true"),
        ("0", "must be between 1 and 100, got 0"),
        ("-2", "must be between 1 and 100"),
        ("101", "must be between 1 and 100"),
        ("[]", "must not be empty"),
        ("w1", "expected a list"),
        ("2.5", "expected a list"),
    ],
)
def test_bad_slots(value: str, expect: str) -> None:
    entry = only(fail(f"slots: {value}\n"))
    assert entry["path"] == "slots" and entry["line"] == 3
    assert expect in entry["message"]


def test_slot_names_follow_workspace_rules_and_are_unique() -> None:
    err = fail("slots:\n  - w1\n  - ../etc\n  - w2\n  - 7\n")
    bad = by_path(err, "slots[1]")
    assert bad["line"] == 5 and "Invalid workspace name '../etc'" in bad["message"] and "Fix:" in bad["message"]
    assert by_path(err, "slots[3]")["message"].startswith("expected a string")
    dup = only(fail("slots:\n  - w1\n  - w2\n  - w1\n"))
    assert (dup["path"], dup["line"]) == ("slots[2]", 6) and "listed twice" in dup["message"]


# Unknown keys ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "path", "line", "hint"),
    [
        ("projct_nme: x\n", "projct_nme", 3, 'Did you mean "project_name"?'),
        ("svs:\n  ai_durng_run_auto_stop: true\n", "svs.ai_durng_run_auto_stop", 4,
         'Did you mean "ai_during_run_auto_stop"?'),
        ("gce:\n  project_id: p\n  warm_pool:\n    max_instanes: 3\n", "gce.warm_pool.max_instanes", 6,
         'Did you mean "max_instances"?'),
        ("storage:\n  local:\n    rooot: /data\n", "storage.local.rooot", 5, 'Did you mean "root"?'),
        ("defaults:\n  backend: gce\n", "defaults.backend", 4, "use jobs.backend"),
        ("gce:\n  project_id: p\n  gcs_bucket: b\n", "gce.gcs_bucket", 5, "use gcs.bucket"),
        ("jobs:\n  gce:\n    project_id: p\n", "jobs.gce", 4, "move it to the top-level gce section"),
        ("extra_packages: [torch]\n", "extra_packages", 3, "use docker.extra_packages"),
        ("docker:\n  fa3_wheel_gcs: gs://b/w.whl\n", "docker.fa3_wheel_gcs", 4, "docker.cloud_build.fa3_wheel_gcs"),
        ("pre_run_review:\n  model: opus\n", "pre_run_review.model", 4, "use svs.agent_model"),
        ("gce:\n  project_id: p\n  gpu_prefrence: [h100]\n", "gce.gpu_prefrence", 5, "gpu_preference"),
    ],
)
def test_unknown_key_names_file_path_line_and_fix(text: str, path: str, line: int, hint: str) -> None:
    err = fail(text)
    entry = only(err)
    assert (entry["path"], entry["line"]) == (path, line)
    assert hint in entry["message"]
    assert f"goldfish.yaml:{line}: {path}:" in err.message
    assert hint in str(err)


def test_unknown_key_without_close_match_lists_valid_keys() -> None:
    entry = only(fail("audit:\n  zzz: 1\n"))
    assert entry["path"] == "audit.zzz" and "Valid keys here: min_reason_length" in entry["message"]


def test_unknown_key_in_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "goldfish.yaml"
    path.write_text(BASE + "svs:\n  enabled: true\n  ai_durng_run_auto_stop: true\n")
    before = path.read_bytes()
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert f"{path}:5: svs.ai_durng_run_auto_stop: unknown key" in info.value.message
    assert info.value.details["file"] == str(path)
    assert path.read_bytes() == before


def test_alias_and_name_both_set() -> None:
    entry = only(fail("gce:\n  project: a\n  project_id: b\n"))
    assert entry["path"] == "gce.project_id" and "both set" in entry["message"]


def _model_paths(model: type[BaseModel] = GoldfishConfig, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = [path]
    for name, field in model.model_fields.items():
        sub = section_model(field.annotation)
        if sub is not None:
            out += _model_paths(sub, (*path, name))
    return out


def _model_at(path: tuple[str, ...]) -> type[BaseModel]:
    model: type[BaseModel] = GoldfishConfig
    for part in path:
        sub = section_model(model.model_fields[part].annotation)
        assert sub is not None
        model = sub
    return model


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    section=st.sampled_from(_model_paths()),
    key=st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=24),
)
def test_any_key_not_in_the_model_is_rejected_with_its_path(section: tuple[str, ...], key: str) -> None:
    model = _model_at(section)
    known = set(model.model_fields) | {f.alias for f in model.model_fields.values() if f.alias}
    if key in known or key == "<<":
        return
    data: dict[str, Any] = {"project_name": "demo", "dev_repo_path": "demo-dev",
                            "gcs": {"bucket": "bkt"}, "gce": {"project_id": "p"}}
    node = data
    for part in section:
        node = node.setdefault(part, {})
    node[key] = 1
    with pytest.raises(ConfigError) as info:
        parse_config(yaml.safe_dump(data, allow_unicode=True))
    expected = ".".join((*section, key))
    entry = by_path(info.value, expected)
    assert isinstance(entry["line"], int) and entry["line"] >= 1
    assert expected in info.value.message


# Wrong types and values --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "path", "line", "expect"),
    [
        ('defaults:\n  timeout_seconds: "3600"\n', "defaults.timeout_seconds", 4,
         "expected a whole number, got '3600'"),
        ("svs:\n  enabled: maybe\n", "svs.enabled", 4, "expected true or false, got 'maybe'"),
        ("docker:\n  base_image_version: 11\n", "docker.base_image_version", 4, 'Fix: quote it: "11"'),
        ("svs: 3\n", "svs", 3, "expected a mapping of keys (an indented section), got 3"),
        ("invariants: keep the test split\n", "invariants", 3, "expected a list"),
        ("jobs:\n  backend: kubernetes\n", "jobs.backend", 4, "'local', 'docker', 'gce', got 'kubernetes'"),
        ("jobs:\n  max_parallel_stages: 0\n", "jobs.max_parallel_stages", 4, "must be >= 1, got 0"),
        ("jobs:\n  max_parallel_stages: 65\n", "jobs.max_parallel_stages", 4, "must be <= 64, got 65"),
        ("defaults:\n  log_sync_interval: 0\n", "defaults.log_sync_interval", 4, "must be >= 1"),
        ("defaults:\n  launching_grace_seconds: 30\n", "defaults.launching_grace_seconds", 4, "must be >= 60"),
        ("workspace:\n  max_file_mb: 0\n", "workspace.max_file_mb", 4, "must be > 0"),
        ("metrics:\n  backend: wandbb\n", "metrics.backend", 4, 'Did you mean "wandb"?'),
        ("docker:\n  extra_packages:\n    gpux: [triton]\n", "docker.extra_packages.gpux", 5,
         "expected a key among 'cpu', 'gpu', 'base', got 'gpux'. Did you mean \"gpu\"?"),
        ("docker:\n  network: host\n", "docker.network", 4, "'none', 'bridge'"),
        ("gce:\n  project_id: p\n  warm_pool:\n    max_instances: 11\n", "gce.warm_pool.max_instances", 6,
         "must be <= 10"),
        ("gce:\n  project_id: p\n  warm_pool:\n    watchdog_seconds: 60\n", "gce.warm_pool.watchdog_seconds", 6,
         "must be >= 3600"),
        ("svs:\n  ai_during_run_log_filters: ['ok', '(unclosed']\n", "svs.ai_during_run_log_filters[1]", 4,
         "not a valid regular expression"),
        ("svs:\n  domain: vision\n", "svs.domain", 4, "'nlp_tokenizer'"),
        ("svs:\n  default_enforcement: strict\n", "svs.default_enforcement", 4, "'blocking', 'warning', 'silent'"),
        ("workspaces_dir: ../elsewhere\n", "workspaces_dir", 3, "must stay inside its root"),
        ("workspaces_dir: /abs/ws\n", "workspaces_dir", 3, "must be a relative path"),
        ("gcs:\n  bucket: gs://my-bucket/x\n", "gcs.bucket", 4, "Fix: bucket: my-bucket"),
        ("gcs:\n  bucket: bkt\n  artifacts_prefix: art\n", "gcs.artifacts_prefix", 5, "must end with '/'"),
    ],
)
def test_bad_value_names_path_line_and_expectation(text: str, path: str, line: int, expect: str) -> None:
    entry = only(fail(text))
    assert (entry["path"], entry["line"]) == (path, line)
    assert expect in entry["message"]


@pytest.mark.parametrize("value", ["''", "'  '", '"a\\nb"'])
def test_blank_or_multiline_project_name(value: str) -> None:
    entry = only(fail(f"project_name: {value}\ndev_repo_path: d\n", base=False))
    assert (entry["path"], entry["line"]) == ("project_name", 1)
    assert "non-empty single-line string" in entry["message"]


def test_workspaces_dir_must_name_a_subdirectory() -> None:
    assert "must name a directory below its root" in only(fail("workspaces_dir: .\n"))["message"]
    assert cfg("workspaces_dir: slots/live\n").workspaces_dir == "slots/live"


def test_slot_names_differing_only_in_case_collide() -> None:
    entry = only(fail("slots: [w1, W1]\n"))
    assert entry["path"] == "slots[1]" and "listed twice" in entry["message"]


def test_launch_timeout_must_cover_capacity_wait() -> None:
    entry = only(fail("defaults:\n  capacity_wait_seconds: 900\n  launch_timeout_seconds: 600\n"))
    assert (entry["path"], entry["line"]) == ("defaults.launch_timeout_seconds", 5)
    assert "must be >= defaults.capacity_wait_seconds (900)" in entry["message"] and "Fix:" in entry["message"]


def test_during_run_interval_below_60_needs_test_mode() -> None:
    err = fail("svs:\n  ai_during_run_interval_seconds: 10\n")
    entry = only(err)
    assert (entry["path"], entry["line"]) == ("svs.ai_during_run_interval_seconds", 4)
    assert "set svs.test_mode: true for short intervals" in entry["message"]
    assert err.fix and "svs.test_mode: true" in err.fix
    assert cfg("svs:\n  test_mode: true\n  ai_during_run_interval_seconds: 10\n").svs.ai_during_run_interval_seconds == 10
    assert "must be >= 1" in only(fail("svs:\n  test_mode: true\n  ai_during_run_interval_seconds: 0\n"))["message"]


def test_yaml_null_provider_is_an_error_naming_the_quoted_string() -> None:
    entry = only(fail("svs:\n  agent_provider: null\n"))
    assert (entry["path"], entry["line"]) == ("svs.agent_provider", 4)
    assert 'write agent_provider: "null" (quoted)' in entry["message"]
    entry = only(fail("svs:\n  agent_provider:\n"))
    assert "YAML null is not a provider" in entry["message"]
    assert cfg('svs:\n  agent_provider: "null"\n').svs.agent_provider == "null"


def test_retired_provider_names_the_replacement() -> None:
    entry = only(fail("svs:\n  agent_provider: meerkat\n"))
    assert "not available" in entry["message"] and "use 'rules'" in entry["message"]
    assert "use 'anthropic'" in only(fail("svs:\n  agent_provider: claude_code\n"))["message"]


# Storage and cloud -------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["s3", "azure", "S3"])
def test_s3_and_azure_are_not_supported(backend: str) -> None:
    entry = only(fail(f"storage:\n  backend: {backend}\n"))
    assert (entry["path"], entry["line"]) == ("storage.backend", 4)
    assert "is not supported" in entry["message"] and "'local' or 'gcs'" in entry["message"]


def test_s3_subsection_is_not_supported() -> None:
    entry = only(fail("storage:\n  s3:\n    bucket: b\n"))
    assert entry["path"] == "storage.s3"
    assert "S3 storage is not supported" in entry["message"] and "'local' and 'gcs'" in entry["message"]


def test_gcs_storage_needs_a_bucket() -> None:
    entry = only(fail("storage:\n  backend: gcs\n"))
    assert (entry["path"], entry["line"]) == ("storage.backend", 4)
    assert "gcs: {bucket: my-bucket}" in entry["message"]
    assert cfg("storage: {backend: gcs}\ngcs: {bucket: bkt}\n").storage.backend == "gcs"


def test_gce_backend_needs_a_project() -> None:
    entry = only(fail("jobs:\n  backend: gce\n"))
    assert (entry["path"], entry["line"]) == ("jobs.backend", 4)
    assert "gce: {project_id: my-gcp-project}" in entry["message"]
    gce = "jobs: {backend: gce}\ngce: {project: p1, zones: [us-central1-a]}\n"
    assert cfg(gce + "gcs: {bucket: bkt1}\n").gce.effective_project_id == "p1"  # type: ignore[union-attr]
    entry = only(fail(gce))
    assert entry["path"] == "jobs.backend" and "gcs: {bucket: my-bucket}" in entry["message"]
    entry = only(fail("jobs: {backend: gce}\ngce: {project: p1}\ngcs: {bucket: bkt1}\n"))
    assert entry["path"] == "jobs.backend" and "gce.zones is not set" in entry["message"]


def test_effective_project_id_explains_the_fix() -> None:
    gce = cfg("gce:\n  zones: [us-central1-a]\n").gce
    assert gce is not None
    with pytest.raises(ConfigError) as info:
        _ = gce.effective_project_id
    assert "gce.project_id" in info.value.message and info.value.fix and "project_id:" in info.value.fix
    image = cfg("gce: {project_id: p, image_uri: eu.gcr.io/p/x}").gce
    assert image is not None and image.effective_artifact_registry == "eu.gcr.io/p/x"


def test_env_api_key_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    svs = cfg("svs:\n  anthropic_api_key: from-file\n").svs
    assert svs.effective_anthropic_api_key() == "from-file"
    monkeypatch.setenv("ANTHROPIC_API_KEY", "from-env")
    assert svs.effective_anthropic_api_key() == "from-env"


# Structure ---------------------------------------------------------------------------------------


def test_missing_required_keys() -> None:
    err = fail("slots: 2\n", base=False)
    assert {e["path"] for e in err.details["errors"]} == {"project_name", "dev_repo_path"}
    assert "project_name: required key is missing" in err.message
    assert "add `project_name: my-project`" in str(err)
    entry = only(fail("gcs:\n  sources_prefix: s/\n"))
    assert (entry["path"], entry["line"]) == ("gcs.bucket", 3) and "required key is missing" in entry["message"]


@pytest.mark.parametrize("text", ["", "   \n", "# only a comment\n"])
def test_empty_file(text: str) -> None:
    err = fail(text, base=False)
    assert err.message == "goldfish.yaml is empty." and err.fix and "goldfish init" in err.fix


@pytest.mark.parametrize(("text", "kind"), [("- a\n- b\n", "got a list"), ("just text\n", "got a single value")])
def test_top_level_must_be_a_mapping(text: str, kind: str) -> None:
    err = fail(text, base=False)
    assert "top level must be a mapping" in err.message and kind in err.message


@pytest.mark.parametrize(
    ("text", "line", "column", "words"),
    [
        ("project_name: p\n  dev_repo_path: x\n", 2, 16, "mapping values are not allowed here"),
        ("project_name: p\nslots: [w1, w2\n", 3, 1, "flow sequence"),
        ("project_name: p\n\tslots: 3\n", 2, 1, "tabs"),
        ("a: 1\n---\nb: 2\n", 2, 1, "single document"),
    ],
)
def test_yaml_syntax_error_names_line_and_column(text: str, line: int, column: int, words: str) -> None:
    err = fail(text, base=False)
    assert err.message.startswith(f"goldfish.yaml:{line}:{column}: YAML syntax error")
    assert words in str(err)
    assert err.details["errors"][0]["line"] == line


def test_duplicate_and_non_string_keys() -> None:
    err = fail("svs:\n  enabled: true\n  enabled: false\nyes: 1\n")
    dup = by_path(err, "svs.enabled")
    assert dup["line"] == 5 and "appears twice (first on line 4)" in dup["message"]
    key = by_path(err, "yes")
    assert key["line"] == 6 and "not a string" in key["message"] and 'quote it' in key["message"]


def test_all_problems_reported_at_once_in_line_order() -> None:
    err = fail("""
        svs:
          ai_durng_run_auto_stop: true
          ai_during_run_interval_seconds: 10
        defaults:
          backend: gce
        storage:
          backend: s3
        """)
    errors = err.details["errors"]
    assert [e["path"] for e in errors] == [
        "svs.ai_durng_run_auto_stop", "svs.ai_during_run_interval_seconds", "defaults.backend", "storage.backend"]
    assert [e["line"] for e in errors] == [5, 6, 8, 10]
    assert err.message.startswith("goldfish.yaml has 4 problems:")
    assert all(set(e) == {"path", "line", "message"} for e in errors)


def test_load_config_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "goldfish.yaml")
    assert "No goldfish.yaml" in info.value.message and info.value.fix and "goldfish init" in info.value.fix
    (tmp_path / "goldfish.yaml").write_bytes(BASE.encode() + b"invariants: ['\xff']\n")
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "goldfish.yaml")
    assert "not UTF-8" in info.value.message
    (tmp_path / "goldfish.yaml").write_text(BASE)
    assert load_config(tmp_path).project_name == "demo"


def test_paths_resolve_from_the_project(tmp_path: Path) -> None:
    project = tmp_path / "demo"
    project.mkdir()
    c = cfg()
    assert c.dev_repo(project) == (tmp_path / "demo-dev").resolve()
    assert c.workspaces_root(project) == project.resolve() / "workspaces"
    assert c.objects_root(project) == (tmp_path / "demo-dev").resolve() / ".goldfish" / "objects"
    assert c.state_md_path(project) == (tmp_path / "demo-dev").resolve() / "STATE.md"
    absolute = parse_config(f"project_name: demo\ndev_repo_path: {tmp_path / 'elsewhere'}\n")
    assert absolute.dev_repo(project) == (tmp_path / "elsewhere").resolve()
    with pytest.raises(ConfigError) as info:
        parse_config("project_name: demo\ndev_repo_path: demo\n").dev_repo(project)
    assert "points at the project itself" in info.value.message and info.value.fix == "Use a sibling directory, e.g. dev_repo_path: demo-dev"


# Template ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "dev"), [("demo", "demo-dev"), ("my project: #1", "../dev repo"), ("yes", "null")])
def test_template_parses_back_to_exactly_the_defaults(name: str, dev: str) -> None:
    text = default_config_yaml(name, dev)
    assert parse_config(text) == GoldfishConfig(project_name=name, dev_repo_path=dev)
    assert "backend: local" in text


def test_template_cloud_examples_are_valid_when_uncommented() -> None:
    text = default_config_yaml("demo", "demo-dev")
    assert "\ngcs:" not in text and "\ngce:" not in text
    lines = text.splitlines()
    start = lines.index("# gcs:")
    block = [lines[start]]
    for line in lines[start + 1:]:
        if not line.startswith("#   "):
            break
        block.append(line)
    start = lines.index("# gce:")
    block.append(lines[start])
    for line in lines[start + 1:]:
        if not line.startswith("#   "):
            break
        block.append(line)
    uncommented = text + "\n".join(line[2:] for line in block) + "\n"
    c = parse_config(uncommented)
    assert c.gcs is not None and c.gcs.bucket == "my-goldfish-bucket"
    assert c.gce is not None and c.gce.project_id == "my-gcp-project"


def test_template_refuses_bad_names() -> None:
    with pytest.raises(ConfigError) as info:
        default_config_yaml("two\nlines", "dev")
    assert "project_name" in info.value.message


# Docs --------------------------------------------------------------------------------------------


def test_docs_file_matches_the_models() -> None:
    committed = (REPO / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert committed == config_reference_markdown(), (
        "docs/configuration.md is stale: run `python -m goldfish.config docs > docs/configuration.md`")


def test_docs_name_every_key_with_its_default() -> None:
    docs = config_reference_markdown()
    for path in _model_paths():
        model = _model_at(path)
        for name, field in model.model_fields.items():
            key = ".".join((*path, name))
            assert f"| `{key}` |" in docs, key
            assert field.description, key


def test_docs_command_prints_the_reference() -> None:
    out = subprocess.run([sys.executable, "-m", "goldfish.config", "docs"], capture_output=True, text=True,
                         check=True, cwd=REPO)
    assert out.stdout == config_reference_markdown()


def test_check_command(tmp_path: Path) -> None:
    good = tmp_path / "goldfish.yaml"
    good.write_text(default_config_yaml("demo", "demo-dev"))
    ok = subprocess.run([sys.executable, "-m", "goldfish.config", "check", str(good)], capture_output=True,
                        text=True, cwd=REPO)
    assert ok.returncode == 0 and "ok" in ok.stdout
    good.write_text(BASE + "svs:\n  ai_durng_run_auto_stop: true\n")
    bad = subprocess.run([sys.executable, "-m", "goldfish.config", "check", str(good)], capture_output=True,
                         text=True, cwd=REPO)
    assert bad.returncode == 1 and "svs.ai_durng_run_auto_stop" in bad.stderr and ":4:" in bad.stderr
