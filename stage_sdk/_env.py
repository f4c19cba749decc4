"""Where a stage runs: directories and configuration read from the environment, and name checks.

Everything is read from ``os.environ`` at call time (not at import), so a process that changes its
environment, or a test that sets it, sees the new values.
"""

from __future__ import annotations

import copy
import difflib
import json
import os
import re
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import Any

DEFAULT_INPUTS_DIR = "/mnt/inputs"
DEFAULT_OUTPUTS_DIR = "/mnt/outputs"

# Signals, checkpoints and run ids become path segments: ASCII only, no dots, no separators.
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}", re.ASCII)
NAME_RULE = "1-64 ASCII letters, digits, '_' or '-', starting with a letter or digit (e.g. features)"

ENFORCEMENTS = ("blocking", "warning", "silent")
DOMAINS = ("default", "nlp_tokenizer", "image_embeddings", "tabular_features")


def inputs_dir() -> Path:
    return Path(os.environ.get("GOLDFISH_INPUTS_DIR") or DEFAULT_INPUTS_DIR)


def outputs_dir() -> Path:
    return Path(os.environ.get("GOLDFISH_OUTPUTS_DIR") or DEFAULT_OUTPUTS_DIR)


def runtime_dir() -> Path:
    """``$GOLDFISH_OUTPUTS_DIR/.goldfish`` (created on demand by writers, not here)."""
    return outputs_dir() / ".goldfish"


def run_id() -> str | None:
    value = os.environ.get("GOLDFISH_RUN_ID") or None
    return value


def objects_dir() -> Path | None:
    value = os.environ.get("GOLDFISH_OBJECTS_DIR")
    return Path(value) if value else None


def gcs_bucket() -> str | None:
    return os.environ.get("GOLDFISH_GCS_BUCKET") or None


def storage_backend() -> str | None:
    """Where durable objects go: ``GOLDFISH_STORAGE_BACKEND`` (gcs|local) when set, else the local
    object dir when there is one, else the bucket when there is one, else None."""
    explicit = (os.environ.get("GOLDFISH_STORAGE_BACKEND") or "").strip().lower()
    if explicit == "gcs" and gcs_bucket():
        return "gcs"
    if explicit == "local" and objects_dir() is not None:
        return "local"
    if objects_dir() is not None:
        return "local"
    return "gcs" if gcs_bucket() else None


@lru_cache(maxsize=4)
def _parse_stage_config(raw: str) -> dict[str, Any]:
    try:
        parsed = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise RuntimeError(
            f"GOLDFISH_STAGE_CONFIG is not valid JSON ({exc}). "
            "Fix: let goldfish run the stage, or export a JSON object with 'inputs' and 'outputs'."
        ) from None
    if not isinstance(parsed, dict):
        raise RuntimeError(
            "GOLDFISH_STAGE_CONFIG must be a JSON object. "
            "Fix: export a JSON object with 'inputs' and 'outputs' mappings."
        )
    return parsed


def stage_config() -> dict[str, Any]:
    """The merged stage config (shared, do not mutate; ``get_config()`` hands out a copy)."""
    raw = os.environ.get("GOLDFISH_STAGE_CONFIG")
    if not raw:
        raise RuntimeError(
            "GOLDFISH_STAGE_CONFIG is not set, so this stage has no declared inputs or outputs. "
            "Fix: start the stage with goldfish run(), or for local testing export "
            "GOLDFISH_STAGE_CONFIG='{\"inputs\": {...}, \"outputs\": {...}}'."
        )
    return _parse_stage_config(raw)


def user_config() -> dict[str, Any]:
    return copy.deepcopy(stage_config())


def stage_name() -> str:
    cfg_stage = None
    raw = os.environ.get("GOLDFISH_STAGE_CONFIG")
    if raw:
        try:
            cfg_stage = _parse_stage_config(raw).get("stage")
        except RuntimeError:
            cfg_stage = None
    return str(os.environ.get("GOLDFISH_STAGE") or cfg_stage or "stage")


def _bool_env(value: str | None) -> bool | None:
    if value is None or value.strip() == "":
        return None
    return value.strip().lower() in ("1", "true", "yes", "on")


