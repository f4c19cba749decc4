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
