"""The stdio transport, with a reply to every request the SDK cannot parse.

The SDK's stdio reader validates each line with pydantic; a line it rejects (valid JSON that is not
valid Unicode, such as a lone UTF-16 surrogate ``"\\ud800"``, or a malformed envelope) reaches the
server as an exception, which logs it and answers nothing, so the client waits until its timeout.
Here such a line gets a JSON-RPC error reply carrying the request's id when it can be read.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import mcp_types as types
from anyio.streams.memory import MemoryObjectReceiveStream
from mcp.server.stdio import stdio_server
from mcp.shared.message import SessionMessage
from pydantic import ValidationError

logger = logging.getLogger("goldfish.mcp")

FIX = "Send each message as one line of JSON in valid UTF-8 (no lone surrogate escapes such as \\ud800)."


def error_reply(exc: Exception) -> types.JSONRPCError | None:
    """The JSON-RPC error answering the line ``exc`` rejected, or None when it needs no answer."""
    raw = _raw_line(exc)
    request_id: Any = None
    try:
        envelope = json.loads(raw) if raw is not None else None
    except ValueError:
        envelope = None
        code, what = types.PARSE_ERROR, "Parse error: the message is not valid JSON."
    else:
        if isinstance(envelope, dict) and "method" in envelope and "id" not in envelope:
            return None  # a notification never gets a reply, even an error
        if isinstance(envelope, dict):
            candidate = envelope.get("id")
            if isinstance(candidate, str | int) and not isinstance(candidate, bool):
                request_id = candidate
        if raw is not None and _has_lone_surrogate(envelope):
            code, what = types.PARSE_ERROR, "Parse error: the message holds a lone UTF-16 surrogate, which is not valid Unicode."
        else:
            code, what = types.INVALID_REQUEST, "Invalid request: the message is not a valid JSON-RPC request."
    if isinstance(request_id, str) and _has_lone_surrogate(request_id):
        request_id = None
    return types.JSONRPCError(jsonrpc="2.0", id=request_id, error=types.ErrorData(code=code, message=f"{what} {FIX}"))


def _summary(exc: Exception) -> str:
    if isinstance(exc, ValidationError) and exc.errors():
        return str(exc.errors(include_url=False)[0].get("msg", ""))[:200]
    return str(exc)[:200]


def _raw_line(exc: Exception) -> str | None:
    if isinstance(exc, ValidationError):
        for err in exc.errors(include_url=False):
            if isinstance(err.get("input"), str):
                return str(err["input"])
    return None


def _has_lone_surrogate(value: object) -> bool:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, dict):
        return any(_has_lone_surrogate(k) or _has_lone_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_lone_surrogate(v) for v in value)
    return False


@asynccontextmanager
async def answering_stdio() -> AsyncIterator[tuple[MemoryObjectReceiveStream[SessionMessage | Exception], Any]]:
    """``stdio_server()`` whose unparsable requests are answered with a JSON-RPC error."""
    async with stdio_server() as (read_stream, write_stream):
        send, receive = anyio.create_memory_object_stream[SessionMessage | Exception](0)

        async def relay() -> None:
            async with send:
                async for item in read_stream:
                    if isinstance(item, Exception):
                        reply = error_reply(item)
                        logger.warning("Rejected a malformed message: %s", _summary(item))
                        if reply is not None:
                            await write_stream.send(SessionMessage(reply))
                        continue
                    await send.send(item)

        async with anyio.create_task_group() as tg:
            tg.start_soon(relay)
            try:
                yield receive, write_stream
            finally:
                tg.cancel_scope.cancel()
