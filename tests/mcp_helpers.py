"""Helpers for MCP surface tests: stdio parameters, schema-driven arguments, seed tables."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any

from mcp import StdioServerParameters

REPO = Path(__file__).resolve().parent.parent
SEED = Path("/work/shared/seed/goldfish-skill.md")

# Tools that answer without a project (everything else must say how to initialize one).
PROJECTLESS = {"status", "goldfish_version", "initialize_project"}

# Capabilities the seed names and this project builds: each must be a registered tool.
SEED_TOOLS = (
    "status", "dashboard", "create_workspace", "mount", "hibernate", "save_version", "inspect_workspace", "diff",
    "rollback", "delete_workspace", "manage_versions", "run", "finalize_run", "list_history", "inspect_record",
    "tag_record", "list_unfinalized_runs", "get_experiment_context", "get_debug_info", "inspect_run", "get_lineage",
    "logs", "cancel", "save_results_spec", "register_source", "manage_sources", "promote_artifact",
    "validate_config", "log_thought", "get_workspace_thoughts", "manage_patterns", "initialize_project",
    "reload_config", "get_audit_log", "goldfish_version", "get_run_svs_findings", "get_metric_history",
    "search_goldfish_logs",
    "create_backup", "list_backups", "cleanup_backups", "get_backup_status",
)


def stdio_params(cwd: Path, *args: str) -> StdioServerParameters:
    return StdioServerParameters(
        command=sys.executable,
        args=["-m", "goldfish", "serve", *args],
        cwd=str(cwd),
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )


def seed_key_parameters(path: Path = SEED) -> dict[str, list[str]]:
    """Tool name -> parameter names from every "| `tool()` | purpose | Key Parameters |" table row."""
    out: dict[str, list[str]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        m = re.match(r"\|\s*`(\w+)\(\)`\s*\|[^|]*\|\s*([^|]*)\|\s*$", line)
        if not m:
            continue
        raw = m.group(2).strip()
        params: list[str] = []
        if raw and raw != "None":
            for part in raw.split(","):
                # "from_workspace?" and "finalized_only: bool = False" both name a parameter.
                name = re.match(r"\s*([A-Za-z_]\w*)", part)
                if name:
                    params.append(name.group(1))
        out[m.group(1)] = params
    return out


def _string_value(schema: dict[str, Any]) -> str:
    lo, hi = schema.get("minLength", 0), schema.get("maxLength", 64)
    base = "a-value-that-is-long-enough-for-a-reason-field"
    text = (base * (1 + lo // len(base)))[: max(lo, min(hi, len(base)))]
    return text


def example_value(schema: dict[str, Any], defs: dict[str, Any]) -> Any:
    """A value that satisfies ``schema`` (types and bounds), for reaching a tool's body."""
    if "$ref" in schema:
        return example_value(defs[schema["$ref"].split("/")[-1]], defs)
    if "enum" in schema:
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    for key in ("anyOf", "oneOf"):
        if key in schema:
            options = [s for s in schema[key] if s.get("type") != "null"] or schema[key]
            return example_value(options[0], defs)
    kind = schema.get("type")
    if kind == "string":
        return _string_value(schema)
    if kind == "integer":
        return max(schema.get("minimum", 1), 1) if schema.get("maximum", 10**9) >= 1 else schema.get("minimum", 0)
    if kind == "number":
        return float(schema.get("minimum", 1.0))
    if kind == "boolean":
        return False
    if kind == "array":
        item = schema.get("items", {"type": "string"})
        return [example_value(item, defs) for _ in range(schema.get("minItems", 0))]
    if kind == "object":
        props = schema.get("properties", {})
        return {k: example_value(props[k], defs) for k in schema.get("required", [])}
    return "x"


def example_arguments(input_schema: dict[str, Any]) -> dict[str, Any]:
    defs = input_schema.get("$defs", {})
    props = input_schema.get("properties", {})
    return {name: example_value(props[name], defs) for name in input_schema.get("required", [])}