@lru_cache(maxsize=4)
def _parse_svs(raw: str) -> tuple[dict[str, Any], str | None]:
    try:
        parsed = json.loads(raw) if raw else {}
    except json.JSONDecodeError as exc:
        return {}, f"GOLDFISH_SVS_CONFIG is not valid JSON ({exc}); using SVS defaults."
    if not isinstance(parsed, dict):
        return {}, "GOLDFISH_SVS_CONFIG is not a JSON object; using SVS defaults."
    return parsed, None


def svs_config() -> dict[str, Any]:
    """SVS settings with defaults filled in: enabled, stats_enabled, default_enforcement, domain.

    Defaults: SVS on, ``warning`` enforcement. ``GOLDFISH_SVS_STATS_ENABLED``
    overrides ``stats_enabled``; stats are never on while SVS is off. Unknown enforcement or domain
    values fall back to the defaults and are reported in ``problem``.
    """
    parsed, problem = _parse_svs(os.environ.get("GOLDFISH_SVS_CONFIG", ""))
    enabled = parsed.get("enabled", True) is not False
    stats = parsed.get("stats_enabled", True) is not False
    env_stats = _bool_env(os.environ.get("GOLDFISH_SVS_STATS_ENABLED"))
    if env_stats is not None:
        stats = env_stats
    enforcement = parsed.get("default_enforcement", "warning")
    if enforcement not in ENFORCEMENTS:
        problem = f"svs.default_enforcement {enforcement!r} is not one of {ENFORCEMENTS}; using 'warning'."
        enforcement = "warning"
    domain = parsed.get("domain", "default")
    if domain not in DOMAINS:
        problem = f"svs.domain {domain!r} is not one of {DOMAINS}; using 'default'."
        domain = "default"
    return {
        "enabled": enabled,
        "stats_enabled": enabled and stats,
        "default_enforcement": enforcement,
        "domain": domain,
        "problem": problem,
    }


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    matches = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f" Did you mean {matches[0]!r}?" if matches else ""


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def check_name(value: object, what: str) -> str:
    """Validate a name that becomes one path segment; ValueError naming the rule otherwise."""
    if not isinstance(value, str):
        raise ValueError(f"{what} must be a string, got {type(value).__name__}. Use {NAME_RULE}.")
    if not NAME_RE.fullmatch(value):
        raise ValueError(
            f"Invalid {what} {_show(value)}: paths, '..' and separators are not allowed. Use {NAME_RULE}."
        )
    return value


def declared(kind: str, name: object) -> tuple[str, dict[str, Any]]:
    """Look up a declared input/output; ValueError with a did-you-mean over the declared names."""
    what = "input" if kind == "inputs" else "output"
    cfg = stage_config()
    section = cfg.get(kind) or {}
    if not isinstance(section, dict):
        raise RuntimeError(f"GOLDFISH_STAGE_CONFIG[{kind!r}] must be a mapping of name to spec.")
    names = sorted(str(k) for k in section)
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        hint = did_you_mean(name, names) if isinstance(name, str) else ""
        raise ValueError(
            f"Invalid {what} name {_show(name)}: signal names are not paths ('/', '..' and absolute "
            f"paths are refused).{hint} Use {NAME_RULE}; declared {what}s: {', '.join(names) or '(none)'}."
        )
    if name not in section:
        stage = stage_name()
        raise ValueError(
            f"{what.capitalize()} {name!r} is not declared for stage {stage!r}.{did_you_mean(name, names)} "
            f"Declared {what}s: {', '.join(names) or '(none)'}. "
            f"Fix: use a declared name, or declare it under the stage's {kind} in pipeline.yaml."
        )
    spec = section[name]
    return name, spec if isinstance(spec, dict) else {}


def signal_format(spec: dict[str, Any], default: str) -> str:
    fmt = spec.get("format") or spec.get("type") or default
    return str(fmt).lower()


def inside(root: Path, candidate: Path) -> bool:
    """True when ``candidate`` resolves (symlinks followed) to ``root`` or below it."""
    root_r = root.resolve()
    cand_r = candidate.resolve()
    return cand_r == root_r or root_r in cand_r.parents
