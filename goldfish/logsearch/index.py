"""The local log index: SQLite FTS5 over every log file Goldfish and its stages write.

A derived cache (``.goldfish/cache/logindex.sqlite``), never the source of truth: the log files
are. It is brought up to date before each search, incrementally: each file is read from the byte
offset where the last update stopped (whole lines only), a renamed file (a rotated JSON log) keeps
its offset through its inode, a replaced or vanished file loses its lines. A missing, damaged or
older-format index is deleted and rebuilt from the files.

Indexed files (paths relative to ``.goldfish``):
- ``logs/*.jsonl``: Goldfish's own JSON-lines logs (``jsonlog``);
- ``runs/<stage run>/logs/stdout.log``: a stage's stdout+stderr, labelled with its run's ids,
  stage and workspace (from the store);
- ``images/builds/*.log``: image build logs (source ``images``, the build id as its run).

Rows: ``lines(id, ts, file_id, line_no, offset)`` and, with the same rowid, the contentless
``fts(message, run, stage, workspace, level, source)``; field columns hold each value as one token
(``field_token``) so ``field:value`` is an exact match inside an FTS5 expression. A hit's text is
read back from its file at ``offset``.
"""

from __future__ import annotations

import calendar
import fcntl
import json
import os
import re
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from goldfish.runs.state import TERMINAL, parse_iso

if TYPE_CHECKING:
    from goldfish.project import Project

SCHEMA = 3
SEQ_BITS = 22  # a line's id is (second << SEQ_BITS) + its place among the lines of that second
SETTLE_SECONDS = 30  # a finished run's log unchanged this long is final
SWEEP_SECONDS = 60  # final files are stat'ed again at most this often
CHUNK = 8 * 1024 * 1024
COMMIT_BYTES = 64 * 1024 * 1024
MAX_MESSAGE = 8000  # indexed characters per line (a huge line is still found by its start)
# A stamp at the start of a line ([2026-01-01 12:00:00], [goldfish 2026-01-01T12:00:00Z], or bare ISO)
# and, after a bracketed stamp, a level word (the SDK's runtime_log format).
_STAMP = re.compile(rb"^(\[(?:goldfish )?)?(\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2})(\.\d+)?Z?"
                    rb"(?:\]\s*(DEBUG|INFO|WARNING|WARN|ERROR|CRITICAL)\b)?")
_ERRORISH = re.compile(rb"^(?:Traceback \(most recent call last\)|[A-Za-z_][\w.]*(?:Error|Exception|Interrupt|Exit)\b:?"
                       rb"|(?:ERROR|FATAL|CRITICAL)\b)")
_LEVELS = {b"DEBUG": "debug", b"INFO": "info", b"WARNING": "warning", b"WARN": "warning", b"ERROR": "error",
           b"CRITICAL": "critical"}
_TOKEN_KEEP = re.compile(r"[^a-z0-9]")


def field_token(value: str) -> str:
    """A field value as one FTS token: lower-case letters and digits, anything else as ``_xx_``."""
    return _TOKEN_KEEP.sub(lambda m: f"_{ord(m.group(0)):x}_", value.lower()) or "_"


def field_tokens(values: list[str] | tuple[str, ...]) -> str:
    return " ".join(field_token(v) for v in values if v)


class IdAllocator:
    """Line ids in time order: ``(second << SEQ_BITS) + n``, n counting the lines of that second in
    the order they were indexed. Newest-first is then ``ORDER BY rowid DESC``, which FTS5 walks
    backwards and stops after LIMIT, however common the word; a time range is a rowid range."""

    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn
        top = conn.execute("SELECT max(id) FROM lines").fetchone()[0]
        self.top_second = (top >> SEQ_BITS) if top is not None else -1
        self.next: dict[int, int] = {}

    def _first_free(self, second: int) -> int:
        if second > self.top_second:
            return 0  # nothing indexed at or after this second yet
        low = second << SEQ_BITS
        top = self.conn.execute("SELECT max(id) FROM lines WHERE id >= ? AND id < ?",
                                (low, low + (1 << SEQ_BITS))).fetchone()[0]
        return 0 if top is None else top - low + 1

    def take(self, ts: float) -> int:
        second = max(0, int(ts))
        while True:
            n = self.next.get(second)
            if n is None:
                n = self._first_free(second)
            if n < 1 << SEQ_BITS:
                self.next[second] = n + 1
                if second > self.top_second:
                    self.top_second = second
                return (second << SEQ_BITS) + n
            second += 1  # 4 M lines stamped with one second: borrow the next second's room


    def settle(self) -> None:
        """Called once the ids taken so far are inserted: the counters can be re-read from the table."""
        if len(self.next) > 100_000:
            self.next.clear()


