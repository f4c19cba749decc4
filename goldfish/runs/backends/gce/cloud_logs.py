"""Stage logs in Cloud Logging (google-cloud-logging over its JSON API, imported on first use).

The worker agent writes each stage log line as an entry of log ``goldfish-stage`` with labels
``goldfish_run``, ``goldfish_attempt`` (and the run's other ids) and ``jsonPayload {offset, text}``,
``offset`` being the line's byte offset in the stage's log. ``stage_log_bytes`` reads them back in
offset order, so a byte-offset cursor means the same thing as for a local log.
``read_log_lines`` is the general reader: any Cloud Logging filter (e.g. one translated from a
log-search query), newest first, paginated.
"""

from __future__ import annotations

import json
from typing import Any

LOG_NAME = "goldfish-stage"
PAGE = 1000


def _client(settings: dict[str, Any]) -> Any:
    from google.cloud import logging as cloud_logging

    endpoints = settings.get("endpoints") or {}
    kwargs: dict[str, Any] = {"project": settings.get("project_id"), "_use_grpc": False}
    if endpoints.get("logging"):
        kwargs["client_options"] = {"api_endpoint": endpoints["logging"]}
    if endpoints.get("anonymous"):
        from google.auth.credentials import AnonymousCredentials

        kwargs["credentials"] = AnonymousCredentials()
    return cloud_logging.Client(**kwargs)


def log_filter(settings: dict[str, Any], **labels: str) -> str:
    parts = [f'logName="projects/{settings.get("project_id")}/logs/{LOG_NAME}"']
    parts += [f'labels.{k}="{v}"' for k, v in labels.items()]
    return " AND ".join(parts)


def read_log_lines(settings: dict[str, Any], filter_: str, *, limit: int = 100, page_token: str | None = None,
                   newest_first: bool = True) -> tuple[list[dict[str, Any]], str | None]:
    """Entries matching a Cloud Logging ``filter_`` in the gce project: ``[{timestamp, run_id, attempt,
    offset, text, labels}]`` (newest first by default) and a token for the next page (None at the end).

    The token is a timestamp cursor (``{"ts", "skip"}``: continue at that timestamp, past the ``skip``
    entries already returned there), so it stays valid while new entries arrive."""
    from google.cloud.logging import ASCENDING, DESCENDING

    cursor = json.loads(page_token) if page_token else None
    text = filter_
    if cursor:
        op = "<=" if newest_first else ">="
        text = f'({filter_}) AND timestamp{op}"{cursor["ts"]}"' if filter_ else f'timestamp{op}"{cursor["ts"]}"'
    skip = int(cursor["skip"]) if cursor else 0
    client = _client(settings)
    entries = client.list_entries(resource_names=[f"projects/{settings.get('project_id')}"], filter_=text,
                                  order_by=DESCENDING if newest_first else ASCENDING,
                                  page_size=min(limit + skip + 1, PAGE), max_results=limit + skip + 1)
    out: list[dict[str, Any]] = []
    more = False
    for entry in entries:
        stamp = entry.timestamp.isoformat().replace("+00:00", "Z") if entry.timestamp else ""
        if cursor and skip and stamp == cursor["ts"]:
            skip -= 1
            continue
        if len(out) == limit:
            more = True
            break
        payload = entry.payload if isinstance(entry.payload, dict) else {"text": str(entry.payload)}
        labels = dict(entry.labels or {})
        out.append({"timestamp": stamp, "run_id": labels.get("goldfish_run"), "attempt": labels.get("goldfish_attempt"),
                    "offset": payload.get("offset"), "text": payload.get("text", ""), "labels": labels})
    if not more or not out:
        return out, None
    last = out[-1]["timestamp"]
    same = sum(1 for e in out if e["timestamp"] == last)
    if cursor and last == cursor["ts"]:
        same += int(cursor["skip"])
    return out, json.dumps({"ts": last, "skip": same})


def stage_log_bytes(settings: dict[str, Any], run_id: str, attempt: int, offset: int, limit: int,
                    since: str = "2000-01-01T00:00:00Z") -> tuple[bytes, int]:
    """Lines of one attempt's stage log from byte ``offset``: (text, the offset after it).
    ``since`` bounds the search (without a timestamp the client library searches one day only)."""
    base = log_filter(settings, goldfish_run=run_id, goldfish_attempt=str(attempt)) + f' AND timestamp>="{since}"'

    chunks: list[bytes] = []
    size = 0
    next_offset = offset
    while size < limit:
        # The byte offset is the cursor: each round asks for the lines at or after it.
        entries, token = read_log_lines(settings, f"{base} AND jsonPayload.offset>={next_offset}", limit=PAGE,
                                        newest_first=False)
        before = next_offset
        for entry in sorted(entries, key=lambda e: int(e["offset"] or 0)):
            start = int(entry["offset"] or 0)
            if start < next_offset:
                continue  # a duplicate delivery of a line already read
            line = (entry["text"] + "\n").encode()
            chunks.append(line)
            size += len(line)
            next_offset = start + len(entry["text"].encode()) + 1
            if size >= limit:
                break
        if not token or next_offset == before:
            break
    return b"".join(chunks), next_offset
