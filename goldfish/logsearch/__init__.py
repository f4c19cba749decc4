"""Log search: Goldfish's JSON-lines logs, stage logs and build logs in a local SQLite FTS5 index,
queried with a small LogsQL (``search_logs``); gce stage lines come from Cloud Logging.

``configure(gf_dir, role)`` sends this process's ``logging`` records to ``.goldfish/logs/<role>.jsonl``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from goldfish import lazy_face

if TYPE_CHECKING:
    from goldfish.logsearch.index import LogIndex
    from goldfish.logsearch.jsonlog import JsonLinesHandler, configure, configure_project
    from goldfish.logsearch.query import GUIDE, QueryError, parse
    from goldfish.logsearch.search import LogHit, SearchResult, search_logs

__all__ = ["GUIDE", "JsonLinesHandler", "LogHit", "LogIndex", "QueryError", "SearchResult", "configure",
           "configure_project", "parse", "search_logs"]

__getattr__ = lazy_face(__name__, {
    "configure": "jsonlog", "configure_project": "jsonlog", "JsonLinesHandler": "jsonlog", "LogIndex": "index",
    "search_logs": "search", "SearchResult": "search", "LogHit": "search", "QueryError": "query",
    "GUIDE": "query", "parse": "query",
})
