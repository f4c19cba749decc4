"""A subset of the Cloud Logging filter language, for the fake Cloud Logging endpoint.

Supported: comparisons ``path op value`` with ``= != > >= < <= :`` (``:`` is "has": substring,
case-insensitive), ``AND`` / ``OR`` / ``NOT`` / ``-`` (negation), parentheses, implicit AND between
terms, and bare (quoted) words matched against the whole entry's text. Numbers compare as numbers,
everything else as strings; ``severity`` compares by level.
"""

from __future__ import annotations

import json
import re
from typing import Any

SEVERITIES = ["DEFAULT", "DEBUG", "INFO", "NOTICE", "WARNING", "ERROR", "CRITICAL", "ALERT", "EMERGENCY"]
_TOKEN = re.compile(r'\s*(?:(\()|(\))|("(?:[^"\\]|\\.)*")|(>=|<=|!=|=|>|<|:)|([^\s()"=<>!:]+))')


class FilterError(ValueError):
    pass


def tokenize(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise FilterError(f"cannot parse filter at {pos}: {text[pos:pos + 20]!r}")
        pos = m.end()
        lp, rp, quoted, op, word = m.groups()
        if lp:
            out.append(("(", lp))
        elif rp:
            out.append((")", rp))
        elif quoted is not None:
            out.append(("str", json.loads(quoted)))
        elif op:
            out.append(("op", op))
        else:
            out.append(("word", word))
    return out


class Parser:
    def __init__(self, text: str):
        self.toks = tokenize(text)
        self.i = 0

    def peek(self) -> tuple[str, str] | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self) -> tuple[str, str]:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def parse(self) -> Any:
        if not self.toks:
            return ("true",)
        node = self.expr()
        if self.peek() is not None:
            raise FilterError(f"unexpected {self.peek()}")
        return node

    def expr(self) -> Any:
        node = self.conj()
        while self.peek() == ("word", "OR"):
            self.take()
            node = ("or", node, self.conj())
        return node

    def conj(self) -> Any:
        node = self.unary()
        while True:
            tok = self.peek()
            if tok is None or tok[0] == ")" or tok == ("word", "OR"):
                return node
            if tok == ("word", "AND"):
                self.take()
            node = ("and", node, self.unary())

    def unary(self) -> Any:
        tok = self.peek()
        if tok == ("word", "NOT"):
            self.take()
            return ("not", self.unary())
        if tok is not None and tok[0] == "word" and tok[1].startswith("-") and len(tok[1]) > 1:
            self.toks[self.i] = ("word", tok[1][1:])
            return ("not", self.unary())
        return self.primary()

    def primary(self) -> Any:
        tok = self.take()
        if tok[0] == "(":
            node = self.expr()
            if self.take()[0] != ")":
                raise FilterError("missing )")
            return node
        nxt = self.peek()
        if tok[0] == "word" and nxt is not None and nxt[0] == "op":
            op = self.take()[1]
            _kind, value = self.take()
            return ("cmp", tok[1], op, value)
        return ("text", tok[1])


def _get(entry: dict[str, Any], path: str) -> Any:
    cur: Any = entry
    for part in path.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return None
        cur = cur[part]
    return cur


def _num(v: Any) -> float | None:
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def evaluate(node: Any, entry: dict[str, Any]) -> bool:
    kind = node[0]
    if kind == "true":
        return True
    if kind == "and":
        return evaluate(node[1], entry) and evaluate(node[2], entry)
    if kind == "or":
        return evaluate(node[1], entry) or evaluate(node[2], entry)
    if kind == "not":
        return not evaluate(node[1], entry)
    if kind == "text":
        return node[1].lower() in json.dumps(entry).lower()
    _, path, op, value = node
    got = _get(entry, path)
    if got is None:
        return op == "!="
    if op == ":":
        return str(value).lower() in (json.dumps(got) if isinstance(got, (dict, list)) else str(got)).lower()
    if path == "severity":
        a, b = SEVERITIES.index(str(got)) if got in SEVERITIES else 0, SEVERITIES.index(str(value).upper())
    elif _num(got) is not None and _num(value) is not None:
        a, b = _num(got), _num(value)  # type: ignore[assignment]
    else:
        a, b = str(got), str(value)  # type: ignore[assignment]
    return {"=": a == b, "!=": a != b, ">": a > b, ">=": a >= b, "<": a < b, "<=": a <= b}[op]


def matches(text: str, entry: dict[str, Any]) -> bool:
    return evaluate(Parser(text).parse(), entry)
