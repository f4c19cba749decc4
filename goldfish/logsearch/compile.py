"""A query tree → SQL over the index (``lines`` joined with ``fts``).

Sub-trees of words, phrases and fields become one FTS5 expression (FTS5 does the boolean work:
AND, OR, and ``a NOT b``); ``_time`` becomes a range of line ids (ids are in time order, see
``index.IdAllocator``) plus the exact range on ``lines.ts``; what FTS5 cannot say alone
(a NOT with nothing positive beside it, an OR mixing time and text) becomes SQL around
``id IN (SELECT rowid FROM fts WHERE fts MATCH ?)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from goldfish.logsearch.index import SEQ_BITS, field_token, id_bound
from goldfish.logsearch.query import And, Field, Node, Not, Or, Text, TimeRange

_COLUMN = {"run": "run", "stage": "stage", "workspace": "workspace", "level": "level", "source": "source"}


@dataclass
class Part:
    """A compiled node: a positive FTS5 expression, a negated one, or SQL (with parameters)."""
    fts: str | None = None
    negated: bool = False
    sql: str | None = None
    params: list[object] = field(default_factory=list)


def _quote(token: str) -> str:
    return '"' + token.replace('"', '""') + '"'


def _text(node: Text) -> str:
    phrase = _quote(" ".join(node.tokens))
    return phrase + (" *" if node.prefix else "")


def _as_sql(part: Part) -> tuple[str, list[object]]:
    if part.sql is not None:
        return part.sql, part.params
    if part.negated:
        # Probed per candidate row (newest first, stopping at LIMIT): cheap however common the word.
        return "NOT EXISTS (SELECT 1 FROM fts WHERE fts MATCH ? AND fts.rowid = l.id)", [part.fts]
    return "l.id IN (SELECT rowid FROM fts WHERE fts MATCH ?)", [part.fts]


def compile_node(node: Node) -> Part:
    if isinstance(node, Text):
        return Part(fts=_text(node))
    if isinstance(node, Field):
        return Part(fts=f"{_COLUMN[node.name]} : {_quote(field_token(node.value))}")
    if isinstance(node, TimeRange):
        sql, params = time_sql(node, "l.id")
        return Part(sql=sql, params=params)
    if isinstance(node, Not):
        inner = compile_node(node.item)
        if inner.fts is not None and not inner.negated:
            return Part(fts=inner.fts, negated=True)
        if inner.fts is not None:  # NOT NOT x
            return Part(fts=inner.fts)
        sql, ps = _as_sql(inner)
        return Part(sql=f"NOT ({sql})", params=ps)
    if isinstance(node, And):
        parts = [compile_node(n) for n in node.items]
        pos = [p.fts for p in parts if p.fts is not None and not p.negated]
        neg = [p.fts for p in parts if p.fts is not None and p.negated]
        rest = [p for p in parts if p.fts is None]
        if pos:
            expr = " AND ".join(f"({e})" for e in pos)
            if neg:
                expr = f"({expr})" + "".join(f" NOT ({e})" for e in neg)
            fts_part = Part(fts=expr)
            if not rest:
                return fts_part
            rest.insert(0, fts_part)
        else:
            rest = [Part(fts=e, negated=True) for e in neg] + rest
        sqls = [_as_sql(p) for p in rest]
        return Part(sql=" AND ".join(f"({s})" for s, _ in sqls), params=[x for _, ps in sqls for x in ps])
    if isinstance(node, Or):
        parts = [compile_node(n) for n in node.items]
        if all(p.fts is not None and not p.negated for p in parts):
            return Part(fts=" OR ".join(f"({p.fts})" for p in parts))
        sqls = [_as_sql(p) for p in parts]
        return Part(sql=" OR ".join(f"({s})" for s, _ in sqls), params=[x for _, ps in sqls for x in ps])
    raise TypeError(f"unknown query node {node!r}")


def time_sql(node: TimeRange, id_col: str) -> tuple[str, list[object]]:
    """A time range as an id range on ``id_col`` (usable by the primary key or FTS5's rowid) and the
    exact range on ``l.ts``."""
    conds: list[str] = []
    params: list[object] = []
    if node.start is not None:
        conds += [f"{id_col} >= ?", "l.ts >= ?"]
        params += [id_bound(node.start), node.start]
    if node.end is not None:
        conds += [f"{id_col} < ?", "l.ts <= ?"]
        params += [id_bound(node.end) + (1 << SEQ_BITS), node.end]
    return " AND ".join(conds) or "1", params


def select(node: Node | None, after: int | None, limit: int) -> tuple[str, list[object]]:
    """SQL returning (id, ts, file_id, line_no, offset) of the newest ``limit`` matches with an id
    below ``after``. Ids are in time order, so newest first is ``ORDER BY id DESC``: FTS5 walks its
    doclists backwards and the primary key is read backwards, both stopping after LIMIT."""
    where: list[str] = []
    params: list[object] = []
    part = compile_node(node) if node is not None else None
    fts_drives = part is not None and part.fts is not None and not part.negated
    # A top-level AND of an FTS expression and SQL conditions: let FTS drive, filter the rest.
    if part is not None and part.fts is None and isinstance(node, And):
        parts = [compile_node(n) for n in node.items]
        head = compile_node(And(tuple(n for n, p in zip(node.items, parts, strict=True) if p.fts is not None))) \
            if any(p.fts is not None and not p.negated for p in parts) else None
        if head is not None and head.fts is not None and not head.negated:
            for n, p in zip(node.items, parts, strict=True):
                if isinstance(n, TimeRange):
                    sql, ps = time_sql(n, "fts.rowid")  # a rowid range FTS5 uses itself
                elif p.fts is None:
                    sql, ps = _as_sql(p)
                else:
                    continue
                where.append(f"({sql})")
                params += ps
            part, fts_drives = head, True
    id_col = "fts.rowid" if fts_drives else "l.id"
    if after is not None:
        where.append(f"{id_col} < ?")
        params.append(after)
    cols = "l.id, l.ts, l.file_id, l.line_no, l.offset"
    if fts_drives:
        assert part is not None
        sql = f"SELECT {cols} FROM fts JOIN lines l ON l.id = fts.rowid WHERE fts MATCH ?"
        params = [part.fts, *params]
    else:
        sql = f"SELECT {cols} FROM lines l WHERE 1"
        if part is not None:
            cond, ps = _as_sql(part)
            sql += f" AND ({cond})"
            params = [*ps, *params]
    for cond in where:
        sql += f" AND {cond}"
    return sql + f" ORDER BY {id_col} DESC LIMIT ?", [*params, limit]
