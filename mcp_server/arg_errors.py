"""Readable tool-call errors for bad arguments, unknown tools and internal errors.

The SDK reports a schema violation as pydantic's multi-line dump (error URLs, model names). The
model reads these, so each problem becomes one line: argument, what is wrong, what was given.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from goldfish.names import did_you_mean

MAX_LINES = 10


def _given(value: Any) -> str:
    if isinstance(value, str):
        if len(value) > 40:
            return f"a {len(value)}-character string"
        return repr(value)
    if isinstance(value, dict):
        return f"an object with {len(value)} key(s)"
    if isinstance(value, list):
        return f"a list of {len(value)} item(s)"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def describe_validation(tool: str, exc: ValidationError) -> str:
    lines = []
    for err in exc.errors(include_url=False)[:MAX_LINES]:
        where = ".".join(str(part) for part in err["loc"]) or "(arguments)"
        if err["type"] == "missing":
            lines.append(f"- {where}: required but missing")
        else:
            lines.append(f"- {where}: {err['msg']} (got {_given(err.get('input'))})")
    more = exc.error_count() - MAX_LINES
    if more > 0:
        lines.append(f"- … and {more} more")
    return (
        f"Invalid arguments for {tool}:\n" + "\n".join(lines)
        + f"\nFix: correct these arguments (types, allowed values and limits are in the input schema of {tool})"
        " and call it again."
    )


def describe_unknown_tool(name: str, known: list[str]) -> str:
    return f"Unknown tool {name!r}.{did_you_mean(name, known)} Fix: call one of the tools listed by tools/list."


CRASH_PREFIX = "Internal error in"


def describe_crash(tool: str, cause: BaseException) -> str:
    text = str(cause).strip().splitlines()[0][:300] if str(cause).strip() else ""
    return (
        f"{CRASH_PREFIX} {tool} ({type(cause).__name__}{': ' + text if text else ''}). This is a Goldfish bug, "
        "not a problem with your arguments; nothing else is affected. Fix: retry once; if it persists, "
        "continue with other tools and report it with goldfish_version() and the server log."
    )


# Strings inside object and list arguments (results.notes, results_spec.context, config_override
# values, metadata): the longest documented field is 8,000 characters (finalize notes); anything
# longer is refused here, before it is parsed further or stored. Top-level strings carry their own
# maxLength in the input schema.
MAX_NESTED_TEXT = 8000


def describe_oversized_text(tool: str, arguments: dict[str, Any]) -> str | None:
    """One line per over-long string nested in an object or list argument, or None when all fit."""
    found: list[str] = []

    def walk(value: Any, where: str) -> None:
        if len(found) > MAX_LINES:
            return
        if isinstance(value, str):
            if len(value) > MAX_NESTED_TEXT:
                found.append(f"- {where}: {len(value):,} characters; the maximum is {MAX_NESTED_TEXT:,}")
        elif isinstance(value, dict):
            for key, item in value.items():
                if isinstance(key, str) and len(key) > MAX_NESTED_TEXT:
                    found.append(f"- {where}: a key of {len(key):,} characters; the maximum is {MAX_NESTED_TEXT:,}")
                    continue
                walk(item, f"{where}.{key}")
        elif isinstance(value, list):
            for i, item in enumerate(value):
                walk(item, f"{where}[{i}]")

    for name, value in arguments.items():
        if isinstance(value, dict | list):
            walk(value, name)
    if not found:
        return None
    return (
        f"Invalid arguments for {tool}:\n" + "\n".join(found[:MAX_LINES])
        + "\nFix: shorten these texts (summarize; keep long material in files of the workspace) and call it again."
    )
