"""Bearer-token authentication for `goldfish serve --transport streamable-http`.

Over HTTP any local process (any user on the machine) could otherwise call run() and execute code
as the server's user. The token is generated once per project into ``<dev repo>/.goldfish/serve-token``
(mode 0600, so only the project's owner can read it), printed when the server starts, and every
HTTP request must carry ``Authorization: Bearer <token>``; it is compared in constant time.
stdio needs no token: only the process that started the server can talk to it.
"""

from __future__ import annotations

import hmac
import json
import os
import secrets
import stat
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

from goldfish.errors import ConfigError

TOKEN_FILE = "serve-token"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def token_path(gf_dir: Path) -> Path:
    return Path(gf_dir) / TOKEN_FILE


def ensure_token(gf_dir: Path) -> str:
    """The project's serve token, created (0600) on first use; a token file others can read is refused."""
    path = token_path(gf_dir)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        mode = stat.S_IMODE(os.stat(path).st_mode)
        if mode & 0o077:
            raise ConfigError(
                f"{path} can be read by other users (mode {mode:o}), so they could call Goldfish's tools.",
                fix=f"Run `chmod 600 {path}` (or delete it to get a new token), then start the server again.",
            ) from None
        token = path.read_text(encoding="ascii").strip()
        if len(token) >= 32:
            return token
        raise ConfigError(f"{path} holds no usable token.", fix=f"Delete {path} and start the server again.") from None
    token = secrets.token_urlsafe(32)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(token + "\n")
        f.flush()
        os.fsync(f.fileno())
    return token


def require_bearer(app: ASGIApp, token: str) -> ASGIApp:
    """``app`` behind a check of ``Authorization: Bearer <token>`` on every HTTP request."""
    expected = f"Bearer {token}".encode()

    async def guarded(scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") == "http":
            given = b""
            for name, value in scope.get("headers") or []:
                if name.lower() == b"authorization":
                    given = value
                    break
            if not hmac.compare_digest(given, expected):
                await _unauthorized(send, missing=not given)
                return
        await app(scope, receive, send)

    return guarded


async def _unauthorized(send: Send, *, missing: bool) -> None:
    what = "No bearer token was sent." if missing else "The bearer token is wrong."
    body = json.dumps({
        "error": "unauthorized",
        "message": f"{what} Goldfish's HTTP transport needs 'Authorization: Bearer <token>': `goldfish serve` prints "
                   f"the token when it starts, and keeps it in .goldfish/{TOKEN_FILE} of the project's dev repo.",
    }).encode()
    await send({"type": "http.response.start", "status": 401, "headers": [
        (b"content-type", b"application/json"), (b"www-authenticate", b'Bearer realm="goldfish"'),
        (b"content-length", str(len(body)).encode()),
    ]})
    await send({"type": "http.response.body", "body": body})
