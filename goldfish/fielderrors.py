"""Collect every problem in a user document, then raise them together as one InvalidInput.

Agents fix documents in one round trip only if they see all problems at once, so validators
record errors by field path and never stop at the first one.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Any, TypeGuard

from typing_extensions import TypeIs

from goldfish.errors import InvalidInput
from goldfish.names import did_you_mean

# Enough to fix a document; a million bad list items would otherwise make a megabyte error.
MAX_LISTED = 200
MAX_IN_MESSAGE = 20

_PLAIN_KEY = re.compile(r"[A-Za-z0-9_-]+", re.ASCII)


def join_path(base: str, key: str | int) -> str:
    """``a.b`` for plain keys, ``a[3]`` for indexes, ``a["odd key"]`` for anything else."""
    if isinstance(key, int):
        part = f"[{key}]"
    elif _PLAIN_KEY.fullmatch(key):
        part = f".{key}" if base else key
    else:
        part = "[" + _quote(key) + "]"
    return base + part


def _quote(text: str) -> str:
    shown = text if len(text) <= 60 else text[:57] + "..."
    return '"' + shown.replace("\\", "\\\\").replace('"', '\\"') + '"'


def show(value: object) -> str:
    """Short repr for messages; long strings and containers are elided."""
    if isinstance(value, str):
        return _quote(value)
    if isinstance(value, dict):
        return f"an object of {len(value)} keys"
    if isinstance(value, (list, tuple)):
        return f"an array of {len(value)} items"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def type_name(value: object) -> str:
    """JSON-ish name of a value's type, as the agent wrote it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def suggest(word: object, candidates: Iterable[str]) -> str:
    """' Did you mean "x"?' by spelling, else by affix ("goal" → goal_value, "validation" → val), else ''."""
    if not isinstance(word, str) or not word:
        return ""
    known = list(candidates)
    hint = did_you_mean(word, known)
    if hint:
        return hint
    low = word.lower()
    if len(low) < 3:
        return ""  # "a" or "id" would "match" half the keys
    near = [c for c in known if c.lower().startswith(low) or low.startswith(c.lower()) or c.lower().endswith(low)]
    return f' Did you mean "{min(near, key=len)}"?' if near else ""


def is_number(value: object) -> TypeGuard[int | float]:
    """A finite int or float; ``True`` is not 1 and NaN is not a measurement (TypeGuard: NaN is a float)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return not (isinstance(value, float) and not math.isfinite(value))


def is_int(value: object) -> TypeIs[int]:
    return isinstance(value, int) and not isinstance(value, bool)


class FieldErrors:
    """Accumulates ``(field, message)`` pairs; ``raise_if_any`` turns them into one InvalidInput."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.items: list[dict[str, str]] = []
        self.count = 0
        self.muted: set[str] = set()

    def add(self, field: str, message: str) -> None:
        if field in self.muted:
            return
        self.count += 1
        if len(self.items) < MAX_LISTED:
            self.items.append({"field": field or self.what, "message": message})

    def mute(self, field: str) -> None:
        """Report nothing more at ``field``: it already has an error that makes the rest noise."""
        self.muted.add(field)

    def __bool__(self) -> bool:
        return self.count > 0

    def fields(self) -> list[str]:
        return [item["field"] for item in self.items]

    def exact_keys(
        self,
        obj: dict[str, Any],
        path: str,
        required: Iterable[str],
        optional: Iterable[str] = (),
        *,
        hint: str = "",
    ) -> None:
        """Missing required keys and unknown keys, each reported at its own path."""
        required = list(required)
        allowed = required + [k for k in optional if k not in required]
        for key in required:
            if key not in obj:
                self.add(join_path(path, key), f"required key is missing{hint}")
        for key in obj:
            if key in allowed:
                continue
            if not isinstance(key, str):
                self.add(path or self.what, f"keys must be strings, got {show(key)}")
                continue
            where = f" in {path}" if path else ""
            self.add(
                join_path(path, key),
                f"unknown key{where}.{suggest(key, allowed)} Allowed keys: {', '.join(allowed)}",
            )

    def raise_if_any(self, fix: str) -> None:
        if not self.count:
            return
        shown = "; ".join(f"{e['field']}: {e['message']}" for e in self.items[:MAX_IN_MESSAGE])
        more = self.count - min(self.count, MAX_IN_MESSAGE)
        if more:
            shown += f"; ... and {more} more (see details.errors)"
        if not shown.endswith((".", "?", ")")):
            shown += "."
        noun = "validation error" if self.count == 1 else "validation errors"
        raise InvalidInput(
            f"{self.count} {noun}: {shown}",
            fix=fix,
            details={"errors": list(self.items), "error_count": self.count},
        )
