"""Pydantic validation errors of user documents (pipeline.yaml, stage configs) as ``Issue`` objects.

Locations use the document's own words (``stages[1].inputs.features.schema.shape[0]``), unknown
keys get a did-you-mean, and every issue carries a fix.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from goldfish.issues import CUSTOM_ERROR_TYPE, Issue
from goldfish.names import did_you_mean
from goldfish.pipelines.signal_schema import SCHEMA_KINDS

_GENERIC_FIXES = {
    "string_type": "Use a string (quote it if YAML reads it as a number or boolean).",
    "bool_type": "Use true or false.",
    "dict_type": "Use a mapping (key: value lines).",
    "list_type": "Use a list (- item lines or [a, b]).",
    "int_type": "Use a whole number.",
    "greater_than": "Use a larger number.",
}
_SCHEMA_FIX = (
    "Add `schema:` with a contract (e.g. {kind: tensor, shape: [null, 768], dtype: float32}),"
    " or `schema: null` to opt out (no contract for this signal)."
)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _is_tag(loc: tuple[Any, ...], position: int, schema_root: bool) -> bool:
    """Whether ``loc[position]`` is the schema-kind tag pydantic inserts for the discriminated union."""
    after_schema = (position > 0 and loc[position - 1] == "schema") or (schema_root and position == 0)
    return after_schema and loc[position] in SCHEMA_KINDS


def format_location(loc: tuple[Any, ...], *, schema_root: bool = False) -> str:
    """``("stages", 1, "inputs", "x", "schema", "tensor", "shape")`` → ``stages[1].inputs.x.schema.shape``.

    ``schema_root``: the location starts at a schema (as for ``parse_contract``)."""
    text = ""
    for position, part in enumerate(loc):
        if _is_tag(loc, position, schema_root):
            continue
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def _fields_at(
    parent: tuple[Any, ...], schema_root: bool, fields: Mapping[str, Sequence[str]]
) -> Sequence[str]:
    """Keys valid at ``parent`` (a raw pydantic location)."""
    if parent and _is_tag(parent, len(parent) - 1, schema_root):
        return fields.get(str(parent[-1]), ())
    if not parent:
        return fields.get("", ())
    last, prev = parent[-1], parent[-2] if len(parent) > 1 else None
    if prev == "stages" and isinstance(last, int):
        return fields.get("stage", ())
    if prev in ("inputs", "outputs", "config_schema", "arrays"):
        return fields.get(str(prev), ())
    return ()


def pydantic_issues(
    exc: ValidationError,
    *,
    fields: Mapping[str, Sequence[str]],
    prefix: str = "",
    schema_root: bool = False,
) -> list[Issue]:
    """Turn pydantic errors into issues with document locations, did-you-means and fixes.

    ``fields`` lists the keys allowed per level: ``""`` for the top, then ``stage``, ``inputs``,
    ``outputs``, ``config_schema``, ``arrays`` and each schema kind."""
    issues: list[Issue] = []
    for err in exc.errors(include_url=False):
        loc = tuple(err["loc"])
        ctx = err.get("ctx") or {}
        where = format_location(loc, schema_root=schema_root)
        location = prefix + where if where.startswith("[") else ".".join(p for p in (prefix, where) if p)
        kind = err["type"]
        last = str(loc[-1]) if loc else ""
        if kind == CUSTOM_ERROR_TYPE:
            if ctx.get("issues"):
                issues.extend(Issue(**i) for i in ctx["issues"])
                continue
            sub = ctx.get("sub", "")
            place = (location + sub) if location else sub.lstrip(".")
            issues.append(Issue(location=place, message=ctx["message"], fix=ctx.get("fix") or None))
        elif kind == "missing" and last == "schema":
            message = "the `schema:` key is missing (every input and output needs one)."
            issues.append(Issue(location=location, message=message, fix=_SCHEMA_FIX))
        elif kind == "missing":
            issues.append(
                Issue(location=location, message=f"required key `{last}` is missing.", fix=f"Add `{last}:`.")
            )
        elif kind == "extra_forbidden":
            candidates = _fields_at(loc[:-1], schema_root, fields)
            hint = did_you_mean(last, candidates) if candidates else ""
            choices = f" or use one of: {', '.join(candidates)}." if candidates else "."
            issues.append(
                Issue(
                    location=location, message=f"unknown key `{last}`.{hint}", fix=f"Remove `{last}`{choices}"
                )
            )
        elif kind == "literal_error":
            expected = re.findall(r"'([^']*)'", str(ctx.get("expected", "")))
            value = err.get("input")
            hint = did_you_mean(value, expected) if isinstance(value, str) else ""
            issues.append(
                Issue(
                    location=location,
                    message=f"{last} {value!r} is not allowed.{hint}",
                    fix=f"Use one of: {', '.join(expected)}.",
                )
            )
        elif kind == "union_tag_invalid":
            tag = str(ctx.get("tag"))
            issues.append(
                Issue(
                    location=location + ".kind",
                    message=f"unknown schema kind {tag!r}.{did_you_mean(tag, SCHEMA_KINDS)}",
                    fix="Use kind: tensor, tabular, json or file, or `schema: null` to opt out.",
                )
            )
        elif kind == "too_short" and loc == ("stages",):
            issues.append(
                Issue(
                    location="stages",
                    message="the pipeline has no stages.",
                    fix="Add at least one stage: stages: [{name: train, inputs: {...}, outputs: {...}}].",
                )
            )
        elif kind in ("model_type", "model_attributes_type", "dict_type"):
            issues.append(
                Issue(
                    location=location or "(document)",
                    message=f"expected a mapping (key: value lines), got {_short(err.get('input'))}.",
                    fix="Write each stage as a mapping: `- name: train` with inputs:/outputs: under it."
                    if len(loc) == 2 and loc[0] == "stages"
                    else "Write it as key: value lines.",
                )
            )
        else:
            issues.append(
                Issue(
                    location=location or "(document)",
                    message=err["msg"],
                    fix=_GENERIC_FIXES.get(kind, "Correct the value at this location."),
                )
            )
    return issues