def id_bound(ts: float) -> int:
    """The smallest id a line of time ``ts`` can have."""
    return max(0, int(ts)) << SEQ_BITS


@dataclass
class FileRow:
    id: int
    path: str
    kind: str
    dev: int
    ino: int
    offset: int
    line_no: int
    last_ts: float
    run_id: str | None


class IndexDamaged(Exception):
    pass


class LogIndex:
    """Open with ``LogIndex(gf_dir)``; ``update()`` then query ``conn``. One process updates at a time
    (a file lock); readers never wait (WAL)."""

    def __init__(self, gf_dir: Path, project: Project | None = None):
        self.gf_dir = Path(gf_dir)
        self.project = project
        self.path = self.gf_dir / "cache" / "logindex.sqlite"
        self.conn: sqlite3.Connection = self._open()
        self._labels: dict[str, tuple[str, str, str, str, float | None]] = {}

    # ------------------------------------------------------------ open / rebuild
    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=60, check_same_thread=False, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA cache_size=-65536")
        return conn

    def _open(self) -> sqlite3.Connection:
        try:
            conn = self._connect()
            version = self._version(conn)
            if version == SCHEMA:
                return conn
            conn.close()
        except sqlite3.DatabaseError:
            pass
        with self._locked():  # one process recreates; the others then find it ready
            try:
                conn = self._connect()
                if self._version(conn) == SCHEMA:
                    return conn
                conn.close()
            except sqlite3.DatabaseError:
                pass
            return self._recreate()

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.parent / "logindex.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    @staticmethod
    def _version(conn: sqlite3.Connection) -> int | None:
        try:
            row = conn.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
        except sqlite3.OperationalError:
            return None
        return int(row[0]) if row else None

    def _recreate(self) -> sqlite3.Connection:
        for suffix in ("", "-wal", "-shm"):
            Path(str(self.path) + suffix).unlink(missing_ok=True)
        conn = self._connect()
        conn.executescript("""
            CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT);
            CREATE TABLE files(id INTEGER PRIMARY KEY, path TEXT NOT NULL, kind TEXT NOT NULL, dev INTEGER,
                               ino INTEGER, offset INTEGER NOT NULL, line_no INTEGER NOT NULL, last_ts REAL,
                               run_id TEXT, final INTEGER NOT NULL DEFAULT 0);
            CREATE TABLE runs(run_id TEXT PRIMARY KEY, prun TEXT, stage TEXT, workspace TEXT, backend TEXT,
                              created REAL);
            CREATE TABLE lines(id INTEGER PRIMARY KEY, ts REAL NOT NULL, file_id INTEGER NOT NULL,
                               line_no INTEGER NOT NULL, offset INTEGER NOT NULL);
            CREATE INDEX lines_file ON lines(file_id);
            CREATE VIRTUAL TABLE fts USING fts5(message, run, stage, workspace, level, source, content='',
                                                tokenize="unicode61 tokenchars '_'");
        """)
        conn.execute("INSERT INTO meta VALUES ('schema', ?)", (str(SCHEMA),))
        conn.execute("INSERT INTO meta VALUES ('swept', '0')")
        return conn

    def rebuild(self) -> None:
        self.conn.close()
        self.conn = self._recreate()

    def close(self) -> None:
        self.conn.close()

    # ------------------------------------------------------------ discovery
    def discover(self) -> list[tuple[str, str]]:
        """(path relative to .goldfish, kind) of every candidate log file, oldest rotated JSON segments
        first. Stage logs are candidates by name (one stat each follows in ``update``)."""
        out: list[tuple[str, str]] = []
        base = str(self.gf_dir)
        try:
            names = sorted(n for n in os.listdir(os.path.join(base, "logs")) if n.endswith(".jsonl"))
            out += [(f"logs/{n}", "json") for n in names]
        except FileNotFoundError:
            pass
        try:
            with os.scandir(os.path.join(base, "runs")) as it:
                out += [(f"runs/{e.name}/logs/stdout.log", "stage") for e in it if e.name.startswith("stage-")]
        except FileNotFoundError:
            pass
        try:
            names = sorted(n for n in os.listdir(os.path.join(base, "images", "builds")) if n.endswith(".log"))
            out += [(f"images/builds/{n}", "build") for n in names]
        except FileNotFoundError:
            pass
        return out

    def _files(self) -> list[tuple[Any, ...]]:
        return self.conn.execute(
            "SELECT id, path, kind, dev, ino, offset, line_no, last_ts, run_id, final FROM files").fetchall()

    # ------------------------------------------------------------ update
    def update(self, max_bytes: int | None = None) -> dict[str, int]:
        """Index what was appended since the last update; returns {files, new_lines, new_bytes}.
        ``max_bytes`` bounds the work of one call (the rest is indexed by the next)."""
        with self._locked():
            try:
                return self._update(max_bytes)
            except sqlite3.DatabaseError:
                # Damaged under us (a truncated file, a disk error): start again from the log files.
                self.rebuild()
                return self._update(max_bytes)

    def _update(self, max_bytes: int | None) -> dict[str, int]:
        """One pass. A finished local run's log (unchanged for SETTLE_SECONDS) is marked final and is
        not stat'ed again except by the sweep every SWEEP_SECONDS: with thousands of runs, the stats
        would cost more than the query. A vanished run directory is noticed at once (discovery)."""
        now = time.time()
        swept = float(self.conn.execute("SELECT value FROM meta WHERE key='swept'").fetchone()[0])
        sweep = now - swept >= SWEEP_SECONDS or now < swept
        # Between sweeps only the path and id of a final file are needed (it is not stat'ed).
        final_rows = self.conn.execute("SELECT path, id FROM files WHERE final=1").fetchall()
        rows = self._files() if sweep else self.conn.execute(
            "SELECT id, path, kind, dev, ino, offset, line_no, last_ts, run_id, final FROM files WHERE final=0"
        ).fetchall()
        final = {} if sweep else dict(final_rows)
        finals = {fid for _path, fid in final_rows}
        known = {r[0] for r in rows} | finals
        by_ino = {(r[3], r[4]): FileRow(*r[:9]) for r in rows}
        seen: set[int] = set()
        stats = {"files": 0, "new_lines": 0, "new_bytes": 0}
        ids = IdAllocator(self.conn)
        budget = max_bytes if max_bytes is not None else 1 << 62
        pending = 0
        self.conn.execute("BEGIN")
        try:
            base = str(self.gf_dir) + "/"
            for rel, kind in self.discover():
                fid = final.get(rel)
                if fid is not None:
                    seen.add(fid)
                    stats["files"] += 1
                    continue
                try:
                    st = os.stat(base + rel)
                except (FileNotFoundError, NotADirectoryError):
                    continue
                stats["files"] += 1
                row = by_ino.get((st.st_dev, st.st_ino))
                if row is not None and row.kind == kind and row.offset <= st.st_size:
                    if row.path != rel:  # a rotated log: same file, new name
                        row.path = rel
                        self.conn.execute("UPDATE files SET path=? WHERE id=?", (rel, row.id))
                else:
                    row = self._new_file(rel, kind, st)
                seen.add(row.id)
                if row.id in finals and st.st_size != row.offset:
                    finals.discard(row.id)  # it grew after all: follow it again
                    self.conn.execute("UPDATE files SET final=0 WHERE id=?", (row.id,))
                if st.st_size > row.offset and budget > 0:
                    lines, used = self._read(row, kind, st.st_size, ids, budget)
                    stats["new_lines"] += lines
                    stats["new_bytes"] += used
                    budget -= used
                    pending += used
                    if pending >= COMMIT_BYTES:
                        # Commit as it goes: the WAL stays small and a long first indexing shows progress.
                        self.conn.execute("COMMIT")
                        self.conn.execute("BEGIN")
                        pending = 0
                if (row.id not in finals and kind == "stage" and st.st_size == row.offset
                        and st.st_mtime < now - SETTLE_SECONDS and self._finished(row)):
                    self.conn.execute("UPDATE files SET final=1 WHERE id=?", (row.id,))
            for gone in known - seen:
                self._drop_file(gone)
            if sweep:
                self.conn.execute("UPDATE meta SET value=? WHERE key='swept'", (str(now),))
            self.conn.execute("COMMIT")
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        return stats

    def _finished(self, row: FileRow) -> bool:
        """The run is terminal and its log cannot grow again (gce logs are mirrored on demand)."""
        if not row.run_id:
            return False
        doc = self._run_doc(row.run_id)
        return doc.get("state") in TERMINAL and doc.get("backend") != "gce"

    def _new_file(self, rel: str, kind: str, st: os.stat_result) -> FileRow:
        # The same path with another inode: the old file was replaced; its lines no longer exist.
        for (fid,) in self.conn.execute("SELECT id FROM files WHERE path=?", (rel,)).fetchall():
            self._drop_file(fid)
        run_id = rel.split("/")[1] if kind == "stage" else (Path(rel).stem if kind == "build" else None)
        last_ts = st.st_mtime
        if kind == "stage" and run_id:
            created = self.labels(run_id)[4]
            last_ts = created if created is not None else st.st_mtime
        cur = self.conn.execute(
            "INSERT INTO files(path, kind, dev, ino, offset, line_no, last_ts, run_id) VALUES (?,?,?,?,0,0,?,?)",
            (rel, kind, st.st_dev, st.st_ino, last_ts, run_id))
        return FileRow(int(cur.lastrowid or 0), rel, kind, st.st_dev, st.st_ino, 0, 0, last_ts, run_id)

    def _drop_file(self, file_id: int) -> None:
        # The contentless FTS rows of these lines stay behind, unreachable (no lines row joins them)
        # until the next rebuild; only old rotated segments and deleted runs go this way.
        self.conn.execute("DELETE FROM lines WHERE file_id=?", (file_id,))
        self.conn.execute("DELETE FROM files WHERE id=?", (file_id,))

    def labels(self, run_id: str) -> tuple[str, str, str, str, float | None]:
        """(run_id, prun, stage, workspace, created) of a stage run, from the store (cached)."""
        if run_id in self._labels:
            return self._labels[run_id]
        row = self.conn.execute("SELECT run_id, prun, stage, workspace, created FROM runs WHERE run_id=?",
                                (run_id,)).fetchone()
        if row is None:
            doc = self._run_doc(run_id)
            row = (run_id, doc.get("pipeline_run_id") or "", doc.get("stage") or "", doc.get("workspace") or "",
                   parse_iso(doc.get("started_at") or doc.get("created_at")))
            if doc:
                self.conn.execute("INSERT OR REPLACE INTO runs VALUES (?,?,?,?,?,?)",
                                  (*row[:4], doc.get("backend") or "", row[4]))
        self._labels[run_id] = row
        return row

    def _run_doc(self, run_id: str) -> dict[str, Any]:
        if self.project is None:
            return {}
        store = self.project.store
        entry = store.table("run_index").get_doc(run_id)
        if not entry or not entry.get("workspace"):
            return {}
        from goldfish.runs.state import ws_partition

        return store.table("runs", ws_partition(entry["workspace"])).get_doc(run_id) or {}

    def _read(self, row: FileRow, kind: str, size: int, ids: IdAllocator, budget: int) -> tuple[int, int]:
        """Index whole lines of ``row`` from its offset; returns (lines, bytes consumed)."""
        path = self.gf_dir / row.path
        total_lines = used = 0
        fields = self._file_fields(row, kind)
        with open(path, "rb") as f:
            f.seek(row.offset)
            while row.offset < size and used < budget:
                data = f.read(min(CHUNK, size - row.offset))
                if not data:
                    break
                whole = data.rfind(b"\n") + 1
                if whole == 0:
                    if len(data) < CHUNK:
                        break  # a line still being written: the next update takes it
                    whole = len(data)  # a single line longer than CHUNK: index what there is
                f.seek(row.offset + whole)
                lines_rows, fts_rows = [], []
                offset, line_no, last_ts = row.offset, row.line_no, row.last_ts
                parts = data[:whole].split(b"\n")
                if data[:whole].endswith(b"\n"):
                    parts.pop()
                for raw in parts:
                    line_no += 1
                    if raw.strip():
                        if kind == "json":
                            ts, message, cols = _json_line(raw, last_ts)
                        else:
                            ts, message, cols = _text_line(raw, last_ts, fields)
                        last_ts = ts
                        line_id = ids.take(ts)
                        lines_rows.append((line_id, ts, row.id, line_no, offset))
                        fts_rows.append((line_id, message, *cols))
                    offset += len(raw) + 1
                self.conn.executemany("INSERT INTO lines VALUES (?,?,?,?,?)", lines_rows)
                self.conn.executemany(
                    "INSERT INTO fts(rowid, message, run, stage, workspace, level, source) VALUES (?,?,?,?,?,?,?)",
                    fts_rows)
                ids.settle()
                row.offset, row.line_no, row.last_ts = row.offset + whole, line_no, last_ts
                total_lines += len(lines_rows)
                used += whole
        self.conn.execute("UPDATE files SET offset=?, line_no=?, last_ts=? WHERE id=?",
                          (row.offset, row.line_no, row.last_ts, row.id))
        return total_lines, used

    def _file_fields(self, row: FileRow, kind: str) -> tuple[str, str, str, str]:
        """(run, stage, workspace, source) tokens every line of a text file shares."""
        if kind == "stage" and row.run_id:
            run_id, prun, stage, workspace, _ = self.labels(row.run_id)
            return field_tokens([run_id, prun]), field_tokens([stage]), field_tokens([workspace]), "stage"
        if kind == "build" and row.run_id:
            return field_tokens([row.run_id]), "", "", "images"
        return "", "", "", "stage"


