"""Validation of every name that becomes a path, a git ref or a store key.

Checked before any git call or file write: a bad name changes nothing.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Sequence

from goldfish.errors import InvalidInput

# ASCII only (re.ASCII + explicit classes), so lookalike unicode letters never pass.
_WORKSPACE_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9_-]{0,62}[A-Za-z0-9])?", re.ASCII)
_SIGNAL_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}", re.ASCII)
_METRIC_RE = re.compile(r"[A-Za-z][A-Za-z0-9_.\-/:]{0,255}", re.ASCII)
_TAG_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,62}[A-Za-z0-9])?", re.ASCII)
VERSION_RE = re.compile(r"v([1-9][0-9]{0,8})", re.ASCII)
STAGE_RUN_RE = re.compile(r"stage-[0-9a-f]{8}", re.ASCII)
PIPELINE_RUN_RE = re.compile(r"prun-[0-9a-f]{8}", re.ASCII)
RECORD_RE = re.compile(r"[0-9A-HJKMNP-TV-Z]{26}", re.ASCII)
PATTERN_RE = re.compile(r"fp-[0-9a-f]{8}", re.ASCII)


def did_you_mean(word: str, candidates: Iterable[str], *, cutoff: float = 0.6) -> str:
    """Return ' Did you mean "x"?' for the closest candidate, or ''."""
    matches = difflib.get_close_matches(word, list(candidates), n=1, cutoff=cutoff)
    return f' Did you mean "{matches[0]}"?' if matches else ""


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "...'"


def _check(value: object, pattern: re.Pattern[str], what: str, rule: str) -> str:
    if not isinstance(value, str):
        raise InvalidInput(f"{what} must be a string, got {type(value).__name__}.", fix=f"Use {rule}.")
    if not pattern.fullmatch(value):
        raise InvalidInput(f"Invalid {what} {_show(value)}.", fix=f"Use {rule}.")
    return value


def workspace_name(value: object) -> str:
    return _check(
        value,
        _WORKSPACE_RE,
        "workspace name",
        "1-64 ASCII letters, digits, '_' or '-', starting and ending with a letter or digit (e.g. lstm_baseline)",
    )


def source_name(value: object) -> str:
    return _check(
        value,
        _WORKSPACE_RE,
        "source name",
        "1-64 ASCII letters, digits, '_' or '-', starting and ending with a letter or digit (e.g. sales_v1)",
    )


def signal_name(value: object) -> str:
    return _check(
        value, _SIGNAL_RE, "signal name", "1-64 ASCII letters, digits, '_' or '-', starting with a letter or digit"
    )


def stage_name(value: object) -> str:
    return _check(
        value, _SIGNAL_RE, "stage name", "1-64 ASCII letters, digits, '_' or '-', starting with a letter or digit"
    )


def metric_name(value: object) -> str:
    if isinstance(value, str) and ("//" in value or ".." in value):
        raise InvalidInput(f"Invalid metric name {_show(value)}: '..' and '//' are not allowed.",
                           fix="Use names like train/loss.")
    return _check(value, _METRIC_RE, "metric name", "a letter then up to 255 of [A-Za-z0-9_.-/:] (e.g. train/loss)")


def tag_name(value: object) -> str:
    return _check(
        value, _TAG_RE, "tag", "1-64 ASCII letters, digits, '.', '_' or '-', starting and ending alphanumeric (e.g. best-v1)"
    )


def version(value: object) -> str:
    return _check(value, VERSION_RE, "version", "the form vN, e.g. v3")


def version_number(value: object) -> int:
    return int(version(value)[1:])


def stage_run_id(value: object) -> str:
    return _check(value, STAGE_RUN_RE, "stage run id", "an id like stage-1a2b3c4d (from run() or list_history)")


def pipeline_run_id(value: object) -> str:
    return _check(value, PIPELINE_RUN_RE, "pipeline run id", "an id like prun-1a2b3c4d")


def slot_name(value: object, slots: Iterable[str]) -> str:
    known = list(slots)
    if not isinstance(value, str) or value not in known:
        hint = did_you_mean(value, known) if isinstance(value, str) else ""
        raise InvalidInput(
            f"Unknown slot {_show(value)}.{hint}",
            fix=f"Use one of the configured slots: {', '.join(known)}.",
        )
    return value


def include_sections(include: object, options: Sequence[str], default: Sequence[str], *, what: str) -> list[str]:
    """An ``include=[...]`` argument: None → ``default``; a bare string is one section; every name
    must be one of ``options`` (did-you-mean otherwise). Order kept, duplicates dropped."""
    if include is None:
        return list(default)
    if isinstance(include, str):
        include = [include]
    if not isinstance(include, list):
        raise InvalidInput(f"include must be a list of {what} section names, got {type(include).__name__}.",
                           fix=f"Use e.g. include={list(default)!r}; options: {', '.join(options)}.")
    bad = [s for s in include if s not in options]
    if bad:
        hints = "".join(did_you_mean(str(s), options) for s in bad)
        raise InvalidInput(f"Unknown {what} section(s): {', '.join(map(repr, bad))}.{hints}",
                           fix=f"Use any of: {', '.join(options)} (default: {', '.join(default)}).")
    return list(dict.fromkeys(include))


MAX_REASON = 4000  # reasons, messages, descriptions: the tools' maxLength, enforced for every caller
MAX_THOUGHT = 8000


def reason(value: object, min_length: int, *, what: str = "reason", max_length: int = MAX_REASON) -> str:
    if not isinstance(value, str):
        raise InvalidInput(f"{what} must be a string.", fix=f"Give a {what} of at least {min_length} characters.")
    if len(value.strip()) < min_length:
        raise InvalidInput(
            f"{what} is too short ({len(value.strip())} characters, minimum {min_length}).",
            fix=f"Explain why in at least {min_length} characters.",
        )
    if len(value.strip()) > max_length:
        raise InvalidInput(
            f"{what} is {len(value.strip()):,} characters; the maximum is {max_length:,}.",
            fix=f"Summarize it in at most {max_length:,} characters (keep long material in a file of the workspace).",
        )
    return value.strip()
