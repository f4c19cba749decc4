"""The log query language: a small part of LogsQL.

``parse(text, now)`` → ``Query(node, limit)``; a malformed query raises ``QueryError`` with the
0-based character position, a caret line, and the guide line that shows the right form.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from goldfish.errors import InvalidInput

FIELDS = ("run", "stage", "workspace", "level", "source")
LEVELS = ("debug", "info", "warning", "error", "critical")
MAX_LIMIT = 1000
MAX_QUERY = 2000
MAX_TERMS = 64

GUIDE = """\
Goldfish log search (a small LogsQL). Newest lines first; every hit names its run, file and line.
  word                     a word anywhere in the line: Traceback   (case-insensitive; word* = prefix)
  "a phrase"               these words in this order: "CUDA out of memory"
  run:ID                   a stage run (stage-…) or pipeline run (prun-…): run:stage-1a2b3c4d
  stage:NAME               stage name: stage:train
  workspace:NAME           workspace: workspace:lstm_baseline
  level:LEVEL              debug, info, warning, error, critical: level:error
  source:NAME              stage (stage stdout/stderr), runner, reconciler, mcp, images, backup, cli: source:runner
  _time:15m                the last 15 minutes (s, m, h, d, w): _time:2h
  _time:[START, END]       a time range, ISO dates or times in UTC: _time:[2026-01-01, 2026-01-02T12:00]
  a AND b, a b             both (AND is implied between terms)
  a OR b                   either
  NOT a, -a                not a: error NOT source:mcp
  ( … )                    grouping: (OOM OR "out of memory") AND stage:train
  … | limit N              at most N hits (1-1000): level:error | limit 10
Examples:
  "Traceback (most recent call last)" _time:1d
  run:prun-1a2b3c4d level:error
  stage:train AND (nan OR inf) NOT workspace:scratch
  source:images error _time:[2026-01-01, 2026-01-02]
Stage lines carry their run's labels (run, stage, workspace); on gce runs the same query also reads
Cloud Logging (those hits have where="cloud")."""


def guide_line(topic: str) -> str:
    """The guide's line about ``topic`` (a marker it starts with), for error messages."""
    for line in GUIDE.splitlines():
        if line.strip().startswith(topic):
            return line.strip()
    return GUIDE.splitlines()[0]


class QueryError(InvalidInput):
    def __init__(self, query: str, position: int, problem: str, topic: str):
        self.position = position
        self.problem = problem
        self.guide = re.sub(r"\s{2,}", " — ", guide_line(topic))
        caret = f"\n  {query}\n  {' ' * position}^"
        super().__init__(f"Query error at position {position}: {problem}.{caret}",
                         fix=f"Write it as the guide shows: {self.guide} (show_guide=True lists every form).",
                         details={"position": position, "problem": problem, "guide": self.guide})


# ------------------------------------------------------------------ AST
@dataclass(frozen=True)
class Text:
    """A word (``prefix``: word*) or a phrase; ``tokens`` are its words as the index splits them."""
    tokens: tuple[str, ...]
    prefix: bool = False
    phrase: bool = False
    raw: str = ""


@dataclass(frozen=True)
class Field:
    name: str
    value: str


@dataclass(frozen=True)
class TimeRange:
    start: float | None
    end: float | None


@dataclass(frozen=True)
class Not:
    item: Node


@dataclass(frozen=True)
class And:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    items: tuple[Node, ...]


Node = Text | Field | TimeRange | Not | And | Or


@dataclass(frozen=True)
class Query:
    node: Node | None
    limit: int | None
    text: str


# ------------------------------------------------------------------ lexing
_WORD_TOKENS = re.compile(r"[^\W_]+|_+", re.UNICODE)
_INDEX_TOKEN = re.compile(r"\w+", re.UNICODE)
_FIELD = re.compile(r"([A-Za-z_][A-Za-z0-9_]*):")
_BARE = re.compile(r'[^\s()"|]+')
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(s|m|h|d|w)$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def index_tokens(text: str) -> tuple[str, ...]:
    """Words as the index sees them (letters, digits and underscores), lower-case."""
    return tuple(t.lower() for t in _INDEX_TOKEN.findall(text))


@dataclass
class _Tok:
    kind: str  # ( ) | not word phrase field
    text: str
    pos: int
    field: str = ""