_HOURS: dict[bytes, float] = {}


def _stamp(text: bytes, frac: bytes | None) -> float:
    """Unix seconds of ``YYYY-MM-DD HH:MM:SS`` (UTC); hours are cached, lines of one hour share the work."""
    base = _HOURS.get(text[:13])
    if base is None:
        base = calendar.timegm((int(text[0:4]), int(text[5:7]), int(text[8:10]), int(text[11:13]), 0, 0))
        if len(_HOURS) > 10_000:
            _HOURS.clear()
        _HOURS[text[:13]] = base
    return base + int(text[14:16]) * 60 + int(text[17:19]) + (float(frac) if frac else 0.0)


def _text_line(raw: bytes, last_ts: float, fields: tuple[str, str, str, str]) -> tuple[float, str, tuple[str, ...]]:
    ts = last_ts
    source = fields[3]
    level = "info"
    m = _STAMP.match(raw)
    if m:
        prefix, text, frac, word = m.groups()
        with suppress(ValueError, OverflowError):  # digits that are not a time: keep the last one
            ts = _stamp(text, frac)
        if prefix == b"[goldfish ":
            source = "runner"  # a note the runner wrote into the stage log
        if word:
            level = _LEVELS[word]
    elif _ERRORISH.match(raw):
        level = "error"
    message = (raw if len(raw) <= MAX_MESSAGE else raw[:MAX_MESSAGE * 2]).decode("utf-8", errors="replace")
    return ts, message[:MAX_MESSAGE], (fields[0], fields[1], fields[2], level, source)


def _json_line(raw: bytes, last_ts: float) -> tuple[float, str, tuple[str, ...]]:
    try:
        doc = json.loads(raw)
        if not isinstance(doc, dict):
            raise ValueError
    except ValueError:
        message = raw[:MAX_MESSAGE].decode("utf-8", errors="replace")
        return last_ts, message, ("", "", "", "info", "")
    ts = parse_iso(doc.get("ts")) or last_ts
    message = str(doc.get("message") or "")
    extra = doc.get("extra")
    if isinstance(extra, dict) and extra:
        message += " " + " ".join(f"{k}={v}" for k, v in extra.items())
    ids = [str(v) for v in doc.get("run_ids") or [] if v]
    cols = (field_tokens(ids), field_tokens([str(doc.get("stage") or "")]),
            field_tokens([str(doc.get("workspace") or "")]), field_token(str(doc.get("level") or "info")),
            field_token(str(doc.get("source") or "")))
    return ts, message[:MAX_MESSAGE], cols


def read_line(path: Path, offset: int, limit: int = 4000) -> bytes:
    """The line at ``offset`` of ``path`` (b"" when the file is gone or shorter)."""
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.readline(limit * 4 + 1)
    except OSError:
        return b""
    return data.rstrip(b"\n")
