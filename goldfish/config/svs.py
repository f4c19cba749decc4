"""The svs section: semantic validation switches, policy, during-run monitor and review agent."""

from __future__ import annotations

import os
import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, ValidationInfo, field_validator

from goldfish.config._base import Section, rule_error

# Provider names Goldfish does not have, with what to use instead.
_RETIRED_PROVIDERS = {
    "meerkat": "rules",
    "claude_code": "anthropic",
    "anthropic_api": "anthropic",
    "codex_cli": "anthropic",
    "gemini_cli": "anthropic",
}


def _regex(value: str) -> str:
    try:
        re.compile(value)
    except re.error as exc:
        raise rule_error(
            f"{value!r} is not a valid regular expression ({exc}). Fix: escape it, e.g. '\\\\[' for '['."
        ) from None
    return value


Regex = Annotated[str, AfterValidator(_regex)]


class SvsConfig(Section):
    # Switches
    enabled: bool = Field(
        default=True,
        description="Master switch for preflight, output stats, contracts and AI reviews.",
    )
    test_mode: bool = Field(
        default=False,
        description="Testing aid: allows during-run intervals under 60 s and makes reviews report at least one finding.",
    )
    stats_enabled: bool = Field(
        default=True, description="Compute output statistics (entropy, null ratio, ...) in stages."
    )
    # Policy
    domain: Literal["default", "nlp_tokenizer", "image_embeddings", "tabular_features"] = Field(
        default="default", description="Which threshold set the output statistics are judged against."
    )
    default_policy: Literal["fail", "warn", "ignore"] = Field(
        default="warn",
        description="What a failed statistics check does to a run: fail it, warn, or ignore the check.",
    )
    default_enforcement: Literal["blocking", "warning", "silent"] = Field(
        default="warning",
        description=(
            "Output contract mismatches: 'blocking' fails the stage, 'warning' logs and continues, "
            "'silent' records only."
        ),
    )
    # AI review switches
    ai_pre_run_enabled: bool = Field(
        default=True,
        description="Let the pre-run review call the AI provider; false keeps it to the deterministic rules.",
    )
    ai_post_run_enabled: bool = Field(
        default=True, description="Run an AI review of outputs after each stage."
    )
    ai_during_run_enabled: bool = Field(
        default=True, description="Run the AI monitor on metrics and logs while a stage runs."
    )
    # During-run monitor
    ai_during_run_interval_seconds: int = Field(
        default=300,
        ge=1,
        description="Seconds between during-run reviews; at least 60 unless test_mode is true.",
    )
    ai_during_run_min_metrics: int = Field(
        default=1,
        ge=1,
        description="Skip a during-run review until the stage has logged this many new metrics.",
    )
    ai_during_run_min_log_lines: int = Field(
        default=1,
        ge=0,
        description="Skip a during-run review until the stage has written this many new log lines.",
    )
    ai_during_run_max_runs_per_hour: int = Field(
        default=12, ge=1, description="Most during-run reviews per stage run per hour."
    )
    ai_during_run_auto_stop: bool = Field(
        default=False,
        description="Let the during-run monitor stop a run it judges hopeless (diverged, stalled).",
    )
    ai_during_run_stop_grace_seconds: int = Field(
        default=30,
        ge=0,
        description="After the monitor requests a stop, seconds the stage gets to exit on its own.",
    )
    ai_during_run_log_filters: list[Regex] = Field(
        default_factory=lambda: [".*"],
        description="Regular expressions; only log lines matching one of them are shown to the monitor.",
    )
    ai_during_run_log_max_lines: int = Field(
        default=200, ge=10, description="Most log lines one review sees."
    )
    ai_during_run_log_max_bytes: int = Field(
        default=16384, ge=1024, description="Most log bytes one review sees."
    )
    ai_during_run_log_file_max_bytes: int = Field(
        default=10_000_000,
        ge=100_000,
        description="Most bytes read from the end of a stage's log file per review.",
    )
    ai_during_run_summary_max_chars: int = Field(
        default=1200, ge=100, description="Longest summary (characters) a during-run review keeps."
    )
    # Agent
    agent_provider: Literal["rules", "anthropic", "null"] = Field(
        default="rules",
        description=(
            "Review provider: 'rules' (built-in deterministic analysis, offline), 'anthropic' (Claude "
            'via the Anthropic API) or the string "null" (no review). Write "null" quoted.'
        ),
    )
    agent_model: str = Field(
        default="claude-sonnet-4-6", min_length=1, description="Model the 'anthropic' provider uses."
    )
    agent_fallback_model: str | None = Field(
        default=None, description="Model tried when agent_model is unavailable or overloaded."
    )
    agent_timeout: int = Field(
        default=60, gt=0, description="Seconds allowed per provider call in during-run and post-run reviews."
    )
    agent_max_turns: int = Field(default=3, ge=1, description="Most turns per during-run or post-run review.")
    anthropic_api_key: str | None = Field(
        default=None,
        description=(
            "API key for the 'anthropic' provider. The ANTHROPIC_API_KEY environment variable wins "
            "when set; prefer it over writing the key into goldfish.yaml."
        ),
    )
    anthropic_base_url: str | None = Field(
        default=None,
        description="Anthropic API endpoint override (a proxy or gateway); null uses the default.",
    )
    rate_limit_per_hour: int = Field(
        default=60, ge=0, description="Most AI post-run reviews per hour across the project; 0 disables them."
    )
    # Learning
    auto_learn_failures: bool = Field(
        default=False,
        description="Propose a failure pattern from each failed run (patterns still need approval).",
    )

    @field_validator("ai_during_run_interval_seconds")
    @classmethod
    def _interval(cls, value: int, info: ValidationInfo) -> int:
        if value < 60 and info.data.get("test_mode") is not True:
            raise rule_error(
                f"must be at least 60 seconds, got {value}. Fix: use 60 or more, or set "
                f"svs.test_mode: true for short intervals."
            )
        return value

    @field_validator("agent_provider", mode="before")
    @classmethod
    def _provider(cls, value: Any) -> Any:
        if value is None:
            raise rule_error(
                'YAML null is not a provider. Fix: write agent_provider: "null" (quoted) to turn reviews '
                "off, or 'rules' for the offline review."
            )
        if isinstance(value, str) and value in _RETIRED_PROVIDERS:
            raise rule_error(
                f"provider {value!r} is not available. Fix: use {_RETIRED_PROVIDERS[value]!r} "
                f"(choices: 'rules', 'anthropic', \"null\")."
            )
        return value

    def effective_anthropic_api_key(self) -> str | None:
        """ANTHROPIC_API_KEY from the environment when set, else ``anthropic_api_key``."""
        return os.environ.get("ANTHROPIC_API_KEY") or self.anthropic_api_key
