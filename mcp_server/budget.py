"""Result size budget: no tool result may flood the model's context.

A page of a list result stops early when its JSON would exceed ``MAX_RESULT_BYTES`` (~15k tokens):
``has_more`` is then true and the caller continues from ``offset + len(rows)``, as with any page.
``limit`` bounds the row count; this bounds the bytes, which rows of free text (reasons, notes,
thoughts) can blow up whatever the count.
"""

from __future__ import annotations

import logging
from typing import TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import to_json

MAX_RESULT_BYTES = 60_000

logger = logging.getLogger("goldfish.mcp")

M = TypeVar("M", bound=BaseModel)


def result_bytes(result: BaseModel) -> int:
    return len(result.model_dump_json().encode())


def fit_page(result: M, field: str, *, budget: int = MAX_RESULT_BYTES) -> M:
    """``result`` with its list ``field`` cut to the longest prefix (at least one row) that fits
    ``budget``; ``has_more`` is set when rows were cut."""
    rows = getattr(result, field)
    if rows is None or len(rows) <= 1 or result_bytes(result) <= budget:
        return result
    base = result_bytes(result.model_copy(update={field: []}))
    sizes = [len(to_json(row)) + 1 for row in rows]
    keep, total = 0, base
    for size in sizes:
        if total + size > budget and keep:
            break
        total += size
        keep += 1
    update: dict[str, object] = {field: rows[:keep]}
    if "has_more" in type(result).model_fields:
        update["has_more"] = True
    return result.model_copy(update=update)


CLIP_NOTE = " … [truncated by Goldfish: {shown} of {total} characters shown, to keep the answer under {budget} bytes]"
_MIN_KEEP = 200  # never clip a string below this many characters


def clip_text(result: M, *, budget: int = MAX_RESULT_BYTES) -> M:
    """``result`` with its longest strings cut (each ending in a note saying so) until it fits ``budget``.

    Paging bounds the row count and fit_page the bytes of a page, but one entry can itself be huge (notes
    or a reason stored before the input limits existed): the first row of a page, or a single record,
    is shown truncated rather than flooding the context. Results that already fit come back unchanged."""
    size = result_bytes(result)
    if size <= budget:
        return result
    data = result.model_dump(mode="json")
    longest = max((len(s) for s in _strings(data)), default=0)
    cap = longest
    clipped: object = data
    while cap > _MIN_KEEP:
        cap = max(_MIN_KEEP, cap // 2)
        clipped = _clip(data, cap, budget)
        if len(to_json(clipped)) <= budget:
            break
    try:
        return type(result).model_validate(clipped)
    except ValidationError:  # a model whose fields refuse cut text: its answer is better whole than lost
        logger.warning("could not clip a %s answer of %d bytes", type(result).__name__, size)
        return result


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def _clip(value: object, cap: int, budget: int) -> object:
    if isinstance(value, str):
        if len(value) <= cap:
            return value
        return value[:cap] + CLIP_NOTE.format(shown=cap, total=len(value), budget=budget)
    if isinstance(value, dict):
        return {k: _clip(v, cap, budget) for k, v in value.items()}
    if isinstance(value, list):
        return [_clip(v, cap, budget) for v in value]
    return value
