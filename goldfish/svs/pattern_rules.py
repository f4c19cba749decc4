"""Detection rules of failure patterns: how an approved pattern recognises code that will fail again.

A rule is a small JSON document stored on the pattern (``detection``):

- ``{"kind": "regex", "pattern": "<python regex>", "flags": "i"}`` — searched line by line in every
  file of the stage's code (Python and Rust); ``flags`` is any of ``i`` ``m`` ``s`` ``x``.
- ``{"kind": "ast_call", "pattern": "numpy.load", "keywords": {"allow_pickle": true}}`` — a call
  of that function in Python code, import aliases resolved (``np.load`` is ``numpy.load``; the
  name as written also matches). ``keywords`` (optional) lists keyword arguments the call must
  pass with exactly these constant values.
- ``{"kind": "ast_import", "pattern": "tensorflow"}`` — an import of that module or a submodule.

Optional for every kind: ``"files": "<glob>"`` restricting the rule to matching relative paths
(e.g. ``modules/*.py``).
"""

from __future__ import annotations

import ast
import fnmatch
import re
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from goldfish.svs.code import SourceFile

_DOTTED = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")
_FLAGS = {"i": re.IGNORECASE, "m": re.MULTILINE, "s": re.DOTALL, "x": re.VERBOSE}
MAX_PATTERN_CHARS = 2000
MIN_REGEX_LITERAL_CHARS = 6


class Detection(BaseModel):
    """A failure pattern's detection rule (see the module docstring for the format)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["regex", "ast_call", "ast_import"] = Field(description="regex, ast_call or ast_import")
    pattern: str = Field(min_length=1, max_length=MAX_PATTERN_CHARS, description="Regex or dotted name")
    flags: str = Field(default="", description="regex only: any of i, m, s, x")
    keywords: dict[str, Any] | None = Field(
        default=None, description="ast_call only: keyword arguments the call must pass with these constants"
    )
    files: str | None = Field(default=None, description="Glob over relative paths the rule applies to")

    @field_validator("flags")
    @classmethod
    def _flags(cls, value: str) -> str:
        bad = sorted(set(value) - set(_FLAGS))
        if bad:
            raise ValueError(f"unknown regex flags {''.join(bad)!r}; use any of i, m, s, x")
        return value

    @model_validator(mode="after")
    def _pattern_fits_kind(self) -> Detection:
        if self.kind == "regex":
            try:
                re.compile(self.pattern, self._re_flags())
            except re.error as exc:
                raise ValueError(f"pattern is not a valid regular expression: {exc}") from None
        elif not _DOTTED.fullmatch(self.pattern):
            raise ValueError(f"{self.kind} pattern must be a dotted name such as numpy.load, got {self.pattern!r}")
        if self.keywords is not None and self.kind != "ast_call":
            raise ValueError("keywords is only for kind ast_call")
        if self.flags and self.kind != "regex":
            raise ValueError("flags is only for kind regex")
        return self

    def _re_flags(self) -> int:
        value = 0
        for flag in self.flags:
            value |= _FLAGS[flag]
        return value

    @property
    def concrete(self) -> bool:
        """Specific enough to check code with (a regex needs some literal text, not just ``.*``)."""
        if self.kind != "regex":
            return True
        literal = re.sub(r"\\[sSdDwWbB]|[\\^$.|?*+()\[\]{}]", "", self.pattern)
        return len(literal) >= MIN_REGEX_LITERAL_CHARS

    def describe(self) -> str:
        extra = f" with {self.keywords}" if self.keywords else ""
        return f"{self.kind} {self.pattern!r}{extra}"


@dataclass(frozen=True)
class Match:
    file: str
    line: int
    text: str


def _constant(node: ast.expr) -> tuple[bool, Any]:
    try:
        return True, ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False, None


def _call_matches(source: SourceFile, call: ast.Call, rule: Detection) -> bool:
    names = {source.qualified(call.func), source.written(call.func)}
    if rule.pattern not in names:
        return False
    for key, wanted in (rule.keywords or {}).items():
        given = next((kw.value for kw in call.keywords if kw.arg == key), None)
        if given is None:
            return False
        ok, value = _constant(given)
        if not ok or value != wanted or type(value) is not type(wanted):
            return False
    return True


def _imports(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
        return [node.module]
    return []


def find_matches(rule: Detection, files: list[SourceFile], *, limit: int = 3) -> list[Match]:
    """Where ``rule`` matches in ``files`` (at most ``limit`` places)."""
    found: list[Match] = []
    lines_of = {f.path: f.text.splitlines() for f in files}

    def add(source: SourceFile, line: int) -> bool:
        lines = lines_of[source.path]
        text = lines[line - 1].strip() if 0 < line <= len(lines) else ""
        found.append(Match(source.path, line, text[:200]))
        return len(found) >= limit

    for source in files:
        if rule.files and not fnmatch.fnmatch(source.path, rule.files):
            continue
        if rule.kind == "regex":
            regex = re.compile(rule.pattern, rule._re_flags())
            for number, text in enumerate(lines_of[source.path], start=1):
                if regex.search(text) and add(source, number):
                    return found
            continue
        if source.tree is None:
            continue
        for node in ast.walk(source.tree):
            if rule.kind == "ast_call" and isinstance(node, ast.Call) and _call_matches(source, node, rule):
                if add(source, node.lineno):
                    return found
            elif (
                rule.kind == "ast_import"
                and any(name == rule.pattern or name.startswith(rule.pattern + ".") for name in _imports(node))
                and add(source, getattr(node, "lineno", 1))
            ):
                return found
    return found


def line_regex(source_line: str) -> str:
    """A regex matching ``source_line`` whatever its spacing (used for learned patterns)."""
    compact = re.sub(r"\s+", "", source_line.strip())
    return r"\s*".join(re.escape(ch) for ch in compact)