class _Parser:
    def __init__(self, text: str, now: float):
        self.text = text
        self.now = now
        self.toks = self._lex()
        self.i = 0
        self.terms = 0

    def fail(self, pos: int, problem: str, topic: str) -> QueryError:
        return QueryError(self.text, pos, problem, topic)

    def _quoted(self, pos: int) -> tuple[str, int]:
        """The phrase starting at the quote at ``pos``: (content, position after the closing quote)."""
        out, i = [], pos + 1
        while i < len(self.text):
            ch = self.text[i]
            if ch == "\\" and i + 1 < len(self.text):
                out.append(self.text[i + 1])
                i += 2
                continue
            if ch == '"':
                return "".join(out), i + 1
            out.append(ch)
            i += 1
        raise self.fail(pos, "unbalanced quote: this \" is never closed", '"a phrase"')

    def _lex(self) -> list[_Tok]:
        text, toks, i = self.text, [], 0
        while i < len(text):
            ch = text[i]
            if ch.isspace():
                i += 1
            elif ch in "()|":
                toks.append(_Tok(ch, ch, i))
                i += 1
            elif ch in "-!" and i + 1 < len(text) and not text[i + 1].isspace():
                toks.append(_Tok("not", ch, i))  # -term: negation glued to its term
                i += 1
            elif ch == '"':
                content, end = self._quoted(i)
                toks.append(_Tok("phrase", content, i))
                i = end
            else:
                m = _FIELD.match(text, i)
                if m:
                    name, start = m.group(1), m.end()
                    if name == "_time":
                        value, end = self._time_value(i, start)
                    elif start < len(text) and text[start] == '"':
                        value, end = self._quoted(start)
                    else:
                        vm = _BARE.match(text, start)
                        value, end = (vm.group(0), vm.end()) if vm else ("", start)
                    toks.append(_Tok("field", value, i, field=name))
                    i = end
                    continue
                m = _BARE.match(text, i)
                assert m is not None  # any other character starts a bare word
                toks.append(_Tok("word", m.group(0), i))
                i = m.end()
        return toks

    def _time_value(self, pos: int, start: int) -> tuple[str, int]:
        text = self.text
        if start < len(text) and text[start] in "[(":
            close = min((j for j in (text.find("]", start), text.find(")", start)) if j >= 0), default=-1)
            if close < 0:
                raise self.fail(start, "the time range is never closed with ]", "_time:[START, END]")
            return text[start:close + 1], close + 1
        vm = _BARE.match(text, start)
        return (vm.group(0), vm.end()) if vm else ("", start)

    # -------------------------------------------------------------- grammar
    def peek(self) -> _Tok | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def is_op(self, tok: _Tok | None, name: str) -> bool:
        return tok is not None and tok.kind == "word" and tok.text.upper() == name

    def parse(self) -> Query:
        if len(self.text) > MAX_QUERY:
            raise self.fail(MAX_QUERY, f"the query is longer than {MAX_QUERY} characters", "a AND b")
        node = None
        tok = self.peek()
        if tok is not None and tok.kind != "|":
            node = self.expr()
        limit = None
        while (tok := self.peek()) is not None:
            if tok.kind == ")":
                raise self.fail(tok.pos, "this ) closes nothing", "( … )")
            if tok.kind != "|":
                raise self.fail(tok.pos, f"unexpected {tok.text!r}", "a AND b")
            self.i += 1
            limit = self.pipe(tok)
        return Query(node=node, limit=limit, text=self.text)

    def pipe(self, bar: _Tok) -> int:
        name = self.peek()
        if name is None or not (name.kind == "word" and name.text.lower() == "limit"):
            raise self.fail(name.pos if name else bar.pos, "only '| limit N' may follow |", "… | limit N")
        self.i += 1
        value = self.peek()
        if value is None or value.kind != "word" or not value.text.isdigit() or not 1 <= int(value.text) <= MAX_LIMIT:
            raise self.fail(value.pos if value else name.pos + len(name.text),
                            f"limit needs a whole number from 1 to {MAX_LIMIT}", "… | limit N")
        self.i += 1
        return int(value.text)

    def expr(self) -> Node:
        items = [self.conj()]
        while self.is_op(self.peek(), "OR"):
            op = self.toks[self.i]
            self.i += 1
            if self.peek() is None or self.peek().kind in (")", "|"):  # type: ignore[union-attr]
                raise self.fail(op.pos, "OR needs a term on both sides", "a OR b")
            items.append(self.conj())
        return items[0] if len(items) == 1 else Or(tuple(items))

    def conj(self) -> Node:
        items = [self.unary()]
        while True:
            tok = self.peek()
            if tok is None or tok.kind in (")", "|") or self.is_op(tok, "OR"):
                break
            if self.is_op(tok, "AND"):
                self.i += 1
                nxt = self.peek()
                if nxt is None or nxt.kind in (")", "|") or self.is_op(nxt, "OR"):
                    raise self.fail(tok.pos, "AND needs a term on both sides", "a AND b, a b")
            items.append(self.unary())
        return items[0] if len(items) == 1 else And(tuple(items))

    def unary(self) -> Node:
        tok = self.peek()
        if tok is None:
            raise self.fail(len(self.text), "the query ends where a term was expected", "a AND b, a b")
        if self.is_op(tok, "NOT") or tok.kind == "not":
            self.i += 1
            if self.peek() is None or self.peek().kind in (")", "|"):  # type: ignore[union-attr]
                raise self.fail(tok.pos, "NOT needs a term after it", "NOT a, -a")
            return Not(self.unary())
        return self.primary()

    def primary(self) -> Node:
        tok = self.toks[self.i]
        self.i += 1
        if tok.kind == "(":
            if self.peek() is not None and self.peek().kind == ")":  # type: ignore[union-attr]
                raise self.fail(tok.pos, "empty parentheses", "( … )")
            node = self.expr()
            close = self.peek()
            if close is None or close.kind != ")":
                raise self.fail(tok.pos, "this ( is never closed", "( … )")
            self.i += 1
            return node
        if tok.kind == ")":
            raise self.fail(tok.pos, "this ) closes nothing", "( … )")
        if tok.kind == "|":
            raise self.fail(tok.pos, "a term was expected before |", "… | limit N")
        self.terms += 1
        if self.terms > MAX_TERMS:
            raise self.fail(tok.pos, f"more than {MAX_TERMS} terms", "a AND b")
        if tok.kind == "field":
            return self.field(tok)
        if tok.kind == "phrase":
            tokens = index_tokens(tok.text)
            if not tokens:
                raise self.fail(tok.pos, "the phrase has no letters or digits to search for", '"a phrase"')
            return Text(tokens=tokens, phrase=True, raw=tok.text)
        prefix = tok.text.endswith("*") and len(tok.text) > 1
        tokens = index_tokens(tok.text.rstrip("*"))
        if not tokens:
            raise self.fail(tok.pos, f"{tok.text!r} has no letters or digits to search for; quote it to "
                                     "search a phrase", "word")
        return Text(tokens=tokens, prefix=prefix, phrase=len(tokens) > 1, raw=tok.text)

    def field(self, tok: _Tok) -> Node:
        name, value = tok.field, tok.text
        if name == "_time":
            return self.time(tok)
        if name not in FIELDS:
            raise self.fail(tok.pos, f"unknown field {name!r} (fields: {', '.join(FIELDS)}, _time); "
                                     f"to search the text, quote it: \"{name}:{value}\"", "run:ID")
        topic = {"run": "run:ID", "stage": "stage:NAME", "workspace": "workspace:NAME", "level": "level:LEVEL",
                 "source": "source:NAME"}[name]
        if not value:
            raise self.fail(tok.pos + len(name) + 1, f"{name}: needs a value", topic)
        if name == "level":
            value = value.lower()
            value = {"warn": "warning", "err": "error", "fatal": "critical"}.get(value, value)
            if value not in LEVELS:
                raise self.fail(tok.pos + len(name) + 1, f"unknown level {tok.text!r}", topic)
        return Field(name=name, value=value if name != "source" else value.lower())

    def time(self, tok: _Tok) -> TimeRange:
        value, at = tok.text, tok.pos + len("_time:")
        if not value:
            raise self.fail(at, "_time: needs a duration like 15m or a range [START, END]", "_time:15m")
        if value[0] in "[(":
            inner = value[1:-1]
            parts = inner.split(",")
            if len(parts) != 2:
                raise self.fail(at, "a time range needs two times separated by a comma", "_time:[START, END]")
            start = self.instant(parts[0].strip(), at + 1 + len(parts[0]) - len(parts[0].lstrip()))
            end_pos = at + 1 + len(parts[0]) + 1 + len(parts[1]) - len(parts[1].lstrip())
            end = self.instant(parts[1].strip(), end_pos, end=True)
            if start is not None and end is not None and end < start:
                raise self.fail(end_pos, "the range ends before it starts", "_time:[START, END]")
            return TimeRange(start=start, end=end)
        m = _DURATION.match(value)
        if not m:
            raise self.fail(at, f"bad time {value!r}: use a duration (15m, 2h, 7d) or a range [START, END]",
                            "_time:15m")
        return TimeRange(start=self.now - float(m.group(1)) * _UNITS[m.group(2)], end=None)

    def instant(self, text: str, pos: int, end: bool = False) -> float | None:
        if text in ("", "*"):
            return None
        if text == "now":
            return self.now
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise self.fail(pos, f"bad time {text!r}: use an ISO date or time (2026-01-02 or "
                                 "2026-01-02T12:00:00Z)", "_time:[START, END]") from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        stamp = parsed.timestamp()
        if end and len(text) == 10:  # a bare date as the end means the whole day
            stamp += 86400 - 1e-6
        return stamp


def parse(text: str, now: float) -> Query:
    """The query's tree (``node`` None: everything) and its ``| limit``."""
    return _Parser(text, now).parse()
