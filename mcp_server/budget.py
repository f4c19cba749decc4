"""Result size budget: no tool result may flood the model's context.

A page of a list result stops early when its JSON would exceed ``MAX_RESULT_BYTES`` (~15k tokens):
``has_more`` is then true and the caller continues from ``offset + len(rows)``, as with any page.
``limit`` bounds the row count; this bounds the bytes, which rows of free text (reasons, notes,
thoughts) can blow up whatever the count.
"""

from __future__ import annotations

from typing import TypeVar

from pydantic import BaseModel
from pydantic_core import to_json

MAX_RESULT_BYTES = 60_000

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
